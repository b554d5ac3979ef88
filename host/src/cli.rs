//! The `toka-host` command line: flags, grouped by concern into flattened
//! structs of `Option`s, each mapped onto the library's types by one function.

pub mod exec;
pub mod mcp;
pub mod new;
pub mod oci;
pub mod orchestrate;
pub mod progress;
pub mod run;
pub mod serve;
pub mod token;
pub mod tools;

pub use run::RunArgs;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use toka_runtime::audit::AuditLog;
use toka_runtime::engine::{DEFAULT_MAX_WASM_STACK, EngineOptions, TokaEngine};
use toka_runtime::llm::{LlmClient, LlmConfig, LlmConfigError};
use toka_runtime::shim::{Interpreters, ShimOptions};
use toka_spec::manifest::{Capability, DirMapping, HostPattern, LimitSettings};
use toka_spec::policy::{DEFAULT_LIMITS, DirGrant, EnvGrant, Grants, Reach};
use toka_spec::units::{ByteSize, HumanDuration};

/// `toka-host`: runs agent tools as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(
    name = "toka-host",
    version,
    about = "Runs agent tools as WebAssembly components in capability-scoped, resource-limited sandboxes",
    long_about = None,
    after_help = toka_spec::exit::TABLE,
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one tool, command or WASI program once, in a sandbox.
    ///
    /// PLUGIN is a tool name from the manifests directory, a path to a
    /// manifest (.yaml), or a path to a .wasm (or .wat) file: a
    /// toka:plugin/tool component, a wasi:cli/command component or a WASI
    /// preview1 module. Nothing is granted unless a manifest asks for it and
    /// a flag grants it: no files, no environment, no network.
    #[command(after_help = run_after_help())]
    Run(Box<RunArgs>),

    /// Serve the tools of a manifests directory over HTTP (loopback by
    /// default), reloading them live when their files change.
    ///
    /// Endpoints: GET /health, GET /ready, GET /status, GET /v1/tools,
    /// POST /v1/tools/{name}/invoke (JSON input in, JSON result out),
    /// POST /v1/agents (start a workflow), GET /v1/agents,
    /// GET|DELETE /v1/agents/{id}, GET /v1/events (server-sent events),
    /// GET /metrics, POST|GET|DELETE /mcp (MCP streamable HTTP),
    /// GET /.well-known/oauth-protected-resource[/mcp].
    #[command(after_help = toka_runtime::llm::ENV_HELP)]
    Serve(Box<serve::ServeArgs>),

    /// Run the agents an agents file lists, all at once, with live progress
    /// and a summary table at the end.
    ///
    /// Each agent is a workflow run with its own input, sandbox and budget.
    /// Exits 0 when every agent completed, 1 when any failed.
    #[command(after_help = format!("{}\n\n{}", orchestrate::AFTER_HELP, toka_runtime::llm::ENV_HELP))]
    Orchestrate(Box<orchestrate::OrchestrateArgs>),

    /// Run code in a language interpreter compiled to WebAssembly, in the
    /// same sandbox and under the same limits and grants as any tool.
    ///
    /// No host process is started and nothing is granted unless a flag
    /// grants it: no files, no environment, no network.
    #[command(after_help = exec::AFTER_HELP)]
    Exec(Box<exec::ExecArgs>),

    /// Work with the tools of a manifests directory: list, show, validate,
    /// call, vet.
    #[command(subcommand)]
    Tools(tools::ToolsCommand),

    /// Serve the tools of a manifests directory to an MCP client on
    /// stdin/stdout (Model Context Protocol, both the 2026-07-28 and the
    /// 2025-11-25 revisions), reloading them live.
    ///
    /// Takes serve's grants, limits and subprocess flags; runs as the
    /// operator (no token). Logs go to stderr.
    #[command(after_help = mcp::AFTER_HELP)]
    Mcp(Box<mcp::McpArgs>),

    /// Capability tokens for `serve --auth-keys`: keygen, issue, attenuate,
    /// inspect, revoke.
    #[command(subcommand, after_help = token::AFTER_HELP)]
    Token(token::TokenCommand),

    /// Push a tool (its component and its manifest, one artifact, one
    /// digest) to an OCI registry, optionally signed; prints the pinned
    /// reference oci://HOST/REPO@sha256:….
    #[command(after_help = oci::AFTER_HELP)]
    Push(Box<oci::PushArgs>),

    /// Pull a tool from an OCI registry into the local content store,
    /// checking every digest (and, with --verify-key, its signature);
    /// prints the pinned reference. `run oci://…` pulls too.
    #[command(after_help = oci::AFTER_HELP)]
    Pull(Box<oci::PullArgs>),

    /// Signing keys for `push --sign-key` and `--verify-key`
    /// (cosign-compatible).
    #[command(subcommand)]
    Signing(oci::SigningCommand),

    /// Create a plugin folder that builds and runs: source, manifest, WIT,
    /// build script and a test input.
    #[command(after_help = new::AFTER_HELP)]
    New(new::NewArgs),

    /// Print a shell completion script, generated from these flags:
    /// `toka-host completions bash > /etc/bash_completion.d/toka-host`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print the manual page (roff), generated from these flags:
    /// `toka-host man | man -l -`.
    Man,
}

