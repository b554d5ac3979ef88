//! `hello`: the smallest useful Toka tool. `{"name": "Ada"}` → a greeting.

wit_bindgen::generate!({ world: "tool", path: "../../../wit/v0.1.0" });

use exports::toka::plugin::handler::{Guest, ToolError, ToolInfo};
use toka::plugin::host::{Level, log};

struct Hello;

impl Guest for Hello {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "hello".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Greets someone by name.".into(),
            input_schema: r#"{"type":"object","properties":{"name":{"type":"string","description":"Who to greet"}},"required":["name"]}"#.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let value: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        let name = value
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| ToolError::InvalidInput("`name` (a string) is required".into()))?;
        if name.trim().is_empty() {
            return Err(ToolError::InvalidInput("`name` must not be empty".into()));
        }
        log(Level::Info, &format!("greeting {name}"));
        Ok(serde_json::json!({ "greeting": format!("Hello, {name}!") }).to_string())
    }
}

export!(Hello);
