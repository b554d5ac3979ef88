//! Workflow runs: what every frame of one run shares ([`RunContext`]: its
//! id, the capabilities the operator granted, the model, the token budget),
//! and one workflow's place in it ([`WorkflowFrame`]), which answers the
//! guest's `tools.call` and `llm.complete` through the sandbox's
//! [`Frame`](crate::sandbox::Frame) seam.
//!
//! A nested call re-enters the one call path through [`NestedCalls`]; its
//! budget is policy arithmetic there (`Limits::bounded_by` the caller's
//! [`Remaining`]). This module checks only what is the workflow's own
//! business: the tools its manifest lists, the `tool-call` and `llm`
//! capabilities, cycles and depth, and what a callee's failure means for the
//! caller (a limit that was the caller's remaining budget stops the caller).

use crate::events::EventSink;
use crate::llm::{ChatRequest, LlmClient, RequestOrigin, Role};
use crate::sandbox::{Frame, GuestToolError, LlmRequest, LlmResponse, llm_types};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use toka_spec::manifest::{Capability, ToolSpec};
use toka_spec::outcome::{CallError, LimitExceeded, Outcome, Output, ToolErrorKind};
use toka_spec::policy::{Grants, Limits, Policy, PolicyError, Remaining};

/// How deep workflows may call workflows (the top-level run is depth 1).
pub const MAX_CALL_DEPTH: usize = 8;

/// Where a workflow's nested calls go: back into the one call path.
#[async_trait::async_trait]
pub trait NestedCalls: Send + Sync {
    /// Calls tool `name` with `input` as a callee of the frame `nested`
    /// describes.
    async fn call_nested(self: Arc<Self>, name: String, input: Value, nested: Nested) -> Outcome;
}

/// A nested call's place: its run, the chain of workflows above it, what is
/// left of the caller's budget, and where its logs go.
pub struct Nested {
    /// The run.
    pub run: Arc<RunContext>,
    /// Workflow names from the top-level run down to the caller.
    pub stack: Vec<String>,
    /// What is left of the caller's budget.
    pub remaining: Remaining,
    /// Where the callee's logs and progress go.
    pub events: EventSink,
}

/// What every frame of one run shares.
pub struct RunContext {
    /// The run's id (in events and the audit log).
    pub id: String,
    /// Where nested calls go.
    pub calls: Arc<dyn NestedCalls>,
    /// The operator's capability grants and how far they reach, within the
    /// caller's token when there is one (callees get these and nothing else
    /// from the operator: never the caller's directories, environment,
    /// network or limits).
    pub grants: Grants,
    /// The model, when one is configured (it records its requests in the
    /// audit log itself).
    pub llm: Option<Arc<LlmClient>>,
    token_budget: u64,
    tokens_used: AtomicU64,
}

impl RunContext {
    /// A run with the token budget of its top-level workflow.
    pub fn new(
        id: String,
        calls: Arc<dyn NestedCalls>,
        grants: Grants,
        llm: Option<Arc<LlmClient>>,
        token_budget: u64,
    ) -> RunContext {
        RunContext {
            id,
            calls,
            grants,
            llm,
            token_budget,
            tokens_used: AtomicU64::new(0),
        }
    }

    /// Tokens spent so far by the whole run.
    pub fn tokens_used(&self) -> u64 {
        self.tokens_used.load(Ordering::Relaxed)
    }
}

