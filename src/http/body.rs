//! The `/metrics` body, rendered as the connection takes it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Frame;

use crate::exporter::{Exporter, Scrape};
use crate::metrics::{Metrics, Progress, ReloadedDuringScrape, StateChunks};
use crate::state::unix_now;

/// How much of the `/metrics` text is rendered at a time. Memory holds about this much of the
/// text per scrape in flight (tens of megabytes at ten thousand domains otherwise), and the
/// state's lock is held for one chunk, so check rounds can write their results in between.
pub const METRICS_CHUNK_SIZE: usize = 256 * 1024;
/// Room past [`METRICS_CHUNK_SIZE`] for the record that crosses it, so a chunk's buffer is
/// allocated once.
pub const METRICS_CHUNK_SLACK: usize = 16 * 1024;

/// The `/metrics` body, rendered a chunk at a time as the connection asks for more: the state's
/// families first, then `dkim_resolver_up` and the registry in the last chunk.
pub(super) struct MetricsBody {
    /// The state, the registry and the resolvers' verdicts.
    exporter: Arc<Exporter>,
    /// How far the state has been rendered.
    chunks: StateChunks,
    /// The size a chunk reaches before it is sent; the last one may be smaller.
    chunk_size: usize,
    /// Whether the last chunk, or the error, has been returned.
    finished: bool,
    /// Keeps reloads waiting until the body is sent (or dropped).
    _scrape: Scrape,
}

impl MetricsBody {
    pub(super) fn new(exporter: Arc<Exporter>, chunk_size: usize) -> MetricsBody {
        MetricsBody {
            _scrape: exporter.scrape(),
            exporter,
            chunks: StateChunks::new(),
            chunk_size,
            finished: false,
        }
    }

    /// Renders the next chunk; `None` after the last one.
    fn next_chunk(&mut self) -> Option<Result<Bytes, ReloadedDuringScrape>> {
        if self.finished {
            return None;
        }
        let mut out = String::with_capacity(self.chunk_size.saturating_add(METRICS_CHUNK_SLACK));
        let progress = {
            let state = self.exporter.state.read();
            self.chunks.write_next(&state, &mut out, self.chunk_size)
        };
        match progress {
            Ok(Progress::More) => {}
            Ok(Progress::Done) => {
                self.finished = true;
                {
                    let state = self.exporter.state.read();
                    let ses = self.exporter.ses.discovered();
                    Metrics::render_ses(&mut out, &ses, &state, unix_now(), self.exporter.shard);
                }
                Metrics::render_dmarc(
                    &mut out,
                    &self.exporter.dmarc.readings(),
                    &self.exporter.dmarc.counted(),
                );
                let resolvers_up = self.exporter.resolvers_up();
                self.exporter.metrics.render_tail(&mut out, &resolvers_up);
            }
            Err(e) => {
                // The client sees the body break off, a failed scrape, rather than a text with
                // series missing or repeated; Prometheus scrapes again at the next interval.
                self.finished = true;
                tracing::warn!(error = %e, "/metrics scrape cut short");
                return Some(Err(e));
            }
        }
        Some(Ok(Bytes::from(out)))
    }
}

impl hyper::body::Body for MetricsBody {
    type Data = Bytes;
    type Error = ReloadedDuringScrape;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReloadedDuringScrape>>> {
        // A chunk renders in well under a millisecond and never waits on I/O: no need to hand
        // it to another thread.
        Poll::Ready(self.get_mut().next_chunk().map(|c| c.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.finished
    }
}
