//! The output budget of one call: every byte a guest writes to stdout or
//! stderr, logs through the host, or returns as a result, and every byte a
//! subprocess tool prints, is charged to it. Shared by the wasm sandbox and
//! the subprocess shim.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use toka_spec::outcome::LimitExceeded;

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
