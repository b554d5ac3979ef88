//! The agent endpoints: `POST /v1/agents` starts a workflow run (202 with
//! its id), `GET /v1/agents[/{id}]` shows runs, `DELETE /v1/agents/{id}`
//! cancels one.

use super::App;
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

pub(crate) async fn get_agent(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match app.agents.get(&id) {
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
    UrlPath(id): UrlPath<String>,
) -> Response {
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
