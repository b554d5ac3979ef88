//! The token rules end to end, with real key files in temporary
//! directories: issue, attenuate, inspect, revoke, verify, refresh.

use super::*;
use crate::keys::keygen;
use crate::{
    Attenuation, DEFAULT_TTL, IssueRequest, MAX_BLOCKS, attenuate, inspect, issue, revoke,
};
use biscuit_auth::{BlockBuilder, UnverifiedBiscuit};
use std::fs;
use toka_spec::manifest::Capability::{self, *};
use toka_spec::outcome::ErrorKind;

struct Fixture {
    _tmp: tempfile::TempDir,
    keys: PathBuf,
    revoked: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("keys");
        keygen(&keys).unwrap();
        let revoked = tmp.path().join("revoked");
        fs::write(&revoked, "").unwrap();
        Fixture {
            keys,
            revoked,
            _tmp: tmp,
        }
    }

    fn issue(&self, tools: &[&str], capabilities: &[Capability]) -> String {
        issue(
            &self.keys,
            &IssueRequest {
                capabilities: capabilities.to_vec(),
                ..IssueRequest::new("alice", tools.iter().map(|t| t.to_string()).collect())
            },
        )
        .unwrap()
    }

    fn verifier(&self) -> Verifier {
        Verifier::new(&self.keys, Some(&self.revoked), "toka").unwrap()
    }
}

fn narrow(token: &str, tools: &[&str], capabilities: Option<&[Capability]>) -> String {
    attenuate(
        token,
        &Attenuation {
            tools: tools.iter().map(|t| t.to_string()).collect(),
            capabilities: capabilities.map(<[_]>::to_vec),
            ttl: None,
        },
    )
    .unwrap()
}

/// Appends a hand-written block, as someone holding the token could.
fn append(token: &str, datalog: &str) -> String {
    UnverifiedBiscuit::from_base64(token)
        .unwrap()
        .append(BlockBuilder::new().code(datalog).unwrap())
        .unwrap()
        .to_base64()
        .unwrap()
}

fn caps(scope: &Scope) -> Vec<Capability> {
    scope.capabilities().iter().copied().collect()
}

#[test]
fn issue_then_verify_round_trip() {
    let f = Fixture::new();
    let before = SystemTime::now();
    let token = f.issue(&["fs-read", "web-fetch"], &[NetworkAccess, FilesystemRead]);
    let scope = f.verifier().verify(&token).unwrap();
    assert_eq!(scope.subject(), "alice");
    assert_eq!(scope.key_id(), 1);
    assert_eq!(caps(&scope), [FilesystemRead, NetworkAccess]);
    assert_eq!(scope.token_id().len(), 16);
    assert_eq!(scope.token_id(), inspect(&token).unwrap().token_id);
    let ttl = scope.expires().duration_since(before).unwrap();
    // Whole seconds: up to a second less, and `before` is a little early.
    let second = Duration::from_secs(1);
    assert!(
        ttl < DEFAULT_TTL + second && ttl > DEFAULT_TTL - 2 * second,
        "{ttl:?}"
    );
    // A bearer header value often ends with a newline.
    assert!(f.verifier().verify(&format!("{token}\n")).is_ok());
}

#[test]
fn a_scoped_token_allows_its_tools_and_no_other() {
    let f = Fixture::new();
    let scope = f.verifier().verify(&f.issue(&["fs-read"], &[])).unwrap();
    assert!(scope.allows_tool("fs-read"));
    assert!(!scope.allows_tool("sh"));
    assert!(!scope.allows_tool("*"));
    assert!(!scope.allows_all_tools());
    assert!(scope.capabilities().is_empty());
    // Asked again: the remembered answers.
    assert!(scope.allows_tool("fs-read") && !scope.allows_tool("sh"));
}

#[test]
fn star_allows_every_tool_and_operator_endpoints() {
    let f = Fixture::new();
    let v = f.verifier();
    let all = f.issue(&["*"], &[]);
    let scope = v.verify(&all).unwrap();
    assert!(scope.allows_tool("anything") && scope.allows_tool("sh"));
    assert!(scope.allows_all_tools());
    // Narrowing capabilities or time leaves every tool; narrowing tools
    // does not, even to a long list.
    let no_caps = narrow(&all, &[], Some(&[]));
    assert!(v.verify(&no_caps).unwrap().allows_all_tools());
    let listed = narrow(&all, &["a", "b", "c"], None);
    let scope = v.verify(&listed).unwrap();
    assert!(scope.allows_tool("b") && !scope.allows_tool("d"));
    assert!(!scope.allows_all_tools());
}