/// Prints the completions for `shell` or the man page; returns the exit
/// code.
pub fn generated(command: &Command) -> u8 {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cmd, "toka-host", &mut std::io::stdout());
            toka_spec::exit::SUCCESS
        }
        _ => match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
            Ok(()) => toka_spec::exit::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write the manual page: {e}");
                toka_spec::exit::INVALID
            }
        },
    }
}

fn run_after_help() -> String {
    format!(
        "Examples:\n  \
           toka-host run hello --param name=Ada\n  \
           toka-host run file-reader --grant filesystem-read --param path=notes.txt\n  \
           toka-host run prog.wasm --dir ./work::/work --env LANG -- arg1 arg2\n\n\
         Default limits (when neither manifest nor flags set them): {}, wasm stack {}.\n\n\
         A workflow (spec.executable.type: workflow) shows its progress while it runs (a bar on \
         a terminal, JSON lines with --json) and may call the tools its manifest lists \
         (--grant tool-call) and the language model (--grant llm).\n\n{}\n\n{}",
        DEFAULT_LIMITS.describe(),
        ByteSize(DEFAULT_MAX_WASM_STACK as u64),
        toka_runtime::llm::ENV_HELP,
        toka_spec::exit::TABLE
    )
}

/// What the operator grants the call.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Grants (nothing is granted by default)")]
pub struct GrantArgs {
    /// Grant a capability the manifest asks for: filesystem-read,
    /// filesystem-write, network-access, process-execution, tool-call, llm.
    /// Bare, filesystem-read/-write reach only directories inside the
    /// manifest's own directory and network-access the hosts the manifest
    /// lists; `filesystem-read=PATH`, `filesystem-write=PATH` and
    /// `network-access=HOST:PORT` approve that tree or pattern instead
    /// (repeatable).
    #[arg(long = "grant", value_name = "CAPABILITY[=SCOPE]", value_parser = parse_grant)]
    pub grant: Vec<GrantArg>,

    /// Give the guest a host directory, read-write, at GUEST (default: the
    /// same path).
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dir: Vec<DirMapping>,

    /// Give the guest a host directory, read-only: no create, write,
    /// truncate, rename or link.
    #[arg(long = "ro-dir", value_name = "HOST[::GUEST]")]
    pub ro_dir: Vec<DirMapping>,

    /// Pass an environment variable: NAME takes the host's value, NAME=VALUE
    /// sets one.
    #[arg(long = "env", value_name = "NAME[=VALUE]", value_parser = parse_env)]
    pub env: Vec<EnvGrant>,

    /// Allow connections to HOST:PORT (an IP, [IPv6], DNS name or *; a port
    /// or *). DNS names also allow name lookups.
    #[arg(long = "allow-net", value_name = "HOST:PORT")]
    pub allow_net: Vec<HostPattern>,
}

/// Limits that override the manifest's.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Limits (override the manifest)")]
pub struct LimitArgs {
    /// Fuel: about one unit per wasm instruction.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Linear memory, all memories together (e.g. 64MiB).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<ByteSize>,

    /// Wall-clock time of the call (e.g. 500ms, 5s, 2m).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<HumanDuration>,

    /// Bytes the call may write: stdout, stderr, logs and result together.
    #[arg(long = "max-output", value_name = "SIZE")]
    pub max_output: Option<ByteSize>,

    /// Language-model tokens (input plus output) a workflow run may spend,
    /// nested workflows included [default: 100000].
    #[arg(long = "llm-tokens", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub llm_tokens: Option<u64>,

