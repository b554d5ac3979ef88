//! Workflow runs: the context a `toka:plugin/workflow` component runs in
//! (which tools it may call, what is left of its budget, its model access)
//! and the host side of the `tools` and `llm` interfaces.
//!
//! A workflow's limits are a budget for the whole run. A nested call gets at
//! most what remains of the caller's fuel and time and is charged to the
//! caller's fuel when it returns (see [`install_fuel_hook`]); when the
//! caller's budget, not the callee's own limit, ended the callee, the
//! *caller* stops with its limit. Each callee runs in a sandbox of its own,
//! built from its own manifest and the operator's capability grants — never
//! from the caller's directories, environment or network.

use crate::audit::AuditLog;
use crate::engine::TokaEngine;
use crate::invoke::{self, Plugin, PluginKind};
use crate::llm::{ChatRequest, LlmClient, RequestOrigin, Role};
use crate::manifest::{self, Capability, ToolSpec};
use crate::outcome::{CallError, LimitExceeded, Output, ToolErrorKind};
use crate::policy::{self, Grants, Limits, Policy};
use crate::sandbox::{GuestToolError, SandboxIo, State, llm_types};
use crate::shim::{self, ShimOptions};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::{CallHook, Store};
use wasmtime_wasi::WasiCtx;

/// How deep workflows may call workflows (the top-level run is depth 1).
pub const MAX_CALL_DEPTH: usize = 8;

/// A tool ready to be called: its manifest and, for wasm tools, its
/// compiled and linked code.
pub struct Callable {
    /// The manifest.
    pub spec: ToolSpec,
    /// Compiled and linked; `None` for subprocess tools.
    pub plugin: Option<Plugin>,
    /// Content digest of what runs.
    pub digest: String,
}

/// Validates, compiles and links the tool of `spec`.
///
/// # Errors
///
/// A message naming the file and what is wrong.
pub fn load_callable(engine: &TokaEngine, spec: ToolSpec) -> Result<Callable, String> {
    let file = spec.manifest.clone();
    if !spec.executable.kind.is_wasm() {
        let digest = spec
            .executable
            .sha256
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default();
        return Ok(Callable {
            spec,
            plugin: None,
            digest,
        });
    }
    let bytes = std::fs::read(&spec.executable.path).map_err(|e| {
        format!(
            "{}: {}",
            spec.executable.path.display(),
            manifest::io_reason(&e)
        )
    })?;
    let loaded = engine
        .load(&bytes)
        .map_err(|e| format!("{}: {e}", spec.executable.path.display()))?;
    if let Some(pin) = &spec.executable.sha256
        && *pin != loaded.digest
    {
        return Err(format!(
            "{}: {}",
            file.display(),
            manifest::pin_mismatch(&file, &spec.executable.path, &loaded.digest, pin)
        ));
    }
    let digest = loaded.digest.to_string();
    let plugin = Plugin::new(
        engine,
        spec.name.as_str(),
        loaded,
        Some(spec.executable.kind),
    )
    .map_err(|e| format!("{}: {e}", file.display()))?;
    if plugin.kind == PluginKind::Command || plugin.kind == PluginKind::Preview1 {
        return Err(format!(
            "{}: `{}` is {}; only tools and workflows take JSON input and can be called",
            file.display(),
            spec.name,
            plugin.kind.describe()
        ));
    }
    Ok(Callable {
        spec,
        plugin: Some(plugin),
        digest,
    })
}

/// Where a workflow's `tools.call` finds the tool it names.
#[async_trait::async_trait]
pub trait ToolSource: Send + Sync {
    /// The tool called `name`, or why there is none.
    async fn get(&self, name: &str) -> Result<Arc<Callable>, String>;
}

/// A tool loaded at most once, by whichever run asks first.
type LoadOnce = tokio::sync::OnceCell<Result<Arc<Callable>, String>>;

/// Tools of a manifests directory, compiled on first use and kept for the
/// life of the process (`run`, `orchestrate`).
pub struct DirTools {
    engine: Arc<TokaEngine>,
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<LoadOnce>>>,
}