#[test]
fn capabilities_intersect_across_attenuations() {
    let f = Fixture::new();
    let v = f.verifier();
    let t0 = f.issue(&["*"], &[FilesystemRead, FilesystemWrite, NetworkAccess]);
    let t1 = narrow(&t0, &[], Some(&[FilesystemRead, NetworkAccess]));
    let t2 = narrow(&t1, &[], Some(&[NetworkAccess]));
    assert_eq!(
        caps(&v.verify(&t0).unwrap()),
        [FilesystemRead, FilesystemWrite, NetworkAccess]
    );
    assert_eq!(
        caps(&v.verify(&t1).unwrap()),
        [FilesystemRead, NetworkAccess]
    );
    assert_eq!(caps(&v.verify(&t2).unwrap()), [NetworkAccess]);
    // A hand-written block listing more cannot bring any back.
    let t3 = append(
        &t2,
        r#"reject if req_cap($c), !{"filesystem-read", "network-access"}.contains($c);"#,
    );
    assert_eq!(caps(&v.verify(&t3).unwrap()), [NetworkAccess]);
    let none = narrow(&t1, &[], Some(&[]));
    assert!(v.verify(&none).unwrap().capabilities().is_empty());
}

#[test]
fn attenuation_narrows_tools_capabilities_and_ttl() {
    let f = Fixture::new();
    let v = f.verifier();
    let t0 = f.issue(
        &["fs-read", "web-fetch", "sh"],
        &[NetworkAccess, ProcessExecution],
    );
    let t1 = attenuate(
        &t0,
        &Attenuation {
            tools: vec!["fs-read".into(), "web-fetch".into()],
            capabilities: Some(vec![NetworkAccess]),
            ttl: Some(Duration::from_secs(600)),
        },
    )
    .unwrap();
    let scope = v.verify(&t1).unwrap();
    assert!(scope.allows_tool("fs-read") && scope.allows_tool("web-fetch"));
    assert!(!scope.allows_tool("sh"));
    assert_eq!(caps(&scope), [NetworkAccess]);
    let left = scope.expires().duration_since(SystemTime::now()).unwrap();
    assert!(
        left <= Duration::from_secs(600) && left > Duration::from_secs(590),
        "{left:?}"
    );
    // Narrowing again intersects.
    let t2 = narrow(&t1, &["web-fetch"], None);
    let scope = v.verify(&t2).unwrap();
    assert!(scope.allows_tool("web-fetch") && !scope.allows_tool("fs-read"));
    // The parent is untouched.
    assert!(v.verify(&t0).unwrap().allows_tool("sh"));
}

#[test]
fn tools_and_capabilities_are_checked_independently() {
    let f = Fixture::new();
    let v = f.verifier();
    let t0 = f.issue(&["fs-read", "sh"], &[FilesystemRead, ProcessExecution]);
    // No capabilities left: tools still answer by their own narrowing.
    let scope = v.verify(&narrow(&t0, &[], Some(&[]))).unwrap();
    assert!(scope.allows_tool("fs-read") && scope.allows_tool("sh"));
    assert!(scope.capabilities().is_empty());
    // One tool left: every capability is still there.
    let scope = v.verify(&narrow(&t0, &["fs-read"], None)).unwrap();
    assert!(!scope.allows_tool("sh"));
    assert_eq!(caps(&scope), [FilesystemRead, ProcessExecution]);
}

