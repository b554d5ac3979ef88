//! Code from an OCI registry: the content store, the registry settings and
//! the trusted keys a pull uses, shared by everything that loads a tool.
//!
//! A pull is async (it talks HTTP) while loading a tool is blocking work
//! (compiling); [`Registry::pull_blocking`] bridges the two, so the catalog
//! can resolve an `oci://` path in the middle of a load on any thread.

use std::path::{Path, PathBuf};
use toka_oci::{ContentStore, OciError, Progress, Pulled, Reference, RegistryConfig, VerifyingKey};

/// How registries are reached, beyond the environment's credentials.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// Registries (`host[:port]`) reached over plain HTTP although not on
    /// loopback.
    pub insecure: Vec<String>,
    /// With keys, only artifacts signed by one of them are pulled.
    pub trusted_keys: Vec<VerifyingKey>,
}

/// Where pulled code is kept and how registries are reached.
#[derive(Debug, Clone)]
pub struct Registry {
    store: ContentStore,
    config: RegistryConfig,
    keys: Vec<VerifyingKey>,
}

impl Registry {
    /// Pulls through `store` with `config`; with `keys`, only artifacts
    /// signed by one of them are accepted.
    pub fn new(store: ContentStore, config: RegistryConfig, keys: Vec<VerifyingKey>) -> Registry {
        Registry {
            store,
            config,
            keys,
        }
    }

    /// The store under `cache_root/oci` (default: the user's cache
    /// directory), credentials from the environment, plain HTTP allowed to
    /// the `insecure` registries.
    ///
    /// # Errors
    ///
    /// [`OciError::Store`] when the store cannot be opened (or no home
    /// directory is known), [`OciError::Credentials`] for malformed
    /// credentials in the environment.
    pub fn from_env(
        cache_root: Option<&Path>,
        insecure: &[String],
        keys: Vec<VerifyingKey>,
    ) -> Result<Registry, OciError> {
        let root = match cache_root {
            Some(r) => r.join("oci"),
            None => ContentStore::default_root(&|k| std::env::var(k).ok()).ok_or_else(|| {
                OciError::Store {
                    path: PathBuf::from("$XDG_CACHE_HOME/toka/oci"),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "neither XDG_CACHE_HOME nor HOME is set; give --cache-dir",
                    ),
                }
            })?,
        };
        let store = ContentStore::open(&root)?;
        let config = insecure
            .iter()
            .fold(RegistryConfig::from_env()?, |c, h| c.insecure_registry(h));
        Ok(Registry::new(store, config, keys))
    }

    /// The content store.
    pub fn store(&self) -> &ContentStore {
        &self.store
    }

    /// The registry settings (for a push).
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Pulls `reference` into the store (or finds it there), checking every
    /// digest and, with trusted keys, the signature.
    ///
    /// # Errors
    ///
    /// Every [`OciError`] a pull can give.
    pub async fn pull(
        &self,
        reference: &Reference,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Pulled, OciError> {
        toka_oci::pull(reference, &self.store, &self.config, &self.keys, progress).await
    }

    /// [`Registry::pull`] from blocking code, on any thread: the pull runs
    /// on a runtime of its own on a helper thread, so it neither needs nor
    /// blocks the caller's runtime (a current-thread runtime cannot block in
    /// place).
    ///
    /// # Errors
    ///
    /// As [`Registry::pull`], and [`OciError::Store`] if no runtime can be
    /// started.
    pub fn pull_blocking(
        &self,
        reference: &Reference,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Pulled, OciError> {
        let no_runtime = |e: std::io::Error| OciError::Store {
            path: self.store.root().to_path_buf(),
            source: e,
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(no_runtime)?
                    .block_on(self.pull(reference, progress))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(no_runtime(std::io::Error::other(
                    "the pull thread panicked",
                )))
            })
        })
    }
}