impl DirTools {
    /// The tools of `dir`.
    pub fn new(engine: Arc<TokaEngine>, dir: PathBuf) -> DirTools {
        DirTools {
            engine,
            dir,
            loaded: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl ToolSource for DirTools {
    async fn get(&self, name: &str) -> Result<Arc<Callable>, String> {
        let cell = {
            let mut loaded = self
                .loaded
                .lock()
                .map_err(|_| "tool table poisoned".to_string())?;
            loaded.entry(name.to_string()).or_default().clone()
        };
        // One compile per tool however many runs ask at once.
        cell.get_or_init(|| async {
            let engine = self.engine.clone();
            let dir = self.dir.clone();
            let owned = name.to_string();
            tokio::task::spawn_blocking(move || {
                let spec = manifest::find_by_name(&dir, &owned).map_err(|e| e.to_string())?;
                load_callable(&engine, spec).map(Arc::new)
            })
            .await
            .map_err(|e| format!("loading `{name}` failed: {e}"))?
        })
        .await
        .clone()
    }
}

/// What every frame of one run shares: the operator's configuration and
/// the run's token budget.
pub struct RunContext {
    /// The run's id (in events and the audit log).
    pub id: String,
    /// The engine callees are instantiated in.
    pub engine: Arc<TokaEngine>,
    /// Where callees are found.
    pub tools: Arc<dyn ToolSource>,
    /// Capabilities the operator grants (callees get these and nothing else
    /// from the operator).
    pub capabilities: BTreeSet<Capability>,
    /// How subprocess callees run.
    pub shim: ShimOptions,
    /// The model, when one is configured.
    pub llm: Option<Arc<LlmClient>>,
    /// Where LLM requests are recorded.
    pub audit: Option<Arc<AuditLog>>,
    token_budget: AtomicU64,
    tokens_used: AtomicU64,
}

impl RunContext {
    /// A run context; the token budget is set by the top-level workflow's
    /// policy when it starts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        engine: Arc<TokaEngine>,
        tools: Arc<dyn ToolSource>,
        capabilities: BTreeSet<Capability>,
        shim: ShimOptions,
        llm: Option<Arc<LlmClient>>,
        audit: Option<Arc<AuditLog>>,
    ) -> RunContext {
        RunContext {
            id,
            engine,
            tools,
            capabilities,
            shim,
            llm,
            audit,
            token_budget: AtomicU64::new(0),
            tokens_used: AtomicU64::new(0),
        }
    }

    /// Tokens spent so far by the whole run.
    pub fn tokens_used(&self) -> u64 {
        self.tokens_used.load(Ordering::Relaxed)
    }

    /// The frame of the top-level workflow `policy` describes.
    pub fn root_frame(self: &Arc<Self>, spec: Option<&ToolSpec>, policy: &Policy) -> Frame {
        self.token_budget
            .store(policy.limits.llm_tokens, Ordering::Relaxed);
        Frame::new(self.clone(), Vec::new(), spec, policy)
    }
}

/// One workflow's place in a run: who called it, what it may call, and
/// what is left of its budget. Lives in the workflow's store.
pub struct Frame {
    run: Arc<RunContext>,
    /// Workflow names from the top-level run down to this one.
    stack: Vec<String>,
    allowed: Vec<String>,
    may_call: bool,
    may_llm: bool,
    deadline: Instant,
    limits: Limits,
    /// Fuel left when the guest last called into the host.
    fuel_at_host: u64,
    /// Fuel spent by nested calls, charged when the host call returns.
    fuel_owed: u64,
}

impl Frame {
    fn new(
        run: Arc<RunContext>,
        mut stack: Vec<String>,
        spec: Option<&ToolSpec>,
        policy: &Policy,
    ) -> Frame {
        stack.push(policy.tool.clone());
        Frame {
            run,
            stack,
            allowed: spec
                .map(|s| s.sandbox.tools.iter().map(|t| t.to_string()).collect())
                .unwrap_or_default(),
            may_call: policy.capabilities.contains(&Capability::ToolCall),
            may_llm: policy.capabilities.contains(&Capability::Llm),
            deadline: Instant::now() + policy.limits.timeout,
            limits: policy.limits,
            fuel_at_host: policy.limits.fuel,
            fuel_owed: 0,
        }
    }

    /// The run this frame belongs to.
    pub fn run(&self) -> &Arc<RunContext> {
        &self.run
    }

    fn name(&self) -> &str {
        self.stack.last().map_or("", String::as_str)
    }

    fn chain(&self, next: &str) -> String {
        let mut names: Vec<&str> = self.stack.iter().map(String::as_str).collect();
        names.push(next);
        names.join(" → ")
    }
}

/// Makes nested calls spend the caller's fuel: remembers the fuel left when
/// the guest enters the host (the most a nested call may get) and deducts
/// what nested calls consumed when it returns.
pub fn install_fuel_hook(store: &mut Store<State<WasiCtx>>) {
    store.call_hook(|mut cx, hook| {
        match hook {
            CallHook::CallingHost => {
                let fuel = cx.get_fuel()?;
                if let Some(f) = cx.data_mut().frame.as_mut() {
                    f.fuel_at_host = fuel;
                }
            }
            CallHook::ReturningFromHost => {
                let owed = cx
                    .data_mut()
                    .frame
                    .as_mut()
                    .map_or(0, |f| std::mem::take(&mut f.fuel_owed));
                if owed > 0 {
                    let fuel = cx.get_fuel()?;
                    cx.set_fuel(fuel.saturating_sub(owed))?;
                }
            }
            CallHook::CallingWasm | CallHook::ReturningFromWasm => {}
        }
        Ok(())
    });
}

fn guest_error(kind: ToolErrorKind, message: String) -> GuestToolError {
    match kind {
        ToolErrorKind::InvalidInput => GuestToolError::InvalidInput(message),
        ToolErrorKind::Denied => GuestToolError::Denied(message),
        ToolErrorKind::NotFound => GuestToolError::NotFound(message),
        ToolErrorKind::Failed => GuestToolError::Failed(message),
        ToolErrorKind::LimitExceeded => GuestToolError::LimitExceeded(message),
    }
}

type HostResult<T> = wasmtime::Result<Result<T, GuestToolError>>;

impl crate::sandbox::workflow_bindings::toka::plugin::tools::Host for State<WasiCtx> {
    async fn call(&mut self, name: String, input: String) -> HostResult<String> {
        let Some(frame) = self.frame.as_ref() else {
            return Ok(Err(GuestToolError::Denied(format!(
                "`{}` is a tool, not a workflow: only workflows (world toka:plugin/workflow) may call tools",
                self.tool
            ))));
        };
        let me = frame.name().to_string();
        if !frame.may_call {
            return Ok(Err(GuestToolError::Denied(format!(
                "`{me}` may not call tools: its manifest must require the `tool-call` capability and the operator must grant it (--grant tool-call)"
            ))));
        }
        if !frame.allowed.contains(&name) {
            return Ok(Err(GuestToolError::Denied(format!(
                "`{me}` may not call `{name}`: it is not in spec.security.sandbox.tools of `{me}`'s manifest (which lists: {})",
                if frame.allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    frame.allowed.join(", ")
                }
            ))));
        }
        if frame.stack.contains(&name) {
            return Ok(Err(GuestToolError::Denied(format!(
                "call cycle refused: {}",
                frame.chain(&name)
            ))));
        }
        if frame.stack.len() >= MAX_CALL_DEPTH {
            return Ok(Err(GuestToolError::LimitExceeded(format!(
                "call depth limit of {MAX_CALL_DEPTH} reached: {}",
                frame.chain(&name)
            ))));
        }
        let run = frame.run.clone();
        let callable = match run.tools.get(&name).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(GuestToolError::NotFound(format!("`{name}`: {e}")))),
        };
        let spec = &callable.spec;
        let value: serde_json::Value = match serde_json::from_str(&input) {
            Ok(v) => v,
            Err(e) => {
                return Ok(Err(GuestToolError::InvalidInput(format!(
                    "input for `{name}` is not JSON: {e}"
                ))));
            }
        };
        if let Err(e) = manifest::check_input(&spec.parameters, &value) {
            return Ok(Err(GuestToolError::InvalidInput(format!("`{name}`: {e}"))));
        }
        let grants = Grants {
            capabilities: run.capabilities.clone(),
            ..Grants::default()
        };
        let mut policy =
            match policy::resolve(&name, Some(spec), &grants, |k| std::env::var(k).ok()) {
                Ok(p) => p,
                Err(e) => return Ok(Err(GuestToolError::Denied(e.to_string()))),
            };

