//! DNS messages: building the queries every transport sends, sorting replies into definitive
//! answers and failures, and reading names and records out of them.

use std::net::IpAddr;

use hickory_net::NetError;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use crate::evidence::{Ede, Failure, FailureReason};

/// EDNS payload size advertised: the DNS Flag Day 2020 value, which avoids fragmentation.
pub const EDNS_PAYLOAD: u16 = 1232;

/// How many CNAMEs of an answer are followed before giving up: more is a loop or abuse.
const MAX_CHAIN: usize = 16;

/// A query message for `query`, with recursion desired or not and the EDNS payload size set.
pub fn query_message(query: Query, recursion_desired: bool, edns_payload: u16) -> Message {
    let mut message = Message::query();
    message.queries.push(query);
    message.metadata.recursion_desired = recursion_desired;
    message
        .edns
        .get_or_insert_with(Edns::new)
        .set_max_payload(edns_payload);
    message
}

/// A query's header: ID, flags and the four section counts.
const HEADER_LEN: usize = 12;

/// The EDNS OPT record [`WireQuery`] ends with: root owner, type, payload size, extended RCODE,
/// version and flags, and no options.
const OPT_LEN: usize = 11;

/// A query as sent over UDP: the bytes `query_message(...).to_vec()` gives (a test holds them
/// equal), written straight into one buffer, without a `Message`'s name-compression
/// bookkeeping, which a one-name query never uses.
pub(super) struct WireQuery {
    /// Header, question and OPT record; the ID is zero until [`WireQuery::set_id`].
    bytes: Vec<u8>,
}

impl WireQuery {
    /// The query for `name`/`record_type` with recursion desired or not, the CD bit and EDNS's
    /// DO bit (DNSSEC records wanted) as asked, and `edns_payload` advertised.
    pub(super) fn new(
        name: &Name,
        record_type: RecordType,
        recursion_desired: bool,
        checking_disabled: bool,
        dnssec_ok: bool,
        edns_payload: u16,
    ) -> WireQuery {
        let mut bytes = Vec::with_capacity(HEADER_LEN + 2 + name.len() + 4 + OPT_LEN);
        // ID; QR 0, opcode QUERY, RD; CD, RCODE 0; one question, one additional record.
        bytes.extend_from_slice(&[0, 0]);
        bytes.push(u8::from(recursion_desired));
        bytes.push(if checking_disabled { 0x10 } else { 0 });
        bytes.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
        for label in name.iter() {
            // A label is at most 63 bytes, which `Name` enforces.
            bytes.push(label.len() as u8);
            bytes.extend_from_slice(label);
        }
        bytes.push(0);
        bytes.extend_from_slice(&u16::from(record_type).to_be_bytes());
        bytes.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&u16::from(RecordType::OPT).to_be_bytes());
        bytes.extend_from_slice(&edns_payload.to_be_bytes());
        // Extended RCODE and version 0; the flags, DO their top bit; no options.
        bytes.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
        WireQuery { bytes }
    }

    /// Sets the query's ID.
    pub(super) fn set_id(&mut self, id: u16) {
        self.bytes[..2].copy_from_slice(&id.to_be_bytes());
    }

    /// The question section: name, type and class, as sent.
    pub(super) fn question(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..self.bytes.len() - OPT_LEN]
    }

    /// The whole datagram.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Whether `datagram`, a reply that parsed, answers the query whose question section is
/// `question`: it repeats the question (the name in any case, as names compare), or has none,
/// as servers that refuse a client or cannot parse a query (Unbound's `access-control:
/// refuse`, FORMERR) answer.
pub(super) fn answers_question(datagram: &[u8], question: &[u8]) -> bool {
    let Some(count) = datagram.get(4..6) else {
        return false;
    };
    match u16::from_be_bytes([count[0], count[1]]) {
        0 => true,
        // The first question starts right after the header: nothing comes before it that a
        // compression pointer could point to.
        1 => datagram
            .get(HEADER_LEN..HEADER_LEN + question.len())
            .is_some_and(|asked| {
                let (name, type_and_class) = question.split_at(question.len() - 4);
                // Label lengths are below 64, so only the letters of labels fold.
                asked[..name.len()].eq_ignore_ascii_case(name)
                    && asked[name.len()..] == *type_and_class
            }),
        _ => false,
    }
}

