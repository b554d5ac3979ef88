//! Hostile: opens a TCP connection to `ADDR` (`host:port`) and sends a line.
//! Prints `connected` and exits 0, or `refused: <error>` and exits 1.
use std::io::Write;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:80".into());
    match std::net::TcpStream::connect(&addr) {
        Ok(mut s) => {
            let _ = s.write_all(b"hello from the sandbox\n");
            println!("connected");
        }
        Err(e) => {
            println!("refused: {e}");
            std::process::exit(1);
        }
    }
}
