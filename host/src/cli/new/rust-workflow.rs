//! `{{name}}`: a Toka workflow. It reports progress, may call the tools its
//! manifest lists (`spec.security.sandbox.tools`) through `tools::call`, and
//! answers with JSON.

wit_bindgen::generate!({ world: "workflow", path: "wit" });

use toka::plugin::host;

struct Workflow;

impl Guest for Workflow {
    fn run(input: String) -> Result<String, ToolError> {
        let value: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        let text = value["text"]
            .as_str()
            .ok_or_else(|| ToolError::InvalidInput("`text` (a string) is required".into()))?;
        host::progress(0.5, "counting words");
        let words = text.split_whitespace().count();
        host::progress(1.0, "done");
        Ok(serde_json::json!({ "words": words }).to_string())
    }
}

export!(Workflow);
