//! The first request head of each connection, read before hyper parses it, so that a head too
//! large is refused with a body that says why: hyper refuses those itself, with an empty 414 or
//! 431. The bytes read are then handed to hyper as if it had read them.
//!
//! Later requests on a kept-alive connection reach hyper directly, and a head too large there
//! gets hyper's own empty answer; the clients that send such heads (a long `/probe` URL from
//! curl or a script) send one request per connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};

/// The longest request line (method, URI, version) answered; longer gets 414.
pub const MAX_REQUEST_LINE: usize = 16 * 1024;
/// The largest request head (request line and headers) answered; larger gets 431.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// How long a refused client is read from (and ignored) after its answer, at most.
const LINGER: Duration = Duration::from_secs(2);
/// How much of a refused client's request is read (and ignored) after its answer, at most.
const LINGER_BYTES: usize = 1024 * 1024;

/// A stream whose first bytes were already read: they are read again first.
pub struct Replayed<S> {
    /// What was read ahead.
    read: Vec<u8>,
    /// How much of `read` was handed out again.
    at: usize,
    /// The connection.
    stream: S,
}

/// Reads the connection's first request head, within `timeout`. A head too large is answered
/// with 414 or 431 and a text body, and the connection closed: `None`, as when the client
/// sends nothing in time or goes away.
pub async fn screen<S>(mut stream: S, timeout: Duration) -> Option<Replayed<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut read = Vec::with_capacity(4096);
    let verdict = tokio::time::timeout(timeout, async {
        let mut chunk = [0u8; 8192];
        let mut line_end = None;
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                // Gone, or a close after a partial head: hyper has nothing to answer either.
                return (!read.is_empty()).then_some(Ok(()));
            }
            let searched_from = read.len().saturating_sub(3);
            read.extend_from_slice(&chunk[..n]);
            if let Some(refusal) = refusal(&read, searched_from, &mut line_end) {
                return Some(refusal);
            }
        }
    })
    .await
    .ok()
    .flatten()?;
    match verdict {
        Ok(()) => Some(Replayed {
            read,
            at: 0,
            stream,
        }),
        Err(response) => {
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
            // The client may still be sending its head. Closing with its bytes unread would
            // reset the connection and could lose the answer before it reads it: read on, a
            // little while, and drop what comes.
            let _ = tokio::time::timeout(LINGER, async {
                let mut sink = [0u8; 8192];
                let mut left = LINGER_BYTES;
                while left > 0 {
                    match stream.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            })
            .await;
            None
        }
    }
}

/// Whether the bytes read so far hold a whole head (`Ok`), one too large (`Err` with the
/// response), or not yet enough to tell (`None`). Only the bytes from `searched_from` are
/// new; `line_end` keeps where the request line ended once seen, so a client sending a byte at
/// a time costs no more than one sending it all.
fn refusal(
    read: &[u8],
    searched_from: usize,
    line_end: &mut Option<usize>,
) -> Option<Result<(), String>> {
    if line_end.is_none() {
        *line_end = read[searched_from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| searched_from + i);
    }
    if line_end.unwrap_or(read.len()) > MAX_REQUEST_LINE {
        return Some(Err(response(
            "414 URI Too Long",
            &format!(
                "the request line is longer than {MAX_REQUEST_LINE} bytes; /probe takes at most \
                 64 selectors, which fit well within it\n"
            ),
        )));
    }
    let head_end = read[searched_from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| searched_from + i);
    let too_large = || {
        Some(Err(response(
            "431 Request Header Fields Too Large",
            &format!("the request head is larger than {MAX_REQUEST_HEAD} bytes\n"),
        )))
    };
    match head_end {
        Some(end) if end + 4 <= MAX_REQUEST_HEAD => Some(Ok(())),
        Some(_) => too_large(),
        None if read.len() > MAX_REQUEST_HEAD => too_large(),
        None => None,
    }
}

/// A whole HTTP/1.1 response with a text body, closing the connection.
fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Replayed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.read.len() {
            let n = buf.remaining().min(this.read.len() - this.at);
            buf.put_slice(&this.read[this.at..this.at + n]);
            this.at += n;
            if this.at == this.read.len() {
                this.read = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replayed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_judged_by_their_line_and_their_size() {
        let judge = |read: &[u8]| refusal(read, 0, &mut None);
        let whole = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(judge(whole), Some(Ok(())));
        assert_eq!(judge(&whole[..20]), None);
        // A byte at a time.
        let mut line_end = None;
        let verdicts: Vec<_> = (1..=whole.len())
            .map(|n| refusal(&whole[..n], n.saturating_sub(4), &mut line_end))
            .collect();
        assert_eq!(verdicts.last(), Some(&Some(Ok(()))));
        assert!(verdicts[..whole.len() - 1].iter().all(Option::is_none));
        let long_line = format!("GET /probe?{} HTTP/1.1", "a".repeat(MAX_REQUEST_LINE));
        let refused = judge(long_line.as_bytes()).unwrap().unwrap_err();
        assert!(
            refused.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{refused}"
        );
        let big = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "X-Big: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(2000)
        );
        let refused = judge(big.as_bytes()).unwrap().unwrap_err();
        assert!(refused.starts_with("HTTP/1.1 431 "), "{refused}");
        assert!(refused.ends_with("larger than 65536 bytes\n"), "{refused}");
    }
}
