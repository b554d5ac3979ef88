//! The routes of `serve` and the checks every request passes first, in
//! order: the header block's size (431), the `Host` header (421: DNS
//! rebinding), the `Origin` of a browser request (403: cross-site
//! requests), a declared body over `--max-body` (413, before reading) and a
//! body that is not JSON (415). Every error answer, including the router's
//! own 404 and 405, has the one JSON shape of [`super::error`].

use super::error::error;
use super::{App, agents, auth, metrics, status, tools};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use axum::routing::{any, get, post};
use std::sync::Arc;
use toka_spec::outcome::ErrorKind;

/// The largest header block answered normally.
pub(crate) const MAX_HEADER_BYTES: usize = 16 << 10;

/// Every endpoint of the server.
pub(crate) fn router(app: Arc<App>) -> Router {
    let mcp = mcp_endpoint(&app);
    Router::new()
        .route("/health", get(status::health))
        .route("/ready", get(status::ready))
        .route("/status", get(status::status))
        .route("/v1/tools", get(tools::list_tools))
        .route("/v1/tools/{name}/invoke", post(tools::invoke_tool))
        .route(
            "/v1/agents",
            post(agents::spawn_agent).get(agents::list_agents),
        )
        .route(
            "/v1/agents/{id}",
            get(agents::get_agent).delete(agents::cancel_agent),
        )
        .route("/v1/events", get(status::events))
        .route("/metrics", get(metrics::metrics))
        .route(
            "/.well-known/oauth-protected-resource",
            get(auth::resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(auth::resource_metadata),
        )
        .route(
            "/mcp",
            any(move |request: axum::extract::Request| {
                let mcp = mcp.clone();
                async move { mcp.handle(request).await }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.options.max_body))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            check_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            json_errors,
        ))
        .with_state(app)
}

/// The MCP endpoint, with the SDK's own Host and Origin checks set to the
/// router's lists.
fn mcp_endpoint(app: &Arc<App>) -> Arc<crate::mcp::http::Endpoint> {
    let mut origins: Vec<String> = app.hosts.iter().map(|h| format!("http://{h}")).collect();
    origins.extend(app.options.allowed_origins.iter().cloned());
    Arc::new(crate::mcp::http::Endpoint::new(
        app.mcp.clone(),
        crate::mcp::http::HttpOptions {
            hosts: app.hosts.clone(),
            origins,
            max_body: app.options.max_body,
            stop: app.stop.clone(),
        },
    ))
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        ErrorKind::NotFound,
        &format!(
            "no endpoint {}; see `toka-host serve --help` for the endpoints",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    error(
        ErrorKind::MethodNotAllowed,
        &format!("{} does not take {method}", uri.path()),
    )
}

/// Answers a request that fails the door's checks, before any handler runs.
async fn check_request(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(refusal) = refuse(&app, request.method(), request.headers()) {
        return refusal;
    }
    next.run(request).await
}

fn refuse(app: &App, method: &Method, headers: &HeaderMap) -> Option<Response> {
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        let mut r = error(
            ErrorKind::TooLarge,
            &format!("the request's headers are larger than {MAX_HEADER_BYTES} bytes"),
        );
        *r.status_mut() = axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        return Some(r);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !app.hosts.is_empty() && !app.hosts.iter().any(|h| h == host) {
        return Some(error(
            ErrorKind::BadHost,
            &format!(
                "Host `{host}` is not this server's address; requests must name {}",
                app.hosts[0]
            ),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(app, host, origin) {
            return Some(error(
                ErrorKind::Denied,
                &format!(
                    "requests from the web origin `{origin}` are refused: a page elsewhere may not call this server's tools (add --allowed-origin {origin} to serve if it should)"
                ),
            ));
        }
    }
    if method == Method::POST {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > app.options.max_body as u64) {
            return Some(error(
                ErrorKind::TooLarge,
                &format!(
                    "the request body is larger than {} bytes (--max-body)",
                    app.options.max_body
                ),
            ));
        }
        let has_body =
            declared.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if has_body && !json {
            return Some(error(
                ErrorKind::UnsupportedMediaType,
                "POST bodies must be JSON: send `Content-Type: application/json`",
            ));
        }
    }
    None
}

/// A browser's `Origin` is this server's own (`http://HOST` for one of its
/// names, or the `Host` it was asked for when it answers remote names), or
/// one the operator allowed.
fn origin_allowed(app: &App, host: &str, origin: &str) -> bool {
    if app.options.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    let own = |h: &str| origin == format!("http://{h}") || origin == format!("https://{h}");
    if app.hosts.is_empty() {
        own(host)
    } else {
        app.hosts.iter().any(|h| own(h))
    }
}

/// Gives every error answer the one JSON shape, whatever produced it (an
/// extractor's plain-text rejection, a body over the limit while it was
/// read).
async fn json_errors(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (kind, message) = match status.as_u16() {
        413 => (
            ErrorKind::TooLarge,
            format!(
                "the request body is larger than {} bytes (--max-body)",
                app.options.max_body
            ),
        ),
        415 => (
            ErrorKind::UnsupportedMediaType,
            "POST bodies must be JSON: send `Content-Type: application/json`".into(),
        ),
        404 => (ErrorKind::NotFound, "not found".into()),
        405 => (ErrorKind::MethodNotAllowed, "method not allowed".into()),
        s if s < 500 => (
            ErrorKind::InvalidInput,
            format!("the request was refused ({status})"),
        ),
        _ => (ErrorKind::Host, format!("the server failed ({status})")),
    };
    let mut r = error(kind, &message);
    *r.status_mut() = status;
    r
}
