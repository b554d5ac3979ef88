//! `/mcp` on `serve`: the SDK's streamable-HTTP service on the same port,
//! behind the same door checks (Host, Origin, body size, tokens) as the
//! HTTP API, with the SDK's own Host and Origin checks set to the same lists
//! (its default origin list is empty, which would turn its check off).
//!
//! One request form skips the SDK: a stateless 2026-07-28 `tools/call`
//! that asks for no progress, the call agents make most. For it the SDK
//! builds a whole connection per request (a peer, channels, two spawned
//! tasks, a copy of the message as a `Value` to check headers), which cost
//! about 40% of `/v1`'s throughput (docs/PERFORMANCE.md, "MCP"). The fast
//! path takes that form only when it is exactly right — every header the
//! revision requires present and agreeing with the body, nothing it does
//! not know — and hands anything else, errors included, to the SDK, which
//! stays the one judge of the protocol. Both paths answer through
//! [`super::handler::call`], so a call is the same call either way.

use super::handler::{call, caller_of_request};
use super::{Hub, McpHandler};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{RequestId, ServerJsonRpcMessage, ServerResult};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use toka_runtime::call::CallCtx;
use toka_runtime::sandbox::SandboxIo;
use toka_spec::outcome::ErrorKind;
use tokio_util::sync::CancellationToken;

/// The revision whose stateless `tools/call` takes the fast path.
const STATELESS: &str = "2026-07-28";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

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

/// The `/mcp` endpoint: the SDK's service and the fast path beside it.
pub(crate) struct Endpoint {
    sdk: StreamableHttpService<McpHandler, LocalSessionManager>,
    hub: Arc<Hub>,
    max_body: usize,
}

impl Endpoint {
    pub(crate) fn new(hub: Arc<Hub>, options: HttpOptions) -> Endpoint {
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
        let factory_hub = hub.clone();
        let sdk = StreamableHttpService::new(
            move || Ok(McpHandler::new(factory_hub.clone())),
            LocalSessionManager::default().into(),
            config,
        );
        Endpoint {
            sdk,
            hub,
            max_body: options.max_body,
        }
    }

    /// Answers one request to `/mcp`.
    pub(crate) async fn handle(&self, request: Request<Body>) -> Response {
        if !fast_headers(request.method(), request.headers()) {
            return self.sdk.handle(request).await.into_response();
        }
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, self.max_body).await else {
            return crate::server::error::error(
                ErrorKind::TooLarge,
                &format!(
                    "the request body is larger than {} bytes (--max-body), or was cut off",
                    self.max_body
                ),
            );
        };
        let fast = FastCall::parse(&bytes, &parts.headers)
            .and_then(|c| Some((self.hub.catalog.tool(&c.params.name)?, c)));
        let Some((tool, c)) = fast else {
            let request = Request::from_parts(parts, Body::from(bytes));
            return self.sdk.handle(request).await.into_response();
        };
        let (caller, scope) = caller_of_request(&parts);
        let events = toka_runtime::events::discard();
        let mut ctx = CallCtx::new(caller, SandboxIo::captured(&tool.name, 0, events));
        ctx.scope = scope;
        let input = Value::Object(c.params.arguments.unwrap_or_default());
        // A client that closes the connection drops this future, the call
        // and its sandbox: the revision's way to cancel.
        let result = call(&self.hub, tool, input, ctx).await;
        let message = ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), c.id);
        match serde_json::to_vec(&message) {
            Ok(body) => (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => crate::server::error::error(
                ErrorKind::Host,
                &format!("the tool's result could not be written as JSON: {e}"),
            ),
        }
    }
}

