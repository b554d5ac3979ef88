//! Per-token rate limits (`--rate-limit N/s`, `--rate-burst B`): a token
//! bucket per token id, so one noisy token is answered 429 with
//! `Retry-After` while every other token is served as before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tokens whose buckets are remembered at once; past this, full (idle)
/// buckets are forgotten first, so a flood of distinct tokens costs bounded
/// memory.
const MAX_KEYS: usize = 10_000;

/// A rate: `rate` requests per second on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Requests per second.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: f64,
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `N/s` (per second) or `N/m` (per minute); the burst defaults to one
    /// second's worth, at least 1.
    fn from_str(s: &str) -> Result<Rate, String> {
        let bad = || format!("`{s}` is not a rate: write N/s or N/m, like 50/s");
        let (n, unit) = s.split_once('/').ok_or_else(bad)?;
        let n: f64 = n.trim().parse().map_err(|_| bad())?;
        let per_second = match unit.trim() {
            "s" => n,
            "m" => n / 60.0,
            _ => return Err(bad()),
        };
        if !(per_second > 0.0 && per_second.is_finite()) {
            return Err(bad());
        }
        Ok(Rate {
            per_second,
            burst: per_second.max(1.0),
        })
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every token.
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Limits of `rate` per key.
    pub fn new(rate: Rate) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request of `key`'s allowance: `Err(wait)` when it has none
    /// left, with the time until it has one.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let rate = self.rate;
            buckets.retain(|_, b| refill(b, rate, now) < rate.burst);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.rate.burst,
            at: now,
        });
        refill(bucket, self.rate, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.rate.per_second,
            ))
        }
    }
}

fn refill(b: &mut Bucket, rate: Rate, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + elapsed * rate.per_second).min(rate.burst);
    b.at = now;
    b.tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!("50/s".parse::<Rate>().map(|r| r.per_second), Ok(50.0));
        assert_eq!("120/m".parse::<Rate>().map(|r| r.per_second), Ok(2.0));
        for bad in ["50", "x/s", "0/s", "-1/s", "5/h"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn one_noisy_key_does_not_slow_another() {
        let l = RateLimiter::new(Rate {
            per_second: 1.0,
            burst: 3.0,
        });
        for _ in 0..3 {
            assert!(l.check("noisy").is_ok());
        }
        let wait = l.check("noisy").expect_err("out of burst");
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
        assert!(l.check("quiet").is_ok(), "another key has its own bucket");
    }
}
