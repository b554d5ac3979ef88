//! The clock the store stamps times with (starts, finishes, leases, events,
//! retention cut-offs): the system clock, or one a test sets. Times come from
//! the application, never from `now()` in SQL, so both databases and every
//! replica compare the same kind of number.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock (0 before 1970, which no real clock reports).
pub fn system_clock() -> Clock {
    Arc::new(system_now_ms)
}

/// Now, in unix milliseconds.
pub(crate) fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
