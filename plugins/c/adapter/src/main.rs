//! `wasi-adapter reactor|command OUT.wasm`: writes the WASI preview1
//! adapter of wasmtime 48 for a library (reactor: tools) or a program
//! (command) to OUT.wasm.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (kind, out) = match args.as_slice() {
        [kind, out] => (kind.to_string_lossy().into_owned(), out),
        _ => {
            eprintln!("usage: wasi-adapter reactor|command OUT.wasm");
            return ExitCode::from(2);
        }
    };
    use wasi_preview1_component_adapter_provider as p;
    let bytes = match kind.as_str() {
        "reactor" => p::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        "command" => p::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        other => {
            eprintln!("unknown adapter `{other}`: use reactor or command");
            return ExitCode::from(2);
        }
    };
    match std::fs::write(out, bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write {}: {e}", std::path::Path::new(out).display());
            ExitCode::FAILURE
        }
    }
}
