//! Bounded resources of the HTTP API (issue 9): connections, event-stream subscribers, long
//! polls and the time one request may take.
//!
//! Rules it keeps: every open connection holds a permit of `connections` (over the cap, new
//! connections wait in the kernel's backlog rather than cost memory here); every open event
//! stream a permit of `subscribers` (over it: `503 busy`); every held long poll a permit of
//! `long_polls` (over it, the poll answers at once instead of waiting); a request that is
//! not a stream answers within `REQUEST_MS_MAX` or gets `503 unavailable`; an account makes
//! at most `ACCOUNT_REQUESTS_PER_SECOND` signed requests (over it: `429 rate_limited`); a
//! connection that moves no byte either way for `CONNECTION_IDLE_MS_MAX` is closed, so silent
//! or half-sent connections cannot hold the connection permits; and a connection must send a
//! request's whole head within `HEADER_READ_MS_MAX` of waiting for it, so a slow drip of bytes
//! (which keeps the idle clock at zero) cannot hold one either.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Open connections, plain or TLS.
pub(crate) const CONNECTIONS_MAX: usize = 4_096;
/// Open `GET /v1/events` streams.
pub(crate) const EVENT_SUBSCRIBERS_MAX: usize = 1_024;
/// `GET /v1/transactions/{hash}?wait_ms=` requests held at once.
pub(crate) const LONG_POLLS_MAX: usize = 2_048;
/// Signed requests one account may make per second (its bucket refills at this rate and holds
/// as many).
pub(crate) const ACCOUNT_REQUESTS_PER_SECOND: u64 = 2_000;
/// The longest a request other than an event stream may take (above the longest long poll).
pub(crate) const REQUEST_MS_MAX: u64 = 45_000;
const _: () = assert!(REQUEST_MS_MAX > crate::api::TX_WAIT_MS_MAX);
/// The longest a connection may move no byte in either direction: above the longest request
/// (a held long poll writes nothing until it answers) and the event stream's 15 s keep-alive.
pub(crate) const CONNECTION_IDLE_MS_MAX: u64 = 60_000;
const _: () = assert!(CONNECTION_IDLE_MS_MAX > REQUEST_MS_MAX);
const _: () = assert!(CONNECTION_IDLE_MS_MAX > crate::api::EVENT_KEEP_ALIVE_MS);
/// The longest the server waits for a request's head (request line and headers), from when
/// it starts waiting: on a new connection, or after the previous response on a kept-alive one.
/// So it also closes idle kept-alive connections, and must outlast the SDK's pool, which drops
/// a connection idle for `POOL_IDLE_MS`, so a client never reuses one the node is closing.
pub(crate) const HEADER_READ_MS_MAX: u64 = 40_000;
const _: () = assert!(HEADER_READ_MS_MAX > corridor_sdk::limits::POOL_IDLE_MS);
const _: () = assert!(HEADER_READ_MS_MAX < CONNECTION_IDLE_MS_MAX);

/// The caps, as configured (the constants above unless a test or operator lowers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    pub connections: usize,
    pub subscribers: usize,
    pub long_polls: usize,
    pub account_requests_per_second: u64,
    pub connection_idle_ms: u64,
    pub header_read_ms: u64,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            connections: CONNECTIONS_MAX,
            subscribers: EVENT_SUBSCRIBERS_MAX,
            long_polls: LONG_POLLS_MAX,
            account_requests_per_second: ACCOUNT_REQUESTS_PER_SECOND,
            connection_idle_ms: CONNECTION_IDLE_MS_MAX,
            header_read_ms: HEADER_READ_MS_MAX,
        }
    }
}

/// A token bucket in thousandths of a request (no floats): it holds up to `rate` requests and
/// refills `rate` per second.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_requests: u64,
    last_ms: u64,
}

