//! DMARC aggregate reports: what receivers saw of a domain's mail (issue 22, being built).
//!
//! So far this folder reads a mailbox, and one item (a report file, a bucket object, an
//! attachment's bytes) into the reports it holds, bounded whatever anyone sends:
//!
//! - `imap`: the messages of a mailbox's folder over IMAP, read-only, each fetched once;
//! - `message`: the reports attached to a message (MIME, through mail-parser);
//! - `unpack`: plain XML, gzip, or a zip of one or more files, within [`Limits`];
//! - `report`: one report, RFC 7489 appendix C or RFC 9990, into [`report::Report`].
//!
//! One source can be read so far: `s3`, the bucket where an SES receipt rule stores each
//! message (listing, fetching within a bound, what was already read). The other sources (a
//! mailbox, a directory), the task that reads them, the counting per watched domain and the
//! join with DNS plug in as ARCHITECTURE.md says, the way `ses/` does.

pub mod imap;
pub mod message;
pub mod records;
pub mod report;
pub mod s3;
pub mod source;
pub mod tally;
pub mod unpack;
pub mod watch;

pub use unpack::{Limits, reports};

/// Every `reason` label value of `dkim_dmarc_report_errors_total` ([`ReadError::reason`]).
pub const REASONS: [&str; 3] = ["not_a_report", "unparsable", "too_large"];

/// Why an item, or part of one, was not read as a report: the `reason` label of
/// `dkim_dmarc_report_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Readable, but not a DMARC aggregate report (another XML document, other content).
    #[error("not a DMARC aggregate report: {0}")]
    NotAReport(String),
    /// Meant as a report, but broken: bad XML, bad UTF-8, a bad archive, an absurd value.
    #[error("unparsable: {0}")]
    Unparsable(String),
    /// Past a bound of [`Limits`]; nothing was read beyond it.
    #[error("too large: {0}")]
    TooLarge(String),
}

impl ReadError {
    /// The `reason` label value.
    pub fn reason(&self) -> &'static str {
        match self {
            ReadError::NotAReport(_) => "not_a_report",
            ReadError::Unparsable(_) => "unparsable",
            ReadError::TooLarge(_) => "too_large",
        }
    }
}
