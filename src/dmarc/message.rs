//! The reports attached to a message: a mailbox's message, a saved `.eml`, the object an SES
//! receipt rule stores. mail-parser does the MIME (multipart nesting, base64 and
//! quoted-printable, attached messages); each part that holds a report, whatever its content
//! type says (receivers use `application/gzip`, `application/zip`,
//! `application/x-zip-compressed`, `text/xml`, `application/octet-stream`, …), is then read by
//! [`super::unpack`].

use mail_parser::{Message, MessageParser, PartType};

use super::ReadError;
use super::report::Report;
use super::unpack::{self, Limits};

/// How deep messages attached to messages are opened.
const MAX_DEPTH: usize = 3;

/// The reports of every part of the message `raw` that holds one (plain XML, gzip or zip);
/// `not_a_report` when none does. A message may be at most twice [`Limits::compressed`]:
/// base64 makes an attachment a third larger, and the rest of a report's message is small.
pub fn reports(raw: &[u8], limits: &Limits) -> Vec<Result<Report, ReadError>> {
    let bound = limits.compressed.saturating_mul(2);
    if raw.len() as u64 > bound {
        return vec![Err(ReadError::TooLarge(format!(
            "a message of {} bytes, more than {bound}",
            raw.len()
        )))];
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        return vec![Err(ReadError::Unparsable("not a MIME message".to_string()))];
    };
    let mut parts = Vec::new();
    report_parts(&message, 0, &mut parts);
    if parts.is_empty() {
        return vec![Err(ReadError::NotAReport(
            "the message has no report attached".to_string(),
        ))];
    }
    if parts.len() > limits.files {
        return vec![Err(ReadError::TooLarge(format!(
            "a message of {} reports, more than {}",
            parts.len(),
            limits.files
        )))];
    }
    parts
        .into_iter()
        .flat_map(|part| unpack::reports(part, limits))
        .collect()
}

/// Whether the message is vouched for by `authserv_id`, the receiving mail server: its
/// `Authentication-Results` header (RFC 8601) says `dkim=pass` for the domain of the From
/// address. Only the topmost header of that server counts: the server adds its own above
/// everything the sender wrote, so a header a forger wrote in its name lies below it. `Err`
/// says why not, for the log.
pub fn authenticated(raw: &[u8], authserv_id: &str) -> Result<(), String> {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return Err("not a MIME message".to_string());
    };
    let from = message
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.address())
        .and_then(|address| address.rsplit_once('@'))
        .map(|(_, domain)| domain.trim_end_matches('.').to_ascii_lowercase())
        .ok_or("the message has no From address")?;
    let header = message
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, value)| strip_comments(value))
        .find(|value| {
            value
                .split(';')
                .next()
                .and_then(|id| id.split_whitespace().next())
                .is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
        })
        .ok_or_else(|| format!("no Authentication-Results header by {authserv_id}"))?;
    let passed = header.split(';').skip(1).any(|resinfo| {
        let mut words = resinfo.split_whitespace();
        let method = words.next().unwrap_or_default().to_ascii_lowercase();
        method == "dkim=pass"
            && words.any(|word| {
                let (property, value) = word.split_once('=').unwrap_or_default();
                let value = value.trim_matches('"').to_ascii_lowercase();
                match property.to_ascii_lowercase().as_str() {
                    "header.d" => value.trim_end_matches('.') == from,
                    "header.i" => value
                        .rsplit_once('@')
                        .is_some_and(|(_, domain)| domain.trim_end_matches('.') == from),
                    _ => false,
                }
            })
    });
    if passed {
        Ok(())
    } else {
        Err(format!(
            "{authserv_id}'s Authentication-Results has no dkim=pass for {from}, the From domain"
        ))
    }
}

