//! One DMARC aggregate report, read from its XML: RFC 7489 appendix C, or RFC 9990
//! (namespace `urn:ietf:params:xml:ns:dmarc-2.0`), with or without an XML declaration.
//!
//! quick-xml's serde reader does the XML: it matches elements by their local names, so a
//! default or prefixed namespace reads the same, and it never expands an entity a document
//! declares (such a reference is an error). What it gives is then checked and normalised here:
//! names lower case without the trailing dot, results lower case, counts within reason.

use serde::Deserialize;

use super::ReadError;

/// The most messages one row may claim. A real row counts a day's mail from one address; a
/// larger count is an attempt to skew the figures, not a report.
pub const MAX_ROW_COUNT: u64 = 1_000_000_000;

/// One aggregate report, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The reporter (`report_metadata/org_name`), as written.
    pub org_name: String,
    /// The reporter's ID of the report: with `org_name`, what makes a report the same one.
    pub report_id: String,
    /// Unix time the reported period began.
    pub begin: u64,
    /// Unix time the reported period ended.
    pub end: u64,
    /// The domain of the published policy, lower case without the trailing dot.
    pub domain: String,
    /// The rows: messages from one source address with one outcome.
    pub rows: Vec<Row>,
}

/// One row: `count` messages with the same source and results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// How many messages.
    pub count: u64,
    /// The header From domain, lower case; the policy's domain when the row names none.
    pub header_from: String,
    /// The DMARC-evaluated (aligned) DKIM result, lower case (`pass`, `fail`).
    pub dkim: Option<String>,
    /// The DMARC-evaluated (aligned) SPF result, lower case.
    pub spf: Option<String>,
    /// Each DKIM signature the receiver checked.
    pub signatures: Vec<Signature>,
}

/// One DKIM signature of a row's messages, as the receiver judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Its `d=`, lower case without the trailing dot.
    pub domain: String,
    /// Its `s=`, lower case, when the report gives it.
    pub selector: Option<String>,
    /// The receiver's result, lower case (`pass`, `fail`, `neutral`, …).
    pub result: String,
}

/// Reads one report from its XML text.
pub fn parse(xml: &str) -> Result<Report, ReadError> {
    let raw: RawFeedback = quick_xml::de::from_str(xml).map_err(|e| match e {
        // A document that is XML but not shaped like a report.
        quick_xml::DeError::Custom(message) => ReadError::NotAReport(message),
        other => ReadError::Unparsable(other.to_string()),
    })?;
    let (Some(metadata), Some(policy)) = (raw.report_metadata, raw.policy_published) else {
        return Err(ReadError::NotAReport(
            "no report_metadata or policy_published".to_string(),
        ));
    };
    let domain = name(&policy.domain);
    if domain.is_empty() {
        return Err(ReadError::NotAReport(
            "policy_published names no domain".to_string(),
        ));
    }
    let range = metadata.date_range.unwrap_or_default();
    let rows = raw
        .record
        .into_iter()
        .map(|record| row(record, &domain))
        .collect::<Result<_, _>>()?;
    Ok(Report {
        org_name: metadata.org_name.trim().to_string(),
        report_id: metadata.report_id.trim().to_string(),
        begin: number(&range.begin, "date_range/begin", u64::MAX)?,
        end: number(&range.end, "date_range/end", u64::MAX)?,
        domain,
        rows,
    })
}

/// One `record`, checked.
fn row(record: RawRecord, policy_domain: &str) -> Result<Row, ReadError> {
    let header_from = record
        .identifiers
        .map(|i| name(&i.header_from))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| policy_domain.to_string());
    let evaluated = record.row.policy_evaluated.unwrap_or_default();
    Ok(Row {
        count: number(&record.row.count, "row/count", MAX_ROW_COUNT)?,
        header_from,
        dkim: result(evaluated.dkim),
        spf: result(evaluated.spf),
        signatures: record
            .auth_results
            .map(|a| a.dkim)
            .unwrap_or_default()
            .into_iter()
            .map(|s| Signature {
                domain: name(&s.domain),
                selector: result(s.selector),
                result: result(s.result).unwrap_or_else(|| "none".to_string()),
            })
            .collect(),
    })
}

/// A domain as reports write it, lower case without the trailing dot.
fn name(text: &str) -> String {
    text.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A word of a result, lower case; `None` when empty.
fn result(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

/// A whole number no greater than `max`: a negative, fractional or absurd one is not a report's.
fn number(text: &str, what: &str, max: u64) -> Result<u64, ReadError> {
    match text.trim().parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ReadError::Unparsable(format!(
            "{what} is not a whole number up to {max}: {:?}",
            text.chars().take(40).collect::<String>()
        ))),
    }
}

/// `feedback`, as written; unknown elements are passed over.
#[derive(Deserialize)]
struct RawFeedback {
    report_metadata: Option<RawMetadata>,
    policy_published: Option<RawPolicy>,
    #[serde(default)]
    record: Vec<RawRecord>,
}

#[derive(Deserialize)]
struct RawMetadata {
    #[serde(default)]
    org_name: String,
    #[serde(default)]
    report_id: String,
    date_range: Option<RawRange>,
}

