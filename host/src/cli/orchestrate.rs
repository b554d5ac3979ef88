//! `toka-host orchestrate`: reads an agents file, checks every agent before
//! starting any, runs them all at once, shows their progress side by side and
//! ends with a summary table.

use super::{AuditArgs, DirArgs, SandboxArgs};
use clap::Args;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toka_runtime::agents::{AgentHost, AgentLimits, AgentRequest, AgentState, AgentStatus};
use toka_runtime::call::{Caller, Runtime};
use toka_runtime::catalog::{Catalog, DirCatalog};
use toka_spec::exit;
use toka_spec::manifest::LimitSettings;

/// Shown after `orchestrate --help`.
pub const AFTER_HELP: &str = "\
Agents file (YAML):
  limits: { timeout: 60s }          # optional, for every agent
  agents:
    - name: notes                   # optional; default: the workflow's name
      workflow: summarize-file      # a workflow in the manifests directory
      input: { path: notes.txt, date: 2026-11-26 }
      limits: { timeout: 20s, fuel: 2000000000, memory: 64MiB, output: 1MiB, llm_tokens: 4000 }
      replicas: 1                   # optional: run N copies (named notes-1 ... notes-N)

Exit codes: 0 every agent completed; 1 at least one failed or was cancelled (Ctrl-C
cancels them all); 125 the file or an agent in it is invalid (nothing ran).";

/// `toka-host orchestrate` flags.
#[derive(Debug, Args)]
pub struct OrchestrateArgs {
    /// The agents file (YAML).
    #[arg(value_name = "AGENTS_FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub dir: DirArgs,

    /// Print every event as a JSON line on stdout, then a summary line,
    /// instead of bars and a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub sandbox: SandboxArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub audit: AuditArgs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentsFile {
    #[serde(default)]
    limits: AgentLimits,
    agents: Vec<AgentEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentEntry {
    #[serde(default)]
    name: Option<String>,
    workflow: String,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    limits: AgentLimits,
    #[serde(default)]
    replicas: Option<u32>,
}

/// Most agents one file may start.
const MAX_AGENTS: usize = 10_000;

fn read_file(path: &Path) -> Result<Vec<AgentRequest>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {}", path.display(), toka_spec::manifest::io_reason(&e)))?;
    let file: AgentsFile =
        toka_spec::manifest::from_yaml(path, &text).map_err(|e| e.to_string())?;
    if file.agents.is_empty() {
        return Err(format!(
            "{}: agents: the list is empty; list at least one agent",
            path.display()
        ));
    }
    let mut requests = Vec::new();
    for (i, a) in file.agents.into_iter().enumerate() {
        let input = a.input.unwrap_or_else(|| json!({}));
        if !input.is_object() {
            return Err(format!(
                "{}: agents[{i}].input: must be a mapping (the workflow's JSON input object)",
                path.display()
            ));
        }
        let limits = LimitSettings::from(a.limits).or(file.limits.into());
        let replicas = a.replicas.unwrap_or(1);
        if replicas == 0 {
            return Err(format!(
                "{}: agents[{i}].replicas: must be at least 1",
                path.display()
            ));
        }
        let base = a.name.clone().unwrap_or_else(|| a.workflow.clone());
        for r in 1..=replicas {
            requests.push(AgentRequest {
                name: Some(if replicas == 1 {
                    base.clone()
                } else {
                    format!("{base}-{r}")
                }),
                workflow: a.workflow.clone(),
                input: input.clone(),
                limits,
                caller: Caller::Operator,
                scope: None,
            });
            if requests.len() > MAX_AGENTS {
                return Err(format!("{}: more than {MAX_AGENTS} agents", path.display()));
            }
        }
    }
    Ok(requests)
}

/// Runs `toka-host orchestrate`; returns the exit code.
pub async fn run(args: OrchestrateArgs) -> u8 {
    match orchestrate(&args).await {
        Ok(code) => code,
        Err(e) => {
            if args.json {
                super::print_line(&json!({ "event": "error", "message": e }).to_string());
            } else {
                eprintln!("error: {e}");
            }
            exit::INVALID
        }
    }
}

