//! `toka-host serve`: the tools of a manifests directory over HTTP, bound to
//! loopback by default, reloaded live when their files change.
//!
//! Each loaded tool keeps its compiled, linked component; every call gets a
//! fresh instance in a fresh sandbox. A reload compiles off the request path
//! and swaps the tool table atomically: calls in flight keep the version they
//! started with (they hold an `Arc` to it), new calls get the new one, and a
//! failed update leaves the old version serving with the error in `/status`.

use crate::agents::{AgentHost, AgentLimits, AgentRequest, AgentState, SpawnError};
use crate::audit::{AuditLog, unix_seconds};
use crate::engine::TokaEngine;
use crate::invoke::{self, PluginKind};
use crate::llm::LlmClient;
use crate::manifest;
use crate::outcome::{CallError, Outcome, Output};
use crate::policy::{self, Grants, PolicyError};
use crate::sandbox::{EventSink, SandboxIo};
use crate::shim::{self, ShimOptions};
use crate::workflow::{Callable, ToolSource, load_callable};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Allow a non-loopback address.
    pub allow_remote: bool,
    /// The manifests directory.
    pub manifests: PathBuf,
    /// What the operator grants every tool.
    pub grants: Grants,
    /// How subprocess tools run.
    pub shim: ShimOptions,
    /// Calls at once; more get 503.
    pub max_concurrent: usize,
    /// Largest request body.
    pub max_body: usize,
    /// Where each call is appended as a JSON line.
    pub audit_log: Option<PathBuf>,
    /// The language model for workflows, if configured.
    pub llm: Option<crate::llm::LlmConfig>,
    /// How often the directory is checked for changes.
    pub reload_interval: Duration,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without `--allow-remote`.
    #[error(
        "refusing to listen on {0}: it is not a loopback address; tools would be reachable from other machines. Pass --allow-remote if that is what you want"
    )]
    Remote(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The audit log could not be opened.
    #[error("cannot open the audit log {}: {source}", path.display())]
    Audit {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The LLM client could not be built.
    #[error("{0}")]
    Llm(String),
    /// The server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// A loaded tool version: what can be called, and since when.
struct Tool {
    callable: Arc<Callable>,
    loaded_at: SystemTime,
}

impl std::ops::Deref for Tool {
    type Target = Callable;
    fn deref(&self) -> &Callable {
        &self.callable
    }
}

type ToolTable = Arc<RwLock<Arc<BTreeMap<String, Arc<Tool>>>>>;

/// Workflows started through `/v1/agents` find their callees in the live
/// table, so a hot swap reaches them too.
struct LiveTools(ToolTable);

#[async_trait::async_trait]
impl ToolSource for LiveTools {
    async fn get(&self, name: &str) -> Result<Arc<Callable>, String> {
        self.0
            .read()
            .ok()
            .and_then(|t| t.get(name).map(|t| t.callable.clone()))
            .ok_or_else(|| format!("no tool named `{name}` is being served"))
    }
}

/// What a manifest file looked like when last seen, to notice changes.
#[derive(Clone, PartialEq, Debug)]
struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

struct Watched {
    fingerprint: Fingerprint,
    /// Seen once unchanged since the last scan (debounce).
    settled: bool,
    /// The tool this file provides, when it loaded.
    name: Option<String>,
}

struct App {
    engine: Arc<TokaEngine>,
    options: ServeOptions,
    tools: ToolTable,
    agents: Arc<AgentHost>,
    watched: Mutex<BTreeMap<PathBuf, Watched>>,
    errors: RwLock<BTreeMap<PathBuf, String>>,
    permits: tokio::sync::Semaphore,
    in_flight: AtomicUsize,
    calls: AtomicU64,
    started: Instant,
    audit: Option<Arc<AuditLog>>,
    hosts: Vec<String>,
    events: tokio::sync::broadcast::Sender<Value>,
    metrics: Metrics,
}

/// Upper bounds (seconds) of the call latency histogram.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters behind `/metrics`.
#[derive(Default)]
struct Metrics {
    /// (tool, outcome) → calls.
    calls: Mutex<BTreeMap<(String, String), u64>>,
    /// limit name → times hit.
    limits: Mutex<BTreeMap<String, u64>>,
    /// Cumulative counts per [`LATENCY_BUCKETS`] bound, then the sum (µs).
    latency: Mutex<([u64; LATENCY_BUCKETS.len()], u64, f64)>,
}

impl Metrics {
    fn record(&self, tool: &str, outcome: &str, limit: Option<&str>, seconds: f64) {
        if let Ok(mut c) = self.calls.lock() {
            *c.entry((tool.to_string(), outcome.to_string()))
                .or_default() += 1;
        }
        if let (Some(l), Ok(mut m)) = (limit, self.limits.lock()) {
            *m.entry(l.to_string()).or_default() += 1;
        }
        if let Ok(mut h) = self.latency.lock() {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.0[i] += 1;
                }
            }
            h.1 += 1;
            h.2 += seconds;
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, then lets calls in flight finish.
///
/// # Errors
///
/// [`ServeError`] when the server cannot start.
pub async fn serve(engine: TokaEngine, options: ServeOptions) -> Result<(), ServeError> {
    if !options.addr.ip().is_loopback() && !options.allow_remote {
        return Err(ServeError::Remote(options.addr));
    }
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
    let audit = match &options.audit_log {
        None => None,
        Some(path) => Some(Arc::new(AuditLog::open(path).map_err(|source| {
            ServeError::Audit {
                path: path.clone(),
                source,
            }
        })?)),
    };
    let llm = match options.llm.clone() {
        None => None,
        Some(c) => Some(Arc::new(
            LlmClient::new(c, audit.clone()).map_err(ServeError::Llm)?,
        )),
    };
    let engine = Arc::new(engine);
    let tools: ToolTable = Arc::new(RwLock::new(Arc::new(BTreeMap::new())));
    let event_tx = tokio::sync::broadcast::channel(4096).0;
    let agents = Arc::new(AgentHost::new(
        engine.clone(),
        Arc::new(LiveTools(tools.clone())),
        options.grants.clone(),
        options.shim.clone(),
        llm,
        audit.clone(),
        event_tx.clone(),
    ));
    let port = addr.port();
    let hosts = if options.allow_remote {
        Vec::new()
    } else {
        vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
            addr.to_string(),
        ]
    };
    let app = Arc::new(App {
        engine,
        permits: tokio::sync::Semaphore::new(options.max_concurrent),
        options,
        tools,
        agents,
        watched: Mutex::new(BTreeMap::new()),
        errors: RwLock::new(BTreeMap::new()),
        in_flight: AtomicUsize::new(0),
        calls: AtomicU64::new(0),
        started: Instant::now(),
        audit,
        hosts,
        events: event_tx,
        metrics: Metrics::default(),
    });
    // The first scan loads everything before the first request.
    {
        let app = app.clone();
        let _ = tokio::task::spawn_blocking(move || scan(&app, true)).await;
    }
    let watcher = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(app.options.reload_interval).await;
                let app = app.clone();
                let _ = tokio::task::spawn_blocking(move || scan(&app, false)).await;
            }
        })
    };
    let router = Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/v1/tools", get(list_tools))
        .route("/v1/tools/{name}/invoke", post(invoke_tool))
        .route("/v1/agents", post(spawn_agent).get(list_agents))
        .route("/v1/agents/{id}", get(get_agent).delete(cancel_agent))
        .route("/v1/events", get(events))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(app.options.max_body))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            check_host,
        ))
        .with_state(app.clone());
    eprintln!(
        "toka-host serving {} tools on http://{addr}",
        app.tools.read().map(|t| t.len()).unwrap_or(0)
    );
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await;
    watcher.abort();
    eprintln!("toka-host: stopped after draining calls in flight");
    result.map_err(ServeError::Io)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Rejects requests whose `Host` is not the bound address (DNS rebinding).
