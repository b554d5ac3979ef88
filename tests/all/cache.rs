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
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("component-") && name.ends_with(".cwasm") {
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
    let reason = v["compile"]["cache"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("changed on disk"), "{v}");
    assert_eq!(
        state(&hello_json(&cache)),
        "hit",
        "rewritten after rejection"
    );

    // Truncate it.
    std::fs::write(&entry, b"TOKAC").expect("write");
    assert_eq!(state(&hello_json(&cache)), "rejected");

    // An entry from another cache (another key) is foreign: its record's
    // tag does not verify under this cache's key.
    let other = dir.path().join("other");
    hello_json(&other);
    let foreign = entries(&other).pop().expect("entry");
    std::fs::copy(&foreign, &entry).expect("copy");
    std::fs::copy(foreign.with_extension("auth"), entry.with_extension("auth")).expect("copy");
    let v = hello_json(&cache);
    assert_eq!(state(&v), "rejected");
    assert!(
        v["compile"]["cache"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("tag"),
        "{v}"
    );
    assert_eq!(state(&hello_json(&cache)), "hit");

    // An entry changed in place with its size and mtime kept: the ctime
    // gives it away.
    let meta = std::fs::metadata(&entry).expect("stat");
    let mut bytes = std::fs::read(&entry).expect("read");
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x55;
    std::fs::write(&entry, &bytes).expect("write");
    set_mtime(&entry, meta.modified().expect("mtime"));
    let v = hello_json(&cache);
    assert_eq!(state(&v), "rejected", "{v}");
    assert_eq!(state(&hello_json(&cache)), "hit");
}

fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
    let now = std::fs::metadata(path).expect("stat");
    assert_eq!(now.modified().expect("mtime"), mtime);
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// The index that spares a warm start from hashing the wasm trusts a file
/// only while its identity is unchanged: the same size and a restored mtime
/// do not fool it (a write moves the ctime), so the new code runs, and a
/// pinned manifest's pin is checked against the new bytes.
#[test]
fn a_replaced_wasm_of_the_same_size_and_mtime_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let wasm = dir.path().join("greet.wasm");
    std::fs::copy(plugin("hello"), &wasm).expect("copy");
    let manifest = dir.path().join("greet.yaml");
    let hello_yaml =
        std::fs::read_to_string(crate::harness::repo().join("manifests/hello.yaml")).expect("yaml");
    let pinned = hello_yaml.replace(
        "path: ../plugins/build/hello.wasm",
        &format!(
            "path: {}
    sha256: {}",
            wasm.display(),
            sha256(&wasm)
        ),
    );
    assert_ne!(pinned, hello_yaml);
    std::fs::write(&manifest, pinned).expect("write");
    // A record taken right after a file changed is not trusted (timestamps
    // are coarse); wait until this copy is old enough to be indexed.
    std::thread::sleep(std::time::Duration::from_millis(2100));

    let run = |target: &Path| {
        toka([
            "run",
            &target.display().to_string(),
            "--param",
            "name=Ada",
            "--json",
        ])
        .cache(Some(cache.clone()))
        .run()
    };
    let first = run(&manifest);
    first.assert_code(0);
    assert_eq!(first.json()["output"]["greeting"], "Hello, Ada!");
    let engine_dir = cache
        .read_dir()
        .expect("ls")
        .flatten()
        .find(|e| e.path().is_dir())
        .expect("an engine directory")
        .path();
    let records = std::fs::read_dir(engine_dir)
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("wasm-"))
        .count();
    assert_eq!(records, 1, "the wasm's digest is recorded");
    let warm = run(&manifest);
    warm.assert_code(0);
    assert_eq!(state(&warm.json()), "hit");

    // Same size, one byte of the greeting changed, mtime restored.
    let before = std::fs::metadata(&wasm).expect("stat");
    let mut bytes = std::fs::read(&wasm).expect("read");
    let at = bytes
        .windows(7)
        .position(|w| w == b"Hello, ")
        .expect("the greeting is in the wasm");
    bytes[at] = b'J';
    std::fs::write(&wasm, &bytes).expect("write");
    set_mtime(&wasm, before.modified().expect("mtime"));
    assert_eq!(std::fs::metadata(&wasm).expect("stat").len(), before.len());

    let pin = run(&manifest);
    assert_ne!(pin.code, 0, "{}", pin.stderr);
    assert_eq!(
        pin.json()["error"]["kind"],
        "hash-mismatch",
        "{}",
        pin.stdout
    );
    pin.assert_stdout_has("spec.executable.sha256");
    let swapped = run(&wasm);
    swapped.assert_code(0);
    assert_eq!(swapped.json()["output"]["greeting"], "Jello, Ada!");
    assert_eq!(state(&swapped.json()), "miss", "new code, compiled");
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
