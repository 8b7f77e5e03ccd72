//! The IMAP reader of DMARC reports against a real Dovecot on loopback (`support::dovecot`):
//! plain, implicit TLS and STARTTLS; what it refuses; the window; what is fetched once; and a
//! mailbox left exactly as it was.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dkim_exporter::dmarc::ReadError;
use dkim_exporter::dmarc::imap::{self, Error, Mailbox, Message, Settings, Tls};

use crate::support::dovecot::{Dovecot, PASSWORD, USER};

const DAY: Duration = Duration::from_secs(86_400);

/// A message of about `size` bytes, told apart by `subject`.
fn message(subject: &str, size: usize) -> Vec<u8> {
    let head = format!(
        "From: reports@receiver.example\r\nTo: dmarc@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@receiver.example>\r\n\r\n"
    );
    let mut raw = head.into_bytes();
    while raw.len() + 2 < size {
        raw.extend_from_slice(b"x");
        if raw.len() % 70 == 0 {
            raw.extend_from_slice(b"\r\n");
        }
    }
    raw.extend_from_slice(b"\r\n");
    raw
}

fn ago(duration: Duration) -> SystemTime {
    SystemTime::now() - duration
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn settings(dovecot: &Dovecot, tls: Tls) -> Settings {
    let addr = match tls {
        Tls::Tls => dovecot.imaps,
        Tls::StartTls | Tls::None => dovecot.imap,
    };
    Settings {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls,
        ca_file: Some(dovecot.ca_file.clone()),
        username: USER.to_string(),
        password: PASSWORD.to_string(),
        folder: "INBOX".to_string(),
        timeout: Duration::from_secs(10),
    }
}

/// One read of the last three days, up to `max_bytes` a message: the UIDs in the window and
/// the messages handed over.
async fn read(
    settings: &Settings,
    mailbox: &mut Mailbox,
    max_bytes: u64,
) -> (Result<Vec<u32>, Error>, Vec<Message>) {
    let mut messages = Vec::new();
    let since = unix(ago(3 * DAY));
    let result = imap::read(settings, mailbox, since, max_bytes, |m| messages.push(m)).await;
    (result, messages)
}

fn bodies(messages: &[Message]) -> Vec<(u32, Vec<u8>)> {
    messages
        .iter()
        .map(|m| (m.uid, m.body.clone().expect("a fetched message")))
        .collect()
}

/// Two messages of the window, read with `tls`.
async fn reads_both_with(tls: Tls) {
    let (a, b) = (message("a", 300), message("b", 400));
    let dovecot = Dovecot::start(&[(&a, ago(DAY)), (&b, ago(Duration::from_secs(2 * 3600)))]);
    let (result, messages) = read(&settings(&dovecot, tls), &mut Mailbox::new(), 10_000).await;
    assert_eq!(result, Ok(vec![1, 2]), "{}", dovecot.log());
    assert_eq!(bodies(&messages), [(1, a), (2, b)]);
}

#[tokio::test]
async fn plain_on_loopback() {
    reads_both_with(Tls::None).await;
}

#[tokio::test]
async fn implicit_tls_with_the_test_ca() {
    reads_both_with(Tls::Tls).await;
}

#[tokio::test]
async fn starttls() {
    reads_both_with(Tls::StartTls).await;
}

#[tokio::test]
async fn tls_without_the_ca_is_refused() {
    let dovecot = Dovecot::start(&[]);
    for tls in [Tls::Tls, Tls::StartTls] {
        let mut settings = settings(&dovecot, tls);
        settings.ca_file = None;
        let error = read(&settings, &mut Mailbox::new(), 10_000)
            .await
            .0
            .unwrap_err();
        let prefix = format!("imap {}: TLS: ", settings.server());
        assert!(error.to_string().starts_with(&prefix), "{error}");
        assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    }
}

#[tokio::test]
async fn a_wrong_password_names_the_user_not_the_password() {
    let dovecot = Dovecot::start(&[(&message("a", 300), ago(DAY))]);
    let mut settings = settings(&dovecot, Tls::Tls);
    settings.password = "not-the-password-1234".to_string();
    let (result, messages) = read(&settings, &mut Mailbox::new(), 10_000).await;
    let error = result.unwrap_err();
    assert!(matches!(error, Error::LoginRefused { .. }), "{error}");
    let text = error.to_string();
    let prefix = format!("imap {}: login refused for user dmarc: ", settings.server());
    assert!(text.starts_with(&prefix), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
    assert!(messages.is_empty());
}

#[tokio::test]
async fn a_missing_folder() {
    let dovecot = Dovecot::start(&[]);
    let mut settings = settings(&dovecot, Tls::None);
    settings.folder = "DMARC Reports".to_string();
    let error = read(&settings, &mut Mailbox::new(), 10_000)
        .await
        .0
        .unwrap_err();
    assert!(matches!(error, Error::Folder { .. }), "{error}");
    let prefix = format!(
        "imap {}: folder \"DMARC Reports\": EXAMINE: ",
        settings.server()
    );
    assert!(error.to_string().starts_with(&prefix), "{error}");
}

#[tokio::test]
async fn since_leaves_out_messages_older_than_the_window() {
    let (old, new) = (message("old", 300), message("new", 300));
    let dovecot = Dovecot::start(&[(&old, ago(10 * DAY)), (&new, ago(DAY))]);
    let (result, messages) =
        read(&settings(&dovecot, Tls::None), &mut Mailbox::new(), 10_000).await;
    assert_eq!(result, Ok(vec![2]));
    assert_eq!(bodies(&messages), [(2, new)]);
}

#[tokio::test]
async fn each_message_is_fetched_once() {
    let (a, b, c) = (message("a", 300), message("b", 300), message("c", 300));
    let dovecot = Dovecot::start(&[(&a, ago(DAY)), (&b, ago(DAY))]);
    let settings = settings(&dovecot, Tls::StartTls);
    let mut mailbox = Mailbox::new();

    let (result, messages) = read(&settings, &mut mailbox, 10_000).await;
    assert_eq!(result, Ok(vec![1, 2]));
    assert_eq!(messages.len(), 2);

    let (result, messages) = read(&settings, &mut mailbox, 10_000).await;
    assert_eq!(result, Ok(vec![1, 2]), "the same window");
    assert!(messages.is_empty(), "nothing new: {messages:?}");

    dovecot.deliver(&c, ago(Duration::from_secs(60)));
    let (result, messages) = read(&settings, &mut mailbox, 10_000).await;
    assert_eq!(result, Ok(vec![1, 2, 3]));
    assert_eq!(bodies(&messages), [(3, c)], "only the new message");
    assert_eq!(mailbox.read_uids().collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test]
async fn reading_leaves_the_mailbox_as_it_was() {
    let messages = [message("a", 300), message("b", 300), message("big", 5000)];
    let dated: Vec<(&[u8], SystemTime)> = messages.iter().map(|m| (&m[..], ago(DAY))).collect();
    let dovecot = Dovecot::start(&dated);
    let before = dovecot.message_files();
    let settings = settings(&dovecot, Tls::Tls);
    let mut mailbox = Mailbox::new();
    for _ in 0..2 {
        let (result, _) = read(&settings, &mut mailbox, 1000).await;
        assert_eq!(result, Ok(vec![1, 2, 3]));
    }
    let after = dovecot.message_files();
    assert_eq!(before.len(), 3);
    assert_eq!(after, before, "no message moved, flagged or deleted");
    // And as the server sees it: no flag set, \Seen least of all.
    let line = dovecot.wait_log(&["imap(dmarc)", "Disconnected", "Logged out"]);
    assert!(line.contains("deleted=0 expunged=0 trashed=0"), "{line}");
}

#[tokio::test]
async fn a_message_over_max_bytes_is_reported_without_being_fetched() {
    let (small, big) = (message("small", 300), message("big", 5000));
    let dovecot = Dovecot::start(&[(&small, ago(DAY)), (&big, ago(DAY))]);
    let settings = settings(&dovecot, Tls::None);
    let (result, messages) = read(&settings, &mut Mailbox::new(), 1000).await;
    assert_eq!(result, Ok(vec![1, 2]));
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].body.as_deref(), Ok(&small[..]));
    assert_eq!(messages[1].uid, 2);
    assert_eq!(
        messages[1].body,
        Err(ReadError::TooLarge(format!(
            "a message of {} bytes, more than 1000",
            big.len()
        )))
    );
    // Dovecot counts the bodies it sent: the small message's alone.
    let line = dovecot.wait_log(&["imap(dmarc)", "Disconnected"]);
    let sent = format!("body_count=1 body_bytes={}", small.len());
    assert!(line.contains(&sent), "{line}");
}

#[tokio::test]
async fn plain_to_a_host_not_on_loopback_is_refused_without_connecting() {
    let settings = Settings {
        host: "192.0.2.1".to_string(),
        port: 143,
        tls: Tls::None,
        ca_file: None,
        username: USER.to_string(),
        password: PASSWORD.to_string(),
        folder: "INBOX".to_string(),
        timeout: Duration::from_secs(30),
    };
    let started = std::time::Instant::now();
    let error = read(&settings, &mut Mailbox::new(), 1000)
        .await
        .0
        .unwrap_err();
    assert_eq!(
        error,
        Error::PlainNotLoopback {
            server: "192.0.2.1:143".to_string()
        }
    );
    assert!(
        error
            .to_string()
            .contains("only allowed to a loopback address")
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "it did not try to connect"
    );
}

/// A benchmark, not a test: it prints figures and asserts nothing about time. How fast a mailbox
/// of report messages is read over implicit TLS, each message parsed as the exporter does, and
/// how fast a read that finds nothing new is. Run it with
/// `cargo test --release --test integration -- --ignored --nocapture dmarc_imap::read_rate`
/// (BENCHMARKS.md).
#[tokio::test]
#[ignore = "a benchmark: prints figures"]
#[allow(clippy::print_stdout)]
async fn read_rate() {
    use crate::support::dmarc::{Row, gzip, message as report_message, now, report_xml};
    use dkim_exporter::dmarc::{Limits, source};

    let messages: usize = std::env::var("DKIM_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let dovecot = Dovecot::start(&[]);
    let mut bytes = 0;
    for i in 0..messages {
        let xml = report_xml(
            "google.com",
            &format!("bench-{i}"),
            now() - 3600,
            &format!("d{}.example", i % 1000),
            &[
                Row {
                    count: 40,
                    from: "d.example",
                    dkim: "pass",
                    spf: "pass",
                    signatures: &[("d.example", "s1", "pass")],
                },
                Row {
                    count: 12,
                    from: "d.example",
                    dkim: "fail",
                    spf: "pass",
                    signatures: &[("d.example", "s2", "fail")],
                },
            ],
            false,
        );
        let raw = report_message(
            "",
            "noreply-dmarc-support@google.com",
            "r.xml.gz",
            "application/gzip",
            &gzip(xml.as_bytes()),
        );
        bytes += raw.len();
        dovecot.deliver(raw.as_bytes(), ago(DAY));
    }
    let settings = settings(&dovecot, Tls::Tls);
    let limits = Limits::default();
    let mut mailbox = Mailbox::new();
    let mut reports = 0;
    let started = std::time::Instant::now();
    let result = imap::read(&settings, &mut mailbox, unix(ago(3 * DAY)), 20 << 20, |m| {
        let outcome = source::read_item(&m.body.expect("fetched"), None, &limits);
        reports += outcome.reports.len();
    })
    .await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(result.map(|uids| uids.len()), Ok(messages));
    println!(
        "IMAP (implicit TLS, Dovecot on loopback): {messages} messages ({:.1} MB), {reports} reports read and parsed in {took:.2} s: {:.0} reports/s",
        bytes as f64 / 1e6,
        reports as f64 / took
    );
    let started = std::time::Instant::now();
    let mut again = 0;
    imap::read(
        &settings,
        &mut mailbox,
        unix(ago(3 * DAY)),
        20 << 20,
        |_| again += 1,
    )
    .await
    .expect("the second read");
    println!(
        "the next read, nothing new ({again} fetched): {:.3} s",
        started.elapsed().as_secs_f64()
    );
}
