//! The response body of a change stream, for every transport that serves
//! one (gRPC Watch, the HTTP event stream): the stream's frames as they
//! come, each counted on the connection's ledger, then the end the
//! transport gives it (gRPC: trailers with the status; an event stream:
//! nothing). The stream is held inline, not boxed: the body is boxed once,
//! as the response's, watcher and all; and it keeps the call's metrics
//! record itself ([`TallyOffer`](super::metrics::TallyOffer)), so no
//! wrapping body is polled per event per reader.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::Stream;
use http_body::Frame;
use tonic::{Code, Status};

use super::metrics::Tally;
use crate::budget::Consumer;

/// How a stream ends, by transport: the code its metrics record, and the
/// trailers to send (none: the body just ends).
pub type End = fn(Option<&Consumer>) -> (Code, Option<http::HeaderMap>);

pin_project_lite::pin_project! {
    /// See the module docs.
    pub struct StreamBody<S> {
        #[pin]
        events: Option<S>,
        consumer: Option<Arc<Consumer>>,
        // The call's record in the RPC metrics, kept here rather than by a
        // wrapping body (see `TallyOffer`).
        tally: Option<Tally>,
        end: End,
    }
}

impl<S> StreamBody<S> {
    /// The body of `events`, counted on `consumer`'s ledger, recorded in
    /// `tally`, ended by `end`.
    pub fn new(events: S, consumer: Option<Arc<Consumer>>, tally: Option<Tally>, end: End) -> Self {
        StreamBody { events: Some(events), consumer, tally, end }
    }
}

impl<S: Stream<Item = Bytes>> http_body::Body for StreamBody<S> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let mut this = self.project();
        let Some(events) = this.events.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        match events.poll_next(cx) {
            Poll::Ready(Some(frame)) => {
                match this.consumer {
                    Some(c) => {
                        c.handed(frame.len());
                        if c.wakes_writer() {
                            end_turn();
                        }
                    }
                    None => end_turn(),
                }
                Poll::Ready(Some(Ok(Frame::data(frame))))
            }
            Poll::Ready(None) => {
                this.events.set(None);
                let (code, trailers) = (this.end)(this.consumer.as_deref());
                if let Some(t) = this.tally {
                    t.finish(code);
                }
                Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.events.is_none()
    }
}

/// Spends what is left of the current task's cooperative budget, so that the
/// h2 connection task, which handing over this frame wakes, is queued
/// behind the other watchers' tasks rather than run next.
///
/// Why: one change wakes every watcher's stream task at once. Each task
/// hands its event to h2, which wakes the connection's writer task; tokio's
/// multi-threaded scheduler puts a task woken that way in its "LIFO slot"
/// and polls it right after the current one, unless the current task has
/// spent its budget, in which case it goes to the back of the queue. So
/// without this, the writer runs after every single watcher and makes one
/// socket write per watcher (measured: 1 010 write system calls for one
/// change to 1 000 watchers with the server on one core); with it, the
/// writer runs once the watchers have queued their frames and writes them
/// together. Only the stream whose frame may have woken the writer needs
/// this (`Consumer::wakes_writer`): it costs a tenth of a change's fan-out
/// when every stream does it.
fn end_turn() {
    use std::task::{Context, Poll};
    use tokio::task::coop;
    // `poll_proceed` takes one unit per call and, once none is left, says
    // Pending and registers the context's waker for a deferred wake-up: a
    // no-op waker, since this task is about to yield an event, not wait.
    let mut cx = Context::from_waker(std::task::Waker::noop());
    while let Poll::Ready(spent) = coop::poll_proceed(&mut cx) {
        // The guard would give the unit back on drop unless told that
        // progress was made; forgetting it (it owns nothing) keeps the unit
        // spent at half the cost of `made_progress` and a drop.
        std::mem::forget(spent);
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    /// An event stream's end sends no trailers: the body just ends after
    /// its last event (what an `EventSource` expects).
    #[tokio::test]
    async fn an_end_without_trailers_just_ends_the_body() {
        fn plain(_: Option<&Consumer>) -> (Code, Option<http::HeaderMap>) {
            (Code::Ok, None)
        }
        let events = tokio_stream::iter(vec![Bytes::from_static(b"id: 1\n\n")]);
        let mut body = std::pin::pin!(StreamBody::new(events, None, None, plain));
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "id: 1\n\n");
        assert!(body.frame().await.is_none(), "no trailers frame");
        assert!(http_body::Body::is_end_stream(&*body));
    }
}
