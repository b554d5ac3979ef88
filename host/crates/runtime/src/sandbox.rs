//! The wasm sandbox of one call, built by one function ([`store`]) from a
//! resolved [`Policy`]: the WASI context (the only place that configures
//! WASI), the resource limiter, fuel, the epoch deadline, the output budget,
//! and, for a workflow, the [`Frame`] that answers its `tools.call` and
//! `llm.complete`. Also the linkers that decide which imports a guest can be
//! given at all.

mod frame;
mod host_api;
mod output;

pub use frame::Frame;
pub use host_api::{
    LlmRequest, LlmResponse, ToolBindings, ToolBindingsPre, ToolError as GuestToolError,
    WorkflowBindings, WorkflowBindingsPre, llm_types,
};
pub use output::CappedOutput;

use crate::budget::OutputBudget;
use crate::engine::TokaEngine;
use crate::events::EventSink;
use std::sync::Arc;
use std::time::Instant;
use toka_spec::outcome::LimitExceeded;
use toka_spec::policy::{Limits, Policy};
use wasmtime::component::ResourceTable;
use wasmtime::{CallHook, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Where a guest's stdout or stderr goes.
#[derive(Clone)]
pub enum Sink {
    /// The host process's stdout.
    HostStdout,
    /// The host process's stderr.
    HostStderr,
    /// A buffer the caller reads afterwards.
    Capture(MemoryOutputPipe),
}

impl Sink {
    /// A fresh capture buffer for a call whose output budget is `limit`.
    pub fn capture(limit: u64) -> Sink {
        // Room beyond the budget, so that the budget (which traps and names
        // the limit) trips before the pipe (which only closes the stream).
        let room = limit.saturating_add(64 * 1024);
        Sink::Capture(MemoryOutputPipe::new(
            usize::try_from(room).unwrap_or(usize::MAX),
        ))
    }

    /// What was captured (empty for host streams).
    pub fn contents(&self) -> Vec<u8> {
        match self {
            Sink::Capture(pipe) => pipe.contents().to_vec(),
            _ => Vec::new(),
        }
    }

    /// True for a capture buffer.
    pub fn is_capture(&self) -> bool {
        matches!(self, Sink::Capture(_))
    }
}

/// Where a guest's stdin comes from.
#[derive(Clone)]
pub enum Stdin {
    /// Nothing: reads see end of file.
    Empty,
    /// The host process's stdin.
    Host,
    /// These bytes.
    Bytes(Vec<u8>),
}

/// The stdio and arguments of one call.
#[derive(Clone)]
pub struct SandboxIo {
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    /// Standard input.
    pub stdin: Stdin,
    /// Standard output.
    pub stdout: Sink,
    /// Standard error.
    pub stderr: Sink,
    /// Logs and progress.
    pub events: EventSink,
}

impl SandboxIo {
    /// The stdio of a tool call whose output is captured (and discarded or
    /// reported by the caller): argv is just the tool's name, stdin is empty.
    pub fn captured(tool: &str, output_limit: u64, events: EventSink) -> SandboxIo {
        SandboxIo {
            args: vec![tool.to_string()],
            stdin: Stdin::Empty,
            stdout: Sink::capture(output_limit),
            stderr: Sink::capture(output_limit),
            events,
        }
    }
}

/// Why a sandbox could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A granted directory could not be opened.
    #[error("cannot open granted directory {host} (as {guest}): {reason}")]
    Preopen {
        /// Host path.
        host: String,
        /// Guest path.
        guest: String,
        /// Why.
        reason: String,
    },
    /// The store could not be configured.
    #[error("cannot configure the store: {0}")]
    Store(String),
}

/// A WASI context a store can hold: preview 2 for components, preview 1 for
/// core modules. Both are built by [`wasi_builder`] from the same policy.
pub trait Wasi: Send + Sized + 'static {
    /// Finishes the builder.
    fn build(builder: WasiCtxBuilder) -> Self;
}

impl Wasi for WasiCtx {
    fn build(mut builder: WasiCtxBuilder) -> Self {
        builder.build()
    }
}

impl Wasi for wasmtime_wasi::p1::WasiP1Ctx {
    fn build(mut builder: WasiCtxBuilder) -> Self {
        builder.build_p1()
    }
}

