//! A JSON body for the answers hyper writes on its own.
//!
//! When a request cannot be parsed (400), its target is too long (414) or
//! its headers too large (431), hyper answers by itself with an empty body
//! before any handler runs. Clients of this API expect `{"error": "..."}`
//! on every error, so this stream wrapper recognises those answers on the
//! way out (an error status and no `server` header, which every response of
//! ours carries) and gives them the body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Only the start of a write is inspected: hyper's own answers are short.
const HEAD_SCAN_BYTES: usize = 1024;

pub struct JsonCannedErrors<S> {
    inner: S,
    /// Rewritten bytes not yet accepted by `inner`.
    pending: Vec<u8>,
    pending_from: usize,
}

impl<S> JsonCannedErrors<S> {
    pub fn new(inner: S) -> Self {
        JsonCannedErrors {
            inner,
            pending: Vec::new(),
            pending_from: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> JsonCannedErrors<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_from < self.pending.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.pending_from..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_from += n;
        }
        self.pending.clear();
        self.pending_from = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonCannedErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonCannedErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_drain(cx))?;
        let Some(rewritten) = with_json_body(buf) else {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        };
        // The whole of `buf` is taken now; what `inner` does not accept at
        // once is written before anything else.
        self.pending = rewritten;
        self.pending_from = 0;
        match self.poll_drain(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Whole buffers, so that a response head arrives in one write.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// `buf` with a JSON body when it is one of hyper's own bodiless error answers.
fn with_json_body(buf: &[u8]) -> Option<Vec<u8>> {
    let scan = &buf[..buf.len().min(HEAD_SCAN_BYTES)];
    if !scan.starts_with(b"HTTP/1.") || scan.len() < 12 {
        return None;
    }
    let status = std::str::from_utf8(&scan[9..12]).ok()?;
    let message = match status {
        "400" => "Bad request.",
        "414" => "URI too long.",
        "431" => "Request header fields too large.",
        _ => return None,
    };
    let head_end = scan.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&scan[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let headers: Vec<&str> = lines.collect();
    let lower = |h: &&str| h.to_ascii_lowercase();
    if headers.iter().map(lower).any(|h| h.starts_with("server:"))
        || !headers
            .iter()
            .map(lower)
            .any(|h| h.replace(' ', "") == "content-length:0")
    {
        return None;
    }
    let body = serde_json::json!({ "error": message }).to_string();
    let mut out = String::with_capacity(head_end + body.len() + 128);
    out.push_str(status_line);
    out.push_str("\r\n");
    for header in headers {
        if lower(&header).starts_with("content-length:") {
            continue;
        }
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\nserver: {}\r\nconnection: close\r\n\r\n{body}",
        body.len(),
        super::response::SERVER_HEADER
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&buf[head_end + 4..]);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_answers_get_a_json_body() {
        let canned = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(with_json_body(canned).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("content-type: application/json\r\n"), "{out}");
        assert!(out.contains("date: Tue"), "{out}");
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(body).unwrap()["error"],
            "Request header fields too large."
        );
    }

    #[test]
    fn our_own_answers_are_left_alone() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nserver: dbagent/0.1.0\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(with_json_body(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(with_json_body(ok), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(with_json_body(with_body), None);
    }
}
