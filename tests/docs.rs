//! The documents that describe the problems say what the code does: the README's
//! troubleshooting table is the problem table, and every problem has an alert of its severity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use dkim_exporter::problem::{Problem, TABLE, markdown_table};

fn read(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_readme_troubleshooting_table_is_the_problem_table() {
    let readme = read("README.md");
    let section = readme
        .split_once("\n## Troubleshooting\n")
        .expect("README has a Troubleshooting section")
        .1;
    let start = section
        .find("| problem |")
        .expect("the section has the problem table");
    let table: String = section[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    let want = markdown_table();
    assert!(
        table == want,
        "README.md's troubleshooting table differs from src/problem.rs; it should read:\n\n{want}"
    );
}

#[test]
fn every_problem_has_an_alert_of_its_severity() {
    let rules: yaml_serde::Value =
        yaml_serde::from_str(&read("deploy/prometheus/dkim-alerts.yml")).unwrap();
    let mut alerted = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap_or_default();
            for entry in &TABLE {
                if expr.contains(&format!(
                    "dkim_record_problem{{problem=\"{}\"}}",
                    entry.name
                )) {
                    assert_eq!(
                        rule["labels"]["severity"].as_str(),
                        Some(entry.severity.as_str()),
                        "{:?}",
                        rule["alert"]
                    );
                    alerted.push(entry.problem);
                }
            }
        }
    }
    let silent: Vec<&str> = Problem::ALL
        .iter()
        .filter(|p| !alerted.contains(p))
        .map(|p| p.as_str())
        .collect();
    assert!(silent.is_empty(), "problems without an alert: {silent:?}");
}
