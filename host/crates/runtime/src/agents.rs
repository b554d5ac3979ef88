//! Agents: many workflow runs at once on tokio, each with an id, its own
//! sandbox and budget, a state that can be read at any time, and events
//! (`spawned`, `progress`, `log`, `completed`, `failed`) for whoever
//! listens. Shared by `toka-host run` (one agent), `orchestrate` (a file of
//! them) and `serve` (`/v1/agents`).
//!
//! Without a store, runs live in this process's memory (the last
//! [`RETAINED_FINISHED`] finished ones are kept). With one ([`durable`]),
//! every run is a record in SQLite or PostgreSQL that any replica can read
//! and cancel, that survives restarts, whose lease this replica renews,
//! and which is reported finished only once its result is stored.

mod durable;

pub use durable::{Durable, DurableOptions, PRUNE_EVERY};

use crate::audit::unix_seconds;
use crate::call::{CallCtx, Caller, Runtime};
use crate::catalog::{LoadError, Tool};
use crate::events::{EventSink, HostEvent};
use crate::sandbox::SandboxIo;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use toka_spec::manifest::LimitSettings;
use toka_spec::outcome::{ErrorKind, Outcome, Output};
use toka_store::StoreError;
use tokio::sync::{broadcast, watch};

/// Finished agents kept in memory (without a store) for
/// `GET /v1/agents/{id}`; older ones are forgotten.
pub const RETAINED_FINISHED: usize = 1000;

/// Where an agent is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    /// Running.
    Running,
    /// Returned a result.
    Completed,
    /// Returned an error, trapped or hit a limit.
    Failed,
    /// Cancelled by a caller.
    Cancelled,
    /// Its replica stopped (crashed, was killed, restarted) before it
    /// finished.
    Interrupted,
}

/// What can be read about an agent at any time.
#[derive(Clone, Debug, Serialize)]
pub struct AgentStatus {
    /// The agent's id.
    pub id: String,
    /// Its name (from the agents file), or the workflow's.
    pub name: String,
    /// The workflow it runs.
    pub workflow: String,
    /// The workflow's version.
    pub version: Option<String>,
    /// The subject of the token that started it, if one did.
    pub subject: Option<String>,
    /// The replica that runs (or ran) it, with a store.
    pub replica: Option<String>,
    /// State.
    pub state: AgentState,
    /// Last reported progress, 0.0 ..= 1.0.
    #[serde(serialize_with = "fraction")]
    pub progress: f32,
    /// Last progress message.
    pub message: String,
    /// The result, once completed.
    pub output: Option<Value>,
    /// Why it failed or was cancelled.
    pub error: Option<Value>,
    /// What it spent, once finished.
    pub usage: Option<Value>,
    /// Unix seconds.
    pub started_at: f64,
    /// Milliseconds from start to end (or to now while running).
    pub elapsed_ms: f64,
}

fn fraction<S: serde::Serializer>(f: &f32, s: S) -> Result<S::Ok, S::Error> {
    toka_spec::outcome::fraction_json(*f).serialize(s)
}

/// One agent run of this process.
pub struct Agent {
    started: Instant,
    status: Mutex<AgentStatus>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    done: watch::Sender<bool>,
}

impl Agent {
    /// A copy of the current status.
    pub fn status(&self) -> AgentStatus {
        let mut s = match self.status.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if s.state == AgentState::Running {
            s.elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        }
        s
    }

    /// The agent's id.
    pub fn id(&self) -> String {
        self.status().id
    }

    /// Waits until the agent has finished (and, with a store, its end is
    /// stored); returns its final status.
    pub async fn wait(&self) -> AgentStatus {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
        self.status()
    }

    fn is_running(&self) -> bool {
        self.status().state == AgentState::Running
    }

    /// Ends the agent in `state` unless it already ended; true if this call
    /// ended it.
    fn finish(&self, state: AgentState, f: impl FnOnce(&mut AgentStatus)) -> bool {
        let Ok(mut s) = self.status.lock() else {
            return false;
        };
        if s.state != AgentState::Running {
            return false;
        }
        s.state = state;
        s.elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        f(&mut s);
        drop(s);
        self.done.send_replace(true);
        true
    }

