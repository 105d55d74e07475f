//! Listeners: HTTP/1.1 on one port, optionally HTTPS (rustls) on a second, both serving the same
//! routes. Keep-alive, header and body timeouts so slow clients cannot pin connections.

use super::ServerError;
use super::state::AppState;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to send a request's headers or body (also bounds idle keep-alive
/// connections). Delivery Optimization keeps idle connections about 31 s, so the default is above that.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: Option<String>,
    pub https_listen: Option<String>,
    pub tls: Option<TlsFiles>,
    pub client_timeout: Duration,
    /// Event loops serving connections, each on a thread of its own ([`EventLoops`]); 0 (the
    /// default): the caller's runtime serves them.
    pub event_loops: usize,
    /// Every connection starts with a PROXY protocol header from a load balancer, which names
    /// the client (`proxy_protocol.rs`).
    pub proxy_protocol: bool,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            listen: None,
            https_listen: None,
            tls: None,
            client_timeout: DEFAULT_CLIENT_TIMEOUT,
            event_loops: 0,
            proxy_protocol: false,
        }
    }
}

/// Bound sockets, so the caller knows the actual addresses (port 0 picks a free one).
pub struct Listeners {
    http: Option<TcpListener>,
    https: Option<(TcpListener, TlsAcceptor)>,
    client_timeout: Duration,
    event_loops: usize,
    proxy_protocol: bool,
}

async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr: addr.to_string(), source })
}

fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServerError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServerError::Tls {
            what: "certificate",
            path: files.cert.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ServerError::Tls {
            what: "certificate",
            path: files.cert.clone(),
            message: "no PEM CERTIFICATE block found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| ServerError::Tls {
        what: "key",
        path: files.key.clone(),
        message: format!("{e} (expected a PEM private key: PKCS#8, RSA or EC)"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls {
            what: "configuration",
            path: files.cert.clone(),
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls {
            what: "certificate",
            path: files.cert.clone(),
            message: format!("does not match the key {}: {e}", files.key.display()),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Listeners {
    pub async fn bind(options: &ServeOptions) -> Result<Listeners, ServerError> {
        let https = match (&options.https_listen, &options.tls) {
            (Some(addr), Some(files)) => {
                let acceptor = tls_acceptor(files)?;
                Some((bind(addr).await?, acceptor))
            }
            (Some(addr), None) => {
                return Err(ServerError::Tls {
                    what: "files",
                    path: PathBuf::from(addr),
                    message: "--https-listen needs --tls-cert and --tls-key".into(),
                });
            }
            (None, _) => None,
        };
        let http = match &options.listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Listeners {
            http,
            https,
            client_timeout: options.client_timeout,
            event_loops: options.event_loops,
            proxy_protocol: options.proxy_protocol,
        })
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }
}

fn http1(timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new()).header_read_timeout(timeout).keep_alive(true).max_buf_size(1 << 20);
    b
}

/// The next connection and its peer's address; on accept errors (out of file descriptors and
/// the like) waits rather than spinning.
async fn next_connection(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                return (stream, peer);
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A connection that gives up on a peer that stopped reading: a write that makes no progress
/// for `limit` fails, and the connection ends. Without it an answer nobody reads would hold its
/// connection, and whatever the answer pins, for as long as the peer keeps the socket open.
///
/// Progress means `MIN_PROGRESS` bytes since the writes stalled: a peer that reads a few bytes now
/// and then (a trickle) is cut off too, and holds its answer no longer than one that reads none.
struct WriteStall<T> {
    inner: T,
    limit: Duration,
    stalled_since: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes written since the writes stalled.
    since_stall: usize,
}

/// What a peer must take within the client timeout once writes stall: 128 KiB in 45 s is a link
/// of 23 kbit/s.
const MIN_PROGRESS: usize = 128 << 10;

impl<T> WriteStall<T> {
    fn new(inner: T, limit: Duration) -> WriteStall<T> {
        WriteStall { inner, limit, stalled_since: None, since_stall: 0 }
    }

    /// The write is pending: fail once it has been for `limit`.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let timer = self.stalled_since.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading the answer",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A write: bytes accepted are progress, once there are enough of them.
    fn wrote(
        &mut self,
        result: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Pending => self.pending(cx),
            Poll::Ready(Ok(n)) if self.stalled_since.is_some() => {
                self.since_stall += n;
                if self.since_stall >= MIN_PROGRESS {
                    (self.stalled_since, self.since_stall) = (None, 0);
                }
                Poll::Ready(Ok(n))
            }
            ready => ready,
        }
    }

    /// A flush or shutdown: done is not progress on a stalled write (a socket flushes at once).
    fn settled(
        &mut self,
        result: Poll<io::Result<()>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        match result {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStall<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStall<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.settled(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.settled(result, cx)
    }
}

/// The app for one connection: every request carries the peer's address.
fn with_peer(
    app: &axum::Router,
    peer: SocketAddr,
) -> impl tower::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    use tower::ServiceExt;
    app.clone().map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(super::routes::Peer(peer.ip()));
        request
    })
}

/// One HTTP connection, served to its end.
async fn serve_http(
    stream: tokio::net::TcpStream,
    app: &axum::Router,
    peer: SocketAddr,
    timeout: Duration,
) {
    let service = TowerToHyperService::new(with_peer(app, peer));
    if let Err(e) = http1(timeout)
        .serve_connection(TokioIo::new(WriteStall::new(stream, timeout)), service)
        .await
    {
        tracing::debug!("connection ended: {e}");
    }
}

/// One HTTPS connection: the handshake within the client timeout, then served to its end.
async fn serve_https(
    stream: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    app: &axum::Router,
    peer: SocketAddr,
    timeout: Duration,
) {
    let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!("TLS handshake failed: {e}"),
        Err(_) => return tracing::debug!("TLS handshake timed out"),
    };
    let service = TowerToHyperService::new(with_peer(app, peer));
    if let Err(e) =
        http1(timeout).serve_connection(TokioIo::new(WriteStall::new(tls, timeout)), service).await
    {
        tracing::debug!("connection ended: {e}");
    }
}

/// Serves until `shutdown` completes: connections accepted on the caller's runtime and served
/// there or by [`EventLoops`], the snapshot refresh on the caller's runtime.
pub async fn serve(
    state: Arc<AppState>,
    listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    if let Some(port) = listeners.http_addr().or(listeners.https_addr()).map(|a| a.port()) {
        state.name_front_end(&super::metrics::default_front_end(port));
    }
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(super::refresh::watch(state.clone()));
    let loops = Arc::new(EventLoops::start(&state, &listeners)?);
    if let Some(l) = listeners.http {
        tasks.spawn(accept(l, Scheme::Http, loops.clone()));
    }
    if let Some((l, _)) = listeners.https {
        tasks.spawn(accept(l, Scheme::Https, loops.clone()));
    }
    shutdown.await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    if let Some(loops) = Arc::into_inner(loops) {
        loops.stop().await;
    }
    // Sync times wait in memory for up to a second: written before the process ends.
    state.writer.flush().await;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Scheme {
    Http,
    Https,
}

/// Accepts connections and hands each over to be served.
async fn accept(listener: TcpListener, scheme: Scheme, loops: Arc<EventLoops>) {
    loop {
        let (stream, peer) = next_connection(&listener).await;
        loops.hand_over(stream, peer, scheme);
    }
}

/// A connection on its way from the acceptor to an event loop.
struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    scheme: Scheme,
}

/// Blocking work (scans, renders, file reads) an event loop may run at once.
const BLOCKING_THREADS_PER_LOOP: usize = 8;

/// Event loops, one per core as nginx runs its workers: each a single-threaded runtime on its own
/// thread that serves the connections it takes, to their end. Measured under `wrk` on cached
/// answers, this served half as much again as one work-stealing runtime, whose wake-ups of idle
/// workers (futexes, rescheduling interrupts) cost more than the answers. Work that takes long
/// (scans, renders, large parses and compressions, file reads, freeing large trees) goes to the
/// loop's blocking threads.
///
/// Accepted connections wait in one queue, and every loop is told of each: the first loop free
/// to look takes it. A loop that is busy or not scheduled (the machine's other work can keep a
/// thread off its core for a tenth of a second) takes nothing meanwhile, so a new connection,
/// a load balancer's health probe among them, never waits behind one loop while another is free.
///
/// With no loops asked for, the caller's runtime serves every connection (`direct`). That is
/// the default: tokio's work stealing keeps every connection moving when the host's other work
/// takes a core away, which a loop cannot do for the connections it holds (seen in CI's parallel
/// test run: a health probe waited 96 ms on a loop kept off its core).
struct EventLoops {
    handoff: Arc<Handoff>,
    threads: Vec<std::thread::JoinHandle<()>>,
    direct: Option<Apps>,
}

/// Connections on their way from the acceptor to a loop.
#[derive(Default)]
struct Handoff {
    pending: std::sync::Mutex<std::collections::VecDeque<Accepted>>,
    /// One per loop.
    wake: Vec<tokio::sync::Notify>,
    closed: std::sync::atomic::AtomicBool,
}

impl Handoff {
    fn take(&self) -> Option<Accepted> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    fn wake_all(&self) {
        self.wake.iter().for_each(tokio::sync::Notify::notify_one);
    }
}

/// What every loop serves with: one app per scheme, the TLS acceptor.
#[derive(Clone)]
struct Apps {
    http: axum::Router,
    https: Option<(axum::Router, TlsAcceptor)>,
    timeout: Duration,
    proxy_protocol: bool,
}

impl EventLoops {
    fn start(state: &Arc<AppState>, listeners: &Listeners) -> Result<EventLoops, ServerError> {
        let timeout = listeners.client_timeout;
        // Each loop its own apps: a router shared between threads bounces its reference counts
        // between the cores on every request.
        let apps = || Apps {
            http: super::routes::app(state.clone(), "http", timeout),
            https: listeners.https.as_ref().map(|(_, acceptor)| {
                (super::routes::app(state.clone(), "https", timeout), acceptor.clone())
            }),
            timeout,
            proxy_protocol: listeners.proxy_protocol,
        };
        let handoff = Arc::new(Handoff {
            wake: (0..listeners.event_loops).map(|_| tokio::sync::Notify::new()).collect(),
            ..Handoff::default()
        });
        let threads = (0..listeners.event_loops)
            .map(|i| start_loop(i, apps(), handoff.clone()))
            .collect::<Result<_, _>>()?;
        let direct = (listeners.event_loops == 0).then(apps);
        Ok(EventLoops { handoff, threads, direct })
    }

    /// Serves the connection here (no loops), or queues it for the loops: a socket moves
    /// between runtimes as a std socket.
    fn hand_over(&self, stream: tokio::net::TcpStream, peer: SocketAddr, scheme: Scheme) {
        if let Some(apps) = &self.direct {
            tokio::spawn(serve_one(stream, peer, scheme, apps.clone()));
            return;
        }
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => return tracing::warn!("cannot hand over a connection from {peer}: {e}"),
        };
        let connection = Accepted { stream, peer, scheme };
        self.handoff.pending.lock().unwrap_or_else(|e| e.into_inner()).push_back(connection);
        self.handoff.wake_all();
    }

    /// Ends every connection and waits for the loops' threads.
    async fn stop(self) {
        self.handoff.closed.store(true, std::sync::atomic::Ordering::Release);
        self.handoff.wake_all();
        let threads = self.threads;
        let _ =
            tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join())))
                .await;
    }
}

