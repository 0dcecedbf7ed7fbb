//! The HTTP engine: hyper connections owned per user, driven on the process's tokio runtime.
//! `client` runs one request (redirects, retries, cookies, timing); `pool` owns connections;
//! `decode` undoes Content-Encoding; `response` is the lazy Python view of the result.

pub mod client;
pub mod decode;
pub mod pool;
pub mod proxy;
pub mod response;
pub mod tls;

use bytes::Bytes;
use http::{HeaderMap, Version};

use crate::errors::Error;
use response::BodyStream;

/// One response of a redirect chain that was followed.
pub struct Hop {
    pub status: u16,
    pub url: String,
    pub headers: HeaderMap,
}

/// The result of one request as it reaches Python.
pub struct HttpOutcome {
    pub status: u16,
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
