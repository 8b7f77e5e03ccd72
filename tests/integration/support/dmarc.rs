//! DMARC aggregate reports and report messages shaped like receivers send them, for tests.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// One report row: `count` messages from `from` with DMARC-evaluated `dkim` and `spf`, and
/// their signatures as (d=, s=, result).
pub struct Row<'a> {
    pub count: u64,
    pub from: &'a str,
    pub dkim: &'a str,
    pub spf: &'a str,
    pub signatures: &'a [(&'a str, &'a str, &'a str)],
}

/// Unix time now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An RFC 7489 appendix C report by `org` (ID `id`) about `domain`, for the day ending at
/// `end`; `namespace` writes it in the RFC 9990 format instead.
pub fn report_xml(
    org: &str,
    id: &str,
    end: u64,
    domain: &str,
    rows: &[Row<'_>],
    rfc9990: bool,
) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if rfc9990 {
        xml.push_str(
            "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n  <version>1.0</version>\n",
        );
    } else {
        xml.push_str("<feedback>\n");
    }
    xml.push_str(&format!(
        "  <report_metadata>\n    <org_name>{org}</org_name>\n    <email>noreply-dmarc@{org}</email>\n    \
         <report_id>{id}</report_id>\n    <date_range><begin>{}</begin><end>{end}</end></date_range>\n  \
         </report_metadata>\n  <policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf>\
         <p>none</p><pct>100</pct></policy_published>\n",
        end - 86400
    ));
    for row in rows {
        xml.push_str(&format!(
            "  <record>\n    <row><source_ip>192.0.2.1</source_ip><count>{}</count>\
             <policy_evaluated><disposition>none</disposition><dkim>{}</dkim><spf>{}</spf>\
             </policy_evaluated></row>\n    <identifiers><header_from>{}</header_from></identifiers>\n    \
             <auth_results>",
            row.count, row.dkim, row.spf, row.from
        ));
        for (d, s, result) in row.signatures {
            xml.push_str(&format!(
                "<dkim><domain>{d}</domain><selector>{s}</selector><result>{result}</result></dkim>"
            ));
        }
        xml.push_str(&format!(
            "<spf><domain>{}</domain><result>{}</result></spf></auth_results>\n  </record>\n",
            row.from, row.spf
        ));
    }
    xml.push_str("</feedback>\n");
    xml
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A report message from `from` with `attachment` (named `name`, of `content_type`) in base64,
/// and `headers` (such as an `Authentication-Results:` line, CRLF-terminated) on top.
pub fn message(
    headers: &str,
    from: &str,
    name: &str,
    content_type: &str,
    attachment: &[u8],
) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(attachment);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "{headers}From: DMARC Aggregate Report <{from}>\r\n\
         To: dmarc@example.net\r\n\
         Subject: Report Domain: {name}\r\n\
         Date: Mon, 7 Dec 2026 06:00:00 +0000\r\n\
         Message-ID: <{name}@test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
         \r\n\
         --b1\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is an aggregate report.\r\n\
         --b1\r\n\
         Content-Type: {content_type}; name=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         \r\n\
         {}\r\n\
         --b1--\r\n",
        lines.join("\r\n")
    )
}
