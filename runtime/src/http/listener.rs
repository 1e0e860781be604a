//! The listener under a server's graceful shutdown: no connection it has let in is reset or cut off
//! before its first request.
//!
//! axum's graceful shutdown drops its listener with connections still in the kernel's accept queue, which
//! the kernel then resets, and hyper's closes a connection that has read nothing yet as idle, so a client
//! that has just connected and is sending sees the connection end. [`draining`] stands in front of both.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::{Listener, ListenerExt, TapIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

/// How long, once the listener has closed, a connection that has read nothing may take to send its
/// first request before the graceful shutdown closes it anyway. A client sends right after connecting;
/// this only bounds one that connected and never will.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(2);

/// [`DrainingListener`] in axum's `TapIo`, whose tap does nothing: axum gives `ConnectInfo<SocketAddr>` to
/// `TapIo` listeners, and the orphan rule forbids implementing it here for a listener of our own.
pub(super) type Draining = TapIo<DrainingListener, fn(&mut Connection)>;

/// A listener for `axum::serve` that, once `until` resolves, accepts what the kernel has queued and
/// closes, and the future to give `with_graceful_shutdown`: it resolves once every connection accepted is
/// with axum and has read its first bytes (or [`FIRST_REQUEST_GRACE`] has passed).
pub(super) fn draining(
    listener: TcpListener,
    until: impl Future<Output = ()> + Send + 'static,
) -> (Draining, impl Future<Output = ()> + Send + 'static) {
    let (handed_over, all_handed_over) = oneshot::channel();
    let unread = watch::Sender::new(0_usize);
    let listener = DrainingListener {
        listener: Some(listener),
        until: Box::pin(until),
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
    let tap: fn(&mut Connection) = |_| {};
    (listener.tap_io(tap), shutdown)
}

/// See [`draining`].
pub(super) struct DrainingListener {
    /// `None` once closed.
    listener: Option<TcpListener>,
    until: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Accepted when closing, not yet handed to axum.
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

    fn track(&self, stream: TcpStream) -> Connection {
        self.unread.send_modify(|unread| *unread += 1);
        Connection { stream, unread: Some(self.unread.clone()) }
    }
}

impl Listener for DrainingListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        if let Some(listener) = &mut self.listener {
            tokio::select! {
                // Once closing has come, no connection is taken from the socket but by the drain.
                biased;
                () = &mut self.until => self.close(),
                // axum's accept, which retries after an error.
                (stream, peer) = Listener::accept(listener) => return (self.track(stream), peer),
            }
        }
        if let Some((stream, peer)) = self.queued.pop_front() {
            return (self.track(stream), peer);
        }
        // axum spawns each connection's task before it asks for the next: every one accepted is with it now.
        if let Some(handed_over) = self.handed_over.take() {
            let _ = handed_over.send(());
        }
        std::future::pending().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(io::Error::other("the listener has closed")),
        }
    }
}

/// An accepted connection, counted as unread until its first read returns. By then hyper holds the
/// first bytes of a request, and finishes it when the graceful shutdown comes.
pub(super) struct Connection {
    stream: TcpStream,
    /// `Some` while unread.
    unread: Option<watch::Sender<usize>>,
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
