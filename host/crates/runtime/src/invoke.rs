//! Invocation of compiled WebAssembly: what kind of program a compiled
//! plugin is ([`Wasm::new`] decides from its exports and links it once),
//! and one call of it in a fresh sandbox ([`invoke`]), with whatever happens
//! (a result, an exit code, a trap, a limit) turned into a typed result.
//!
//! Only the call path ([`crate::call`]) calls [`invoke`]; it has resolved
//! the policy and checked the input first.

use crate::engine::{Compiled, Loaded, TokaEngine};
use crate::sandbox::{
    self, Frame, GuestToolError, SandboxIo, State, ToolBindingsPre, WorkflowBindingsPre,
};
use std::time::{Duration, Instant};
use toka_spec::manifest::ExecutableKind;
use toka_spec::outcome::{CallError, LimitExceeded, Output, ToolErrorKind, Usage};
use toka_spec::policy::Policy;
use wasmtime::component::Component;
use wasmtime::{Store, Trap};
use wasmtime_wasi::{I32Exit, WasiCtx};

/// The outer timer fires this long after the policy's timeout: the epoch
/// deadline normally ends a call first; this catches a guest blocked inside
/// a host call, where epochs are not checked.
const OUTER_GRACE: Duration = Duration::from_millis(100);

/// What kind of program a compiled plugin is, decided from its exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WasmKind {
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

impl WasmKind {
    /// How the kind is described to users.
    pub fn describe(self) -> &'static str {
        match self {
            WasmKind::Tool => "a toka:plugin tool component",
            WasmKind::Workflow => "a toka:plugin workflow component",
            WasmKind::Command => "a wasi:cli/command component",
            WasmKind::Preview1 => "a WASI preview1 command module",
        }
    }

    /// True for programs that take JSON input: tools and workflows.
    pub fn takes_json(self) -> bool {
        matches!(self, WasmKind::Tool | WasmKind::Workflow)
    }
}

/// Compiled WebAssembly, classified and linked against the host's imports.
#[derive(Clone)]
pub struct Wasm {
    /// Compiled code and cache information.
    pub loaded: Loaded,
    /// Tool, workflow, command or preview1 module.
    pub kind: WasmKind,
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

impl Wasm {
    /// Classifies and links `loaded`, the code of tool `name`. When a
    /// manifest declared a kind, the plugin must be of that kind.
    ///
    /// # Errors
    ///
    /// [`CallError::Link`] when the plugin is of no world the host runs, or
    /// not of the declared kind, or imports what the host does not provide.
    pub fn new(
        engine: &TokaEngine,
        name: &str,
        loaded: Loaded,
        declared: Option<ExecutableKind>,
    ) -> Result<Wasm, CallError> {
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
                WasmKind::Preview1
            }
        };
        match (declared, kind) {
            (None, _)
            | (Some(ExecutableKind::Component), WasmKind::Tool)
            | (Some(ExecutableKind::Workflow), WasmKind::Workflow)
            | (Some(ExecutableKind::Command), WasmKind::Command | WasmKind::Preview1) => {}
            (Some(d), k) => {
                let fix = match k {
                    WasmKind::Tool => "component",
                    WasmKind::Workflow => "workflow",
                    WasmKind::Command | WasmKind::Preview1 => "command",
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
                    WasmKind::Tool => Linked::Tool(ToolBindingsPre::new(pre).map_err(e)?),
                    WasmKind::Workflow => {
                        Linked::Workflow(WorkflowBindingsPre::new(pre).map_err(e)?)
                    }
                    WasmKind::Command | WasmKind::Preview1 => Linked::Command(
                        wasmtime_wasi::p2::bindings::CommandPre::new(pre).map_err(e)?,
                    ),
                }
            }
        };
        Ok(Wasm {
            loaded,
            kind,
            linked,
        })
    }
}

