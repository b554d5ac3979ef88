//! The one call path. Every way into a tool — `run`, `tools call`, `exec`,
//! `serve`'s invoke, agents, MCP, and a workflow's nested `tools.call` —
//! goes through [`Runtime::call`] (or its two halves, [`Runtime::prepare`]
//! and [`Runtime::execute`], for doors that answer before the call ends).
//! It is the only caller of policy resolution and of [`invoke`] and
//! [`shim::run`], so every check lives here once:
//!
//! 1. the input, checked against the manifest's JSON Schema;
//! 2. the policy: the manifest ∩ the operator's grants (∩ the caller's
//!    scope), with limits bounded by what a calling workflow has left;
//! 3. the sandbox and the call (wasm or subprocess);
//! 4. one audit line (caller, tool, digest, outcome, usage; never the input).
//!
//! Front doors only turn the [`Outcome`] into an exit code, an HTTP status
//! or an MCP result.

use crate::audit::AuditLog;
use crate::catalog::{Catalog, Code, Tool};
use crate::engine::TokaEngine;
use crate::events::{self, EventSink, HostEvent};
use crate::invoke;
use crate::llm::LlmClient;
use crate::sandbox::{SandboxIo, Sink};
use crate::shim::{self, ShimOptions};
use crate::workflow::{Nested, NestedCalls, RunContext, WorkflowFrame};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use toka_spec::manifest::LimitSettings;
use toka_spec::outcome::{CallError, LogLevel, Outcome, Output, Stdio, Usage};
use toka_spec::policy::{self, CallerScope, Grants, Policy, PolicyError};

/// Everything calls share in one process: the engine, where tools are found
/// (for workflows' nested calls), what the operator grants, how subprocess
/// tools run, the model, and the audit log.
pub struct Runtime {
    /// The one engine.
    pub engine: Arc<TokaEngine>,
    /// Where nested calls find their tools.
    pub catalog: Arc<dyn Catalog>,
    /// What the operator grants every call (flags of `run`/`serve`).
    pub grants: Grants,
    /// How subprocess tools run.
    pub shim: ShimOptions,
    /// The language model for workflows, when configured.
    pub llm: Option<Arc<LlmClient>>,
    /// Where each call is recorded, when the operator asked.
    pub audit: Option<Arc<AuditLog>>,
}

/// Who is calling, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The operator, from the command line or stdio.
    Operator,
    /// A client of the HTTP API, by address (or the label it sent).
    Peer(String),
    /// A workflow calling one of its tools.
    Workflow {
        /// The run.
        run: String,
        /// The calling workflow.
        workflow: String,
    },
}

impl Caller {
    /// The caller as the audit log writes it.
    pub fn label(&self) -> String {
        match self {
            Caller::Operator => "operator".into(),
            Caller::Peer(p) => p.clone(),
            Caller::Workflow { run, workflow } => format!("workflow {workflow} ({run})"),
        }
    }
}

/// One call's context: who calls, with what stdio, under what extra limits.
pub struct CallCtx {
    /// Who calls.
    pub caller: Caller,
    /// Limits for this call over the operator's (an agent request's
    /// limits); the manifest's apply where neither sets one.
    pub limits: LimitSettings,
    /// The call's stdio and where its events go.
    pub io: SandboxIo,
    /// Keep what the guest logs in the outcome.
    pub collect_logs: bool,
    /// The run id of a top-level workflow (an agent's id); one is made up
    /// when absent.
    pub run_id: Option<String>,
    /// What the caller may use when it is not the operator (a verified
    /// token); `None` for the operator.
    pub scope: Option<Arc<dyn CallerScope>>,
    nested: Option<Nested>,
}

impl CallCtx {
    /// A call by `caller` with stdio `io`, no extra limits.
    pub fn new(caller: Caller, io: SandboxIo) -> CallCtx {
        CallCtx {
            caller,
            limits: LimitSettings::default(),
            io,
            collect_logs: false,
            run_id: None,
            scope: None,
            nested: None,
        }
    }
}

/// A call that passed its checks and has its policy, ready to run.
pub struct Prepared {
    tool: Arc<Tool>,
    input: Value,
    policy: Policy,
    ctx: CallCtx,
}

impl Prepared {
    /// The resolved policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The tool.
    pub fn tool(&self) -> &Arc<Tool> {
        &self.tool
    }
}

static RUNS: AtomicU64 = AtomicU64::new(1);

impl Runtime {
    /// Calls `tool` with `input` (a JSON object; ignored for commands):
    /// [`Runtime::prepare`], then [`Runtime::execute`].
    pub async fn call(self: &Arc<Self>, tool: Arc<Tool>, input: Value, ctx: CallCtx) -> Outcome {
        match self.prepare(tool, input, ctx) {
            Ok(p) => self.execute(p).await,
            Err(refused) => *refused,
        }
    }

