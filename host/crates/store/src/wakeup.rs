//! Wake-ups for a replica's runner when a cancel request for one of its runs
//! may be waiting: an optimisation over polling, never a replacement.
//!
//! A request made through the same store handle wakes at once (both
//! backends). On PostgreSQL a request made by any replica also wakes, through
//! `LISTEN`/`NOTIFY`; notifications sent while the listener is disconnected
//! are lost, so every reconnect wakes everyone too (something may have been
//! missed), and the runner must still poll
//! [`RunStore::cancel_requests`](crate::RunStore::cancel_requests)
//! every few seconds: the request itself is durable in the run's row.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// Resolves when a cancel request for the replica it was made for may be
/// waiting ([`RunStore::cancel_wakeup`](crate::RunStore::cancel_wakeup)).
///
/// # Examples
///
/// ```no_run
/// # async fn runner(store: std::sync::Arc<dyn toka_store::RunStore>) -> Result<(), toka_store::StoreError> {
/// let mut wake = store.cancel_wakeup("replica-a");
/// loop {
///     tokio::select! {
///         _ = wake.notified() => {}
///         _ = tokio::time::sleep(std::time::Duration::from_secs(3)) => {}
///     }
///     for id in store.cancel_requests("replica-a").await? {
///         // cancel the local task of `id` (if not already cancelling),
///         // then finish it `cancelled`
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct CancelWakeup(watch::Receiver<u64>);

impl CancelWakeup {
    /// Waits for the next wake-up. Never resolves once the store is gone,
    /// so that a `select!` with a poll timer keeps polling.
    pub async fn notified(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The senders of the wake-ups, one per replica asked for.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    by_replica: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Wakeups {
    /// A wake-up for `replica`.
    pub(crate) fn subscribe(&self, replica: &str) -> CancelWakeup {
        let mut map = match self.by_replica.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let rx = map
            .entry(replica.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        CancelWakeup(rx)
    }

    /// Wakes `replica`'s runner, if it asked for wake-ups.
    pub(crate) fn wake(&self, replica: &str) {
        if let Ok(map) = self.by_replica.lock()
            && let Some(tx) = map.get(replica)
        {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every runner (after a listener reconnect).
    pub(crate) fn wake_all(&self) {
        if let Ok(map) = self.by_replica.lock() {
            for tx in map.values() {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_only_the_replica_named() {
        let w = Wakeups::default();
        let mut a = w.subscribe("a");
        let mut b = w.subscribe("b");
        w.wake("a");
        tokio::time::timeout(Duration::from_secs(1), a.notified())
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.notified())
                .await
                .is_err()
        );
        w.wake_all();
        tokio::time::timeout(Duration::from_secs(1), b.notified())
            .await
            .unwrap();
    }
}