fn classify_component(engine: &TokaEngine, c: &Component) -> Result<WasmKind, String> {
    let ty = c.component_type();
    let exports: Vec<String> = ty
        .exports(engine.engine())
        .map(|(n, _)| n.to_string())
        .collect();
    if exports
        .iter()
        .any(|n| n.starts_with("toka:plugin/handler@0.1."))
    {
        Ok(WasmKind::Tool)
    } else if exports.iter().any(|n| n == "run") {
        Ok(WasmKind::Workflow)
    } else if exports.iter().any(|n| n.starts_with("wasi:cli/run@0.2.")) {
        Ok(WasmKind::Command)
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

/// Runs one call of `wasm` (tool `tool`) in a fresh sandbox built from
/// `policy`. `input` is the JSON text of a tool's input (ignored for
/// commands, which get `io.args` and stdin); `frame` is a workflow's place
/// in its run (`None` for tools and commands).
///
/// Never panics on guest behaviour: every failure, including building the
/// sandbox, is in the returned result.
pub async fn invoke(
    engine: &TokaEngine,
    tool: &str,
    wasm: &Wasm,
    policy: &Policy,
    io: &SandboxIo,
    input: &str,
    frame: Option<Box<dyn Frame>>,
) -> (Result<Output, CallError>, Usage) {
    let start = Instant::now();
    let setup_failed = |message: String| {
        (
            Err(CallError::Setup {
                tool: tool.to_string(),
                message,
            }),
            Usage::default(),
        )
    };
    let outer = policy.limits.timeout + OUTER_GRACE;
    let timed_out = || {
        Failure::Call(CallError::Limit {
            tool: tool.to_string(),
            limit: LimitExceeded::Timeout {
                limit: policy.limits.timeout,
            },
            caller_budget: false,
        })
    };
    match &wasm.loaded.compiled {
        Compiled::Component(_) => {
            if wasm.kind == WasmKind::Workflow && frame.is_none() {
                return setup_failed(
                    "it is a workflow and needs a run context: start it with `toka-host run`, `toka-host orchestrate` or POST /v1/agents".into(),
                );
            }
            let mut sandbox = match sandbox::store::<WasiCtx>(engine, tool, policy, io, frame) {
                Ok(s) => s,
                Err(e) => return setup_failed(e.to_string()),
            };
            let call = call_component(&wasm.linked, &mut sandbox.store, input, tool);
            let result = match tokio::time::timeout(outer, call).await {
                Ok(r) => r.and_then(|out| check_result(out, &sandbox.budget, tool)),
                Err(_) => Err(timed_out()),
            };
            let result = result.or_else(|e| classify(e, engine, policy, tool));
            let usage = usage(&sandbox.store, policy, sandbox.budget.used(), start);
            (result, usage)
        }
        Compiled::Module(module) => {
            let mut sandbox = match sandbox::store::<wasmtime_wasi::p1::WasiP1Ctx>(
                engine, tool, policy, io, None,
            ) {
                Ok(s) => s,
                Err(e) => return setup_failed(e.to_string()),
            };
            let call = call_module(engine, module, &mut sandbox.store);
            let result = match tokio::time::timeout(outer, call).await {
                Ok(r) => r.map_err(Failure::Wasm),
                Err(_) => Err(timed_out()),
            };
            let result = result.or_else(|e| classify(e, engine, policy, tool));
            let usage = usage(&sandbox.store, policy, sandbox.budget.used(), start);
            (result, usage)
        }
    }
}

/// What a tool component says of itself (`handler.describe`).
#[derive(Clone, Debug)]
pub struct Described {
    /// The tool's name, as the component gives it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its description.
    pub description: String,
    /// The JSON Schema (as JSON text) of the input it accepts.
    pub input_schema: String,
}

/// Calls a tool component's `describe` in a fresh sandbox built from
/// `policy` (the caller strips capabilities: `describe` must not have side
/// effects), within the policy's limits.
///
/// # Errors
///
/// [`CallError::Setup`] when `wasm` is not a tool component or the sandbox
/// cannot be built; the limit or trap that stopped `describe`.
pub async fn describe(
    engine: &TokaEngine,
    tool: &str,
    wasm: &Wasm,
    policy: &Policy,
) -> Result<Described, CallError> {
    let setup = |message: String| CallError::Setup {
        tool: tool.to_string(),
        message,
    };
    let Linked::Tool(pre) = &wasm.linked else {
        return Err(setup("only a tool component has `describe`".into()));
    };
    let io = SandboxIo::captured(tool, policy.limits.output, crate::events::discard());
    let mut sandbox = sandbox::store::<WasiCtx>(engine, tool, policy, &io, None)
        .map_err(|e| setup(e.to_string()))?;
    let call = async {
        let bindings = pre
            .instantiate_async(&mut sandbox.store)
            .await
            .map_err(Failure::Wasm)?;
        bindings
            .toka_plugin_handler()
            .call_describe(&mut sandbox.store)
            .await
            .map_err(Failure::Wasm)
    };
    let info = match tokio::time::timeout(policy.limits.timeout + OUTER_GRACE, call).await {
        Ok(Ok(info)) => info,
        Ok(Err(failure)) => {
            return Err(match classify(failure, engine, policy, tool) {
                Err(e) => e,
                Ok(_) => setup("`describe` exited instead of returning".into()),
            });
        }
        Err(_) => {
            return Err(CallError::Limit {
                tool: tool.to_string(),
                limit: LimitExceeded::Timeout {
                    limit: policy.limits.timeout,
                },
                caller_budget: false,
            });
        }
    };
    Ok(Described {
        name: info.name,
        version: info.version,
        description: info.description,
        input_schema: info.input_schema,
    })
}

/// A call that did not produce output: either already understood, or a raw
/// wasmtime error still to be classified.
enum Failure {
    Call(CallError),
    Wasm(wasmtime::Error),
}

/// What a component call returned before its result was checked.
enum Raw {
    Json(String),
    Exit(i32),
}

async fn call_component(
    linked: &Linked,
    store: &mut Store<State<WasiCtx>>,
    input: &str,
    tool: &str,
) -> Result<Raw, Failure> {
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
            result.map(Raw::Json).map_err(|e| tool_error(e, tool))
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
            result.map(Raw::Json).map_err(|e| tool_error(e, tool))
        }
        Linked::Command(pre) => {
            let command = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Failure::Wasm)?;
            match command.wasi_cli_run().call_run(&mut *store).await {
                Ok(Ok(())) => Ok(Raw::Exit(0)),
                Ok(Err(())) => Ok(Raw::Exit(1)),
                Err(e) => Err(Failure::Wasm(e)),
            }
        }
        Linked::Module => Err(Failure::Call(CallError::Link {
            tool: tool.to_string(),
            message: "a preview1 module is not a component".into(),
        })),
    }
}

