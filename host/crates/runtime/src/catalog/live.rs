//! The live catalog of `serve`: every tool of a manifests directory, loaded
//! and swapped in as its files change.
//!
//! A scan compares each manifest's fingerprint (size and mtime of the
//! manifest and of the executable it was parsed to point at) with the last
//! one; a change is loaded once it has stopped changing for one interval,
//! compiled off the request path, then swapped in atomically: calls in
//! flight hold an `Arc` to the version they started with, new calls get the
//! new one, and a failed update leaves the old version serving with the
//! error recorded. A directory that cannot be read is an error, never "every
//! tool removed".

use super::{Catalog, LoadError, Tool, load_callable};
use crate::engine::TokaEngine;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;
use toka_spec::directory::{self, DirError};
use toka_spec::manifest::{self, Sha256Hex, Version};
use toka_spec::policy::{self, Grants};

/// The table of served tools, by name: replaced whole on every change, so a
/// reader holds a consistent snapshot.
pub type ToolTable = Arc<BTreeMap<String, Arc<Tool>>>;

/// What a scan changed.
#[derive(Clone, Debug)]
pub enum Change {
    /// A tool is served for the first time.
    Loaded {
        /// The tool.
        name: String,
        /// Its version.
        version: Option<Version>,
        /// What runs.
        digest: Sha256Hex,
        /// Its manifest.
        manifest: PathBuf,
        /// What it reaches under the operator's grants.
        reach: String,
    },
    /// A new version replaced the served one.
    Replaced {
        /// The tool.
        name: String,
        /// The new version.
        version: Option<Version>,
        /// What runs now.
        digest: Sha256Hex,
        /// Its manifest.
        manifest: PathBuf,
        /// What it reaches under the operator's grants.
        reach: String,
    },
    /// The manifest is gone; so is the tool.
    Removed {
        /// The tool.
        name: String,
        /// The manifest that was removed.
        manifest: PathBuf,
    },
    /// A manifest (new or changed) failed to load; the previous version, if
    /// any, keeps serving.
    Failed {
        /// The manifest.
        manifest: PathBuf,
        /// Why.
        error: String,
    },
    /// The directory could not be read; nothing was changed.
    DirectoryUnreadable {
        /// Why.
        error: String,
    },
    /// The directory is readable again.
    DirectoryReadable,
}

impl std::fmt::Display for Change {
    /// The change as one log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Loaded {
                name,
                version,
                manifest,
                reach,
                ..
            }
            | Change::Replaced {
                name,
                version,
                manifest,
                reach,
                ..
            } => {
                write!(f, "loaded {name}")?;
                if let Some(v) = version {
                    write!(f, " {v}")?;
                }
                write!(f, " from {}", manifest.display())?;
                if !reach.is_empty() {
                    write!(f, " ({reach})")?;
                }
                Ok(())
            }
            Change::Removed { name, manifest } => {
                write!(f, "removed {name} ({} is gone)", manifest.display())
            }
            Change::Failed { error, .. } => {
                write!(f, "{error} (the previous version, if any, keeps serving)")
            }
            Change::DirectoryUnreadable { error } => {
                write!(f, "{error}; every tool keeps serving as it was")
            }
            Change::DirectoryReadable => write!(f, "the manifests directory is readable again"),
        }
    }
}

impl Change {
    /// True for changes that alter what is served (a client's tool list).
    pub fn changes_tools(&self) -> bool {
        matches!(
            self,
            Change::Loaded { .. } | Change::Replaced { .. } | Change::Removed { .. }
        )
    }
}

/// What a manifest file looked like when last seen: (path, size, mtime) of
/// the manifest and of the executable it pointed to when last parsed.
#[derive(Clone, PartialEq, Debug)]
struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

fn stat(p: &Path) -> (PathBuf, u64, Option<SystemTime>) {
    let m = std::fs::metadata(p).ok();
    (
        p.to_path_buf(),
        m.as_ref().map_or(0, |m| m.len()),
        m.and_then(|m| m.modified().ok()),
    )
}

struct Watched {
    fingerprint: Fingerprint,
    /// The executable the manifest pointed to when it last parsed.
    executable: Option<PathBuf>,
    /// Seen once unchanged since the last scan (debounce).
    settled: bool,
    /// The tool this file provides, when it loaded.
    name: Option<String>,
    /// The name the manifest gave when it last parsed, and why that version
    /// did not load (so a caller asking for it learns why, not "not found").
    failed: Option<(String, Arc<LoadError>)>,
}

