//! The one wasmtime [`Engine`] of a process: its configuration, its epoch
//! ticker, and loading plugins through the compile cache.

mod cache;
mod record;

pub use cache::{CompileCache, Entry, EntryKind, Miss};

use crate::remote::{Registry, RegistrySettings};
use serde::Serialize;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use toka_spec::manifest::Sha256Hex;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, Module};

/// The wasm stack a call may use unless `--max-wasm-stack` says otherwise.
pub const DEFAULT_MAX_WASM_STACK: usize = 1 << 20;
/// How often the epoch advances: the granularity of wall-clock limits.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Room for host frames on a call's fiber stack beyond the wasm stack.
const HOST_STACK_MARGIN: usize = 2 << 20;

/// How to build the engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Maximum bytes of wasm stack per call.
    pub max_wasm_stack: usize,
    /// Where compiled code is cached; `None` turns the cache off.
    pub cache_dir: Option<PathBuf>,
    /// Pre-allocate instance slots for this many calls at once (the pooling
    /// allocator, for `serve`); `None` allocates per instance (for `run`).
    pub pooling: Option<u32>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_wasm_stack: DEFAULT_MAX_WASM_STACK,
            cache_dir: default_cache_dir(),
            pooling: None,
        }
    }
}

/// `$XDG_CACHE_HOME/toka`, else `$HOME/.cache/toka`.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("toka"))
}

/// The engine plus what goes with it.
pub struct TokaEngine {
    engine: Engine,
    cache: Result<CompileCache, String>,
    max_wasm_stack: usize,
    registry: RegistrySettings,
    cache_root: Option<PathBuf>,
    watch: Option<Arc<dyn CompileWatch>>,
}

/// Told when a load has to compile (nothing usable in the cache), which
/// takes seconds for an interpreter-sized component, so a front end can say
/// what is going on.
pub trait CompileWatch: Send + Sync {
    /// Compiling `wasm_bytes` bytes of WebAssembly has begun; it ends when
    /// the returned value is dropped.
    fn compiling(&self, wasm_bytes: usize) -> Box<dyn Send>;
}

/// Compiled code ready to instantiate.
#[derive(Clone)]
pub enum Compiled {
    /// A component (tool or `wasi:cli/command`).
    Component(Component),
    /// A core module (WASI preview1 command).
    Module(Module),
}

/// Whether compiled code came from the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "reason")]
pub enum CacheStatus {
    /// Loaded from the cache; nothing was compiled.
    Hit,
    /// Compiled and stored.
    Miss,
    /// An entry existed but was not trusted; compiled and rewritten.
    Rejected(String),
    /// The cache is off or unusable.
    Off(String),
}

/// A plugin, compiled.
#[derive(Clone)]
pub struct Loaded {
    /// The code.
    pub compiled: Compiled,
    /// SHA-256 of the wasm as given.
    pub digest: Sha256Hex,
    /// Where it came from.
    pub cache: CacheStatus,
    /// Time to compile or to load from the cache.
    pub load_time: Duration,
}

/// Why bytes could not become a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not WebAssembly at all, or invalid WebAssembly.
    #[error("{0}")]
    Malformed(String),
}

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot configure the WebAssembly engine: {0}")]
pub struct EngineError(String);

