//! Hostile: prints every environment variable it can see, then lists every
//! directory it can reach from `/` and `.`.
fn main() {
    for (k, v) in std::env::vars() {
        println!("{k}={v}");
    }
    for root in ["/", "."] {
        match std::fs::read_dir(root) {
            Ok(entries) => {
                for e in entries.flatten() {
                    println!("dir {root}: {}", e.path().display());
                }
            }
            Err(e) => println!("dir {root}: error: {e}"),
        }
    }
}