    /// What a bare `.wasm` tool says of itself: its `describe`, run under
    /// the operator's limits with no capabilities at all (no files,
    /// environment or network: `describe` must not have side effects).
    ///
    /// # Errors
    ///
    /// The policy error, or what stopped `describe` (a trap, a limit, not a
    /// tool component).
    pub async fn describe(&self, tool: &Tool) -> Result<invoke::Described, CallError> {
        let Code::Wasm(wasm) = &tool.code else {
            return Err(CallError::Setup {
                tool: tool.name.clone(),
                message: "only a tool component has `describe`".into(),
            });
        };
        let mut policy =
            policy::resolve(&tool.name, None, &self.grants, |_| None).map_err(CallError::Policy)?;
        policy.capabilities.clear();
        policy.preopens.clear();
        policy.env.clear();
        policy.network = Default::default();
        invoke::describe(&self.engine, &tool.name, wasm, &policy).await
    }

    /// Resolves the policy and checks the input, without running anything.
    ///
    /// # Errors
    ///
    /// The outcome of the refused call (already audited): invalid input, a
    /// capability not granted, a tool that cannot be called this way.
    pub fn prepare(
        &self,
        tool: Arc<Tool>,
        input: Value,
        ctx: CallCtx,
    ) -> Result<Prepared, Box<Outcome>> {
        let refuse = |e: CallError, ctx: &CallCtx, input: &Value| {
            let outcome = Outcome {
                tool: tool.tool_ref(),
                result: Err(e),
                usage: None,
                logs: Vec::new(),
                stdio: None,
            };
            self.audit_call(ctx, &outcome, input, None);
            Box::new(outcome)
        };
        if let Some(scope) = &ctx.scope
            && ctx.nested.is_none()
            && !scope.allows_tool(&tool.name)
        {
            let e = CallError::Policy(PolicyError::NotInScope {
                tool: tool.name.clone(),
            });
            return Err(refuse(e, &ctx, &input));
        }
        let grants = match &ctx.nested {
            // A callee gets the operator's capability grants and nothing
            // else of the operator's (never the caller's directories,
            // environment, network or flags' limits), within what the caller
            // has left.
            Some(n) => Grants {
                within: Some(n.remaining),
                ..n.run.grants.clone()
            },
            None => Grants {
                limits: ctx.limits.or(self.grants.limits),
                ceiling: ctx.scope.as_ref().map(|s| s.capabilities().clone()),
                ..self.grants.clone()
            },
        };
        let policy = match policy::resolve(&tool.name, tool.spec.as_ref(), &grants, |k| {
            std::env::var(k).ok()
        }) {
            Ok(p) => p,
            Err(e) => return Err(refuse(CallError::Policy(e), &ctx, &input)),
        };
        if tool.takes_json() {
            if !input.is_object() {
                let e = CallError::InvalidInput {
                    tool: tool.name.clone(),
                    message: "the input must be a JSON object".into(),
                };
                return Err(refuse(e, &ctx, &input));
            }
            if let Err(message) = tool.parameters().check_input(&input) {
                let e = CallError::InvalidInput {
                    tool: tool.name.clone(),
                    message,
                };
                return Err(refuse(e, &ctx, &input));
            }
        }
        for host in &policy.network.unresolved {
            (ctx.io.events)(
                &tool.name,
                HostEvent::Log {
                    level: LogLevel::Warn,
                    message: &format!(
                        "--allow-net host `{host}` did not resolve; connections to it will be refused"
                    ),
                },
            );
        }
        Ok(Prepared {
            tool,
            input,
            policy,
            ctx,
        })
    }

