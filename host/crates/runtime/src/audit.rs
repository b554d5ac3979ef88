//! The audit log: one JSON line per event (a tool call, an LLM request or
//! response, an agent run) appended to a file the operator names. Inputs are
//! recorded by size only; LLM prompts and answers in full; keys never.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// An append-only JSON-lines file shared by every call of the process.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    /// Opens (creating if needed) `path` for appending.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` with a `time` field (Unix seconds) added. A failed
    /// write is reported on stderr and does not stop the call.
    pub fn record(&self, mut line: Value) {
        if let Some(o) = line.as_object_mut() {
            o.insert(
                "time".into(),
                serde_json::json!(unix_seconds(SystemTime::now())),
            );
        }
        if let Ok(mut f) = self.file.lock()
            && let Err(e) = writeln!(f, "{line}").and_then(|()| f.flush())
        {
            eprintln!(
                "toka-host: cannot write the audit log {}: {e}",
                self.path.display()
            );
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
