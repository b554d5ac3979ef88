//! Each guide in docs/plugins is followed step by step in a clean folder by
//! scripts/check-guide.py (every command run, every file written, every
//! expected output checked), so a guide that goes stale fails the build.

use crate::harness::{repo, shared_cache};
use std::path::Path;
use std::process::Command;

fn follow(guide: &str) {
    let bin = Path::new(env!("CARGO_BIN_EXE_toka-host"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    // The toolchains scripts/install-toolchains.sh put in .toolchains are
    // found the way the guides' own install steps would leave them.
    let path = std::env::join_paths(
        [bin, repo().join(".toolchains/cargo/bin")]
            .into_iter()
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .expect("PATH");
    let out = Command::new("python3")
        .arg(repo().join("scripts/check-guide.py"))
        .arg(repo().join("docs/plugins").join(guide))
        .env("PATH", path)
        .env("TOKA", repo())
        .env("TOKA_CACHE_DIR", shared_cache())
        // Guides build in a clean folder; their Rust builds share one target
        // directory so that a rerun is incremental.
        .env("CARGO_TARGET_DIR", repo().join("target/guides"))
        .output()
        .expect("run check-guide.py");
    assert!(
        out.status.success(),
        "{guide} went stale:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rust_guide() {
    follow("rust.md");
}

#[test]
fn python_guide() {
    follow("python.md");
}

#[test]
fn javascript_guide() {
    follow("javascript.md");
}

#[test]
fn c_guide() {
    follow("c.md");
}
