//! One request, start to finish, on the tokio side: cookies, connection checkout, retries,
//! redirects, body reading with the network timeout, decoding and timing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{
    HeaderName, HeaderValue, ACCEPT_ENCODING, AUTHORIZATION, COOKIE, HOST, LOCATION,
    PROXY_AUTHORIZATION, SET_COOKIE,
};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use url::Url;

use super::cookies::Jar;
use super::pool::{connect, Body, ConnectionPool, Origin, PoolInner, Route, Sender};
use super::proxy::{Proxy, ProxyMap};
use super::response::BodyStream;
use super::tls::{TlsKey, Verify};
use super::{custom_reason, decode, Hop, HttpOutcome};
use crate::bridge::{self, Ticket};
use crate::errors::python::to_pyerr;
use crate::errors::{Error, ErrorKind};
use crate::time::with_timeout;

/// The longest request target the `http` crate's `Uri` holds (`u16::MAX - 1`).
const MAX_TARGET_LEN: usize = u16::MAX as usize - 1;

pub const USER_AGENT: &str = concat!("locust-rs/", env!("CARGO_PKG_VERSION"));

struct Config {
    /// The client's timeouts, or why one was refused. A refusal is raised by every request, as
    /// Locust's FastHttpSession raises a bad timeout from its requests, not from the user's
    /// constructor (where it would stop Locust from spawning any user).
    timeouts: Result<Timeouts, Error>,
    max_redirects: u32,
    max_retries: u32,
    /// The most bytes of a response body held in memory, decoded or not (None: no limit). A
    /// streamed body is not held, so not limited.
    max_body_size: Option<usize>,
    route: Arc<Route>,
    default_headers: HeaderMap,
}

#[derive(Clone, Copy)]
struct Timeouts {
    read: Option<Duration>,
    connect: Option<Duration>,
}

struct Shared {
    cfg: Config,
    cookies: Mutex<Jar>,
    /// The last URL parsed and its result: a load test sends the same URL over and over, and a
    /// clone costs less than a parse (host, IDNA, serialization).
    last_url: Mutex<Option<(Box<str>, Url)>>,
}

impl Shared {
    fn parse_url(&self, url: &str) -> Result<Url, Error> {
        if let Some((text, parsed)) = &*self.last_url.lock() {
            if **text == *url {
                return Ok(parsed.clone());
            }
        }
        let parsed = parse_url(url)?;
        *self.last_url.lock() = Some((url.into(), parsed.clone()));
        Ok(parsed)
    }
}

struct Spec {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Bytes,
    allow_redirects: bool,
    stream: bool,
    /// The read timeout of this request (the client's unless the request set its own).
    read_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    /// How connections are made: the client's route unless the request changed its TLS settings.
    route: Arc<Route>,
    /// A requests-style `proxies` dict, consulted for every hop (a redirect may change scheme or host).
    proxies: Option<Box<ProxyMap>>,
    /// `headers` is the complete set to send: the client's defaults (and Accept-Encoding) are left out.
    replace_defaults: bool,
    /// The redirect limit of this request (the client's unless the request set its own).
    max_redirects: u32,
    /// Rewrite methods on redirects as requests does (301 changes only POST) instead of as
    /// geventhttpclient does (301-303 change every method but HEAD).
    requests_redirects: bool,
}

impl Spec {
    /// The origin of the current URL with the route to it.
    fn origin(&self) -> Result<Origin, Error> {
        let route = match &self.proxies {
            None => self.route.clone(),
            Some(map) => {
                let proxy = map.select(&self.url)?;
                if proxy == self.route.proxy {
                    self.route.clone()
                } else {
                    Arc::new(Route {
                        proxy,
                        ..(*self.route).clone()
                    })
                }
            }
        };
        Ok(origin_of(&self.url, route))
    }
}

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

fn parse_url(url: &str) -> Result<Url, Error> {
    let u =
        Url::parse(url).map_err(|e| Error::new(ErrorKind::InvalidUrl, format!("{e}: {url:?}")))?;
    match u.scheme() {
        "http" | "https" => {}
        other => {
            return Err(Error::new(
                ErrorKind::UnsupportedScheme,
                format!("unsupported scheme {other:?}"),
            ))
        }
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(Error::new(
            ErrorKind::InvalidUrl,
            format!("no host in URL {url:?}"),
        ));
    }
    Ok(u)
}

