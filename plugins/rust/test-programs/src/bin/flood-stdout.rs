//! Hostile: writes to stdout without end.
use std::io::Write;

fn main() {
    let line = [b'x'; 1023];
    let mut out = std::io::stdout().lock();
    loop {
        if out
            .write_all(&line)
            .and_then(|()| out.write_all(b"\n"))
            .is_err()
        {
            // Keep going: a host that only reports an error and lets the guest
            // run on has not enforced anything.
            continue;
        }
    }
}
