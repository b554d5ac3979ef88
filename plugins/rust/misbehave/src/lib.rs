//! `misbehave`: a tool that misbehaves on request, so the host's tests can
//! check that every limit and error path of a *tool call* (not just of a
//! command) ends the call cleanly. Input: `{"do": "<what>"}`.

wit_bindgen::generate!({ world: "tool", path: "../../../wit/v0.1.0" });

use exports::toka::plugin::handler::{Guest, ToolError, ToolInfo};
use std::hint::black_box;

struct Misbehave;

impl Guest for Misbehave {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "misbehave".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Test tool: spins, grows memory, recurses, traps, floods or fails on request.".into(),
            input_schema: r#"{"type":"object","properties":{"do":{"enum":["spin","grow","recurse","trap","flood","fail","env","big-result","ok"]}},"required":["do"]}"#.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let value: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        match value.get("do").and_then(|d| d.as_str()).unwrap_or("") {
            "spin" => loop {
                black_box(());
            },
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recurse" => Ok(recurse(black_box(1)).to_string()),
            "trap" => std::process::abort(),
            "flood" => loop {
                println!("flood flood flood flood flood flood flood flood flood flood flood flood");
            },
            "fail" => Err(ToolError::Failed("asked to fail".into())),
            "env" => Ok(serde_json::json!({
                "env": std::env::vars().collect::<Vec<_>>(),
            })
            .to_string()),
            "big-result" => Ok(serde_json::json!({ "data": "x".repeat(4 << 20) }).to_string()),
            "ok" => Ok(r#"{"ok":true}"#.into()),
            other => Err(ToolError::InvalidInput(format!("unknown `do`: {other:?}"))),
        }
    }
}

/// Deep recursion with large wasm frames and no shadow-stack use; see
/// `test-programs/src/bin/recurse-forever.rs`.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == u64::MAX {
        return 0;
    }
    let (a, b, c, d) = (
        n.wrapping_mul(3),
        n ^ 0x55,
        n.rotate_left(7),
        n.wrapping_add(11),
    );
    let (e, f, g, h) = (
        a ^ b,
        c.wrapping_sub(d),
        a.rotate_right(3),
        b.wrapping_mul(c),
    );
    let r = recurse(n.wrapping_add(1));
    r.wrapping_sub(a ^ b ^ c ^ d).wrapping_sub(e ^ f ^ g ^ h)
}

export!(Misbehave);
