//! Hostile: blocks inside a host call (a WASI sleep) so that only the host's
//! outer timer, not epoch interruption, can end it.
fn main() {
    std::thread::sleep(std::time::Duration::from_secs(100_000));
}
