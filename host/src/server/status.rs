//! Liveness (`/health`), the server's state (`/status`: tools, calls in
//! flight, load errors) and its event stream (`/v1/events`, server-sent
//! events: tools loaded, replaced, removed or failed; calls; agents).

use super::App;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use toka_runtime::audit::unix_seconds;

pub(crate) async fn health() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

/// Readiness: 503 while the manifests directory cannot be read (the tools
/// loaded before keep serving, but nothing new can load).
pub(crate) async fn ready(State(app): State<Arc<App>>) -> Response {
    match app.catalog.dir_error() {
        None => axum::Json(json!({ "status": "ready" })).into_response(),
        Some(e) => super::error::error(toka_spec::outcome::ErrorKind::Unavailable, &e),
    }
}

pub(crate) async fn status(State(app): State<Arc<App>>) -> Response {
    let tools = app.catalog.snapshot();
    let errors = app.catalog.errors();
    axum::Json(json!({
        "uptime_s": app.started.elapsed().as_secs_f64(),
        "in_flight": app.door.in_flight(),
        "calls": app.door.calls(),
        "manifests": app.catalog.dir(),
        "directory_error": app.catalog.dir_error(),
        // Not part of readiness: tool calls work without the store.
        "run_store_error": app.agents.store_unreachable(),
        "tools": tools.values().map(|t| json!({
            "name": t.name,
            "version": t.spec.as_ref().map(|s| s.version.clone()),
            "kind": t.spec.as_ref().map(|s| s.executable.kind),
            "digest": t.digest,
            "loaded_at": unix_seconds(t.loaded_at),
        })).collect::<Vec<_>>(),
        "errors": errors.iter().map(|(file, e)| json!({ "manifest": file, "error": e })).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// Server-sent events: tools loaded, replaced, removed or failed to load;
/// calls started and finished; agents' lives.
pub(crate) async fn events(State(app): State<Arc<App>>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let rx = app.events.subscribe();
    let stopping = app.stopping.subscribe();
    let stream =
        futures_util::stream::unfold((rx, stopping), |(mut rx, mut stopping)| async move {
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    // The server is stopping: end the stream so that draining
                    // waits only for calls.
                    _ = stopping.wait_for(|s| *s) => return None,
                };
                match received {
                    Ok(v) => {
                        let name = v["event"].as_str().unwrap_or("message").to_string();
                        let event = Event::default().event(name).data(v.to_string());
                        return Some((
                            Ok::<Event, std::convert::Infallible>(event),
                            (rx, stopping),
                        ));
                    }
                    // A slow reader skips what it missed rather than stalling others.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
