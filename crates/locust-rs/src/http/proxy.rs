//! HTTP proxies: parsing requests-style proxy URLs, choosing one per URL as requests'
//! `select_proxy` does, and opening a CONNECT tunnel for an https origin.

use base64::Engine;
use http::HeaderValue;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use url::Url;

use crate::errors::{Error, ErrorKind};

/// One proxy: where it listens, whether we speak TLS to it (an `https://` proxy), and the
/// `Proxy-Authorization` its URL's user and password make; or a SOCKS proxy.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Proxy {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub auth: Option<HeaderValue>,
    pub socks: Option<Socks>,
}

/// A SOCKS proxy's protocol, as urllib3 names it by scheme: `socks5`/`socks4` resolve the
/// target's name here, `socks5h`/`socks4a` let the proxy resolve it.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Socks {
    pub version: u8,
    pub remote_dns: bool,
    pub credentials: Option<(String, String)>,
}

impl Proxy {
    /// A plain HTTP proxy with no credentials (FastHttpUser's `proxy_host`/`proxy_port`).
    pub fn plain(host: String, port: u16) -> Self {
        Proxy {
            tls: false,
            host,
            port,
            auth: None,
            socks: None,
        }
    }

    /// Parses a proxy URL as requests does: no scheme means `http://`; the port defaults to the
    /// scheme's; `user:password@` becomes a Basic `Proxy-Authorization`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let with_scheme;
        let text = if text.contains("://") {
            text
        } else {
            with_scheme = format!("http://{text}");
            &with_scheme
        };
        let invalid = || {
            Error::new(
                ErrorKind::InvalidProxy,
                "Please check proxy URL. It is malformed and could be missing the host.",
            )
        };
        let url = Url::parse(text).map_err(|_| invalid())?;
        let socks = match url.scheme() {
            "socks5" => Some((5, false)),
            "socks5h" => Some((5, true)),
            "socks4" => Some((4, false)),
            "socks4a" => Some((4, true)),
            _ => None,
        };
        if let Some((version, remote_dns)) = socks {
            let host = url
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(invalid)?;
            // urllib3 hands the user and password to PySocks as written (not percent-decoded).
            let credentials = (!url.username().is_empty()).then(|| {
                (
                    url.username().to_string(),
                    url.password().unwrap_or("").to_string(),
                )
            });
            return Ok(Proxy {
                tls: false,
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port: url.port().unwrap_or(1080),
                auth: None,
                socks: Some(Socks {
                    version,
                    remote_dns,
                    credentials,
                }),
            });
        }
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidProxy,
                    format!(
                        "Proxy URL had unsupported scheme {other}, should use http:// or https://"
                    ),
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(invalid)?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(if tls { 443 } else { 80 });
        let auth = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = percent_decode_str(url.username()).decode_utf8_lossy();
            let password = percent_decode_str(url.password().unwrap_or("")).decode_utf8_lossy();
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            HeaderValue::from_str(&format!("Basic {token}")).ok()
        };
        Ok(Proxy {
            tls,
            host,
            port,
            auth,
            socks: None,
        })
    }
}

/// A requests `proxies` dict: keys `scheme://host`, `scheme`, `all://host` or `all`, each with a
/// proxy (or an error, if its URL is malformed, reported only when it is chosen), or no proxy
/// (an empty value, which stops the search and means "direct").
#[derive(Debug, Default)]
pub struct ProxyMap {
    entries: Vec<(String, Option<Result<Proxy, Error>>)>,
}

