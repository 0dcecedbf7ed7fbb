//! `/api/admin/kb/documents[/{id}]`: multipart uploads (txt, md, pdf) with a size limit, and the
//! admin's list, get and delete.

use std::fmt::Write as _;

use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};

use super::admin::require_admin;
use super::{page_json, Page, Shared};
use crate::documents::{Kind, NewDocument};
use crate::errors::ApiError;

/// Room for the multipart framing and the small fields around the file, on top of
/// `max_upload_bytes`, before the body limit cuts the stream.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;
const MAX_TITLE_CHARS: usize = 200;
const MAX_FILENAME_CHARS: usize = 255;

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("the file is larger than {limit} bytes"))
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

#[utoipa::path(
    post, path = "/api/admin/kb/documents", tag = "documents",
    request_body(content = crate::schemas::DocumentUpload, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "stored; `processing` until `document_processing_ms` has passed", body = crate::schemas::Document),
        (status = 400, description = "malformed multipart body", body = crate::schemas::Error),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 403, description = "not an admin", body = crate::schemas::Error),
        (status = 413, description = "the file is over `max_upload_bytes`", body = crate::schemas::Error),
        (status = 415, description = "not multipart, or not a .txt, .md or .pdf file", body = crate::schemas::Error),
        (status = 422, description = "`file` missing or empty, or `title` too long", body = crate::schemas::Error),
    )
)]
pub async fn upload(State(state): State<Shared>, request: Request) -> Result<Response, ApiError> {
    // authenticate before reading a byte of the body
    let admin = require_admin(&state, request.headers())?;
    let limit = state.config.max_upload_bytes;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.trim_start().starts_with("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType(
            "expected a multipart/form-data body with a `file` field".into(),
        ));
    }
    let declared_len = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared_len.is_some_and(|n| n > limit.saturating_add(MULTIPART_OVERHEAD)) {
        return Err(too_large(limit));
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut file: Option<(String, Option<String>, Vec<u8>)> = None;
    let mut title: Option<String> = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        match field.name() {
            Some("file") if file.is_none() => {
                let filename = field.file_name().unwrap_or("").to_owned();
                let part_type = field.content_type().map(str::to_owned);
                let mut bytes = Vec::new();
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| multipart_error(e, limit))?
                {
                    if bytes.len() + chunk.len() > limit {
                        return Err(too_large(limit));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some((filename, part_type, bytes));
            }
            Some("title") => {
                title = Some(field.text().await.map_err(|e| multipart_error(e, limit))?);
            }
            _ => {} // other parts are skipped
        }
    }
    let (filename, part_type, bytes) =
        file.ok_or_else(|| ApiError::invalid("file", "field required (a multipart file part)"))?;
    let kind = file_kind(&filename, part_type.as_deref())?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("file", "must not be empty"));
    }
    kind.check(&bytes)
        .map_err(|m| ApiError::UnsupportedMediaType(m.into()))?;
    // the limit counts the title as sent, as the OpenAPI document's maxLength does
    if title
        .as_deref()
        .is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS)
    {
        return Err(ApiError::invalid(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    let title = match title.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ if !filename.is_empty() => filename.chars().take(MAX_TITLE_CHARS).collect(),
        _ => "Untitled".to_owned(),
    };
    let mut sha256 = String::with_capacity(64);
    for b in Sha256::digest(&bytes) {
        let _ = write!(sha256, "{b:02x}");
    }
    let doc = state
        .documents
        .insert(NewDocument {
            title,
            filename: filename.chars().take(MAX_FILENAME_CHARS).collect(),
            kind,
            size_bytes: bytes.len(),
            sha256,
            uploaded_by: admin.id,
            // checked as UTF-8 above for these kinds; a PDF is found by its title
            text: match kind {
                Kind::Pdf => String::new(),
                _ => String::from_utf8_lossy(&bytes).into_owned(),
            },
        })
        .map_err(ApiError::Internal)?;
    Ok((StatusCode::CREATED, Json(doc)).into_response())
}

/// The file's kind from its name's extension, else from its part's `Content-Type`; 415 when
/// neither names txt, md or pdf, or the part declares some other specific type.
fn file_kind(filename: &str, part_type: Option<&str>) -> Result<Kind, ApiError> {
    let declared = part_type.filter(|t| {
        let t = t.trim().to_ascii_lowercase();
        !t.is_empty() && !t.starts_with("application/octet-stream")
    });
    let by_type = declared.map(Kind::from_content_type);
    if let (Some(t), Some(None)) = (declared, by_type) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "unsupported file type {t}: send text/plain, text/markdown or application/pdf"
        )));
    }
    Kind::from_filename(filename)
        .or(by_type.flatten())
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "unsupported file type: send a .txt, .md or .pdf file".into(),
            )
        })
}

#[utoipa::path(
    get, path = "/api/admin/kb/documents", tag = "documents",
    params(crate::schemas::PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "documents, newest first", body = crate::schemas::DocumentPage),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 403, description = "not an admin", body = crate::schemas::Error),
        (status = 422, description = "bad `page` or `page_size`", body = crate::schemas::Error),
    )
)]
pub async fn list(
    State(state): State<Shared>,
    headers: axum::http::HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let page = Page::parse(raw.as_deref())?;
    let (items, total) = state.documents.page(page.offset(), page.page_size);
    Ok(Json(page_json(items, total, page)).into_response())
}

#[utoipa::path(
    get, path = "/api/admin/kb/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the document", body = crate::schemas::Document),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 403, description = "not an admin", body = crate::schemas::Error),
        (status = 404, description = "no such document", body = crate::schemas::Error),
    )
)]
pub async fn get_one(
    State(state): State<Shared>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let doc = state
        .documents
        .get(&id)
        .ok_or_else(|| ApiError::NotFound("document not found".into()))?;
    Ok(Json(doc).into_response())
}

#[utoipa::path(
    delete, path = "/api/admin/kb/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "document id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "missing, bad, expired or revoked token", body = crate::schemas::Error),
        (status = 403, description = "not an admin", body = crate::schemas::Error),
        (status = 404, description = "no such document", body = crate::schemas::Error),
    )
)]
pub async fn delete(
    State(state): State<Shared>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    if !state.documents.remove(&id) {
        return Err(ApiError::NotFound("document not found".into()));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_from_the_name_then_the_declared_type() {
        assert_eq!(file_kind("a.md", None), Ok(Kind::Markdown));
        assert_eq!(
            file_kind("a.pdf", Some("application/octet-stream")),
            Ok(Kind::Pdf)
        );
        assert_eq!(file_kind("blob", Some("application/pdf")), Ok(Kind::Pdf));
        assert_eq!(
            file_kind("a.txt", Some("text/plain; charset=utf-8")),
            Ok(Kind::Text)
        );
        for (name, t) in [
            ("a.png", None),
            ("a.txt", Some("image/png")),
            ("blob", None),
        ] {
            assert_eq!(
                file_kind(name, t).unwrap_err().status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            );
        }
    }
}
