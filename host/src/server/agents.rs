//! The agent endpoints: `POST /v1/agents` starts a workflow run (202 with
//! its id), `GET /v1/agents[/{id}]` shows runs, `DELETE /v1/agents/{id}`
//! cancels one.

use super::App;
use super::Authenticated;
use super::error::{error, retry_later, status_of, with_body};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use toka_runtime::agents::{AgentLimits, AgentRequest, Cancelled};
use toka_runtime::call::Caller;
use toka_spec::outcome::ErrorKind;

/// `POST /v1/agents` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SpawnBody {
    workflow: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    limits: AgentLimits,
}

/// Starts a workflow run; answers 202 with its id and state at once.
pub(crate) async fn spawn_agent(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    who: Option<axum::Extension<Authenticated>>,
    body: Bytes,
) -> Response {
    let body: SpawnBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                ErrorKind::InvalidInput,
                &format!(
                    "the request body must be {{\"workflow\": NAME, \"input\": {{...}}, \"limits\": {{\"timeout\": \"30s\", ...}}}}: {}",
                    toka_spec::json::decode_error(&e)
                ),
            );
        }
    };
    let running = app.agents.running();
    if running >= app.options.max_concurrent {
        return retry_later(
            ErrorKind::Busy,
            &format!(
                "{running} agents are running on this replica, the most it allows; retry shortly"
            ),
        );
    }
    let request = AgentRequest {
        name: body.name,
        workflow: body.workflow,
        input: body.input.unwrap_or_else(|| json!({})),
        limits: body.limits.into(),
        caller: Caller::Peer(peer.to_string()),
        scope: who.map(|w| w.0.0),
    };
    match app.agents.spawn(request).await {
        Ok(agent) => (StatusCode::ACCEPTED, axum::Json(agent.status())).into_response(),
        Err(e) => error(e.kind(), &e.to_string()),
    }
}

/// The answer when the run store cannot be reached: agent endpoints are
/// unavailable, tool calls are not.
fn store_unavailable(e: &toka_store::StoreError) -> Response {
    retry_later(
        toka_runtime::agents::store_kind(e),
        &format!("agent runs are unavailable for now ({e}); tool calls still work; retry shortly"),
    )
}

pub(crate) async fn list_agents(State(app): State<Arc<App>>) -> Response {
    match app.agents.list().await {
        Ok(runs) => axum::Json(runs).into_response(),
        Err(e) => store_unavailable(&e),
    }
}

/// May the caller see and cancel the run that `subject` started? The
/// operator (a token for every tool, or no tokens at all) and the token's
/// own subject may.
fn may_see(who: Option<&Authenticated>, subject: Option<&str>) -> bool {
    match who {
        None => true,
        Some(a) => a.0.allows_all_tools() || Some(a.0.subject()) == subject,
    }
}

pub(crate) async fn get_agent(
    State(app): State<Arc<App>>,
    who: Option<axum::Extension<Authenticated>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let who = who.map(|w| w.0);
    match app.agents.get(&id).await {
        Err(e) => store_unavailable(&e),
        Ok(Some(s)) if may_see(who.as_ref(), s.subject.as_deref()) => axum::Json(s).into_response(),
        Ok(_) => error(
            ErrorKind::NotFound,
            &format!("no agent `{id}` (finished runs are kept for --retain, then pruned)"),
        ),
    }
}

/// Cancels a run, wherever it runs: 200 with its state (`cancelled`, or
/// still `running` while the replica that runs it is told), 409 when it had
/// already finished, 404 when unknown.
pub(crate) async fn cancel_agent(
    State(app): State<Arc<App>>,
    who: Option<axum::Extension<Authenticated>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let who = who.map(|w| w.0);
    match app.agents.get(&id).await {
        Err(e) => return store_unavailable(&e),
        Ok(Some(s)) if may_see(who.as_ref(), s.subject.as_deref()) => {}
        Ok(_) => return error(ErrorKind::NotFound, &format!("no agent `{id}`")),
    }
    match app.agents.cancel(&id).await {
        Err(e) => store_unavailable(&e),
        Ok(Cancelled::NotFound) => error(ErrorKind::NotFound, &format!("no agent `{id}`")),
        Ok(Cancelled::AlreadyFinished(s)) => with_body(status_of(ErrorKind::Cancelled), json!(s)),
        Ok(Cancelled::Now(s)) | Ok(Cancelled::Requested(s)) => with_body(StatusCode::OK, json!(s)),
    }
}