        // The callee gets at most what is left of this workflow's budget.
        let frame = self.frame.as_ref().expect("checked above");
        let time_left = frame.deadline.saturating_duration_since(Instant::now());
        if time_left.is_zero() {
            return Err(wasmtime::Error::new(LimitExceeded::Timeout {
                limit: frame.limits.timeout,
            }));
        }
        let time_bound = time_left < policy.limits.timeout;
        policy.limits.timeout = policy.limits.timeout.min(time_left);
        let fuel_bound = frame.fuel_at_host < policy.limits.fuel;
        policy.limits.fuel = policy.limits.fuel.min(frame.fuel_at_host.max(1));
        policy.limits.output = policy.limits.output.min(self.budget.remaining().max(1));
        let (my_timeout, my_fuel) = (frame.limits.timeout, frame.limits.fuel);

        let outcome = match &callable.plugin {
            Some(plugin) => {
                let io = SandboxIo::captured(&name, policy.limits.output, self.events.clone());
                let nested = (plugin.kind == PluginKind::Workflow)
                    .then(|| Frame::new(run.clone(), frame.stack.clone(), Some(spec), &policy));
                Box::pin(invoke::invoke_with(
                    &run.engine,
                    plugin,
                    &policy,
                    io,
                    &input,
                    nested,
                ))
                .await
            }
            None => match shim::run(spec, &policy, &input, &run.shim, &self.events).await {
                Ok(o) => o,
                Err(e) => return Ok(Err(GuestToolError::Failed(format!("`{name}`: {e}")))),
            },
        };
        if let Some(f) = self.frame.as_mut() {
            f.fuel_owed = f.fuel_owed.saturating_add(outcome.usage.fuel_consumed);
        }
        match outcome.result {
            Ok(Output::Tool(json)) => {
                self.charge(json.len())?;
                Ok(Ok(json))
            }
            Ok(Output::Text(text)) => {
                self.charge(text.len())?;
                Ok(Ok(serde_json::Value::String(text).to_string()))
            }
            Ok(Output::Exit(code)) => Ok(Err(GuestToolError::Failed(format!(
                "`{name}` is a command (exit code {code}), not a tool"
            )))),
            Err(CallError::Limit {
                limit: LimitExceeded::Timeout { .. },
                ..
            }) if time_bound => Err(wasmtime::Error::new(LimitExceeded::Timeout {
                limit: my_timeout,
            })),
            Err(CallError::Limit {
                limit: LimitExceeded::Fuel { .. },
                ..
            }) if fuel_bound => Err(wasmtime::Error::new(LimitExceeded::Fuel { limit: my_fuel })),
            Err(CallError::Tool { kind, message, .. }) => {
                Ok(Err(guest_error(kind, format!("`{name}`: {message}"))))
            }
            Err(e @ CallError::Limit { .. }) => {
                Ok(Err(GuestToolError::LimitExceeded(e.to_string())))
            }
            Err(e) => Ok(Err(GuestToolError::Failed(e.to_string()))),
        }
    }
}

