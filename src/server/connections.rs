//! How `serve` holds its connections: bounded, so that no client, however slow or numerous, can
//! hold a worker or memory without end.
//!
//! - at most [`Limits::max_connections`] connections at once; the next waits in the listen
//!   backlog until one closes;
//! - a request's headers must arrive within [`Limits::header_timeout`] (slowloris), an idle
//!   keep-alive connection is closed after it too, and they may take at most
//!   [`Limits::max_header_bytes`] (a larger head is answered `431`);
//! - a body must arrive within [`Limits::body_timeout`] (see [`super::router_with`]) and is read
//!   up to the EventBridge limit (256 KiB) plus one byte.
//!
//! On shutdown the listener stops accepting, each connection finishes the request it is serving,
//! and connections still open after [`DRAIN`] are dropped.

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// How long shutdown waits for open connections to finish.
pub const DRAIN: Duration = Duration::from_secs(10);

/// The bounds of `serve`'s connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once (default 256).
    pub max_connections: usize,
    /// For a request's head to arrive, and for an idle keep-alive connection (default 10 s).
    pub header_timeout: Duration,
    /// A request's head, in bytes (default 64 KiB; hyper takes at most 100 headers).
    pub max_header_bytes: usize,
    /// For a request's body to arrive (default 30 s).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let (router, mut stopped) = (router.clone(), stopped.clone());
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                router.clone().oneshot(request)
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let stopping = async move {
                // Ends once shutdown begins (or its sender is gone).
                let _ = stopped.wait_for(|stop| *stop).await.map(|_| ());
            };
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopping => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    if tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the drain; dropped"
        );
    }
}
