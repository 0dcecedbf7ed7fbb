//! One exchange, start to finish, on the tokio side: cookies, connection checkout, retries,
//! redirects, body reading with the network timeout, decoding and timing. `client.rs` turns a
//! Python call into a `Spec` and submits `execute`.

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
use url::Url;

use super::cookies::Jar;
use super::pool::{connect, Body, Origin, PoolInner, Route, Sender};
use super::proxy::ProxyMap;
use super::response::BodyStream;
use super::{custom_reason, decode, Hop, HttpOutcome};
use crate::errors::{Error, ErrorKind};
use crate::net::arrival;
use crate::time::with_timeout;

/// The longest request target the `http` crate's `Uri` holds (`u16::MAX - 1`).
const MAX_TARGET_LEN: usize = u16::MAX as usize - 1;

pub(super) struct Config {
    /// The client's timeouts, or why one was refused. A refusal is raised by every request, as
    /// Locust's FastHttpSession raises a bad timeout from its requests, not from the user's
    /// constructor (where it would stop Locust from spawning any user).
    pub(super) timeouts: Result<Timeouts, Error>,
    pub(super) max_redirects: u32,
    pub(super) max_retries: u32,
    /// The most bytes of a response body held in memory, decoded or not (None: no limit). A
    /// streamed body is not held, so not limited.
    pub(super) max_body_size: Option<usize>,
    pub(super) route: Arc<Route>,
    pub(super) default_headers: HeaderMap,
}

#[derive(Clone, Copy)]
pub(super) struct Timeouts {
    pub(super) read: Option<Duration>,
    pub(super) connect: Option<Duration>,
}

pub(super) struct Shared {
    pub(super) cfg: Config,
    pub(super) cookies: Mutex<Jar>,
    /// The last URL parsed and its result: a load test sends the same URL over and over, and a
    /// clone costs less than a parse (host, IDNA, serialization).
    pub(super) last_url: Mutex<Option<(Box<str>, Url)>>,
}

impl Shared {
    pub(super) fn parse_url(&self, url: &str) -> Result<Url, Error> {
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

pub(super) struct Spec {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
    pub(super) allow_redirects: bool,
    pub(super) stream: bool,
    /// The read timeout of this request (the client's unless the request set its own).
    pub(super) read_timeout: Option<Duration>,
    pub(super) connect_timeout: Option<Duration>,
    /// How connections are made: the client's route unless the request changed its TLS settings.
    pub(super) route: Arc<Route>,
    /// A requests-style `proxies` dict, consulted for every hop (a redirect may change scheme or host).
    pub(super) proxies: Option<Box<ProxyMap>>,
    /// `headers` is the complete set to send: the client's defaults (and Accept-Encoding) are left out.
    pub(super) replace_defaults: bool,
    /// The redirect limit of this request (the client's unless the request set its own).
    pub(super) max_redirects: u32,
    /// Rewrite methods on redirects as requests does (301 changes only POST) instead of as
    /// geventhttpclient does (301-303 change every method but HEAD).
    pub(super) requests_redirects: bool,
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

pub(super) fn parse_url(url: &str) -> Result<Url, Error> {
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

pub(super) async fn execute(
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
        let (resp, sender, handed) =
            Box::pin(send_with_retries(&shared, &pool, &spec, &origin)).await?;
        // An HTTP/1.1 socket already times out each read (timed_io); an HTTP/2 stream times out each frame.
        let frame_timeout = match sender {
            Sender::H1(..) => None,
            Sender::H2(..) => spec.read_timeout,
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
                response_time: time_of(&sender, start, handed),
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
        let response_time = time_of(&sender, start, handed);
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

/// A response's time in ms, from `start` to its end (`arrival::response_time`; docs/metrics.md,
/// "Which clock"). An HTTP/2 connection carries many streams, and its task reads ahead of them:
/// when a stream is seen to end, the connection's last stamped read is at or after the one that
/// carried the stream's last frame, and at or before now. That bound is its end, and its start is
/// the handing of the request (its first write may be another stream's).
fn time_of(sender: &Sender, start: Instant, handed: Instant) -> f64 {
    let why = arrival::unstamped_reason();
    let time = arrival::response_time(sender.wire(), start, handed, why);
    time.as_secs_f64() * 1000.0
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
) -> Result<(Response<Incoming>, Sender, Instant), Error> {
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
) -> Result<(Response<Incoming>, Sender, Instant), Error> {
    let (mut sender, mut reused) = match pool.checkout(origin) {
        Some(s) => (s, true),
        None => (
            Box::pin(connect(origin, spec.connect_timeout)).await?,
            false,
        ),
    };
    loop {
        if let Sender::H1(s, ..) = &mut sender {
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
        let req = build_request(shared, spec, origin, matches!(sender, Sender::H2(..)))?;
        let handed = Instant::now();
        let sent = match &mut sender {
            // The socket times out each read (timed_io), headers and body alike, as Python's do.
            Sender::H1(s, limit, wire) => {
                limit.set(spec.read_timeout);
                if let Some(wire) = wire {
                    wire.arm_send();
                }
                Ok(s.try_send_request(req).await)
            }
            // Streams share one connection: the headers get the whole timeout, the body each frame.
            Sender::H2(s, _) => with_timeout(spec.read_timeout, s.try_send_request(req)).await,
        };
        match sent {
            Err(()) => return Err(Error::timeout()),
            Ok(Ok(resp)) => return Ok((resp, sender, handed)),
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
