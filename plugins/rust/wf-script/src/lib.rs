//! `wf-script`: a test workflow that does what its input says, step by step,
//! so the host's tests can drive every path of `tools.call` and
//! `llm.complete` (grants, budgets, cycles, provider failures) and look for
//! the provider's key everywhere a hostile workflow could.
//!
//! Input: `{"steps": [STEP, ...], "keep_going": false}` where STEP is one of
//! `{"call": TOOL, "input": {...}}`, `{"llm": PROMPT}`, `{"progress": F}`,
//! `{"spin": true}` or `{"hunt": MARKER_XOR_5A_HEX}`. Answers
//! `{"results": [...]}`; without `keep_going`, the first error is returned
//! as the workflow's error.

wit_bindgen::generate!({ world: "workflow", path: "../../../wit/v0.1.0" });

use serde_json::{Value, json};
use std::hint::black_box;
use toka::plugin::host;
use toka::plugin::llm::{self, Message, Request, Role};
use toka::plugin::tools;

struct WfScript;

fn error_json(e: &ToolError) -> Value {
    let (kind, m) = match e {
        ToolError::InvalidInput(m) => ("invalid-input", m),
        ToolError::Denied(m) => ("denied", m),
        ToolError::NotFound(m) => ("not-found", m),
        ToolError::Failed(m) => ("failed", m),
        ToolError::LimitExceeded(m) => ("limit-exceeded", m),
    };
    json!({ "kind": kind, "message": m })
}

impl Guest for WfScript {
    fn run(input: String) -> Result<String, ToolError> {
        let input: Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        let keep_going = input["keep_going"] == true;
        let mut results = Vec::new();
        for step in input["steps"].as_array().cloned().unwrap_or_default() {
            let r: Result<Value, ToolError> = if let Some(tool) = step["call"].as_str() {
                let arg = step.get("input").cloned().unwrap_or(json!({}));
                tools::call(tool, &arg.to_string())
                    .map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)))
            } else if let Some(prompt) = step["llm"].as_str() {
                llm::complete(&Request {
                    messages: vec![
                        Message { role: Role::System, content: "Be brief.".into() },
                        Message { role: Role::User, content: prompt.into() },
                    ],
                    model: None,
                    max_tokens: step["max_tokens"].as_u64().map(|n| n as u32),
                    temperature: None,
                })
                .map(|r| {
                    json!({
                        "content": r.content, "model": r.model, "stop_reason": r.stop_reason,
                        "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens,
                    })
                })
            } else if let Some(f) = step["progress"].as_f64() {
                host::progress(f as f32, &format!("step at {f}"));
                Ok(json!(f))
            } else if step["sleep_ms"].is_u64() {
                let until = std::time::Instant::now()
                    + std::time::Duration::from_millis(step["sleep_ms"].as_u64().unwrap_or(0));
                while std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Ok(json!("slept"))
            } else if step["spin"] == true {
                loop {
                    black_box(());
                }
            } else if let Some(hex) = step["hunt"].as_str() {
                Ok(hunt(hex))
            } else {
                Err(ToolError::InvalidInput(format!("unknown step {step}")))
            };
            match r {
                Ok(v) => results.push(json!({ "ok": v })),
                Err(e) if keep_going => results.push(json!({ "err": error_json(&e) })),
                Err(e) => return Err(e),
            }
        }
        Ok(json!({ "results": results }).to_string())
    }
}

/// Looks for a secret everywhere a guest can look: its environment, every
/// file it can open, and its whole linear memory. The marker arrives XORed
/// with 0x5A (as hex) so that the plain marker is never in memory unless
/// the host put it there.
fn hunt(hex: &str) -> Value {
    let enc: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let contains = |hay: &[u8]| {
        hay.windows(enc.len().max(1))
            .any(|w| w.iter().zip(&enc).all(|(a, b)| (a ^ 0x5A) == *b))
    };
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let in_env = std::env::vars().any(|(k, v)| contains(k.as_bytes()) || contains(v.as_bytes()));
    let mut opened = Vec::new();
    let mut in_files = false;
    for p in [
        "/proc/self/environ",
        "/proc/1/environ",
        "/etc/environment",
        "/root/.bashrc",
        ".env",
        "/.env",
    ] {
        if let Ok(bytes) = std::fs::read(p) {
            opened.push(p.to_string());
            in_files |= contains(&bytes);
        }
    }
    // The first MiB of each file: a key would be in a small file, and a
    // granted /tmp may hold files larger than the workflow's memory limit.
    let head = |p: &std::path::Path| {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(p)
            .and_then(|f| f.take(1 << 20).read_to_end(&mut bytes))
            .map(|_| bytes)
    };
    for dir in ["/", ".", "/data", "/tmp"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if let Ok(bytes) = head(&e.path()) {
                    opened.push(e.path().display().to_string());
                    in_files |= contains(&bytes);
                }
            }
        }
    }
    let in_memory = scan_memory(&enc);
    json!({
        "env": env, "found_in_env": in_env, "opened": opened,
        "found_in_files": in_files, "found_in_memory": in_memory,
        "memory_bytes": core::arch::wasm32::memory_size(0) * 65536,
    })
}

fn scan_memory(enc: &[u8]) -> bool {
    if enc.is_empty() {
        return false;
    }
    let size = core::arch::wasm32::memory_size(0) * 65536;
    let mut found = false;
    // Reading all of linear memory, byte by byte: address 0 is skipped
    // (null), everything else is in bounds.
    for addr in 1..size.saturating_sub(enc.len()) {
        let mut hit = true;
        for (i, b) in enc.iter().enumerate() {
            // SAFETY: addr + i < memory size, so the read is in bounds.
            let v = unsafe { core::ptr::read_volatile((addr + i) as *const u8) };
            if v ^ 0x5A != *b {
                hit = false;
                break;
            }
        }
        if hit {
            found = true;
            break;
        }
    }
    found
}

export!(WfScript);
