//! `toka-host new tool|workflow NAME --lang LANG`: a plugin folder that
//! builds and runs as it is: the source, its manifest, the `toka:plugin` WIT
//! it is written against (a copy, so the folder stands alone), a build
//! script and a test input.

use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use toka_spec::exit;
use toka_spec::manifest::ToolName;

/// The `toka:plugin` WIT this host speaks, file by file.
const WIT: [(&str, &str); 6] = [
    (
        "handler.wit",
        include_str!("../../../wit/v0.1.0/handler.wit"),
    ),
    ("host.wit", include_str!("../../../wit/v0.1.0/host.wit")),
    ("llm.wit", include_str!("../../../wit/v0.1.0/llm.wit")),
    ("tools.wit", include_str!("../../../wit/v0.1.0/tools.wit")),
    ("types.wit", include_str!("../../../wit/v0.1.0/types.wit")),
    ("worlds.wit", include_str!("../../../wit/v0.1.0/worlds.wit")),
];

/// The file `new --lang c` writes the preview1 reactor adapter to.
const C_ADAPTER: &str = "wasi_snapshot_preview1.reactor.wasm";
const C_ADAPTER_BYTES: &[u8] =
    wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

/// What to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A tool: JSON in, JSON out.
    Tool,
    /// A workflow: may call the tools its manifest lists and the model.
    Workflow,
}

/// The language of the new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust (wit-bindgen, wasm32-wasip2).
    Rust,
    /// Python (componentize-py).
    Python,
    /// JavaScript (jco componentize).
    Js,
    /// C (clang for wasm32-wasi, wit-bindgen c, wasm-tools).
    C,
}

/// `toka-host new` flags.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// tool or workflow.
    #[arg(value_enum)]
    pub kind: Kind,
    /// The plugin's name (lowercase letters, digits and '-'): also the
    /// folder's.
    pub name: String,
    /// The language.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: Lang,
    /// Where to create the folder NAME [default: the current directory].
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

/// Shown after `new --help`.
pub const AFTER_HELP: &str = "\
Then:
  cd NAME && ./build.sh                      # needs the language's toolchain, see NAME/README.md
  toka-host run NAME.yaml --input @input.json

Workflows are written in Rust (the WIT bindings of tools.call and llm.complete);
tools in Rust, Python, JavaScript or C.";

/// Runs `toka-host new`; returns the exit code.
pub fn run(args: &NewArgs) -> u8 {
    match create(args) {
        Ok(dir) => {
            println!("created {}", dir.display());
            println!(
                "next: cd {} && ./build.sh && toka-host run {}.yaml --input @input.json",
                dir.display(),
                args.name
            );
            exit::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID
        }
    }
}

fn create(args: &NewArgs) -> Result<PathBuf, String> {
    let name: ToolName = args
        .name
        .parse()
        .map_err(|e: String| format!("NAME: {e}"))?;
    let name = name.to_string();
    if args.kind == Kind::Workflow && args.lang != Lang::Rust {
        return Err(format!(
            "--lang {}: workflows are written in Rust for now (`toka-host new workflow {name} --lang rust`); tools may be Rust, Python, JavaScript or C",
            lang_word(args.lang)
        ));
    }
    let dir = args.dir.join(&name);
    std::fs::create_dir(&dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{} already exists; choose another NAME or --dir (nothing is overwritten)",
                dir.display()
            )
        } else {
            format!("{}: {}", dir.display(), toka_spec::manifest::io_reason(&e))
        }
    })?;
    let write = |rel: &str, text: &str| -> Result<(), String> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                format!(
                    "{}: {}",
                    parent.display(),
                    toka_spec::manifest::io_reason(&e)
                )
            })?;
        }
        std::fs::write(&path, text.replace("{{name}}", &name))
            .map_err(|e| format!("{}: {}", path.display(), toka_spec::manifest::io_reason(&e)))
    };
    for (file, text) in WIT {
        write(&format!("wit/{file}"), text)?;
    }
    match (args.kind, args.lang) {
        (Kind::Tool, Lang::Rust) => {
            write("Cargo.toml", include_str!("new/Cargo.toml.in"))?;
            write("src/lib.rs", include_str!("new/rust-tool.rs"))?;
        }
        (Kind::Workflow, _) => {
            write("Cargo.toml", include_str!("new/Cargo.toml.in"))?;
            write("src/lib.rs", include_str!("new/rust-workflow.rs"))?;
        }
        (Kind::Tool, Lang::Python) => write("app.py", include_str!("new/python-tool.py"))?,
        (Kind::Tool, Lang::Js) => write(&format!("{name}.js"), include_str!("new/js-tool.js"))?,
        (Kind::Tool, Lang::C) => {
            write(&format!("{name}.c"), include_str!("new/c-tool.c"))?;
            // wasi-libc speaks WASI preview1; the adapter turns the core
            // module into a preview2 component the host runs.
            let adapter = dir.join(C_ADAPTER);
            std::fs::write(&adapter, C_ADAPTER_BYTES).map_err(|e| {
                format!(
                    "{}: {}",
                    adapter.display(),
                    toka_spec::manifest::io_reason(&e)
                )
            })?;
        }
    }
    write("build.sh", &build_script(args.kind, args.lang, &name))?;
    make_executable(&dir.join("build.sh"))?;
    write(&format!("{name}.yaml"), &manifest(args.kind, &name))?;
    write(
        "input.json",
        "{\"text\": \"A sandboxed tool, from nothing in a minute.\"}\n",
    )?;
    write("README.md", &readme(args.kind, args.lang, &name))?;
    let ignore = if args.lang == Lang::C {
        "/target\n/gen\n/*.wasm\n!/wasi_snapshot_preview1.reactor.wasm\n"
    } else {
        "/target\n/*.wasm\n"
    };
    write(".gitignore", ignore)?;
    Ok(dir)
}

