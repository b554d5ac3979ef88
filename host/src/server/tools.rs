//! `GET /v1/tools` (every tool with its input schema) and
//! `POST /v1/tools/{name}/invoke` (JSON in, the call's outcome out), which
//! hands the call to the runtime's one call path and maps its outcome to an
//! HTTP status.

use super::App;
use super::Authenticated;
use super::error::{error, retry_later, status_of, with_body};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use toka_runtime::call::{CallCtx, Caller};
use toka_runtime::events;
use toka_runtime::sandbox::SandboxIo;
use toka_spec::outcome::{ErrorKind, Outcome};

/// Every tool the caller may call, with its input schema.
pub(crate) async fn list_tools(
    State(app): State<Arc<App>>,
    who: Option<axum::Extension<Authenticated>>,
) -> Response {
    let tools = app.catalog.snapshot();
    axum::Json(Value::Array(
        tools
            .values()
            .filter(|t| who.as_ref().is_none_or(|w| w.0.0.allows_tool(&t.name)))
            .filter_map(|t| t.spec.as_ref())
            .map(|s| {
                json!({
                    "name": s.name,
                    "version": s.version,
                    "description": s.description,
                    "input_schema": s.parameters,
                    "kind": s.executable.kind,
                })
            })
            .collect(),
    ))
    .into_response()
}

/// Calls a tool through the door and answers with its outcome; every
/// answer, refusals included, is counted in `/metrics`.
pub(crate) async fn invoke_tool(
    State(app): State<Arc<App>>,
    UrlPath(name): UrlPath<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: Option<axum::Extension<Authenticated>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |kind: ErrorKind, message: &str| {
        app.door.refused(&name, kind);
        error(kind, message)
    };
    let Some(tool) = app.catalog.tool(&name) else {
        app.door.refused_unknown();
        return error(ErrorKind::NotFound, &format!("no tool named `{name}`"));
    };
    if tool.is_workflow() {
        return refuse(
            ErrorKind::WrongKind,
            &format!(
                "`{name}` is a workflow: start it with POST /v1/agents {{\"workflow\": \"{name}\", \"input\": {{...}}}} and follow it on GET /v1/agents/{{id}} or /v1/events"
            ),
        );
    }
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    ErrorKind::InvalidJson,
                    &format!("the request body is not JSON: {e}"),
                );
            }
        }
    };
    let caller = headers
        .get("x-toka-caller")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| peer.to_string());
    let mut ctx = CallCtx::new(
        Caller::Peer(caller),
        SandboxIo::captured(&name, 0, events::discard()),
    );
    ctx.collect_logs = true;
    ctx.scope = who.map(|w| w.0.0);
    match app.door.call(&app.runtime, tool, input, ctx).await {
        Ok(outcome) => with_body(answer(&outcome), body_of(&outcome)),
        Err(busy) => retry_later(ErrorKind::Busy, &busy.to_string()),
    }
}

/// The status of a call's outcome.
fn answer(outcome: &Outcome) -> StatusCode {
    match &outcome.result {
        Ok(_) => StatusCode::OK,
        Err(e) => status_of(e.kind()),
    }
}

/// The outcome's one JSON form, without the captured stdio a tool call
/// through the API does not return.
fn body_of(outcome: &Outcome) -> Value {
    let mut v = outcome.to_json();
    if let Some(o) = v.as_object_mut() {
        o.remove("stdout");
        o.remove("stderr");
        if o.get("error").is_some_and(Value::is_null) {
            o.remove("error");
        }
    }
    v
}
