//! Transport errors as a Rust enum. They cross into Python in one place, `python.rs`: a failed
//! request as a `NativeError` (kind, message, errno) that `locust_rs._errors` turns into the
//! exception classes Locust users already catch, a bad argument as the exception Python raises.

pub mod python;

use std::fmt;
use std::io;

/// Declares the kinds once: the enum, its Python names and the list of all of them, so that a
/// new kind cannot be left out of `ALL` (which Python checks its mappings against).
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorKind {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorKind {
            /// Every kind (`_native.ERROR_KINDS` on the Python side).
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    /// The URL could not be parsed or has no host.
    InvalidUrl => "invalid_url",
    /// The scheme is neither http nor https.
    UnsupportedScheme => "unsupported_scheme",
    /// Name resolution failed.
    Dns => "dns",
    ConnectRefused => "connect_refused",
    ConnectTimeout => "connect_timeout",
    /// No response (or no next body chunk) within the network timeout.
    Timeout => "timeout",
    /// The peer reset an established connection.
    ConnectionReset => "connection_reset",
    /// The peer closed the connection before the response or its body was complete.
    Closed => "closed",
    Tls => "tls",
    Proxy => "proxy",
    /// The HTTP proxy did not accept the connection within the connect timeout.
    ProxyTimeout => "proxy_timeout",
    /// A proxy URL that is malformed or has a scheme other than http/https.
    InvalidProxy => "invalid_proxy",
    /// A SOCKS proxy refused or failed the tunnel (or could not be reached: errno then says why).
    Socks => "socks",
    /// The peer spoke something that is not valid HTTP.
    Protocol => "protocol",
    /// The body could not be decoded with its Content-Encoding.
    Decode => "decode",
    TooManyRedirects => "too_many_redirects",
    /// Any other I/O error; errno tells which.
    Io => "io",
    /// A bug: a panic inside the engine, caught before it reached Python.
    Internal => "internal",
    /// The server refused the WebSocket upgrade; `errno` carries the HTTP status.
    WsHandshake => "ws_handshake",
    /// The WebSocket connection is closed; `errno` carries the close code (1006: no close frame).
    WsClosed => "ws_closed",
    /// A WebSocket message over the connection's `max_message_size`.
    MessageTooBig => "message_too_big",
    /// A response body over the client's `max_body_size`, read or decoded.
    BodyTooLarge => "body_too_large",
    /// An argument out of range (a timeout of 0, below 0 or NaN): raised as `ValueError` by the
    /// call that was given it, never a failed request.
    InvalidArgument => "invalid_argument",
}

impl ErrorKind {
    /// Errors after which geventhttpclient retries an idempotent request; Locust users see
    /// `RetriesExceeded` for them once `max_retries` is used up.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::ConnectTimeout
                | ErrorKind::ProxyTimeout
                | ErrorKind::Closed
                | ErrorKind::ConnectionReset
        )
    }
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub errno: Option<i32>,
    /// (method, URL) of the request that failed when it is not the one submitted: the last hop
    /// of a redirect chain (requests names a TooManyRedirects after it).
    pub request: Option<Box<(String, String)>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            errno: None,
            request: None,
        }
    }

    pub fn timeout() -> Self {
        Error::new(ErrorKind::Timeout, "timed out")
    }

    pub fn body_too_large(limit: usize) -> Self {
        Error::new(
            ErrorKind::BodyTooLarge,
            format!(
                "response body over max_body_size ({limit} bytes); raise it (--max-body-size) or read \
                 the body with stream=True"
            ),
        )
    }

    /// Sorts an OS error the way Python's socket module would name it.
    pub fn from_io(e: &io::Error, connecting: bool) -> Self {
        let errno = e.raw_os_error();
        let kind = match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            // While connecting, a reset is one more way to fail to connect (requests' NewConnectionError);
            // after, the peer dropped an established connection.
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
                if connecting =>
            {
                ErrorKind::Io
            }
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ErrorKind::ConnectionReset,
            io::ErrorKind::TimedOut if connecting => ErrorKind::ConnectTimeout,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
            _ => ErrorKind::Io,
        };
        let message = match errno {
            // Python's OSError already says "[Errno N] strerror"; keep only the strerror text.
            Some(n) => strerror(n),
            None => e.to_string(),
        };
        Error {
            kind,
            message,
            errno,
            request: None,
        }
    }

    /// Sorts a hyper error, looking through its source chain for an OS error.
    pub fn from_hyper(e: &hyper::Error) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<io::Error>() {
                return Error::from_io(io, false);
            }
            source = s.source();
        }
        let kind = if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
            ErrorKind::Closed
        } else if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_parse() || e.is_parse_status() {
            ErrorKind::Protocol
        } else {
            ErrorKind::Io
        };
        Error::new(kind, e.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

fn strerror(errno: i32) -> String {
    // std renders "Connection refused (os error 111)"; Python users know the bare strerror text.
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_maps_to_errno_and_kind() {
        let e = Error::from_io(&io::Error::from_raw_os_error(libc::ECONNREFUSED), true);
        assert_eq!(e.kind, ErrorKind::ConnectRefused);
        assert_eq!(e.errno, Some(libc::ECONNREFUSED));
        assert_eq!(e.message, "Connection refused");
    }

    #[test]
    fn all_lists_every_kind_once_by_its_python_name() {
        let names: std::collections::HashSet<_> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert!(names.contains("connect_refused") && names.contains("message_too_big"));
    }

    #[test]
    fn timeouts_are_retryable_refusals_are_not() {
        assert!(ErrorKind::Timeout.is_retryable());
        assert!(!ErrorKind::ConnectRefused.is_retryable());
    }
}
