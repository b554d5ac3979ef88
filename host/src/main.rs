//! The `toka-host` binary: everything is in the library ([`toka_host::main`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    toka_host::main()
}