impl ProxyMap {
    pub fn new(entries: Vec<(String, String)>) -> Self {
        ProxyMap {
            entries: entries
                .into_iter()
                .map(|(k, v)| {
                    let proxy = (!v.is_empty()).then(|| Proxy::parse(&v));
                    (k, proxy)
                })
                .collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&Option<Result<Proxy, Error>>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The proxy for `url`, by requests' order of keys; `Ok(None)`: go direct.
    pub fn select(&self, url: &Url) -> Result<Option<Proxy>, Error> {
        let scheme = url.scheme();
        let host = url.host_str().unwrap_or_default();
        let keys = [
            format!("{scheme}://{host}"),
            scheme.to_string(),
            format!("all://{host}"),
            "all".to_string(),
        ];
        for key in &keys {
            if let Some(found) = self.get(key) {
                return match found {
                    None => Ok(None),
                    Some(Ok(p)) => Ok(Some(p.clone())),
                    Some(Err(e)) => Err(e.clone()),
                };
            }
        }
        Ok(None)
    }
}

/// Opens a CONNECT tunnel to the origin `host:port` through a proxy (already connected on `io`).
pub async fn tunnel<I>(io: &mut I, host: &str, port: u16, proxy: &Proxy) -> Result<(), Error>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = proxy.auth.as_ref().and_then(|a| a.to_str().ok()) {
        req.push_str("Proxy-Authorization: ");
        req.push_str(auth);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    io.write_all(req.as_bytes())
        .await
        .map_err(|e| Error::from_io(&e, true))?;
    io.flush().await.map_err(|e| Error::from_io(&e, true))?;
    let mut buf = Vec::with_capacity(256);
    // Read byte by byte: anything past the blank line belongs to the TLS handshake that follows.
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        // A proxy's CONNECT answer is a status line and a few headers; 8 KiB bounds a bad peer.
        if buf.len() > 8192 {
            return Err(Error::new(
                ErrorKind::Proxy,
                "proxy CONNECT response too large",
            ));
        }
        let n = io
            .read(&mut byte)
            .await
            .map_err(|e| Error::from_io(&e, true))?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Proxy,
                "proxy closed the connection during CONNECT",
            ));
        }
        buf.push(byte[0]);
    }
    let status_line = buf
        .split(|b| *b == b'\n')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let mut parts = status_line.trim().splitn(3, ' ');
    let _version = parts.next();
    let code = parts.next().unwrap_or_default();
    if code != "200" {
        let reason = parts.next().unwrap_or_default();
        // The words of http.client's tunnel error, which requests users see in ProxyError.
        return Err(Error::new(
            ErrorKind::Proxy,
            format!("Tunnel connection failed: {code} {reason}")
                .trim_end()
                .to_string(),
        ));
    }
    Ok(())
}

/// Asks a SOCKS proxy (already connected on `tcp`) for a tunnel to the origin `host:port`, and returns the
/// tunnel: after the handshake it is the same TCP stream.
pub async fn socks_connect(
    tcp: TcpStream,
    host: &str,
    port: u16,
    socks: &Socks,
) -> Result<TcpStream, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let target: tokio_socks::TargetAddr<'_> = if socks.remote_dns {
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => tokio_socks::TargetAddr::Ip((ip, port).into()),
            Err(_) => tokio_socks::TargetAddr::Domain(host.into(), port),
        }
    } else {
        // Resolved here, as PySocks does for socks5:// and socks4:// (SOCKS4 takes IPv4 only).
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Error::new(ErrorKind::Dns, e.to_string()))?
            .collect();
        let pick = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first().filter(|_| socks.version == 5))
            .copied()
            .ok_or_else(|| Error::new(ErrorKind::Dns, format!("no address for {host:?}")))?;
        tokio_socks::TargetAddr::Ip(pick)
    };
    let result = match (socks.version, &socks.credentials) {
        (5, Some((user, password))) => {
            tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(
                tcp, target, user, password,
            )
            .await
            .map(|s| s.into_inner())
        }
        (5, None) => tokio_socks::tcp::Socks5Stream::connect_with_socket(tcp, target)
            .await
            .map(|s| s.into_inner()),
        (_, Some((user, _))) => {
            tokio_socks::tcp::Socks4Stream::connect_with_userid_and_socket(tcp, target, user)
                .await
                .map(|s| s.into_inner())
        }
        (_, None) => tokio_socks::tcp::Socks4Stream::connect_with_socket(tcp, target)
            .await
            .map(|s| s.into_inner()),
    };
    result.map_err(|e| socks_error(e, socks.version))
}

