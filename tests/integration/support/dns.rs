//! An in-process DNS server on loopback, UDP and TCP on one port, with a behaviour per scenario.

use std::net::SocketAddr;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

/// What the server does with a query.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Answers from the zone, authoritatively.
    Answer(Zone),
    /// Never replies.
    Silent,
    /// Replies with this response code and nothing else.
    Rcode(ResponseCode),
    /// Replies over UDP with the TC bit and no records; answers from the zone over TCP.
    TruncateUdp(Zone),
    /// Answers from the zone without the AA flag: a lame delegation.
    NotAuthoritative(Zone),
    /// Answers from the zone after a delay.
    Late(std::time::Duration, Zone),
    /// Answers from the zone with another message ID.
    WrongId(Zone),
    /// Answers a different question.
    OtherQuestion,
    /// Replies with the right ID followed by bytes that are not a DNS message.
    Garbage,
    /// Truncates over UDP, and closes every TCP connection at once.
    TruncateThenCloseTcp,
    /// Answers every question with a CNAME chain of this length (its end pointing back to the
    /// name when `looped`).
    Chain { length: usize, looped: bool },
    /// Answers every question with this many A records.
    Many(usize),
    /// Answers REFUSED without a question section, as Unbound does to a client its
    /// `access-control` refuses.
    RefusedWithoutQuestion,
}

/// A part of a zone that does not answer normally.
#[derive(Clone, Debug)]
enum Rule {
    /// Names at or below it answer SERVFAIL, as a resolver does when the domain's nameservers
    /// are dead or lame.
    Servfail(Name),
    /// Names at or below it answer SERVFAIL (with this Extended DNS Error, if any) unless the
    /// query sets CD: a validating resolver and a zone whose signatures are bogus.
    Bogus(Name, Option<(u16, String)>),
    /// Names at or below it are delegated to this nameserver, at this address: a referral,
    /// without the AA flag, with glue.
    Delegate(Name, Name, std::net::Ipv4Addr),
    /// Names at or below it are signed: a query with the DO bit gets an RRSIG over each RRset
    /// of the answer, made and expiring at these DNSSEC times. The signature bytes are not a
    /// real signature; nothing in the tests validates, they read the times.
    Signed(Name, u32, u32),
}

/// Records served, with a SOA for negative answers.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    records: Vec<Record>,
    rules: Vec<Rule>,
}

fn name(text: &str) -> Name {
    Name::from_str(text).expect("test names are valid")
}

impl Zone {
    /// An empty zone.
    pub fn new() -> Self {
        Zone::default()
    }

    /// Adds a CNAME.
    pub fn cname(mut self, owner: &str, target: &str) -> Self {
        self.records.push(Record::from_rdata(
            name(owner),
            300,
            RData::CNAME(CNAME(name(target))),
        ));
        self
    }

    /// Adds a CNAME to a target made of raw labels, which may hold any bytes (as DNS allows and
    /// a name in text cannot say).
    pub fn cname_raw(mut self, owner: &str, target: &[&[u8]]) -> Self {
        let target = Name::from_labels(target.iter().copied()).expect("labels of 63 bytes or less");
        self.records.push(Record::from_rdata(
            name(owner),
            300,
            RData::CNAME(CNAME(target)),
        ));
        self
    }

    /// Adds a TXT record made of `strings`, each cut into DNS character-strings of at most 255
    /// bytes as DNS providers do.
    pub fn txt(mut self, owner: &str, strings: &[&str]) -> Self {
        let strings = strings
            .iter()
            .flat_map(|s| {
                let chunks: Vec<String> = s
                    .as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                if chunks.is_empty() {
                    vec![String::new()]
                } else {
                    chunks
                }
            })
            .collect();
        self.records.push(Record::from_rdata(
            name(owner),
            300,
            RData::TXT(TXT::new(strings)),
        ));
        self
    }

