//! Baseline for benchmarks: the least a wasmtime embedder can do to call a
//! Toka tool once from a fresh process. No manifest, no policy, no limits
//! beyond wasmtime's defaults, no authenticated cache: it loads a component
//! precompiled by an earlier run (`<wasm>.cwasm`, written on first use),
//! instantiates it with an empty WASI context, and calls `invoke`.
//!
//! `cargo run --release --example bare_embedder -- plugins/build/hello.wasm '{"name":"Ada"}'`

#![allow(missing_docs)] // Generated bindings; the WIT documents them.

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "tool",
    path: "../../../wit/v0.1.0",
    exports: { default: async },
});

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl toka::plugin::types::Host for State {}

impl toka::plugin::host::Host for State {
    fn log(&mut self, _level: toka::plugin::host::Level, _message: String) {}
    fn progress(&mut self, _fraction: f32, _message: String) {}
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let wasm = args
        .next()
        .unwrap_or_else(|| "plugins/build/hello.wasm".into());
    let input = args.next().unwrap_or_else(|| r#"{"name":"Ada"}"#.into());
    let engine = Engine::default();
    let cwasm = format!("{wasm}.cwasm");
    if !std::path::Path::new(&cwasm).exists() {
        let bytes = std::fs::read(&wasm)?;
        std::fs::write(&cwasm, engine.precompile_component(&bytes)?)?;
    }
    // SAFETY: the file was written just above (or by an earlier run of this
    // benchmark baseline) from `precompile_component`.
    let component = unsafe { Component::deserialize_file(&engine, &cwasm)? };
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    toka::plugin::host::add_to_linker::<_, HasSelf<State>>(&mut linker, |s| s)?;
    toka::plugin::types::add_to_linker::<_, HasSelf<State>>(&mut linker, |s| s)?;
    let mut store = Store::new(
        &engine,
        State {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    let tool = Tool::instantiate_async(&mut store, &component, &linker).await?;
    match tool
        .toka_plugin_handler()
        .call_invoke(&mut store, &input)
        .await?
    {
        Ok(out) => println!("{out}"),
        Err(e) => eprintln!("tool error: {e:?}"),
    }
    Ok(())
}