/// An `Authentication-Results` value without its comments (`(…)`, which may nest) and folding.
fn strip_comments(value: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The contents of the parts of `message` (and of the messages attached to it, down to
/// [`MAX_DEPTH`]) that look like a report: XML, gzip or zip.
fn report_parts<'a>(message: &'a Message<'_>, depth: usize, out: &mut Vec<&'a [u8]>) {
    for part in &message.parts {
        match &part.body {
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                if unpack::looks_like_report(bytes) {
                    out.push(bytes);
                }
            }
            PartType::Text(text) => {
                if unpack::looks_like_report(text.as_bytes()) {
                    out.push(text.as_bytes());
                }
            }
            PartType::Message(attached) if depth < MAX_DEPTH => {
                report_parts(attached, depth + 1, out);
            }
            PartType::Message(_) | PartType::Html(_) | PartType::Multipart(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::dmarc::report::tests::RFC7489;
    use crate::dmarc::unpack::tests::gzip;

    fn ids(message: &str) -> Vec<Result<String, &'static str>> {
        reports(message.as_bytes(), &Limits::default())
            .into_iter()
            .map(|r| r.map(|report| report.report_id).map_err(|e| e.reason()))
            .collect()
    }

    /// A report message as receivers send them: a short text, then the report attached.
    fn message(content_type: &str, encoding: &str, body: &str) -> String {
        format!(
            "From: noreply-dmarc-support@google.com\r\n\
             To: dmarc@example.com\r\n\
             Subject: Report domain: example.com Submitter: google.com Report-ID: 1234\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
             \r\n\
             --outer\r\n\
             Content-Type: text/plain; charset=UTF-8\r\n\
             \r\n\
             This is an aggregate report from google.com.\r\n\
             --outer\r\n\
             Content-Type: {content_type}; name=\"report\"\r\n\
             Content-Disposition: attachment; filename=\"report\"\r\n\
             Content-Transfer-Encoding: {encoding}\r\n\
             \r\n\
             {body}\r\n\
             --outer--\r\n"
        )
    }

    const ID: &str = "12345678901234567890";

    #[test]
    fn attachments_of_every_type_receivers_use() {
        let gz = STANDARD.encode(gzip(RFC7489.as_bytes()));
        for content_type in [
            "application/gzip",
            "application/x-gzip",
            "application/octet-stream",
            "application/zip",
        ] {
            assert_eq!(
                ids(&message(content_type, "base64", &gz)),
                [Ok(ID.to_string())],
                "{content_type}"
            );
        }
        let plain = STANDARD.encode(RFC7489);
        assert_eq!(
            ids(&message("text/xml", "base64", &plain)),
            [Ok(ID.to_string())]
        );
        // Quoted-printable: `=` in the XML declaration is written =3D.
        let qp = RFC7489.replace('=', "=3D");
        assert_eq!(
            ids(&message("text/xml", "quoted-printable", &qp)),
            [Ok(ID.to_string())]
        );
    }

    #[test]
    fn a_report_in_an_attached_message_is_found() {
        let gz = STANDARD.encode(gzip(RFC7489.as_bytes()));
        let inner = message("application/gzip", "base64", &gz);
        let outer = format!(
            "From: forwarder@example.com\r\n\
             Subject: Fwd: report\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"fwd\"\r\n\
             \r\n\
             --fwd\r\n\
             Content-Type: text/plain\r\n\
             \r\n\
             See attached.\r\n\
             --fwd\r\n\
             Content-Type: message/rfc822\r\n\
             \r\n\
             {inner}\r\n\
             --fwd--\r\n"
        );
        assert_eq!(ids(&outer), [Ok(ID.to_string())]);
    }

    #[test]
    fn a_message_without_a_report_is_not_a_report() {
        let picture = STANDARD.encode([0x89, b'P', b'N', b'G', 0, 1, 2, 3]);
        assert_eq!(
            ids(&message("image/png", "base64", &picture)),
            [Err("not_a_report")]
        );
        assert_eq!(ids("Hello, just text."), [Err("not_a_report")]);
        let broken = STANDARD.encode(b"\x1f\x8b\x08\x00broken");
        assert_eq!(
            ids(&message("application/gzip", "base64", &broken)),
            [Err("unparsable")]
        );
        let limits = Limits {
            compressed: 1000,
            ..Limits::default()
        };
        let big = message("text/plain", "7bit", &"x".repeat(3000));
        let reasons: Vec<&str> = reports(big.as_bytes(), &limits)
            .into_iter()
            .map(|r| r.map(|_| "report").unwrap_or_else(|e| e.reason()))
            .collect();
        assert_eq!(reasons, ["too_large"]);
    }

    #[test]
    fn authentication_results_of_the_own_server_only() {
        let message =
            |headers: &str| format!("{headers}From: DMARC <noreply@Google.com>\r\n\r\nbody");
        let ok = |headers: &str| authenticated(message(headers).as_bytes(), "mx.example.com");
        let ours = "Authentication-Results: mx.example.com; (comment; with=semicolon)\r\n \
                    dkim=pass (2048-bit key) header.d=google.com header.s=20230601; spf=pass\r\n";
        assert_eq!(ok(ours), Ok(()));
        let by_i = "Authentication-Results: MX.example.com 1; dkim=pass header.i=@google.com\r\n";
        assert_eq!(ok(by_i), Ok(()));
        // The server's own header (topmost) failed; a forged pass below it does not count.
        let forged = "Authentication-Results: mx.example.com; dkim=fail header.d=google.com\r\n\
                      Authentication-Results: mx.example.com; dkim=pass header.d=google.com\r\n";
        assert!(
            ok(forged)
                .unwrap_err()
                .contains("no dkim=pass for google.com")
        );
        let other_domain =
            "Authentication-Results: mx.example.com; dkim=pass header.d=evil.test\r\n";
        assert!(ok(other_domain).is_err());
        let other_server =
            "Authentication-Results: mx.evil.test; dkim=pass header.d=google.com\r\n";
        assert_eq!(
            ok(other_server),
            Err("no Authentication-Results header by mx.example.com".to_string())
        );
    }
}
