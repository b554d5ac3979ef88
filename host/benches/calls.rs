//! Benchmarks of the paths `serve` takes per request and per reload, with a
//! plain-wasmtime baseline measured in the same run:
//!
//! - `call/toka/{noop,hello}`: one call as `serve` makes it: policy, a fresh
//!   sandbox (WASI context from the policy, limiter, fuel, deadline, output
//!   budget), a fresh instance from the linked component (pooling
//!   allocator), the call, the outcome;
//! - `call/wasmtime-only/{noop,hello}`: a fresh store and instance of the same linked
//!   component with an empty WASI context, and the call;
//! - `swap/from-cache`: what a hot swap costs once the new version is
//!   compiled: load it from the authenticated cache, link it, swap the table.
//!
//! Needs the plugins: `scripts/build-plugins.sh`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use toka_host::engine::{EngineOptions, TokaEngine};
use toka_host::invoke::{self, Plugin};
use toka_host::policy::{self, Grants};
use toka_host::sandbox::{self, EventSink, SandboxIo, Sink, State, Stdin};

fn plugin_bytes(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../plugins/build/{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|_| panic!("{} missing: run scripts/build-plugins.sh", path.display()))
}

fn benches(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("tempdir");
    let engine = TokaEngine::new(&EngineOptions {
        cache_dir: Some(cache.path().join("cache")),
        pooling: Some(64),
        ..EngineOptions::default()
    })
    .expect("engine");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let events: EventSink = Arc::new(|_, _| {});
    let policy = policy::resolve("tool", None, &Grants::default(), |_| None).expect("policy");
    let mut group = c.benchmark_group("call");
    // `noop` is the trivial tool (answers `{}`); `hello` parses and formats
    // JSON and logs a line through the host.
    for (name, input) in [("noop", "{}"), ("hello", r#"{"name":"Ada"}"#)] {
        let bytes = plugin_bytes(name);
        let plugin =
            Plugin::new(&engine, name, engine.load(&bytes).expect("load"), None).expect("plugin");
        group.bench_function(format!("toka/{name}"), |b| {
            b.iter(|| {
                let io = SandboxIo {
                    args: vec![name.into()],
                    stdin: Stdin::Empty,
                    stdout: Sink::capture(policy.limits.output),
                    stderr: Sink::capture(policy.limits.output),
                    events: events.clone(),
                };
                let outcome = rt.block_on(invoke::invoke(&engine, &plugin, &policy, io, input));
                assert!(outcome.result.is_ok());
            })
        });

        // Baseline: the same component, linked once, a bare store per call.
        let linker = sandbox::component_linker(&engine).expect("linker");
        let toka_host::engine::Compiled::Component(component) = &plugin.loaded.compiled else {
            panic!("{name} is a component")
        };
        let pre = sandbox::ToolBindingsPre::new(linker.instantiate_pre(component).expect("pre"))
            .expect("bindings");
        group.bench_function(format!("wasmtime-only/{name}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let budget = sandbox::OutputBudget::new(1 << 20);
                    let state = State::new(
                        wasmtime_wasi::WasiCtx::builder().build(),
                        &policy,
                        &budget,
                        &events,
                        name,
                    );
                    let mut store = wasmtime::Store::new(engine.engine(), state);
                    store.set_fuel(u64::MAX).expect("fuel");
                    store.set_epoch_deadline(1 << 40);
                    let tool = pre
                        .instantiate_async(&mut store)
                        .await
                        .expect("instantiate");
                    let out = tool
                        .toka_plugin_handler()
                        .call_invoke(&mut store, input)
                        .await
                        .expect("call");
                    assert!(out.is_ok());
                })
            })
        });
    }
    group.finish();

    let bytes = plugin_bytes("hello");
    // Hot swap from a compiled artifact: cache hit, link, swap.
    let table: RwLock<Arc<BTreeMap<String, Arc<Plugin>>>> = RwLock::new(Arc::new(BTreeMap::new()));
    c.bench_function("swap/from-cache", |b| {
        b.iter(|| {
            let loaded = engine.load(&bytes).expect("load");
            assert_eq!(loaded.cache, toka_host::engine::CacheStatus::Hit);
            let plugin = Plugin::new(&engine, "hello", loaded, None).expect("plugin");
            let mut next = (**table.read().expect("read")).clone();
            next.insert("hello".into(), Arc::new(plugin));
            *table.write().expect("write") = Arc::new(next);
        })
    });
}

criterion_group!(name = calls; config = Criterion::default().sample_size(200); targets = benches);
criterion_main!(calls);
