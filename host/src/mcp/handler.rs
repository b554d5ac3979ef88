//! The MCP request handler: `tools/list` from the live catalog (filtered by
//! the caller's token), `tools/call` through the one call path, progress
//! notifications from a workflow's `host.progress`, cancellation that drops
//! the sandbox, and `subscriptions/listen` for hot swaps.
//!
//! A tool's own failure, a refused capability or a tripped limit is a
//! result with `isError: true` whose text names the limit or capability and
//! how to raise it; only protocol faults (an unknown tool, malformed
//! arguments) are JSON-RPC errors.

use super::Hub;
use crate::server::Authenticated;
use axum::extract::ConnectInfo;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    Implementation, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ProtocolVersion, ServerCapabilities, ServerConfig, SubscriptionFilter, Tool,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use toka_runtime::call::{CallCtx, Caller};
use toka_runtime::catalog::Tool as LoadedTool;
use toka_runtime::events::{EventSink, HostEvent};
use toka_runtime::sandbox::SandboxIo;
use toka_spec::outcome::{CallError, ErrorKind, Outcome, Output};
use toka_spec::policy::CallerScope;

/// How long a client may treat a tool list as fresh; a hot swap sends
/// `list_changed`, which invalidates it sooner.
const TOOLS_TTL_MS: u64 = 30_000;

/// One MCP server: cheap to clone (the SDK makes one per session or
/// stateless request), all state in the [`Hub`].
#[derive(Clone)]
pub(crate) struct McpHandler {
    hub: Arc<Hub>,
}

impl McpHandler {
    pub(crate) fn new(hub: Arc<Hub>) -> McpHandler {
        McpHandler { hub }
    }
}

/// Who calls, from the HTTP request the SDK hands over (none on stdio: the
/// operator).
fn caller_of(cx: &RequestContext<RoleServer>) -> (Caller, Option<Arc<dyn CallerScope>>) {
    match cx.extensions.get::<axum::http::request::Parts>() {
        Some(parts) => caller_of_request(parts),
        None => (Caller::Operator, None),
    }
}

/// Who calls over HTTP: the peer's address, and the token's scope when the
/// server takes tokens.
pub(crate) fn caller_of_request(
    parts: &axum::http::request::Parts,
) -> (Caller, Option<Arc<dyn CallerScope>>) {
    let scope = parts.extensions.get::<Authenticated>().map(|a| a.0.clone());
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "mcp".to_string(), |c| c.0.to_string());
    (Caller::Peer(format!("mcp {peer}")), scope)
}

fn mcp_tool(tool: &LoadedTool) -> Option<Tool> {
    let spec = tool.spec.as_ref()?;
    let Value::Object(input) = spec.parameters.json().clone() else {
        return None;
    };
    let mut t = Tool::new(tool.name.clone(), spec.description.clone(), Arc::new(input));
    if let Some(Value::Object(output)) = spec.output.as_ref().map(|o| o.json().clone()) {
        t = t.with_raw_output_schema(Arc::new(output));
    }
    Some(t)
}

/// The MCP result of an outcome: the output as `structuredContent` plus a
/// text block, or `isError` with a message that says what to change.
fn result_of(outcome: &Outcome) -> CallToolResult {
    match &outcome.result {
        Ok(Output::Json(v)) => {
            let mut r = CallToolResult::success(vec![ContentBlock::text(v.to_string())]);
            r.structured_content = Some(v.clone());
            r
        }
        Ok(Output::Text(t)) => CallToolResult::success(vec![ContentBlock::text(t.clone())]),
        Ok(Output::Exit(code)) => CallToolResult::error(vec![ContentBlock::text(format!(
            "`{}` is a command (exit code {code}), not a tool",
            outcome.tool.name
        ))]),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(error_text(e))]),
    }
}

/// A call the door turned away: a tool result the agent can act on (retry),
/// not a protocol fault.
fn busy_result(busy: &crate::door::Busy) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!(
        "{busy} ({})",
        ErrorKind::Busy
    ))])
}

