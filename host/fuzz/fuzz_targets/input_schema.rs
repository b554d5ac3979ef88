//! A tool's input checked against its schema: `Schema::compile` on the
//! schema JSON, then `Schema::check_input` on the input JSON. The fuzz
//! bytes are `SCHEMA \0 INPUT`.
//!
//! Invariants:
//! - no panic, whatever the schema and the input;
//! - the check is deterministic: the same input against the same schema,
//!   and against a second compilation of it, gets the same answer;
//! - a refusal's message is bounded by the input (values are shortened):
//!   at most twice the input plus a page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use toka_spec::manifest::Schema;

fuzz_target!(|data: &[u8]| {
    let (schema, input) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(schema) = serde_json::from_slice::<Value>(schema) else {
        return;
    };
    let Ok(input) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    let Ok(compiled) = Schema::compile(schema.clone()) else {
        return;
    };
    let first = compiled.check_input(&input);
    assert_eq!(
        first,
        compiled.check_input(&input),
        "same schema, same input, another answer"
    );
    let again = Schema::compile(schema).expect("a schema that compiled once compiles again");
    assert_eq!(
        first,
        again.check_input(&input),
        "a recompiled schema answers otherwise"
    );
    if let Err(message) = &first {
        let bound = 2 * input.to_string().len() + 1024;
        assert!(
            message.len() <= bound,
            "a {}-byte message: {message:.300}",
            message.len()
        );
    }
});
