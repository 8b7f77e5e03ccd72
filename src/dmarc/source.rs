//! What a source holds between reads: each item it read (a file, a message, an object), under
//! a stamp that changes when the item does, with the reports found in it.
//!
//! A read asks the source which items it has now; an item with the stamp it had is not read
//! again, a new or changed one is read, and an item that is gone (or left the window) is
//! dropped with its reports. So each message or file is fetched and parsed once, and what is
//! held is what the source has.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::report::Report;
use super::{Limits, ReadError, message, unpack};

/// The file names a directory source reads: reports, compressed reports, saved messages.
pub const FILE_EXTENSIONS: [&str; 4] = [".xml", ".gz", ".zip", ".eml"];

/// The items a source read, with their reports.
#[derive(Debug, Default)]
pub struct Holding {
    /// By item name (a file name, a UID, an object key).
    items: HashMap<String, Item>,
}

/// One item and what it held.
#[derive(Debug)]
struct Item {
    /// Changes when the item does (size and time, ETag, UIDVALIDITY).
    stamp: String,
    /// The reports it held that count.
    reports: Vec<Arc<Report>>,
}

impl Holding {
    /// Whether the item `name` was read with this `stamp`.
    pub fn has(&self, name: &str, stamp: &str) -> bool {
        self.items.get(name).is_some_and(|i| i.stamp == stamp)
    }

    /// Keeps what the item `name` held, read with `stamp`.
    pub fn insert(&mut self, name: String, stamp: String, reports: Vec<Arc<Report>>) {
        self.items.insert(name, Item { stamp, reports });
    }

    /// Drops the items not in `names`: gone from the source, or out of its window.
    pub fn keep_only(&mut self, names: &HashSet<String>) {
        self.items.retain(|name, _| names.contains(name));
    }

    /// Every report held, item by item.
    pub fn reports(&self) -> Vec<Arc<Report>> {
        self.items
            .values()
            .flat_map(|i| i.reports.iter().cloned())
            .collect()
    }

    /// How many items are held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What one item gave.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The reports that count.
    pub reports: Vec<Arc<Report>>,
    /// What could not be read as a report.
    pub errors: Vec<ReadError>,
    /// Why the item's reports do not count although read: the source's `authserv_id` does not
    /// vouch for the message.
    pub not_authenticated: Option<String>,
}

/// Reads one item's bytes: a report (XML, gzip, zip) as it is, or else a message with reports
/// attached. With `authserv_id`, only a message that server vouches for counts
/// ([`message::authenticated`]); a bare report carries no such proof and does not count.
pub fn read_item(bytes: &[u8], authserv_id: Option<&str>, limits: &Limits) -> Outcome {
    let is_message = !unpack::looks_like_report(bytes);
    let results = if is_message {
        message::reports(bytes, limits)
    } else {
        unpack::reports(bytes, limits)
    };
    let mut outcome = Outcome::default();
    for result in results {
        match result {
            Ok(report) => outcome.reports.push(Arc::new(report)),
            Err(error) => outcome.errors.push(error),
        }
    }
    if let Some(id) = authserv_id
        && !outcome.reports.is_empty()
    {
        let vouched = if is_message {
            message::authenticated(bytes, id)
        } else {
            Err(format!(
                "a report file carries no Authentication-Results by {id}; with authserv_id only \
                 messages count"
            ))
        };
        if let Err(why) = vouched {
            outcome.reports.clear();
            outcome.not_authenticated = Some(why);
        }
    }
    outcome
}

/// Reads the files of `dir` (not its subdirectories) named like reports or messages
/// ([`FILE_EXTENSIONS`]) into `holding`: new and changed files are read, vanished ones dropped.
/// `each` is told each file read and what it gave. `Err` when the directory cannot be listed:
/// then `holding` is left as it was.
pub fn read_directory(
    dir: &Path,
    holding: &mut Holding,
    authserv_id: Option<&str>,
    limits: &Limits,
    mut each: impl FnMut(&str, &Outcome),
) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("directory {}: {e}", dir.display()))?;
    let mut present = HashSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("directory {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        if name.starts_with('.') || !FILE_EXTENSIONS.iter().any(|e| lower.ends_with(e)) {
            continue;
        }
        // Follows symbolic links, as a reader of the files would.
        let Ok(metadata) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let modified = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let stamp = format!("{}:{modified}", metadata.len());
        present.insert(name.clone());
        if holding.has(&name, &stamp) {
            continue;
        }
        let outcome = match read_file(&entry.path(), metadata.len(), &lower, limits) {
            Ok(bytes) => read_item(&bytes, authserv_id, limits),
            Err(error) => Outcome {
                errors: vec![error],
                ..Outcome::default()
            },
        };
        each(&name, &outcome);
        holding.insert(name, stamp, outcome.reports);
    }
    holding.keep_only(&present);
    Ok(())
}

