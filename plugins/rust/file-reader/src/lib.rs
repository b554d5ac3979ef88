//! `file-reader`: reads a text file under the granted data directory (`/data`).
//!
//! The tool joins the requested path onto `/data` without checking it: keeping
//! the guest naive on purpose is what lets the host's tests prove that the
//! sandbox, not the tool, stops `..`, absolute paths and symlinks that lead out.

wit_bindgen::generate!({ world: "tool", path: "../../../wit/v0.1.0" });

use exports::toka::plugin::handler::{Guest, ToolError, ToolInfo};
use std::io::Read;

const ROOT: &str = "/data";
const DEFAULT_MAX_BYTES: u64 = 64 * 1024;

struct FileReader;

impl Guest for FileReader {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "file-reader".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Reads a UTF-8 text file from the granted data directory.".into(),
            input_schema: r#"{"type":"object","properties":{"path":{"type":"string","description":"File path relative to the data directory"},"max_bytes":{"type":"integer","minimum":1}},"required":["path"]}"#.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let value: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        let path = value
            .get("path")
            .and_then(|p| p.as_str())
            .ok_or_else(|| ToolError::InvalidInput("`path` (a string) is required".into()))?;
        let max_bytes = value
            .get("max_bytes")
            .and_then(|m| m.as_u64())
            .unwrap_or(DEFAULT_MAX_BYTES);
        let full = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{ROOT}/{path}")
        };
        let file = std::fs::File::open(&full).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ToolError::NotFound(format!("{path}: {e}")),
            std::io::ErrorKind::PermissionDenied => ToolError::Denied(format!("{path}: {e}")),
            _ => ToolError::Failed(format!("{path}: {e}")),
        })?;
        let mut bytes = Vec::new();
        file.take(max_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ToolError::Failed(format!("{path}: {e}")))?;
        let truncated = bytes.len() as u64 > max_bytes;
        bytes.truncate(max_bytes as usize);
        let content = String::from_utf8(bytes)
            .map_err(|_| ToolError::InvalidInput(format!("{path} is not UTF-8 text")))?;
        Ok(serde_json::json!({
            "path": path,
            "content": content,
            "bytes": content.len(),
            "truncated": truncated,
        })
        .to_string())
    }
}

export!(FileReader);
