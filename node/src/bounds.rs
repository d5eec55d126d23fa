//! Bounded resources of the HTTP API (issue 9): connections, event-stream subscribers, long
//! polls and the time one request may take.
//!
//! Rules it keeps: every open connection holds a permit of `connections` (over the cap, new
//! connections wait in the kernel's backlog rather than cost memory here); every open event
//! stream a permit of `subscribers` (over it: `503 busy`); every held long poll a permit of
//! `long_polls` (over it, the poll answers at once instead of waiting); and a request that is
//! not a stream answers within `REQUEST_MS_MAX` or gets `503 unavailable`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Open connections, plain or TLS.
pub(crate) const CONNECTIONS_MAX: usize = 4_096;
/// Open `GET /v1/events` streams.
pub(crate) const EVENT_SUBSCRIBERS_MAX: usize = 1_024;
/// `GET /v1/transactions/{hash}?wait_ms=` requests held at once.
pub(crate) const LONG_POLLS_MAX: usize = 2_048;
/// The longest a request other than an event stream may take (above the longest long poll).
pub(crate) const REQUEST_MS_MAX: u64 = 45_000;
const _: () = assert!(REQUEST_MS_MAX > crate::api::TX_WAIT_MS_MAX);

/// The caps, as configured (the constants above unless a test or operator lowers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    pub connections: usize,
    pub subscribers: usize,
    pub long_polls: usize,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            connections: CONNECTIONS_MAX,
            subscribers: EVENT_SUBSCRIBERS_MAX,
            long_polls: LONG_POLLS_MAX,
        }
    }
}

/// The API's shared permits.
#[derive(Clone)]
pub(crate) struct Bounds {
    pub subscribers: Arc<Semaphore>,
    pub long_polls: Arc<Semaphore>,
}

impl Bounds {
    pub fn new(caps: Caps) -> Bounds {
        Bounds {
            subscribers: Arc::new(Semaphore::new(caps.subscribers)),
            long_polls: Arc::new(Semaphore::new(caps.long_polls)),
        }
    }
}

/// A listener that holds at most `cap` connections open at once.
pub(crate) struct CappedListener<L> {
    inner: L,
    permits: Arc<Semaphore>,
}

impl<L> CappedListener<L> {
    pub fn new(inner: L, cap: usize) -> CappedListener<L> {
        CappedListener {
            inner,
            permits: Arc::new(Semaphore::new(cap)),
        }
    }
}

impl<L: axum::serve::Listener> axum::serve::Listener for CappedListener<L>
where
    L::Io: Unpin,
{
    type Io = Capped<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = match Arc::clone(&self.permits).acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("the semaphore is never closed"),
        };
        let (io, address) = self.inner.accept().await;
        (Capped { io, _permit: permit }, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its permit until it closes.
pub(crate) struct Capped<T> {
    io: T,
    _permit: OwnedSemaphorePermit,
}

impl<T: AsyncRead + Unpin> AsyncRead for Capped<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Capped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The axum layer: a request other than an event stream answers within `REQUEST_MS_MAX`.
pub(crate) async fn request_timeout(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if request.uri().path() == "/v1/events" {
        return next.run(request).await;
    }
    match tokio::time::timeout(std::time::Duration::from_millis(REQUEST_MS_MAX), next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::api::ApiError::from(corridor_sdk::error::Error::new(
            corridor_sdk::ErrorCode::Unavailable,
            format!("the request took more than {REQUEST_MS_MAX} ms"),
        ))
        .into_response(),
    }
}
