//! What token verification adds to a request, for docs/PERFORMANCE.md:
//!
//! - `verify/uncached/{authority,attenuated}`: a first verify, with the
//!   cache off: decode, parse, every signature (one per block), revocation
//!   check, the authority queries, one Datalog run per granted capability
//!   and one for `*`;
//! - `verify/cached`: a repeated verify, what every request after the first
//!   pays: hash the text, look it up, check the expiry;
//! - `scope/allows_tool/{cached,first}`: a remembered tool decision, and a
//!   first one (one Datalog run) on an attenuated token;
//! - `verifier/refresh/unchanged`: what the server's once-a-second refresh
//!   costs when no file changed (a directory listing and a few `stat`s).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use toka_auth::{Attenuation, IssueRequest, Verifier, attenuate, issue, keygen};
use toka_spec::manifest::Capability;

fn benches(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let keys = tmp.path().join("keys");
    keygen(&keys).expect("keygen");
    let authority = issue(
        &keys,
        &IssueRequest {
            capabilities: vec![Capability::NetworkAccess, Capability::FilesystemRead],
            ..IssueRequest::new(
                "bench",
                vec!["fs-read".into(), "web-fetch".into(), "sh".into()],
            )
        },
    )
    .expect("issue");
    let attenuated = attenuate(
        &authority,
        &Attenuation {
            tools: vec!["fs-read".into(), "web-fetch".into()],
            capabilities: Some(vec![Capability::NetworkAccess]),
            ttl: Some(std::time::Duration::from_secs(600)),
        },
    )
    .expect("attenuate");

    let uncached = Verifier::new(&keys, None, "toka")
        .expect("verifier")
        .with_cache_entries(0);
    let mut group = c.benchmark_group("verify");
    for (name, token) in [("authority", &authority), ("attenuated", &attenuated)] {
        group.bench_function(format!("uncached/{name}"), |b| {
            b.iter(|| black_box(uncached.verify(token).expect("verify")))
        });
    }
    let cached = Verifier::new(&keys, None, "toka").expect("verifier");
    cached.verify(&attenuated).expect("verify");
    group.bench_function("cached", |b| {
        b.iter(|| black_box(cached.verify(&attenuated).expect("verify")))
    });
    group.finish();

    let mut group = c.benchmark_group("scope");
    let scope = cached.verify(&attenuated).expect("verify");
    assert!(scope.allows_tool("fs-read"));
    group.bench_function("allows_tool/cached", |b| {
        b.iter(|| assert!(scope.allows_tool(black_box("fs-read"))))
    });
    group.bench_function("allows_tool/first", |b| {
        b.iter_batched(
            || uncached.verify(&attenuated).expect("verify"),
            |scope| assert!(scope.allows_tool("fs-read")),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();

    let revoked = tmp.path().join("revoked");
    std::fs::write(&revoked, "").expect("revocations");
    let refreshing = Verifier::new(&keys, Some(&revoked), "toka").expect("verifier");
    c.bench_function("verifier/refresh/unchanged", |b| {
        b.iter(|| assert!(!refreshing.refresh().expect("refresh")))
    });
}

criterion_group!(name = verify; config = Criterion::default().sample_size(100); targets = benches);
criterion_main!(verify);