/// Per-account request rates of signed requests. Accounts are bounded by the state, so is the
/// map; a request is `rate_limited` (429) when its account's bucket is empty.
pub(crate) struct Rates {
    per_second: u64,
    buckets: parking_lot::Mutex<std::collections::HashMap<corridor_sdk::AccountId, Bucket>>,
}

impl Rates {
    pub fn new(per_second: u64) -> Rates {
        Rates {
            per_second,
            buckets: parking_lot::Mutex::default(),
        }
    }

    /// Take one request from `account`'s bucket at `now_ms`; false if it is empty.
    pub fn take(&self, account: &corridor_sdk::AccountId, now_ms: u64) -> bool {
        let full = self.per_second.saturating_mul(1_000);
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(account.clone()).or_insert(Bucket {
            milli_requests: full,
            last_ms: now_ms,
        });
        let refill = now_ms.saturating_sub(bucket.last_ms).saturating_mul(self.per_second);
        bucket.milli_requests = bucket.milli_requests.saturating_add(refill).min(full);
        bucket.last_ms = bucket.last_ms.max(now_ms);
        if bucket.milli_requests >= 1_000 {
            bucket.milli_requests -= 1_000;
            true
        } else {
            false
        }
    }
}

/// The API's shared permits.
#[derive(Clone)]
pub(crate) struct Bounds {
    pub subscribers: Arc<Semaphore>,
    pub long_polls: Arc<Semaphore>,
    pub rates: Arc<Rates>,
}

impl Bounds {
    pub fn new(caps: Caps) -> Bounds {
        Bounds {
            subscribers: Arc::new(Semaphore::new(caps.subscribers)),
            long_polls: Arc::new(Semaphore::new(caps.long_polls)),
            rates: Arc::new(Rates::new(caps.account_requests_per_second)),
        }
    }
}

/// A listener that holds at most `cap` connections open at once and closes each one that
/// stays idle for `idle`.
pub(crate) struct CappedListener<L> {
    inner: L,
    permits: Arc<Semaphore>,
    idle: Duration,
}

impl<L> CappedListener<L> {
    pub fn new(inner: L, caps: &Caps) -> CappedListener<L> {
        CappedListener {
            inner,
            permits: Arc::new(Semaphore::new(caps.connections)),
            idle: Duration::from_millis(caps.connection_idle_ms.max(1)),
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
        let connection = Capped {
            io,
            _permit: permit,
            idle: self.idle,
            deadline: Box::pin(tokio::time::sleep(self.idle)),
        };
        (connection, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection holding its permit until it closes; waiting on it (to read or to write) past
/// its idle deadline fails with `TimedOut`, which closes it. Every byte moved pushes the
/// deadline back.
pub(crate) struct Capped<T> {
    io: T,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<T> Capped<T> {
    fn moved(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// For a poll that is pending: `Ready(Err)` once the connection has been idle too long.
    fn idle_past_deadline<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no byte moved for {} ms", self.idle.as_millis()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn track_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.idle_past_deadline(cx),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Capped<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.idle_past_deadline(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Capped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.track_write(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.idle_past_deadline(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.track_write(cx, written)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Adversary: one account asking faster than its rate is refused, others are not, and
    /// the bucket refills with time.
    #[test]
    fn an_account_over_its_rate_is_refused_until_its_bucket_refills() {
        let rates = Rates::new(5);
        let greedy = corridor_sdk::AccountId::new("greedy@bank").expect("id");
        let other = corridor_sdk::AccountId::new("other@bank").expect("id");
        let granted = (0..20).filter(|_| rates.take(&greedy, 1_000)).count();
        assert_eq!(granted, 5, "a full bucket holds one second's worth");
        assert!(rates.take(&other, 1_000), "another account has its own bucket");
        assert!(!rates.take(&greedy, 1_100), "100 ms refills half a request");
        assert!(rates.take(&greedy, 1_200), "200 ms refills one");
        let later = (0..20).filter(|_| rates.take(&greedy, 60_000)).count();
        assert_eq!(later, 5, "never more than the bucket holds");
    }
}
