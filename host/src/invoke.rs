//! Invocation: runs one call of a compiled plugin inside a fresh sandbox
//! and turns whatever happens (a result, an exit code, a trap, a limit) into
//! an [`Outcome`].

use crate::engine::{Compiled, Loaded, TokaEngine};
use crate::manifest::ExecutableKind;
use crate::outcome::{CallError, LimitExceeded, Outcome, Output, ToolErrorKind, Usage};
use crate::policy::Policy;
use crate::sandbox::{self, OutputBudget, SandboxIo, State, ToolBindingsPre, WorkflowBindingsPre};
use crate::workflow::Frame;
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Store, Trap};
use wasmtime_wasi::{I32Exit, WasiCtx};

/// The outer timer fires this long after the policy's timeout: the epoch
/// deadline normally ends a call first; this catches a guest blocked inside
/// a host call, where epochs are not checked.
const OUTER_GRACE: Duration = Duration::from_millis(100);

/// What kind of program a plugin is, decided from its exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// A `toka:plugin/tool` component: JSON in, JSON out.
    Tool,
    /// A `toka:plugin/workflow` component: JSON in, JSON out, calling
    /// tools and a language model through the host.
    Workflow,
    /// A `wasi:cli/command` component.
    Command,
    /// A WASI preview1 core module with `_start`.
    Preview1,
}

impl PluginKind {
    /// How the kind is described to users.
    pub fn describe(self) -> &'static str {
        match self {
            PluginKind::Tool => "a toka:plugin tool component",
            PluginKind::Workflow => "a toka:plugin workflow component",
            PluginKind::Command => "a wasi:cli/command component",
            PluginKind::Preview1 => "a WASI preview1 command module",
        }
    }
}

/// A compiled plugin and what it is.
#[derive(Clone)]
pub struct Plugin {
    /// Its name (tool name or file name).
    pub name: String,
    /// Compiled code and cache information.
    pub loaded: Loaded,
    /// Tool, command or preview1 module.
    pub kind: PluginKind,
    /// Imports resolved once, so each call only instantiates.
    linked: Linked,
}

/// A component linked against the host's imports, ready to instantiate.
#[derive(Clone)]
enum Linked {
    Tool(ToolBindingsPre<State<WasiCtx>>),
    Workflow(WorkflowBindingsPre<State<WasiCtx>>),
    Command(wasmtime_wasi::p2::bindings::CommandPre<State<WasiCtx>>),
    /// Preview1 modules are linked per call (their linker holds the store).
    Module,
}

impl Plugin {
    /// Classifies `loaded`. When a manifest declared a kind, the plugin must
    /// be of that kind.
    ///
    /// # Errors
    ///
    /// [`CallError::Link`] when the plugin is of no world the host runs, or
    /// not of the declared kind.
    pub fn new(
        engine: &TokaEngine,
        name: &str,
        loaded: Loaded,
        declared: Option<ExecutableKind>,
    ) -> Result<Plugin, CallError> {
        let link = |message: String| CallError::Link {
            tool: name.to_string(),
            message,
        };
        let kind = match &loaded.compiled {
            Compiled::Component(c) => classify_component(engine, c).map_err(link)?,
            Compiled::Module(m) => {
                if m.get_export("_start").is_none() {
                    return Err(link(
                        "this preview1 module exports no `_start` function; only command modules (programs with a main) can run".into(),
                    ));
                }
                PluginKind::Preview1
            }
        };
        match (declared, kind) {
            (None, _)
            | (Some(ExecutableKind::Component), PluginKind::Tool)
            | (Some(ExecutableKind::Workflow), PluginKind::Workflow)
            | (Some(ExecutableKind::Command), PluginKind::Command | PluginKind::Preview1) => {}
            (Some(d), k) => {
                let fix = match k {
                    PluginKind::Tool => "component",
                    PluginKind::Workflow => "workflow",
                    PluginKind::Command | PluginKind::Preview1 => "command",
                };
                return Err(link(format!(
                    "the manifest says `type: {d}` but the file is {}; set spec.executable.type to `{fix}`",
                    k.describe()
                )));
            }
        }
        let linked = match &loaded.compiled {
            Compiled::Module(_) => Linked::Module,
            Compiled::Component(c) => {
                let linker =
                    sandbox::component_linker(engine).map_err(|e| link(format!("{e:#}")))?;
                let pre = linker.instantiate_pre(c).map_err(|e| {
                    link(format!(
                        "{e:#}; the host provides wasi:*@0.2.x and toka:plugin/{{host,tools,llm}}@0.1.0, nothing else"
                    ))
                })?;
                let e = |e: wasmtime::Error| link(format!("{e:#}"));
                match kind {
                    PluginKind::Tool => Linked::Tool(ToolBindingsPre::new(pre).map_err(e)?),
                    PluginKind::Workflow => {
                        Linked::Workflow(WorkflowBindingsPre::new(pre).map_err(e)?)
                    }
                    PluginKind::Command | PluginKind::Preview1 => Linked::Command(
                        wasmtime_wasi::p2::bindings::CommandPre::new(pre).map_err(e)?,
                    ),
                }
            }
        };
        Ok(Plugin {
            name: name.to_string(),
            loaded,
            kind,
            linked,
        })
    }
}

