//! The listener: accepts connections within the connection limits, speaks
//! HTTP/1.1 (over TLS when configured), and hands each request to
//! [`super::dispatch`].

use super::canned_errors::JsonCannedErrors;
use super::connections::ConnectionLimits;
use super::response::SERVER_HEADER;
use crate::app::App;
use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Bound on the request line plus headers (hyper answers 431 past it).
const MAX_HEADER_BYTES: usize = 64 * 1024;

pub async fn serve(app: Arc<App>) -> Result<()> {
    let listen = app.config.server.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let tls = match &app.config.server.tls {
        Some((cert, key)) => Some(super::tls::acceptor(cert, key)?),
        None => {
            if !listen.ip().is_loopback() {
                tracing::warn!(%listen, "serving plain HTTP on a non-loopback address: set [server] tls_cert and tls_key");
            }
            None
        }
    };
    let limits = ConnectionLimits::new(
        app.config.server.max_connections,
        app.config.server.max_connections_per_address,
    );
    if let Some(metrics) = app.config.metrics_listen {
        let listener = TcpListener::bind(metrics)
            .await
            .with_context(|| format!("cannot listen on {metrics} ([metrics] listen)"))?;
        tracing::info!(%metrics, "serving /metrics to scrapers");
        tokio::spawn(serve_metrics(Arc::clone(&app), listener));
    }
    tracing::info!(%listen, plugins = app.plugins.current().list.len(), routes = app.plugins.current().routes.len(), "dbagent is serving");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than
                // spin; connections already accepted keep being served.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admitted = match limits.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(refused) => {
                tracing::debug!(%peer, ?refused, "too many connections; closing a new one");
                if tls.is_none() {
                    tokio::spawn(turn_away(stream));
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let tls = tls.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let handshake_timeout = app.config.server.request_timeout;
            match tls {
                None => serve_connection(app, stream, peer).await,
                Some(acceptor) => {
                    // The handshake gets the same bound as reading a request.
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(app, stream, peer).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Connections a metrics-only listener serves at once (scrapers are few).
const MAX_METRICS_CONNECTIONS: usize = 16;

/// The metrics-only listener: plain HTTP, `GET /metrics` alone, bounded.
async fn serve_metrics(app: Arc<App>, listener: TcpListener) {
    let limits = ConnectionLimits::new(MAX_METRICS_CONNECTIONS, MAX_METRICS_CONNECTIONS);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accept failed on the metrics listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(admitted) = limits.admit(peer.ip()) else {
            tokio::spawn(turn_away(stream));
            continue;
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let _admitted = admitted;
            let request_timeout = app.config.server.request_timeout;
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(super::dispatch::metrics_only(&app, request).await) }
            });
            if let Err(e) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(request_timeout)
                .max_header_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "metrics connection ended: {e}");
            }
        });
    }
}

/// Answers a connection over the limits with a short 503, never waiting on
/// the client for long. What the client sent is read and dropped before
/// closing, so that its TCP stack delivers the answer instead of a reset.
async fn turn_away(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"error": "Too many connections; try again later."}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\nserver: {SERVER_HEADER}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < 64 * 1024 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
}

async fn serve_connection<S>(app: Arc<App>, stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let request_timeout = app.config.server.request_timeout;
    let service = service_fn(move |request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(super::dispatch::handle(&app, request, peer).await) }
    });
    if let Err(e) = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(request_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(JsonCannedErrors::new(stream)), service)
        .await
    {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}
