//! The compile cache: a second run skips compilation; only entries this host
//! wrote and nobody changed are ever deserialized.

use crate::harness::{plugin, toka};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn hello_json(cache: &Path) -> serde_json::Value {
    let run = toka(["run", &plugin("hello"), "--param", "name=Ada", "--json"])
        .cache(Some(cache.to_path_buf()))
        .run();
    run.assert_code(0);
    let v = run.json();
    assert_eq!(v["output"]["greeting"], "Hello, Ada!");
    v
}

fn state(v: &serde_json::Value) -> String {
    v["compile"]["cache"]["state"]
        .as_str()
        .expect("state")
        .to_string()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for engine_dir in std::fs::read_dir(cache).expect("ls").flatten() {
        if engine_dir.path().is_dir() {
            for e in std::fs::read_dir(engine_dir.path()).expect("ls").flatten() {
                if e.file_name().to_string_lossy().starts_with("component-") {
                    found.push(e.path());
                }
            }
        }
    }
    found
}

#[test]
fn second_run_hits_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    assert_eq!(state(&hello_json(&cache)), "miss");
    let hit = hello_json(&cache);
    assert_eq!(state(&hit), "hit");
    assert_eq!(entries(&cache).len(), 1);
    let key = std::fs::metadata(cache.join("key")).expect("key");
    assert_eq!(key.permissions().mode() & 0o077, 0, "the key is private");
}

#[test]
fn corrupt_and_foreign_entries_are_recompiled_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    hello_json(&cache);
    let entry = entries(&cache).pop().expect("an entry");

    // Flip one byte of the compiled code.
    let mut bytes = std::fs::read(&entry).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&entry, &bytes).expect("write");
    let v = hello_json(&cache);
    assert_eq!(state(&v), "rejected", "{v}");
    assert_eq!(
        state(&hello_json(&cache)),
        "hit",
        "rewritten after rejection"
    );

    // Truncate it.
    std::fs::write(&entry, b"TOKAC").expect("write");
    assert_eq!(state(&hello_json(&cache)), "rejected");

    // An entry from another cache (another key) is foreign.
    let other = dir.path().join("other");
    hello_json(&other);
    let foreign = entries(&other).pop().expect("entry");
    std::fs::copy(&foreign, &entry).expect("copy");
    assert_eq!(state(&hello_json(&cache)), "rejected");
    assert_eq!(state(&hello_json(&cache)), "hit");
}

#[test]
fn unsafe_cache_directory_is_not_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).expect("mkdir");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let run = toka(["run", &plugin("hello"), "--param", "name=Ada", "--json"])
        .cache(Some(cache.clone()))
        .run();
    run.assert_code(0).assert_stderr_has("compile cache off");
    assert_eq!(state(&run.json()), "off");
    assert!(entries(&cache).is_empty());
}

#[test]
fn no_cache_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = toka([
        "run",
        &plugin("hello"),
        "--param",
        "name=Ada",
        "--json",
        "--no-cache",
    ])
    .cache(None)
    .env("XDG_CACHE_HOME", &dir.path().display().to_string())
    .run();
    run.assert_code(0);
    assert_eq!(state(&run.json()), "off");
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    // Without --no-cache the default location is $XDG_CACHE_HOME/toka.
    toka(["run", &plugin("hello"), "--param", "name=Ada"])
        .cache(None)
        .env("XDG_CACHE_HOME", &dir.path().display().to_string())
        .run()
        .assert_code(0);
    assert!(dir.path().join("toka/key").is_file());
}
