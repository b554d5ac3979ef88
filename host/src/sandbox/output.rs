//! Output caps: every byte a guest writes to stdout or stderr, logs through
//! the host, or returns as a result is charged to one per-call budget. The
//! write that would cross the limit writes what still fits and then traps the
//! guest with [`LimitExceeded::Output`], so a flood ends the call instead of
//! filling a disk or the host's memory.

use crate::outcome::LimitExceeded;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Bytes one call may still write.
#[derive(Debug)]
pub struct OutputBudget {
    limit: u64,
    used: AtomicU64,
}

impl OutputBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<OutputBudget> {
        Arc::new(OutputBudget {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged so far (never more than the limit).
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed).min(self.limit)
    }

    /// Bytes still allowed.
    pub fn remaining(&self) -> u64 {
        self.limit().saturating_sub(self.used())
    }

    /// Charges `n` bytes. `Err(k)` means only the first `k` fit: the budget is
    /// now spent and the caller must stop the guest.
    pub fn charge(&self, n: usize) -> Result<(), usize> {
        let before = self.used.fetch_add(n as u64, Ordering::Relaxed);
        let after = before.saturating_add(n as u64);
        if after <= self.limit {
            Ok(())
        } else {
            Err(self.limit.saturating_sub(before) as usize)
        }
    }

    /// The error that ends a call that overran this budget.
    pub fn exceeded(&self) -> LimitExceeded {
        LimitExceeded::Output { limit: self.limit }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_lets_through_what_fits() {
        let b = OutputBudget::new(10);
        assert_eq!(b.charge(4), Ok(()));
        assert_eq!(b.charge(6), Ok(()));
        assert_eq!(b.charge(1), Err(0));
        assert_eq!(b.used(), 10);
        let b = OutputBudget::new(10);
        assert_eq!(b.charge(7), Ok(()));
        assert_eq!(b.charge(7), Err(3));
    }
}