/// Loop `i`: takes connections from `handoff` until it closes.
fn start_loop(
    i: usize,
    apps: Apps,
    handoff: Arc<Handoff>,
) -> Result<std::thread::JoinHandle<()>, ServerError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS_PER_LOOP)
        .thread_name(format!("ferry-blocking-{i}"))
        .build()?;
    let thread = std::thread::Builder::new().name(format!("ferry-loop-{i}")).spawn(move || {
        runtime.block_on(async move {
            while !handoff.is_closed() {
                handoff.wake[i].notified().await;
                // One connection per look, then a turn for the others: in a burst the loops
                // take turns instead of the first one awake taking them all.
                if let Some(Accepted { stream, peer, scheme }) = handoff.take() {
                    match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => {
                            tokio::spawn(serve_one(stream, peer, scheme, apps.clone()));
                        }
                        Err(e) => tracing::warn!("cannot serve a connection from {peer}: {e}"),
                    }
                    handoff.wake[i].notify_one();
                    tokio::task::yield_now().await;
                }
            }
        });
        // The acceptor is gone: connections still open end here, blocking work under way gets a
        // moment to finish.
        runtime.shutdown_timeout(Duration::from_secs(5));
    })?;
    Ok(thread)
}

async fn serve_one(
    mut stream: tokio::net::TcpStream,
    mut peer: SocketAddr,
    scheme: Scheme,
    apps: Apps,
) {
    if apps.proxy_protocol {
        match super::proxy_protocol::read_header(&mut stream, apps.timeout).await {
            Ok(source) => peer = source.unwrap_or(peer),
            Err(e) => return REFUSALS.note(peer, &e),
        }
    }
    match (scheme, apps.https) {
        (Scheme::Http, _) => serve_http(stream, &apps.http, peer, apps.timeout).await,
        (Scheme::Https, Some((app, acceptor))) => {
            serve_https(stream, acceptor, &app, peer, apps.timeout).await
        }
        (Scheme::Https, None) => {}
    }
}