#[test]
fn hand_written_blocks_never_widen() {
    let f = Fixture::new();
    let v = f.verifier();
    let t0 = f.issue(&["fs-read"], &[FilesystemRead]);
    let issued = v.verify(&t0).unwrap().expires();
    let later = "2100-01-01T00:00:00Z";
    let hostile = [
        r#"tool("*"); tool("sh");"#.to_string(),
        r#"grant("process-execution"); grant("network-access");"#.to_string(),
        format!("expires({later}); check if time($now), $now < {later};"),
        r#"tool($t) <- req_tool($t); grant($c) <- req_cap($c);"#.to_string(),
        r#"audience("toka"); subject("root"); req_tool("sh");"#.to_string(),
        r#"check if true; reject if false;"#.to_string(),
    ];
    for datalog in &hostile {
        for base in [
            t0.clone(),
            narrow(&t0, &["fs-read"], Some(&[FilesystemRead])),
        ] {
            let scope = v.verify(&append(&base, datalog)).unwrap();
            assert!(scope.allows_tool("fs-read"), "{datalog}");
            assert!(!scope.allows_tool("sh"), "{datalog}");
            assert!(
                !scope.allows_tool("*") && !scope.allows_all_tools(),
                "{datalog}"
            );
            assert_eq!(caps(&scope), [FilesystemRead], "{datalog}");
            assert_eq!(scope.expires(), issued, "{datalog}");
            assert_eq!(scope.subject(), "alice", "{datalog}");
        }
    }
    // A block for another audience narrows nothing either: the audience is
    // the authority's.
    let elsewhere = append(&t0, r#"audience("other");"#);
    assert!(v.verify(&elsewhere).is_ok());
    // Hostile blocks do narrow when they say so.
    let shut = append(&t0, r#"check if false;"#);
    let scope = v.verify(&shut).unwrap();
    assert!(!scope.allows_tool("fs-read") && scope.capabilities().is_empty());
}

#[test]
fn attenuate_refuses_what_would_not_narrow() {
    let f = Fixture::new();
    let t0 = f.issue(&["fs-read", "sh"], &[FilesystemRead]);
    let att = |tools: &[&str], capabilities: Option<Vec<Capability>>, ttl: Option<Duration>| {
        attenuate(
            &t0,
            &Attenuation {
                tools: tools.iter().map(|t| t.to_string()).collect(),
                capabilities,
                ttl,
            },
        )
        .unwrap_err()
    };
    let e = att(&["web-fetch"], None, None);
    assert!(
        matches!(&e, AuthError::NotInToken { field: "tool", value, .. } if value == "web-fetch"),
        "{e}"
    );
    assert!(e.to_string().contains("fs-read, sh"), "{e}");
    let e = att(&[], Some(vec![NetworkAccess]), None);
    assert!(
        matches!(
            e,
            AuthError::NotInToken {
                field: "capability",
                ..
            }
        ),
        "{e}"
    );
    let e = att(&[], None, Some(Duration::from_secs(7200)));
    assert!(matches!(e, AuthError::LaterExpiry { .. }), "{e}");
    assert!(matches!(att(&["*"], None, None), AuthError::BadName { .. }));
    assert!(matches!(att(&[], None, None), AuthError::NothingToNarrow));
    assert_eq!(att(&[], None, None).kind(), ErrorKind::InvalidInput);
}

/// A token signed like `issue` does, with any expiry (the past included).
fn issue_expiring(f: &Fixture, at: SystemTime) -> String {
    let (id, signer) = crate::keys::signer(&f.keys).unwrap();
    let tools = BTreeSet::from(["fs-read".to_string()]);
    datalog::authority(
        "alice",
        "toka",
        crate::time::whole_seconds(at),
        &tools,
        &BTreeSet::new(),
    )
    .unwrap()
    .root_key_id(id)
    .build(&signer)
    .unwrap()
    .to_base64()
    .unwrap()
}

#[test]
fn an_expired_token_is_refused() {
    let f = Fixture::new();
    let v = f.verifier();
    let past = SystemTime::now() - Duration::from_secs(10);
    let e = v.verify(&issue_expiring(&f, past)).unwrap_err();
    assert!(
        matches!(e, AuthError::Expired { at } if at == crate::time::whole_seconds(past)),
        "{e}"
    );
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    // An attenuation whose own expiry has passed ends the token too.
    let t0 = f.issue(&["fs-read"], &[]);
    let block = datalog::attenuation(None, None, Some(crate::time::whole_seconds(past))).unwrap();
    let t1 = UnverifiedBiscuit::from_base64(&t0)
        .unwrap()
        .append(block)
        .unwrap();
    let e = v.verify(&t1.to_base64().unwrap()).unwrap_err();
    assert!(matches!(e, AuthError::Expired { .. }), "{e}");
    assert!(v.verify(&t0).is_ok());
}

#[test]
fn expiry_is_checked_again_on_every_cached_hit() {
    let f = Fixture::new();
    let v = f.verifier();
    let soon = SystemTime::now() + Duration::from_secs(1);
    let token = issue_expiring(&f, soon);
    let scope = v.verify(&token).unwrap();
    assert!(scope.allows_tool("fs-read"));
    while SystemTime::now() < scope.expires() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(matches!(v.verify(&token), Err(AuthError::Expired { .. })));
    assert!(!scope.allows_tool("fs-read"), "a held scope expires too");
}

#[test]
fn a_revoked_token_and_its_children_are_refused_but_not_its_parent_or_siblings() {
    let f = Fixture::new();
    let parent = f.issue(&["*"], &[NetworkAccess]);
    let token = narrow(&parent, &["fs-read", "sh"], None);
    let child = narrow(&token, &["fs-read"], None);
    let sibling = narrow(&parent, &["sh"], None);
    let ids = revoke(&token, &f.revoked).unwrap();
    assert_eq!(ids, [inspect(&token).unwrap().revocation_ids[1].clone()]);
    let v = f.verifier();
    for revoked in [&token, &child] {
        let e = v.verify(revoked).unwrap_err();
        assert!(matches!(e, AuthError::Revoked { .. }), "{e}");
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }
    assert!(v.verify(&parent).is_ok());
    assert!(v.verify(&sibling).is_ok());
}

#[test]
fn revoke_creates_the_file_and_is_idempotent() {
    let f = Fixture::new();
    let token = f.issue(&["fs-read"], &[]);
    let file = f.revoked.with_file_name("new-list");
    let first = revoke(&token, &file).unwrap();
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(revoke(&token, &file).unwrap(), first);
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        text,
        "nothing appended twice"
    );
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 1);
    assert!(text.contains("\"alice\""), "{text}");
    assert!(
        !text.contains(&token[..40]),
        "the token itself is not written"
    );
    // A file without a final newline gets one before the next id.
    fs::write(&file, text.trim_end()).unwrap();
    revoke(&f.issue(&["sh"], &[]), &file).unwrap();
    let v = Verifier::new(&f.keys, Some(&file), "toka").unwrap();
    assert!(matches!(v.verify(&token), Err(AuthError::Revoked { .. })));
}