    /// Runs a prepared call in its sandbox (wasm or subprocess) and records
    /// it in the audit log.
    pub async fn execute(self: &Arc<Self>, prepared: Prepared) -> Outcome {
        let Prepared {
            tool,
            input,
            policy,
            mut ctx,
        } = prepared;
        // Capture buffers are sized by the call's own output limit, known
        // only now.
        if ctx.io.stdout.is_capture() {
            ctx.io.stdout = Sink::capture(policy.limits.output);
        }
        if ctx.io.stderr.is_capture() {
            ctx.io.stderr = Sink::capture(policy.limits.output);
        }
        let collected = if ctx.collect_logs {
            let (sink, entries) = events::collecting(ctx.io.events.clone());
            ctx.io.events = sink;
            Some(entries)
        } else {
            None
        };
        let events: EventSink = ctx.io.events.clone();
        let (mut result, usage) = match &tool.code {
            Code::Wasm(wasm) => {
                let frame = if tool.is_workflow() {
                    let (run, stack) = match ctx.nested.take() {
                        Some(n) => (n.run, n.stack),
                        None => {
                            let id = ctx.run_id.clone().unwrap_or_else(|| {
                                format!("run-{}", RUNS.fetch_add(1, Ordering::Relaxed))
                            });
                            let calls: Arc<dyn NestedCalls> = self.clone();
                            let mut grants = self.grants.capabilities_only();
                            grants.ceiling = ctx.scope.as_ref().map(|s| s.capabilities().clone());
                            let run = RunContext::new(
                                id,
                                calls,
                                grants,
                                self.llm.clone(),
                                policy.limits.llm_tokens,
                            );
                            (Arc::new(run), Vec::new())
                        }
                    };
                    let frame: Box<dyn crate::sandbox::Frame> =
                        Box::new(WorkflowFrame::new(run, stack, tool.spec.as_ref(), &policy));
                    Some(frame)
                } else {
                    None
                };
                let text = if tool.takes_json() {
                    input.to_string()
                } else {
                    String::new()
                };
                invoke::invoke(
                    &self.engine,
                    &tool.name,
                    wasm,
                    &policy,
                    &ctx.io,
                    &text,
                    frame,
                )
                .await
            }
            Code::Script(script) => match &tool.spec {
                Some(spec) => shim::run(spec, script, &policy, &input, &self.shim, &events).await,
                None => (
                    Err(CallError::WrongKind {
                        tool: tool.name.clone(),
                        message: "is a script without a manifest; give it one".into(),
                    }),
                    Usage::default(),
                ),
            },
        };
        if let Err(CallError::Limit {
            limit,
            caller_budget,
            ..
        }) = &mut result
        {
            *caller_budget = policy.bound.covers(limit);
        }
        // What a tool promises in `spec.output` is what callers get.
        if let (Ok(Output::Json(v)), Some(schema)) =
            (&result, tool.spec.as_ref().and_then(|s| s.output.as_ref()))
            && let Err(message) = schema.check_output(v)
        {
            result = Err(CallError::BadResult {
                tool: tool.name.clone(),
                message: format!("{message} (spec.output)"),
            });
        }
        let stdio = (ctx.io.stdout.is_capture() || ctx.io.stderr.is_capture()).then(|| Stdio {
            stdout: ctx.io.stdout.contents(),
            stderr: ctx.io.stderr.contents(),
        });
        let logs = collected
            .and_then(|c| c.lock().ok().map(|mut v| std::mem::take(&mut *v)))
            .unwrap_or_default();
        let outcome = Outcome {
            tool: tool.tool_ref(),
            result,
            usage: Some(usage),
            logs,
            stdio,
        };
        self.audit_call(&ctx, &outcome, &input, Some(&policy));
        outcome
    }

    /// Appends one JSON line per call: sizes of the input only, never its
    /// text.
    fn audit_call(&self, ctx: &CallCtx, outcome: &Outcome, input: &Value, policy: Option<&Policy>) {
        let Some(log) = &self.audit else { return };
        let (kind, limit) = match &outcome.result {
            Ok(_) => ("ok".to_string(), None),
            Err(e) => (e.kind().to_string(), e.limit().map(|l| l.name())),
        };
        let capabilities: Vec<String> = policy
            .map(|p| p.capabilities.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default();
        log.record(json!({
            "event": "call",
            "tool": outcome.tool.name,
            "version": outcome.tool.version,
            "digest": outcome.tool.digest,
            "caller": ctx.caller.label(),
            "subject": ctx.scope.as_ref().map(|s| s.subject()),
            "token": ctx.scope.as_ref().map(|s| s.token_id()),
            "capabilities": capabilities,
            "input_bytes": if input.is_null() { 0 } else { input.to_string().len() },
            "outcome": kind,
            "limit": limit,
            "usage": outcome.usage,
        }));
    }
}

#[async_trait::async_trait]
impl NestedCalls for Runtime {
    async fn call_nested(self: Arc<Self>, name: String, input: Value, nested: Nested) -> Outcome {
        let caller = Caller::Workflow {
            run: nested.run.id.clone(),
            workflow: nested.stack.last().cloned().unwrap_or_default(),
        };
        let tool = match self.catalog.get(&name).await {
            Ok(t) => t,
            Err(e) => {
                let outcome = Outcome {
                    tool: toka_spec::outcome::ToolRef {
                        name: name.clone(),
                        ..Default::default()
                    },
                    result: Err(e.to_call_error(&name)),
                    usage: None,
                    logs: Vec::new(),
                    stdio: None,
                };
                self.audit_call(
                    &CallCtx::new(caller, SandboxIo::captured(&name, 0, nested.events.clone())),
                    &outcome,
                    &input,
                    None,
                );
                return outcome;
            }
        };
        let io = SandboxIo {
            args: vec![name.clone()],
            stdin: crate::sandbox::Stdin::Empty,
            stdout: Sink::capture(nested.remaining.output),
            stderr: Sink::capture(nested.remaining.output),
            events: nested.events.clone(),
        };
        let mut ctx = CallCtx::new(caller, io);
        ctx.nested = Some(nested);
        self.call(tool, input, ctx).await
    }
}