/// The headers of a request the fast path may take: a POST of JSON in the
/// stateless revision, naming `tools/call`, outside any session, accepting
/// both answers the revision allows, without `Mcp-Param-*` headers (the
/// SDK checks those against the tool's schema).
fn fast_headers(method: &Method, headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let accepts = text("accept").is_some_and(|a| {
        // Only the plain list; weights and wildcards are the SDK's to judge.
        let types: Vec<&str> = a.split(',').map(str::trim).collect();
        types.contains(&"application/json") && types.contains(&"text/event-stream")
    });
    let json = text("content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    method == Method::POST
        && json
        && accepts
        && text("mcp-protocol-version") == Some(STATELESS)
        && text("mcp-method") == Some("tools/call")
        && text("mcp-name").is_some()
        && !headers.contains_key("mcp-session-id")
        && !headers.keys().any(|k| k.as_str().starts_with("mcp-param-"))
}

/// A `tools/call` in the stateless form, nothing more: an unknown field
/// anywhere sends the request to the SDK.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastCall {
    jsonrpc: String,
    id: RequestId,
    method: String,
    params: FastParams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastParams {
    name: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta")]
    meta: Map<String, Value>,
}

impl FastCall {
    /// The call, when the body is exactly the form the headers announced:
    /// same method and tool name, the revision and client capabilities in
    /// `_meta`, and no progress token (progress needs the SDK's stream).
    fn parse(body: &[u8], headers: &HeaderMap) -> Option<FastCall> {
        let c: FastCall = serde_json::from_slice(body).ok()?;
        let name = headers.get("mcp-name").and_then(|v| v.to_str().ok())?;
        let meta = &c.params.meta;
        let ok = c.jsonrpc == "2.0"
            && c.method == "tools/call"
            && c.params.name == name
            && meta.get(META_VERSION).and_then(Value::as_str) == Some(STATELESS)
            && meta.get(META_CAPABILITIES).is_some_and(Value::is_object)
            && !meta.contains_key("progressToken");
        ok.then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const GOOD: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "hello"),
    ];

    fn body(params: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{params}}}"#)
    }

    const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

    #[test]
    fn the_exact_stateless_form_is_taken() {
        let h = headers(GOOD);
        assert!(fast_headers(&Method::POST, &h));
        let b = body(&format!(
            r#"{{"name":"hello","arguments":{{"name":"Ada"}},{META}}}"#
        ));
        assert!(FastCall::parse(b.as_bytes(), &h).is_some());
    }

    #[test]
    fn anything_else_goes_to_the_sdk() {
        let with = |k: &'static str, v: &'static str| {
            let mut h = headers(GOOD);
            h.insert(k, HeaderValue::from_static(v));
            fast_headers(&Method::POST, &h)
        };
        assert!(!with("mcp-session-id", "abc"), "a legacy session");
        assert!(!with("mcp-protocol-version", "2025-11-25"), "the older era");
        assert!(!with("mcp-method", "tools/list"), "another method");
        assert!(!with("mcp-param-city", "x"), "header parameters");
        assert!(
            !with("accept", "application/json"),
            "an answer the SDK refuses"
        );
        assert!(!with("accept", "*/*"), "wildcards");
        assert!(!fast_headers(&Method::GET, &headers(GOOD)));
        let mut missing = headers(GOOD);
        missing.remove("mcp-name");
        assert!(!fast_headers(&Method::POST, &missing));

        let h = headers(GOOD);
        let refused = |params: String| FastCall::parse(body(&params).as_bytes(), &h).is_none();
        assert!(
            refused(format!(r#"{{"name":"other",{META}}}"#)),
            "Mcp-Name disagrees"
        );
        assert!(refused(r#"{"name":"hello"}"#.into()), "no _meta");
        assert!(refused(format!(
            r#"{{"name":"hello","_meta":{{"progressToken":1,{}}}}}"#,
            &META[9..META.len() - 1]
        )));
        assert!(
            refused(format!(r#"{{"name":"hello","task":{{}},{META}}}"#)),
            "unknown field"
        );
        assert!(refused(format!(
            r#"{{"name":"hello","arguments":[1],{META}}}"#
        )));
        assert!(refused(
            r#"{"name":"hello","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#
                .into()
        ), "no client capabilities");
        assert!(FastCall::parse(b"{not json", &h).is_none());
    }
}