/// The query for the connected transports: the same message as over UDP.
pub(super) fn request(message: Message) -> DnsRequest {
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = message.metadata.recursion_desired;
    options.case_randomization = false;
    DnsRequest::new(message, options)
}

/// The Extended DNS Error option of a reply (RFC 8914, option code 15), if it has one.
pub fn ede(reply: &Message) -> Option<Box<Ede>> {
    let edns = reply.edns.as_ref()?;
    match edns.option(EdnsCode::Unknown(EDE_OPTION))? {
        EdnsOption::Unknown(_, data) if data.len() >= 2 => Some(Box::new(Ede {
            code: u16::from_be_bytes([data[0], data[1]]),
            // Some servers end the text with a NUL; it is no part of it.
            text: String::from_utf8_lossy(&data[2..])
                .trim_end_matches('\0')
                .to_string(),
        })),
        _ => None,
    }
}

/// The EDNS option code of Extended DNS Errors.
const EDE_OPTION: u16 = 15;

/// Sorts a reply by its response code: NOERROR and NXDOMAIN are definitive, the rest fail.
pub(super) fn classify(reply: Message) -> Result<Message, Failure> {
    let code = reply.metadata.response_code;
    let reason = match code {
        ResponseCode::NoError | ResponseCode::NXDomain => return Ok(reply),
        ResponseCode::ServFail => FailureReason::Servfail,
        ResponseCode::Refused => FailureReason::Refused,
        _ => FailureReason::Other,
    };
    let mut failure = Failure::new(reason, format!("response code {code}"));
    failure.ede = ede(&reply);
    Err(failure)
}

/// Maps a transport error to a reason.
pub(super) fn net_failure(error: &NetError) -> Failure {
    let reason = match error {
        NetError::Timeout => FailureReason::Timeout,
        NetError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => FailureReason::Timeout,
        NetError::Io(_) | NetError::NoConnections | NetError::Busy => FailureReason::Network,
        NetError::Proto(_) | NetError::QueryCaseMismatch => FailureReason::Malformed,
        _ => FailureReason::Other,
    };
    Failure::new(reason, error.to_string())
}

/// The A and AAAA addresses at `owner` in a reply.
pub fn addresses_at(owner: &Name, reply: &Message) -> Vec<IpAddr> {
    reply
        .answers
        .iter()
        .filter(|r| same_name(&r.name, owner))
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

/// A name as labels show it: lower case, no trailing dot.
pub fn normalise(name: &Name) -> String {
    // Host names (letters, digits, `-`, `_`) need no escaping: written directly, one
    // allocation instead of three. This runs for every CNAME answer.
    if name.num_labels() > 0 && name.iter().all(|label| label.iter().all(|b| plain(*b))) {
        let mut text = String::with_capacity(name.len());
        for (i, label) in name.iter().enumerate() {
            if i > 0 {
                text.push('.');
            }
            text.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
        }
        return text;
    }
    escaped(name)
}

/// [`normalise`] for any name: its text with escapes, lower case, no trailing dot.
fn escaped(name: &Name) -> String {
    let text = name.to_ascii().to_ascii_lowercase();
    match text.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => text,
    }
}

/// A byte a host name label shows as itself.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether `name` normalises to `text` (see [`normalise`]), for a host name, without making
/// the string: `false` may also mean a name that needs escaping, which only [`normalise`] can
/// compare.
pub fn is_named(name: &Name, text: &str) -> bool {
    let mut rest = text.as_bytes();
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            match rest.split_first() {
                Some((b'.', after)) => rest = after,
                _ => return false,
            }
        }
        match rest.split_at_checked(label.len()) {
            Some((head, after))
                if label.iter().all(|b| plain(*b)) && label.eq_ignore_ascii_case(head) =>
            {
                rest = after;
            }
            _ => return false,
        }
    }
    name.num_labels() > 0 && rest.is_empty()
}