#[test]
fn a_tampered_token_is_refused() {
    let f = Fixture::new();
    let v = f.verifier().with_cache_entries(0);
    let token = narrow(&f.issue(&["fs-read"], &[NetworkAccess]), &["fs-read"], None);
    let step = token.len() / 40;
    for at in (0..token.len() - 2).step_by(step.max(1)) {
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        let e = v.verify(&tampered).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "byte {at}: {e}");
        assert!(!e.to_string().contains(&tampered[..20]), "{e}");
    }
}

#[test]
fn a_token_signed_by_a_key_not_in_the_directory_is_refused() {
    let f = Fixture::new();
    let other = Fixture::new();
    // Same key id, another key: the signature fails.
    let e = f.verifier().verify(&other.issue(&["*"], &[])).unwrap_err();
    assert!(matches!(e, AuthError::BadSignature), "{e}");
    // A key id the directory does not have: named.
    keygen(&other.keys).unwrap();
    let e = f.verifier().verify(&other.issue(&["*"], &[])).unwrap_err();
    assert!(matches!(e, AuthError::UnknownKey { id: 2 }), "{e}");
    assert!(e.to_string().contains("key 2"), "{e}");
}

#[test]
fn key_rotation_old_and_new_tokens_verify_until_the_old_key_is_removed() {
    let f = Fixture::new();
    let old = f.issue(&["fs-read"], &[]);
    keygen(&f.keys).unwrap();
    let new = f.issue(&["fs-read"], &[]);
    assert_eq!(
        inspect(&new).unwrap().key_id,
        Some(2),
        "the newest key signs"
    );
    let v = f.verifier();
    assert_eq!(v.verify(&old).unwrap().key_id(), 1);
    assert_eq!(v.verify(&new).unwrap().key_id(), 2);
    assert!(!v.refresh().unwrap(), "nothing changed yet");
    fs::remove_file(f.keys.join("1.public")).unwrap();
    fs::remove_file(f.keys.join("1.private")).unwrap();
    assert!(v.refresh().unwrap());
    // The cached scope of the old token is gone with its key.
    assert!(matches!(
        v.verify(&old),
        Err(AuthError::UnknownKey { id: 1 })
    ));
    assert!(v.verify(&new).is_ok());
    assert!(
        f.issue(&["sh"], &[]).len() > 100,
        "issue still works with key 2"
    );
}

#[test]
fn a_verifier_needs_only_the_public_keys() {
    let f = Fixture::new();
    let token = f.issue(&["fs-read"], &[]);
    let public_only = f.keys.with_file_name("mounted");
    fs::create_dir(&public_only).unwrap();
    fs::copy(f.keys.join("1.public"), public_only.join("1.public")).unwrap();
    let v = Verifier::new(&public_only, None, "toka").unwrap();
    assert!(v.verify(&token).unwrap().allows_tool("fs-read"));
    let empty = f.keys.with_file_name("empty");
    fs::create_dir(&empty).unwrap();
    assert!(matches!(
        Verifier::new(&empty, None, "toka"),
        Err(AuthError::NoKeys { .. })
    ));
}

