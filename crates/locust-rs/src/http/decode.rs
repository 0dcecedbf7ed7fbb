//! Content-Encoding decoding (gzip, deflate, br), as geventhttpclient does it: deflate is tried
//! raw first, then zlib-wrapped, because servers send both under the same name.

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;

use crate::errors::{Error, ErrorKind};

/// Decodes `body`; the decoded bytes may not exceed `limit` (a small compressed body can expand
/// without end).
pub fn decode(headers: &HeaderMap, body: Bytes, limit: Option<usize>) -> Result<Bytes, Error> {
    let Some(enc) = headers.get(http::header::CONTENT_ENCODING) else {
        return Ok(body);
    };
    let enc = enc.to_str().unwrap_or("").trim().to_ascii_lowercase();
    if body.is_empty() {
        return Ok(body);
    }
    let limit = limit.unwrap_or(usize::MAX);
    // One byte over the limit is enough to know the body is too large.
    let cap = (limit as u64).saturating_add(1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    let result = match enc.as_str() {
        "" | "identity" => return Ok(body),
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..])
            .take(cap)
            .read_to_end(&mut out),
        "deflate" => {
            let raw = flate2::read::DeflateDecoder::new(&body[..])
                .take(cap)
                .read_to_end(&mut out);
            if raw.is_err() {
                out.clear();
                flate2::read::ZlibDecoder::new(&body[..])
                    .take(cap)
                    .read_to_end(&mut out)
            } else {
                raw
            }
        }
        "br" => brotli::Decompressor::new(&body[..], 4096)
            .take(cap)
            .read_to_end(&mut out),
        other => {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("Unknown content encoding: {other}"),
            ))
        }
    };
    match result {
        Ok(_) if out.len() > limit => Err(Error::body_too_large(limit)),
        Ok(_) => Ok(Bytes::from(out)),
        Err(e) => Err(Error::new(
            ErrorKind::Decode,
            format!("Error -3 while decompressing data: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn headers(enc: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_ENCODING, enc.parse().unwrap());
        h
    }

    #[test]
    fn gzip_round_trip() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"hello hello hello").unwrap();
        let body = Bytes::from(enc.finish().unwrap());
        assert_eq!(
            &decode(&headers("gzip"), body, None).unwrap()[..],
            b"hello hello hello"
        );
    }

    #[test]
    fn deflate_accepts_raw_and_zlib() {
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(b"abc").unwrap();
        assert_eq!(
            &decode(
                &headers("deflate"),
                Bytes::from(raw.finish().unwrap()),
                None
            )
            .unwrap()[..],
            b"abc"
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"abc").unwrap();
        assert_eq!(
            &decode(&headers("deflate"), Bytes::from(z.finish().unwrap()), None).unwrap()[..],
            b"abc"
        );
    }

    #[test]
    fn brotli_round_trip() {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(b"brotli body").unwrap();
        }
        assert_eq!(
            &decode(&headers("br"), Bytes::from(out), None).unwrap()[..],
            b"brotli body"
        );
    }

    #[test]
    fn corrupt_gzip_is_a_decode_error() {
        let err = decode(
            &headers("gzip"),
            Bytes::from_static(b"not gzip at all"),
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Decode);
    }

    #[test]
    fn a_body_that_decodes_past_the_limit_fails_without_growing_past_it() {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 10 << 20]).unwrap();
        let bomb = Bytes::from(e.finish().unwrap());
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let err = decode(&headers("gzip"), bomb.clone(), Some(1 << 20)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BodyTooLarge);
        assert!(err.message.contains("1048576 bytes"), "{}", err.message);
        assert_eq!(
            decode(&headers("gzip"), bomb.clone(), Some(10 << 20))
                .unwrap()
                .len(),
            10 << 20
        );
        assert_eq!(
            decode(&headers("gzip"), bomb, None).unwrap().len(),
            10 << 20
        );
    }
}
