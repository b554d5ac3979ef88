//! A manifests directory: the one scanner that lists its manifests (used by
//! `run`, `tools` and `serve` alike), every tool in it either parsed or
//! listed with the error that keeps it out, and lookups by name. One bad
//! file never hides the others.

use crate::manifest::{self, ManifestError, ToolSpec, io_reason};
use std::path::{Path, PathBuf};

/// The directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the manifests directory {}: {}; pass --manifests DIR or set TOKA_MANIFESTS", dir.display(), io_reason(source))]
pub struct DirError {
    /// The manifests directory.
    pub dir: PathBuf,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// A name ending in `.yaml`/`.yml` that is not a manifest file, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The entry.
    pub file: PathBuf,
    /// What it is instead (`a directory`, `a broken symlink`, ...).
    pub what: String,
}

/// What a directory holds: manifest files, sorted, and the entries that
/// look like manifests but cannot be one.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Regular files (or symlinks to them) named `*.yaml` / `*.yml`.
    pub files: Vec<PathBuf>,
    /// Entries with such a name that are not regular files.
    pub skipped: Vec<Skipped>,
}

/// Lists the manifests of `dir`.
///
/// # Errors
///
/// [`DirError`] when the directory itself cannot be read. A failed read is
/// never an empty directory: callers that watch a directory must keep what
/// they have.
pub fn list(dir: &Path) -> Result<Listing, DirError> {
    let unreadable = |source| DirError {
        dir: dir.to_path_buf(),
        source,
    };
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            continue;
        }
        match not_a_file(&path) {
            None => listing.files.push(path),
            Some(what) => listing.skipped.push(Skipped { file: path, what }),
        }
    }
    listing.files.sort();
    listing.skipped.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(listing)
}

/// `None` for a regular file (or a symlink to one); otherwise what `path`
/// is, in words: `a directory`, `a fifo`, `a symlink loop`, `missing`, …
pub fn not_a_file(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => None,
        Ok(m) => Some(file_kind(&m).into()),
        Err(e) => Some(
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
                if e.raw_os_error() == Some(ELOOP) {
                    "a symlink loop".to_string()
                } else {
                    format!("a symlink that cannot be followed ({})", io_reason(&e))
                }
            } else if e.kind() == std::io::ErrorKind::NotFound {
                "missing".to_string()
            } else {
                format!("unreadable ({})", io_reason(&e))
            },
        ),
    }
}

/// Too many levels of symbolic links (Linux's errno).
const ELOOP: i32 = 40;

/// What a file that is not a regular file is, in words.
pub fn file_kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (fifo)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

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
    /// A manifest-like name that is not a file.
    #[error("{}: not a manifest: it is {what}", file.display())]
    NotAFile {
        /// The entry.
        file: PathBuf,
        /// What it is.
        what: String,
    },
}

/// The tools of one directory, parsed.
#[derive(Debug)]
pub struct Directory {
    dir: PathBuf,
    entries: Vec<Entry>,
}

impl Directory {
    /// Parses every manifest of `dir`, in file-name order.
    ///
    /// # Errors
    ///
    /// Only when the directory itself cannot be read.
    pub fn scan(dir: &Path) -> Result<Directory, DirError> {
        let listing = list(dir)?;
        let mut entries: Vec<Entry> = Vec::new();
        for file in listing.files {
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
        for s in listing.skipped {
            entries.push(Entry {
                state: Err(EntryError::NotAFile {
                    file: s.file.clone(),
                    what: s.what,
                }),
                file: s.file,
            });
        }
        entries.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(Directory {
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

    /// The names of the tools that loaded, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tools().map(|t| t.name.to_string()).collect();
        names.sort();
        names
    }
}

/// Why a tool name could not be turned into a manifest.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// No manifest in the directory has that name.
    #[error("no tool named `{}` in {}{}", crate::manifest::yaml::shorten_name(name), dir.display(), known_list(known))]
    NotFound {
        /// The name asked for.
        name: String,
        /// The manifests directory.
        dir: PathBuf,
        /// Tools that are there.
        known: Vec<String>,
    },
    /// The directory could not be read.
    #[error(transparent)]
    Unreadable(#[from] DirError),
    /// The manifest that has the name is invalid.
    #[error(transparent)]
    Invalid(#[from] ManifestError),
    /// The manifest that has the name cannot be used for another reason.
    #[error(transparent)]
    Entry(EntryError),
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "; it holds no valid manifest".into()
    } else {
        format!("; available: {}", known.join(", "))
    }
}

/// Finds and loads the manifest of tool `name` in `dir`: first `NAME.yaml` /
/// `NAME.yml`, then any manifest whose `metadata.name` is `name`. Invalid
/// manifests of *other* tools do not stop the search.
///
/// # Errors
///
/// [`FindError::NotFound`] listing the tools that are there, or the error of
/// the manifest that has the name.
pub fn find_by_name(dir: &Path, name: &str) -> Result<ToolSpec, FindError> {
    for ext in ["yaml", "yml"] {
        let candidate = dir.join(format!("{name}.{ext}"));
        if candidate.is_file() {
            let spec = manifest::load(&candidate)?;
            if spec.name.as_str() == name {
                return Ok(spec);
            }
        }
    }
    let mut scanned = Directory::scan(dir)?;
    let known = scanned.names();
    let found = scanned.find(name).map(|e| e.file.clone()).and_then(|file| {
        let i = scanned.entries.iter().position(|e| e.file == file)?;
        Some(scanned.entries.swap_remove(i).state)
    });
    match found {
        Some(Ok(spec)) => Ok(spec),
        // A broken manifest that would have had this name is the error the
        // user needs to see, not "not found".
        Some(Err(EntryError::Invalid(e))) => Err(FindError::Invalid(e)),
        Some(Err(e)) => Err(FindError::Entry(e)),
        None => Err(FindError::NotFound {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            known,
        }),
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
        let r = Directory::scan(d.path()).expect("load");
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

    #[test]
    fn entries_that_cannot_be_manifests_say_what_they_are() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "ok.yaml", "ok");
        std::fs::create_dir(d.path().join("dir.yaml")).expect("mkdir");
        std::os::unix::fs::symlink("missing.yaml", d.path().join("dangling.yaml")).expect("ln");
        std::os::unix::fs::symlink("loop.yaml", d.path().join("loop.yaml")).expect("ln");
        let l = list(d.path()).expect("list");
        assert_eq!(l.files.len(), 1);
        let whats: Vec<&str> = l.skipped.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(whats.len(), 3, "{whats:?}");
        assert!(whats.contains(&"a directory"), "{whats:?}");
        assert!(whats.contains(&"a symlink loop"), "{whats:?}");
        assert!(
            whats.iter().any(|w| w.contains("cannot be followed")),
            "{whats:?}"
        );
        let missing = list(&d.path().join("nope")).expect_err("missing dir");
        assert!(missing.to_string().contains("--manifests"), "{missing}");
    }
}