impl crate::sandbox::workflow_bindings::toka::plugin::llm::Host for State<WasiCtx> {
    async fn complete(&mut self, request: llm_types::Request) -> HostResult<llm_types::Response> {
        let Some(frame) = self.frame.as_ref() else {
            return Ok(Err(GuestToolError::Denied(format!(
                "`{}` is a tool, not a workflow: only workflows may ask the language model",
                self.tool
            ))));
        };
        let me = frame.name().to_string();
        if !frame.may_llm {
            return Ok(Err(GuestToolError::Denied(format!(
                "`{me}` may not ask the language model: its manifest must require the `llm` capability and the operator must grant it (--grant llm)"
            ))));
        }
        let run = frame.run.clone();
        let Some(llm) = run.llm.clone() else {
            return Ok(Err(GuestToolError::Failed(
                "no language model is configured on this host: the operator sets TOKA_LLM_PROVIDER (openai or anthropic) and TOKA_LLM_API_KEY (or OPENAI_API_KEY / ANTHROPIC_API_KEY), and TOKA_LLM_BASE_URL for another compatible server".into(),
            )));
        };
        let budget = run.token_budget.load(Ordering::Relaxed);
        let used = run.tokens_used.load(Ordering::Relaxed);
        let left = budget.saturating_sub(used);
        if left == 0 {
            return Ok(Err(GuestToolError::LimitExceeded(format!(
                "the run's LLM token budget of {budget} is spent; raise it with --llm-tokens or spec.security.sandbox.llm_tokens"
            ))));
        }
        let deadline = frame.deadline;
        let (my_timeout, configured_max) = (frame.limits.timeout, llm.config().max_tokens);
        let wanted = request.max_tokens.unwrap_or(configured_max);
        let chat = ChatRequest {
            messages: request
                .messages
                .into_iter()
                .map(|m| {
                    let role = match m.role {
                        llm_types::Role::System => Role::System,
                        llm_types::Role::User => Role::User,
                        llm_types::Role::Assistant => Role::Assistant,
                    };
                    (role, m.content)
                })
                .collect(),
            model: request.model,
            max_tokens: Some(wanted.min(u32::try_from(left).unwrap_or(u32::MAX))),
            temperature: request.temperature,
        };
        let origin = RequestOrigin {
            run: run.id.clone(),
            workflow: me,
        };
        let result = llm.complete(&chat, deadline, &origin).await;
        if Instant::now() >= deadline {
            return Err(wasmtime::Error::new(LimitExceeded::Timeout {
                limit: my_timeout,
            }));
        }
        match result {
            Ok(r) => {
                run.tokens_used.fetch_add(
                    u64::from(r.input_tokens) + u64::from(r.output_tokens),
                    Ordering::Relaxed,
                );
                Ok(Ok(llm_types::Response {
                    content: r.content,
                    model: r.model,
                    usage: llm_types::Usage {
                        input_tokens: r.input_tokens,
                        output_tokens: r.output_tokens,
                    },
                    stop_reason: r.stop_reason,
                }))
            }
            Err(e) => Ok(Err(GuestToolError::Failed(e.to_string()))),
        }
    }
}
