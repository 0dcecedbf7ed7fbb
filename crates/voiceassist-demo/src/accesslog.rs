//! The optional access log: one line per request, to stderr or appended to a file.
//!
//! `2026-11-24T17:59:02.123Z 127.0.0.1:50432 "GET /api/x?page=2&token=***" 200 0.412ms`
//!
//! It never prints a secret: headers and bodies (where tokens and passwords travel) are not
//! logged, and the value of any query parameter whose name looks like a credential is masked
//! (`?token=` on the WebSocket route above all).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Query parameter names containing one of these (case-insensitively) have their value masked.
const SECRET_NAMES: [&str; 12] = [
    "token",
    "password",
    "passwd",
    "pwd",
    "secret",
    "key",
    "auth",
    "jwt",
    "session",
    "sig",
    "code",
    "credential",
];
pub const MASK: &str = "***";

enum Sink {
    Stderr,
    File(LineWriter<File>),
}

pub struct AccessLog {
    sink: Mutex<Sink>,
}

impl AccessLog {
    /// `"-"` is stderr; anything else a file path, created if missing and appended to.
    pub fn open(target: &str) -> Result<Self, String> {
        let sink = if target == "-" {
            Sink::Stderr
        } else {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(target)
                .map_err(|e| format!("access_log: cannot open {target}: {e}"))?;
            Sink::File(LineWriter::new(file))
        };
        Ok(Self {
            sink: Mutex::new(sink),
        })
    }

    /// Writes one line. A failed write is dropped: the log must never fail a request.
    pub fn log(
        &self,
        client: Option<SocketAddr>,
        method: &str,
        path_and_query: &str,
        status: u16,
        took: Duration,
    ) {
        let line = format_line(
            SystemTime::now(),
            client,
            method,
            path_and_query,
            status,
            took,
        );
        match &mut *self.sink.lock() {
            Sink::Stderr => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::File(w) => {
                let _ = w.write_all(line.as_bytes());
            }
        }
    }
}

pub fn format_line(
    now: SystemTime,
    client: Option<SocketAddr>,
    method: &str,
    path_and_query: &str,
    status: u16,
    took: Duration,
) -> String {
    let mut line = String::with_capacity(96 + path_and_query.len());
    write_timestamp(&mut line, now);
    line.push(' ');
    match client {
        Some(addr) => {
            let _ = write!(line, "{addr}");
        }
        None => line.push('-'),
    }
    let _ = writeln!(
        line,
        " \"{method} {}\" {status} {:.3}ms",
        redact(path_and_query),
        took.as_secs_f64() * 1000.0
    );
    line
}

/// The path with the value of every credential-like query parameter replaced by `***`.
pub fn redact(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let mut out = String::with_capacity(path_and_query.len());
    out.push_str(path);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (name, value) = match pair.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (pair, None),
        };
        out.push_str(name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(if is_secret(name) { MASK } else { value });
        }
    }
    out
}

fn is_secret(raw_name: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(raw_name.as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    let name = decoded.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| name.contains(s))
}

/// RFC 3339 UTC with milliseconds (days to civil date: H. Hinnant's algorithm).
fn write_timestamp(out: &mut String, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_like_query_values_are_masked() {
        assert_eq!(redact("/health"), "/health");
        assert_eq!(
            redact("/api/realtime/ws?token=eyJ.abc.def"),
            "/api/realtime/ws?token=***"
        );
        assert_eq!(
            redact("/x?page=2&access_token=a&API_KEY=b&pass%77ord=c&flag&page_size=5"),
            "/x?page=2&access_token=***&API_KEY=***&pass%77ord=***&flag&page_size=5"
        );
    }

    #[test]
    fn lines_have_time_client_request_status_and_duration() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let client: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let line = format_line(
            t,
            Some(client),
            "GET",
            "/api/realtime/ws?token=secret",
            101,
            Duration::from_micros(1500),
        );
        assert_eq!(
            line,
            "2026-11-18T11:06:40.123Z 127.0.0.1:5000 \"GET /api/realtime/ws?token=***\" 101 1.500ms\n"
        );
        let epoch = format_line(UNIX_EPOCH, None, "GET", "/", 200, Duration::ZERO);
        assert!(epoch.starts_with("1970-01-01T00:00:00.000Z - "), "{epoch}");
        let leap = format_line(
            UNIX_EPOCH + Duration::from_secs(951_782_400), // 2000-02-29
            None,
            "GET",
            "/",
            200,
            Duration::ZERO,
        );
        assert!(leap.starts_with("2000-02-29T00:00:00.000Z"), "{leap}");
    }
}
