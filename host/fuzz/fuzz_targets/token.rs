//! Bearer tokens: `Verifier::verify` (and `inspect`, `attenuate`) on
//! arbitrary text, with a fixed key ring made once by `toka_auth::keygen`.
//!
//! The first byte picks a mode:
//! - 0: the rest is a bearer token: verify, inspect, attenuate it;
//! - 1: narrow the parent token with `attenuate`, choices read from the
//!   bytes (up to 4 times in a row), and verify each child;
//! - 2: the parent's decoded bytes with fuzz bytes spliced in, re-encoded,
//!   verified (a forged or damaged token);
//! - 3: the rest is Datalog, appended to the parent as a block by hand
//!   (what anyone holding a token can do without toka's `attenuate`).
//!
//! Invariants: no panic; any token that verifies is the parent or derived
//! from it and allows no more: every tool it allows the parent allows, its
//! capabilities are a subset, it does not expire later, its subject and key
//! are the parent's; an `attenuate` child allows only the tools and
//! capabilities it was narrowed to.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use toka_auth::{Attenuation, IssueRequest, Scope, Verifier};
use toka_spec::manifest::Capability;

/// Tool names the fuzzer picks from; the parent allows the first three.
const TOOLS: [&str; 6] = [
    "hello",
    "file-reader",
    "date-validator",
    "text-stats",
    "*",
    "x\"y",
];

struct Fixture {
    verifier: Verifier,
    parent: String,
    scope: Arc<Scope>,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep().join("keys");
        toka_auth::keygen(&dir).expect("keygen");
        let mut request = IssueRequest::new(
            "fuzz@example.com",
            TOOLS[..3].iter().map(|t| t.to_string()).collect(),
        );
        request.capabilities = vec![Capability::FilesystemRead, Capability::NetworkAccess];
        // Long enough for any fuzz run (an expired parent proves nothing).
        request.ttl = Some(Duration::from_secs(30 * 24 * 3600));
        let parent = toka_auth::issue(&dir, &request).expect("issue");
        // No cache: every verify checks signatures and runs the Datalog.
        let verifier = Verifier::new(&dir, None, toka_auth::DEFAULT_AUDIENCE)
            .expect("verifier")
            .with_cache_entries(0);
        let scope = verifier.verify(&parent).expect("the parent verifies");
        Fixture {
            verifier,
            parent,
            scope,
        }
    })
}

fn engine() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE
}

/// `child` allows nothing `parent` does not.
fn within(child: &Scope, parent: &Scope, how: &str) {
    assert!(
        child.capabilities().is_subset(parent.capabilities()),
        "{how}: capabilities {:?} exceed the parent's {:?}",
        child.capabilities(),
        parent.capabilities()
    );
    for t in TOOLS.iter().copied().chain(["other", ""]) {
        assert!(
            !child.allows_tool(t) || parent.allows_tool(t),
            "{how}: allows tool {t:?}, the parent does not"
        );
    }
    assert!(
        !child.allows_all_tools() || parent.allows_all_tools(),
        "{how}: all tools"
    );
    assert!(
        child.expires() <= parent.expires(),
        "{how}: expires later than its parent"
    );
    assert_eq!(child.subject(), parent.subject(), "{how}: subject changed");
    assert_eq!(child.key_id(), parent.key_id(), "{how}: key changed");
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(scope) = f.verifier.verify(&text) {
                within(&scope, &f.scope, "an arbitrary token");
            }
            let _ = toka_auth::inspect(&text);
            let _ = toka_auth::attenuate(
                &text,
                &Attenuation {
                    tools: vec!["hello".into()],
                    ..Attenuation::default()
                },
            );
        }
        1 => attenuations(f, rest),
        2 => {
            let Ok(mut bytes) = engine().decode(&f.parent) else {
                panic!("the parent is base64");
            };
            if rest.len() < 3 {
                return;
            }
            let at = usize::from(u16::from_le_bytes([rest[0], rest[1]])) % (bytes.len() + 1);
            let splice = &rest[2..];
            let end = (at + splice.len()).min(bytes.len());
            bytes.splice(at..end, splice.iter().copied());
            let text = engine().encode(&bytes);
            if let Ok(scope) = f.verifier.verify(&text) {
                within(&scope, &f.scope, "a damaged token");
            }
        }
        _ => {
            let Ok(code) = std::str::from_utf8(rest) else {
                return;
            };
            let Ok(block) = biscuit_auth::builder::BlockBuilder::new().code(code) else {
                return;
            };
            let unverified =
                biscuit_auth::UnverifiedBiscuit::from_base64(&f.parent).expect("the parent parses");
            let Ok(child) = unverified.append(block).and_then(|t| t.to_base64()) else {
                return;
            };
            if let Ok(scope) = f.verifier.verify(&child) {
                within(&scope, &f.scope, "a hand-made block");
            }
        }
    }
});

fn attenuations(f: &Fixture, mut bytes: &[u8]) {
    let mut token = f.parent.clone();
    let mut scope = f.scope.clone();
    for step in 0..4 {
        let [tools, caps, ttl, rest @ ..] = bytes else {
            return;
        };
        bytes = rest;
        let tools: Vec<String> = TOOLS
            .iter()
            .enumerate()
            .filter(|(i, _)| tools & (1 << i) != 0)
            .map(|(_, t)| t.to_string())
            .collect();
        let capabilities = (caps & 0x80 != 0).then(|| {
            Capability::ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| caps & (1 << i) != 0)
                .map(|(_, c)| *c)
                .collect::<Vec<_>>()
        });
        let ttl = (*ttl != 0).then(|| Duration::from_secs(u64::from(*ttl) * 60));
        let attenuation = Attenuation {
            tools: tools.clone(),
            capabilities: capabilities.clone(),
            ttl,
        };
        let Ok(child) = toka_auth::attenuate(&token, &attenuation) else {
            return;
        };
        let how = format!("attenuation {step} {attenuation:?}");
        let child_scope = f
            .verifier
            .verify(&child)
            .unwrap_or_else(|e| panic!("{how}: a fresh attenuation does not verify: {e}"));
        within(&child_scope, &scope, &how);
        within(&child_scope, &f.scope, &how);
        if !tools.is_empty() {
            let kept: BTreeSet<&str> = tools.iter().map(String::as_str).collect();
            for t in TOOLS {
                assert!(
                    !child_scope.allows_tool(t) || kept.contains(t),
                    "{how}: allows {t:?}, not among the tools kept"
                );
            }
        }
        if let Some(c) = &capabilities {
            let kept: BTreeSet<Capability> = c.iter().copied().collect();
            assert!(
                child_scope.capabilities().is_subset(&kept),
                "{how}: capabilities"
            );
        }
        token = child;
        scope = child_scope;
    }
}