    fn abort(&self) {
        if let Ok(mut t) = self.task.lock()
            && let Some(task) = t.take()
        {
            task.abort();
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct AgentRequest {
    /// A name for tables and events (default: the workflow's).
    pub name: Option<String>,
    /// The workflow tool's name.
    pub workflow: String,
    /// JSON input (an object).
    pub input: Value,
    /// Limits for this run, over the manifest's.
    pub limits: LimitSettings,
    /// Who starts it.
    pub caller: Caller,
    /// What the caller may use, when it is not the operator (a token).
    pub scope: Option<Arc<dyn toka_spec::policy::CallerScope>>,
}

/// Limits of one agent, as written in an agents file or a `POST /v1/agents`
/// body; they override the workflow manifest's.
#[derive(serde::Deserialize, Default, Clone, Copy, Debug)]
#[serde(deny_unknown_fields)]
pub struct AgentLimits {
    /// Fuel for the whole run, nested calls included.
    pub fuel: Option<u64>,
    /// Linear memory of the workflow.
    pub memory: Option<toka_spec::units::ByteSize>,
    /// Wall time of the whole run.
    pub timeout: Option<toka_spec::units::HumanDuration>,
    /// Output bytes.
    pub output: Option<toka_spec::units::ByteSize>,
    /// LLM tokens for the whole run.
    pub llm_tokens: Option<u64>,
}

impl From<AgentLimits> for LimitSettings {
    fn from(l: AgentLimits) -> LimitSettings {
        LimitSettings {
            fuel: l.fuel,
            memory: l.memory,
            timeout: l.timeout,
            output: l.output,
            cpu: None,
            llm_tokens: l.llm_tokens,
        }
    }
}

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The workflow cannot be found or loaded.
    #[error(transparent)]
    Load(Arc<LoadError>),
    /// A tool, not a workflow.
    #[error(
        "`{0}` is not a workflow (spec.executable.type: workflow); call tools with POST /v1/tools/{0}/invoke or `toka-host run`"
    )]
    NotWorkflow(String),
    /// The call path refused it: bad input, a capability not granted.
    #[error("{}", refused_message(.0))]
    Refused(Box<Outcome>),
    /// The run could not be recorded: the store is not reachable.
    #[error("cannot record the run, so it was not started: {0}")]
    Store(#[from] StoreError),
}

fn refused_message(o: &Outcome) -> String {
    match &o.result {
        Err(e) => e.to_string(),
        Ok(_) => "refused".into(),
    }
}

impl SpawnError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SpawnError::Load(e) => e.kind(),
            SpawnError::NotWorkflow(_) => ErrorKind::WrongKind,
            SpawnError::Refused(o) => o
                .result
                .as_ref()
                .err()
                .map_or(ErrorKind::Host, |e| e.kind()),
            SpawnError::Store(e) => store_kind(e),
        }
    }
}

/// The kind of a store failure as callers see it: unavailable while the
/// database cannot be reached.
pub fn store_kind(e: &StoreError) -> ErrorKind {
    if e.is_unavailable() {
        ErrorKind::Unavailable
    } else {
        e.kind()
    }
}

/// What a cancel request did.
#[derive(Debug)]
pub enum Cancelled {
    /// No such run.
    NotFound,
    /// It had finished already.
    AlreadyFinished(AgentStatus),
    /// It was cancelled here, now.
    Now(AgentStatus),
    /// It runs on another replica, which was asked to cancel it (it does
    /// within a second or so).
    Requested(AgentStatus),
}

/// Runs agents and keeps their state.
pub struct AgentHost {
    runtime: Arc<Runtime>,
    /// Runs of this process: with a store only those still running here;
    /// without, also the last finished ones.
    agents: Mutex<BTreeMap<u64, Arc<Agent>>>,
    next: AtomicU64,
    events: broadcast::Sender<Value>,
    durable: Option<Durable>,
}

impl AgentHost {
    /// An agent host keeping runs in memory, running workflows through
    /// `runtime` (whose grants a workflow gets, with each request's limits
    /// on top; the tools it calls get only their capabilities).
    pub fn new(runtime: Arc<Runtime>, events: broadcast::Sender<Value>) -> AgentHost {
        AgentHost {
            runtime,
            agents: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(1),
            events,
            durable: None,
        }
    }

    /// An agent host recording runs in a store; marks this replica's
    /// unfinished runs of an earlier life `interrupted`. Call
    /// [`AgentHost::run_background`] to renew leases, take cancel requests
    /// and prune.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached.
    pub async fn with_store(
        runtime: Arc<Runtime>,
        events: broadcast::Sender<Value>,
        options: DurableOptions,
    ) -> Result<AgentHost, StoreError> {
        let durable = Durable::start(options).await?;
        Ok(AgentHost {
            runtime,
            agents: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(1),
            events,
            durable: Some(durable),
        })
    }