/// One `tools/call` through the door: the MCP result of the outcome, or of
/// the door turning it away.
pub(crate) async fn call(
    hub: &Hub,
    tool: Arc<LoadedTool>,
    input: Value,
    ctx: CallCtx,
) -> CallToolResult {
    match hub.door.call(&hub.runtime, tool, input, ctx).await {
        Ok(outcome) => result_of(&outcome),
        Err(busy) => busy_result(&busy),
    }
}

fn error_text(e: &CallError) -> String {
    format!("{} ({})", e, e.kind())
}

impl ServerHandler for McpHandler {
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(&[ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28])
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("toka", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Toka runs each tool in a capability-scoped WebAssembly sandbox with fuel, memory, time and output limits. A failed call comes back as an isError result that names the limit or capability and how to raise it.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (_, scope) = caller_of(&cx);
        let tools: Vec<Tool> = self
            .hub
            .catalog
            .snapshot()
            .values()
            .filter(|t| scope.as_ref().is_none_or(|s| s.allows_tool(&t.name)))
            .filter_map(|t| mcp_tool(t))
            .collect();
        let scope = if self.hub.per_token {
            CacheScope::Private
        } else {
            CacheScope::Public
        };
        Ok(ListToolsResult::with_all_items(tools)
            .with_ttl_ms(TOOLS_TTL_MS)
            .with_cache_scope(scope))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.to_string();
        let (caller, scope) = caller_of(&cx);
        let Some(tool) = self.hub.catalog.tool(&name) else {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {name}"),
                None,
            ));
        };
        let input = Value::Object(request.arguments.unwrap_or_default());
        let (events, progress) = progress_events(&cx, &name);
        let mut ctx = CallCtx::new(caller, SandboxIo::captured(&name, 0, events));
        ctx.scope = scope;
        // Cancelling the request (closing its stream, or
        // notifications/cancelled) drops the call, and with it the sandbox.
        let result = tokio::select! {
            r = call(&self.hub, tool, input, ctx) => r,
            () = cx.ct.cancelled() => {
                return Err(ErrorData::internal_error("cancelled", None));
            }
        };
        if let Some(progress) = progress {
            // The call's event sink is gone with the call, so the forwarder
            // ends once it has sent what was queued: progress before the
            // response, never after it.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), progress).await;
        }
        Ok(result.into())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, cx: SubscriptionContext) -> Result<(), ErrorData> {
        let id = cx.sink().id().clone();
        self.hub.add_sink(cx.sink().clone());
        cx.cancelled().await;
        self.hub.remove_sink(&id);
        Ok(())
    }

    async fn on_initialized(&self, cx: NotificationContext<RoleServer>) {
        self.hub.add_peer(cx.peer.clone());
    }
}

/// Where a call's events go: progress notifications of tool `name` (not of
/// its nested calls) for the request's progress token, when the client sent
/// one, forwarded in order by a task that ends when the call's sink is
/// dropped.
fn progress_events(
    cx: &RequestContext<RoleServer>,
    name: &str,
) -> (EventSink, Option<tokio::task::JoinHandle<()>>) {
    let Some(token) = cx.meta.get_progress_token() else {
        return (toka_runtime::events::discard(), None);
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(f64, String)>();
    let peer = cx.peer.clone();
    let task = tokio::spawn(async move {
        let mut last = -1.0;
        while let Some((progress, message)) = rx.recv().await {
            // Progress must increase with each notification.
            if progress <= last {
                continue;
            }
            last = progress;
            let param = ProgressNotificationParam::new(token.clone(), progress)
                .with_total(100.0)
                .with_message(message);
            if peer.notify_progress(param).await.is_err() {
                break;
            }
        }
    });
    let name = name.to_string();
    let sink: EventSink = Arc::new(move |tool: &str, e: HostEvent<'_>| {
        if let HostEvent::Progress { fraction, message } = e
            && tool == name
        {
            let percent = toka_spec::outcome::fraction_json(fraction)
                .as_f64()
                .unwrap_or(0.0)
                * 100.0;
            let _ = tx.send((percent, message.to_string()));
        }
    });
    (sink, Some(task))
}
