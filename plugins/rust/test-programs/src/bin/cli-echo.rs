//! Conformance probe: prints its arguments and environment, copies stdin when
//! asked, writes to stderr when asked, and exits with the code asked for.
//!
//! Flags (anywhere among the arguments): `--cat` copies stdin to stdout,
//! `--stderr=MSG` writes MSG to stderr, `--exit=N` exits with N.
use std::io::{Read, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout().lock();
    for (i, a) in args.iter().enumerate() {
        let _ = writeln!(out, "arg[{i}]={a}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (k, v) in vars {
        let _ = writeln!(out, "env {k}={v}");
    }
    let mut code = 0;
    for a in &args[1..] {
        if a == "--cat" {
            let mut input = String::new();
            let _ = std::io::stdin().read_to_string(&mut input);
            let _ = write!(out, "stdin={input}");
            let _ = writeln!(out);
        } else if let Some(msg) = a.strip_prefix("--stderr=") {
            eprintln!("{msg}");
        } else if let Some(n) = a.strip_prefix("--exit=") {
            code = n.parse().unwrap_or(2);
        }
    }
    let _ = out.flush();
    std::process::exit(code);
}
