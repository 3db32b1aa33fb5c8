//! The data path: HTTP/1.1 on hyper inside Pingora's server process.
//!
//! Pingora owns the process (listeners, graceful upgrade with socket hand-over, signals,
//! one current-thread runtime per worker thread when `work_stealing` is off); every
//! accepted connection is handed to [`service::HttpApp`], which serves it with hyper's
//! HTTP/1.1 server and runs each request through [`crate::pipeline`]. The backend is
//! reached through a per-thread connection pool ([`upstream`]). Bodies stream both ways
//! unless a step must read them ([`body`]); protocol switches (WebSocket) become a
//! byte tunnel ([`tunnel`]). [`Logged`] runs the `logging` phase when a response ends.

pub mod body;
pub mod inbound;
pub mod service;
pub mod tunnel;
pub mod upstream;

use crate::ctx::RequestCtx;
use crate::pipeline::audit::Ending;
use crate::state::Gateway;
use body::Body;
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A response body that runs the request's `logging` phase once: when it has been sent
/// whole, when it broke off, or when the client went away and hyper dropped it.
pub struct Logged {
    inner: Body,
    done: Option<Done>,
}

struct Done {
    gw: Arc<Gateway>,
    method: http::Method,
    ctx: RequestCtx,
}

impl Logged {
    /// Wraps `inner`; `ctx` is consumed by the logging phase.
    pub fn new(inner: Body, gw: Arc<Gateway>, method: http::Method, ctx: RequestCtx) -> Self {
        Self {
            inner,
            done: Some(Done { gw, method, ctx }),
        }
    }

    fn finish(&mut self, ending: Ending) {
        if let Some(d) = self.done.take() {
            let _entered = d.ctx.span.enter();
            d.gw.finish_request(&d.method, ending, &d.ctx);
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        // A HEAD answer, or a body hyper did not need to poll to its end, is complete.
        let complete = self.inner.is_end_stream()
            || self
                .done
                .as_ref()
                .is_some_and(|d| d.method == http::Method::HEAD);
        self.finish(if complete {
            Ending::Complete
        } else {
            Ending::Broken
        });
    }
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.finish(Ending::Complete),
            Poll::Ready(Some(Err(_))) => this.finish(Ending::Broken),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