fn tool_error(e: GuestToolError, tool: &str) -> Failure {
    use GuestToolError as E;
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

/// Charges a tool's result to the output budget and parses it: the one
/// parse of a wasm tool's output.
fn check_result(
    out: Raw,
    budget: &crate::budget::OutputBudget,
    tool: &str,
) -> Result<Output, Failure> {
    match out {
        Raw::Exit(code) => Ok(Output::Exit(code)),
        Raw::Json(json) => {
            if budget.charge(json.len()).is_err() {
                return Err(Failure::Call(CallError::Limit {
                    tool: tool.to_string(),
                    limit: budget.exceeded(),
                    caller_budget: false,
                }));
            }
            serde_json::from_str(&json).map(Output::Json).map_err(|e| {
                Failure::Call(CallError::BadResult {
                    tool: tool.to_string(),
                    message: e.to_string(),
                })
            })
        }
    }
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
            caller_budget: false,
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

fn usage<W>(store: &Store<State<W>>, policy: &Policy, output_bytes: u64, start: Instant) -> Usage {
    let remaining = store.get_fuel().unwrap_or(0);
    Usage {
        fuel_consumed: policy.limits.fuel.saturating_sub(remaining),
        peak_memory: store.data().limiter.peak_memory(),
        wall_time: start.elapsed(),
        output_bytes,
        llm_tokens: store.data().llm_tokens(),
    }
}