    /// Adds an A record.
    pub fn a(mut self, owner: &str, address: [u8; 4]) -> Self {
        self.records.push(Record::from_rdata(
            name(owner),
            300,
            RData::A(A(std::net::Ipv4Addr::from(address))),
        ));
        self
    }

    /// Adds an AAAA record.
    pub fn aaaa(mut self, owner: &str, address: &str) -> Self {
        let ip: std::net::Ipv6Addr = address.parse().expect("test addresses are valid");
        self.records
            .push(Record::from_rdata(name(owner), 300, RData::AAAA(AAAA(ip))));
        self
    }

    /// Adds an NS record.
    pub fn ns(mut self, owner: &str, host: &str) -> Self {
        self.records.push(Record::from_rdata(
            name(owner),
            300,
            RData::NS(NS(name(host))),
        ));
        self
    }

    /// Names at or below `domain` answer SERVFAIL.
    pub fn servfail_under(mut self, domain: &str) -> Self {
        self.rules.push(Rule::Servfail(name(domain)));
        self
    }

    /// Names at or below `domain` answer SERVFAIL, with the Extended DNS Error `ede` if given,
    /// unless the query sets CD.
    pub fn bogus_under(mut self, domain: &str, ede: Option<(u16, &str)>) -> Self {
        self.rules.push(Rule::Bogus(
            name(domain),
            ede.map(|(code, text)| (code, text.to_string())),
        ));
        self
    }

    /// Names at or below `domain` are referred to the nameserver `host` at `address`.
    pub fn delegate(mut self, domain: &str, host: &str, address: [u8; 4]) -> Self {
        self.rules.push(Rule::Delegate(
            name(domain),
            name(host),
            std::net::Ipv4Addr::from(address),
        ));
        self
    }

    /// Names at or below `domain` are signed, their signatures made at Unix time `inception`
    /// and expiring at `expire` (sent only to queries with the DO bit, as a signed zone's
    /// nameserver does).
    pub fn signed(mut self, domain: &str, inception: u64, expire: u64) -> Self {
        self.rules
            .push(Rule::Signed(name(domain), inception as u32, expire as u32));
        self
    }

    /// The zone without the records at `owner`.
    pub fn without(mut self, owner: &str) -> Self {
        let owner = name(owner);
        self.records
            .retain(|r| !r.name.to_ascii().eq_ignore_ascii_case(&owner.to_ascii()));
        self
    }

