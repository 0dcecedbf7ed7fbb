//! The HTTP client Python holds (`Client`): a user's settings, cookies and pool, and the request
//! call that turns Python's arguments into an exchange (`exchange.rs`) and submits it through the
//! bridge.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::cookies::Jar;
use super::exchange::{execute, parse_url, Config, Shared, Spec, Timeouts};
use super::pool::{ConnectionPool, Route};
use super::proxy::{Proxy, ProxyMap};
use super::tls::{TlsKey, Verify};
use crate::bridge::{self, Ticket};
use crate::errors::python::to_pyerr;
use crate::errors::{Error, ErrorKind};

pub const USER_AGENT: &str = concat!("locust-rs/", env!("CARGO_PKG_VERSION"));

/// One user's HTTP client: its settings and cookies, plus the pool its connections live in.
#[pyclass(module = "locust_rs._native", frozen)]
pub struct Client {
    shared: Arc<Shared>,
    pool: Py<ConnectionPool>,
}

/// A header value as Python's HTTP clients send it: a `str` in latin-1 (http.client and
/// geventhttpclient both encode it so), `bytes` as they are, anything else as its `str()`.
fn header_value(name: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>) -> PyResult<HeaderValue> {
    let value = if let Ok(b) = v.cast::<PyBytes>() {
        HeaderValue::from_bytes(b.as_bytes())
    } else {
        let text = match v.cast::<PyString>() {
            Ok(s) => s.to_cow()?,
            Err(_) => std::borrow::Cow::Owned(v.str()?.to_cow()?.into_owned()),
        };
        if text.is_ascii() {
            HeaderValue::from_str(&text)
        } else {
            match text
                .chars()
                .map(u8::try_from)
                .collect::<Result<Vec<u8>, _>>()
            {
                Ok(latin1) => HeaderValue::from_bytes(&latin1),
                Err(_) => return Err(invalid_value(name, v)),
            }
        }
    };
    value.map_err(|_| invalid_value(name, v))
}

// geventhttpclient's words, so that Locust's FastHttpUser users see the same ValueError.
fn invalid_value(name: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>) -> PyErr {
    let repr = |o: &Bound<'_, PyAny>| o.repr().map(|r| r.to_string()).unwrap_or_default();
    PyValueError::new_err(format!(
        "invalid value for header field {}: {}",
        repr(name),
        repr(v)
    ))
}

