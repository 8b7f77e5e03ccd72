//! The version is set once, in Cargo.toml, and every other place that names it agrees: the
//! newest release in CHANGELOG.md, the image's version label, the tag the manifests and the
//! documents give the image, and what the binary says. A bump that forgets one fails here.

use crate::support::repo_file as read;
use std::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A version's numbers, for ordering releases.
fn numbers(version: &str) -> Vec<u64> {
    version
        .split('.')
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{version:?} is not x.y.z"))
        })
        .collect()
}

#[test]
fn the_changelog_reads_as_releases_the_newest_being_this_version() {
    let changelog = read("CHANGELOG.md");
    let headings: Vec<&str> = changelog
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    assert_eq!(headings.first(), Some(&"Unreleased"), "{headings:?}");
    let releases: Vec<(&str, &str)> = headings[1..]
        .iter()
        .map(|h| {
            h.split_once(" / ")
                .unwrap_or_else(|| panic!("release heading {h:?} is not \"VERSION / YYYY-MM-DD\""))
        })
        .collect();
    assert_eq!(
        releases.first().map(|r| r.0),
        Some(VERSION),
        "CHANGELOG.md's newest release is not Cargo.toml's version"
    );
    for pair in releases.windows(2) {
        let ((newer, newer_date), (older, older_date)) = (pair[0], pair[1]);
        assert!(
            numbers(newer) > numbers(older),
            "{newer} is listed above {older}"
        );
        assert!(
            newer_date >= older_date,
            "{newer} / {newer_date} is older than {older} / {older_date}"
        );
    }
    for (version, date) in &releases {
        let shape = date.len() == 10
            && date.char_indices().all(|(i, c)| match i {
                4 | 7 => c == '-',
                _ => c.is_ascii_digit(),
            });
        assert!(shape, "{version}'s date {date:?} is not YYYY-MM-DD");
    }
    for line in changelog.lines().filter(|l| l.starts_with("- ")) {
        let tagged = ["[CHANGE]", "[FEATURE]", "[ENHANCEMENT]", "[BUGFIX]"]
            .iter()
            .any(|tag| line[2..].starts_with(tag));
        assert!(tagged, "an entry without its tag: {line}");
    }
    let lower = changelog.to_lowercase();
    assert!(
        !lower.contains("issue ") && !lower.contains("issues "),
        "CHANGELOG.md is for users: no internal issue numbers"
    );
}

/// Every `dkim_exporter:TAG` in `text`, but local builds (`localhost/…`) and the placeholder
/// `VERSION`.
fn image_tags(text: &str) -> Vec<String> {
    let mut tags = Vec::new();
    for (at, _) in text.match_indices("dkim_exporter:") {
        if text[..at].ends_with("localhost/") {
            continue;
        }
        let rest = &text[at + "dkim_exporter:".len()..];
        let tag: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .collect();
        let tag = tag.trim_end_matches('.');
        if !tag.is_empty() && tag != "VERSION" {
            tags.push(tag.to_string());
        }
    }
    tags
}

#[test]
fn every_image_is_tagged_with_this_version_or_latest() {
    let manifests = [
        "deploy/docker-compose.yml",
        "deploy/kubernetes/deployment.yaml",
        "deploy/kubernetes/shards/statefulset.yaml",
    ];
    let documents = ["README.md", "docs/deployment.md", "Dockerfile"];
    for file in manifests.iter().chain(&documents) {
        let tags = image_tags(&read(file));
        assert!(!tags.is_empty(), "{file} names no image");
        for tag in &tags {
            assert!(
                tag == VERSION || tag == "latest",
                "{file} tags the image {tag:?}, not {VERSION} (Cargo.toml) or latest"
            );
        }
    }
    for file in manifests {
        let text = read(file);
        let images: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
            .filter(|i| i.contains("dkim_exporter"))
            .collect();
        assert_eq!(
            images,
            [format!("dkim_exporter:{VERSION}")],
            "{file} runs another image"
        );
    }
    let label = format!("org.opencontainers.image.version=\"{VERSION}\"");
    assert!(
        read("Dockerfile").contains(&label),
        "the Dockerfile's image is not labelled {label}"
    );
}

#[test]
fn the_binary_says_its_version_and_revision() {
    let out = Command::new(env!("CARGO_BIN_EXE_dkim_exporter"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8(out.stdout).unwrap();
    let revision = env!("DKIM_EXPORTER_REVISION");
    assert_eq!(
        said.trim_end(),
        format!("dkim_exporter {VERSION} (revision {revision})")
    );
    assert_eq!(
        dkim_exporter::VERSION,
        format!("{VERSION} (revision {revision})")
    );
}
