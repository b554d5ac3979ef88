//! `noop`: the trivial tool, for measuring what a call costs the host. It
//! ignores its input and answers `{}`.

wit_bindgen::generate!({ world: "tool", path: "../../../wit/v0.1.0" });

use exports::toka::plugin::handler::{Guest, ToolError, ToolInfo};

struct Noop;

impl Guest for Noop {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "noop".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Does nothing and answers {}.".into(),
            input_schema: r#"{"type":"object"}"#.into(),
        }
    }

    fn invoke(_input: String) -> Result<String, ToolError> {
        Ok("{}".into())
    }
}

export!(Noop);
