//! Token times: whole seconds since the Unix epoch (Datalog dates have
//! one-second resolution), shown as RFC 3339 in UTC.

use serde::Serialize;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch; times before it count as 0.
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `t` truncated to a whole second, as Datalog stores it.
pub(crate) fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix(t))
}

/// Displays a time as RFC 3339 in UTC (`2026-12-01T20:31:53Z`).
pub(crate) struct Rfc3339(pub SystemTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = i64::try_from(unix(self.0)).unwrap_or(i64::MAX);
        match time::OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }) {
            Some(s) => f.write_str(&s),
            // Past year 9999: no RFC 3339 form, say it in seconds.
            None => write!(f, "@{secs}"),
        }
    }
}

/// A point in time as `inspect` shows it: both forms, so that a script need
/// not parse dates and a person need not convert seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// RFC 3339, UTC.
    pub rfc3339: String,
    /// Seconds since the Unix epoch.
    pub unix: u64,
}

impl From<SystemTime> for Expiry {
    fn from(t: SystemTime) -> Self {
        Expiry {
            rfc3339: Rfc3339(t).to_string(),
            unix: unix(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_in_utc_whole_seconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_157_113_900);
        assert_eq!(Rfc3339(t).to_string(), "2026-12-01T20:31:53Z");
        assert_eq!(Expiry::from(t).unix, 1_796_157_113);
        assert_eq!(
            whole_seconds(t),
            UNIX_EPOCH + Duration::from_secs(1_796_157_113)
        );
    }
}