fn origin_of(url: &Url, route: Arc<Route>) -> Origin {
    let https = url.scheme() == "https";
    Origin {
        https,
        host: url.host_str().unwrap_or_default().to_string(),
        port: url.port().unwrap_or(if https { 443 } else { 80 }),
        route,
    }
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

async fn execute(
    shared: Arc<Shared>,
    pool: Arc<PoolInner>,
    mut spec: Spec,
) -> Result<HttpOutcome, Error> {
    let start = Instant::now();
    let limit = shared.cfg.max_body_size;
    let permit = pool
        .limit
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Error::new(ErrorKind::Internal, "connection pool closed"))?;
    let max_redirects = if spec.allow_redirects {
        spec.max_redirects
    } else {
        0
    };
    let mut history = Vec::new();
    loop {
        let origin = spec.origin()?;
        // Boxed, it is allocated when reached instead of making every request's future 1 KiB
        // larger: the Python thread copies that future on submit (3 % of its time at u=50).
        let (resp, sender) = Box::pin(send_with_retries(&shared, &pool, &spec, &origin)).await?;
        // An HTTP/1.1 socket already times out each read (timed_io); an HTTP/2 stream times out each frame.
        let frame_timeout = match sender {
            Sender::H1(..) => None,
            Sender::H2(_) => spec.read_timeout,
        };
        let status = resp.status().as_u16();
        store_cookies(&shared, resp.headers(), &spec.url);
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        if let (true, true, Some(location)) = (max_redirects > 0, is_redirect(status), location) {
            if history.len() as u32 >= max_redirects {
                let mut e = Error::new(
                    ErrorKind::TooManyRedirects,
                    format!("Redirection limit reached ({})", spec.max_redirects),
                );
                if !history.is_empty() {
                    e.request = Some(Box::new((spec.method.to_string(), spec.url.to_string())));
                }
                return Err(e);
            }
            let (parts, body) = resp.into_parts();
            // Reading the redirect's body frees its connection for the next hop; requests keeps
            // it as the history response's content.
            let (raw, read_error) = read_body(body, frame_timeout, limit).await;
            match read_error {
                Some(e) if e.kind == ErrorKind::BodyTooLarge => return Err(e),
                Some(_) => {}
                None => pool.checkin(&origin, sender),
            }
            let hop_body = match decode::decode(&parts.headers, raw, limit) {
                Err(e) if e.kind == ErrorKind::BodyTooLarge => return Err(e),
                decoded => decoded.unwrap_or_default(),
            };
            let next = spec.url.join(&location).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidUrl,
                    format!("bad redirect location {location:?}: {e}"),
                )
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(Error::new(
                    ErrorKind::UnsupportedScheme,
                    format!("refusing to follow redirect to {:?} URL", next.scheme()),
                ));
            }
            history.push(Hop {
                status,
                url: spec.url.to_string(),
                reason: custom_reason(&parts.extensions),
                headers: parts.headers,
                body: hop_body,
            });
            redirect(&mut spec, &origin, status, next);
            continue;
        }
        if spec.stream {
            let (parts, body) = resp.into_parts();
            return Ok(HttpOutcome {
                status,
                reason: custom_reason(&parts.extensions),
                version: parts.version,
                headers: parts.headers,
                body: Bytes::new(),
                url: spec.url.into(),
                history,
                response_time: start.elapsed().as_secs_f64() * 1000.0,
                body_error: None,
                stream: Some(BodyStream::new(
                    body,
                    sender,
                    origin,
                    pool.clone(),
                    permit,
                    spec.read_timeout,
                )),
            });
        }
        let (parts, body) = resp.into_parts();
        let (raw, read_error) = read_body(body, frame_timeout, limit).await;
        let response_time = start.elapsed().as_secs_f64() * 1000.0;
        if read_error.is_none() {
            pool.checkin(&origin, sender);
        }
        let (body, body_error) = match read_error {
            Some(e) => (raw, Some(e)),
            None => match decode::decode(&parts.headers, raw, limit) {
                Ok(b) => (b, None),
                Err(e) => (Bytes::new(), Some(e)),
            },
        };
        drop(permit);
        return Ok(HttpOutcome {
            status,
            reason: custom_reason(&parts.extensions),
            version: parts.version,
            headers: parts.headers,
            body,
            url: spec.url.into(),
            history,
            response_time,
            body_error,
            stream: None,
        });
    }
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Rewrites the request for the next hop as geventhttpclient does (RFC 9110 §15.4).
fn redirect(spec: &mut Spec, origin: &Origin, status: u16, next: Url) {
    if matches!(status, 301..=303) {
        let to_get = if spec.requests_redirects && status == 301 {
            spec.method == Method::POST
        } else {
            spec.method != Method::HEAD
        };
        if to_get {
            spec.method = Method::GET;
        }
        spec.body = Bytes::new();
        for h in [
            http::header::CONTENT_LENGTH,
            http::header::CONTENT_TYPE,
            http::header::CONTENT_ENCODING,
        ] {
            spec.headers.remove(h);
        }
    }
    if !origin_of(&next, origin.route.clone()).same_site(origin) {
        spec.headers.remove(AUTHORIZATION);
    }
    spec.url = next;
}