fn header_map(headers: Option<&Bound<'_, PyDict>>) -> PyResult<HeaderMap> {
    let mut map = HeaderMap::new();
    if let Some(h) = headers {
        super::check_header_count(h.len()).map_err(to_pyerr)?;
        for (k, v) in h.iter() {
            let name: String = k.extract()?;
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                let repr = k.repr().map(|r| r.to_string()).unwrap_or_default();
                PyValueError::new_err(format!("invalid header field name {repr}"))
            })?;
            if v.is_none() {
                continue;
            }
            map.append(name, header_value(&k, &v)?);
        }
    }
    Ok(map)
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (
        *, network_timeout = None, connection_timeout = None, max_redirects = 30, max_retries = 0,
        insecure = true, headers = None, proxy_host = None, proxy_port = None, pool = None,
        concurrency = 10, http2_prior_knowledge = false, ca_bundle = None, client_cert = None,
        max_body_size = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        network_timeout: Option<f64>,
        connection_timeout: Option<f64>,
        max_redirects: u32,
        max_retries: u32,
        insecure: bool,
        headers: Option<&Bound<'_, PyDict>>,
        proxy_host: Option<String>,
        proxy_port: Option<u16>,
        pool: Option<Py<ConnectionPool>>,
        concurrency: usize,
        http2_prior_knowledge: bool,
        ca_bundle: Option<String>,
        client_cert: Option<(String, Option<String>)>,
        max_body_size: Option<usize>,
    ) -> PyResult<Self> {
        let mut default_headers = HeaderMap::new();
        default_headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        for (k, v) in header_map(headers)?.drain() {
            if let Some(k) = k {
                default_headers.insert(k, v);
            }
        }
        let proxy = proxy_host.map(|h| Proxy::plain(h, proxy_port.unwrap_or(8080)));
        let pool = match pool {
            Some(p) => p,
            None => Py::new(py, ConnectionPool::new(concurrency))?,
        };
        let timeouts = crate::time::timeout(network_timeout).and_then(|read| {
            Ok(Timeouts {
                read,
                connect: crate::time::timeout(connection_timeout)?,
            })
        });
        let cfg = Config {
            timeouts,
            max_redirects,
            max_retries,
            max_body_size,
            route: Arc::new(Route {
                tls: TlsKey {
                    verify: match ca_bundle {
                        Some(path) if !insecure => Verify::Bundle(path),
                        _ => TlsKey::insecure(insecure).verify,
                    },
                    client_cert,
                },
                proxy,
                http2_prior_knowledge,
            }),
            default_headers,
        };
        Ok(Client {
            shared: Arc::new(Shared {
                cfg,
                cookies: Mutex::new(Jar::default()),
                last_url: Mutex::new(None),
            }),
            pool,
        })
    }

    #[getter]
    fn pool(&self, py: Python<'_>) -> Py<ConnectionPool> {
        self.pool.clone_ref(py)
    }

    /// Submits a request and returns its ticket at once. `headers` is a dict of extra headers;
    /// `body` the encoded request body. Errors (even a malformed URL) arrive through the ticket.
    /// `timeout` = (connect, read) seconds (None: no limit) replaces the client's timeouts for
    /// this request; `insecure` its certificate verification (requests' per-request arguments);
    /// `replace_defaults`: `headers` are all the headers to send (a session that dropped defaults);
    /// `max_redirects` replaces the client's redirect limit; `requests_redirects` follows
    /// requests' method rewriting on redirects. `ca_bundle` (a PEM file or directory: requests' `verify="..."`), `client_cert` (requests'
    /// `cert=`: a PEM chain and its key file, or one file with both) and `proxies` (requests'
    /// dict as (key, proxy URL) pairs, chosen per hop) change how this request connects.
    #[pyo3(signature = (
        method, url, headers = None, body = None, allow_redirects = true, stream = false,
        timeout = None, insecure = None, replace_defaults = false, max_redirects = None,
        requests_redirects = false, ca_bundle = None, client_cert = None,
        proxies = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyDict>>,
        body: Option<&[u8]>,
        allow_redirects: bool,
        stream: bool,
        timeout: Option<(Option<f64>, Option<f64>)>,
        insecure: Option<bool>,
        replace_defaults: bool,
        max_redirects: Option<u32>,
        requests_redirects: bool,
        ca_bundle: Option<String>,
        client_cert: Option<(String, Option<String>)>,
        proxies: Option<Vec<(String, String)>>,
    ) -> PyResult<Ticket> {
        let cfg = &self.shared.cfg;
        let max_redirects = max_redirects.unwrap_or(cfg.max_redirects);
        let Timeouts {
            read: read_timeout,
            connect: connect_timeout,
        } = match timeout {
            Some((connect, read)) => Timeouts {
                connect: crate::time::timeout(connect).map_err(to_pyerr)?,
                read: crate::time::timeout(read).map_err(to_pyerr)?,
            },
            None => cfg.timeouts.clone().map_err(to_pyerr)?,
        };
        let route = if insecure.is_some() || ca_bundle.is_some() || client_cert.is_some() {
            let verify = match (insecure, ca_bundle) {
                (Some(true), _) => Verify::Off,
                (_, Some(path)) => Verify::Bundle(path),
                (Some(false), None) => Verify::WebPki,
                (None, None) => cfg.route.tls.verify.clone(),
            };
            let tls = TlsKey {
                verify,
                client_cert,
            };
            if tls == cfg.route.tls {
                cfg.route.clone()
            } else {
                Arc::new(Route {
                    tls,
                    ..(*cfg.route).clone()
                })
            }
        } else {
            cfg.route.clone()
        };
        let proxies = proxies.map(|p| Box::new(ProxyMap::new(p)));
        let headers = header_map(headers)?;
        let body = body.map(Bytes::copy_from_slice).unwrap_or_default();
        let upper;
        let name = if method.bytes().any(|b| b.is_ascii_lowercase()) {
            upper = method.to_ascii_uppercase();
            upper.as_str()
        } else {
            method
        };
        let method = Method::from_bytes(name.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::Protocol,
                format!("invalid HTTP method {method:?}"),
            )
        });
        // The URL is parsed on the tokio side, off the Python thread, which is the one that limits a run.
        let url = url.to_owned();
        let shared = self.shared.clone();
        let pool = self.pool.get().current();
        let fut = async move {
            let result = match method.and_then(|m| shared.parse_url(&url).map(|u| (m, u))) {
                Ok((method, url)) => {
                    execute(
                        shared,
                        pool,
                        Spec {
                            method,
                            url,
                            headers,
                            body,
                            allow_redirects,
                            stream,
                            read_timeout,
                            connect_timeout,
                            route,
                            proxies,
                            replace_defaults,
                            max_redirects,
                            requests_redirects,
                        },
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            result
        };
        if cfg!(debug_assertions) && std::env::var_os("LOCUST_RS_DEBUG_SIZES").is_some() {
            eprintln!("request future: {} bytes", std::mem::size_of_val(&fut));
        }
        bridge::submit(fut)
    }

    /// The cookies this client holds, as (name, value, domain, path) tuples; the domain is empty
    /// for a cookie set without one (sent to every host).
    fn cookies(&self) -> Vec<(String, String, String, String)> {
        self.shared.cookies.lock().list()
    }

    /// Stores a cookie without a domain, sent to every host on paths under `path`, as
    /// http.cookiejar sends `requests.cookies.create_cookie(name, value)`.
    fn set_cookie_anywhere(&self, name: String, value: String, path: String) {
        self.shared.cookies.lock().set_anywhere(name, value, path);
    }

    /// Stores a cookie as if `url` had sent it in a Set-Cookie header.
    fn set_cookie(&self, set_cookie: &str, url: &str) -> PyResult<()> {
        let url = parse_url(url).map_err(to_pyerr)?;
        self.shared
            .cookies
            .lock()
            .parse(set_cookie, &url)
            .map_err(PyValueError::new_err)
    }

    /// The Cookie header this client would send to `url`, if any.
    fn cookie_header(&self, url: &str) -> PyResult<Option<String>> {
        let url = parse_url(url).map_err(to_pyerr)?;
        Ok(self
            .shared
            .cookies
            .lock()
            .header(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned)))
    }

    fn clear_cookies(&self) {
        self.shared.cookies.lock().clear();
    }
}
