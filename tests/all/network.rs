//! No network unless granted; a grant opens exactly the address granted.

use crate::harness::{hello_still_works, plugin, toka};
use std::io::Read;
use std::net::TcpListener;

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

#[track_caller]
fn assert_no_connection(l: &TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the guest reached the listener: {other:?}"),
    }
}

#[test]
fn connections_are_refused_by_default() {
    let (l, port) = listener();
    // The host can connect, so a refusal is the sandbox's.
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).expect("host connects"));
    let _ = l.accept();
    for target in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        toka(["run", &plugin("tcp-connect"), "--", &target])
            .run()
            .assert_code(1)
            .assert_stdout_has("refused");
        assert_no_connection(&l);
    }
    // A grant for another port does not open this one.
    toka([
        "run",
        &plugin("tcp-connect"),
        "--allow-net",
        &format!("127.0.0.1:{}", port.wrapping_add(1)),
        "--",
        &format!("127.0.0.1:{port}"),
    ])
    .run()
    .assert_code(1)
    .assert_stdout_has("refused");
    assert_no_connection(&l);
    hello_still_works();
}

#[test]
fn a_granted_address_is_reachable() {
    for grant in ["127.0.0.1:{port}", "localhost:{port}", "127.0.0.1:*"] {
        let (l, port) = listener();
        let grant = grant.replace("{port}", &port.to_string());
        toka([
            "run",
            &plugin("tcp-connect"),
            "--allow-net",
            &grant,
            "--",
            &format!("127.0.0.1:{port}"),
        ])
        .run()
        .assert_code(0)
        .assert_stdout_has("connected");
        l.set_nonblocking(false).expect("blocking");
        let (mut s, _) = l.accept().expect("the guest connected");
        let mut got = String::new();
        s.read_to_string(&mut got).expect("read");
        assert_eq!(got, "hello from the sandbox\n", "grant {grant}");
    }
}