    /// Builds the answer to one question.
    fn answer(&self, query: &Message) -> Message {
        let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.authoritative = true;
        reply.queries = query.queries.clone();
        let Some(question) = query.queries.first() else {
            reply.metadata.response_code = ResponseCode::FormErr;
            return reply;
        };
        for rule in &self.rules {
            match rule {
                Rule::Servfail(domain) if domain.zone_of(question.name()) => {
                    reply.metadata.authoritative = false;
                    reply.metadata.response_code = ResponseCode::ServFail;
                    return reply;
                }
                Rule::Bogus(domain, ede)
                    if domain.zone_of(question.name()) && !query.metadata.checking_disabled =>
                {
                    reply.metadata.authoritative = false;
                    reply.metadata.response_code = ResponseCode::ServFail;
                    if let Some((code, text)) = ede {
                        let mut data = code.to_be_bytes().to_vec();
                        data.extend_from_slice(text.as_bytes());
                        reply
                            .edns
                            .get_or_insert_with(hickory_proto::op::Edns::new)
                            .options_mut()
                            .insert(EdnsOption::Unknown(15, data));
                    }
                    return reply;
                }
                Rule::Delegate(domain, host, address) if domain.zone_of(question.name()) => {
                    reply.metadata.authoritative = false;
                    reply.authorities.push(Record::from_rdata(
                        domain.clone(),
                        300,
                        RData::NS(NS(host.clone())),
                    ));
                    reply.additionals.push(Record::from_rdata(
                        host.clone(),
                        300,
                        RData::A(A(*address)),
                    ));
                    return reply;
                }
                _ => {}
            }
        }
        let same = |a: &Name, b: &Name| a.to_ascii().eq_ignore_ascii_case(&b.to_ascii());
        let mut owner = question.name().clone();
        for _ in 0..8 {
            let here: Vec<&Record> = self
                .records
                .iter()
                .filter(|r| same(&r.name, &owner))
                .collect();
            let wanted: Vec<Record> = here
                .iter()
                .filter(|r| r.record_type() == question.query_type())
                .map(|r| (*r).clone())
                .collect();
            if !wanted.is_empty() {
                reply.answers.extend(wanted);
                break;
            }
            match here.iter().find(|r| r.record_type() == RecordType::CNAME) {
                Some(cname) => {
                    reply.answers.push((*cname).clone());
                    let RData::CNAME(target) = &cname.data else {
                        break;
                    };
                    owner = target.0.clone();
                }
                None => {
                    // A name with nothing at it or below it does not exist; one with names
                    // below it (an empty non-terminal, like a domain whose only records are
                    // its DKIM keys) does, and answers NOERROR with no data.
                    let below = self.records.iter().any(|r| owner.zone_of(&r.name));
                    if here.is_empty() && !below && reply.answers.is_empty() {
                        reply.metadata.response_code = ResponseCode::NXDomain;
                    }
                    break;
                }
            }
        }
        let dnssec_ok = query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        for rule in &self.rules {
            if let Rule::Signed(domain, inception, expire) = rule
                && dnssec_ok
            {
                let mut rrsets: Vec<(Name, RecordType)> = Vec::new();
                for record in &reply.answers {
                    let rrset = (record.name.clone(), record.record_type());
                    if domain.zone_of(&record.name) && !rrsets.contains(&rrset) {
                        rrsets.push(rrset);
                    }
                }
                for (owner, record_type) in rrsets {
                    reply
                        .answers
                        .push(rrsig(&owner, record_type, domain, *inception, *expire));
                }
            }
        }
        if reply.answers.is_empty() {
            reply.authorities.push(Record::from_rdata(
                name("test."),
                3600,
                RData::SOA(SOA::new(
                    name("ns.test."),
                    name("hostmaster.test."),
                    1,
                    7200,
                    900,
                    86400,
                    60,
                )),
            ));
        }
        reply
    }
}

/// An RRSIG over `owner`/`record_type` by `signer`, made and expiring at these DNSSEC times,
/// with 64 bytes standing for the signature.
fn rrsig(
    owner: &Name,
    record_type: RecordType,
    signer: &Name,
    inception: u32,
    expire: u32,
) -> Record {
    use hickory_proto::dnssec::Algorithm;
    use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG, SigInput};
    use hickory_proto::rr::SerialNumber;
    let input = SigInput {
        type_covered: record_type,
        algorithm: Algorithm::ECDSAP256SHA256,
        num_labels: owner.num_labels(),
        original_ttl: 300,
        sig_expiration: SerialNumber::new(expire),
        sig_inception: SerialNumber::new(inception),
        key_tag: 12345,
        signer_name: signer.clone(),
    };
    Record::from_rdata(
        owner.clone(),
        300,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![7; 64]))),
    )
}

/// A running test server; stops when dropped.
pub struct TestDns {
    /// Where it listens, UDP and TCP.
    pub addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    /// Source ports UDP queries came from.
    ports: Arc<Mutex<std::collections::HashSet<u16>>>,
    /// UDP queries received and not yet answered, and the most there ever were.
    outstanding: Arc<(AtomicUsize, AtomicUsize)>,
    _tasks: JoinSet<()>,
}

