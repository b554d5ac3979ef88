//! The connection layer of `serve`: an accept loop of our own, so that a
//! flood cannot take the server down. Connections are capped
//! (`--max-connections`; beyond it new ones wait in the kernel's backlog
//! instead of using file descriptors the reloader needs); a header that is
//! not complete within `--header-timeout`, and a keep-alive connection idle
//! that long, are closed (hyper's header-read timer, which axum's own
//! `serve` leaves off); running out of file descriptors (EMFILE, ENFILE)
//! backs off instead of spinning; on shutdown, calls in flight finish.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// How connections are held.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to send a request's headers (and most idle time between
    /// requests on a keep-alive connection).
    pub header_timeout: Duration,
    /// How long shutdown waits for calls in flight.
    pub drain: Duration,
}

/// The largest header block hyper reads (a backstop; the router answers
/// smaller oversized headers with a JSON 431 itself).
const MAX_HEADER_BYTES: usize = 64 << 10;

/// The default connection cap: three quarters of the file descriptors the
/// process may open, less a margin for manifests, wasm files, the audit log
/// and subprocess pipes.
pub fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let fds = if ok {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (fds.saturating_mul(3) / 4)
        .saturating_sub(32)
        .clamp(8, 16_384)
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Serves `router` on `listener` until `shutdown` completes, then lets
/// requests in flight finish (for at most `limits.drain`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .keep_alive(true);
    let mut backoff = Duration::ZERO;
    let mut last_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(c) => {
                backoff = Duration::ZERO;
                c
            }
            Err(e) if out_of_descriptors(&e) => {
                // Spinning on accept would burn a core and starve the
                // reloader; wait for descriptors to come back instead.
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    eprintln!(
                        "toka-host: cannot accept connections: {e}; backing off (lower --max-connections or raise `ulimit -n`)"
                    );
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(backoff).await;
                continue;
            }
            // A connection reset before it was accepted, and the like.
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain, graceful.shutdown()).await;
}