    /// Wasm stack per call (e.g. 512KiB).
    #[arg(long = "max-wasm-stack", value_name = "SIZE")]
    pub max_wasm_stack: Option<ByteSize>,
}

/// Where the tool manifests are (shared by `run`, `serve` and `tools`).
#[derive(Debug, Args)]
pub struct DirArgs {
    /// Directory of tool manifests (tools given by name are looked up
    /// there; `serve` watches it).
    #[arg(
        long,
        value_name = "DIR",
        env = "TOKA_MANIFESTS",
        default_value = "manifests"
    )]
    pub manifests: PathBuf,
}

/// How subprocess (shell, Python, external) tools run.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Subprocess tools")]
pub struct ShimArgs {
    /// Run shell, Python and external tools even where Landlock, the pids
    /// cgroup or a network namespace is unavailable (says so loudly).
    #[arg(long = "allow-weaker-sandbox")]
    pub allow_weaker_sandbox: bool,

    /// Allow an interpreter for shell/Python tools: NAME=/absolute/path
    /// (repeatable; bash, sh and python3 are found in /usr/bin, /bin,
    /// /usr/local/bin by default, never through PATH).
    #[arg(long = "interpreter", value_name = "NAME=PATH")]
    pub interpreter: Vec<String>,
}

impl ShimArgs {
    /// The shim options these flags describe.
    ///
    /// # Errors
    ///
    /// A message naming the bad `--interpreter`.
    pub fn options(&self) -> Result<ShimOptions, String> {
        let mut interpreters = Interpreters::system();
        for i in &self.interpreter {
            let (name, path) = i
                .split_once('=')
                .ok_or_else(|| format!("--interpreter {i}: write NAME=/absolute/path"))?;
            interpreters = interpreters.with(name, std::path::Path::new(path))?;
        }
        Ok(ShimOptions {
            interpreters,
            allow_weaker_sandbox: self.allow_weaker_sandbox,
            ..ShimOptions::default()
        })
    }
}

/// Everything that decides what a call may touch and spend, and how its
/// code is compiled: shared by `run`, `tools call` and `serve`.
#[derive(Debug, Clone, Default, Args)]
pub struct SandboxArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub grants: GrantArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub limits: LimitArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub shim: ShimArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub engine: EngineArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub registry: oci::RegistryArgs,
}

impl SandboxArgs {
    /// The engine these flags describe, ready to pull code from registries.
    ///
    /// # Errors
    ///
    /// A message naming the engine fault or the key file that cannot be
    /// used.
    pub fn engine(&self) -> Result<TokaEngine, String> {
        let registry = self.registry.settings().map_err(|e| e.to_string())?;
        let engine = TokaEngine::new(&self.engine.options(&self.limits))
            .map(|e| e.with_registry(registry))
            .map_err(|e| e.to_string())?;
        Ok(match progress::CompileSpinner::for_stderr() {
            Some(watch) => engine.with_compile_watch(watch),
            None => engine,
        })
    }
}

