//! The catalog: declared tools ([`ToolSpec`]) turned into loaded ones
//! ([`Tool`]), and where callers find them by name ([`Catalog`]).
//!
//! Loading is one function ([`load`]): the executable is read once, capped,
//! and checked against its pin on exactly the bytes that will be compiled or
//! run ([`read_executable`]); wasm is compiled through the cache and linked
//! (a warm start takes the wasm's digest, checked against the pin, from the
//! cache's authenticated record of the unchanged file, and reads no wasm:
//! [`load_wasm`]); a script's vetted bytes are kept, so what runs is what
//! was checked. Two
//! catalogs share it: a directory loaded on demand ([`DirCatalog`], for
//! `run` and `orchestrate`) and the live, hot-swapped table of `serve`
//! ([`LiveCatalog`]).

mod live;

pub use live::{Change, LiveCatalog, ToolTable};

use crate::engine::{self, CacheStatus, TokaEngine};
use crate::invoke::{Wasm, WasmKind};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use toka_spec::directory::{self, FindError};
use toka_spec::manifest::{
    self, MAX_EXECUTABLE_BYTES, ManifestError, PinMismatch, Schema, Sha256Hex, ToolSpec, io_reason,
};
use toka_spec::outcome::{CallError, ErrorKind, ToolRef};

/// A loaded tool: what its manifest declares (none for a bare `.wasm`) and
/// the code that runs.
pub struct Tool {
    /// The tool's name (or the file name of a bare `.wasm`).
    pub name: String,
    /// The manifest, if the tool has one.
    pub spec: Option<ToolSpec>,
    /// What runs.
    pub code: Code,
    /// SHA-256 of the wasm or script that runs.
    pub digest: Sha256Hex,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// A bare `.wasm`'s input schema, from its own `describe` (see
    /// [`crate::call::Runtime::describe`]); manifests have theirs.
    pub described: Option<Schema>,
}

/// The code of a loaded tool.
pub enum Code {
    /// Compiled and linked WebAssembly.
    Wasm(Wasm),
    /// A shell, Python or external program's vetted bytes, run by the shim
    /// from a private copy.
    Script(Script),
}

/// The vetted bytes of a subprocess tool.
pub struct Script {
    /// The bytes whose digest matched the pin.
    pub bytes: Arc<[u8]>,
    /// The file's name (the private copy keeps it, for messages and `$0`).
    pub file_name: OsString,
}

/// What kind of tool a loaded tool is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolKind {
    /// WebAssembly of one of the worlds the host runs.
    Wasm(WasmKind),
    /// A subprocess tool (shell, Python, external).
    Process,
}

impl Tool {
    /// What kind of tool this is.
    pub fn kind(&self) -> ToolKind {
        match &self.code {
            Code::Wasm(w) => ToolKind::Wasm(w.kind),
            Code::Script(_) => ToolKind::Process,
        }
    }

    /// True for a workflow.
    pub fn is_workflow(&self) -> bool {
        self.kind() == ToolKind::Wasm(WasmKind::Workflow)
    }

    /// True when the tool takes JSON input (a tool, a workflow or a
    /// subprocess tool; not a command).
    pub fn takes_json(&self) -> bool {
        match self.kind() {
            ToolKind::Wasm(k) => k.takes_json(),
            ToolKind::Process => true,
        }
    }

    /// The name, version and digest, for outcomes.
    pub fn tool_ref(&self) -> ToolRef {
        ToolRef {
            name: self.name.clone(),
            version: self.spec.as_ref().map(|s| s.version.clone()),
            digest: Some(self.digest.clone()),
        }
    }

    /// The input JSON Schema: the manifest's, a bare `.wasm`'s own from
    /// `describe` when it was asked, else `{"type": "object"}`.
    pub fn parameters(&self) -> &Schema {
        static ANY_OBJECT: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        match (&self.spec, &self.described) {
            (Some(s), _) => &s.parameters,
            (None, Some(d)) => d,
            (None, None) => ANY_OBJECT.get_or_init(|| {
                Schema::compile(serde_json::json!({ "type": "object" }))
                    .expect("the constant schema {\"type\": \"object\"} compiles")
            }),
        }
    }