async fn orchestrate(args: &OrchestrateArgs) -> Result<u8, String> {
    let requests = read_file(&args.file)?;
    let audit = args.audit.open()?;
    let llm = super::llm_from_env(audit.clone()).map_err(|e| e.to_string())?;
    let engine = Arc::new(args.sandbox.engine()?);
    let shim = args.sandbox.shim.options()?;
    let tools = Arc::new(DirCatalog::new(engine.clone(), args.dir.manifests.clone()));
    // Every workflow loads before anything starts: a typo in agent 40 should
    // not leave 39 agents half done.
    let mut callables = Vec::new();
    let mut problems = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        match tools.get(&r.workflow).await {
            Ok(c) if c.is_workflow() => {
                callables.push(c);
            }
            Ok(_) => problems.push(format!(
                "agent {i} ({}): `{}` is not a workflow (spec.executable.type: workflow)",
                r.name.as_deref().unwrap_or(""),
                r.workflow
            )),
            Err(e) => problems.push(format!(
                "agent {i} ({}): {e}",
                r.name.as_deref().unwrap_or("")
            )),
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{}: {} agent(s) cannot start, so none was started:\n  {}",
            args.file.display(),
            problems.len(),
            problems.join("\n  ")
        ));
    }
    let runtime = Arc::new(Runtime {
        engine,
        catalog: tools,
        grants: args.sandbox.grants.grants(&args.sandbox.limits),
        shim,
        llm,
        audit,
    });
    let host = Arc::new(AgentHost::new(
        runtime,
        tokio::sync::broadcast::channel(65536).0,
    ));
    let mut events = host.subscribe();
    let width = requests
        .iter()
        .map(|r| r.name.as_deref().map_or(0, str::len))
        .max()
        .unwrap_or(0);
    let mut agents = Vec::new();
    for (callable, request) in callables.into_iter().zip(requests) {
        let label = request.name.clone().unwrap_or_default();
        match host.spawn_tool(callable, request).await {
            Ok(a) => agents.push(a),
            Err(e) => {
                for a in &agents {
                    let _ = host.cancel(&a.id()).await;
                }
                return Err(format!(
                    "agent `{label}` cannot start: {e}; the agents already started were cancelled"
                ));
            }
        }
    }
    let mut progress = super::progress::Progress::new(args.json, width);
    let statuses = tokio::select! {
        s = super::progress::follow(&mut events, &mut progress, &agents) => s,
        _ = tokio::signal::ctrl_c() => {
            for a in &agents {
                let _ = host.cancel(&a.id()).await;
            }
            super::progress::follow(&mut events, &mut progress, &agents).await
        }
    };
    summary(args.json, &statuses);
    let failed: Vec<&AgentStatus> = statuses
        .iter()
        .filter(|s| s.state != AgentState::Completed)
        .collect();
    Ok(if failed.is_empty() {
        exit::SUCCESS
    } else {
        exit::TOOL_ERROR
    })
}

fn summary(json: bool, statuses: &[AgentStatus]) {
    let completed = statuses
        .iter()
        .filter(|s| s.state == AgentState::Completed)
        .count();
    if json {
        let agents: Vec<Value> = statuses
            .iter()
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null))
            .collect();
        super::print_line(
            &json!({
                "event": "summary", "total": statuses.len(), "completed": completed,
                "failed": statuses.len() - completed, "agents": agents,
            })
            .to_string(),
        );
        return;
    }
    let name_w = statuses
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let wf_w = statuses
        .iter()
        .map(|s| s.workflow.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!(
        "{:<name_w$}  {:<wf_w$}  {:<9}  {:>8}  {:>13}  {:>7}  RESULT\n",
        "NAME", "WORKFLOW", "STATE", "TIME", "FUEL", "TOKENS"
    );
    for s in statuses {
        let state = match s.state {
            AgentState::Running => "running",
            AgentState::Completed => "completed",
            AgentState::Failed => "failed",
            AgentState::Cancelled => "cancelled",
            AgentState::Interrupted => "interrupted",
        };
        let result = match (&s.output, &s.error) {
            (Some(o), _) => o.to_string(),
            (_, Some(e)) => e["message"].as_str().unwrap_or("").to_string(),
            _ => String::new(),
        };
        let mut result: String = result.chars().take(60).collect();
        if result.len() >= 60 {
            result.push('…');
        }
        let (fuel, tokens) = s
            .usage
            .as_ref()
            .map_or((String::from("-"), String::from("-")), |u| {
                (u["fuel_consumed"].to_string(), u["llm_tokens"].to_string())
            });
        out.push_str(&format!(
            "{:<name_w$}  {:<wf_w$}  {state:<9}  {:>7.2}s  {fuel:>13}  {tokens:>7}  {result}\n",
            s.name,
            s.workflow,
            s.elapsed_ms / 1000.0,
        ));
    }
    out.push_str(&format!(
        "{} agents: {completed} completed, {} failed\n",
        statuses.len(),
        statuses.len() - completed
    ));
    print!("{out}");
}
