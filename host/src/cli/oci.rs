//! `toka-host push`, `pull` and `signing keygen`, and the registry flags
//! every loader shares: tools as signed OCI artifacts (the component plus its
//! manifest YAML, one digest, one signature).

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use toka_oci::{OciError, Progress, Pulled, Reference, SigningKey, VerifyingKey};
use toka_runtime::remote::{Registry, RegistrySettings};
use toka_spec::exit;
use toka_spec::manifest::{self, ManifestError, ToolSpec};
use toka_spec::outcome::ErrorKind;

/// Where the private key's password comes from (cosign's variable).
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// Layers smaller than this arrive too fast for a progress bar to help.
const PROGRESS_MIN_BYTES: u64 = 4 << 20;

/// How registries are reached and which signatures are required (shared by
/// everything that may load a tool from a registry).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Registries")]
pub struct RegistryArgs {
    /// Require a valid signature by this public key (cosign.pub) on code
    /// pulled from a registry (repeatable: any one of them).
    #[arg(long = "verify-key", value_name = "FILE")]
    pub verify_key: Vec<PathBuf>,

    /// Require a valid signature by one of the public keys (*.pub) in DIR on
    /// code pulled from a registry.
    #[arg(long = "trusted-keys", value_name = "DIR")]
    pub trusted_keys: Option<PathBuf>,

    /// Reach this registry (HOST or HOST:PORT) over plain HTTP; loopback
    /// registries always may be (repeatable). Credentials, if any, then
    /// travel in the clear.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

impl RegistryArgs {
    /// The settings these flags describe, with the keys read.
    ///
    /// # Errors
    ///
    /// [`OciError::KeyFile`] naming the key file or directory that cannot be
    /// used.
    pub fn settings(&self) -> Result<RegistrySettings, OciError> {
        let mut keys = self
            .verify_key
            .iter()
            .map(|p| VerifyingKey::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(dir) = &self.trusted_keys {
            keys.extend(keys_in(dir)?);
        }
        Ok(RegistrySettings {
            insecure: self.insecure_registry.clone(),
            trusted_keys: keys,
        })
    }

    /// The registry access for an engine caching under `cache_root`.
    ///
    /// # Errors
    ///
    /// As [`RegistryArgs::settings`] and [`Registry::from_env`].
    pub fn registry(&self, cache_root: Option<&Path>) -> Result<Registry, OciError> {
        let s = self.settings()?;
        Registry::from_env(cache_root, &s.insecure, s.trusted_keys)
    }
}

/// Every `*.pub` in `dir`, in name order; a directory without one is an
/// error (a trust root that trusts nothing is a typo).
fn keys_in(dir: &Path) -> Result<Vec<VerifyingKey>, OciError> {
    let bad = |why: String| OciError::KeyFile {
        path: dir.to_path_buf(),
        reason: why,
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| bad(format!("--trusted-keys: {}", manifest::io_reason(&e))))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(bad(
            "--trusted-keys: no public key (*.pub) in this directory; copy cosign.pub files into it"
                .into(),
        ));
    }
    paths.iter().map(|p| VerifyingKey::load(p)).collect()
}

/// `toka-host push` flags.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The tool's manifest: its component is pushed with it.
    pub manifest: PathBuf,
    /// Where to: oci://HOST[:PORT]/REPO:TAG (without a tag, `latest`).
    pub reference: Reference,
    /// Sign the pushed artifact with this private key (cosign.key; its
    /// password in COSIGN_PASSWORD).
    #[arg(long = "sign-key", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Reach this registry over plain HTTP (loopback always may be).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

/// `toka-host pull` flags.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// oci://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST].
    pub reference: Reference,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub registry: RegistryArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub engine: super::EngineArgs,
}

/// `toka-host signing` subcommands.
#[derive(Debug, Subcommand)]
pub enum SigningCommand {
    /// Write a new cosign-compatible key pair (ECDSA P-256): DIR/cosign.key,
    /// encrypted with COSIGN_PASSWORD and readable by you only, and
    /// DIR/cosign.pub. Existing keys are never overwritten.
    Keygen(SigningKeygenArgs),
}

/// `signing keygen` flags.
#[derive(Debug, Args)]
pub struct SigningKeygenArgs {
    /// The directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Shown after `push --help` and `pull --help`.
pub const AFTER_HELP: &str = "\
End to end (a registry on loopback needs no --insecure-registry):
  COSIGN_PASSWORD=… toka-host signing keygen --out ./keys
  COSIGN_PASSWORD=… toka-host push manifests/hello.yaml oci://127.0.0.1:5000/tools/hello:1 --sign-key keys/cosign.key
  toka-host pull oci://127.0.0.1:5000/tools/hello:1 --verify-key keys/cosign.pub
  toka-host run oci://127.0.0.1:5000/tools/hello@sha256:… --verify-key keys/cosign.pub --param name=Ada
A local manifest may name the code instead of a file:
  spec.executable.path: oci://127.0.0.1:5000/tools/hello@sha256:…   (a digest, never a tag)
Credentials: TOKA_REGISTRY_USER and TOKA_REGISTRY_PASSWORD, else docker's config.json.";

fn password() -> Vec<u8> {
    std::env::var_os(PASSWORD_ENV)
        .map(|p| p.into_encoded_bytes())
        .unwrap_or_default()
}

fn fail(e: &dyn std::fmt::Display, kind: ErrorKind) -> u8 {
    eprintln!("error: {e}");
    kind.exit_code()
}

/// Runs `toka-host signing …`.
pub fn signing(cmd: SigningCommand) -> u8 {
    let SigningCommand::Keygen(args) = cmd;
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!(
            "error: --out {}: {}",
            args.out.display(),
            manifest::io_reason(&e)
        );
        return exit::INVALID;
    }
    let pw = password();
    match toka_oci::signing_keygen(&args.out, &pw) {
        Ok(k) => {
            if pw.is_empty() {
                eprintln!(
                    "warning: {PASSWORD_ENV} is not set: the private key has an empty password (it is readable by you only)"
                );
            }
            println!("private key: {}", k.private_key.display());
            println!("public key:  {}", k.public_key.display());
            exit::SUCCESS
        }
        Err(e) => fail(&e, e.kind()),
    }
}

