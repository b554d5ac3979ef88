//! Benchmarks of the paths `serve` takes per request and per reload, with a
//! plain-wasmtime baseline measured in the same run:
//!
//! - `call/toka/{noop,hello}`: one call as `serve` makes it, through the one
//!   call path: input check, policy, a fresh sandbox (WASI context from the
//!   policy, limiter, fuel, deadline, output budget), a fresh instance from
//!   the linked component (pooling allocator), the call, the outcome with
//!   its logs;
//! - `call/wasmtime-only/{noop,hello}`: a fresh store and instance of the same linked
//!   component with an empty WASI context, and the call;
//! - `swap/from-cache`: what a hot swap costs once the new version is
//!   compiled: load it from the authenticated cache, link it, swap it into
//!   the live catalog's table.
//!
//! Needs the plugins: `scripts/build-plugins.sh`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::PathBuf;
use std::sync::Arc;
use toka_runtime::call::{CallCtx, Caller, Runtime};
use toka_runtime::catalog::{self, Code, LiveCatalog, Tool};
use toka_runtime::engine::{CacheStatus, Compiled, EngineOptions, TokaEngine};
use toka_runtime::events;
use toka_runtime::sandbox::{self, SandboxIo, State};
use toka_spec::policy::{DEFAULT_LIMITS, Grants};

fn plugin_path(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../../plugins/build/{name}.wasm"));
    assert!(
        path.is_file(),
        "{} missing: run scripts/build-plugins.sh",
        path.display()
    );
    path
}

fn benches(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(
        TokaEngine::new(&EngineOptions {
            cache_dir: Some(cache.path().join("cache")),
            pooling: Some(64),
            ..EngineOptions::default()
        })
        .expect("engine"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let live = Arc::new(LiveCatalog::new(
        engine.clone(),
        cache.path().to_path_buf(),
        Grants::default(),
    ));
    let runtime = Arc::new(Runtime {
        engine: engine.clone(),
        catalog: live.clone(),
        grants: Grants::default(),
        shim: Default::default(),
        llm: None,
        audit: None,
    });
    let mut group = c.benchmark_group("call");
    // `noop` is the trivial tool (answers `{}`); `hello` parses and formats
    // JSON and logs a line through the host.
    for (name, input) in [
        ("noop", serde_json::json!({})),
        ("hello", serde_json::json!({"name": "Ada"})),
    ] {
        let tool = Arc::new(catalog::load_file(&engine, &plugin_path(name), name).expect("load"));
        group.bench_function(format!("toka/{name}"), |b| {
            b.iter(|| {
                let mut ctx = CallCtx::new(
                    Caller::Operator,
                    SandboxIo::captured(name, 0, events::discard()),
                );
                ctx.collect_logs = true;
                let outcome = rt.block_on(runtime.call(tool.clone(), input.clone(), ctx));
                assert!(outcome.result.is_ok(), "{:?}", outcome.result);
            })
        });

        // Baseline: the same component, linked once, a bare store per call.
        let linker = sandbox::component_linker(&engine).expect("linker");
        let Code::Wasm(wasm) = &tool.code else {
            panic!("{name} is wasm")
        };
        let Compiled::Component(component) = &wasm.loaded.compiled else {
            panic!("{name} is a component")
        };
        let pre = sandbox::ToolBindingsPre::new(linker.instantiate_pre(component).expect("pre"))
            .expect("bindings");
        let text = input.to_string();
        group.bench_function(format!("wasmtime-only/{name}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let state = State::bare(
                        wasmtime_wasi::WasiCtx::builder().build(),
                        DEFAULT_LIMITS,
                        name,
                        events::discard(),
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
                        .call_invoke(&mut store, &text)
                        .await
                        .expect("call");
                    assert!(out.is_ok());
                })
            })
        });
    }
    group.finish();

    // Hot swap from a compiled artifact: cache hit, link, swap into the live
    // table (the one `serve` reads).
    let hello = plugin_path("hello");
    c.bench_function("swap/from-cache", |b| {
        b.iter(|| {
            let tool: Tool = catalog::load_file(&engine, &hello, "hello").expect("load");
            if let Some((cache, _)) = tool.compile_info() {
                assert_eq!(cache, &CacheStatus::Hit);
            }
            live.insert(Arc::new(tool));
        })
    });
}

criterion_group!(name = calls; config = Criterion::default().sample_size(200); targets = benches);
criterion_main!(calls);