/// Connections refused for their PROXY protocol header, warned of at most once a minute (with
/// how many were refused since), each one at debug: anyone who reaches the port can open
/// connections without a header, and a warning each would let them fill the log.
struct Refusals {
    /// When the last warning was written, and the refusals since.
    last: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

static REFUSALS: Refusals = Refusals { last: std::sync::Mutex::new(None) };

/// How often a refused connection is warned of.
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(60);

impl Refusals {
    fn note(&self, peer: SocketAddr, e: &super::proxy_protocol::ProxyHeaderError) {
        tracing::debug!("connection from {peer} refused: {e}");
        if let Some(more) = self.count(std::time::Instant::now()) {
            let since = match more {
                0 => String::new(),
                n => format!(" ({n} more refused since the last warning)"),
            };
            tracing::warn!("connection from {peer} refused: {e}{since}");
        }
    }

    /// Counts a refusal at `now`: `Some(refused since the last warning)` when it is to be
    /// warned of.
    fn count(&self, now: std::time::Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *last {
            Some((at, since)) if now.duration_since(*at) < REFUSAL_WARNING_EVERY => {
                *since += 1;
                None
            }
            Some((at, since)) => {
                let more = std::mem::take(since);
                *at = now;
                Some(more)
            }
            None => {
                *last = Some((now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by attack: every connection refused for its PROXY protocol header wrote a warning,
    /// so a flood of connections without one (1500 in a second here) wrote as many lines.
    #[test]
    fn refusals_are_warned_of_once_a_minute() {
        let refusals = Refusals { last: std::sync::Mutex::new(None) };
        let start = std::time::Instant::now();
        assert_eq!(refusals.count(start), Some(0), "the first is warned of");
        for i in 1..1500 {
            assert_eq!(refusals.count(start + Duration::from_millis(i)), None);
        }
        assert_eq!(refusals.count(start + REFUSAL_WARNING_EVERY), Some(1499));
        assert_eq!(refusals.count(start + REFUSAL_WARNING_EVERY), None);
    }

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes 256 KiB through a pipe of 4 KiB whose reader takes `chunk` bytes, then waits `pause`.
    async fn write_to_a_reader(chunk: usize, pause: Duration) -> io::Result<()> {
        let (near, mut far) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut buf = vec![0u8; chunk];
            loop {
                match far.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => tokio::time::sleep(pause).await,
                }
            }
        });
        let mut writer = WriteStall::new(near, Duration::from_millis(500));
        writer.write_all(&vec![7u8; 256 << 10]).await
    }

    /// Found by attack: a peer that read a few KB now and then kept its answer, and the memory
    /// it pins, past the client timeout, because any byte counted as progress.
    #[tokio::test]
    async fn a_trickle_is_cut_off_and_a_steady_reader_is_not() {
        let trickle = write_to_a_reader(256, Duration::from_millis(50)).await; // 5 KB/s
        assert_eq!(trickle.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        write_to_a_reader(4096, Duration::ZERO)
            .await
            .expect("a reader that keeps up makes progress");
    }
}
