//! The listener under a server's graceful shutdown: no connection it has let in is reset or cut off
//! before its first request.
//!
//! A graceful shutdown that drops its listener with connections still in the kernel's accept queue has the
//! kernel reset them, and hyper's closes a connection that has read nothing yet as idle, so a client that
//! has just connected and is sending sees the connection end. [`draining`] stands in front of both. It
//! also holds the cap on connections served at once.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};

/// How long, once the listener has closed, a connection that has read nothing may take to send its
/// first request before the graceful shutdown closes it anyway. A client sends right after connecting;
/// this only bounds one that connected and never will.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(2);

/// A listener that lets at most `max_connections` connections in at once and, once `until` resolves,
/// accepts what the kernel has queued and closes; and the future that resolves once every connection
/// accepted is with the server and has read its first bytes (or [`FIRST_REQUEST_GRACE`] has passed),
/// when the server may begin its graceful shutdown.
pub(super) fn draining(
    listener: TcpListener,
    max_connections: usize,
    until: impl Future<Output = ()> + Send + 'static,
) -> (DrainingListener, impl Future<Output = ()> + Send + 'static) {
    let (handed_over, all_handed_over) = oneshot::channel();
    let unread = watch::Sender::new(0_usize);
    let listener = DrainingListener {
        listener: Some(listener),
        until: Box::pin(until),
        slots: Arc::new(Semaphore::new(max_connections.clamp(1, Semaphore::MAX_PERMITS))),
        queued: VecDeque::new(),
        handed_over: Some(handed_over),
        unread: unread.clone(),
    };
    let shutdown = async move {
        // An error is the listener dropped with its server, which then has nothing left to hand over.
        let _ = all_handed_over.await;
        let mut unread = unread.subscribe();
        let _ = tokio::time::timeout(FIRST_REQUEST_GRACE, unread.wait_for(|unread| *unread == 0)).await;
    };
    (listener, shutdown)
}

/// See [`draining`].
pub(super) struct DrainingListener {
    /// `None` once closed.
    listener: Option<TcpListener>,
    until: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// One permit per connection that may be open at once.
    slots: Arc<Semaphore>,
    /// Accepted when closing, not yet handed to the server.
    queued: VecDeque<(TcpStream, SocketAddr)>,
    handed_over: Option<oneshot::Sender<()>>,
    /// Connections that have not read yet.
    unread: watch::Sender<usize>,
}

/// Makes the kernel drop new connection requests (TCP SYN) to the listening socket, so that none joins
/// the accept queue between the drain and the close, where the close would reset it: a client whose
/// request is dropped tries again after its retransmission timeout and is refused by the closed port.
/// Connections whose handshake is under way still complete, and are drained. Linux only (a socket
/// filter); elsewhere that narrow window stays.
fn refuse_new_connections(listener: &std::net::TcpListener) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use socket2::{SockFilter, SockRef};
        // Classic BPF on the TCP header: load the flags byte; SYN set: drop; anything else: keep.
        const LOAD_FLAGS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
        const JUMP_IF_SET: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
        const RETURN: u16 = 0x06; // BPF_RET | BPF_K
        const TCP_FLAGS_OFFSET: u32 = 13;
        const SYN: u32 = 0x02;
        let drop_syn = [
            SockFilter::new(LOAD_FLAGS, 0, 0, TCP_FLAGS_OFFSET),
            SockFilter::new(JUMP_IF_SET, 0, 1, SYN),
            SockFilter::new(RETURN, 0, 0, 0),
            SockFilter::new(RETURN, 0, 0, u32::MAX),
        ];
        if let Err(error) = SockRef::from(listener).attach_filter(&drop_syn) {
            tracing::debug!(%error, "new connections could not be held off while the listener drains");
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = listener;
}

impl DrainingListener {
    /// Accepts every connection the kernel has queued, without waiting for more, then closes the socket,
    /// so that a later connect is refused at once rather than queued and then reset.
    fn close(&mut self) {
        let Some(listener) = self.listener.take() else { return };
        let listener = match listener.into_std() {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "the listener could not be drained; queued connections are reset");
                return;
            }
        };
        refuse_new_connections(&listener);
        // `into_std` leaves the socket non-blocking: an empty queue answers `WouldBlock`.
        loop {
            match listener.accept() {
                Ok((stream, peer)) => match stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream)) {
                    Ok(stream) => self.queued.push_back((stream, peer)),
                    Err(error) => tracing::error!(%error, %peer, "a queued connection could not be served"),
                },
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                // The client gave up while queued.
                Err(error) if error.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(error) => {
                    tracing::error!(%error, "draining the listener failed; the connections left are reset");
                    break;
                }
            }
        }
    }

    fn track(&self, stream: TcpStream, slot: Option<OwnedSemaphorePermit>) -> Connection {
        self.unread.send_modify(|unread| *unread += 1);
        Connection { stream, unread: Some(self.unread.clone()), _slot: slot }
    }

    /// The next connection, once one may be served: a free slot, then a connection from the socket. Once
    /// closing has come, the connections the drain took from the kernel's queue, slot or not; then never.
    pub(super) async fn accept(&mut self) -> (Connection, SocketAddr) {
        if let Some(listener) = &self.listener {
            let slots = Arc::clone(&self.slots);
            tokio::select! {
                // Once closing has come, no connection is taken from the socket but by the drain.
                biased;
                () = &mut self.until => self.close(),
                (stream, peer, slot) = accept_in_slot(listener, slots) => return (self.track(stream, Some(slot)), peer),
            }
        }
        if let Some((stream, peer)) = self.queued.pop_front() {
            let slot = Arc::clone(&self.slots).try_acquire_owned().ok();
            return (self.track(stream, slot), peer);
        }
        // The server spawns each connection's task before it asks for the next: every one accepted is
        // with it now.
        if let Some(handed_over) = self.handed_over.take() {
            let _ = handed_over.send(());
        }
        std::future::pending().await
    }
}

/// Waits for a free slot, then accepts a connection into it. An error of `accept` other than one
/// connection's (such as too many open files) is logged and retried after a pause, as `axum::serve` does,
/// rather than spinning.
async fn accept_in_slot(
    listener: &TcpListener,
    slots: Arc<Semaphore>,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    let Ok(slot) = slots.acquire_owned().await else {
        unreachable!("the semaphore of connection slots is never closed")
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => return (stream, peer, slot),
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                tracing::error!(%error, "accepting a connection failed; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Errors of one connection that went away before it was accepted, not of the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection, counted as unread until its first read returns. By then hyper holds the
/// first bytes of a request, and finishes it when the graceful shutdown comes.
pub(super) struct Connection {
    stream: TcpStream,
    /// `Some` while unread.
    unread: Option<watch::Sender<usize>>,
    /// The connection's place among those served at once, given back when it closes; `None` for one the
    /// drain accepted over the limit.
    _slot: Option<OwnedSemaphorePermit>,
}

impl Connection {
    fn has_read(&mut self) {
        if let Some(unread) = self.unread.take() {
            unread.send_modify(|unread| *unread -= 1);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.has_read();
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        // Bytes, the end of the stream or an error: either a request has begun or the connection ends.
        if read.is_ready() {
            self.has_read();
        }
        read
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
