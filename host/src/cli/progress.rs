//! Live progress of agent runs for `run` and `orchestrate`: a bar per agent
//! on a terminal, plain lines on stderr otherwise, or every event as a JSON
//! line on stdout with `--json`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::collections::HashMap;
use std::io::IsTerminal;

/// How events are shown.
pub enum Progress {
    /// One JSON line per event on stdout.
    Json,
    /// Bars on the terminal (stderr).
    Bars {
        /// The bars' terminal.
        multi: MultiProgress,
        /// Agent id → its bar.
        bars: HashMap<String, ProgressBar>,
        /// Width of the name column.
        width: usize,
    },
    /// Lines on stderr.
    Lines {
        /// Agent id → its name.
        names: HashMap<String, String>,
    },
}

impl Progress {
    /// JSON lines when `json`, bars when stderr is a terminal, else lines.
    /// `width` is the widest agent name (to align the bars).
    pub fn new(json: bool, width: usize) -> Progress {
        if json {
            Progress::Json
        } else if std::io::stderr().is_terminal() {
            Progress::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: HashMap::new(),
                width,
            }
        } else {
            Progress::Lines {
                names: HashMap::new(),
            }
        }
    }

    /// Shows one agent event (see [`toka_runtime::agents`]).
    pub fn event(&mut self, e: &Value) {
        let kind = e["event"].as_str().unwrap_or("");
        let id = e["id"].as_str().unwrap_or("").to_string();
        match self {
            Progress::Json => super::print_line(&e.to_string()),
            Progress::Bars { multi, bars, width } => match kind {
                "spawned" => {
                    let bar = multi.add(ProgressBar::new(1000));
                    let template =
                        format!("{{prefix:<{width}}} [{{bar:30}}] {{percent:>3}}% {{msg}}");
                    if let Ok(style) = ProgressStyle::with_template(&template) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_prefix(e["name"].as_str().unwrap_or(&id).to_string());
                    bars.insert(id, bar);
                }
                "progress" => {
                    if let Some(bar) = bars.get(&id) {
                        let f = e["fraction"].as_f64().unwrap_or(0.0);
                        bar.set_position((f * 1000.0) as u64);
                        bar.set_message(e["message"].as_str().unwrap_or("").to_string());
                    }
                }
                "log" => {
                    let _ = multi.println(log_line(e));
                }
                "completed" | "failed" => {
                    if let Some(bar) = bars.get(&id) {
                        if kind == "completed" {
                            bar.set_position(1000);
                            bar.finish_with_message(format!("done in {}", seconds(e)));
                        } else {
                            bar.abandon_with_message(format!(
                                "{}: {}",
                                e["state"].as_str().unwrap_or("failed"),
                                error_message(e)
                            ));
                        }
                    }
                }
                _ => {}
            },
            Progress::Lines { names } => {
                let name = names
                    .entry(id)
                    .or_insert_with(|| e["name"].as_str().unwrap_or("agent").to_string())
                    .clone();
                match kind {
                    "spawned" => eprintln!("[{name}] started"),
                    "progress" => eprintln!(
                        "[{name}] {:>3.0}% {}",
                        e["fraction"].as_f64().unwrap_or(0.0) * 100.0,
                        e["message"].as_str().unwrap_or("")
                    ),
                    "log" => eprintln!("{}", log_line(e)),
                    "completed" => eprintln!("[{name}] completed in {}", seconds(e)),
                    "failed" => eprintln!(
                        "[{name}] {}: {}",
                        e["state"].as_str().unwrap_or("failed"),
                        error_message(e)
                    ),
                    _ => {}
                }
            }
        }
    }
}

fn log_line(e: &Value) -> String {
    format!(
        "[{}] {}: {}",
        e["tool"].as_str().unwrap_or(""),
        e["level"].as_str().unwrap_or("info"),
        e["message"].as_str().unwrap_or("")
    )
}

fn seconds(e: &Value) -> String {
    format!("{:.2}s", e["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0)
}

/// The message of a finished agent's error.
pub fn error_message(e: &Value) -> String {
    e["error"]["message"]
        .as_str()
        .unwrap_or("unknown error")
        .to_string()
}

/// Shows the events of `agents` until every one has finished; returns their
/// final statuses in the same order.
pub async fn follow(
    events: &mut tokio::sync::broadcast::Receiver<Value>,
    progress: &mut Progress,
    agents: &[std::sync::Arc<toka_runtime::agents::Agent>],
) -> Vec<toka_runtime::agents::AgentStatus> {
    use tokio::sync::broadcast::error::RecvError;
    let ids: std::collections::HashSet<String> = agents.iter().map(|a| a.id()).collect();
    let wait_all = || async {
        let mut statuses = Vec::with_capacity(agents.len());
        for a in agents {
            statuses.push(a.wait().await);
        }
        statuses
    };
    let all_done = wait_all();
    tokio::pin!(all_done);
    let statuses = loop {
        tokio::select! {
            statuses = &mut all_done => break statuses,
            e = events.recv() => match e {
                Ok(e) => {
                    if e["id"].as_str().is_some_and(|id| ids.contains(id)) {
                        progress.event(&e);
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break wait_all().await,
            },
        }
    };
    // The last events (completed, failed) may still be queued.
    while let Ok(e) = events.try_recv() {
        if e["id"].as_str().is_some_and(|id| ids.contains(id)) {
            progress.event(&e);
        }
    }
    statuses
}

/// The exit code for a finished agent's error (the `exit_code` the agent
/// host put there, as `run` would exit for the same error).
pub fn exit_code(error: &Value) -> u8 {
    error["exit_code"]
        .as_u64()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(toka_spec::exit::INVALID)
}

/// A spinner with the elapsed time on a terminal while a load compiles
/// (seconds for a Python or JavaScript interpreter, once per content); off
/// a terminal nothing is shown, so scripted output stays as it was.
pub struct CompileSpinner;

impl CompileSpinner {
    /// The watch for an engine: `None` unless stderr is a terminal.
    pub fn for_stderr() -> Option<std::sync::Arc<dyn toka_runtime::engine::CompileWatch>> {
        std::io::stderr()
            .is_terminal()
            .then(|| std::sync::Arc::new(CompileSpinner) as _)
    }
}

impl toka_runtime::engine::CompileWatch for CompileSpinner {
    fn compiling(&self, wasm_bytes: usize) -> Box<dyn Send> {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        let mib = wasm_bytes as f64 / f64::from(1 << 20);
        bar.set_message(format!(
            "compiling {mib:.1} MiB of WebAssembly (once; later runs load it from the cache)"
        ));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Box::new(Clear(bar))
    }
}

/// Clears the spinner's line when the compile ends.
struct Clear(ProgressBar);

impl Drop for Clear {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