fn lang_word(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "rust",
        Lang::Python => "python",
        Lang::Js => "js",
        Lang::C => "c",
    }
}

fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {}", path.display(), toka_spec::manifest::io_reason(&e)))
}

fn build_script(kind: Kind, lang: Lang, name: &str) -> String {
    let world = match kind {
        Kind::Tool => "tool",
        Kind::Workflow => "workflow",
    };
    let body = match lang {
        Lang::Rust => format!(
            "# Needs the wasm32-wasip2 target: rustup target add wasm32-wasip2\n\
             cargo build --release --target wasm32-wasip2\n\
             cp \"${{CARGO_TARGET_DIR:-target}}/wasm32-wasip2/release/{}.wasm\" {name}.wasm\n",
            name.replace('-', "_")
        ),
        Lang::Python => format!(
            "# Needs componentize-py (pip install componentize-py), or COMPONENTIZE_PY=/path/to/it\n\
             \"${{COMPONENTIZE_PY:-componentize-py}}\" -d wit -w toka:plugin/{world}@0.1.0 componentize app -o {name}.wasm\n"
        ),
        Lang::Js => format!(
            "# Needs jco (npm install @bytecodealliance/jco @bytecodealliance/componentize-js), or JCO=/path/to/it\n\
             # -d all: no wasi:http or other imports the host does not provide.\n\
             \"${{JCO:-jco}}\" componentize {name}.js --wit wit --world-name {world} -d all -o {name}.wasm\n"
        ),
        Lang::C => format!(
            "# Needs clang with a wasm32-wasi sysroot (Debian/Ubuntu: apt install clang lld\n\
             # wasi-libc libclang-rt-dev-wasm32; or wasi-sdk, WASI_SYSROOT=/opt/wasi-sdk/share/wasi-sysroot),\n\
             # wit-bindgen and wasm-tools (cargo install wit-bindgen-cli wasm-tools);\n\
             # CC, WIT_BINDGEN, WASM_TOOLS override the commands.\n\
             mkdir -p gen\n\
             \"${{WIT_BINDGEN:-wit-bindgen}}\" c wit --world {world} --out-dir gen >/dev/null\n\
             \"${{CC:-clang}}\" --target=wasm32-wasi --sysroot=\"${{WASI_SYSROOT:-/usr}}\" -mexec-model=reactor -O2 -Wall \\\n\
             \x20   -I gen {name}.c gen/{world}.c gen/{world}_component_type.o -o gen/{name}.core.wasm\n\
             # {C_ADAPTER}: WASI preview1 (what wasi-libc speaks) on top of\n\
             # preview2 (what the host gives), from the host's wasmtime release.\n\
             \"${{WASM_TOOLS:-wasm-tools}}\" component new gen/{name}.core.wasm \\\n\
             \x20   --adapt wasi_snapshot_preview1={C_ADAPTER} -o {name}.wasm\n"
        ),
    };
    format!(
        "#!/usr/bin/env bash\n# Builds {name}.wasm next to {name}.yaml.\nset -euo pipefail\ncd \"$(dirname \"${{BASH_SOURCE[0]}}\")\"\n{body}"
    )
}

fn manifest(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Tool => format!(
            "metadata:\n  name: {name}\n  version: 0.1.0\n  description: Says how long a text is.\n\
             spec:\n  executable:\n    type: component\n    path: {name}.wasm\n\
             \x20 parameters:\n    type: object\n    properties:\n      text: {{ type: string }}\n    required: [text]\n\
             \x20 security:\n    sandbox:\n      fuel: 100000000\n      memory_limit: 64MiB\n      timeout: 5s\n"
        ),
        Kind::Workflow => format!(
            "metadata:\n  name: {name}\n  version: 0.1.0\n  description: Counts the words of a text, with progress.\n\
             spec:\n  executable:\n    type: workflow\n    path: {name}.wasm\n\
             \x20 parameters:\n    type: object\n    properties:\n      text: {{ type: string }}\n    required: [text]\n\
             \x20 # To call tools: capabilities: {{ required: [tool-call] }} and\n\
             \x20 # security.sandbox.tools: [their names]; run with --grant tool-call.\n\
             \x20 security:\n    sandbox:\n      fuel: 500000000\n      memory_limit: 64MiB\n      timeout: 30s\n"
        ),
    }
}

fn readme(kind: Kind, lang: Lang, name: &str) -> String {
    let what = match kind {
        Kind::Tool => "tool",
        Kind::Workflow => "workflow",
    };
    format!(
        "# {name}\n\nA Toka {what} in {}, made by `toka-host new`.\n\n\
         ```sh\n./build.sh\ntoka-host run {name}.yaml --input @input.json\n```\n\n\
         `wit/` is the `toka:plugin` interface it is written against; `{name}.yaml`\n\
         says what it may touch and spend (nothing beyond its limits until you add\n\
         capabilities and the operator grants them).\n",
        match lang {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
            Lang::C => "C",
        }
    )
}
