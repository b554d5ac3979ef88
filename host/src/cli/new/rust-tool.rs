//! `{{name}}`: a Toka tool. `{"text": "hi"}` → `{"text": "hi", "length": 2}`.

wit_bindgen::generate!({ world: "tool", path: "wit" });

use exports::toka::plugin::handler::{Guest, ToolError, ToolInfo};
use toka::plugin::host::{Level, log};

struct Tool;

impl Guest for Tool {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Says how long a text is.".into(),
            input_schema: r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let value: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        let text = value["text"]
            .as_str()
            .ok_or_else(|| ToolError::InvalidInput("`text` (a string) is required".into()))?;
        log(Level::Info, &format!("measuring {} bytes", text.len()));
        Ok(serde_json::json!({ "text": text, "length": text.chars().count() }).to_string())
    }
}

export!(Tool);