impl TokaEngine {
    /// Builds the engine and starts its epoch ticker (a thread that ends when
    /// the engine is dropped).
    ///
    /// # Errors
    ///
    /// When wasmtime rejects the configuration (for example a stack size it
    /// cannot honour).
    pub fn new(options: &EngineOptions) -> Result<TokaEngine, EngineError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(options.max_wasm_stack)
            .async_stack_size(options.max_wasm_stack + HOST_STACK_MARGIN)
            // No component-model async in any tool world yet.
            .concurrency_support(false);
        if let Some(calls) = options.pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool(calls)));
        }
        let engine = Engine::new(&config).map_err(|e| EngineError(format!("{e:#}")))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("toka-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| EngineError(format!("cannot start the epoch thread: {e}")))?;
        let cache = match &options.cache_dir {
            None => Err("disabled with --no-cache".to_string()),
            Some(dir) => CompileCache::open(dir, &engine_id(&engine)),
        };
        Ok(TokaEngine {
            engine,
            cache,
            max_wasm_stack: options.max_wasm_stack,
            registry: RegistrySettings::default(),
            cache_root: options.cache_dir.clone(),
            watch: None,
        })
    }

    /// Tells `watch` whenever a load compiles (see [`CompileWatch`]).
    #[must_use]
    pub fn with_compile_watch(mut self, watch: Arc<dyn CompileWatch>) -> TokaEngine {
        self.watch = Some(watch);
        self
    }

    /// How code that manifests name in a registry (`oci://…@sha256:…`) is
    /// pulled: which registries speak plain HTTP, which keys must have signed
    /// it. Without this, only loopback registries are reached over HTTP and
    /// no signature is required.
    #[must_use]
    pub fn with_registry(mut self, settings: RegistrySettings) -> TokaEngine {
        self.registry = settings;
        self
    }

    /// Where code named by an `oci://` reference comes from: the content
    /// store under the cache directory (opened when first needed, so hosts
    /// that never pull never create it), the environment's credentials and
    /// the [`RegistrySettings`].
    ///
    /// # Errors
    ///
    /// The store cannot be opened or the environment's registry credentials
    /// are malformed.
    pub fn registry(&self) -> Result<Registry, toka_oci::OciError> {
        Registry::from_env(
            self.cache_root.as_deref(),
            &self.registry.insecure,
            self.registry.trusted_keys.clone(),
        )
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The wasm stack limit every call gets.
    pub fn max_wasm_stack(&self) -> usize {
        self.max_wasm_stack
    }

    /// The cache, or why there is none.
    pub fn cache(&self) -> Result<&CompileCache, &str> {
        self.cache.as_ref().map_err(String::as_str)
    }

    /// Compiles `bytes` (binary wasm or WAT text), or loads the result of an
    /// earlier compilation from the cache.
    ///
    /// # Errors
    ///
    /// [`LoadError::Malformed`] when the bytes are not valid WebAssembly.
    pub fn load(&self, bytes: &[u8]) -> Result<Loaded, LoadError> {
        self.load_with_digest(bytes, Sha256Hex::of(bytes))
    }

    /// [`TokaEngine::load`] for bytes whose SHA-256 the caller computed
    /// already (to check a pin), so they are hashed once.
    ///
    /// # Errors
    ///
    /// As [`TokaEngine::load`].
    pub fn load_with_digest(&self, bytes: &[u8], digest: Sha256Hex) -> Result<Loaded, LoadError> {
        let start = Instant::now();
        let binary;
        let wasm: &[u8] = if bytes.starts_with(b"\0asm") {
            bytes
        } else if looks_like_text(bytes) {
            binary = wat::parse_bytes(bytes)
                .map_err(|e| LoadError::Malformed(format!("invalid WebAssembly text: {e}")))?;
            &binary
        } else {
            return Err(LoadError::Malformed(
                "not WebAssembly: a .wasm file starts with the bytes \\0asm (is this the right file?)".into(),
            ));
        };
        let kind = match wasm.get(4..8) {
            Some([1, 0, 0, 0]) => EntryKind::Module,
            Some([0x0d, 0, 1, 0]) => EntryKind::Component,
            _ => {
                return Err(LoadError::Malformed(
                    "not a WebAssembly module or component this host understands: unknown version in the header".into(),
                ));
            }
        };

        let mut status = match &self.cache {
            Err(why) => CacheStatus::Off(why.clone()),
            Ok(cache) => match cache.get(kind, digest.as_str()) {
                Ok(entry) => match self.deserialize(kind, entry) {
                    Some(compiled) => {
                        return Ok(Loaded {
                            compiled,
                            digest,
                            cache: CacheStatus::Hit,
                            load_time: start.elapsed(),
                        });
                    }
                    None => CacheStatus::Rejected("compiled for another engine".into()),
                },
                Err(Miss::Absent) => CacheStatus::Miss,
                Err(Miss::Rejected(why)) => CacheStatus::Rejected(why),
            },
        };

        let malformed =
            |e: wasmtime::Error| LoadError::Malformed(format!("invalid WebAssembly: {e:#}"));
        let shown = self.watch.as_ref().map(|w| w.compiling(wasm.len()));
        let (compiled, serialized) = match kind {
            EntryKind::Component => {
                let c = Component::new(&self.engine, wasm).map_err(malformed)?;
                let s = self.cache.is_ok().then(|| c.serialize());
                (Compiled::Component(c), s)
            }
            EntryKind::Module => {
                let m = Module::new(&self.engine, wasm).map_err(malformed)?;
                let s = self.cache.is_ok().then(|| m.serialize());
                (Compiled::Module(m), s)
            }
        };
        if let (Ok(cache), Some(Ok(payload))) = (&self.cache, serialized)
            && let Err(e) = cache.put(kind, digest.as_str(), &payload)
        {
            status = CacheStatus::Off(format!("cannot write to {}: {e}", cache.dir().display()));
        }
        drop(shown);
        Ok(Loaded {
            compiled,
            digest,
            cache: status,
            load_time: start.elapsed(),
        })
    }

    /// The digest `wasm` had when it was last hashed, if the cache's
    /// authenticated record says the file is unchanged since; then neither
    /// its bytes nor their hash are needed (see `engine/cache`'s header).
    pub fn known_digest(&self, wasm: &WasmFile) -> Option<Sha256Hex> {
        let hex = self.cache.as_ref().ok()?.known_digest(&wasm.meta)?;
        Sha256Hex::try_from(hex).ok()
    }

    /// Records that `wasm`, read whole, hashed to `digest`, so the next
    /// start can skip both (only if the file did not change meanwhile).
    pub fn remember_digest(&self, wasm: &WasmFile, digest: &Sha256Hex) {
        if let (Ok(cache), Ok(after)) = (&self.cache, wasm.file.metadata()) {
            cache.remember_digest(&wasm.meta, &after, wasm.opened_at, digest.as_str());
        }
    }

    /// The compiled code for `digest` from the cache alone, without the
    /// wasm: `None` when there is no trusted entry (then read the wasm and
    /// [`TokaEngine::load_with_digest`] it, which says why).
    pub fn load_cached(&self, digest: &Sha256Hex) -> Option<Loaded> {
        let start = Instant::now();
        let cache = self.cache.as_ref().ok()?;
        for kind in [EntryKind::Component, EntryKind::Module] {
            match cache.get(kind, digest.as_str()) {
                Ok(entry) => {
                    return self.deserialize(kind, entry).map(|compiled| Loaded {
                        compiled,
                        digest: digest.clone(),
                        cache: CacheStatus::Hit,
                        load_time: start.elapsed(),
                    });
                }
                Err(Miss::Absent) => {}
                Err(Miss::Rejected(_)) => return None,
            }
        }
        None
    }

    fn deserialize(&self, kind: EntryKind, entry: Entry) -> Option<Compiled> {
        // SAFETY: `entry` passed the cache's checks, so it is exactly what
        // this host's own `serialize` produced, and the cache never writes
        // to an entry file in place (it renames new ones over), so the
        // mapping stays what was checked; wasmtime additionally checks that
        // it was compiled for this engine's configuration.
        unsafe {
            match kind {
                EntryKind::Component => {
                    // wasmtime maps a component only by path: name the open
                    // descriptor, so what is mapped is the inode checked.
                    let fd = PathBuf::from(format!("/proc/self/fd/{}", entry.file().as_raw_fd()));
                    let path = if fd.exists() {
                        fd
                    } else {
                        entry.path().to_path_buf()
                    };
                    Component::deserialize_file(&self.engine, &path)
                        .ok()
                        .map(Compiled::Component)
                }
                EntryKind::Module => Module::deserialize_open_file(&self.engine, entry.into_file())
                    .ok()
                    .map(Compiled::Module),
            }
        }
    }
}