#[test]
fn refresh_picks_up_a_new_revocation_line() {
    let f = Fixture::new();
    let v = f.verifier();
    let token = f.issue(&["fs-read"], &[]);
    assert!(v.verify(&token).is_ok());
    revoke(&token, &f.revoked).unwrap();
    assert!(v.verify(&token).is_ok(), "cached until refresh");
    assert!(v.refresh().unwrap());
    assert!(matches!(v.verify(&token), Err(AuthError::Revoked { .. })));
    assert!(!v.refresh().unwrap());
}

#[test]
fn refresh_keeps_the_previous_state_when_a_file_is_bad() {
    let f = Fixture::new();
    let v = f.verifier();
    let revoked = f.issue(&["fs-read"], &[]);
    let fine = f.issue(&["sh"], &[]);
    revoke(&revoked, &f.revoked).unwrap();
    assert!(v.refresh().unwrap());
    let good = fs::read_to_string(&f.revoked).unwrap();
    fs::write(&f.revoked, format!("{good}not hex\n")).unwrap();
    let e = v.refresh().unwrap_err();
    assert!(
        matches!(e, AuthError::RevocationFile { line: Some(_), .. }),
        "{e}"
    );
    assert!(matches!(v.verify(&revoked), Err(AuthError::Revoked { .. })));
    fs::remove_file(&f.revoked).unwrap();
    assert!(
        v.refresh().is_err(),
        "a vanished list is an error, not an empty one"
    );
    assert!(matches!(v.verify(&revoked), Err(AuthError::Revoked { .. })));
    assert!(v.verify(&fine).is_ok());
    fs::write(&f.revoked, &good).unwrap();
    fs::write(f.keys.join("9.public"), "garbage\n").unwrap();
    assert!(matches!(v.refresh(), Err(AuthError::KeyFile { .. })));
    assert!(v.verify(&fine).is_ok());
}