    /// Events of every agent, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    /// Why the run store did not answer the last background contact
    /// (renewing leases, polling cancel requests); `None` while it answers
    /// or when there is no store. Agent runs cannot start or be read then.
    pub fn store_unreachable(&self) -> Option<String> {
        self.durable.as_ref().and_then(Durable::unreachable)
    }

    fn local(&self, id: &str) -> Option<Arc<Agent>> {
        self.agents
            .lock()
            .ok()?
            .values()
            .find(|a| a.id() == id)
            .cloned()
    }

    /// The run `id`: from the store when there is one (any replica's), else
    /// from memory.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    pub async fn get(&self, id: &str) -> Result<Option<AgentStatus>, StoreError> {
        let Some(d) = &self.durable else {
            return Ok(self.local(id).map(|a| a.status()));
        };
        // The store answers (and, when it is away, the caller learns so); a
        // run of this replica still running has fresher progress in memory.
        let stored = d.get(id).await?;
        Ok(match self.local(id).filter(|a| a.is_running()) {
            Some(a) => Some(a.status()),
            None => stored,
        })
    }

    /// Every run remembered, newest first.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    pub async fn list(&self) -> Result<Vec<AgentStatus>, StoreError> {
        let local: Vec<Arc<Agent>> = self
            .agents
            .lock()
            .map(|a| a.values().rev().cloned().collect())
            .unwrap_or_default();
        match &self.durable {
            None => Ok(local.iter().map(|a| a.status()).collect()),
            Some(d) => {
                let mut runs = d.list().await?;
                for r in &mut runs {
                    if let Some(a) = local.iter().find(|a| a.id() == r.id && a.is_running()) {
                        *r = a.status();
                    }
                }
                Ok(runs)
            }
        }
    }

    /// Runs running here now.
    pub fn running(&self) -> usize {
        self.agents
            .lock()
            .map(|a| a.values().filter(|a| a.is_running()).count())
            .unwrap_or(0)
    }

    /// Cancels run `id`: here if it runs here (its sandbox is dropped at
    /// the next yield point, within an epoch tick), else by asking the
    /// replica that runs it through the store.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached.
    pub async fn cancel(self: &Arc<Self>, id: &str) -> Result<Cancelled, StoreError> {
        if let Some(agent) = self.local(id) {
            if self.cancel_here(&agent).await {
                return Ok(Cancelled::Now(agent.status()));
            }
            if self.durable.is_none() {
                return Ok(Cancelled::AlreadyFinished(agent.status()));
            }
        }
        let Some(d) = &self.durable else {
            return Ok(Cancelled::NotFound);
        };
        d.request_cancel(id).await
    }

    /// Cancels a run of this replica; true if this ended it.
    async fn cancel_here(&self, agent: &Arc<Agent>) -> bool {
        if !agent.is_running() {
            return false;
        }
        agent.abort();
        let error = json!({
            "kind": "cancelled", "message": "cancelled by request",
            "exit_code": toka_spec::exit::TOOL_ERROR,
        });
        self.end(agent, AgentState::Cancelled, None, Some(error), None)
            .await
    }

    fn emit(&self, event: Value) {
        if let Some(a) = &self.runtime.audit
            && event["event"] != "progress"
            && event["event"] != "log"
        {
            a.record(json!({ "event": format!("agent-{}", event["event"].as_str().unwrap_or("")), "agent": event }));
        }
        if let (Some(d), Some(id)) = (&self.durable, event["id"].as_str()) {
            d.record_event(id, &event);
        }
        let _ = self.events.send(event);
    }

    /// Ends `agent` in `state`: stores it first when there is a store (and
    /// keeps trying while the store is away: nothing is reported done that
    /// was not stored), then marks it done and tells the listeners. True if
    /// this call ended it.
    async fn end(
        &self,
        agent: &Arc<Agent>,
        state: AgentState,
        output: Option<Value>,
        error: Option<Value>,
        usage: Option<Value>,
    ) -> bool {
        if let Some(d) = &self.durable {
            let id = agent.id();
            if !d
                .finish(&id, state, output.as_ref(), error.as_ref(), usage.as_ref())
                .await
            {
                // Another replica ended it first (it was interrupted while
                // this one could not renew its lease, say).
                return false;
            }
        }
        let ended = agent.finish(state, |s| {
            if state == AgentState::Completed {
                s.progress = 1.0;
            }
            s.output = output;
            s.error = error;
            s.usage = usage;
        });
        if ended {
            let s = agent.status();
            let event = if state == AgentState::Completed {
                "completed"
            } else {
                "failed"
            };
            self.emit(json!({
                "event": event, "id": s.id, "name": s.name, "workflow": s.workflow,
                "state": s.state, "output": s.output, "error": s.error, "usage": s.usage,
                "elapsed_ms": s.elapsed_ms,
            }));
            if self.durable.is_some()
                && let Ok(mut agents) = self.agents.lock()
            {
                agents.retain(|_, a| !Arc::ptr_eq(a, agent));
            }
        }
        ended
    }

    /// Starts the workflow `request` names.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when there is no such workflow, the input is wrong, a
    /// capability is not granted, or the run cannot be recorded; nothing
    /// runs then.
    pub async fn spawn(self: &Arc<Self>, request: AgentRequest) -> Result<Arc<Agent>, SpawnError> {
        let tool = self
            .runtime
            .catalog
            .get(&request.workflow)
            .await
            .map_err(SpawnError::Load)?;
        self.spawn_tool(tool, request).await
    }

    /// Starts `tool` (already loaded) with `request`'s input and limits.
    ///
    /// # Errors
    ///
    /// As [`AgentHost::spawn`].
    pub async fn spawn_tool(
        self: &Arc<Self>,
        tool: Arc<Tool>,
        request: AgentRequest,
    ) -> Result<Arc<Agent>, SpawnError> {
        let name = tool.name.clone();
        if !tool.is_workflow() {
            return Err(SpawnError::NotWorkflow(name));
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = match &self.durable {
            Some(_) => toka_store::new_run_id(),
            None => format!("agent-{n}"),
        };
        let label = request.name.clone().unwrap_or_else(|| name.clone());
        let version = tool.spec.as_ref().map(|s| s.version.to_string());
        let agent = Arc::new(Agent {
            started: Instant::now(),
            status: Mutex::new(AgentStatus {
                id: id.clone(),
                name: label.clone(),
                workflow: name.clone(),
                version: version.clone(),
                subject: request.scope.as_ref().map(|s| s.subject().to_string()),
                replica: self.durable.as_ref().map(|d| d.replica().to_string()),
                state: AgentState::Running,
                progress: 0.0,
                message: String::new(),
                output: None,
                error: None,
                usage: None,
                started_at: unix_seconds(SystemTime::now()),
                elapsed_ms: 0.0,
            }),
            task: Mutex::new(None),
            done: watch::channel(false).0,
        });
        let events = self.event_sink(&agent, &id, &name);
        let mut ctx = CallCtx::new(
            request.caller.clone(),
            SandboxIo::captured(&name, 0, events),
        );
        ctx.limits = request.limits;
        ctx.run_id = Some(id.clone());
        ctx.scope = request.scope.clone();
        let input = request.input.clone();
        let prepared = self
            .runtime
            .prepare(tool.clone(), request.input, ctx)
            .map_err(SpawnError::Refused)?;
        if let Some(d) = &self.durable {
            d.insert(&agent.status(), &request.caller, input, &tool.digest)
                .await?;
        }
        if let Ok(mut agents) = self.agents.lock() {
            agents.insert(n, agent.clone());
            if self.durable.is_none() && agents.len() > RETAINED_FINISHED {
                let old: Vec<u64> = agents
                    .iter()
                    .filter(|(_, a)| !a.is_running())
                    .map(|(k, _)| *k)
                    .take(agents.len() - RETAINED_FINISHED)
                    .collect();
                for k in old {
                    agents.remove(&k);
                }
            }
        }
        self.emit(json!({
            "event": "spawned", "id": id, "name": label, "workflow": name,
            "version": version, "digest": tool.digest,
        }));

        let host = self.clone();
        let runner = agent.clone();
        let task = tokio::spawn(async move {
            let outcome = host.runtime.execute(prepared).await;
            let usage = outcome.usage.and_then(|u| serde_json::to_value(u).ok());
            let (state, output, error) = match outcome.result {
                Ok(Output::Json(v)) => (AgentState::Completed, Some(v), None),
                Ok(other) => (
                    AgentState::Failed,
                    None,
                    Some(json!({
                        "kind": "host", "message": format!("unexpected output {other:?}"),
                        "exit_code": toka_spec::exit::INVALID,
                    })),
                ),
                Err(e) => {
                    let mut error = e.to_json();
                    if let Some(o) = error.as_object_mut() {
                        o.insert("exit_code".into(), json!(e.exit_code()));
                    }
                    (AgentState::Failed, None, Some(error))
                }
            };
            host.end(&runner, state, output, error, usage).await;
        });
        if let Ok(mut t) = agent.task.lock() {
            *t = Some(task.abort_handle());
        }
        Ok(agent)
    }

    /// Where a run's guest events go: its status, the listeners, and (with
    /// a store) its record.
    fn event_sink(self: &Arc<Self>, agent: &Arc<Agent>, id: &str, workflow: &str) -> EventSink {
        let host = Arc::downgrade(self);
        let agent = Arc::downgrade(agent);
        let (id, workflow) = (id.to_string(), workflow.to_string());
        Arc::new(move |tool: &str, e: HostEvent<'_>| {
            let (Some(host), Some(agent)) = (host.upgrade(), agent.upgrade()) else {
                return;
            };
            match e {
                HostEvent::Progress { fraction, message } if tool == workflow => {
                    if let Ok(mut s) = agent.status.lock() {
                        s.progress = fraction;
                        s.message = message.to_string();
                    }
                    if let Some(d) = &host.durable {
                        d.record_progress(&id, fraction, message);
                    }
                    host.emit(json!({
                        "event": "progress", "id": id,
                        "fraction": toka_spec::outcome::fraction_json(fraction), "message": message,
                    }));
                }
                HostEvent::Progress { fraction, message } => host.emit(json!({
                    "event": "log", "id": id, "tool": tool, "level": "info",
                    "message": format!("{:.0}% {message}", fraction * 100.0),
                })),
                HostEvent::Log { level, message } => host.emit(json!({
                    "event": "log", "id": id, "tool": tool, "level": level, "message": message,
                })),
            }
        })
    }

    /// With a store: renews this replica's leases, ends what another replica
    /// asked to cancel, marks runs of replicas that stopped renewing
    /// `interrupted`, and prunes old runs; until the host is dropped.
    pub async fn run_background(self: Arc<Self>) {
        let Some(d) = &self.durable else { return };
        let mut wakeup = d.cancel_wakeup();
        let mut tick = tokio::time::interval(d.poll_interval());
        let mut last_lease = Instant::now();
        let mut last_prune: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = wakeup.notified() => {}
            }
            for id in d.cancel_requests().await {
                if let Some(agent) = self.local(&id) {
                    self.cancel_here(&agent).await;
                }
            }
            if last_lease.elapsed() >= d.lease() / 3 {
                last_lease = Instant::now();
                if let Some(held) = d.renew().await {
                    // A run this replica no longer holds was interrupted by
                    // another replica while this one was away: stop it.
                    let lost: Vec<Arc<Agent>> = self
                        .agents
                        .lock()
                        .map(|a| {
                            a.values()
                                .filter(|a| a.is_running() && !held.contains(&a.id()))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    for agent in lost {
                        agent.abort();
                        agent.finish(AgentState::Interrupted, |_| {});
                        if let Ok(mut agents) = self.agents.lock() {
                            agents.retain(|_, a| !Arc::ptr_eq(a, &agent));
                        }
                    }
                    // Only right after this replica's own leases were
                    // renewed: when the store comes back after an outage
                    // longer than the lease, a sweep that ran before the
                    // renewal (the first query failing on a dead connection,
                    // the next one working) would find this replica's own
                    // live runs expired and interrupt them.
                    d.interrupt_expired().await;
                }
            }
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(Instant::now());
                d.prune().await;
            }
        }
    }
}

impl From<toka_store::RunRecord> for AgentStatus {
    fn from(r: toka_store::RunRecord) -> AgentStatus {
        use toka_store::RunState;
        let state = match r.state {
            RunState::Running => AgentState::Running,
            RunState::Completed => AgentState::Completed,
            RunState::Failed => AgentState::Failed,
            RunState::Cancelled => AgentState::Cancelled,
            RunState::Interrupted => AgentState::Interrupted,
        };
        let now_ms = i64::try_from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
        )
        .unwrap_or(i64::MAX);
        let end = r.finished_ms.unwrap_or(now_ms);
        AgentStatus {
            id: r.id,
            name: r.name,
            workflow: r.workflow,
            version: r.workflow_version,
            subject: r.subject,
            replica: Some(r.replica),
            state,
            progress: r.progress,
            message: r.message,
            output: r.result,
            error: r.error,
            usage: r.usage,
            started_at: r.started_ms as f64 / 1000.0,
            elapsed_ms: (end - r.started_ms).max(0) as f64,
        }
    }
}