/// A wasm file opened for loading: the descriptor, what `fstat` said when
/// it was opened, and when (all that [`TokaEngine::known_digest`] needs).
pub struct WasmFile {
    file: File,
    meta: std::fs::Metadata,
    opened_at: SystemTime,
}

impl WasmFile {
    /// Opens `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or inspected.
    pub fn open(path: &Path) -> std::io::Result<WasmFile> {
        let opened_at = SystemTime::now();
        let file = File::open(path)?;
        let meta = file.metadata()?;
        Ok(WasmFile {
            file,
            meta,
            opened_at,
        })
    }

    /// The file's size when it was opened.
    pub fn size(&self) -> u64 {
        self.meta.len()
    }

    /// Reads the file from its start, at most `limit` bytes: `Ok(None)` when
    /// it is larger (so a huge or endless file is never read whole).
    ///
    /// # Errors
    ///
    /// When the file cannot be read.
    pub fn read_capped(&self, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.size().min(limit)).unwrap_or(0));
        (&self.file).take(limit + 1).read_to_end(&mut bytes)?;
        Ok((bytes.len() as u64 <= limit).then_some(bytes))
    }
}

/// Written pages of a linear memory a freed pool slot keeps (see [`pool`]).
const KEEP_RESIDENT: usize = 16 << 20;

/// Slots for `calls` concurrent calls of typical components (a Rust tool is a
/// handful of core instances: the module, the WASI adapter, shims). A freed
/// slot is reset by scanning which pages the call wrote: up to
/// [`KEEP_RESIDENT`] of them are copied back from the memory image and stay
/// mapped, the rest are given back to the kernel. A Python or JavaScript
/// tool writes a few MiB of its pre-initialised heap per call; giving those
/// pages back meant faulting them in (and copying them from the image) again
/// on the next call: 1.61-1.72 -> 1.46-1.51 ms per Python call, 1.88-1.93 ->
/// 1.60-1.63 ms per JavaScript call in `serve` (docs/PERFORMANCE.md). The
/// price is memory: a slot that ran such a tool keeps what it wrote
/// resident, at most `KEEP_RESIDENT` per linear memory (+6-8 MiB of RSS
/// after one Python and one JavaScript tool at one call at a time).
fn pool(calls: u32) -> wasmtime::PoolingAllocationConfig {
    let mut p = wasmtime::PoolingAllocationConfig::new();
    p.total_component_instances(calls)
        .max_core_instances_per_component(32)
        .total_core_instances(calls.saturating_mul(32))
        .max_memories_per_component(8)
        .total_memories(calls.saturating_mul(8))
        .max_tables_per_component(16)
        .total_tables(calls.saturating_mul(16))
        .total_stacks(calls)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(16 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    p
}

fn looks_like_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| {
        let t = s.trim_start();
        t.starts_with('(') || t.starts_with(";;")
    })
}

/// Identifies compiled code this engine can run: the host's version plus
/// wasmtime's compatibility hash of the configuration.
fn engine_id(engine: &Engine) -> String {
    let mut h = std::hash::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("engine-{:016x}", h.finish())
}
