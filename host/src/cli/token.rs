//! `toka-host token …`: capability tokens for `serve --auth-keys`: make a
//! key pair, issue a token, narrow one offline, read one, revoke one.
//!
//! A TOKEN argument may be the token itself, `@FILE`, or `-` for stdin, so
//! that tokens need not appear in process listings or shell histories.

use clap::{Args, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use toka_auth::{Attenuation, IssueRequest};
use toka_spec::exit;
use toka_spec::manifest::Capability;
use toka_spec::units::HumanDuration;

/// Shown after `token --help`.
pub const AFTER_HELP: &str = "\
End to end:
  toka-host token keygen --keys ./keys
  toka-host token issue --keys ./keys --tool hello --tool file-reader --grant filesystem-read --ttl 8h --subject ci > ci.token
  touch ./revoked                                                              # revocations start empty
  toka-host serve --auth-keys ./keys --revocations ./revoked
  curl -H \"Authorization: Bearer $(cat ci.token)\" http://127.0.0.1:8080/v1/tools
  toka-host token attenuate @ci.token --tool hello --ttl 10m > hello.token     # no keys needed
  toka-host token inspect @hello.token
  toka-host token revoke @ci.token --revocations ./revoked                     # and every token made from it";

/// `toka-host token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a key pair in DIR (the private key readable by you only). With
    /// several keys in DIR, new tokens are signed by the newest and older
    /// tokens stay valid until their key's files are removed (rotation).
    Keygen(KeygenArgs),

    /// Issue a token for the tools (and capabilities) it may use; prints it.
    Issue(IssueArgs),

    /// Narrow a token, offline, without keys: fewer tools, fewer
    /// capabilities, an earlier expiry. It can never grant more.
    Attenuate(AttenuateArgs),

    /// Show what a token says (subject, tools, grants, expiry, key id,
    /// revocation ids) as JSON. Reads it without keys: this says what the
    /// token claims, not that it is valid.
    Inspect(InspectArgs),

    /// Revoke a token and everything attenuated from it: appends its
    /// revocation id to FILE, which `serve --revocations FILE` re-reads.
    Revoke(RevokeArgs),
}

/// `token keygen` flags.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
}

/// `token issue` flags.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The key directory; the newest key signs.
    #[arg(long, value_name = "DIR")]
    pub keys: PathBuf,
    /// A tool the token may call (repeatable); `*` for every tool, as the
    /// operator endpoints (/status, /metrics, /v1/events) require.
    #[arg(long = "tool", value_name = "NAME", required = true)]
    pub tools: Vec<String>,
    /// A capability tools called with it may use (repeatable); none by
    /// default.
    #[arg(long = "grant", value_name = "CAPABILITY")]
    pub grants: Vec<Capability>,
    /// How long it is valid.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub ttl: HumanDuration,
    /// Who it is for (in the audit log).
    #[arg(long, value_name = "NAME", default_value = "operator")]
    pub subject: String,
    /// The audience: the servers that accept it (`serve --auth-audience`).
    #[arg(long, value_name = "NAME", default_value = toka_auth::DEFAULT_AUDIENCE)]
    pub audience: String,
}

/// `token attenuate` flags.
#[derive(Debug, Args)]
pub struct AttenuateArgs {
    /// The token (or @FILE, or - for stdin).
    pub token: String,
    /// Keep only these tools (repeatable).
    #[arg(long = "tool", value_name = "NAME")]
    pub tools: Vec<String>,
    /// Keep only these capabilities (repeatable).
    #[arg(long = "grant", value_name = "CAPABILITY")]
    pub grants: Vec<Capability>,
    /// Expire sooner: within DURATION from now.
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<HumanDuration>,
}

/// `token inspect` flags.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The token (or @FILE, or - for stdin).
    pub token: String,
}

/// `token revoke` flags.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token (or @FILE, or - for stdin).
    pub token: String,
    /// The revocation file (created if missing).
    #[arg(long, value_name = "FILE")]
    pub revocations: PathBuf,
}

/// The most bytes a TOKEN argument reads from a file or stdin.
const MAX_TOKEN_INPUT: u64 = 64 << 10;

/// The token a TOKEN argument names.
fn read_token(arg: &str) -> Result<String, String> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_TOKEN_INPUT)
            .read_to_string(&mut s)
            .map_err(|e| format!("TOKEN -: cannot read stdin: {e}"))?;
        s
    } else if let Some(file) = arg.strip_prefix('@') {
        let bytes = toka_runtime::catalog::read_capped(std::path::Path::new(file), MAX_TOKEN_INPUT)
            .map_err(|e| format!("TOKEN @{file}: {}", toka_spec::manifest::io_reason(&e)))?
            .ok_or_else(|| format!("TOKEN @{file}: larger than a token can be"))?;
        String::from_utf8(bytes).map_err(|_| format!("TOKEN @{file}: not text"))?
    } else {
        arg.to_string()
    };
    Ok(text.trim().to_string())
}

/// Runs a `token` subcommand; returns the exit code.
pub fn run(cmd: TokenCommand) -> u8 {
    let result = match cmd {
        TokenCommand::Keygen(a) => toka_auth::keygen(&a.keys)
            .map(|k| {
                format!(
                    "created key {} in {}: {} (private, mode 0600) and {} (public: what a server needs)",
                    k.id,
                    a.keys.display(),
                    k.private_key.display(),
                    k.public_key.display()
                )
            })
            .map_err(|e| (e.kind(), e.to_string())),
        TokenCommand::Issue(a) => {
            let request = IssueRequest {
                tools: a.tools,
                capabilities: a.grants,
                ttl: Some(a.ttl.0),
                subject: a.subject,
                audience: a.audience,
            };
            toka_auth::issue(&a.keys, &request).map_err(|e| (e.kind(), e.to_string()))
        }
        TokenCommand::Attenuate(a) => read_token(&a.token)
            .map_err(|e| (toka_spec::outcome::ErrorKind::InvalidInput, e))
            .and_then(|token| {
                let narrow = Attenuation {
                    tools: a.tools,
                    capabilities: (!a.grants.is_empty()).then_some(a.grants),
                    ttl: a.ttl.map(|t| t.0),
                };
                toka_auth::attenuate(&token, &narrow).map_err(|e| (e.kind(), e.to_string()))
            }),
        TokenCommand::Inspect(a) => read_token(&a.token)
            .map_err(|e| (toka_spec::outcome::ErrorKind::InvalidInput, e))
            .and_then(|token| {
                toka_auth::inspect(&token)
                    .map_err(|e| (e.kind(), e.to_string()))
                    .and_then(|info| {
                        serde_json::to_string_pretty(&info).map_err(|e| {
                            (toka_spec::outcome::ErrorKind::Host, e.to_string())
                        })
                    })
            }),
        TokenCommand::Revoke(a) => read_token(&a.token)
            .map_err(|e| (toka_spec::outcome::ErrorKind::InvalidInput, e))
            .and_then(|token| {
                toka_auth::revoke(&token, &a.revocations)
                    .map(|ids| {
                        format!(
                            "revoked (and every token attenuated from it): {} in {}",
                            ids.join(", "),
                            a.revocations.display()
                        )
                    })
                    .map_err(|e| (e.kind(), e.to_string()))
            }),
    };
    match result {
        Ok(out) => {
            super::print_line(&out);
            exit::SUCCESS
        }
        Err((kind, message)) => {
            eprintln!("error: {message}");
            kind.exit_code()
        }
    }
}
