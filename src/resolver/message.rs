//! DNS messages: building the queries every transport sends, sorting replies into definitive
//! answers and failures, and reading names and records out of them.

use std::net::IpAddr;

use hickory_net::NetError;
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData};

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
