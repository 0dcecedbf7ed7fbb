//! The HTTP engine: hyper connections owned per user, driven on the process's tokio runtime.
//! `client` runs one request (redirects, retries, cookies, timing); `pool` owns connections;
//! `decode` undoes Content-Encoding; `response` is the lazy Python view of the result; `timed_io`
//! times out each read of an HTTP/1.1 connection, as Python's sockets do.

pub mod client;
pub mod cookies;
pub mod decode;
mod exchange;
pub mod pool;
pub mod proxy;
pub mod response;
pub mod timed_io;
pub mod tls;

/// The most headers a request may carry from Python (each of the client's and the request's own).
/// The `http` crate's `HeaderMap` panics past about 24,000 names; a panic must never reach Python,
/// so more than this is a `ValueError` at the call.
pub const MAX_HEADERS: usize = 10_000;

use bytes::Bytes;
use http::{HeaderMap, Version};

use crate::errors::{Error, ErrorKind};
use response::BodyStream;

/// One response of a redirect chain that was followed.
pub struct Hop {
    pub status: u16,
    pub url: String,
    pub headers: HeaderMap,
    pub reason: Option<Bytes>,
    /// The redirect's body, decoded (empty if it could not be read or decoded).
    pub body: Bytes,
}

/// The reason phrase the server sent, when it is not the status code's standard one (hyper
/// keeps only those; the getters fall back to the standard phrase).
pub fn custom_reason(extensions: &http::Extensions) -> Option<Bytes> {
    extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| Bytes::copy_from_slice(r.as_bytes()))
}

/// The reason phrase of a response: the server's, else the standard one of its status.
pub fn reason_phrase(status: u16, custom: Option<&Bytes>) -> Option<String> {
    match custom {
        // http.client decodes the status line as ISO-8859-1; each byte is one char.
        Some(b) => Some(b.iter().map(|&c| c as char).collect()),
        None => http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .map(str::to_owned),
    }
}

/// The result of one request as it reaches Python.
pub struct HttpOutcome {
    pub status: u16,
    /// The server's reason phrase if it is not the standard one.
    pub reason: Option<Bytes>,
    pub version: Version,
    pub headers: HeaderMap,
    /// The decoded body (empty when streaming).
    pub body: Bytes,
    /// The URL that answered, after redirects.
    pub url: String,
    pub history: Vec<Hop>,
    /// Milliseconds from the start of the request until the body was complete
    /// (until the headers, when streaming).
    pub response_time: f64,
    /// Set when the headers arrived but the body failed (closed mid-body, timeout, bad encoding).
    pub body_error: Option<Error>,
    pub stream: Option<BodyStream>,
}

/// Refuses more than `MAX_HEADERS` headers from Python.
pub fn check_header_count(n: usize) -> Result<(), Error> {
    if n > MAX_HEADERS {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("too many headers: {n} (locust-rs sends at most {MAX_HEADERS})"),
        ));
    }
    Ok(())
}