/// The name a CNAME chain from `qname` ends at in `reply` (at most [`MAX_CHAIN`] steps).
pub fn end_of_chain(reply: &Message, qname: &Name) -> Name {
    follow_chain(reply, qname, |_| {})
}

/// The names a CNAME chain from `qname` passes through in `reply`, after `qname` itself, up to
/// the name that holds the data: empty when `qname` is not a CNAME there.
pub fn chain_from(reply: &Message, qname: &Name) -> Vec<String> {
    let mut chain = Vec::new();
    follow_chain(reply, qname, |name| chain.push(normalise(name)));
    chain
}

/// Follows the CNAMEs from `qname` in `reply`, calling `each` with every target; returns the
/// last name.
fn follow_chain(reply: &Message, qname: &Name, mut each: impl FnMut(&Name)) -> Name {
    let mut owner = qname.clone();
    for _ in 0..MAX_CHAIN {
        match reply
            .answers
            .iter()
            .find_map(|r| same_name(&r.name, &owner).then_some(&r.data))
        {
            Some(RData::CNAME(next)) => {
                owner = next.0.clone();
                each(&owner);
            }
            _ => break,
        }
    }
    owner
}

/// The same name, label by label and ignoring case and the trailing dot. Compared in place:
/// this runs for every record of every answer, and turning both names into strings made it
/// one of the costliest steps of a check.
pub fn same_name(a: &Name, b: &Name) -> bool {
    a.num_labels() == b.num_labels()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// The CNAME target at `owner`, normalised, with its TTL.
pub fn cname_at(reply: &Message, owner: &Name) -> Option<(String, u32)> {
    cname_target_at(reply, owner).map(|(target, ttl)| (normalise(target), ttl))
}

/// The CNAME target at `owner` as the reply has it, with its TTL.
pub fn cname_target_at<'a>(reply: &'a Message, owner: &Name) -> Option<(&'a Name, u32)> {
    reply.answers.iter().find_map(|r| match &r.data {
        RData::CNAME(target) if same_name(&r.name, owner) => Some((&target.0, r.ttl)),
        _ => None,
    })
}

