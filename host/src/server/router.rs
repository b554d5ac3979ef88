//! The routes of `serve` and the checks every request passes first (the
//! `Host` header, body size).

use super::error::error;
use super::{App, agents, metrics, status, tools};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;
use toka_spec::outcome::ErrorKind;

/// Every endpoint of the server.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(status::health))
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
        .layer(DefaultBodyLimit::max(app.options.max_body))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            check_host,
        ))
        .with_state(app)
}

/// Rejects requests whose `Host` is not the bound address (DNS rebinding).
async fn check_host(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !app.hosts.is_empty() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !app.hosts.iter().any(|h| h == host) {
            return error(
                ErrorKind::BadHost,
                &format!(
                    "Host `{host}` is not this server's address; requests must name {}",
                    app.hosts[0]
                ),
            );
        }
    }
    next.run(request).await
}