/// Runs `toka-host push`.
pub async fn push(args: PushArgs) -> u8 {
    let spec = match manifest::load(&args.manifest) {
        Ok(s) => s,
        Err(e) => return fail(&e, ErrorKind::InvalidManifest),
    };
    if spec.executable.remote.is_some() || !spec.executable.kind.is_wasm() {
        eprintln!(
            "error: {}: spec.executable.path: only a wasm tool whose component is a local file can be pushed",
            args.manifest.display()
        );
        return exit::INVALID;
    }
    // The manifest as written, so the policy that travels is the one read.
    let yaml = match std::fs::read(&spec.manifest) {
        Ok(y) => y,
        Err(e) => {
            eprintln!(
                "error: {}: {}",
                spec.manifest.display(),
                manifest::io_reason(&e)
            );
            return exit::INVALID;
        }
    };
    let key = match &args.sign_key {
        None => None,
        Some(p) => match SigningKey::load(p, &password()) {
            Ok(k) => Some(k),
            Err(e) => return fail(&e, e.kind()),
        },
    };
    let cfg = match toka_oci::RegistryConfig::from_env() {
        Ok(c) => args
            .insecure_registry
            .iter()
            .fold(c, |c, h| c.insecure_registry(h)),
        Err(e) => return fail(&e, e.kind()),
    };
    match toka_oci::push(
        &args.reference,
        &yaml,
        &spec.executable.path,
        key.as_ref(),
        &cfg,
    )
    .await
    {
        Ok(pinned) => {
            if key.is_some() {
                eprintln!("signed {pinned}");
            }
            super::print_line(&pinned.to_string());
            exit::SUCCESS
        }
        Err(e) => fail(&e, e.kind()),
    }
}

/// Runs `toka-host pull`.
pub async fn pull(args: PullArgs) -> u8 {
    let options = args.engine.options(&super::LimitArgs::default());
    let registry = match args.registry.registry(options.cache_dir.as_deref()) {
        Ok(r) => r,
        Err(e) => return fail(&e, e.kind()),
    };
    match pull_tool(&registry, &args.reference).await {
        Ok((pulled, spec)) => {
            let how = if pulled.from_store {
                "already in the store"
            } else {
                "pulled"
            };
            let signed = pulled
                .signed_by
                .as_ref()
                .map(|k| format!(", signed by {}", k.display()))
                .unwrap_or_default();
            eprintln!("{how}: tool `{}`{signed}", spec.name);
            super::print_line(&pulled.reference.to_string());
            exit::SUCCESS
        }
        Err(e) => fail(&e, e.kind()),
    }
}

/// Why a pulled tool cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The pull failed.
    #[error(transparent)]
    Oci(#[from] OciError),
    /// The manifest that came with the code is invalid.
    #[error("{reference}: the manifest layer is invalid: {source}")]
    Manifest {
        /// The pinned reference.
        reference: String,
        /// What is wrong.
        source: ManifestError,
    },
}

impl PullError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PullError::Oci(e) => e.kind(),
            PullError::Manifest { .. } => ErrorKind::InvalidManifest,
        }
    }
}

/// Pulls `reference` (with a progress bar on a terminal for large layers)
/// and validates the manifest that came with it, as if it were local: its
/// relative sandbox paths are relative to the current directory.
///
/// # Errors
///
/// [`PullError`].
pub async fn pull_tool(
    registry: &Registry,
    reference: &Reference,
) -> Result<(Pulled, ToolSpec), PullError> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message(format!("pulling {reference}"));
        b
    });
    let report = |p: Progress| {
        if let Some(b) = &bar
            && p.layer == toka_oci::Layer::Wasm
            && p.total >= PROGRESS_MIN_BYTES
        {
            b.set_length(p.total);
            b.set_position(p.done);
        }
    };
    let pulled = registry.pull(reference, &report).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let pulled = pulled?;
    let spec = parsed(&pulled).map_err(|source| PullError::Manifest {
        reference: pulled.reference.to_string(),
        source,
    })?;
    Ok((pulled, spec))
}

fn parsed(pulled: &Pulled) -> Result<ToolSpec, ManifestError> {
    let text = manifest::read_capped(&pulled.manifest_yaml)?;
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    manifest::parse_with_code(&pulled.manifest_yaml, &text, &pulled.wasm, &base)
}
