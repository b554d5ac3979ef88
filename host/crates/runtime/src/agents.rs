//! Agents: many workflow runs at once on tokio, each with an id, its own
//! sandbox and budget, a state that can be read at any time, and events
//! (`spawned`, `progress`, `completed`, `failed`) for whoever listens.
//! Shared by `toka-host run` (one agent), `orchestrate` (a file of them) and
//! `serve` (`/v1/agents`).

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
use toka_spec::outcome::{ErrorKind, Outcome, Output, Usage};
use tokio::sync::{broadcast, watch};

/// Finished agents kept for `GET /v1/agents/{id}`; older ones are forgotten.
const RETAINED_FINISHED: usize = 1000;

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
    /// The subject of the token that started it, if one did.
    pub subject: Option<String>,
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
    pub usage: Option<Usage>,
    /// Unix seconds.
    pub started_at: f64,
    /// Milliseconds from start to end (or to now while running).
    pub elapsed_ms: f64,
}

fn fraction<S: serde::Serializer>(f: &f32, s: S) -> Result<S::Ok, S::Error> {
    toka_spec::outcome::fraction_json(*f).serialize(s)
}

/// One agent run.
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

    /// Waits until the agent has finished; returns its final status.
    pub async fn wait(&self) -> AgentStatus {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
        self.status()
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
        }
    }
}

/// Runs agents and keeps their state.
pub struct AgentHost {
    runtime: Arc<Runtime>,
    agents: Mutex<BTreeMap<u64, Arc<Agent>>>,
    next: AtomicU64,
    events: broadcast::Sender<Value>,
}

impl AgentHost {
    /// An agent host running workflows through `runtime` (whose grants a
    /// workflow gets, with each request's limits on top; the tools it calls
    /// get only their capabilities).
    pub fn new(runtime: Arc<Runtime>, events: broadcast::Sender<Value>) -> AgentHost {
        AgentHost {
            runtime,
            agents: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(1),
            events,
        }
    }

    /// Events of every agent, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    /// The agent `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Agent>> {
        let n: u64 = id.strip_prefix("agent-")?.parse().ok()?;
        self.agents.lock().ok()?.get(&n).cloned()
    }

    /// Every agent still remembered, oldest first.
    pub fn list(&self) -> Vec<Arc<Agent>> {
        self.agents
            .lock()
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Cancels agent `id`: its sandbox is dropped at the next yield point
    /// (within an epoch tick). `None` if unknown, `Some(false)` if it had
    /// already finished.
    pub fn cancel(&self, id: &str) -> Option<bool> {
        let agent = self.get(id)?;
        let ended = agent.finish(AgentState::Cancelled, |s| {
            s.error = Some(json!({
                "kind": "cancelled", "message": "cancelled by request",
                "exit_code": toka_spec::exit::TOOL_ERROR,
            }));
        });
        if ended {
            if let Ok(mut t) = agent.task.lock()
                && let Some(task) = t.take()
            {
                task.abort();
            }
            let s = agent.status();
            self.emit(json!({
                "event": "failed", "id": s.id, "name": s.name, "workflow": s.workflow,
                "state": s.state, "error": s.error, "elapsed_ms": s.elapsed_ms,
            }));
        }
        Some(ended)
    }

    fn emit(&self, event: Value) {
        if let Some(a) = &self.runtime.audit
            && event["event"] != "progress"
            && event["event"] != "log"
        {
            a.record(json!({ "event": format!("agent-{}", event["event"].as_str().unwrap_or("")), "agent": event }));
        }
        let _ = self.events.send(event);
    }

    /// Starts the workflow `request` names.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when there is no such workflow, the input is wrong or
    /// a capability is not granted; nothing runs then.
    pub async fn spawn(self: &Arc<Self>, request: AgentRequest) -> Result<Arc<Agent>, SpawnError> {
        let tool = self
            .runtime
            .catalog
            .get(&request.workflow)
            .await
            .map_err(SpawnError::Load)?;
        self.spawn_tool(tool, request)
    }

    /// Starts `tool` (already loaded) with `request`'s input and limits.
    ///
    /// # Errors
    ///
    /// As [`AgentHost::spawn`].
    pub fn spawn_tool(
        self: &Arc<Self>,
        tool: Arc<Tool>,
        request: AgentRequest,
    ) -> Result<Arc<Agent>, SpawnError> {
        let name = tool.name.clone();
        if !tool.is_workflow() {
            return Err(SpawnError::NotWorkflow(name));
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("agent-{n}");
        let label = request.name.clone().unwrap_or_else(|| name.clone());
        let agent = Arc::new(Agent {
            started: Instant::now(),
            status: Mutex::new(AgentStatus {
                id: id.clone(),
                name: label.clone(),
                workflow: name.clone(),
                subject: request.scope.as_ref().map(|s| s.subject().to_string()),
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
        let events: EventSink = {
            let host = Arc::downgrade(self);
            let agent = Arc::downgrade(&agent);
            let (id, workflow) = (id.clone(), name.clone());
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
        };
        let mut ctx = CallCtx::new(
            request.caller.clone(),
            SandboxIo::captured(&name, 0, events),
        );
        ctx.limits = request.limits;
        ctx.run_id = Some(id.clone());
        ctx.scope = request.scope.clone();
        let prepared = self
            .runtime
            .prepare(tool.clone(), request.input, ctx)
            .map_err(SpawnError::Refused)?;
        if let Ok(mut agents) = self.agents.lock() {
            agents.insert(n, agent.clone());
            if agents.len() > RETAINED_FINISHED {
                let old: Vec<u64> = agents
                    .iter()
                    .filter(|(_, a)| a.status().state != AgentState::Running)
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
            "version": tool.spec.as_ref().map(|s| s.version.clone()), "digest": tool.digest,
        }));

        let host = self.clone();
        let runner = agent.clone();
        let task = tokio::spawn(async move {
            let outcome = host.runtime.execute(prepared).await;
            let usage = outcome.usage;
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
            let ended = runner.finish(state, |s| {
                if state == AgentState::Completed {
                    s.progress = 1.0;
                }
                s.output = output;
                s.error = error;
                s.usage = usage;
            });
            if ended {
                let s = runner.status();
                let event = if state == AgentState::Completed {
                    "completed"
                } else {
                    "failed"
                };
                host.emit(json!({
                    "event": event, "id": s.id, "name": s.name, "workflow": s.workflow,
                    "state": s.state, "output": s.output, "error": s.error, "usage": s.usage,
                    "elapsed_ms": s.elapsed_ms,
                }));
            }
        });
        if let Ok(mut t) = agent.task.lock() {
            *t = Some(task.abort_handle());
        }
        Ok(agent)
    }
}
