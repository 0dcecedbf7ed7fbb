//! `multipart/form-data` bodies, laid out as Python's `requests` lays out `files=` and `data=`:
//! the plain fields first, then the files; a file part has a `Content-Type` only when one is
//! given.

const BOUNDARY: &str = "route-test-boundary-7d1f0c";

/// One part of a form.
pub enum Part<'a> {
    Field {
        name: &'a str,
        value: &'a str,
    },
    File {
        name: &'a str,
        filename: &'a str,
        content: &'a [u8],
        content_type: Option<&'a str>,
    },
}

impl<'a> Part<'a> {
    pub fn field(name: &'a str, value: &'a str) -> Self {
        Self::Field { name, value }
    }

    /// A `file` part with no declared type.
    pub fn file(filename: &'a str, content: &'a [u8]) -> Self {
        Self::File {
            name: "file",
            filename,
            content,
            content_type: None,
        }
    }

    /// A `file` part, typed when `content_type` is given.
    pub fn typed_file(filename: &'a str, content: &'a [u8], content_type: Option<&'a str>) -> Self {
        Self::File {
            name: "file",
            filename,
            content,
            content_type,
        }
    }
}

/// The form's `Content-Type` header and body.
pub fn form(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    let fields = parts.iter().filter(|p| matches!(p, Part::Field { .. }));
    let files = parts.iter().filter(|p| matches!(p, Part::File { .. }));
    for part in fields.chain(files) {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Field { name, value } => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(value.as_bytes());
            }
            Part::File {
                name,
                filename,
                content,
                content_type,
            } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                    )
                    .as_bytes(),
                );
                if let Some(t) = content_type {
                    body.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
                }
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(content);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}
