//! MCP JSON-RPC messages as a client sends them, decoded with the model
//! types of the rmcp version and features toka-host uses
//! (`ClientJsonRpcMessage`), as its stdio and streamable-HTTP transports
//! do.
//!
//! Dispatch (the door, the call path and the bundled tools behind `/mcp`)
//! is the `serve_request` target's.
//!
//! Invariants: no panic; a message that decodes re-encodes to JSON that
//! decodes to the same message (compared as JSON values), and encoding is
//! stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmcp::model::ClientJsonRpcMessage;

fuzz_target!(|data: &[u8]| {
    // A key given twice makes rmcp's typed variant refuse the message and
    // its catch-all variant take it with raw params, which re-encoded
    // (without the duplicate) decodes as the typed one: another message,
    // by design of the input, not a codec bug (docs/RELIABILITY.md,
    // finding 10).
    if toka_spec::json::duplicate_key(data).is_some() {
        return;
    }
    if let Ok(m) = serde_json::from_slice::<ClientJsonRpcMessage>(data) {
        let v = serde_json::to_value(&m).expect("a decoded message encodes");
        let again: ClientJsonRpcMessage = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("re-encoded message does not decode: {e}\n{v}"));
        let v2 = serde_json::to_value(&again).expect("encodes");
        assert_eq!(v, v2, "decode → encode → decode is not stable");
    }
});