fn store_cookies(shared: &Shared, headers: &HeaderMap, url: &Url) {
    let mut values = headers.get_all(SET_COOKIE).iter().peekable();
    if values.peek().is_none() {
        return;
    }
    let mut store = shared.cookies.lock();
    for v in values {
        if let Ok(s) = v.to_str() {
            // A malformed or foreign-domain cookie is ignored, as browsers and http.cookiejar do.
            let _ = store.parse(s, url);
        }
    }
}

fn cookie_header(shared: &Shared, url: &Url) -> Option<HeaderValue> {
    shared.cookies.lock().header(url)
}

async fn send_with_retries(
    shared: &Shared,
    pool: &PoolInner,
    spec: &Spec,
    origin: &Origin,
) -> Result<(Response<Incoming>, Sender), Error> {
    let mut attempt = 0;
    loop {
        match send_once(shared, pool, spec, origin).await {
            Ok(ok) => return Ok(ok),
            Err(e)
                if e.kind.is_retryable()
                    && is_idempotent(&spec.method)
                    && attempt < shared.cfg.max_retries =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn build_request(
    shared: &Shared,
    spec: &Spec,
    origin: &Origin,
    h2: bool,
) -> Result<Request<Body>, Error> {
    let forwarded = origin.forwarded();
    let absolute = h2 || forwarded.is_some();
    let target = if absolute {
        spec.url.as_str().split('#').next().unwrap_or_default()
    } else {
        let s = &spec.url[url::Position::BeforePath..url::Position::AfterQuery];
        if s.is_empty() {
            "/"
        } else {
            s
        }
    };
    let mut req = Request::builder()
        .method(spec.method.clone())
        .uri(target)
        .body(Body::new(spec.body.clone()))
        .map_err(|e| {
            let message = if target.len() > MAX_TARGET_LEN {
                format!(
                    "URL too long: a request target of {} bytes, over the {MAX_TARGET_LEN} the HTTP \
                     library (hyper) can send",
                    target.len()
                )
            } else {
                e.to_string()
            };
            Error::new(ErrorKind::InvalidUrl, message)
        })?;
    let headers = req.headers_mut();
    if !h2 {
        // host[:port] as the URL holds it (no default port, IPv6 in brackets), without formatting.
        let host = &spec.url[url::Position::BeforeHost..url::Position::AfterPort];
        if let Ok(v) = HeaderValue::from_str(host) {
            headers.insert(HOST, v);
        }
    }
    if !spec.replace_defaults {
        for (k, v) in &shared.cfg.default_headers {
            headers.insert(k, v.clone());
        }
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
    }
    let mut last: Option<HeaderName> = None;
    for (k, v) in &spec.headers {
        // A fresh name replaces the default; repeated values of one name are all kept.
        if last.as_ref() != Some(k) {
            headers.remove(k);
            last = Some(k.clone());
        }
        headers.append(k, v.clone());
    }
    if spec.body.is_empty() && matches!(spec.method, Method::POST | Method::PUT | Method::PATCH) {
        // An empty body is still a body for these methods; servers may wait for a length.
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    if let Some(auth) = forwarded.and_then(|p| p.auth.as_ref()) {
        if !headers.contains_key(PROXY_AUTHORIZATION) {
            headers.insert(PROXY_AUTHORIZATION, auth.clone());
        }
    }
    if !spec.headers.contains_key(COOKIE) {
        if let Some(c) = cookie_header(shared, &spec.url) {
            headers.insert(COOKIE, c);
        }
    }
    Ok(req)
}

async fn send_once(
    shared: &Shared,
    pool: &PoolInner,
    spec: &Spec,
    origin: &Origin,
) -> Result<(Response<Incoming>, Sender), Error> {
    let (mut sender, mut reused) = match pool.checkout(origin) {
        Some(s) => (s, true),
        None => (
            Box::pin(connect(origin, spec.connect_timeout)).await?,
            false,
        ),
    };
    loop {
        if let Sender::H1(s, _) = &mut sender {
            if s.ready().await.is_err() {
                if reused {
                    sender = Box::pin(connect(origin, spec.connect_timeout)).await?;
                    reused = false;
                    continue;
                }
                return Err(Error::new(
                    ErrorKind::Closed,
                    "connection closed before the request was sent",
                ));
            }
        }
        let req = build_request(shared, spec, origin, matches!(sender, Sender::H2(_)))?;
        let sent = match &mut sender {
            // The socket times out each read (timed_io), headers and body alike, as Python's do.
            Sender::H1(s, limit) => {
                limit.set(spec.read_timeout);
                Ok(s.try_send_request(req).await)
            }
            // Streams share one connection: the headers get the whole timeout, the body each frame.
            Sender::H2(s) => with_timeout(spec.read_timeout, s.try_send_request(req)).await,
        };
        match sent {
            Err(()) => return Err(Error::timeout()),
            Ok(Ok(resp)) => return Ok((resp, sender)),
            Ok(Err(mut e)) => {
                let err = Error::from_hyper(e.error());
                let unsent = e.take_message().is_some();
                // A kept-alive connection the server closed meanwhile: the request never got an
                // answer, so send it again on a fresh connection (as browsers do).
                let stale = reused
                    && (unsent || (err.kind == ErrorKind::Closed && is_idempotent(&spec.method)));
                if stale {
                    sender = Box::pin(connect(origin, spec.connect_timeout)).await?;
                    reused = false;
                    continue;
                }
                return Err(err);
            }
        }
    }
}

/// The most a body's buffer is sized up front from its Content-Length (see `read_body`).
const PREALLOCATE_MAX: usize = 256 << 20;

/// Reads a whole body within `timeout` per frame (None on HTTP/1.1, whose socket times out each
/// read); on failure returns what arrived so far together with the error. Over `limit` bytes it
/// stops and drops what it read: a body that never ends must fail, not fill the memory. A
/// Content-Length over the limit fails before anything is read.
pub async fn read_body(
    mut body: Incoming,
    timeout: Option<Duration>,
    limit: Option<usize>,
) -> (Bytes, Option<Error>) {
    let limit = limit.unwrap_or(usize::MAX);
    let declared = hyper::body::Body::size_hint(&body).lower();
    if declared > limit as u64 {
        return (Bytes::new(), Some(Error::body_too_large(limit)));
    }
    // A body that comes in several frames is gathered into one buffer. Sized from Content-Length
    // at once, it is allocated once and never copied as it grows: growing by doubling moved about
    // twice the body and briefly held the old buffer beside the new one. The cap keeps a declared
    // length the server never sends from reserving more than it would cost to grow into.
    let expected = usize::try_from(declared)
        .unwrap_or(usize::MAX)
        .min(PREALLOCATE_MAX);
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut len = 0usize;
    loop {
        let frame = match with_timeout(timeout, body.frame()).await {
            Err(()) => return (join(first, rest), Some(Error::timeout())),
            Ok(None) => return (join(first, rest), None),
            Ok(Some(Err(e))) => return (join(first, rest), Some(Error::from_hyper(&e))),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len = len.saturating_add(data.len());
        if len > limit {
            return (Bytes::new(), Some(Error::body_too_large(limit)));
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut b = BytesMut::with_capacity(expected.max(f.len() + data.len()));
                b.extend_from_slice(f);
                b.extend_from_slice(&data);
                rest = Some(b);
            }
            (Some(_), Some(b)) => b.extend_from_slice(&data),
        }
    }
}

fn join(first: Option<Bytes>, rest: Option<BytesMut>) -> Bytes {
    match (first, rest) {
        (_, Some(b)) => b.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    }
}
