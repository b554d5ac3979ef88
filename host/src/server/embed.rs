//! `serve` without a socket: the same [`App`] and routes, answering requests
//! handed to it in memory. This is how the `serve_request` fuzz target reaches
//! `/mcp` and `/v1` (and everything behind them: the door, the token check,
//! the call path, the bundled tools) without a network round trip per input.

use super::{App, ServeError, ServeOptions, assemble, router};
use axum::body::Body;
use std::sync::Arc;
use std::time::Duration;
use toka_runtime::engine::TokaEngine;
use tower::ServiceExt;

/// A server built as `serve` builds it, manifests scanned once, answering
/// [`InProcess::request`]. Hot swaps are not watched: it serves the
/// directory as it was at the start.
pub struct InProcess {
    app: Arc<App>,
    router: axum::Router,
    background: tokio::task::JoinHandle<()>,
}

/// What the server answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The response headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of a header, if it is text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The method, path or a header is not valid HTTP.
    #[error("not a valid HTTP request: {0}")]
    Request(#[from] axum::http::Error),
    /// The body did not end within the time given.
    #[error("the response body did not end within {0:?}")]
    Slow(Duration),
    /// Reading the body failed.
    #[error("reading the response body: {0}")]
    Body(#[from] axum::Error),
}

/// Builds the server `serve` would build for `options` (tokens, grants,
/// limits, run store), without binding `options.addr`: requests must carry
/// `Host: ADDR` as a client of that address would.
///
/// # Errors
///
/// [`ServeError`] as `serve` would fail at start (keys, store, manifests
/// directory, audit log).
pub async fn in_process(
    engine: TokaEngine,
    options: ServeOptions,
) -> Result<InProcess, ServeError> {
    let auth = super::auth_from(&options)?;
    let addr = options.addr;
    let (app, background) = assemble(engine, options, auth, addr).await?;
    let router = router::router(app.clone());
    Ok(InProcess {
        app,
        router,
        background,
    })
}

impl InProcess {
    /// Sends one request through the routes, as the listener hands one over,
    /// and reads the whole body, waiting at most `patience` for it to end
    /// (an event stream never does).
    ///
    /// # Errors
    ///
    /// [`EmbedError`] when the request is not valid HTTP or the body does not
    /// end in time.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        patience: Duration,
    ) -> Result<Answer, EmbedError> {
        let mut builder = axum::http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(Body::from(body))?;
        // What the listener adds to every request: the peer, here a
        // loopback client of the address served.
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))));
        let response = match self.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = tokio::time::timeout(
            patience,
            axum::body::to_bytes(response.into_body(), usize::MAX),
        )
        .await
        .map_err(|_| EmbedError::Slow(patience))??;
        Ok(Answer {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    /// How many tools it serves.
    #[must_use]
    pub fn tools(&self) -> usize {
        self.app.catalog.snapshot().len()
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.app.stop.cancel();
        self.background.abort();
    }
}
