//! The frame every p2p stream carries: a 4-byte big-endian length, then that many bytes, then the
//! end of the stream.
//!
//! The rule this module keeps: no frame longer than the limit of its protocol and direction is
//! read or written (the length is checked before a byte of the body is read), and a frame whose
//! body is shorter or longer than its length is refused.

use std::io;
use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use super::Lane;
use super::stats::Counters;

/// Bytes of the length prefix.
const LENGTH_PREFIX_BYTES: usize = 4;

/// The error a frame over its limit fails with; the swarm task tells it from other I/O errors.
#[derive(Debug, thiserror::Error)]
#[error("frame of {length} bytes is over the limit of {limit} bytes")]
pub(super) struct FrameTooLarge {
    pub length: usize,
    pub limit: usize,
}

/// Whether an I/O error is a refused oversized frame.
pub(super) fn is_too_large(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<FrameTooLarge>())
}

/// Length-delimited frames with a byte limit per direction, counting refusals on its lane.
#[derive(Clone)]
pub(super) struct FrameCodec {
    lane: Lane,
    request_bytes_max: usize,
    response_bytes_max: usize,
    counters: Arc<Counters>,
}

impl FrameCodec {
    pub(super) fn new(
        lane: Lane,
        request_bytes_max: usize,
        response_bytes_max: usize,
        counters: Arc<Counters>,
    ) -> FrameCodec {
        assert!(
            request_bytes_max <= u32::MAX as usize,
            "a request limit fits the length prefix"
        );
        assert!(
            response_bytes_max <= u32::MAX as usize,
            "a response limit fits the length prefix"
        );
        FrameCodec {
            lane,
            request_bytes_max,
            response_bytes_max,
            counters,
        }
    }

    fn too_large(&self, length: usize, limit: usize) -> io::Error {
        self.counters.lane(self.lane).count_oversized();
        io::Error::other(FrameTooLarge { length, limit })
    }

    async fn read_frame<T: AsyncRead + Unpin + Send>(&self, io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        io.read_exact(&mut prefix).await?;
        let length = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
        if length > limit {
            return Err(self.too_large(length, limit));
        }
        // One byte past the length tells a longer body (trailing bytes) from the end of stream.
        let mut body = Vec::new();
        let read_max = u64::try_from(length).unwrap_or(u64::MAX).saturating_add(1);
        io.take(read_max).read_to_end(&mut body).await?;
        if body.len() != length {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame announced {length} bytes and carried {}", body.len()),
            ));
        }
        Ok(body)
    }

    async fn write_frame<T: AsyncWrite + Unpin + Send>(&self, io: &mut T, body: &[u8], limit: usize) -> io::Result<()> {
        if body.len() > limit {
            return Err(self.too_large(body.len(), limit));
        }
        let length = u32::try_from(body.len()).map_err(|_| self.too_large(body.len(), limit))?;
        io.write_all(&length.to_be_bytes()).await?;
        io.write_all(body).await?;
        io.flush().await
    }
}

impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_frame(io, self.request_bytes_max).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_frame(io, self.response_bytes_max).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, request: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_frame(io, &request, self.request_bytes_max).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, response: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_frame(io, &response, self.response_bytes_max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    fn codec() -> FrameCodec {
        FrameCodec::new(Lane::Transactions, 8, 0, Arc::new(Counters::default()))
    }

    fn framed(length: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    #[tokio::test]
    async fn a_frame_round_trips() {
        let codec = codec();
        let mut written = Cursor::new(Vec::new());
        codec.write_frame(&mut written, b"abc", 8).await.expect("written");
        let mut reader = Cursor::new(written.into_inner());
        assert_eq!(codec.read_frame(&mut reader, 8).await.expect("read"), b"abc");
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_before_its_body_is_read() {
        let codec = codec();
        let mut reader = Cursor::new(framed(9, &[0; 9]));
        let error = codec.read_frame(&mut reader, 8).await.expect_err("over the limit");
        assert!(is_too_large(&error));
        assert_eq!(reader.position(), LENGTH_PREFIX_BYTES as u64, "the body was not read");
        let error = codec
            .write_frame(&mut Cursor::new(Vec::new()), &[0; 9], 8)
            .await
            .expect_err("over the limit");
        assert!(is_too_large(&error));
        assert_eq!(codec.counters.snapshot().transactions.dropped_oversized, 2);
    }

    #[tokio::test]
    async fn trailing_and_missing_bytes_are_refused() {
        let codec = codec();
        let trailing = codec.read_frame(&mut Cursor::new(framed(2, b"abc")), 8).await;
        assert!(trailing.is_err_and(|error| !is_too_large(&error)));
        let truncated = codec.read_frame(&mut Cursor::new(framed(4, b"abc")), 8).await;
        assert!(truncated.is_err());
        let empty_ack = codec.read_frame(&mut Cursor::new(framed(0, b"")), 0).await;
        assert_eq!(empty_ack.expect("an empty ack"), Vec::<u8>::new());
    }
}