    /// Where the code came from and how long loading took, for wasm.
    pub fn compile_info(&self) -> Option<(&CacheStatus, Duration)> {
        match &self.code {
            Code::Wasm(w) => Some((&w.loaded.cache, w.loaded.load_time)),
            Code::Script(_) => None,
        }
    }
}

/// Why a tool could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No tool of that name, or the directory is unreadable.
    #[error(transparent)]
    Find(#[from] FindError),
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The executable could not be read.
    #[error("cannot read {}: {}", path.display(), io_reason(source))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The executable is larger than the host accepts.
    #[error("{}: larger than {limit} bytes; refusing to compile it", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not the ones the manifest pins.
    #[error("{}: spec.executable.sha256: {mismatch}", mismatch.manifest.display())]
    Pin {
        /// Both digests and the fix.
        #[source]
        mismatch: PinMismatch,
    },
    /// The bytes are not (valid) WebAssembly.
    #[error("{}: {source}", path.display())]
    Wasm {
        /// The file.
        path: PathBuf,
        /// Why.
        source: engine::LoadError,
    },
    /// The wasm is of the wrong world or needs imports the host lacks.
    #[error("{}: {source}", file.display())]
    Link {
        /// The manifest or wasm file.
        file: PathBuf,
        /// What is wrong.
        source: Box<CallError>,
    },
    /// The manifest asks for directories or hosts beyond what the
    /// operator's grants reach.
    #[error("{}: {source}", file.display())]
    Policy {
        /// The manifest.
        file: PathBuf,
        /// What it asks for and the grant that would allow it.
        source: Box<toka_spec::policy::PolicyError>,
    },
    /// The manifest's code could not be pulled from its registry.
    #[error("{}: spec.executable.path: {source}", file.display())]
    Remote {
        /// The manifest.
        file: PathBuf,
        /// What went wrong with the registry or the artifact.
        source: Box<toka_oci::OciError>,
    },
    /// A command where only callable tools are served.
    #[error("{}: `{tool}` is {what}; only tools and workflows take JSON input and can be called", file.display())]
    NotCallable {
        /// The manifest.
        file: PathBuf,
        /// The tool.
        tool: String,
        /// What it is.
        what: &'static str,
    },
}

impl LoadError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LoadError::Find(FindError::NotFound { .. }) => ErrorKind::NotFound,
            LoadError::Find(_) | LoadError::Manifest(_) => ErrorKind::InvalidManifest,
            LoadError::Read { .. } => ErrorKind::InvalidInput,
            LoadError::TooLarge { .. } | LoadError::Wasm { .. } => ErrorKind::InvalidWasm,
            LoadError::Pin { .. } => ErrorKind::HashMismatch,
            LoadError::Link { .. } => ErrorKind::Link,
            LoadError::Policy { source, .. } => source.kind(),
            LoadError::NotCallable { .. } => ErrorKind::WrongKind,
            LoadError::Remote { source, .. } => source.kind(),
        }
    }

    /// The failure as the error of a call of tool `tool` (a workflow's
    /// callee that cannot be loaded fails the same way under every door).
    pub fn to_call_error(&self, tool: &str) -> CallError {
        match self {
            LoadError::Find(FindError::NotFound { name, dir, known }) => CallError::NotFound {
                tool: name.clone(),
                detail: format!(
                    "{} holds {}",
                    dir.display(),
                    if known.is_empty() {
                        "no valid manifest".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            },
            other => CallError::Unloadable {
                tool: tool.to_string(),
                kind: other.kind(),
                message: other.to_string(),
            },
        }
    }
}

/// Reads at most `limit` bytes of `path`: `Ok(None)` when the file is
/// larger (so a huge or endless file is never read whole).
///
/// # Errors
///
/// When the file cannot be opened or read.
pub fn read_capped(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// Reads a file that will be compiled or run, capped at
/// [`MAX_EXECUTABLE_BYTES`], and its digest.
///
/// # Errors
///
/// [`LoadError::Read`] or [`LoadError::TooLarge`].
pub fn read_wasm(path: &Path) -> Result<(Vec<u8>, Sha256Hex), LoadError> {
    let bytes = read_capped(path, MAX_EXECUTABLE_BYTES)
        .map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| LoadError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_EXECUTABLE_BYTES,
        })?;
    let digest = Sha256Hex::of(&bytes);
    Ok((bytes, digest))
}

