//! DNS over UDP through a few long-lived sockets per resolver, each reply matched to its query by
//! ID and question.
//!
//! hickory's UDP client opens a fresh socket for every query: socket, bind, epoll registration and
//! close, plus a task and a stream per query, which at tens of thousands of queries a second is
//! a large share of the exporter's CPU (BENCHMARKS.md). Here each resolver has [`SOCKETS`]
//! connected sockets, each with one task reading its replies. A socket's local port is picked
//! at random by the kernel and the socket is replaced after [`ROTATE_AFTER`] queries or
//! [`ROTATE_AGE`], so the port an off-path attacker would have to guess keeps changing; the ID is
//! random per query and never shared by two pending queries of a socket.
//!
//! A reply is taken only from the resolver's address (the socket is connected), with the ID of a
//! pending query and the question that query asked, or no question at all (as REFUSED and
//! FORMERR replies may come); others are ignored, as a stub resolver should. A reply with a pending ID that cannot be parsed fails that query as malformed.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::message::{WireQuery, answers_question};
use super::{Place, SLOW_QUERY, lock};
use crate::evidence::{Failure, FailureReason};

/// Sockets per resolver: replies are read by this many tasks, and a burst of replies has this
/// many receive buffers to land in.
pub const SOCKETS: usize = 4;

/// Queries after which a socket is replaced by one on a new random port.
pub const ROTATE_AFTER: u32 = 4096;

/// Age after which a socket is replaced, however few queries it sent.
pub const ROTATE_AGE: Duration = Duration::from_secs(60);

/// Receive buffer asked for each socket. The kernel caps it (`net.core.rmem_max`); a larger
/// buffer only makes drops under bursts less likely.
const RECEIVE_BUFFER: usize = 1 << 20;

/// The largest datagram read; replies are normally within the advertised EDNS size, but a
/// server may send more and it is better read than cut.
const MAX_DATAGRAM: usize = 65_535;

/// Queries waiting for replies on one socket, by ID. Hashed with foldhash: five lookups a
/// query, and the IDs are random.
type Pending = Mutex<HashMap<u16, Waiting, foldhash::fast::RandomState>>;

/// A query waiting for its reply.
struct Waiting {
    /// Tells this query from a later one that reuses its ID once it is answered, so that its
    /// clean-up never removes the newer one.
    serial: u64,
    /// The question section sent, which the reply must repeat.
    question: Box<[u8]>,
    /// Where the reply, or the reason there is none, goes.
    reply: oneshot::Sender<Result<Message, Failure>>,
}

/// One connected socket and the queries waiting on it.
struct Channel {
    /// Connected to the resolver, so the kernel drops datagrams from anyone else.
    socket: Arc<UdpSocket>,
    /// Shared with the reading task, which resolves the waiting queries.
    pending: Arc<Pending>,
    /// Numbers the queries, see [`Waiting::serial`].
    serials: AtomicU64,
    /// Stops the reading task once the channel is dropped: rotated out and no query left
    /// holding it.
    _stop: DropGuard,
}

/// The UDP sockets of one resolver.
pub struct UdpTransport {
    /// The resolver.
    address: SocketAddr,
    /// The sockets in use, opened on first use and replaced on rotation.
    slots: Vec<Mutex<Option<Slot>>>,
    /// Round-robin position over `slots`.
    next: AtomicUsize,
}

impl UdpTransport {
    /// A transport for `address`; no socket is opened until the first query.
    pub fn new(address: SocketAddr) -> Self {
        UdpTransport {
            address,
            slots: (0..SOCKETS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Sends `query` (its ID is chosen here) and waits up to `timeout` for the reply, giving up
    /// `place` once the query is slow ([`SLOW_QUERY`]).
    pub(super) async fn exchange(
        &self,
        mut query: WireQuery,
        timeout: Duration,
        place: &mut Option<Place>,
    ) -> Result<Message, Failure> {
        let started = Instant::now();
        let question = query.question().into();
        let channel = self.channel(started)?;
        let (tx, mut rx) = oneshot::channel();
        let serial = channel.serials.fetch_add(1, Ordering::Relaxed);
        let id = {
            let mut pending = lock(&channel.pending);
            let id = loop {
                let id: u16 = rand::random();
                if !pending.contains_key(&id) {
                    break id;
                }
            };
            pending.insert(
                id,
                Waiting {
                    serial,
                    question,
                    reply: tx,
                },
            );
            id
        };
        // Whatever happens next (a send error, the timeout, the caller giving up), the entry
        // must not outlive this call.
        let _forget = Forget {
            pending: &channel.pending,
            id,
            serial,
        };
        query.set_id(id);
        channel.socket.send(query.bytes()).await.map_err(|e| {
            Failure::new(
                FailureReason::Network,
                format!("cannot send to {}: {e}", self.address),
            )
        })?;
        // One timer a query, for both ends of the wait: first the slow mark, then the timeout;
        // timer upkeep is paid per query.
        let mut slow = SLOW_QUERY >= timeout;
        let timer = tokio::time::sleep_until(started + SLOW_QUERY.min(timeout));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                received = &mut rx => return match received {
                    Ok(result) => result,
                    // The reading task ended (only when the channel is dropped, which this
                    // call prevents); treat it as a broken network path.
                    Err(_) => Err(Failure::new(
                        FailureReason::Network,
                        "the socket closed while waiting for the reply",
                    )),
                },
                () = &mut timer => {
                    if slow {
                        return Err(Failure::new(
                            FailureReason::Timeout,
                            format!("no reply within {timeout:?}"),
                        ));
                    }
                    slow = true;
                    *place = None;
                    timer.as_mut().reset(started + timeout);
                }
            }
        }
    }

    /// The socket for the next query at `now`, opened or rotated as needed.
    fn channel(&self, now: Instant) -> Result<Arc<Channel>, Failure> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = lock(&self.slots[index]);
        if let Some(current) = slot.as_mut()
            && current.sent < ROTATE_AFTER
            && now.saturating_duration_since(current.opened) < ROTATE_AGE
        {
            current.sent += 1;
            return Ok(current.channel.clone());
        }
        // Queries still waiting on the old socket keep it (and its reading task) alive until
        // they are answered or time out.
        let channel = Arc::new(open(self.address)?);
        *slot = Some(Slot {
            channel: channel.clone(),
            sent: 1,
            opened: now,
        });
        Ok(channel)
    }
}

