//! Benchmark: what the subprocess shim (through the one call path) adds over
//! a plain spawn of the same interpreter running the same script, output
//! captured in both.
//!
//! `cargo run --release --example shim_overhead -- [ITERATIONS]` prints the
//! median and p90 of both and of the difference. Runs as root (the pids
//! cgroup and the network namespace need it), like the shim in production.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use toka_runtime::call::{CallCtx, Caller, Runtime};
use toka_runtime::catalog::{self, DirCatalog};
use toka_runtime::engine::{EngineOptions, TokaEngine};
use toka_runtime::events;
use toka_runtime::sandbox::SandboxIo;
use toka_runtime::shim::ShimOptions;
use toka_spec::manifest;
use toka_spec::policy::Grants;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("noop.sh");
    std::fs::write(&script, "exit 0\n")?;
    let digest = manifest::Sha256Hex::of(b"exit 0\n");
    let manifest_path = dir.path().join("noop.yaml");
    std::fs::write(
        &manifest_path,
        format!(
            "metadata: {{ name: noop, version: 1.0.0, description: does nothing }}\n\
             spec: {{ executable: {{ type: shell, interpreter: sh, path: noop.sh, sha256: {digest} }} }}\n"
        ),
    )?;
    let spec = manifest::load(&manifest_path)?;
    let options = ShimOptions {
        allow_weaker_sandbox: true,
        ..ShimOptions::default()
    };
    let sh = options.interpreters.get("sh").ok_or("no sh")?.to_path_buf();
    let engine = Arc::new(TokaEngine::new(&EngineOptions {
        cache_dir: None,
        ..EngineOptions::default()
    })?);
    let tool = Arc::new(catalog::load(&engine, spec)?);
    let runtime = Arc::new(Runtime {
        catalog: Arc::new(DirCatalog::new(engine.clone(), dir.path().to_path_buf())),
        engine,
        grants: Grants::default(),
        shim: options,
        llm: None,
        audit: None,
    });
    let call = || {
        let ctx = CallCtx::new(
            Caller::Operator,
            SandboxIo::captured("noop", 0, events::discard()),
        );
        runtime.call(tool.clone(), serde_json::json!({}), ctx)
    };

    // The baseline captures stdout and stderr as the shim does: what is
    // measured is the sandbox, not the cost of collecting output.
    let plain = |script: &Path| {
        let start = Instant::now();
        let out = std::process::Command::new(&sh)
            .arg(script)
            .stdin(std::process::Stdio::null())
            .output();
        assert!(out.map(|o| o.status.success()).unwrap_or(false));
        start.elapsed()
    };
    // Warm up both paths (page cache, cgroup hierarchy).
    for _ in 0..20 {
        plain(&script);
        call().await;
    }
    let mut base = Vec::with_capacity(iterations);
    let mut shimmed = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        base.push(plain(&script));
        let start = Instant::now();
        let outcome = call().await;
        shimmed.push(start.elapsed());
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    }
    let (b50, b90) = (percentile(&mut base, 0.5), percentile(&mut base, 0.9));
    let (s50, s90) = (percentile(&mut shimmed, 0.5), percentile(&mut shimmed, 0.9));
    println!("iterations: {iterations}");
    println!(
        "plain spawn of {} noop.sh, output captured: median {b50:?}, p90 {b90:?}",
        sh.display()
    );
    println!("through the shim:              median {s50:?}, p90 {s90:?}");
    println!(
        "added by the shim:             median {:?}",
        s50.saturating_sub(b50)
    );
    Ok(())
}