/// How long a negative answer may be cached (RFC 2308): the lesser of the SOA's TTL and minimum.
pub fn negative_ttl(reply: &Message) -> Option<u32> {
    reply.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    fn name(text: &str) -> Name {
        Name::from_str(text).unwrap()
    }

    #[test]
    fn wire_queries_are_the_bytes_hickory_would_send() {
        let names = [
            "ywbkcinpfx4ku3xtq7pdcismj6na253q._domainkey.d00001.bench.",
            "S1._domainkey.Example.COM.",
            "example.",
        ];
        for text in names {
            for record_type in [RecordType::CNAME, RecordType::TXT, RecordType::NS] {
                for (recursion, checking_disabled, dnssec_ok) in [
                    (true, false, false),
                    (true, true, false),
                    (false, false, false),
                    (false, false, true),
                ] {
                    let mut message =
                        query_message(Query::query(name(text), record_type), recursion, 1232);
                    message.metadata.checking_disabled = checking_disabled;
                    message.metadata.id = 0xbeef;
                    if let Some(edns) = message.edns.as_mut() {
                        edns.set_dnssec_ok(dnssec_ok);
                    }
                    let mut wire = WireQuery::new(
                        &name(text),
                        record_type,
                        recursion,
                        checking_disabled,
                        dnssec_ok,
                        1232,
                    );
                    wire.set_id(0xbeef);
                    assert_eq!(
                        wire.bytes(),
                        message.to_vec().unwrap(),
                        "{text} {record_type} rd={recursion} cd={checking_disabled} do={dnssec_ok}"
                    );
                    let parsed = Message::from_vec(wire.bytes()).unwrap();
                    assert_eq!(parsed.queries, [Query::query(name(text), record_type)]);
                }
            }
        }
    }

    #[test]
    fn a_reply_answers_the_question_it_repeats_in_any_case_or_none() {
        let asked = WireQuery::new(
            &name("s1._domainkey.example.com."),
            RecordType::CNAME,
            true,
            false,
            false,
            1232,
        );
        let reply = |question: Option<Query>| {
            let mut reply = Message::response(7, hickory_proto::op::OpCode::Query);
            reply.queries.extend(question);
            reply.to_vec().unwrap()
        };
        let question = asked.question();
        let same = reply(Some(Query::query(
            name("S1._DomainKey.EXAMPLE.com."),
            RecordType::CNAME,
        )));
        assert!(answers_question(&same, question));
        assert!(answers_question(&reply(None), question));
        for other in [
            Query::query(name("s1._domainkey.example.com."), RecordType::TXT),
            Query::query(name("s2._domainkey.example.com."), RecordType::CNAME),
            Query::query(name("s1._domainkey.example.co."), RecordType::CNAME),
            Query::query(name("x.s1._domainkey.example.com."), RecordType::CNAME),
        ] {
            assert!(
                !answers_question(&reply(Some(other.clone())), question),
                "{other}"
            );
        }
        let mut two = Message::response(7, hickory_proto::op::OpCode::Query);
        two.queries.push(Query::query(
            name("s1._domainkey.example.com."),
            RecordType::CNAME,
        ));
        two.queries.push(Query::query(
            name("s1._domainkey.example.com."),
            RecordType::CNAME,
        ));
        assert!(!answers_question(&two.to_vec().unwrap(), question));
        assert!(!answers_question(&same[..same.len() - 1][..20], question));
        assert!(!answers_question(&[0, 7, 0x80], question));
    }

    #[test]
    fn host_names_normalise_like_their_escaped_text() {
        let mut names: Vec<Name> = [
            "S1.DKIM.AmazonSES.com.",
            "s1.dkim.amazonses.com",
            "a_b-c.example.",
            "x\\.y.example.",
            ".",
        ]
        .iter()
        .map(|text| Name::from_ascii(text).unwrap())
        .collect();
        // Raw bytes a label may hold: UTF-8, a space, a dot.
        for raw in [&b"\xc3\xa9t\xc3\xa9"[..], b"sp ace", b"do.t"] {
            names.push(Name::from_labels(vec![raw.to_vec(), b"example".to_vec()]).unwrap());
        }
        for n in &names {
            let text = n.to_ascii();
            assert_eq!(normalise(n), escaped(n), "{text}");
            let normal = normalise(n);
            // A host name compares without the string; others say no and take the slow path.
            let host = n.num_labels() > 0 && n.iter().all(|l| l.iter().all(|b| plain(*b)));
            assert_eq!(is_named(n, &normal), host, "{text}");
        }
        let n = name("S1.dkim.amazonses.com.");
        assert!(is_named(&n, "s1.dkim.amazonses.com"));
        assert!(!is_named(&n, "s1.dkim.amazonses.co"));
        assert!(!is_named(&n, "s1.dkim.amazonses.comx"));
        assert!(!is_named(&n, "s1.dkim.amazonses.com.example.com"));
        assert!(!is_named(&n, "s1dkim.amazonses.com"));
        assert!(!is_named(&name("."), ""));
    }

    #[test]
    fn names_compare_by_label_ignoring_case_and_the_trailing_dot() {
        assert!(same_name(
            &name("S1._DomainKey.Example.COM."),
            &name("s1._domainkey.example.com")
        ));
        assert!(!same_name(
            &name("s1._domainkey.example.com."),
            &name("s1._domainkey.example.co.")
        ));
        assert!(!same_name(
            &name("s1._domainkey.example.com."),
            &name("_domainkey.example.com.")
        ));
        assert!(!same_name(&name("a.bc."), &name("ab.c.")));
    }
}
