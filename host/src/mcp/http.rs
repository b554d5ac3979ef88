//! `/mcp` on `serve`: the SDK's streamable-HTTP service nested into the
//! server's router, on the same port, behind the same door checks (Host,
//! Origin, body size, tokens) as the HTTP API, with the SDK's own Host and
//! Origin checks set to the same lists (its default origin list is empty,
//! which would turn its check off).

use super::{Hub, McpHandler};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the service checks itself.
pub(crate) struct HttpOptions {
    /// `Host` values accepted (empty: any, for a server answering remote
    /// names; the router checks the rest).
    pub(crate) hosts: Vec<String>,
    /// Web origins accepted.
    pub(crate) origins: Vec<String>,
    /// Largest request body.
    pub(crate) max_body: usize,
    /// Cancelled when the server stops: sessions end.
    pub(crate) stop: CancellationToken,
}

/// The `/mcp` service.
pub(crate) fn service(
    hub: Arc<Hub>,
    options: HttpOptions,
) -> StreamableHttpService<McpHandler, LocalSessionManager> {
    // A plain JSON answer when a call sends nothing before its result (the
    // SDK falls back to an event stream as soon as a progress notification
    // comes first): no stream to open and close for every call.
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(options.stop)
        .with_max_request_body_bytes(options.max_body)
        .with_json_response(true);
    config = if options.hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(options.hosts)
    };
    if !options.origins.is_empty() {
        config = config.with_allowed_origins(options.origins);
    }
    StreamableHttpService::new(
        move || Ok(McpHandler::new(hub.clone())),
        LocalSessionManager::default().into(),
        config,
    )
}