#[test]
fn oversized_tokens_and_too_many_blocks_are_refused_before_parsing() {
    let f = Fixture::new();
    let v = f.verifier();
    let e = v.verify(&"A".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err();
    assert!(matches!(e, AuthError::TooLarge { .. }), "{e}");
    assert!(matches!(v.verify(""), Err(AuthError::Missing)));
    let mut token = f.issue(&["*"], &[]);
    for _ in 1..MAX_BLOCKS {
        token = narrow(&token, &[], Some(&[]));
    }
    assert!(v.verify(&token).is_ok(), "{MAX_BLOCKS} blocks are fine");
    let e = attenuate(
        &token,
        &Attenuation {
            capabilities: Some(vec![]),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, AuthError::TooManyBlocks { .. }), "{e}");
    let over = append(&token, "check if true;");
    assert!(
        over.len() <= MAX_TOKEN_BYTES,
        "the block count, not the size, refuses it"
    );
    let e = v.verify(&over).unwrap_err();
    assert!(
        matches!(e, AuthError::TooManyBlocks { count, .. } if count == MAX_BLOCKS + 1),
        "{e}"
    );
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let f = Fixture::new();
    let token = issue(
        &f.keys,
        &IssueRequest {
            audience: "staging".into(),
            ..IssueRequest::new("alice", vec!["*".into()])
        },
    )
    .unwrap();
    let e = f.verifier().verify(&token).unwrap_err();
    assert!(
        matches!(&e, AuthError::WrongAudience { expected, found } if expected == "toka" && found == "staging"),
        "{e}"
    );
    assert!(
        Verifier::new(&f.keys, None, "staging")
            .unwrap()
            .verify(&token)
            .is_ok()
    );
}

#[test]
fn a_token_without_a_key_id_is_refused() {
    let f = Fixture::new();
    let (_, signer) = crate::keys::signer(&f.keys).unwrap();
    let token = biscuit_auth::Biscuit::builder()
        .code(r#"subject("x"); audience("toka"); expires(2100-01-01T00:00:00Z); tool("*");"#)
        .unwrap()
        .build(&signer)
        .unwrap()
        .to_base64()
        .unwrap();
    let e = f.verifier().verify(&token).unwrap_err();
    assert!(matches!(e, AuthError::Malformed { .. }), "{e}");
}

#[test]
fn a_block_that_exhausts_the_run_limits_is_refused_and_not_cached() {
    let f = Fixture::new();
    let v = f.verifier();
    let facts: String = (0..40).map(|i| format!("a({i});")).collect();
    let token = append(
        &f.issue(&["*"], &[]),
        &format!("{facts} p($x, $y) <- a($x), a($y);"),
    );
    let e = v.verify(&token).unwrap_err();
    assert!(matches!(e, AuthError::RunLimit { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[test]
fn a_repeated_verify_is_answered_from_the_cache() {
    let f = Fixture::new();
    let token = f.issue(&["fs-read"], &[]);
    let v = f.verifier();
    let a = v.verify(&token).unwrap();
    assert!(Arc::ptr_eq(&a, &v.verify(&token).unwrap()));
    let uncached = f.verifier().with_cache_entries(0);
    let b = uncached.verify(&token).unwrap();
    assert!(!Arc::ptr_eq(&b, &uncached.verify(&token).unwrap()));
    let v = f.verifier().with_cache_entries(2);
    let tokens: Vec<String> = (0..5).map(|_| f.issue(&["fs-read"], &[])).collect();
    for t in &tokens {
        v.verify(t).unwrap();
    }
    assert!(v.read().cache.len() <= 2);
}

#[test]
fn inspect_shows_the_fields_without_keys() {
    let f = Fixture::new();
    let t0 = f.issue(&["fs-read", "sh"], &[FilesystemRead, ProcessExecution]);
    let t1 = attenuate(
        &t0,
        &Attenuation {
            tools: vec!["fs-read".into()],
            capabilities: Some(vec![FilesystemRead]),
            ttl: Some(Duration::from_secs(60)),
        },
    )
    .unwrap();
    let info = inspect(&t1).unwrap();
    assert!(!info.verified);
    assert_eq!(
        (info.subject.as_str(), info.audience.as_str()),
        ("alice", "toka")
    );
    assert_eq!(info.key_id, Some(1));
    assert_eq!(info.tools, ["fs-read"]);
    assert_eq!(info.capabilities, [FilesystemRead]);
    assert_eq!(info.issued.tools, ["fs-read", "sh"]);
    assert_eq!(info.issued.capabilities, [FilesystemRead, ProcessExecution]);
    assert!(info.issued.other.is_empty(), "{:?}", info.issued.other);
    assert_eq!(info.revocation_ids.len(), 2);
    assert_eq!(info.revocation_ids[1][..16], info.token_id);
    let [n] = info.attenuations.as_slice() else {
        panic!("{:?}", info.attenuations)
    };
    assert_eq!(n.tools.as_deref(), Some(&["fs-read".to_string()][..]));
    assert_eq!(n.capabilities.as_deref(), Some(&[FilesystemRead][..]));
    assert_eq!(n.expires.as_ref(), Some(&info.expires));
    assert!(info.expires.unix < info.issued.expires.unix);
    assert!(n.other.is_empty(), "{:?}", n.other);
    let scope = f.verifier().verify(&t1).unwrap();
    assert_eq!(info.expires.unix, crate::time::unix(scope.expires()));
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["verified"], false);
    assert_eq!(json["capabilities"][0], "filesystem-read");
    assert!(json["expires"]["rfc3339"].as_str().unwrap().ends_with('Z'));
    // A hand-written statement is shown as such; two narrowings in one
    // block both count.
    let t2 = append(
        &t1,
        r#"check if false; reject if req_tool($t), !{"fs-read", "sh"}.contains($t);
           reject if req_tool($t), !{"sh"}.contains($t);"#,
    );
    let info = inspect(&t2).unwrap();
    assert_eq!(info.attenuations[1].other, ["check if false;"]);
    assert_eq!(
        info.attenuations[1].tools.as_deref(),
        Some(&["sh".to_string()][..])
    );
    assert!(info.tools.is_empty(), "{:?}", info.tools);
}

#[test]
fn nothing_shows_the_token_or_a_key() {
    let f = Fixture::new();
    let token = f.issue(&["fs-read"], &[]);
    let v = f.verifier();
    let scope = v.verify(&token).unwrap();
    let private = fs::read_to_string(f.keys.join("1.private")).unwrap();
    for shown in [format!("{scope:?}"), format!("{v:?}")] {
        assert!(!shown.contains(&token[..24]), "{shown}");
        assert!(!shown.contains(private.trim()), "{shown}");
    }
}

#[test]
fn verifiers_and_scopes_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Verifier>();
    shared::<Scope>();
}
