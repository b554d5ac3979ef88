//! The host side of `toka:plugin` v0.1.0: bindings of the `tool` and
//! `workflow` worlds, the `host` interface (logs and progress) both import,
//! and `tools` and `llm`, which only a workflow's [`Frame`](super::Frame)
//! answers: a tool that imports them links, but every call is refused.

use super::State;
use crate::events::HostEvent;
use toka_spec::outcome::LogLevel;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::WasiCtx;

#[allow(missing_docs)] // Generated from the WIT, which documents it.
mod bindings {
    wasmtime::component::bindgen!({
        world: "tool",
        path: "../../../wit/v0.1.0",
        imports: { default: trappable },
        exports: { default: async },
    });
}

/// The `workflow` world. Its `host` and `types` are the `tool` world's, so
/// one implementation serves both.
#[allow(missing_docs)]
mod workflow_bindings {
    wasmtime::component::bindgen!({
        world: "workflow",
        path: "../../../wit/v0.1.0",
        imports: {
            "toka:plugin/tools.call": async | trappable,
            "toka:plugin/llm.complete": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "toka:plugin/host": super::bindings::toka::plugin::host,
            "toka:plugin/types": super::bindings::toka::plugin::types,
        },
    });
}

/// Typed access to a workflow component's export.
pub use workflow_bindings::Workflow as WorkflowBindings;
/// A workflow component linked and ready to instantiate.
pub use workflow_bindings::WorkflowPre as WorkflowBindingsPre;
/// `toka:plugin/llm` types as the host sees them.
pub use workflow_bindings::toka::plugin::llm as llm_types;

/// Typed access to a tool component's exports.
pub use bindings::Tool as ToolBindings;
/// A tool component linked and ready to instantiate cheaply, many times.
pub use bindings::ToolPre as ToolBindingsPre;
use bindings::toka::plugin::host::Level;
/// `toka:plugin/types.tool-error`, as the guest sees it.
pub use bindings::toka::plugin::types::ToolError;

/// A model request as a workflow sends it.
pub type LlmRequest = llm_types::Request;
/// A model answer as a workflow receives it.
pub type LlmResponse = llm_types::Response;

/// What a host function answers a guest: a trap (`Err`), or a result the
/// guest sees.
pub type GuestResult<T> = wasmtime::Result<Result<T, ToolError>>;

impl<W: Send> bindings::toka::plugin::types::Host for State<W> {}

impl<W: Send> bindings::toka::plugin::host::Host for State<W> {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.charge(message.len())?;
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        (self.events)(
            &self.tool,
            HostEvent::Log {
                level,
                message: &message,
            },
        );
        Ok(())
    }

    fn progress(&mut self, fraction: f32, message: String) -> wasmtime::Result<()> {
        self.charge(message.len())?;
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        (self.events)(
            &self.tool,
            HostEvent::Progress {
                fraction,
                message: &message,
            },
        );
        Ok(())
    }
}

impl<W> State<W> {
    /// Charges `n` bytes of guest output; an overrun traps the guest.
    pub(crate) fn charge(&self, n: usize) -> wasmtime::Result<()> {
        self.budget
            .charge(n)
            .map_err(|_| wasmtime::Error::new(self.budget.exceeded()))
    }
}

impl workflow_bindings::toka::plugin::tools::Host for State<WasiCtx> {
    async fn call(&mut self, name: String, input: String) -> GuestResult<String> {
        let Some(frame) = self.frame.as_mut() else {
            return Ok(Err(ToolError::Denied(format!(
                "`{}` is a tool, not a workflow: only workflows (world toka:plugin/workflow) may call tools",
                self.tool
            ))));
        };
        let json = match frame
            .call_tool(name, input, self.budget.remaining(), self.events.clone())
            .await?
        {
            Ok(json) => json,
            Err(e) => return Ok(Err(e)),
        };
        // What a callee returns becomes the workflow's to hold: it counts
        // against the workflow's own output budget.
        self.charge(json.len())?;
        Ok(Ok(json))
    }
}

impl workflow_bindings::toka::plugin::llm::Host for State<WasiCtx> {
    async fn complete(&mut self, request: LlmRequest) -> GuestResult<LlmResponse> {
        match self.frame.as_mut() {
            Some(frame) => frame.complete(request).await,
            None => Ok(Err(ToolError::Denied(format!(
                "`{}` is a tool, not a workflow: only workflows may ask the language model",
                self.tool
            )))),
        }
    }
}

/// Adds `toka:plugin/host`, `tools` and `llm` (and their types) to `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<State<WasiCtx>>) -> wasmtime::Result<()> {
    bindings::toka::plugin::host::add_to_linker::<_, HasSelf<State<WasiCtx>>>(linker, |s| s)?;
    bindings::toka::plugin::types::add_to_linker::<_, HasSelf<State<WasiCtx>>>(linker, |s| s)?;
    workflow_bindings::toka::plugin::tools::add_to_linker::<_, HasSelf<State<WasiCtx>>>(
        linker,
        |s| s,
    )?;
    workflow_bindings::toka::plugin::llm::add_to_linker::<_, HasSelf<State<WasiCtx>>>(
        linker,
        |s| s,
    )?;
    Ok(())
}
