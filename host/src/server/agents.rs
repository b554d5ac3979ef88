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
use toka_runtime::agents::{AgentLimits, AgentRequest, AgentState};
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
                    "the request body must be {{\"workflow\": NAME, \"input\": {{...}}, \"limits\": {{\"timeout\": \"30s\", ...}}}}: {e}"
                ),
            );
        }
    };
    let running = app
        .agents
        .list()
        .iter()
        .filter(|a| a.status().state == AgentState::Running)
        .count();
    if running >= app.options.max_concurrent {
        return retry_later(
            ErrorKind::Busy,
            &format!("{running} agents are running, the most this server allows; retry shortly"),
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

pub(crate) async fn list_agents(State(app): State<Arc<App>>) -> Response {
    let agents: Vec<_> = app.agents.list().iter().map(|a| a.status()).collect();
    axum::Json(agents).into_response()
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
    match app
        .agents
        .get(&id)
        .filter(|a| may_see(who.as_ref(), a.status().subject.as_deref()))
    {
        Some(a) => axum::Json(a.status()).into_response(),
        None => error(
            ErrorKind::NotFound,
            &format!("no agent `{id}` (finished agents are kept for a while, then forgotten)"),
        ),
    }
}

/// Cancels a running agent: 200 with its state, 409 when it had already
/// finished, 404 when unknown.
pub(crate) async fn cancel_agent(
    State(app): State<Arc<App>>,
    who: Option<axum::Extension<Authenticated>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let who = who.map(|w| w.0);
    let visible = app
        .agents
        .get(&id)
        .is_some_and(|a| may_see(who.as_ref(), a.status().subject.as_deref()));
    if !visible {
        return error(ErrorKind::NotFound, &format!("no agent `{id}`"));
    }
    match app.agents.cancel(&id) {
        None => error(ErrorKind::NotFound, &format!("no agent `{id}`")),
        Some(cancelled) => {
            let status = app.agents.get(&id).map(|a| a.status());
            let code = if cancelled {
                StatusCode::OK
            } else {
                status_of(ErrorKind::Cancelled)
            };
            with_body(code, json!(status))
        }
    }
}