/// Reads a manifest's executable, capped, and checks it against the pin:
/// the one place where a pin is checked, on the very bytes that will be
/// compiled or run.
///
/// # Errors
///
/// [`LoadError::Read`], [`LoadError::TooLarge`] or [`LoadError::Pin`].
pub fn read_executable(spec: &ToolSpec) -> Result<(Vec<u8>, Sha256Hex), LoadError> {
    let (bytes, digest) = read_wasm(&spec.executable.path)?;
    manifest::check_pin(spec, &digest).map_err(|mismatch| LoadError::Pin { mismatch })?;
    Ok((bytes, digest))
}

/// Compiles the wasm at `path`, or loads it from the cache, checked against
/// `spec`'s pin if there is one.
///
/// A warm start reads neither the wasm nor its hash: while the cache's
/// authenticated record vouches that the file (device, inode, size, mtime,
/// ctime) is unchanged since it was last hashed, the recorded digest is the
/// file's digest, so the pin is checked against it and the compiled code is
/// mapped from the cache. Otherwise the file is read once, capped, hashed
/// and checked, exactly as [`read_executable`] does, and those bytes are
/// compiled.
///
/// # Errors
///
/// [`LoadError::Read`], [`LoadError::TooLarge`], [`LoadError::Pin`] or
/// [`LoadError::Wasm`].
pub fn load_wasm(
    engine: &TokaEngine,
    path: &Path,
    spec: Option<&ToolSpec>,
) -> Result<engine::Loaded, LoadError> {
    let read = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let pin = |digest: &Sha256Hex| match spec {
        Some(spec) => {
            manifest::check_pin(spec, digest).map_err(|mismatch| LoadError::Pin { mismatch })
        }
        None => Ok(()),
    };
    let wasm = engine::WasmFile::open(path).map_err(read)?;
    if wasm.size() <= MAX_EXECUTABLE_BYTES
        && let Some(digest) = engine.known_digest(&wasm)
    {
        pin(&digest)?;
        if let Some(loaded) = engine.load_cached(&digest) {
            return Ok(loaded);
        }
    }
    let bytes = wasm
        .read_capped(MAX_EXECUTABLE_BYTES)
        .map_err(read)?
        .ok_or_else(|| LoadError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_EXECUTABLE_BYTES,
        })?;
    let digest = Sha256Hex::of(&bytes);
    pin(&digest)?;
    engine.remember_digest(&wasm, &digest);
    engine
        .load_with_digest(&bytes, digest)
        .map_err(|source| LoadError::Wasm {
            path: path.to_path_buf(),
            source,
        })
}

/// A manifest whose code is in a registry (`spec.executable.path:
/// oci://…@sha256:…`) gets the path of the pulled component; any other is
/// returned as it is.
///
/// # Errors
///
/// [`LoadError::Remote`]: no registry access configured, or the pull failed.
fn resolve_remote(engine: &TokaEngine, mut spec: ToolSpec) -> Result<ToolSpec, LoadError> {
    let Some(written) = spec.executable.remote.clone() else {
        return Ok(spec);
    };
    let fail = |source: toka_oci::OciError| LoadError::Remote {
        file: spec.manifest.clone(),
        source: Box::new(source),
    };
    let reference: toka_oci::Reference = written
        .parse()
        .map_err(|e: toka_oci::ReferenceError| fail(e.into()))?;
    let pulled = engine
        .registry()
        .map_err(fail)?
        .pull_blocking(&reference, &|_| {})
        .map_err(fail)?;
    spec.executable.path = pulled.wasm;
    Ok(spec)
}

/// Loads the tool `spec` declares: reads and checks its executable, and for
/// wasm compiles (or loads from the cache) and links it.
///
/// # Errors
///
/// [`LoadError`] naming the file and what is wrong.
pub fn load(engine: &TokaEngine, spec: ToolSpec) -> Result<Tool, LoadError> {
    let spec = resolve_remote(engine, spec)?;
    let name = spec.name.to_string();
    let (code, digest) = if spec.executable.kind.is_wasm() {
        let loaded = load_wasm(engine, &spec.executable.path, Some(&spec))?;
        let digest = loaded.digest.clone();
        let wasm =
            Wasm::new(engine, &name, loaded, Some(spec.executable.kind)).map_err(|source| {
                LoadError::Link {
                    file: spec.manifest.clone(),
                    source: Box::new(source),
                }
            })?;
        (Code::Wasm(wasm), digest)
    } else {
        let (bytes, digest) = read_executable(&spec)?;
        let script = Script {
            bytes: bytes.into(),
            file_name: spec
                .executable
                .path
                .file_name()
                .map_or_else(|| "tool".into(), |n| n.to_os_string()),
        };
        (Code::Script(script), digest)
    };
    Ok(Tool {
        name,
        spec: Some(spec),
        code,
        digest,
        loaded_at: SystemTime::now(),
        described: None,
    })
}