/// A call's store with everything the guest may touch and spend, and the
/// output budget its stdio and logs are charged to.
pub struct Sandbox<W: 'static> {
    /// The store.
    pub store: Store<State<W>>,
    /// The call's output budget.
    pub budget: Arc<OutputBudget>,
}

/// Builds the sandbox of one call of `tool` under `policy`: WASI context,
/// memory limiter, fuel, a deadline that traps at the policy's timeout
/// (yielding to the executor every epoch tick so that an outer timer and
/// cancellation can also act), the output budget, and for a workflow its
/// `frame` with the hook that charges nested calls to its fuel.
///
/// # Errors
///
/// [`SandboxError`] when a granted directory cannot be opened.
pub fn store<W: Wasi>(
    engine: &TokaEngine,
    tool: &str,
    policy: &Policy,
    io: &SandboxIo,
    frame: Option<Box<dyn Frame>>,
) -> Result<Sandbox<W>, SandboxError> {
    let budget = OutputBudget::new(policy.limits.output);
    let wasi = W::build(wasi_builder(policy, io, &budget)?);
    let has_frame = frame.is_some();
    let state = State {
        wasi,
        table: ResourceTable::new(),
        limiter: Limiter::new(policy.limits),
        budget: budget.clone(),
        events: io.events.clone(),
        tool: tool.to_string(),
        frame,
    };
    let mut store = Store::new(engine.engine(), state);
    store.limiter(|s| &mut s.limiter);
    store
        .set_fuel(policy.limits.fuel)
        .map_err(|e| SandboxError::Store(format!("{e:#}")))?;
    let limit = policy.limits.timeout;
    let deadline = Instant::now() + limit;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(LimitExceeded::Timeout { limit }))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    if has_frame {
        install_fuel_hook(&mut store);
    }
    Ok(Sandbox { store, budget })
}

/// Makes nested calls spend the caller's fuel: tells the frame the fuel left
/// when the guest enters the host (the most a nested call may get) and
/// deducts what nested calls consumed when it returns. Only workflow stores
/// have it; a plain tool call never runs it.
fn install_fuel_hook<W: Send + 'static>(store: &mut Store<State<W>>) {
    store.call_hook(|mut cx, hook| {
        match hook {
            CallHook::CallingHost => {
                let fuel = cx.get_fuel()?;
                if let Some(f) = cx.data_mut().frame.as_mut() {
                    f.entering_host(fuel);
                }
            }
            CallHook::ReturningFromHost => {
                let owed = cx
                    .data_mut()
                    .frame
                    .as_mut()
                    .map_or(0, |f| f.take_owed_fuel());
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

/// The WASI context of a call, from its policy: nothing is inherited from
/// the host (no environment, no arguments, no directories, no network);
/// everything the guest can reach is in `policy`, and its stdio goes where
/// `io` says, capped by `budget`.
fn wasi_builder(
    policy: &Policy,
    io: &SandboxIo,
    budget: &Arc<OutputBudget>,
) -> Result<WasiCtxBuilder, SandboxError> {
    let mut b = WasiCtxBuilder::new();
    b.args(&io.args);
    b.envs(&policy.env);
    for p in &policy.preopens {
        let perms = if p.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&p.host, &p.guest, perms)
            .map_err(|e| SandboxError::Preopen {
                host: p.host.display().to_string(),
                guest: p.guest.clone(),
                reason: format!("{e:#}"),
            })?;
    }

    let net = &policy.network;
    let open = !net.rules.is_empty();
    b.allow_tcp(open).allow_udp(open);
    b.allow_ip_name_lookup(net.name_lookup);
    let net = net.clone();
    b.socket_addr_check(move |addr, usage| {
        let allowed = match usage {
            SocketAddrUse::TcpBind | SocketAddrUse::TcpListen | SocketAddrUse::UdpBind => {
                net.allows_bind(addr)
            }
            SocketAddrUse::TcpConnect
            | SocketAddrUse::TcpAccept
            | SocketAddrUse::UdpSend
            | SocketAddrUse::UdpReceive => net.allows_connect(addr),
        };
        Box::pin(async move { allowed })
    });

    match &io.stdin {
        Stdin::Empty => {}
        Stdin::Host => {
            b.stdin(tokio::io::stdin());
        }
        Stdin::Bytes(bytes) => {
            b.stdin(MemoryInputPipe::new(bytes.clone()));
        }
    }
    set_output(&mut b, &io.stdout, budget, true);
    set_output(&mut b, &io.stderr, budget, false);
    Ok(b)
}

fn set_output(b: &mut WasiCtxBuilder, sink: &Sink, budget: &Arc<OutputBudget>, stdout: bool) {
    let stream: Box<dyn wasmtime_wasi::cli::StdoutStream + Sync> = match sink {
        Sink::HostStdout => Box::new(CappedOutput::new(tokio::io::stdout(), budget.clone())),
        Sink::HostStderr => Box::new(CappedOutput::new(tokio::io::stderr(), budget.clone())),
        Sink::Capture(pipe) => Box::new(CappedOutput::new(pipe.clone(), budget.clone())),
    };
    if stdout {
        b.stdout(stream);
    } else {
        b.stderr(stream);
    }
}

/// Tracks and caps the memory and tables of one store.
pub struct Limiter {
    limits: Limits,
    memory: u64,
    peak_memory: u64,
    table_elements: usize,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            memory: 0,
            peak_memory: 0,
            table_elements: 0,
        }
    }

    /// The most linear memory the store held at once.
    pub fn peak_memory(&self) -> u64 {
        self.peak_memory
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self
            .memory
            .saturating_sub(current as u64)
            .saturating_add(desired as u64);
        if next > self.limits.memory {
            // Trapping (rather than failing `memory.grow` with -1) ends the
            // call with an error that names the limit; a guest that sees -1
            // usually aborts with a message that does not.
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                limit: self.limits.memory,
                requested: next,
            }));
        }
        self.memory = next;
        self.peak_memory = self.peak_memory.max(next);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self
            .table_elements
            .saturating_sub(current)
            .saturating_add(desired);
        if next > self.limits.table_elements {
            return Err(wasmtime::Error::new(LimitExceeded::Table {
                limit: self.limits.table_elements,
            }));
        }
        self.table_elements = next;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.tables
    }

    fn memories(&self) -> usize {
        self.limits.memories
    }
}