fn classify_component(engine: &TokaEngine, c: &Component) -> Result<PluginKind, String> {
    let ty = c.component_type();
    let exports: Vec<String> = ty
        .exports(engine.engine())
        .map(|(n, _)| n.to_string())
        .collect();
    if exports
        .iter()
        .any(|n| n.starts_with("toka:plugin/handler@0.1."))
    {
        Ok(PluginKind::Tool)
    } else if exports.iter().any(|n| n == "run") {
        Ok(PluginKind::Workflow)
    } else if exports.iter().any(|n| n.starts_with("wasi:cli/run@0.2.")) {
        Ok(PluginKind::Command)
    } else {
        Err(format!(
            "this component is of no world Toka runs: it exports [{}]; a tool exports \
             toka:plugin/handler@0.1.0 (world `toka:plugin/tool`, see wit/), a workflow \
             exports `run` (world `toka:plugin/workflow`) and a command \
             exports wasi:cli/run@0.2.x (any `wasi:cli/command` program)",
            exports.join(", ")
        ))
    }
}

/// Runs one call of `plugin` in a fresh sandbox built from `policy`.
/// `input` is the JSON input of a tool (ignored for commands, which get
/// `io.args` and stdin).
///
/// Never panics on guest behaviour: every failure, including building the
/// sandbox, is in the returned [`Outcome`].
pub async fn invoke(
    engine: &TokaEngine,
    plugin: &Plugin,
    policy: &Policy,
    io: SandboxIo,
    input: &str,
) -> Outcome {
    invoke_with(engine, plugin, policy, io, input, None).await
}

/// [`invoke`], for a workflow with its place in a run (`frame`); `None`
/// for tools and commands. A workflow without a frame is refused.
pub async fn invoke_with(
    engine: &TokaEngine,
    plugin: &Plugin,
    policy: &Policy,
    io: SandboxIo,
    input: &str,
    frame: Option<Frame>,
) -> Outcome {
    let budget = OutputBudget::new(policy.limits.output);
    let start = Instant::now();
    let tool = plugin.name.as_str();
    let setup_failed = |message: String| Outcome {
        result: Err(CallError::Setup {
            tool: tool.to_string(),
            message,
        }),
        usage: Usage::default(),
    };
    let mut builder = match sandbox::wasi_builder(policy, &io, &budget) {
        Ok(b) => b,
        Err(e) => return setup_failed(e.to_string()),
    };
    let outer = policy.limits.timeout + OUTER_GRACE;
    let timed_out = || {
        Failure::Call(CallError::Limit {
            tool: tool.to_string(),
            limit: LimitExceeded::Timeout {
                limit: policy.limits.timeout,
            },
        })
    };

    match &plugin.loaded.compiled {
        Compiled::Component(_) => {
            if plugin.kind == PluginKind::Workflow && frame.is_none() {
                return setup_failed(
                    "it is a workflow and needs a run context: start it with `toka-host run`, `toka-host orchestrate` or POST /v1/agents".into(),
                );
            }
            let mut state = State::new(builder.build(), policy, &budget, &io.events, tool);
            let is_workflow = frame.is_some();
            state.frame = frame;
            let mut store = match sandbox::new_store(engine, policy, state) {
                Ok(s) => s,
                Err(e) => return setup_failed(format!("{e:#}")),
            };
            if is_workflow {
                crate::workflow::install_fuel_hook(&mut store);
            }
            let call = call_component(&plugin.linked, &mut store, input, tool);
            let result = match tokio::time::timeout(outer, call).await {
                Ok(r) => r.and_then(|out| check_result(out, &budget, tool)),
                Err(_) => Err(timed_out()),
            };
            let result = result.or_else(|e| classify(e, engine, policy, tool));
            finish(result, &store, policy, &budget, start)
        }
        Compiled::Module(module) => {
            let state = State::new(builder.build_p1(), policy, &budget, &io.events, tool);
            let mut store = match sandbox::new_store(engine, policy, state) {
                Ok(s) => s,
                Err(e) => return setup_failed(format!("{e:#}")),
            };
            let call = call_module(engine, module, &mut store);
            let result = match tokio::time::timeout(outer, call).await {
                Ok(r) => r.map_err(Failure::Wasm),
                Err(_) => Err(timed_out()),
            };
            let result = result.or_else(|e| classify(e, engine, policy, tool));
            finish(result, &store, policy, &budget, start)
        }
    }
}

/// A call that did not produce output: either already understood, or a raw
/// wasmtime error still to be classified.
enum Failure {
    Call(CallError),
    Wasm(wasmtime::Error),
}

