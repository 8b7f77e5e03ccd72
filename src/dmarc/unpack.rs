//! The reports in one item's bytes: plain XML, gzip, or a zip of one or more files, told apart
//! by their first bytes (receivers name and label them every which way).
//!
//! Bounded whatever the item holds: more than [`Limits::compressed`] bytes in, or more than
//! [`Limits::uncompressed`] bytes out of the whole item (a zip or gzip bomb), is `too_large`,
//! and decompression stops at the bound instead of reading on.

use std::io::{Cursor, Read};

use super::ReadError;
use super::report::{self, Report};

/// How much one item may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the item as it arrives.
    pub compressed: u64,
    /// Bytes once decompressed, over every file of an archive.
    pub uncompressed: u64,
    /// Files in one zip archive.
    pub files: usize,
}

impl Default for Limits {
    /// 10 MiB in, 100 MiB out, 100 files an archive.
    fn default() -> Self {
        Limits {
            compressed: 10 * 1024 * 1024,
            uncompressed: 100 * 1024 * 1024,
            files: 100,
        }
    }
}

/// The reports in `bytes`, each or the reason it is not one: an archive of several files gives
/// one result per file.
pub fn reports(bytes: &[u8], limits: &Limits) -> Vec<Result<Report, ReadError>> {
    if bytes.len() as u64 > limits.compressed {
        return vec![Err(ReadError::TooLarge(format!(
            "{} bytes, more than the {} an item may hold",
            bytes.len(),
            limits.compressed
        )))];
    }
    let mut budget = limits.uncompressed;
    match Kind::of(bytes) {
        Kind::Zip => zip(bytes, limits, &mut budget),
        Kind::Gzip => vec![gunzip(bytes, &mut budget).and_then(|xml| text(&xml))],
        Kind::Xml => vec![text(bytes)],
    }
}

/// Whether `bytes` start as a report would: zip, gzip, or XML (a byte-order mark and white
/// space allowed before it). What a message's parts are picked by.
pub(super) fn looks_like_report(bytes: &[u8]) -> bool {
    match Kind::of(bytes) {
        Kind::Zip | Kind::Gzip => true,
        Kind::Xml => {
            let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
            text.trim_ascii_start().starts_with(b"<")
        }
    }
}

/// What an item's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zip,
    Gzip,
    Xml,
}

impl Kind {
    fn of(bytes: &[u8]) -> Kind {
        if bytes.starts_with(b"PK\x03\x04") {
            Kind::Zip
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            Kind::Gzip
        } else {
            Kind::Xml
        }
    }
}

/// One report's XML bytes: UTF-8 (a byte-order mark allowed) that starts as XML does.
fn text(bytes: &[u8]) -> Result<Report, ReadError> {
    let xml =
        std::str::from_utf8(bytes).map_err(|e| ReadError::Unparsable(format!("not UTF-8: {e}")))?;
    let xml = xml.trim_start_matches('\u{feff}').trim_start();
    if !xml.starts_with('<') {
        return Err(ReadError::NotAReport(
            "neither XML, gzip nor zip".to_string(),
        ));
    }
    report::parse(xml)
}

/// Decompresses gzip `bytes`, taking what comes out from `budget`.
fn gunzip(bytes: &[u8], budget: &mut u64) -> Result<Vec<u8>, ReadError> {
    bounded(flate2::read::MultiGzDecoder::new(bytes), budget, "gzip")
}

/// Reads `from` to its end, or to `budget` and one byte more, which is `too_large`.
fn bounded(from: impl Read, budget: &mut u64, what: &str) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    from.take(budget.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| ReadError::Unparsable(format!("{what}: {e}")))?;
    let read = out.len() as u64;
    if read > *budget {
        *budget = 0;
        return Err(ReadError::TooLarge(format!(
            "{what} decompresses to more than the bytes left of the item's bound"
        )));
    }
    *budget -= read;
    Ok(out)
}

