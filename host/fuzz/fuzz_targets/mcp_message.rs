//! MCP JSON-RPC messages as a client sends them, decoded with the model
//! types of the rmcp version and features toka-host uses
//! (`ClientJsonRpcMessage`), as its stdio and streamable-HTTP transports
//! do.
//!
//! Dispatch (the host's `ServerHandler`, tool calls against the bundled
//! tools) is not covered: the handler lives in the toka-host binary crate
//! (host/src/mcp), which has no library target to link a fuzz target
//! against.
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
    if has_duplicate_keys(data) {
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

/// True when some JSON object in `data` gives a key twice (false for text
/// that is not JSON).
fn has_duplicate_keys(data: &[u8]) -> bool {
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    struct Check(bool);
    impl<'de> Deserialize<'de> for Check {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Check, D::Error> {
            d.deserialize_any(CheckVisitor)
        }
    }
    struct CheckVisitor;
    impl<'de> Visitor<'de> for CheckVisitor {
        type Value = Check;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Check, E> {
            Ok(Check(false))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Check, E> {
            Ok(Check(false))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Check, E> {
            Ok(Check(false))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Check, E> {
            Ok(Check(false))
        }
        fn visit_str<E>(self, _: &str) -> Result<Check, E> {
            Ok(Check(false))
        }
        fn visit_unit<E>(self) -> Result<Check, E> {
            Ok(Check(false))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Check, A::Error> {
            let mut dup = false;
            while let Some(Check(d)) = seq.next_element()? {
                dup |= d;
            }
            Ok(Check(dup))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Check, A::Error> {
            let mut keys = std::collections::HashSet::new();
            let mut dup = false;
            while let Some(k) = map.next_key::<String>()? {
                let Check(d) = map.next_value()?;
                dup |= d || !keys.insert(k);
            }
            Ok(Check(dup))
        }
    }
    serde_json::from_slice::<Check>(data).is_ok_and(|c| c.0)
}