/// A SOCKS failure in PySocks' words (what requests users see in the exception).
fn socks_error(e: tokio_socks::Error, version: u8) -> Error {
    use tokio_socks::Error as S;
    let reply = |code: u8, text: &str| format!("{code:#04x}: {text}");
    let message = match e {
        S::Io(io) => {
            let mut err = Error::from_io(&io, true);
            err.kind = ErrorKind::Socks;
            return err;
        }
        S::NoAcceptableAuthMethods => {
            "All offered SOCKS5 authentication methods were rejected".into()
        }
        S::PasswordAuthFailure(_) => "SOCKS5 authentication failed".into(),
        S::GeneralSocksServerFailure if version == 4 => reply(0x5b, "Request rejected or failed"),
        S::GeneralSocksServerFailure => reply(0x01, "General SOCKS server failure"),
        S::ConnectionNotAllowedByRuleset => reply(0x02, "Connection not allowed by ruleset"),
        S::NetworkUnreachable => reply(0x03, "Network unreachable"),
        S::HostUnreachable => reply(0x04, "Host unreachable"),
        S::ConnectionRefused => reply(0x05, "Connection refused"),
        S::TtlExpired => reply(0x06, "TTL expired"),
        S::CommandNotSupported => reply(0x07, "Command not supported, or protocol error"),
        S::AddressTypeNotSupported => reply(0x08, "Address type not supported"),
        S::IdentdAuthFailure => reply(
            0x5c,
            "Request rejected because SOCKS server cannot connect to identd on the client",
        ),
        S::InvalidUserIdAuthFailure => reply(
            0x5d,
            "Request rejected because the client program and identd report different user-ids",
        ),
        other => other.to_string(),
    };
    Error::new(ErrorKind::Socks, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_requests() {
        let p = Proxy::parse("127.0.0.1:3128").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.tls, p.host.as_str(), p.port), (false, "127.0.0.1", 3128));
        assert!(p.auth.is_none());
        let p = Proxy::parse("https://u%40x:p%3Aw@[::1]").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.tls, p.host.as_str(), p.port), (true, "::1", 443));
        // base64("u@x:p:w")
        assert_eq!(
            p.auth.as_ref().map(|a| a.to_str().ok()),
            Some(Some("Basic dUB4OnA6dw=="))
        );
        assert_eq!(
            Proxy::parse("http://").map_err(|e| e.kind),
            Err(ErrorKind::InvalidProxy)
        );
        assert_eq!(
            Proxy::parse("ftp://x:1").map_err(|e| e.kind),
            Err(ErrorKind::InvalidProxy)
        );
        let p = Proxy::parse("socks5h://u:p@127.0.0.1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.port, 1080);
        assert_eq!(
            p.socks,
            Some(Socks {
                version: 5,
                remote_dns: true,
                credentials: Some(("u".into(), "p".into()))
            })
        );
        let p = Proxy::parse("socks4://h:9").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.socks.map(|s| (s.version, s.remote_dns)), Some((4, false)));
    }

    #[test]
    fn selects_in_requests_order() {
        let map = ProxyMap::new(vec![
            ("all".into(), "http://a:1".into()),
            ("http://direct.test".into(), String::new()),
            ("https".into(), "http://s:2".into()),
        ]);
        let pick = |u: &str| {
            let url = Url::parse(u).unwrap_or_else(|e| panic!("{e}"));
            map.select(&url)
                .map(|p| p.map(|p| p.host))
                .map_err(|e| e.kind)
        };
        assert_eq!(pick("http://x.test/"), Ok(Some("a".to_string())));
        assert_eq!(pick("https://x.test/"), Ok(Some("s".to_string())));
        assert_eq!(pick("http://direct.test/"), Ok(None));
    }
}