impl Watched {
    fn fingerprint_of(file: &Path, executable: Option<&Path>) -> Fingerprint {
        let mut parts = vec![stat(file)];
        if let Some(exe) = executable {
            parts.push(stat(exe));
        }
        Fingerprint(parts)
    }
}

/// The tools `serve` serves, kept in step with a manifests directory.
pub struct LiveCatalog {
    engine: Arc<TokaEngine>,
    dir: PathBuf,
    grants: Grants,
    table: RwLock<ToolTable>,
    watched: Mutex<BTreeMap<PathBuf, Watched>>,
    errors: RwLock<BTreeMap<PathBuf, String>>,
    dir_error: RwLock<Option<String>>,
}

impl LiveCatalog {
    /// An empty catalog of `dir`; [`LiveCatalog::scan`] fills it with the
    /// tools whose directories and hosts `grants` reach (the others are
    /// refused at load, with the grant that would allow them).
    pub fn new(engine: Arc<TokaEngine>, dir: PathBuf, grants: Grants) -> LiveCatalog {
        LiveCatalog {
            engine,
            dir,
            grants,
            table: RwLock::new(Arc::new(BTreeMap::new())),
            watched: Mutex::new(BTreeMap::new()),
            errors: RwLock::new(BTreeMap::new()),
            dir_error: RwLock::new(None),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tools served now.
    pub fn snapshot(&self) -> ToolTable {
        self.table.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// The tool `name`, if served.
    pub fn tool(&self, name: &str) -> Option<Arc<Tool>> {
        self.table.read().ok().and_then(|t| t.get(name).cloned())
    }

    /// The last load error of each manifest that does not serve.
    pub fn errors(&self) -> BTreeMap<PathBuf, String> {
        self.errors.read().map(|e| e.clone()).unwrap_or_default()
    }

    /// Why the directory could not be read at the last scan, if it could not.
    pub fn dir_error(&self) -> Option<String> {
        self.dir_error.read().ok().and_then(|e| e.clone())
    }

    /// Serves `tool` under its name now (the benchmark's hot swap, and
    /// embedders that load tools themselves).
    pub fn insert(&self, tool: Arc<Tool>) {
        if let Ok(mut table) = self.table.write() {
            let mut next = (**table).clone();
            next.insert(tool.name.clone(), tool);
            *table = Arc::new(next);
        }
    }

    /// One pass over the directory: load what is new or changed (at once
    /// when `initial`, else once it has stopped changing), drop what was
    /// removed, record errors. Blocking: run it off the async executor.
    ///
    /// # Errors
    ///
    /// [`DirError`] when the directory cannot be read; nothing is changed
    /// then (the change list also reports it, once).
    pub fn scan(&self, initial: bool) -> Result<Vec<Change>, DirError> {
        let listing = match directory::list(&self.dir) {
            Ok(l) => l,
            Err(e) => {
                let message = e.to_string();
                let mut changes = Vec::new();
                if let Ok(mut d) = self.dir_error.write()
                    && d.as_deref() != Some(message.as_str())
                {
                    *d = Some(message.clone());
                    changes.push(Change::DirectoryUnreadable { error: message });
                }
                return if changes.is_empty() {
                    Err(e)
                } else {
                    Ok(changes)
                };
            }
        };
        let mut changes = Vec::new();
        if let Ok(mut d) = self.dir_error.write()
            && d.take().is_some()
        {
            changes.push(Change::DirectoryReadable);
        }
        let Ok(mut watched) = self.watched.lock() else {
            return Ok(changes);
        };
        let mut loads: Vec<(PathBuf, Option<String>, Result<Tool, LoadError>)> = Vec::new();
        for file in &listing.files {
            let executable = watched.get(file).and_then(|w| w.executable.clone());
            let fp = Watched::fingerprint_of(file, executable.as_deref());
            let due = match watched.get_mut(file) {
                Some(w) if w.fingerprint == fp && w.settled => false,
                Some(w) if w.fingerprint == fp => {
                    w.settled = true;
                    true
                }
                Some(w) => {
                    w.fingerprint = fp;
                    w.settled = false;
                    initial
                }
                None => {
                    watched.insert(
                        file.clone(),
                        Watched {
                            fingerprint: fp,
                            executable: None,
                            settled: initial,
                            name: None,
                            failed: None,
                        },
                    );
                    initial
                }
            };
            if due {
                let mut parsed_name = None;
                let result = manifest::load(file)
                    .map_err(LoadError::from)
                    .and_then(|spec| {
                        // From now on the executable is part of the
                        // fingerprint: a new wasm under the same manifest is
                        // a change too.
                        if let Some(w) = watched.get_mut(file) {
                            let exe = spec.executable.path.clone();
                            if w.executable.as_ref() != Some(&exe) {
                                w.fingerprint = Watched::fingerprint_of(file, Some(&exe));
                                w.executable = Some(exe);
                            }
                        }
                        parsed_name = Some(spec.name.to_string());
                        policy::check_reach(&spec, &self.grants).map_err(|source| {
                            LoadError::Policy {
                                file: file.clone(),
                                source: Box::new(source),
                            }
                        })?;
                        load_callable(&self.engine, spec)
                    });
                loads.push((file.clone(), parsed_name, result));
            }
        }
        let removed: Vec<PathBuf> = watched
            .keys()
            .filter(|f| !listing.files.contains(f))
            .cloned()
            .collect();
        if loads.is_empty() && removed.is_empty() {
            return Ok(changes);
        }
        let (Ok(mut table), Ok(mut errors)) = (self.table.write(), self.errors.write()) else {
            return Ok(changes);
        };
        let mut next: BTreeMap<String, Arc<Tool>> = (**table).clone();
        for file in removed {
            if let Some(w) = watched.remove(&file)
                && let Some(name) = w.name
            {
                next.remove(&name);
                changes.push(Change::Removed {
                    name,
                    manifest: file.clone(),
                });
            }
            errors.remove(&file);
        }
        for (file, parsed_name, result) in loads {
            match result {
                Ok(tool) => {
                    let name = tool.name.clone();
                    let owner = watched
                        .iter()
                        .find(|(f, w)| **f != file && w.name.as_deref() == Some(name.as_str()));
                    if let Some((other, _)) = owner {
                        let error = format!(
                            "{}: metadata.name: `{name}` is already served from {}",
                            file.display(),
                            other.display()
                        );
                        errors.insert(file.clone(), error.clone());
                        changes.push(Change::Failed {
                            manifest: file,
                            error,
                        });
                        continue;
                    }
                    let version = tool.spec.as_ref().map(|s| s.version.clone());
                    let digest = tool.digest.clone();
                    let reach = tool
                        .spec
                        .as_ref()
                        .map(|s| policy::describe_effective(s, &self.grants))
                        .unwrap_or_default();
                    changes.push(if next.contains_key(&name) {
                        Change::Replaced {
                            name: name.clone(),
                            version,
                            digest,
                            manifest: file.clone(),
                            reach,
                        }
                    } else {
                        Change::Loaded {
                            name: name.clone(),
                            version,
                            digest,
                            manifest: file.clone(),
                            reach,
                        }
                    });
                    if let Some(w) = watched.get_mut(&file)
                        && let Some(old) = w.name.replace(name.clone())
                        && old != name
                    {
                        next.remove(&old);
                    }
                    errors.remove(&file);
                    if let Some(w) = watched.get_mut(&file) {
                        w.failed = None;
                    }
                    next.insert(name, Arc::new(tool));
                }
                Err(e) => {
                    let error = e.to_string();
                    if let Some(w) = watched.get_mut(&file) {
                        w.failed = parsed_name.map(|n| (n, Arc::new(e)));
                    }
                    errors.insert(file.clone(), error.clone());
                    changes.push(Change::Failed {
                        manifest: file,
                        error,
                    });
                }
            }
        }
        *table = Arc::new(next);
        Ok(changes)
    }
}

#[async_trait::async_trait]
impl Catalog for LiveCatalog {
    async fn get(&self, name: &str) -> Result<Arc<Tool>, Arc<LoadError>> {
        if let Some(tool) = self.tool(name) {
            return Ok(tool);
        }
        let failed = self.watched.lock().ok().and_then(|w| {
            w.values().find_map(|w| match &w.failed {
                Some((n, e)) if n == name => Some(e.clone()),
                _ => None,
            })
        });
        Err(failed.unwrap_or_else(|| {
            Arc::new(LoadError::Find(directory::FindError::NotFound {
                name: name.to_string(),
                dir: self.dir.clone(),
                known: self.snapshot().keys().cloned().collect(),
            }))
        }))
    }
}