/// Reads `path` into `holding`: a directory as [`read_directory`] does, any other file as one
/// item whatever its name (for `check --dmarc-reports`). `Err` when it cannot be read.
pub fn read_path(
    path: &Path,
    holding: &mut Holding,
    limits: &Limits,
    mut each: impl FnMut(&str, &Outcome),
) -> Result<(), String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if metadata.is_dir() {
        return read_directory(path, holding, None, limits, |name, outcome| {
            each(&path.join(name).display().to_string(), outcome);
        });
    }
    let name = path.display().to_string();
    let outcome = match read_file(path, metadata.len(), &name.to_ascii_lowercase(), limits) {
        Ok(bytes) => read_item(&bytes, None, limits),
        Err(error) => Outcome {
            errors: vec![error],
            ..Outcome::default()
        },
    };
    each(&name, &outcome);
    holding.insert(name, String::new(), outcome.reports);
    Ok(())
}

/// The most bytes a message may have: twice what a report may ([`message::reports`]).
pub fn message_bound(limits: &Limits) -> u64 {
    limits.compressed.saturating_mul(2)
}

/// The bytes of one file of `len` bytes, within the bound of its kind: a saved message may be
/// twice a report's size (base64).
fn read_file(
    path: &Path,
    len: u64,
    lower_name: &str,
    limits: &Limits,
) -> Result<Vec<u8>, ReadError> {
    let bound = if lower_name.ends_with(".eml") {
        message_bound(limits)
    } else {
        limits.compressed
    };
    if len > bound {
        return Err(ReadError::TooLarge(format!(
            "a file of {len} bytes, more than {bound}"
        )));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| ReadError::Unparsable(format!("cannot read the file: {e}")))?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(bound + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Unparsable(format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > bound {
        return Err(ReadError::TooLarge(format!(
            "a file that grew past {bound} bytes while read"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dmarc::report::tests::RFC7489;

    #[test]
    fn a_directory_is_read_once_per_change() {
        let dir = std::env::temp_dir().join(format!("dmarc-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.xml"), RFC7489).unwrap();
        std::fs::write(dir.join("junk.xml"), "<html/>").unwrap();
        std::fs::write(dir.join("notes.txt"), RFC7489).unwrap();
        let mut holding = Holding::default();
        let mut read = Vec::new();
        let limits = Limits::default();
        let pass = |holding: &mut Holding, read: &mut Vec<String>| {
            read_directory(&dir, holding, None, &limits, |name, outcome| {
                read.push(format!(
                    "{name}:{}:{}",
                    outcome.reports.len(),
                    outcome
                        .errors
                        .iter()
                        .map(ReadError::reason)
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            })
            .unwrap();
        };
        pass(&mut holding, &mut read);
        read.sort();
        assert_eq!(read, ["a.xml:1:", "junk.xml:0:not_a_report"]);
        assert_eq!(holding.reports().len(), 1);
        read.clear();
        pass(&mut holding, &mut read);
        assert!(
            read.is_empty(),
            "unchanged files are not read again: {read:?}"
        );
        std::fs::remove_file(dir.join("a.xml")).unwrap();
        pass(&mut holding, &mut read);
        assert!(holding.reports().is_empty());
        assert_eq!(holding.len(), 1);
        assert!(
            read_directory(&dir.join("missing"), &mut holding, None, &limits, |_, _| {})
                .unwrap_err()
                .contains("missing")
        );
        assert_eq!(holding.len(), 1, "a failed read keeps what was held");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn with_authserv_id_a_bare_report_does_not_count() {
        let outcome = read_item(
            RFC7489.as_bytes(),
            Some("mx.example.com"),
            &Limits::default(),
        );
        assert!(outcome.reports.is_empty());
        assert!(
            outcome
                .not_authenticated
                .unwrap()
                .contains("only messages count")
        );
        let outcome = read_item(RFC7489.as_bytes(), None, &Limits::default());
        assert_eq!(outcome.reports.len(), 1);
    }
}
