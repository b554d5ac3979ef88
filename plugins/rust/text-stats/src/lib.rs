//! `text-stats` in Rust: byte, character, line and word counts and the most
//! frequent words of a text. The same tool exists in Python, JavaScript and
//! C (plugins/{python,js,c}/text-stats); all four answer identically:
//!
//! - `bytes`: UTF-8 length; `characters`: Unicode code points;
//! - `lines`: `\n` count, plus one if the text does not end with `\n`;
//! - `words`: maximal runs of ASCII letters and digits, lowercased;
//! - `top_words`: the `top` (default 5, 1..=50) most frequent, by count
//!   descending then word ascending.

wit_bindgen::generate!({ world: "tool", path: "../../../wit/v0.1.0" });

use exports::toka::plugin::handler::{Guest, ToolError, ToolInfo};
use std::collections::BTreeMap;

/// The schema all four implementations declare.
const SCHEMA: &str = r#"{"type":"object","properties":{"text":{"type":"string"},"top":{"type":"integer","minimum":1,"maximum":50}},"required":["text"]}"#;

struct TextStats;

impl Guest for TextStats {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "text-stats".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Counts bytes, characters, lines and words of a text and lists its most frequent words.".into(),
            input_schema: SCHEMA.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let value: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        let text = value["text"]
            .as_str()
            .ok_or_else(|| ToolError::InvalidInput("`text` (a string) is required".into()))?;
        let top = match value.get("top") {
            None => 5,
            Some(t) => t.as_u64().filter(|t| (1..=50).contains(t)).ok_or_else(|| {
                ToolError::InvalidInput("`top` must be an integer from 1 to 50".into())
            })? as usize,
        };

        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut words = 0u64;
        for word in text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            words += 1;
            *counts.entry(word.to_ascii_lowercase()).or_default() += 1;
        }
        let mut ranked: Vec<(&String, &u64)> = counts.iter().collect();
        // BTreeMap order is word ascending; a stable sort keeps it for ties.
        ranked.sort_by(|a, b| b.1.cmp(a.1));
        let top_words: Vec<serde_json::Value> = ranked
            .iter()
            .take(top)
            .map(|(w, c)| serde_json::json!({ "word": w, "count": c }))
            .collect();
        let newlines = text.matches('\n').count();
        let lines = newlines + usize::from(!text.is_empty() && !text.ends_with('\n'));
        Ok(serde_json::json!({
            "bytes": text.len(),
            "characters": text.chars().count(),
            "lines": lines,
            "words": words,
            "unique_words": counts.len(),
            "top_words": top_words,
        })
        .to_string())
    }
}

export!(TextStats);
