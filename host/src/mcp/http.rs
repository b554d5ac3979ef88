//! `/mcp` on `serve`: the SDK's streamable-HTTP service on the same port,
//! behind the same door checks (Host, Origin, body size, tokens) as the
//! HTTP API, with the SDK's own Host and Origin checks set to the same lists
//! (its default origin list is empty, which would turn its check off).
//!
//! One request skips the SDK: a `tools/call` that asks for no progress, the
//! call agents make most, in the stateless 2026-07-28 form or inside a
//! 2025-11-25 session. For it the SDK builds a whole connection per request
//! (a peer, channels, two spawned tasks, a copy of the message as a `Value`
//! to check headers), or queues it on the session's event stream, which
//! cost 40–80% of `/v1`'s throughput (docs/PERFORMANCE.md, "MCP"). The fast
//! path takes the call only when it is exactly right — every header the
//! revision requires present and agreeing with the body, the session known,
//! nothing it does not know — and hands anything else, errors included, to
//! the SDK, which stays the judge of the protocol; only a body that is no
//! MCP message at all is answered here first ([`BadMessage`]). Both paths answer
//! through [`super::handler::call`], so a call is the same call either way;
//! a session's `notifications/cancelled` reaches fast calls too (their
//! stream then ends with no message, as the SDK's does).

use super::handler::{call, caller_of_request};
use super::{Hub, McpHandler};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{RequestId, ServerJsonRpcMessage, ServerResult};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use toka_runtime::call::CallCtx;
use toka_runtime::sandbox::SandboxIo;
use toka_spec::outcome::ErrorKind;
use tokio_util::sync::CancellationToken;

/// The revision whose stateless `tools/call` takes the fast path.
const STATELESS: &str = "2026-07-28";
/// The handshake revision, whose session calls take it too.
const SESSION: &str = "2025-11-25";
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
    sessions: Arc<LocalSessionManager>,
    hub: Arc<Hub>,
    max_body: usize,
    /// Fast calls running inside a session, by session and request id, for
    /// the session's `notifications/cancelled`.
    running: Mutex<HashMap<(Arc<str>, RequestId), CancellationToken>>,
}

/// The two forms the fast path knows.
enum Form {
    Stateless,
    Session(Arc<str>),
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
        let sessions = Arc::new(LocalSessionManager::default());
        let factory_hub = hub.clone();
        let sdk = StreamableHttpService::new(
            move || Ok(McpHandler::new(factory_hub.clone())),
            sessions.clone(),
            config,
        );
        Endpoint {
            sdk,
            sessions,
            hub,
            max_body: options.max_body,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Answers one request to `/mcp`.
    pub(crate) async fn handle(&self, request: Request<Body>) -> Response {
        if !is_json_post(request.method(), request.headers()) {
            return sdk_refusal_as_json_rpc(self.sdk.handle(request).await.into_response()).await;
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
        if let Some(key) = toka_spec::json::duplicate_key(&bytes) {
            return BadMessage::DuplicateKey(key.chars().take(64).collect()).into_response();
        }
        let to_sdk = |parts, bytes: axum::body::Bytes| async move {
            if let Err(e) = check_message(&bytes) {
                return e.into_response();
            }
            let request = Request::from_parts(parts, Body::from(bytes));
            sdk_refusal_as_json_rpc(self.sdk.handle(request).await.into_response()).await
        };
        let Some(form) = form_of(&parts.method, &parts.headers) else {
            return to_sdk(parts, bytes).await;
        };
        if let Form::Session(session) = &form {
            self.cancel_if_asked(session, &bytes);
        }
        let Some((tool, c)) = self.fast_call(&form, &bytes, &parts.headers).await else {
            return to_sdk(parts, bytes).await;
        };
        let (caller, scope) = caller_of_request(&parts);
        let events = toka_runtime::events::discard();
        let mut ctx = CallCtx::new(caller, SandboxIo::captured(&tool.name, 0, events));
        ctx.scope = scope;
        let input = Value::Object(c.params.arguments.unwrap_or_default());
        // A client that closes the connection drops this future, the call
        // and its sandbox: the stateless revision's way to cancel.
        let call = call(&self.hub, tool, input, ctx);
        let message = match form {
            Form::Stateless => {
                ServerJsonRpcMessage::response(ServerResult::CallToolResult(call.await), c.id)
            }
            Form::Session(session) => {
                let key = (session, c.id.clone());
                let stop = CancellationToken::new();
                if let Ok(mut running) = self.running.lock() {
                    running.insert(key.clone(), stop.clone());
                }
                let _forget = Forget(&self.running, key);
                tokio::select! {
                    result = call => {
                        let mut result = ServerResult::CallToolResult(result);
                        result.strip_result_type_for_legacy_peer();
                        ServerJsonRpcMessage::response(result, c.id)
                    }
                    // As the SDK does for a cancelled request: its event
                    // stream ends with no message (a client that cancelled
                    // may already have closed where an answer would go).
                    () = stop.cancelled() => return (
                        StatusCode::OK,
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/event-stream"),
                        )],
                        "",
                    )
                        .into_response(),
                }
            }
        };
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

    /// The call and its tool, when the body is exactly a fast call of a
    /// loaded tool (in a session the SDK knows).
    async fn fast_call(
        &self,
        form: &Form,
        body: &[u8],
        headers: &HeaderMap,
    ) -> Option<(Arc<toka_runtime::catalog::Tool>, FastCall)> {
        let c = FastCall::parse(body, headers, form)?;
        let tool = self.hub.catalog.tool(&c.params.name)?;
        if let Form::Session(id) = form
            && !self.sessions.has_session(id).await.unwrap_or(false)
        {
            return None;
        }
        Some((tool, c))
    }

    /// Stops the session's fast call that a `notifications/cancelled` names
    /// (the SDK gets the notification as well, for its own calls).
    fn cancel_if_asked(&self, session: &Arc<str>, body: &[u8]) {
        #[derive(Deserialize)]
        struct Note {
            method: String,
            params: Option<rmcp::model::CancelledNotificationParam>,
        }
        let Ok(note) = serde_json::from_slice::<Note>(body) else {
            return;
        };
        let id = note.params.and_then(|p| p.request_id);
        if let (true, Some(id)) = (note.method == "notifications/cancelled", id)
            && let Ok(running) = self.running.lock()
            && let Some(stop) = running.get(&(session.clone(), id))
        {
            stop.cancel();
        }
    }
}

/// Takes a finished session call out of the running table.
struct Forget<'a>(
    &'a Mutex<HashMap<(Arc<str>, RequestId), CancellationToken>>,
    (Arc<str>, RequestId),
);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.0.lock() {
            running.remove(&self.1);
        }
    }
}

