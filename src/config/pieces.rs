//! The `domains:` list of a config file cut into its items, so that each item is read on its
//! own.
//!
//! yaml_serde reads a whole document into a list of events before deserialising any of it: at
//! 100,000 domains that list is several times the size of the config it gives, and a reload
//! would hold it beside the config in force. Read an item at a time, the events of one domain
//! are all there is at once.
//!
//! The cut is made on the text, only where it is plain: a top-level `domains:` key alone on its
//! line, followed by a block sequence whose items start at one indentation, every other line
//! of the list indented deeper (or blank, or a comment). Anything else (a flow sequence, an
//! anchor on the key, an item at another indentation) is not cut, and the document is read
//! whole. An item that does not read on its own (an alias to an anchor elsewhere, a quoted
//! string the cut split) fails, and the caller reads the whole document again for the error it
//! gives, so errors are worded and placed exactly as before.

/// A config text with its domain list cut out.
pub(super) struct Pieces<'a> {
    /// Everything but the list, with `domains: []` in its place.
    pub(super) rest: String,
    /// Each item of the list, from its `-` to the next item's.
    pub(super) items: Vec<&'a str>,
}

/// Cuts `source`'s domain list into its items; `None` when it is not plainly cuttable (or there
/// is no list), and the document should be read whole.
pub(super) fn cut(source: &str) -> Option<Pieces<'_>> {
    let mut lines = Lines { source, at: 0 };
    // The key, alone on its line at column 0.
    let key_start = loop {
        let (start, line) = lines.next()?;
        if is_key_line(line) {
            break start;
        }
    };
    let mut indent = None;
    let mut items = Vec::new();
    let mut item_start = None;
    let mut end = source.len();
    for (start, line) in lines.by_ref() {
        let trimmed = line.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let spaces = line.len() - trimmed.len();
        let is_item = trimmed == "-" || trimmed.starts_with("- ");
        match indent {
            // The list ends at the next top-level key (or document marker).
            _ if spaces == 0 && !is_item => {
                end = start;
                break;
            }
            // The first line of the list sets the items' indentation.
            None if is_item => indent = Some(spaces),
            None => return None,
            Some(indent) if spaces < indent => return None,
            Some(_) => {}
        }
        if is_item
            && Some(spaces) == indent
            && let Some(from) = item_start.replace(start)
        {
            items.push(&source[from..start]);
        }
    }
    // No item (`domains:` left empty, which is null, not a list): read it whole.
    items.push(&source[item_start?..end]);
    // A second `domains:` is an error of the whole document.
    let mut after = Lines { source, at: end };
    if after.any(|(_, line)| line.starts_with("domains:")) {
        return None;
    }
    let mut rest = String::with_capacity(key_start + (source.len() - end) + 16);
    rest.push_str(&source[..key_start]);
    rest.push_str("domains: []\n");
    rest.push_str(&source[end..]);
    Some(Pieces { rest, items })
}

/// Whether `line` is the top-level key `domains:`, with nothing after it but a comment.
fn is_key_line(line: &str) -> bool {
    line.strip_prefix("domains:").is_some_and(|tail| {
        let tail = tail.trim_start_matches([' ', '\t']);
        tail.is_empty() || tail.starts_with('#')
    })
}

/// The lines of a text with the offset each starts at, without their line breaks.
struct Lines<'a> {
    source: &'a str,
    at: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        if self.at >= self.source.len() {
            return None;
        }
        let start = self.at;
        let rest = &self.source[start..];
        let (line, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], start + i + 1),
            None => (rest, self.source.len()),
        };
        self.at = next;
        Some((start, line.strip_suffix('\r').unwrap_or(line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(source: &str) -> Option<Vec<&str>> {
        cut(source).map(|p| p.items)
    }

    #[test]
    fn items_at_column_zero_or_indented_with_nested_lists_and_comments() {
        let source = "interval: 1m\ndomains:\n- domain: a.example\n  provider: ses\n  selectors:\n  - s1\n  - s2\n# between\n- domain: b.example\n  records:\n    - selector: x\nresolvers: []\n";
        let pieces = cut(source).unwrap();
        assert_eq!(
            pieces.items,
            [
                "- domain: a.example\n  provider: ses\n  selectors:\n  - s1\n  - s2\n# between\n",
                "- domain: b.example\n  records:\n    - selector: x\n",
            ]
        );
        assert_eq!(pieces.rest, "interval: 1m\ndomains: []\nresolvers: []\n");
        let indented =
            "domains:   # the list\n  - domain: a\r\n\r\n    provider: ses\r\n  - domain: b\r\n";
        assert_eq!(
            items(indented).unwrap(),
            [
                "  - domain: a\r\n\r\n    provider: ses\r\n",
                "  - domain: b\r\n"
            ]
        );
    }

    #[test]
    fn anything_not_plain_is_read_whole() {
        for source in [
            "interval: 1m\n",
            "domains: [{domain: a}]\n",
            "domains: &all\n- domain: a\n",
            "domains:\nresolvers: []\n",
            "domains:\n  domain: a\n",
            "domains:\n  - domain: a\n - domain: b\n",
            "domains:\n- domain: a\ndomains:\n- domain: b\n",
            "domains:\n- domain: a\ninterval: 1m\ndomains: []\n",
            "  domains:\n  - domain: a\n",
        ] {
            assert!(cut(source).is_none(), "{source:?}");
        }
    }
}