/// Loads a bare `.wasm` or `.wat` file (no manifest) as tool `name`.
///
/// # Errors
///
/// [`LoadError`] naming the file and what is wrong.
pub fn load_file(engine: &TokaEngine, path: &Path, name: &str) -> Result<Tool, LoadError> {
    let loaded = load_wasm(engine, path, None)?;
    let digest = loaded.digest.clone();
    let wasm = Wasm::new(engine, name, loaded, None).map_err(|source| LoadError::Link {
        file: path.to_path_buf(),
        source: Box::new(source),
    })?;
    Ok(Tool {
        name: name.to_string(),
        spec: None,
        code: Code::Wasm(wasm),
        digest,
        loaded_at: SystemTime::now(),
        described: None,
    })
}

/// Loads `spec` for a catalog that serves calls: as [`load`], and refuses
/// commands (they take arguments and stdin, not JSON).
///
/// # Errors
///
/// As [`load`], and [`LoadError::NotCallable`] for a command.
pub fn load_callable(engine: &TokaEngine, spec: ToolSpec) -> Result<Tool, LoadError> {
    let file = spec.manifest.clone();
    let tool = load(engine, spec)?;
    match tool.kind() {
        ToolKind::Wasm(k @ (WasmKind::Command | WasmKind::Preview1)) => {
            Err(LoadError::NotCallable {
                file,
                tool: tool.name,
                what: k.describe(),
            })
        }
        _ => Ok(tool),
    }
}

/// Where callers find a tool by name.
#[async_trait::async_trait]
pub trait Catalog: Send + Sync {
    /// The tool called `name`, or why there is none.
    async fn get(&self, name: &str) -> Result<Arc<Tool>, Arc<LoadError>>;
}

/// A tool loaded at most once, by whichever caller asks first.
type LoadOnce = tokio::sync::OnceCell<Result<Arc<Tool>, Arc<LoadError>>>;

/// The tools of a manifests directory, loaded on first use and kept for the
/// life of the process (`run`, `orchestrate`).
pub struct DirCatalog {
    engine: Arc<TokaEngine>,
    dir: PathBuf,
    loaded: Mutex<HashMap<String, Arc<LoadOnce>>>,
}

impl DirCatalog {
    /// The tools of `dir`.
    pub fn new(engine: Arc<TokaEngine>, dir: PathBuf) -> DirCatalog {
        DirCatalog {
            engine,
            dir,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Makes `tool` the one `get` returns for its name (a tool the caller
    /// already loaded, like the workflow `run` was given by path).
    pub fn insert(&self, tool: Arc<Tool>) {
        let cell = LoadOnce::new_with(Some(Ok(tool.clone())));
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(tool.name.clone(), Arc::new(cell));
        }
    }
}

#[async_trait::async_trait]
impl Catalog for DirCatalog {
    async fn get(&self, name: &str) -> Result<Arc<Tool>, Arc<LoadError>> {
        let cell = match self.loaded.lock() {
            Ok(mut loaded) => loaded.entry(name.to_string()).or_default().clone(),
            // A poisoned table only means another loader panicked; load
            // without sharing.
            Err(_) => Arc::new(LoadOnce::new()),
        };
        // One compile per tool however many runs ask at once.
        cell.get_or_init(|| async {
            let engine = self.engine.clone();
            let dir = self.dir.clone();
            let owned = name.to_string();
            let loaded = tokio::task::spawn_blocking(move || {
                let spec = directory::find_by_name(&dir, &owned)?;
                load_callable(&engine, spec).map(Arc::new)
            })
            .await;
            match loaded {
                Ok(r) => r.map_err(Arc::new),
                Err(join) => Err(Arc::new(LoadError::Read {
                    path: self.dir.clone(),
                    source: std::io::Error::other(join.to_string()),
                })),
            }
        })
        .await
        .clone()
    }
}
