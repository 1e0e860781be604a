//! The request body as the server hands it to the application: cut at the body limit, and watched, so
//! that a request timeout can tell a client still sending from a handler still working.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use http_body_util::Limited;

/// Whether the handler is waiting for the client to send more of the body: its last read of the body
/// found nothing yet.
#[derive(Debug, Clone, Default)]
pub(super) struct BodyProgress(Arc<AtomicBool>);

impl BodyProgress {
    /// The handler asked for more of the body than the client has sent.
    pub(super) fn waiting_for_client(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set_waiting(&self, waiting: bool) {
        self.0.store(waiting, Ordering::Relaxed);
    }
}

pin_project_lite::pin_project! {
    /// `body`, at most `limit` bytes of it (more is an [`http_body_util::LengthLimitError`], which axum's
    /// extractors answer with 413), reporting to a [`BodyProgress`].
    pub(super) struct WatchedBody {
        #[pin]
        inner: Limited<Body>,
        progress: BodyProgress,
    }
}

impl WatchedBody {
    pub(super) fn new(body: Body, limit: usize, progress: BodyProgress) -> WatchedBody {
        WatchedBody { inner: Limited::new(body, limit), progress }
    }
}

impl http_body::Body for WatchedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        this.progress.set_waiting(frame.is_pending());
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