/// A POST with a JSON body: the requests whose body is read here.
fn is_json_post(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::POST
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Why a POSTed body is no MCP message. The SDK would answer each with 415
/// "Unsupported Media Type" whatever the fault, and take a message with a
/// key given twice as a request of an unknown method (its catch-all variant
/// keeps the raw params): both say the wrong thing, so they are answered
/// here, as the transport says: 400 with a JSON-RPC error and no id.
#[derive(Debug, thiserror::Error)]
enum BadMessage {
    #[error("the body is not JSON ({0}); send one JSON-RPC 2.0 message")]
    NotJson(String),
    #[error("a JSON object in the message gives the key `{0}` twice; give each key once")]
    DuplicateKey(String),
    #[error(
        "the body is JSON but not a JSON-RPC 2.0 request, notification or response \
         of MCP ({0})"
    )]
    NotJsonRpc(String),
}

impl BadMessage {
    fn code(&self) -> i32 {
        match self {
            BadMessage::NotJson(_) => -32700,
            BadMessage::DuplicateKey(_) | BadMessage::NotJsonRpc(_) => -32600,
        }
    }

    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": self.code(), "message": self.to_string() },
        });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    }
}

/// The SDK refuses a request at the transport (no session, an unknown
/// session, a revision it does not speak) with a plain-text body, which the
/// server's error layer would turn into the `/v1` shape: an MCP client gets
/// a JSON-RPC error with no id instead, as the transport allows, holding
/// the SDK's words (they name no part of the body) and, for a missing
/// session, how to open one.
async fn sdk_refusal_as_json_rpc(response: Response) -> Response {
    const MAX_TEXT: usize = 4096;
    let status = response.status();
    let is_plain = !response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/event-stream"));
    if !(status.is_client_error() && is_plain) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_TEXT).await {
        Ok(b) => String::from_utf8_lossy(&b)
            .trim()
            .chars()
            .take(200)
            .collect::<String>(),
        Err(_) => String::new(),
    };
    let text = if text.is_empty() {
        status.to_string()
    } else {
        text
    };
    let message = if text.contains("Session ID is required") {
        format!(
            "{text}: send `initialize` first to open a 2025-11-25 session and give its \
             `Mcp-Session-Id` on every later request, or call statelessly with \
             `MCP-Protocol-Version: 2026-07-28`"
        )
    } else {
        text
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": -32600, "message": message },
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Where serde stopped, never what it read (the body may hold a secret).
fn position(e: &serde_json::Error) -> String {
    format!("line {}, column {}", e.line(), e.column())
}

/// For the SDK's path (the fast path's stricter parse has passed already).
fn check_message(body: &[u8]) -> Result<(), BadMessage> {
    let Err(e) = serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(body) else {
        return Ok(());
    };
    Err(
        match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Err(e) => BadMessage::NotJson(position(&e)),
            Ok(_) => BadMessage::NotJsonRpc(position(&e)),
        },
    )
}

