//! `summarize-file`: an example agent workflow. It reads a file through the
//! `file-reader` tool, checks a date through `date-validator`, asks the
//! operator's language model for a summary, reports progress at each step,
//! and answers with JSON.
//!
//! Everything it touches goes through the host: it has no files, no network
//! and no key of its own. Input: `{"path": "notes.txt", "date": "2026-11-26"}`
//! (`date` optional; `max_words` optional, default 60).

wit_bindgen::generate!({ world: "workflow", path: "../../../wit/v0.1.0" });

use toka::plugin::host::{self, Level};
use toka::plugin::llm::{self, Message, Request, Role};
use toka::plugin::tools;

struct SummarizeFile;

fn call(tool: &str, input: serde_json::Value) -> Result<serde_json::Value, ToolError> {
    let out = tools::call(tool, &input.to_string())?;
    serde_json::from_str(&out).map_err(|e| {
        ToolError::Failed(format!("`{tool}` answered something that is not JSON: {e}"))
    })
}

impl Guest for SummarizeFile {
    fn run(input: String) -> Result<String, ToolError> {
        let input: serde_json::Value = serde_json::from_str(&input)
            .map_err(|e| ToolError::InvalidInput(format!("input is not JSON: {e}")))?;
        let path = input["path"]
            .as_str()
            .ok_or_else(|| ToolError::InvalidInput("`path` (a string) is required".into()))?;
        let max_words = input["max_words"].as_u64().unwrap_or(60);

        host::progress(0.1, &format!("reading {path}"));
        let file = call("file-reader", serde_json::json!({ "path": path }))?;
        let content = file["content"].as_str().unwrap_or_default();
        host::log(
            Level::Info,
            &format!("read {} bytes of {path}", content.len()),
        );

        let date = match input["date"].as_str() {
            Some(d) => {
                host::progress(0.35, &format!("checking the date {d}"));
                Some(call("date-validator", serde_json::json!({ "date": d }))?)
            }
            None => None,
        };

        host::progress(0.6, "asking the model for a summary");
        let mut prompt = format!(
            "Summarize the following file in at most {max_words} words.\n\nFile: {path}\n\n{content}"
        );
        if let Some(d) = date.as_ref().filter(|d| d["valid"] == true) {
            prompt.push_str(&format!(
                "\n\nMention that the summary is as of {} ({}).",
                d["normalized"].as_str().unwrap_or_default(),
                d["weekday"].as_str().unwrap_or_default()
            ));
        }
        let answer = llm::complete(&Request {
            messages: vec![
                Message {
                    role: Role::System,
                    content: "You write short, factual summaries.".into(),
                },
                Message {
                    role: Role::User,
                    content: prompt,
                },
            ],
            model: input["model"].as_str().map(str::to_string),
            max_tokens: Some(300),
            temperature: Some(0.2),
        })?;

        host::progress(1.0, "done");
        Ok(serde_json::json!({
            "path": path,
            "bytes": content.len(),
            "truncated": file["truncated"],
            "date": date,
            "summary": answer.content,
            "model": answer.model,
            "tokens": { "input": answer.usage.input_tokens, "output": answer.usage.output_tokens },
        })
        .to_string())
    }
}

export!(SummarizeFile);
