//! Plain WASI command programs for the host's tests; each binary in `src/bin`
//! is one program, named for what it does.