impl TestDns {
    /// Starts a server on 127.0.0.1 with a free port.
    pub async fn start(behaviour: Behaviour) -> TestDns {
        // UDP and TCP must share the port; retry if TCP finds it taken.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
            let addr = udp.local_addr().expect("udp address");
            if let Ok(tcp) = TcpListener::bind(addr).await {
                break (udp, tcp);
            }
        };
        TestDns::serve(udp, tcp, behaviour)
    }

    /// Starts one server per behaviour, on 127.0.0.2, 127.0.0.3, … all with the same port, the
    /// way a domain's nameservers all listen on port 53.
    pub async fn start_nameservers(behaviours: Vec<Behaviour>) -> (u16, Vec<TestDns>) {
        'retry: loop {
            let first = UdpSocket::bind("127.0.0.2:0").await.expect("bind udp");
            let port = first.local_addr().expect("udp address").port();
            let mut sockets = vec![(first, None)];
            for i in 0..behaviours.len() {
                let ip = format!("127.0.0.{}", i + 2);
                if i > 0 {
                    match UdpSocket::bind((ip.as_str(), port)).await {
                        Ok(udp) => sockets.push((udp, None)),
                        Err(_) => continue 'retry,
                    }
                }
                match TcpListener::bind((ip.as_str(), port)).await {
                    Ok(tcp) => sockets[i].1 = Some(tcp),
                    Err(_) => continue 'retry,
                }
            }
            let servers = sockets
                .into_iter()
                .zip(behaviours)
                .map(|((udp, tcp), behaviour)| {
                    TestDns::serve(udp, tcp.expect("bound above"), behaviour)
                })
                .collect();
            return (port, servers);
        }
    }

    fn serve(udp: UdpSocket, tcp: TcpListener, behaviour: Behaviour) -> TestDns {
        let udp = Arc::new(udp);
        let addr = udp.local_addr().expect("udp address");
        let behaviour = Arc::new(Mutex::new(behaviour));
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let ports = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let outstanding = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let mut tasks = JoinSet::new();
        {
            let behaviour = behaviour.clone();
            let count = udp_queries.clone();
            let arrivals = arrivals.clone();
            let ports = ports.clone();
            let outstanding = outstanding.clone();
            tasks.spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
                    count.fetch_add(1, Ordering::SeqCst);
                    arrivals.lock().expect("lock").push(Instant::now());
                    ports.lock().expect("lock").insert(peer.port());
                    let current = behaviour.lock().expect("lock").clone();
                    if let Some(reply) = respond(&current, &buf[..len], false) {
                        let wait = delay(&current);
                        if wait.is_zero() {
                            let _ = udp.send_to(&reply, peer).await;
                        } else {
                            let now = outstanding.0.fetch_add(1, Ordering::SeqCst) + 1;
                            outstanding.1.fetch_max(now, Ordering::SeqCst);
                            let udp = udp.clone();
                            let outstanding = outstanding.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(wait).await;
                                outstanding.0.fetch_sub(1, Ordering::SeqCst);
                                let _ = udp.send_to(&reply, peer).await;
                            });
                        }
                    }
                }
            });
        }
        {
            let behaviour = behaviour.clone();
            let count = tcp_queries.clone();
            tasks.spawn(async move {
                while let Ok((mut stream, _)) = tcp.accept().await {
                    let behaviour = behaviour.clone();
                    let count = count.clone();
                    tokio::spawn(async move {
                        while let Some(query) = read_framed(&mut stream).await {
                            count.fetch_add(1, Ordering::SeqCst);
                            let current = behaviour.lock().expect("lock").clone();
                            if matches!(current, Behaviour::TruncateThenCloseTcp) {
                                return;
                            }
                            tokio::time::sleep(delay(&current)).await;
                            if let Some(reply) = respond(&current, &query, true)
                                && write_framed(&mut stream, &reply).await.is_err()
                            {
                                return;
                            }
                        }
                    });
                }
            });
        }
        TestDns {
            addr,
            behaviour,
            udp_queries,
            tcp_queries,
            arrivals,
            ports,
            outstanding,
            _tasks: tasks,
        }
    }

    /// The distinct source ports UDP queries came from.
    pub fn udp_ports(&self) -> usize {
        self.ports.lock().expect("lock").len()
    }

    /// The most UDP queries that were ever waiting for a (delayed) reply at once.
    pub fn max_outstanding(&self) -> usize {
        self.outstanding.1.load(Ordering::SeqCst)
    }

    /// Changes what the server does from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("lock") = behaviour;
    }

    /// Queries received over UDP.
    pub fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    /// When each UDP query arrived.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().expect("lock").clone()
    }

    /// Queries received over TCP.
    pub fn tcp_queries(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}