/// The reports of each file of a zip archive (a gzip file in it is opened too).
fn zip(bytes: &[u8], limits: &Limits, budget: &mut u64) -> Vec<Result<Report, ReadError>> {
    let mut archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(archive) => archive,
        Err(e) => return vec![Err(ReadError::Unparsable(format!("zip: {e}")))],
    };
    if archive.len() > limits.files {
        return vec![Err(ReadError::TooLarge(format!(
            "a zip of {} files, more than {}",
            archive.len(),
            limits.files
        )))];
    }
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let file = match archive.by_index(i) {
            Ok(file) if file.is_dir() => continue,
            Ok(file) => bounded(file, budget, "zip"),
            Err(e) => Err(ReadError::Unparsable(format!("zip: {e}"))),
        };
        let result = file.and_then(|content| match Kind::of(&content) {
            Kind::Gzip => gunzip(&content, budget).and_then(|xml| text(&xml)),
            Kind::Xml => text(&content),
            Kind::Zip => Err(ReadError::NotAReport("a zip inside a zip".to_string())),
        });
        let stop = matches!(result, Err(ReadError::TooLarge(_)));
        out.push(result);
        if stop {
            break;
        }
    }
    if out.is_empty() {
        out.push(Err(ReadError::NotAReport("an empty zip".to_string())));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::dmarc::report::tests::RFC7489;

    /// `bytes` gzipped, as receivers send them.
    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    fn ids(results: &[Result<Report, ReadError>]) -> Vec<Result<&str, &'static str>> {
        results
            .iter()
            .map(|r| match r {
                Ok(report) => Ok(report.report_id.as_str()),
                Err(e) => Err(e.reason()),
            })
            .collect()
    }

    const ID: &str = "12345678901234567890";

    #[test]
    fn plain_gzip_and_zip_give_the_same_report() {
        let limits = Limits::default();
        let xml = RFC7489.as_bytes();
        let mut bom = "\u{feff}".as_bytes().to_vec();
        bom.extend_from_slice(xml);
        for item in [
            xml.to_vec(),
            bom,
            gzip(xml),
            zip_of(&[("google.com!example.com!1764892800!1764979199.xml", xml)]),
        ] {
            assert_eq!(ids(&reports(&item, &limits)), [Ok(ID)]);
        }
        let other = RFC7489.replace(ID, "second");
        let several = zip_of(&[
            ("a.xml", xml),
            ("b.xml.gz", &gzip(other.as_bytes())),
            ("readme.txt", b"hello"),
        ]);
        assert_eq!(
            ids(&reports(&several, &limits)),
            [Ok(ID), Ok("second"), Err("not_a_report")]
        );
    }

    #[test]
    fn bombs_and_big_items_stop_at_the_bound() {
        let limits = Limits {
            compressed: 64 * 1024,
            uncompressed: 256 * 1024,
            files: 3,
        };
        // A megabyte of zeros compresses to about a kilobyte.
        let zeros = vec![b' '; 1024 * 1024];
        assert_eq!(ids(&reports(&gzip(&zeros), &limits)), [Err("too_large")]);
        let bomb = zip_of(&[("a.xml", &zeros), ("b.xml", RFC7489.as_bytes())]);
        assert_eq!(ids(&reports(&bomb, &limits)), [Err("too_large")]);
        let many: Vec<(String, &[u8])> = (0..4)
            .map(|i| (format!("{i}.xml"), RFC7489.as_bytes()))
            .collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(ids(&reports(&zip_of(&many), &limits)), [Err("too_large")]);
        let big = vec![b'<'; 64 * 1024 + 1];
        assert_eq!(ids(&reports(&big, &limits)), [Err("too_large")]);
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        let limits = Limits::default();
        let cases: [(&[u8], &str); 5] = [
            (b"PK\x03\x04 not really a zip", "unparsable"),
            (&[0x1f, 0x8b, 8, 0, 0, 0], "unparsable"),
            (b"\xff\xfe<feedback/>", "unparsable"),
            (b"Hello, this is not a report", "not_a_report"),
            (b"", "not_a_report"),
        ];
        for (bytes, reason) in cases {
            assert_eq!(ids(&reports(bytes, &limits)), [Err(reason)], "{bytes:?}");
        }
    }
}
