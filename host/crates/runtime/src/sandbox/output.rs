//! Output caps on a guest's stdout and stderr: every write is charged to the
//! call's [`OutputBudget`]. The write that would cross the limit writes what
//! still fits and then traps the guest with the output limit, so a flood ends
//! the call instead of filling a disk or the host's memory.

use crate::budget::OutputBudget;
use bytes::Bytes;
use std::sync::Arc;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// A guest stdout/stderr that charges every write to a budget.
pub struct CappedOutput<S> {
    inner: S,
    budget: Arc<OutputBudget>,
}

impl<S> CappedOutput<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, budget: Arc<OutputBudget>) -> Self {
        CappedOutput { inner, budget }
    }
}

impl<S: IsTerminal> IsTerminal for CappedOutput<S> {
    fn is_terminal(&self) -> bool {
        self.inner.is_terminal()
    }
}

impl<S: StdoutStream> StdoutStream for CappedOutput<S> {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CappedStream {
            inner: self.inner.p2_stream(),
            budget: self.budget.clone(),
        })
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        // Only WASIp3 guests use this path, and the host links WASIp2 only.
        Box::new(tokio::io::sink())
    }
}

struct CappedStream {
    inner: Box<dyn OutputStream>,
    budget: Arc<OutputBudget>,
}

#[async_trait::async_trait]
impl Pollable for CappedStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[async_trait::async_trait]
impl OutputStream for CappedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        match self.budget.charge(bytes.len()) {
            Ok(()) => self.inner.write(bytes),
            Err(fits) => {
                if fits > 0 {
                    let _ = self.inner.write(bytes.slice(..fits));
                    let _ = self.inner.flush();
                }
                Err(StreamError::Trap(wasmtime::Error::new(
                    self.budget.exceeded(),
                )))
            }
        }
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // A guest that has spent its budget and asks to write more is over
        // the limit now, whatever room the sink itself has left.
        if self.budget.used() >= self.budget.limit() {
            return Err(StreamError::Trap(wasmtime::Error::new(
                self.budget.exceeded(),
            )));
        }
        self.inner.check_write()
    }
}
