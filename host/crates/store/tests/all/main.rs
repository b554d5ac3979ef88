//! The run store's tests, against real stores only: SQLite files in temp
//! dirs and a real PostgreSQL 15 server (one per test binary, a database per
//! test; tests that stop the server start their own).
//!
//! `behaviour` is one suite that runs against both backends; `sqlite` and
//! `postgres` hold what only one backend has (damaged files; unreachable,
//! stopped and restarted servers, LISTEN/NOTIFY).

// All of this is test code, helpers included: a failed unwrap is a failed
// test (clippy's allow-unwrap-in-tests covers only `#[test]` functions).
#![allow(clippy::unwrap_used)]

mod behaviour;
mod fixture;
mod postgres;
mod sqlite;
