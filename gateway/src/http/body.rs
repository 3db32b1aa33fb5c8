//! The body type of the data path: no allocation or boxing per request.
//!
//! [`Body`] is what the gateway sends either way: nothing, one buffer (its own answers
//! and rewritten bodies), or a hyper body streamed through unchanged (the common case).

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A request or response body.
#[derive(Debug, Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// One buffer, taken on the first poll.
    Full(Option<Bytes>),
    /// A peer's body, streamed frame by frame.
    Stream(Incoming),
    /// Chunks the gateway produces as they come (the event stream); ends when the
    /// sender is dropped.
    Channel(tokio::sync::mpsc::Receiver<Bytes>),
}

impl Body {
    /// A body of one buffer (empty buffers become [`Body::Empty`]).
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        if b.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(b))
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(s) => Pin::new(s).poll_frame(cx),
            Body::Channel(rx) => rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Stream(s) => s.is_end_stream(),
            Body::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(s) => s.size_hint(),
            Body::Channel(_) => SizeHint::default(),
        }
    }
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It is larger than the limit.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// The peer broke off or sent bad framing.
    #[error("body could not be read: {0}")]
    Broken(#[from] hyper::Error),
}

/// Reads a whole body, refusing more than `limit` bytes. `reserve` pre-sizes the buffer
/// (an announced length, capped at `limit`).
pub async fn read_to_limit(
    body: &mut Incoming,
    limit: usize,
    reserve: Option<usize>,
) -> Result<Bytes, ReadError> {
    use http_body_util::BodyExt;
    let mut buf = bytes::BytesMut::with_capacity(reserve.unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ReadError::TooLarge(limit));
            }
            if buf.is_empty() && data.len() == reserve.unwrap_or(0) {
                // One frame holding everything: no copy.
                return drain_rest(body, data, limit).await;
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// After a first frame that may be the whole body: return it without copying when the
/// stream ends there, else continue buffering.
async fn drain_rest(body: &mut Incoming, first: Bytes, limit: usize) -> Result<Bytes, ReadError> {
    use http_body_util::BodyExt;
    let mut rest: Option<bytes::BytesMut> = None;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let buf = rest.get_or_insert_with(|| bytes::BytesMut::from(&first[..]));
            if buf.len() + data.len() > limit {
                return Err(ReadError::TooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(rest.map_or(first, bytes::BytesMut::freeze))
}