/// The data of one call's store. `W` is the WASI context: [`WasiCtx`] for
/// components, [`wasmtime_wasi::p1::WasiP1Ctx`] for preview1 modules.
pub struct State<W> {
    /// WASI.
    pub wasi: W,
    /// Resources handed to the guest.
    pub table: ResourceTable,
    /// Memory and table accounting.
    pub limiter: Limiter,
    /// Output budget shared with the stdio streams.
    pub budget: Arc<OutputBudget>,
    /// Logs and progress.
    pub events: EventSink,
    /// The tool's name, for events.
    pub tool: String,
    /// Set for a workflow: its place in the run.
    frame: Option<Box<dyn Frame>>,
}

impl<W> State<W> {
    /// Language-model tokens the run of this store's workflow spent.
    pub fn llm_tokens(&self) -> u64 {
        self.frame.as_ref().map_or(0, |f| f.llm_tokens())
    }

    /// A bare state (no frame) for embedders that build their own store,
    /// like the benchmark's wasmtime-only baseline.
    pub fn bare(wasi: W, limits: Limits, tool: &str, events: EventSink) -> State<W> {
        State {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(limits),
            budget: OutputBudget::new(limits.output),
            events,
            tool: tool.to_string(),
            frame: None,
        }
    }
}

impl WasiView for State<WasiCtx> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The linker for components: every `wasi:*@0.2` interface (what a guest
/// may actually do with them is decided by its WASI context) and
/// `toka:plugin/{host,tools,llm}`.
///
/// # Errors
///
/// Only if wasmtime's own definitions conflict, which would be a host bug.
pub fn component_linker(
    engine: &TokaEngine,
) -> wasmtime::Result<wasmtime::component::Linker<State<WasiCtx>>> {
    let mut linker = wasmtime::component::Linker::new(engine.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    host_api::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// The linker for WASI preview1 core modules.
///
/// # Errors
///
/// Only if wasmtime's own definitions conflict, which would be a host bug.
pub fn module_linker(
    engine: &TokaEngine,
) -> wasmtime::Result<wasmtime::Linker<State<wasmtime_wasi::p1::WasiP1Ctx>>> {
    let mut linker = wasmtime::Linker::new(engine.engine());
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut State<_>| &mut s.wasi)?;
    Ok(linker)
}
