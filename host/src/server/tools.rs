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
use std::sync::atomic::Ordering;
use std::time::Instant;
use toka_runtime::call::{CallCtx, Caller};
use toka_runtime::events;
use toka_runtime::sandbox::SandboxIo;
use toka_spec::outcome::{ErrorKind, Outcome};
use toka_spec::policy::CallerScope;

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

/// Calls a tool and answers with its outcome; every answer, refusals
/// included, is counted in `/metrics`.
pub(crate) async fn invoke_tool(
    State(app): State<Arc<App>>,
    UrlPath(name): UrlPath<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: Option<axum::Extension<Authenticated>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let scope = who.map(|w| w.0.0);
    let (response, outcome, limit) = invoke(&app, &name, peer, scope, &headers, &body).await;
    app.metrics.record(
        &name,
        &outcome,
        limit.as_deref(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The response, the outcome's word (`ok` or the error kind) and the limit
/// that ended the call, if one did.
async fn invoke(
    app: &Arc<App>,
    name: &str,
    peer: SocketAddr,
    scope: Option<Arc<dyn CallerScope>>,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Response, String, Option<String>) {
    let refuse = |kind: ErrorKind, message: &str| (error(kind, message), kind.to_string(), None);
    let Some(tool) = app.catalog.tool(name) else {
        return refuse(ErrorKind::NotFound, &format!("no tool named `{name}`"));
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
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    ErrorKind::InvalidJson,
                    &format!("the request body is not JSON: {e}"),
                );
            }
        }
    };
    let Ok(_permit) = app.permits.try_acquire() else {
        let kind = ErrorKind::Busy;
        return (
            retry_later(
                kind,
                &format!(
                    "{} calls are running, the most this server allows; retry shortly",
                    app.options.max_concurrent
                ),
            ),
            kind.to_string(),
            None,
        );
    };
    app.in_flight.fetch_add(1, Ordering::Relaxed);
    let id = app.calls.fetch_add(1, Ordering::Relaxed) + 1;
    let caller = headers
        .get("x-toka-caller")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| peer.to_string());
    let version = tool.spec.as_ref().map(|s| s.version.clone());
    let _ = app
        .events
        .send(json!({ "event": "call-started", "id": id, "tool": name, "version": version }));
    let started = Instant::now();
    let mut ctx = CallCtx::new(
        Caller::Peer(caller),
        SandboxIo::captured(name, 0, events::discard()),
    );
    ctx.collect_logs = true;
    ctx.scope = scope;
    let outcome = app.runtime.call(tool, input, ctx).await;
    let seconds = started.elapsed().as_secs_f64();
    app.in_flight.fetch_sub(1, Ordering::Relaxed);
    let (status, word, limit) = answer(&outcome);
    let _ = app.events.send(json!({
        "event": "call-finished", "id": id, "tool": name, "version": version,
        "outcome": word, "status": status.as_u16(), "wall_time_ms": seconds * 1000.0,
    }));
    let body = body_of(&outcome);
    (with_body(status, body), word, limit)
}

/// The status, the outcome's word and the limit of a call's outcome.
fn answer(outcome: &Outcome) -> (StatusCode, String, Option<String>) {
    match &outcome.result {
        Ok(_) => (StatusCode::OK, "ok".into(), None),
        Err(e) => (
            status_of(e.kind()),
            e.kind().to_string(),
            e.limit().map(|l| l.name().to_string()),
        ),
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
