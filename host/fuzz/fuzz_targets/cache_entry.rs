//! Compile-cache entries (`toka_runtime::engine::CompileCache`): an entry
//! the cache wrote, then changed on disk in a fuzz-chosen way, must never
//! be handed out for loading unless its bytes are the ones written.
//!
//! Two entries are made at start: one whose record is over 2 s old (so a
//! load trusts its stamp and maps it without reading it: the fast path) and
//! a second one to take files from. Each input rewrites one file: the
//! artifact of a fresh entry (`put` again first, so its record is recent and
//! the load reads the whole artifact), the record of a fresh entry, or the
//! record of the aged entry (its artifact untouched, so only the record's
//! tag stands between a forged record and the fast path). The file is
//! rewritten in place or renamed over, optionally first replaced by the
//! other entry's file, its length changed and bytes XORed at fuzz-chosen
//! offsets.
//!
//! Invariant: `get` hands out the entry exactly when every byte of the
//! artifact and the record is as the cache wrote it, and what it hands out
//! holds the payload written; otherwise it is `Miss::Rejected` (never
//! `Absent`: the files are there).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use toka_runtime::engine::{CompileCache, EntryKind, Miss};

const FRESH: &str = "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1";
const AGED: &str = "a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9";
const OTHER: &str = "0707070707070707070707070707070707070707070707070707070707070707";

struct Fixture {
    cache: CompileCache,
    payload: Vec<u8>,
    aged_record: Vec<u8>,
    other_artifact: Vec<u8>,
    other_record: Vec<u8>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn payload(seed: u8) -> Vec<u8> {
    (0..8192u32)
        .map(|i| (i.wrapping_mul(31) as u8) ^ seed)
        .collect()
}

/// The cache's layout: `component-DIGEST.cwasm` beside its record
/// `component-DIGEST.auth`.
fn artifact(cache: &CompileCache, digest: &str) -> PathBuf {
    cache.dir().join(format!("component-{digest}.cwasm"))
}

fn record(cache: &CompileCache, digest: &str) -> PathBuf {
    cache.dir().join(format!("component-{digest}.auth"))
}

fn start() -> Fixture {
    // Under the fuzz crate's target/ (ignored), made afresh by each process.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("cache-entry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let cache = CompileCache::open(&root, "fuzz").expect("a private cache directory");
    let written = payload(0);
    cache
        .put(EntryKind::Component, AGED, &written)
        .expect("aged entry written");
    cache
        .put(EntryKind::Component, OTHER, &payload(0x5a))
        .expect("other entry written");
    // Past the 2 s within which a record does not vouch for its stamp: the
    // first load checks the bytes in full and renews the record, which
    // from then on vouches (the fast path) and is not written again.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let load = |cache: &CompileCache| {
        drop(
            cache
                .get(EntryKind::Component, AGED)
                .unwrap_or_else(|e| panic!("the aged entry loads: {e:?}")),
        )
    };
    load(&cache);
    let read = |p: PathBuf| std::fs::read(p).expect("an entry file");
    let fixture = Fixture {
        aged_record: read(record(&cache, AGED)),
        other_artifact: read(artifact(&cache, OTHER)),
        other_record: read(record(&cache, OTHER)),
        cache,
        payload: written,
    };
    load(&fixture.cache);
    assert_eq!(
        read(record(&fixture.cache, AGED)),
        fixture.aged_record,
        "a vouching record is not rewritten on load"
    );
    fixture
}

fuzz_target!(init: { FIXTURE.get_or_init(start); }, |data: &[u8]| {
    let f = FIXTURE.get_or_init(start);
    let [how, len, edits @ ..] = data else {
        return;
    };
    let (digest, path, original, other) = match how & 3 {
        0 | 3 => {
            f.cache
                .put(EntryKind::Component, FRESH, &f.payload)
                .expect("fresh entry written");
            (FRESH, artifact(&f.cache, FRESH), f.payload.clone(), &f.other_artifact)
        }
        1 => {
            f.cache
                .put(EntryKind::Component, FRESH, &f.payload)
                .expect("fresh entry written");
            let path = record(&f.cache, FRESH);
            let original = std::fs::read(&path).expect("the fresh record");
            (FRESH, path, original, &f.other_record)
        }
        _ => (AGED, record(&f.cache, AGED), f.aged_record.clone(), &f.other_record),
    };
    let mut bytes = if how & 4 != 0 { other.clone() } else { original.clone() };
    let delta = i8::from_le_bytes([*len]);
    let new_len = bytes.len().saturating_add_signed(isize::from(delta));
    bytes.resize(new_len, 0);
    for edit in edits.chunks_exact(3) {
        if bytes.is_empty() {
            break;
        }
        let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % bytes.len();
        bytes[at] ^= edit[2];
    }
    if how & 8 != 0 {
        let tmp = path.with_extension("fuzz-tmp");
        std::fs::write(&tmp, &bytes).expect("a replacement written");
        std::fs::rename(&tmp, &path).expect("renamed over the entry's file");
    } else {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("the entry's file opened for writing");
        file.set_len(0).expect("truncated");
        file.write_all(&bytes).expect("rewritten in place");
    }
    let unchanged = bytes == original;
    match f.cache.get(EntryKind::Component, digest) {
        Ok(entry) => {
            assert!(unchanged, "a changed entry was handed out ({} bytes)", bytes.len());
            let mut file = entry.into_file();
            let mut loaded = Vec::new();
            file.rewind()
                .and_then(|()| file.read_to_end(&mut loaded))
                .expect("the entry's file reads");
            assert!(loaded == f.payload, "the entry handed out is not the payload written");
        }
        Err(Miss::Rejected(_)) => {
            assert!(!unchanged, "an entry as the cache wrote it was rejected");
        }
        Err(Miss::Absent) => panic!("an entry whose files exist was called absent"),
    }
    if digest == AGED {
        // Back as written, so the next input meets the fast path again. A
        // rejected record is never rewritten by `get`, and an unchanged one
        // that vouches is not either.
        std::fs::write(&path, &f.aged_record).expect("aged record restored");
    }
});
