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

/// The checker follows a guide as one shell session, as a reader types it:
/// a `cd` or an `export` holds for the next step, and a failing command
/// fails the guide at its step.
#[test]
fn the_checker_runs_a_guide_as_one_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |text: &str| {
        let guide = dir.path().join("guide.md");
        std::fs::write(&guide, text).expect("guide");
        Command::new("python3")
            .arg(repo().join("scripts/check-guide.py"))
            .arg(&guide)
            .output()
            .expect("run check-guide.py")
    };
    let fence = "```";
    let out = check(&format!(
        "{fence}sh\nmkdir sub && cd sub\nexport GREETING=hi\n{fence}\n\n\
         {fence}sh\nbasename \"$PWD\"; echo \"$GREETING\"\n{fence}\n\n\
         {fence}text expect\nsub\nhi\n{fence}\n"
    ));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check(&format!(
        "{fence}sh\ntrue\n{fence}\n\n{fence}sh\nfalse\necho after\n{fence}\n"
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("step 2 failed"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "after"),
        "the session ends at the failing command"
    );
}