/// One workflow's place in a run: who called it, what it may call, and
/// what is left of its budget. Lives in the workflow's store.
pub struct WorkflowFrame {
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

impl WorkflowFrame {
    /// The frame of workflow `spec` under `policy`, below `stack` in `run`.
    pub fn new(
        run: Arc<RunContext>,
        mut stack: Vec<String>,
        spec: Option<&ToolSpec>,
        policy: &Policy,
    ) -> WorkflowFrame {
        stack.push(policy.tool.clone());
        WorkflowFrame {
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

    fn name(&self) -> &str {
        self.stack.last().map_or("", String::as_str)
    }

    fn chain(&self, next: &str) -> String {
        let mut names: Vec<&str> = self.stack.iter().map(String::as_str).collect();
        names.push(next);
        names.join(" → ")
    }

    /// Refuses a call this workflow may not make, with the reason.
    fn refuse(&self, name: &str) -> Option<GuestToolError> {
        let me = self.name();
        if !self.may_call {
            return Some(GuestToolError::Denied(format!(
                "`{me}` may not call tools: its manifest must require the `tool-call` capability and the operator must grant it (--grant tool-call)"
            )));
        }
        if !self.allowed.iter().any(|a| a == name) {
            return Some(GuestToolError::Denied(format!(
                "`{me}` may not call `{name}`: it is not in spec.security.sandbox.tools of `{me}`'s manifest (which lists: {})",
                if self.allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    self.allowed.join(", ")
                }
            )));
        }
        if self.stack.iter().any(|s| s == name) {
            return Some(GuestToolError::Denied(format!(
                "call cycle refused: {}",
                self.chain(name)
            )));
        }
        if self.stack.len() >= MAX_CALL_DEPTH {
            return Some(GuestToolError::LimitExceeded(format!(
                "call depth limit of {MAX_CALL_DEPTH} reached: {}",
                self.chain(name)
            )));
        }
        None
    }

    /// What a callee's outcome means for this workflow: a result or an
    /// error the guest sees, or a trap when the callee ran into what was
    /// left of this workflow's own budget.
    fn answer(
        &self,
        name: &str,
        outcome: Outcome,
    ) -> wasmtime::Result<Result<String, GuestToolError>> {
        let trap = |limit| Err(wasmtime::Error::new(limit));
        match outcome.result {
            Ok(Output::Json(v)) => Ok(Ok(v.to_string())),
            Ok(Output::Text(text)) => Ok(Ok(Value::String(text).to_string())),
            Ok(Output::Exit(code)) => Ok(Err(GuestToolError::Failed(format!(
                "`{name}` is a command (exit code {code}), not a tool"
            )))),
            Err(CallError::Limit {
                limit: LimitExceeded::Timeout { .. },
                caller_budget: true,
                ..
            }) => trap(LimitExceeded::Timeout {
                limit: self.limits.timeout,
            }),
            Err(CallError::Limit {
                limit: LimitExceeded::Fuel { .. },
                caller_budget: true,
                ..
            }) => trap(LimitExceeded::Fuel {
                limit: self.limits.fuel,
            }),
            Err(CallError::Tool { kind, message, .. }) => {
                Ok(Err(guest_error(kind, format!("`{name}`: {message}"))))
            }
            Err(e @ CallError::Limit { .. }) => {
                Ok(Err(GuestToolError::LimitExceeded(e.to_string())))
            }
            Err(e @ CallError::NotFound { .. }) => {
                Ok(Err(GuestToolError::NotFound(format!("`{name}`: {e}"))))
            }
            Err(CallError::InvalidInput { message, .. }) => Ok(Err(GuestToolError::InvalidInput(
                format!("`{name}`: {message}"),
            ))),
            Err(e @ CallError::Policy(PolicyError::Denied { .. })) => {
                Ok(Err(GuestToolError::Denied(e.to_string())))
            }
            Err(e) => Ok(Err(GuestToolError::Failed(e.to_string()))),
        }
    }
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

#[async_trait::async_trait]
impl Frame for WorkflowFrame {
    async fn call_tool(
        &mut self,
        name: String,
        input: String,
        output_left: u64,
        events: EventSink,
    ) -> wasmtime::Result<Result<String, GuestToolError>> {
        if let Some(refusal) = self.refuse(&name) {
            return Ok(Err(refusal));
        }
        let value: Value = match serde_json::from_str(&input) {
            Ok(v) => v,
            Err(e) => {
                return Ok(Err(GuestToolError::InvalidInput(format!(
                    "input for `{name}` is not JSON: {e}"
                ))));
            }
        };
        let time = self.deadline.saturating_duration_since(Instant::now());
        if time.is_zero() {
            return Err(wasmtime::Error::new(LimitExceeded::Timeout {
                limit: self.limits.timeout,
            }));
        }
        let nested = Nested {
            run: self.run.clone(),
            stack: self.stack.clone(),
            remaining: Remaining {
                fuel: self.fuel_at_host,
                time,
                output: output_left,
            },
            events,
        };
        let outcome = self
            .run
            .calls
            .clone()
            .call_nested(name.clone(), value, nested)
            .await;
        self.fuel_owed = self
            .fuel_owed
            .saturating_add(outcome.usage.map_or(0, |u| u.fuel_consumed));
        self.answer(&name, outcome)
    }

    async fn complete(
        &mut self,
        request: LlmRequest,
    ) -> wasmtime::Result<Result<LlmResponse, GuestToolError>> {
        let me = self.name().to_string();
        if !self.may_llm {
            return Ok(Err(GuestToolError::Denied(format!(
                "`{me}` may not ask the language model: its manifest must require the `llm` capability and the operator must grant it (--grant llm)"
            ))));
        }
        let run = self.run.clone();
        let Some(llm) = run.llm.clone() else {
            return Ok(Err(GuestToolError::Failed(
                "no language model is configured on this host: the operator sets TOKA_LLM_PROVIDER (openai or anthropic) and TOKA_LLM_API_KEY (or OPENAI_API_KEY / ANTHROPIC_API_KEY), and TOKA_LLM_BASE_URL for another compatible server".into(),
            )));
        };
        let budget = run.token_budget;
        let left = budget.saturating_sub(run.tokens_used());
        if left == 0 {
            return Ok(Err(GuestToolError::LimitExceeded(format!(
                "the run's LLM token budget of {budget} is spent; raise it with --llm-tokens or spec.security.sandbox.llm_tokens"
            ))));
        }
        let wanted = request.max_tokens.unwrap_or(llm.config().max_tokens);
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
        let result = llm.complete(&chat, self.deadline, &origin).await;
        if Instant::now() >= self.deadline {
            return Err(wasmtime::Error::new(LimitExceeded::Timeout {
                limit: self.limits.timeout,
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

    fn entering_host(&mut self, fuel: u64) {
        self.fuel_at_host = fuel;
    }

    fn take_owed_fuel(&mut self) -> u64 {
        std::mem::take(&mut self.fuel_owed)
    }

    fn llm_tokens(&self) -> u64 {
        self.run.tokens_used()
    }
}
