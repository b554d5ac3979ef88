//! `GET /metrics`: Prometheus text exposition of calls by tool and outcome
//! (every answer of the invoke endpoint, refusals included), limits hit, a
//! latency histogram, calls in flight and tools loaded.

use super::App;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Upper bounds (seconds) of the call latency histogram.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counters behind `/metrics`.
#[derive(Default)]
pub(crate) struct Metrics {
    /// (tool, outcome) → calls.
    calls: Mutex<BTreeMap<(String, String), u64>>,
    /// limit name → times hit.
    limits: Mutex<BTreeMap<String, u64>>,
    /// Cumulative counts per [`LATENCY_BUCKETS`] bound, the count, the sum.
    latency: Mutex<([u64; LATENCY_BUCKETS.len()], u64, f64)>,
}

impl Metrics {
    /// Records one answer of the invoke endpoint.
    pub(crate) fn record(&self, tool: &str, outcome: &str, limit: Option<&str>, seconds: f64) {
        if let Ok(mut c) = self.calls.lock() {
            *c.entry((tool.to_string(), outcome.to_string()))
                .or_default() += 1;
        }
        if let (Some(l), Ok(mut m)) = (limit, self.limits.lock()) {
            *m.entry(l.to_string()).or_default() += 1;
        }
        if let Ok(mut h) = self.latency.lock() {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.0[i] += 1;
                }
            }
            h.1 += 1;
            h.2 += seconds;
        }
    }
}

/// Label values are tool names (validated words) and outcome kinds, but a
/// name from a URL is the client's: escape what the format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut out = String::new();
    let m = app.door.metrics();
    let _ = writeln!(
        out,
        "# HELP toka_calls_total Tool calls by tool and outcome.\n# TYPE toka_calls_total counter"
    );
    if let Ok(c) = m.calls.lock() {
        for ((tool, outcome), n) in c.iter() {
            let _ = writeln!(
                out,
                "toka_calls_total{{tool=\"{}\",outcome=\"{}\"}} {n}",
                label(tool),
                label(outcome)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP toka_limits_hit_total Calls ended by a limit, by limit.\n# TYPE toka_limits_hit_total counter"
    );
    if let Ok(l) = m.limits.lock() {
        for (limit, n) in l.iter() {
            let _ = writeln!(out, "toka_limits_hit_total{{limit=\"{limit}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP toka_call_duration_seconds Wall time of tool calls.\n# TYPE toka_call_duration_seconds histogram"
    );
    if let Ok(h) = m.latency.lock() {
        for (bound, n) in LATENCY_BUCKETS.iter().zip(h.0.iter()) {
            let _ = writeln!(
                out,
                "toka_call_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "toka_call_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.1
        );
        let _ = writeln!(out, "toka_call_duration_seconds_sum {}", h.2);
        let _ = writeln!(out, "toka_call_duration_seconds_count {}", h.1);
    }
    let _ = writeln!(
        out,
        "# HELP toka_calls_in_flight Calls running now.\n# TYPE toka_calls_in_flight gauge"
    );
    let _ = writeln!(out, "toka_calls_in_flight {}", app.door.in_flight());
    let _ = writeln!(
        out,
        "# HELP toka_tools_loaded Tools being served.\n# TYPE toka_tools_loaded gauge"
    );
    let _ = writeln!(out, "toka_tools_loaded {}", app.catalog.snapshot().len());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
