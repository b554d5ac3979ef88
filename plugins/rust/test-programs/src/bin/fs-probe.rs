//! Hostile: tries one filesystem operation and reports whether it worked.
//!
//! `fs-probe OP PATH [PATH2]` with OP one of `read`, `write`, `append`,
//! `truncate`, `create`, `mkdir`, `remove`, `rename`, `hardlink`,
//! `list`. Prints `ok: ...` and exits 0, or `denied: <error>` and exits 1.
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: fs-probe OP PATH [PATH2]");
        std::process::exit(2);
    }
    let (op, path) = (args[1].as_str(), args[2].as_str());
    let other = args.get(3).map(String::as_str).unwrap_or("");
    let result: std::io::Result<String> = match op {
        "read" => std::fs::read_to_string(path),
        "write" => std::fs::write(path, b"written by fs-probe\n").map(|()| "written".into()),
        "append" => std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(b"appended\n"))
            .map(|()| "appended".into()),
        "truncate" => std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map(|_| "truncated".into()),
        "create" => std::fs::File::create_new(path).map(|_| "created".into()),
        "mkdir" => std::fs::create_dir(path).map(|()| "made".into()),
        "remove" => std::fs::remove_file(path).map(|()| "removed".into()),
        "rename" => std::fs::rename(path, other).map(|()| "renamed".into()),
        "hardlink" => std::fs::hard_link(path, other).map(|()| "linked".into()),
        "list" => std::fs::read_dir(path).map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",")
        }),
        _ => {
            eprintln!("fs-probe: unknown op {op}");
            std::process::exit(2);
        }
    };
    match result {
        Ok(s) => println!("ok: {s}"),
        Err(e) => {
            println!("denied: {e}");
            std::process::exit(1);
        }
    }
}