async fn call_component(
    linked: &Linked,
    store: &mut Store<State<WasiCtx>>,
    input: &str,
    tool: &str,
) -> Result<Output, Failure> {
    match linked {
        Linked::Tool(pre) => {
            let bindings = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Failure::Wasm)?;
            let result = bindings
                .toka_plugin_handler()
                .call_invoke(&mut *store, input)
                .await
                .map_err(Failure::Wasm)?;
            result.map(Output::Tool).map_err(|e| tool_error(e, tool))
        }
        Linked::Workflow(pre) => {
            let bindings = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Failure::Wasm)?;
            let result = bindings
                .call_run(&mut *store, input)
                .await
                .map_err(Failure::Wasm)?;
            result.map(Output::Tool).map_err(|e| tool_error(e, tool))
        }
        Linked::Command(pre) => {
            let command = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Failure::Wasm)?;
            match command.wasi_cli_run().call_run(&mut *store).await {
                Ok(Ok(())) => Ok(Output::Exit(0)),
                Ok(Err(())) => Ok(Output::Exit(1)),
                Err(e) => Err(Failure::Wasm(e)),
            }
        }
        Linked::Module => Err(Failure::Call(CallError::Link {
            tool: tool.to_string(),
            message: "a preview1 module is not a component".into(),
        })),
    }
}

fn tool_error(e: crate::sandbox::GuestToolError, tool: &str) -> Failure {
    use crate::sandbox::GuestToolError as E;
    let (kind, message) = match e {
        E::InvalidInput(m) => (ToolErrorKind::InvalidInput, m),
        E::Denied(m) => (ToolErrorKind::Denied, m),
        E::NotFound(m) => (ToolErrorKind::NotFound, m),
        E::Failed(m) => (ToolErrorKind::Failed, m),
        E::LimitExceeded(m) => (ToolErrorKind::LimitExceeded, m),
    };
    Failure::Call(CallError::Tool {
        tool: tool.to_string(),
        kind,
        message,
    })
}

async fn call_module(
    engine: &TokaEngine,
    module: &wasmtime::Module,
    store: &mut Store<State<wasmtime_wasi::p1::WasiP1Ctx>>,
) -> wasmtime::Result<Output> {
    let mut linker = sandbox::module_linker(engine)?;
    linker.module_async(&mut *store, "", module).await?;
    let start = linker
        .get_default(&mut *store, "")?
        .typed::<(), ()>(&*store)?;
    start.call_async(&mut *store, ()).await?;
    Ok(Output::Exit(0))
}

/// Charges a tool's result to the output budget and checks it is JSON.
fn check_result(out: Output, budget: &OutputBudget, tool: &str) -> Result<Output, Failure> {
    if let Output::Tool(json) = &out {
        if budget.charge(json.len()).is_err() {
            return Err(Failure::Call(CallError::Limit {
                tool: tool.to_string(),
                limit: budget.exceeded(),
            }));
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(json) {
            return Err(Failure::Call(CallError::BadResult {
                tool: tool.to_string(),
                message: e.to_string(),
            }));
        }
    }
    Ok(out)
}

/// Turns a failure into an exit code (a command's `exit(n)` is not a
/// failure) or a typed error naming the limit or the trap.
fn classify(
    failure: Failure,
    engine: &TokaEngine,
    policy: &Policy,
    tool: &str,
) -> Result<Output, CallError> {
    let e = match failure {
        Failure::Call(c) => return Err(c),
        Failure::Wasm(e) => e,
    };
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ok(Output::Exit(exit.0));
    }
    let limit = |limit| {
        Err(CallError::Limit {
            tool: tool.to_string(),
            limit,
        })
    };
    if let Some(l) = e.downcast_ref::<LimitExceeded>() {
        return limit(l.clone());
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => limit(LimitExceeded::Fuel {
            limit: policy.limits.fuel,
        }),
        Some(Trap::StackOverflow) => limit(LimitExceeded::Stack {
            limit: engine.max_wasm_stack(),
        }),
        Some(Trap::Interrupt) => limit(LimitExceeded::Timeout {
            limit: policy.limits.timeout,
        }),
        _ => Err(CallError::Trap {
            tool: tool.to_string(),
            message: format!("{e:#}"),
        }),
    }
}

fn finish<W>(
    result: Result<Output, CallError>,
    store: &Store<State<W>>,
    policy: &Policy,
    budget: &OutputBudget,
    start: Instant,
) -> Outcome {
    let remaining = store.get_fuel().unwrap_or(0);
    let llm_tokens = store
        .data()
        .frame
        .as_ref()
        .map_or(0, |f| f.run().tokens_used());
    Outcome {
        result,
        usage: Usage {
            fuel_consumed: policy.limits.fuel.saturating_sub(remaining),
            peak_memory: store.data().limiter.peak_memory(),
            wall_time: start.elapsed(),
            output_bytes: budget.used(),
            llm_tokens,
        },
    }
}
