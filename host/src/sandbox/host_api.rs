//! The host side of `toka:plugin` v0.1.0: bindings of the `tool` and
//! `workflow` worlds, and the `host` interface (logs and progress) both
//! import. `tools` and `llm`, which only workflows import, are implemented in
//! [`crate::workflow`].

use super::State;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::WasiCtx;

#[allow(missing_docs)] // Generated from the WIT, which documents it.
mod bindings {
    wasmtime::component::bindgen!({
        world: "tool",
        path: "../wit/v0.1.0",
        imports: { default: trappable },
        exports: { default: async },
    });
}

/// The `workflow` world. Its `host` and `types` are the `tool` world's, so
/// one implementation serves both.
#[allow(missing_docs)]
pub(crate) mod workflow_bindings {
    wasmtime::component::bindgen!({
        world: "workflow",
        path: "../wit/v0.1.0",
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
pub use bindings::toka::plugin::host::Level;
pub use bindings::toka::plugin::types::ToolError;

/// Severity of a guest's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Trace.
    Trace,
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// Something a guest reported while it ran.
#[derive(Clone, Copy, Debug)]
pub enum HostEvent<'a> {
    /// `host.log`.
    Log {
        /// Severity.
        level: LogLevel,
        /// The line.
        message: &'a str,
    },
    /// `host.progress`.
    Progress {
        /// 0.0 ..= 1.0.
        fraction: f32,
        /// What is happening.
        message: &'a str,
    },
}

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

/// Adds `toka:plugin/host`, `tools` and `llm` (and their types) to
/// `linker`. A tool that imports `tools` or `llm` links, but every call is
/// refused: only a workflow run has the context they need.
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
