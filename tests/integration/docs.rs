//! The documents that describe the problems say what the code does: the tables of
//! docs/problems.md are the problem tables, and every problem (SES's too) has an alert of its
//! severity.

use crate::support::repo_file as read;

use dkim_exporter::problem::{self, Severity};
use dkim_exporter::ses;

/// The page of the documentation that holds the problem tables.
const PROBLEMS_PAGE: &str = "docs/problems.md";

/// The first Markdown table after `heading` in the problems page that starts with
/// `| problem |`.
fn problem_table(heading: &str) -> String {
    let page = read(PROBLEMS_PAGE);
    let section = page
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("{PROBLEMS_PAGE} has a section {heading:?}"))
        .1;
    let start = section
        .find("| problem |")
        .expect("the section has a problem table");
    section[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_troubleshooting_table_is_the_problem_table() {
    let want = problem::markdown_table();
    assert!(
        problem_table("## Troubleshooting") == want,
        "{PROBLEMS_PAGE}'s troubleshooting table differs from src/problem.rs; it should read:\n\n{want}"
    );
}

#[test]
fn the_ses_table_is_the_ses_problem_table() {
    let want = ses::problem::markdown_table();
    assert!(
        problem_table("### SES problems") == want,
        "{PROBLEMS_PAGE}'s SES problem table differs from src/ses/problem.rs; it should read:\n\n{want}"
    );
}

/// The problems of `metric` that an alert rule pages on, checking each rule's severity
/// against `table` (name, severity).
fn alerted(metric: &str, table: &[(&str, Severity)]) -> Vec<String> {
    let rules: yaml_serde::Value =
        yaml_serde::from_str(&read("deploy/prometheus/dkim-alerts.yml")).unwrap();
    let mut alerted = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap_or_default();
            for (name, severity) in table {
                if expr.contains(&format!("{metric}{{problem=\"{name}\"}}")) {
                    assert_eq!(
                        rule["labels"]["severity"].as_str(),
                        Some(severity.as_str()),
                        "{:?}",
                        rule["alert"]
                    );
                    alerted.push(name.to_string());
                }
            }
        }
    }
    table
        .iter()
        .map(|(name, _)| name.to_string())
        .filter(|name| !alerted.contains(name))
        .collect()
}

#[test]
fn every_problem_has_an_alert_of_its_severity() {
    let table: Vec<(&str, Severity)> = problem::TABLE
        .iter()
        .map(|e| (e.name, e.severity))
        .collect();
    let silent = alerted("dkim_record_problem", &table);
    assert!(silent.is_empty(), "problems without an alert: {silent:?}");
}

#[test]
fn every_ses_problem_has_an_alert_of_its_severity() {
    let table: Vec<(&str, Severity)> = ses::problem::TABLE
        .iter()
        .map(|e| (e.name, e.severity))
        .collect();
    let silent = alerted("dkim_ses_identity_problem", &table);
    assert!(
        silent.is_empty(),
        "SES problems without an alert: {silent:?}"
    );
}
