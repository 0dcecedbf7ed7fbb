//! The layer around every route that records each request in the server's metrics and, when
//! enabled, the access log. A plain tower service rather than `middleware::from_fn`: it sits on
//! the path of every `/health` call, and this way costs one boxed future per request.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::response::Response;
use tower_layer::Layer;
use tower_service::Service;

use super::Shared;
use crate::metrics::UNMATCHED;

#[derive(Clone)]
pub struct ObserveLayer {
    pub state: Shared,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    state: Shared,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = self.state.clone();
        let method = request.method().clone();
        // an Arc clone, not a copy of the pattern
        let route = request.extensions().get::<MatchedPath>().cloned();
        // only the access log needs the path and the client
        let logged = state.access_log.as_ref().map(|_| {
            let path = request.uri().path_and_query().map_or_else(
                || request.uri().path().to_owned(),
                |p| p.as_str().to_owned(),
            );
            let client = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            (path, client)
        });
        let in_flight = state.metrics.begin();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let status = response.status().as_u16();
            let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
            let took = in_flight.finish(&method, route, status);
            if let (Some(log), Some((path, client))) = (&state.access_log, logged) {
                log.log(client, method.as_str(), &path, status, took);
            }
            Ok(response)
        })
    }
}