async fn check_host(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !app.hosts.is_empty() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !app.hosts.iter().any(|h| h == host) {
            return error(
                StatusCode::MISDIRECTED_REQUEST,
                "bad-host",
                &format!(
                    "Host `{host}` is not this server's address; requests must name {}",
                    app.hosts[0]
                ),
            );
        }
    }
    next.run(request).await
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "kind": kind, "message": message } })),
    )
        .into_response()
}

async fn health() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn status(State(app): State<Arc<App>>) -> Response {
    let tools = app.tools.read().map(|t| t.clone()).unwrap_or_default();
    let errors = app.errors.read().map(|e| e.clone()).unwrap_or_default();
    axum::Json(json!({
        "uptime_s": app.started.elapsed().as_secs_f64(),
        "in_flight": app.in_flight.load(Ordering::Relaxed),
        "calls": app.calls.load(Ordering::Relaxed),
        "tools": tools.values().map(|t| json!({
            "name": t.spec.name,
            "version": t.spec.version,
            "kind": t.spec.executable.kind,
            "digest": t.digest,
            "loaded_at": unix_seconds(t.loaded_at),
        })).collect::<Vec<_>>(),
        "errors": errors.iter().map(|(file, e)| json!({ "manifest": file, "error": e })).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// Server-sent events: tools loaded, replaced, removed or failed to load;
/// calls started and finished.
async fn events(State(app): State<Arc<App>>) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let rx = app.events.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(v) => {
                    let name = v["event"].as_str().unwrap_or("message").to_string();
                    let event = Event::default().event(name).data(v.to_string());
                    return Some((Ok::<Event, std::convert::Infallible>(event), rx));
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

/// Prometheus text exposition.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    use std::fmt::Write as _;
    let mut out = String::new();
    let m = &app.metrics;
    let _ = writeln!(
        out,
        "# HELP toka_calls_total Tool calls by tool and outcome.\n# TYPE toka_calls_total counter"
    );
    if let Ok(c) = m.calls.lock() {
        for ((tool, outcome), n) in c.iter() {
            let _ = writeln!(
                out,
                "toka_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP toka_limits_hit_total Calls ended by a limit, by limit.\n# TYPE toka_limits_hit_total counter"
    );
    if let Ok(l) = m.limits.lock() {
        for (limit, n) in l.iter() {
            let _ = writeln!(out, "toka_limits_hit_total{{limit=\"{limit}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP toka_call_duration_seconds Wall time of tool calls.\n# TYPE toka_call_duration_seconds histogram"
    );
    if let Ok(h) = m.latency.lock() {
        for (bound, n) in LATENCY_BUCKETS.iter().zip(h.0.iter()) {
            let _ = writeln!(
                out,
                "toka_call_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "toka_call_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.1
        );
        let _ = writeln!(out, "toka_call_duration_seconds_sum {}", h.2);
        let _ = writeln!(out, "toka_call_duration_seconds_count {}", h.1);
    }
    let tools = app.tools.read().map(|t| t.len()).unwrap_or(0);
    let _ = writeln!(
        out,
        "# HELP toka_calls_in_flight Calls running now.\n# TYPE toka_calls_in_flight gauge"
    );
    let _ = writeln!(
        out,
        "toka_calls_in_flight {}",
        app.in_flight.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP toka_tools_loaded Tools being served.\n# TYPE toka_tools_loaded gauge"
    );
    let _ = writeln!(out, "toka_tools_loaded {tools}");
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn list_tools(State(app): State<Arc<App>>) -> Response {
    let tools = app.tools.read().map(|t| t.clone()).unwrap_or_default();
    axum::Json(Value::Array(
        tools
            .values()
            .map(|t| {
                json!({
                    "name": t.spec.name,
                    "version": t.spec.version,
                    "description": t.spec.description,
                    "input_schema": t.spec.parameters,
                    "kind": t.spec.executable.kind,
                })
            })
            .collect(),
    ))
    .into_response()
}

async fn invoke_tool(
    State(app): State<Arc<App>>,
    UrlPath(name): UrlPath<String>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tool = app.tools.read().ok().and_then(|t| t.get(&name).cloned());
    let Some(tool) = tool else {
        return error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("no tool named `{name}`"),
        );
    };
    if tool
        .plugin
        .as_ref()
        .is_some_and(|p| p.kind == PluginKind::Workflow)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "workflow",
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
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid-json",
                    &format!("the request body is not JSON: {e}"),
                );
            }
        }
    };
    if !input.is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            "the input must be a JSON object",
        );
    }
    let Ok(_permit) = app.permits.try_acquire() else {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            &format!(
                "{} calls are running, the most this server allows; retry shortly",
                app.options.max_concurrent
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    app.in_flight.fetch_add(1, Ordering::Relaxed);
    app.calls.fetch_add(1, Ordering::Relaxed);
    let caller = headers
        .get("x-toka-caller")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| peer.to_string());
    let id = app.calls.load(Ordering::Relaxed);
    let _ = app.events.send(
        json!({ "event": "call-started", "id": id, "tool": name, "version": tool.spec.version }),
    );
    let started = Instant::now();
    let (response, outcome, limit) = call(&app, &tool, &input, body.len(), &caller).await;
    let seconds = started.elapsed().as_secs_f64();
    app.in_flight.fetch_sub(1, Ordering::Relaxed);
    app.metrics.record(&name, outcome, limit, seconds);
    let _ = app.events.send(json!({
        "event": "call-finished", "id": id, "tool": name, "version": tool.spec.version,
        "outcome": outcome, "status": response.status().as_u16(), "wall_time_ms": seconds * 1000.0,
    }));
    response
}

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
async fn spawn_agent(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let body: SpawnBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid-input",
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
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            &format!("{running} agents are running, the most this server allows; retry shortly"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let request = AgentRequest {
        name: body.name,
        workflow: body.workflow,
        input: body.input.unwrap_or_else(|| json!({})),
        limits: body.limits.into(),
    };
    match app.agents.spawn(request).await {
        Ok(agent) => (StatusCode::ACCEPTED, axum::Json(agent.status())).into_response(),
        Err(e) => {
            let (status, kind) = match &e {
                SpawnError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
                SpawnError::NotWorkflow(_) | SpawnError::InvalidInput(_) => {
                    (StatusCode::BAD_REQUEST, "invalid-input")
                }
                SpawnError::Policy(PolicyError::Denied { .. }) => (StatusCode::FORBIDDEN, "denied"),
                SpawnError::Policy(_) => (StatusCode::INTERNAL_SERVER_ERROR, "host"),
            };
            error(status, kind, &e.to_string())
        }
    }
}

async fn list_agents(State(app): State<Arc<App>>) -> Response {
    let agents: Vec<_> = app.agents.list().iter().map(|a| a.status()).collect();
    axum::Json(agents).into_response()
}

async fn get_agent(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> Response {
    match app.agents.get(&id) {
        Some(a) => axum::Json(a.status()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("no agent `{id}` (finished agents are kept for a while, then forgotten)"),
        ),
    }
}

/// Cancels a running agent: 200 with its state, 409 when it had already
/// finished, 404 when unknown.
async fn cancel_agent(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> Response {
    match app.agents.cancel(&id) {
        None => error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("no agent `{id}`"),
        ),
        Some(cancelled) => {
            let status = app.agents.get(&id).map(|a| a.status());
            let code = if cancelled {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            (code, axum::Json(status)).into_response()
        }
    }
}

/// Runs one call; returns the response, its outcome and the limit it hit.
async fn call(
    app: &App,
    tool: &Tool,
    input: &Value,
    input_bytes: usize,
    caller: &str,
) -> (Response, &'static str, Option<&'static str>) {
    let spec = &tool.spec;
    let name = spec.name.to_string();
    let policy = match policy::resolve(&name, Some(spec), &app.options.grants, |k| {
        std::env::var(k).ok()
    }) {
        Ok(p) => p,
        Err(e) => {
            let status = match e {
                PolicyError::Denied { .. } => StatusCode::FORBIDDEN,
                PolicyError::BadDir { .. } | PolicyError::Secret { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            };
            audit(app, tool, caller, input_bytes, &[], "denied", None, None);
            return (error(status, "denied", &e.to_string()), "denied", None);
        }
    };
    let input_text = input.to_string();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let events: EventSink = {
        let logs = logs.clone();
        Arc::new(move |_tool: &str, e: crate::sandbox::HostEvent<'_>| {
            let v = match e {
                crate::sandbox::HostEvent::Log { level, message } => {
                    json!({"log": level, "message": message})
                }
                crate::sandbox::HostEvent::Progress { fraction, message } => {
                    json!({"progress": fraction, "message": message})
                }
            };
            if let Ok(mut l) = logs.lock() {
                l.push(v);
            }
        })
    };
    let capabilities: Vec<String> = policy.capabilities.iter().map(|c| c.to_string()).collect();
    let outcome: Result<Outcome, String> = match &tool.plugin {
        Some(plugin) => {
            if let Err(e) = manifest::check_input(&spec.parameters, input) {
                return (
                    error(StatusCode::BAD_REQUEST, "invalid-input", &e),
                    "invalid-input",
                    None,
                );
            }
            let io = SandboxIo::captured(&name, policy.limits.output, events);
            Ok(invoke::invoke(&app.engine, plugin, &policy, io, &input_text).await)
        }
        None => shim::run(spec, &policy, &input_text, &app.options.shim, &events)
            .await
            .map_err(|e| e.to_string()),
    };
    let logs = logs.lock().map(|l| l.clone()).unwrap_or_default();
    let outcome = match outcome {
        Ok(o) => o,
        Err(message) => {
            audit(
                app,
                tool,
                caller,
                input_bytes,
                &capabilities,
                "refused",
                None,
                None,
            );
            return (
                error(StatusCode::INTERNAL_SERVER_ERROR, "refused", &message),
                "refused",
                None,
            );
        }
    };
    let usage = json!({
        "fuel_consumed": outcome.usage.fuel_consumed,
        "peak_memory": outcome.usage.peak_memory,
        "wall_time_ms": outcome.usage.wall_time.as_secs_f64() * 1000.0,
        "output_bytes": outcome.usage.output_bytes,
    });
    let (status, body, kind, limit) = match &outcome.result {
        Ok(Output::Tool(json)) => (
            StatusCode::OK,
            json!({ "output": serde_json::from_str::<Value>(json).unwrap_or(Value::Null) }),
            "ok",
            None,
        ),
        Ok(Output::Text(text)) => (StatusCode::OK, json!({ "output": text }), "ok", None),
        Ok(Output::Exit(code)) => (
            StatusCode::OK,
            json!({ "output": null, "exit_code": code }),
            "ok",
            None,
        ),
        Err(e) => {
            let (status, kind, limit) = match e {
                CallError::Tool { .. } | CallError::BadResult { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "tool-error", None)
                }
                CallError::Limit { limit, .. } => (
                    StatusCode::GATEWAY_TIMEOUT,
                    "limit-exceeded",
                    Some(limit.clone()),
                ),
                CallError::Trap { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "trap", None),
                CallError::Link { .. } | CallError::Setup { .. } => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "host", None)
                }
            };
            (status, json!({ "error": e.to_json_as(kind) }), kind, limit)
        }
    };
    audit(
        app,
        tool,
        caller,
        input_bytes,
        &capabilities,
        kind,
        limit.as_ref().map(|l| l.name()),
        Some(&usage),
    );
    let mut body = body;
    if let Some(obj) = body.as_object_mut() {
        obj.insert("tool".into(), json!(spec.name));
        obj.insert("version".into(), json!(spec.version));
        obj.insert("digest".into(), json!(tool.digest));
        obj.insert("usage".into(), usage);
        obj.insert("logs".into(), Value::Array(logs));
    }
    let limit = limit.as_ref().map(|l| l.name());
    ((status, axum::Json(body)).into_response(), kind, limit)
}

/// Appends one JSON line per call; sizes of the input only, never its text.
#[allow(clippy::too_many_arguments)]
fn audit(
    app: &App,
    tool: &Tool,
    caller: &str,
    input_bytes: usize,
    capabilities: &[String],
    outcome: &str,
    limit: Option<&str>,
    usage: Option<&Value>,
) {
    let Some(log) = &app.audit else { return };
    log.record(json!({
        "event": "call",
        "tool": tool.spec.name,
        "version": tool.spec.version,
        "digest": tool.digest,
        "caller": caller,
        "capabilities": capabilities,
        "input_bytes": input_bytes,
        "outcome": outcome,
        "limit": limit,
        "usage": usage,
    }));
}

/// The manifest and the file it runs, as (path, size, mtime).
fn fingerprint(file: &Path) -> Fingerprint {
    let stat = |p: &Path| {
        let m = std::fs::metadata(p).ok();
        (
            p.to_path_buf(),
            m.as_ref().map_or(0, |m| m.len()),
            m.and_then(|m| m.modified().ok()),
        )
    };
    let mut parts = vec![stat(file)];
    let exe = std::fs::read_to_string(file)
        .ok()
        .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok())
        .and_then(|y| y["spec"]["executable"]["path"].as_str().map(PathBuf::from));
    if let Some(exe) = exe {
        parts.push(stat(&file.parent().unwrap_or(Path::new(".")).join(exe)));
    }
    Fingerprint(parts)
}

/// One pass over the directory: load what is new or changed (once it has
/// stopped changing), drop what was removed, record errors.
fn scan(app: &App, initial: bool) {
    let files = manifest::manifest_files(&app.options.manifests).unwrap_or_default();
    let Ok(mut watched) = app.watched.lock() else {
        return;
    };
    let mut changes: Vec<(PathBuf, Result<Tool, String>)> = Vec::new();
    for file in &files {
        let fp = fingerprint(file);
        let due = match watched.get_mut(file) {
            Some(w) if w.fingerprint == fp && w.settled => false,
            Some(w) if w.fingerprint == fp => {
                w.settled = true;
                true
            }
            Some(w) => {
                w.fingerprint = fp;
                w.settled = false;
                initial
            }
            None => {
                watched.insert(
                    file.clone(),
                    Watched {
                        fingerprint: fp,
                        settled: initial,
                        name: None,
                    },
                );
                initial
            }
        };
        if due {
            changes.push((file.clone(), load_tool(&app.engine, file)));
        }
    }
    let removed: Vec<PathBuf> = watched
        .keys()
        .filter(|f| !files.contains(f))
        .cloned()
        .collect();
    if changes.is_empty() && removed.is_empty() {
        return;
    }
    let Ok(mut table) = app.tools.write() else {
        return;
    };
    let mut next: BTreeMap<String, Arc<Tool>> = (**table).clone();
    let Ok(mut errors) = app.errors.write() else {
        return;
    };
    for file in removed {
        if let Some(w) = watched.remove(&file)
            && let Some(name) = w.name
        {
            next.remove(&name);
            eprintln!("toka-host: removed {name} ({} is gone)", file.display());
            let _ = app
                .events
                .send(json!({ "event": "tool-removed", "tool": name, "manifest": file }));
        }
        errors.remove(&file);
    }
    for (file, result) in changes {
        match result {
            Ok(tool) => {
                let name = tool.spec.name.to_string();
                let owner = watched
                    .iter()
                    .find(|(f, w)| **f != file && w.name.as_deref() == Some(name.as_str()));
                if let Some((other, _)) = owner {
                    let message = format!(
                        "metadata.name: `{name}` is already served from {}",
                        other.display()
                    );
                    eprintln!("toka-host: {}: {message}", file.display());
                    errors.insert(file, message);
                    continue;
                }
                eprintln!(
                    "toka-host: loaded {name} {} from {}",
                    tool.spec.version,
                    file.display()
                );
                let event = if next.contains_key(&name) {
                    "tool-replaced"
                } else {
                    "tool-loaded"
                };
                let _ = app.events.send(json!({
                    "event": event, "tool": name, "version": tool.spec.version,
                    "digest": tool.digest, "manifest": file,
                }));
                if let Some(w) = watched.get_mut(&file)
                    && let Some(old) = w.name.replace(name.clone())
                    && old != name
                {
                    next.remove(&old);
                }
                errors.remove(&file);
                next.insert(name, Arc::new(tool));
            }
            Err(message) => {
                eprintln!("toka-host: {message} (the previous version, if any, keeps serving)");
                let _ = app
                    .events
                    .send(json!({ "event": "tool-failed", "manifest": file, "error": message }));
                errors.insert(file, message);
            }
        }
    }
    *table = Arc::new(next);
}

/// Validates, compiles and links one manifest's tool or workflow.
fn load_tool(engine: &TokaEngine, file: &Path) -> Result<Tool, String> {
    let spec = manifest::load(file).map_err(|e| e.to_string())?;
    let loaded_at = SystemTime::now();
    let callable = load_callable(engine, spec)?;
    Ok(Tool {
        callable: Arc::new(callable),
        loaded_at,
    })
}