/// The form of a request the fast path may take, from its headers: a POST
/// of JSON accepting both answers the revisions allow, without
/// `Mcp-Param-*` headers (the SDK checks those against the tool's schema);
/// either inside a 2025-11-25 session, or stateless 2026-07-28 naming
/// `tools/call` and a tool.
fn form_of(method: &Method, headers: &HeaderMap) -> Option<Form> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let accepts = text("accept").is_some_and(|a| {
        // Only the plain list; weights and wildcards are the SDK's to judge.
        let types: Vec<&str> = a.split(',').map(str::trim).collect();
        types.contains(&"application/json") && types.contains(&"text/event-stream")
    });
    let json = text("content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    let plain = method == Method::POST
        && json
        && accepts
        && !headers.keys().any(|k| k.as_str().starts_with("mcp-param-"));
    if !plain {
        return None;
    }
    let version = text("mcp-protocol-version");
    match text("mcp-session-id") {
        Some(id) if version == Some(SESSION) => Some(Form::Session(Arc::from(id))),
        Some(_) => None,
        None => (version == Some(STATELESS)
            && text("mcp-method") == Some("tools/call")
            && text("mcp-name").is_some())
        .then_some(Form::Stateless),
    }
}

/// A `tools/call`, nothing more: an unknown field anywhere sends the
/// request to the SDK.
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
    #[serde(rename = "_meta", default)]
    meta: Map<String, Value>,
}

impl FastCall {
    /// The call, when the body is exactly the form the headers announced:
    /// no progress token (progress needs the SDK's stream); stateless, the
    /// same method and tool name as the headers and the revision and client
    /// capabilities in `_meta`; in a session, headers that agree with the
    /// body if it sent any.
    fn parse(body: &[u8], headers: &HeaderMap, form: &Form) -> Option<FastCall> {
        let c: FastCall = serde_json::from_slice(body).ok()?;
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let meta = &c.params.meta;
        let common =
            c.jsonrpc == "2.0" && c.method == "tools/call" && !meta.contains_key("progressToken");
        let agrees = match form {
            Form::Stateless => {
                text("mcp-name") == Some(c.params.name.as_str())
                    && meta.get(META_VERSION).and_then(Value::as_str) == Some(STATELESS)
                    && meta.get(META_CAPABILITIES).is_some_and(Value::is_object)
            }
            Form::Session(_) => {
                text("mcp-method").is_none_or(|m| m == "tools/call")
                    && text("mcp-name").is_none_or(|n| n == c.params.name)
                    && !meta.contains_key(META_VERSION)
            }
        };
        (common && agrees).then_some(c)
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

    fn stateless(h: &HeaderMap) -> bool {
        matches!(form_of(&Method::POST, h), Some(Form::Stateless))
    }

    #[test]
    fn the_exact_forms_are_taken() {
        let h = headers(GOOD);
        assert!(stateless(&h));
        let b = body(&format!(
            r#"{{"name":"hello","arguments":{{"name":"Ada"}},{META}}}"#
        ));
        assert!(FastCall::parse(b.as_bytes(), &h, &Form::Stateless).is_some());

        let session = headers(&[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-session-id", "s1"),
        ]);
        let form = form_of(&Method::POST, &session).expect("a session call");
        assert!(matches!(&form, Form::Session(id) if &**id == "s1"));
        let b = body(r#"{"name":"hello","arguments":{"name":"Ada"}}"#);
        assert!(FastCall::parse(b.as_bytes(), &session, &form).is_some());
    }

    #[test]
    fn anything_else_goes_to_the_sdk() {
        let with = |k: &'static str, v: &'static str| {
            let mut h = headers(GOOD);
            h.insert(k, HeaderValue::from_static(v));
            stateless(&h)
        };
        assert!(!with("mcp-session-id", "abc"), "a session of the new era");
        assert!(!with("mcp-protocol-version", "2025-06-18"), "another era");
        assert!(!with("mcp-method", "tools/list"), "another method");
        assert!(!with("mcp-param-city", "x"), "header parameters");
        assert!(
            !with("accept", "application/json"),
            "an answer the SDK refuses"
        );
        assert!(!with("accept", "*/*"), "wildcards");
        assert!(form_of(&Method::GET, &headers(GOOD)).is_none());
        let mut missing = headers(GOOD);
        missing.remove("mcp-name");
        assert!(!stateless(&missing));

        let h = headers(GOOD);
        let refused = |params: String| {
            FastCall::parse(body(&params).as_bytes(), &h, &Form::Stateless).is_none()
        };
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
        assert!(
            refused(
                r#"{"name":"hello","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#
                    .into()
            ),
            "no client capabilities"
        );
        assert!(FastCall::parse(b"{not json", &h, &Form::Stateless).is_none());

        let session = Form::Session(Arc::from("s1"));
        let mut h = headers(&[("mcp-name", "other")]);
        let b = body(r#"{"name":"hello"}"#);
        assert!(
            FastCall::parse(b.as_bytes(), &h, &session).is_none(),
            "a header that disagrees"
        );
        h.clear();
        let b = body(r#"{"name":"hello","_meta":{"progressToken":"p"}}"#);
        assert!(
            FastCall::parse(b.as_bytes(), &h, &session).is_none(),
            "progress"
        );
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert!(FastCall::parse(initialized.as_bytes(), &h, &session).is_none());
    }
}