/// Engine and cache settings.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Compilation")]
pub struct EngineArgs {
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/toka or
    /// ~/.cache/toka].
    #[arg(long = "cache-dir", value_name = "DIR", env = "TOKA_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile every time; read and write no cache.
    #[arg(long = "no-cache", conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

/// Settings of workflow runs: the audit log (the language model itself is
/// configured from the environment, see `--help`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Audit")]
pub struct AuditArgs {
    /// Append a JSON line to FILE for every tool call, LLM request and
    /// response (never the provider's key) and agent run.
    #[arg(long = "audit-log", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

impl AuditArgs {
    /// The audit log, opened.
    ///
    /// # Errors
    ///
    /// A message naming the file.
    pub fn open(&self) -> Result<Option<Arc<AuditLog>>, String> {
        self.audit_log
            .as_ref()
            .map(|p| {
                AuditLog::open(p)
                    .map(Arc::new)
                    .map_err(|e| format!("--audit-log {}: {e}", p.display()))
            })
            .transpose()
    }
}

/// The language-model client configured by the environment, if any.
///
/// # Errors
///
/// A message naming the variable that is wrong.
pub fn llm_from_env(
    audit: Option<Arc<AuditLog>>,
) -> Result<Option<Arc<LlmClient>>, LlmConfigError> {
    match LlmConfig::from_env(|k| std::env::var(k).ok())? {
        None => Ok(None),
        Some(c) => Ok(Some(Arc::new(LlmClient::new(c, audit)?))),
    }
}

/// Prints a line on stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// One `--grant`: a capability and how far it reaches.
#[derive(Debug, Clone)]
pub struct GrantArg {
    /// The capability.
    pub capability: Capability,
    /// Its reach.
    pub reach: Reach,
}

fn parse_grant(s: &str) -> Result<GrantArg, String> {
    let (word, scope) = match s.split_once('=') {
        Some((w, scope)) => (w, Some(scope)),
        None => (s, None),
    };
    let capability: Capability = word.parse()?;
    let reach = match (capability, scope) {
        (_, None) => Reach::Manifest,
        (Capability::FilesystemRead | Capability::FilesystemWrite, Some(path)) => {
            let canonical = std::path::Path::new(path).canonicalize().map_err(|e| {
                format!(
                    "{capability}={path}: {}; approve an existing directory",
                    toka_spec::manifest::io_reason(&e)
                )
            })?;
            if !canonical.is_dir() {
                return Err(format!(
                    "{capability}={path}: not a directory; approve a directory tree"
                ));
            }
            Reach::Tree(canonical)
        }
        (Capability::NetworkAccess, Some(pattern)) => Reach::Host(
            pattern
                .parse()
                .map_err(|e: String| format!("{capability}={pattern}: {e}"))?,
        ),
        (other, Some(_)) => {
            return Err(format!(
                "`{other}` takes no scope: write --grant {other} (only filesystem-read=PATH, filesystem-write=PATH and network-access=HOST:PORT are scoped)"
            ));
        }
    };
    Ok(GrantArg { capability, reach })
}

fn parse_env(s: &str) -> Result<EnvGrant, String> {
    let valid = |k: &str| {
        !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let (name, grant) = match s.split_once('=') {
        Some((k, v)) => (k, EnvGrant::Set(k.to_string(), v.to_string())),
        None => (s, EnvGrant::Inherit(s.to_string())),
    };
    if valid(name) {
        Ok(grant)
    } else {
        Err(format!(
            "`{name}` is not an environment variable name (letters, digits and '_')"
        ))
    }
}

impl GrantArgs {
    /// The grants these flags make, with `limits`.
    pub fn grants(&self, limits: &LimitArgs) -> Grants {
        let dirs = self
            .dir
            .iter()
            .map(|m| DirGrant {
                mapping: m.clone(),
                writable: true,
            })
            .chain(self.ro_dir.iter().map(|m| DirGrant {
                mapping: m.clone(),
                writable: false,
            }))
            .collect();
        Grants {
            capabilities: self.grant.iter().map(|g| g.capability).collect(),
            reach: self
                .grant
                .iter()
                .map(|g| (g.capability, g.reach.clone()))
                .collect(),
            ceiling: None,
            dirs,
            env: self.env.clone(),
            net: self.allow_net.clone(),
            limits: limits.settings(),
            within: None,
        }
    }
}

impl LimitArgs {
    /// The limits these flags set.
    pub fn settings(&self) -> LimitSettings {
        LimitSettings {
            fuel: self.fuel,
            memory: self.memory,
            timeout: self.timeout,
            output: self.max_output,
            cpu: None,
            llm_tokens: self.llm_tokens,
        }
    }
}

impl EngineArgs {
    /// Engine options from these flags and `limits`' stack size.
    pub fn options(&self, limits: &LimitArgs) -> EngineOptions {
        let defaults = EngineOptions::default();
        EngineOptions {
            max_wasm_stack: limits.max_wasm_stack.map_or(DEFAULT_MAX_WASM_STACK, |s| {
                usize::try_from(s.0).unwrap_or(usize::MAX)
            }),
            cache_dir: if self.no_cache {
                None
            } else {
                self.cache_dir.clone().or(defaults.cache_dir)
            },
            pooling: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every subcommand's flags are consistent (clap checks them only when
    /// that subcommand is parsed).
    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn addr_takes_a_port_or_localhost() {
        let a = serve::parse_addr;
        assert_eq!(a("8080").ok(), "127.0.0.1:8080".parse().ok());
        assert_eq!(a("localhost:9000").ok(), "127.0.0.1:9000".parse().ok());
        assert_eq!(a("0.0.0.0:80").ok(), "0.0.0.0:80".parse().ok());
        assert_eq!(a("[::1]:80").ok(), "[::1]:80".parse().ok());
        assert!(a("example.com:80").is_err_and(|e| e.contains("not resolved")));
        assert!(a("localhost:http").is_err());
    }
}