#[derive(Deserialize, Default)]
struct RawRange {
    #[serde(default)]
    begin: String,
    #[serde(default)]
    end: String,
}

#[derive(Deserialize)]
struct RawPolicy {
    #[serde(default)]
    domain: String,
}

#[derive(Deserialize)]
struct RawRecord {
    row: RawRow,
    identifiers: Option<RawIdentifiers>,
    auth_results: Option<RawAuthResults>,
}

#[derive(Deserialize)]
struct RawRow {
    #[serde(default)]
    count: String,
    policy_evaluated: Option<RawEvaluated>,
}

#[derive(Deserialize, Default)]
struct RawEvaluated {
    dkim: Option<String>,
    spf: Option<String>,
}

#[derive(Deserialize)]
struct RawIdentifiers {
    #[serde(default)]
    header_from: String,
}

#[derive(Deserialize)]
struct RawAuthResults {
    #[serde(default)]
    dkim: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(default)]
    domain: String,
    selector: Option<String>,
    result: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report in the RFC 7489 shape: two rows, one with two signatures.
    pub(crate) const RFC7489: &str = r#"<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <report_id>12345678901234567890</report_id>
    <date_range><begin>1764892800</begin><end>1764979199</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>Example.COM</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip>
      <count>12</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results>
      <dkim><domain>example.com</domain><selector>S1</selector><result>pass</result></dkim>
      <dkim><domain>amazonses.com</domain><selector>224i4yxa</selector><result>pass</result></dkim>
      <spf><domain>example.com</domain><result>pass</result></spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>198.51.100.7</source_ip>
      <count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>FAIL</spf></policy_evaluated>
    </row>
    <identifiers><header_from>mail.example.com.</header_from></identifiers>
    <auth_results>
      <dkim><domain>example.com</domain><result>fail</result></dkim>
    </auth_results>
  </record>
</feedback>
"#;

    fn expected() -> Report {
        Report {
            org_name: "google.com".into(),
            report_id: "12345678901234567890".into(),
            begin: 1_764_892_800,
            end: 1_764_979_199,
            domain: "example.com".into(),
            rows: vec![
                Row {
                    count: 12,
                    header_from: "example.com".into(),
                    dkim: Some("pass".into()),
                    spf: Some("pass".into()),
                    signatures: vec![
                        Signature {
                            domain: "example.com".into(),
                            selector: Some("s1".into()),
                            result: "pass".into(),
                        },
                        Signature {
                            domain: "amazonses.com".into(),
                            selector: Some("224i4yxa".into()),
                            result: "pass".into(),
                        },
                    ],
                },
                Row {
                    count: 3,
                    header_from: "mail.example.com".into(),
                    dkim: Some("fail".into()),
                    spf: Some("fail".into()),
                    signatures: vec![Signature {
                        domain: "example.com".into(),
                        selector: None,
                        result: "fail".into(),
                    }],
                },
            ],
        }
    }

    #[test]
    fn an_rfc_7489_report() {
        assert_eq!(parse(RFC7489), Ok(expected()));
    }

    #[test]
    fn namespaces_and_no_declaration_read_the_same() {
        let body = RFC7489
            .split_once("<feedback>")
            .map(|(_, rest)| rest)
            .unwrap();
        let rfc9990 = format!(
            "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\"><version>1.0</version>{body}"
        );
        assert_eq!(parse(&rfc9990), Ok(expected()));
        let prefixed = format!(
            "<dmarc:feedback xmlns:dmarc=\"urn:ietf:params:xml:ns:dmarc-2.0\">{}",
            body.replace("</feedback>", "</dmarc:feedback>")
        );
        assert_eq!(parse(&prefixed), Ok(expected()));
    }

    #[test]
    fn what_is_not_a_report_says_so() {
        let not = |xml: &str| parse(xml).unwrap_err().reason();
        assert_eq!(not("<html><body>hello</body></html>"), "not_a_report");
        assert_eq!(not("<feedback><record/></feedback>"), "not_a_report");
        assert_eq!(
            not("<feedback><report_metadata/><policy_published/></feedback>"),
            "not_a_report"
        );
        assert_eq!(not("<feedback><report_metadata>"), "unparsable");
        assert_eq!(not("not xml at all"), "not_a_report");
    }

    #[test]
    fn absurd_counts_and_declared_entities_are_refused() {
        for count in ["-1", "1.5", "99999999999", "lots"] {
            let xml = RFC7489.replacen("<count>12</count>", &format!("<count>{count}</count>"), 1);
            let err = parse(&xml).unwrap_err();
            assert_eq!(err.reason(), "unparsable", "{count}: {err}");
        }
        // An entity the document declares is never expanded (billion laughs and the like).
        let xml = format!(
            "<!DOCTYPE feedback [<!ENTITY lol \"lol\">]>{}",
            RFC7489
                .replacen("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>", "", 1)
                .replacen("google.com</org_name>", "&lol;</org_name>", 1)
        );
        let err = parse(&xml).unwrap_err();
        assert_eq!(err.reason(), "unparsable", "{err}");
        assert!(err.to_string().contains("lol"), "{err}");
    }
}