/// Reads one length-prefixed DNS message (TCP and TLS framing); `None` at the end.
pub async fn read_framed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.ok()?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await.ok()?;
    Some(message)
}

/// Writes one length-prefixed DNS message.
pub async fn write_framed<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    message: &[u8],
) -> std::io::Result<()> {
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// How long to wait before replying, for [`Behaviour::Late`].
fn delay(behaviour: &Behaviour) -> std::time::Duration {
    match behaviour {
        Behaviour::Late(delay, _) => *delay,
        _ => std::time::Duration::ZERO,
    }
}

pub fn respond(behaviour: &Behaviour, query_bytes: &[u8], over_tcp: bool) -> Option<Vec<u8>> {
    let query = Message::from_vec(query_bytes).ok()?;
    let blank = || {
        let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        reply.queries = query.queries.clone();
        reply.metadata.recursion_available = true;
        reply
    };
    let reply = match behaviour {
        Behaviour::Silent => return None,
        Behaviour::Late(_, zone) => zone.answer(&query),
        Behaviour::WrongId(zone) => {
            let mut reply = zone.answer(&query);
            reply.metadata.id = query.metadata.id.wrapping_add(1);
            reply
        }
        Behaviour::OtherQuestion => {
            let mut reply = blank();
            for q in &mut reply.queries {
                q.name = name("somewhere.else.example.");
            }
            reply
        }
        Behaviour::Garbage => {
            let mut bytes = query_bytes[..2].to_vec();
            bytes.extend_from_slice(&[0xff; 40]);
            return Some(bytes);
        }
        Behaviour::TruncateThenCloseTcp if over_tcp => return None,
        Behaviour::TruncateThenCloseTcp => {
            let mut reply = blank();
            reply.metadata.truncation = true;
            reply
        }
        Behaviour::Chain { length, looped } => {
            let mut reply = blank();
            let start = query.queries.first()?.name().clone();
            let mut owner = start.clone();
            for i in 0..*length {
                let target = if *looped && i + 1 == *length {
                    start.clone()
                } else {
                    name(&format!("hop{i}.chain.example."))
                };
                reply.answers.push(Record::from_rdata(
                    owner.clone(),
                    300,
                    RData::CNAME(CNAME(target.clone())),
                ));
                owner = target;
            }
            reply
        }
        Behaviour::Many(count) => {
            let mut reply = blank();
            let owner = query.queries.first()?.name().clone();
            for i in 0..*count {
                let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i as u32);
                reply
                    .answers
                    .push(Record::from_rdata(owner.clone(), 300, RData::A(A(ip))));
            }
            reply
        }
        Behaviour::Answer(zone) => zone.answer(&query),
        Behaviour::NotAuthoritative(zone) => {
            let mut reply = zone.answer(&query);
            reply.metadata.authoritative = false;
            reply
        }
        Behaviour::TruncateUdp(zone) if over_tcp => zone.answer(&query),
        Behaviour::TruncateUdp(_) => {
            let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            reply.queries = query.queries.clone();
            reply.metadata.truncation = true;
            reply
        }
        Behaviour::RefusedWithoutQuestion => {
            let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            reply.metadata.response_code = ResponseCode::Refused;
            reply
        }
        Behaviour::Rcode(code) => {
            let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            reply.queries = query.queries.clone();
            reply.metadata.response_code = *code;
            reply
        }
    };
    let bytes = reply.to_vec().ok()?;
    if over_tcp || bytes.len() <= 1232 {
        return Some(bytes);
    }
    // Too big for the advertised UDP payload: truncate, as a real server does.
    let mut truncated = blank();
    truncated.metadata.truncation = true;
    truncated.to_vec().ok()
}
