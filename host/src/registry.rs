//! Registry: every tool of a manifests directory, each either loaded or
//! listed with the error that keeps it out. One bad file never hides the
//! others.

use crate::manifest::{self, ManifestError, ToolSpec};
use std::path::{Path, PathBuf};

/// One manifest file of the directory.
#[derive(Debug)]
pub struct Entry {
    /// The manifest.
    pub file: PathBuf,
    /// The tool, or why it is not available.
    pub state: Result<ToolSpec, EntryError>,
}

/// Why a manifest's tool is not available.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The manifest is invalid.
    #[error(transparent)]
    Invalid(#[from] ManifestError),
    /// Another manifest already uses the name.
    #[error("{}: metadata.name: `{name}` is already the name of the tool in {}; tool names must be unique in a directory", file.display(), first.display())]
    Duplicate {
        /// This manifest.
        file: PathBuf,
        /// The name.
        name: String,
        /// The manifest that has it first (in file-name order).
        first: PathBuf,
    },
}

/// The tools of one directory.
#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    entries: Vec<Entry>,
}

impl Registry {
    /// Loads every `.yaml`/`.yml` manifest in `dir`, in file-name order.
    ///
    /// # Errors
    ///
    /// Only when the directory itself cannot be read.
    pub fn load(dir: &Path) -> std::io::Result<Registry> {
        let mut entries: Vec<Entry> = Vec::new();
        for file in manifest::manifest_files(dir)? {
            let state = match manifest::load(&file) {
                Err(e) => Err(EntryError::from(e)),
                Ok(spec) => match entries
                    .iter()
                    .find(|e| matches!(&e.state, Ok(s) if s.name == spec.name))
                {
                    Some(first) => Err(EntryError::Duplicate {
                        file: file.clone(),
                        name: spec.name.to_string(),
                        first: first.file.clone(),
                    }),
                    None => Ok(spec),
                },
            };
            entries.push(Entry { file, state });
        }
        Ok(Registry {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every manifest, loaded or not.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The loaded tools.
    pub fn tools(&self) -> impl Iterator<Item = &ToolSpec> {
        self.entries.iter().filter_map(|e| e.state.as_ref().ok())
    }

    /// The entry whose tool is `name`, or whose file is `name.yaml` when that
    /// manifest is broken (so its error can be shown).
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| matches!(&e.state, Ok(s) if s.name.as_str() == name))
            .or_else(|| {
                self.entries.iter().find(|e| {
                    e.state.is_err() && e.file.file_stem().and_then(|s| s.to_str()) == Some(name)
                })
            })
    }

    /// True when every manifest loaded.
    pub fn is_clean(&self) -> bool {
        self.entries.iter().all(|e| e.state.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, name: &str) {
        std::fs::write(dir.join("t.wasm"), b"\0asm").expect("wasm");
        std::fs::write(
            dir.join(file),
            format!(
                "metadata: {{ name: {name}, version: 1.0.0, description: d }}\n\
                 spec: {{ executable: {{ type: component, path: t.wasm }} }}\n"
            ),
        )
        .expect("manifest");
    }

    #[test]
    fn bad_and_duplicate_manifests_are_listed_not_fatal() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "a.yaml", "alpha");
        write(d.path(), "b.yaml", "alpha");
        write(d.path(), "c.yaml", "gamma");
        std::fs::write(d.path().join("broken.yaml"), "metadata: [").expect("broken");
        let r = Registry::load(d.path()).expect("load");
        assert_eq!(r.entries().len(), 4);
        let names: Vec<_> = r.tools().map(|t| t.name.to_string()).collect();
        assert_eq!(names, ["alpha", "gamma"]);
        assert!(!r.is_clean());
        let dup = r
            .entries()
            .iter()
            .find(|e| e.file.ends_with("b.yaml"))
            .expect("b");
        assert!(matches!(dup.state, Err(EntryError::Duplicate { .. })));
        assert!(r.find("broken").is_some_and(|e| e.state.is_err()));
        assert!(r.find("gamma").is_some_and(|e| e.state.is_ok()));
        assert!(r.find("nope").is_none());
    }
}
