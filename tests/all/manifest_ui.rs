//! Golden-file tests: each `tests/ui/invalid/<case>.yaml` is refused with
//! exactly the message in `<case>.err` (`$DIR` stands for the folder).
//! Run with `BLESS=1` to rewrite the `.err` files after an intended change.

use crate::harness::repo;
use toka_runtime::catalog;
use toka_spec::{directory, manifest};

#[test]
fn invalid_manifests_have_golden_messages() {
    let dir = repo().join("tests/ui/invalid");
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases = 0;
    let mut failures = Vec::new();
    for file in directory::list(&dir).expect("ls tests/ui/invalid").files {
        cases += 1;
        // The manifest, then the pin on the executable's bytes, as a tool is
        // loaded.
        let checked = manifest::load(&file)
            .map_err(|e| e.to_string())
            .and_then(|spec| catalog::read_executable(&spec).map_err(|e| e.to_string()));
        let message = match checked {
            Ok(_) => "(accepted: expected an error)".to_string(),
            Err(e) => e.replace(&dir.display().to_string(), "$DIR"),
        };
        let golden = file.with_extension("err");
        if bless {
            std::fs::write(&golden, format!("{message}\n")).expect("bless");
            continue;
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| format!("(no {} yet: run with BLESS=1)", golden.display()));
        if expected.trim_end() != message {
            failures.push(format!(
                "{}:\n  expected: {}\n  actual:   {message}",
                file.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(cases >= 12, "only {cases} golden cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn oversized_manifest_is_refused_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("huge.yaml");
    std::fs::write(&f, "# padding\n".repeat(40_000)).expect("write");
    let e = manifest::load(&f).expect_err("refused").to_string();
    assert!(
        e.contains("huge.yaml: the manifest is larger than 256KiB"),
        "{e}"
    );
}

#[test]
fn oversized_executable_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Sparse: takes no disk space.
    std::fs::File::create(dir.path().join("big.wasm"))
        .and_then(|f| f.set_len(manifest::MAX_EXECUTABLE_BYTES + 1))
        .expect("sparse file");
    let text = "metadata: { name: big, version: 1.0.0, description: big }\n\
                spec: { executable: { type: component, path: big.wasm } }\n";
    let e = manifest::parse(&dir.path().join("big.yaml"), text)
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("spec.executable.path") && e.contains("over the 512MiB limit"),
        "{e}"
    );
}

#[test]
fn bundled_manifests_are_valid() {
    for f in directory::list(&repo().join("manifests"))
        .expect("ls manifests")
        .files
    {
        let spec = manifest::load(&f).unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = catalog::read_executable(&spec) {
            panic!("{e}");
        }
    }
}