/// A socket in use, and what decides when it is replaced.
struct Slot {
    /// The socket.
    channel: Arc<Channel>,
    /// Queries given to it so far.
    sent: u32,
    /// When it was opened.
    opened: Instant,
}

/// Removes a waiting query when its exchange ends, however it ends.
struct Forget<'a> {
    /// The socket's waiting queries.
    pending: &'a Pending,
    /// The query's ID.
    id: u16,
    /// The query's serial: once it is answered, its ID may already belong to another query.
    serial: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let mut pending = lock(self.pending);
        if pending
            .get(&self.id)
            .is_some_and(|w| w.serial == self.serial)
        {
            pending.remove(&self.id);
        }
    }
}

/// Opens a socket on a random port, connected to `address`, and starts reading its replies.
fn open(address: SocketAddr) -> Result<Channel, Failure> {
    let network = |e: std::io::Error| {
        Failure::new(
            FailureReason::Network,
            format!("cannot open a UDP socket to {address}: {e}"),
        )
    };
    let local: SocketAddr = if address.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let std_socket = std::net::UdpSocket::bind(local).map_err(network)?;
    std_socket.connect(address).map_err(network)?;
    std_socket.set_nonblocking(true).map_err(network)?;
    if let Err(e) = socket2::SockRef::from(&std_socket).set_recv_buffer_size(RECEIVE_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge the UDP receive buffer");
    }
    let socket = Arc::new(UdpSocket::from_std(std_socket).map_err(network)?);
    let pending: Arc<Pending> = Arc::default();
    let stop = CancellationToken::new();
    tokio::spawn(read_replies(
        socket.clone(),
        Arc::downgrade(&pending),
        stop.clone(),
        address,
    ));
    Ok(Channel {
        socket,
        pending,
        serials: AtomicU64::new(0),
        _stop: stop.drop_guard(),
    })
}

/// Reads one socket's replies and hands each to the query it answers, until `stop`.
async fn read_replies(
    socket: Arc<UdpSocket>,
    pending: Weak<Pending>,
    stop: CancellationToken,
    address: SocketAddr,
) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            received = socket.recv(&mut buffer) => received,
        };
        let Some(pending) = pending.upgrade() else {
            return;
        };
        let length = match received {
            Ok(length) => length,
            Err(e) => {
                // On a connected socket, an ICMP error (port unreachable: nothing listens
                // there) is reported on the next receive. It concerns the one address every
                // waiting query went to, so it fails them all now rather than at the timeout.
                let waiting: Vec<Waiting> = lock(&pending).drain().map(|(_, w)| w).collect();
                tracing::debug!(resolver = %address, error = %e, failed = waiting.len(), "UDP receive error");
                for w in waiting {
                    let _ = w.reply.send(Err(Failure::new(
                        FailureReason::Network,
                        format!("{address}: {e}"),
                    )));
                }
                continue;
            }
        };
        let datagram = &buffer[..length];
        let Some(id) = datagram.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            continue;
        };
        if !lock(&pending).contains_key(&id) {
            // A reply that came after its query timed out, or a stray datagram.
            continue;
        }
        let outcome = match Message::from_vec(datagram) {
            Ok(reply) => {
                if reply.metadata.message_type != MessageType::Response {
                    continue;
                }
                Ok(reply)
            }
            Err(e) => Err(Failure::new(
                FailureReason::Malformed,
                format!("unparsable reply from {address}: {e}"),
            )),
        };
        let mut waiting = lock(&pending);
        let answers = match (&outcome, waiting.get(&id)) {
            (_, None) => false,
            // A reply without a question (REFUSED, FORMERR) is matched by its ID alone:
            // waiting out the timeout would report the wrong reason.
            (Ok(_), Some(w)) => answers_question(datagram, &w.question),
            (Err(_), Some(_)) => true,
        };
        if !answers {
            tracing::debug!(resolver = %address, id, "ignored a reply to another question");
            continue;
        }
        if let Some(w) = waiting.remove(&id) {
            let _ = w.reply.send(outcome);
        }
    }
}
