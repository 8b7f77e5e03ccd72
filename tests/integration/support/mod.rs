//! Test support: a DNS server per scenario, the real daemon on port 0, and a scrape parser.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod dmarc;
pub mod dns;
pub mod dovecot;
pub mod moto;
pub mod page;
pub mod s3;
pub mod ses;
pub mod tls;
pub mod webdriver;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The real daemon, started on a loopback port.
pub struct Daemon {
    /// Where it serves HTTP.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), dkim_exporter::Error>>>,
}

impl Daemon {
    /// Starts the daemon on `yaml` with default options.
    pub async fn start(yaml: &str) -> Daemon {
        Daemon::start_with(yaml, dkim_exporter::Options::default()).await
    }

    /// Starts the daemon on `yaml` with `options`.
    pub async fn start_with(yaml: &str, options: dkim_exporter::Options) -> Daemon {
        let config = dkim_exporter::config::parse(yaml, "test.yaml").expect("test config is valid");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(dkim_exporter::run(vec![listener], config, options, async {
            let _ = stopped.await;
        }));
        Daemon {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// GETs `path`; returns the status code and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// Scrapes `/metrics` and parses it.
    pub async fn scrape(&self) -> Scrape {
        scrape(self.addr).await
    }

    /// Waits until `rounds` rounds have completed, failing after a generous bound.
    pub async fn wait_rounds(&self, rounds: f64) -> Scrape {
        self.wait_for(&format!("{rounds} rounds"), |s| {
            s.value("dkim_check_rounds_total", &[]) >= Some(rounds)
        })
        .await
    }

    /// Scrapes until `done` holds, failing after 60 seconds with `what` and the last scrape.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
        wait_for(self.addr, what, done).await
    }

    /// Stops the daemon and waits for it to return.
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(20), self.task.take().unwrap())
            .await
            .expect("daemon stops within 20s")
            .expect("daemon task does not panic");
        result.expect("daemon returns Ok");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Scrapes the `/metrics` of the exporter at `addr` and parses it.
pub async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    Scrape::parse(&body)
}

/// Scrapes the exporter at `addr` until `done` holds, failing after 60 seconds with `what` and
/// the last scrape.
pub async fn wait_for(addr: SocketAddr, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let scrape = scrape(addr).await;
        if done(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within 60s: {what}\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Environment changes for a child process: variables to remove, then variables to set.
pub type EnvChanges = (Vec<String>, Vec<(String, String)>);

/// Starts the binary with `args` and `env` applied to this process's environment; returns it
/// with a channel of its stderr lines.
pub fn spawn_binary(
    args: &[&str],
    env: EnvChanges,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_dkim_exporter"));
    for key in env.0 {
        command.env_remove(key);
    }
    let mut child = command
        .envs(env.1)
        .args(args)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Runs `dkim_exporter check` with `args` and `env` applied; returns its exit code, stdout and
/// stderr.
pub async fn run_check(args: &[&str], env: EnvChanges) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dkim_exporter"));
    for key in env.0 {
        command.env_remove(key);
    }
    let output = command
        .envs(env.1)
        .arg("check")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.code().expect("exited"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Waits for a log line containing `needle`, for 60 seconds at most. It blocks its thread, so
/// tests that serve DNS or HTTP from their own runtime while waiting run on several threads.
pub fn wait_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {needle:?} within 60s"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// The first log line containing each of `needles`, in the order of `needles`, whatever order
/// they come in, within 60 s in all.
pub fn wait_lines(lines: &std::sync::mpsc::Receiver<String>, needles: &[&str]) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut found: Vec<Option<String>> = vec![None; needles.len()];
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| {
            let missing: Vec<&str> = needles
                .iter()
                .zip(&found)
                .filter(|(_, f)| f.is_none())
                .map(|(n, _)| *n)
                .collect();
            panic!("no log line with {missing:?} within 60s")
        });
        if let Some(i) =
            (0..needles.len()).find(|&i| found[i].is_none() && line.contains(needles[i]))
        {
            found[i] = Some(line);
        }
    }
    found.into_iter().flatten().collect()
}

/// The address the binary logs it listens on (`--web.listen-address=127.0.0.1:0`).
pub fn listening_address(lines: &std::sync::mpsc::Receiver<String>) -> SocketAddr {
    wait_line(lines, "msg=listening")
        .split_whitespace()
        .find_map(|field| field.strip_prefix("address="))
        .expect("the listening line has an address")
        .parse()
        .unwrap()
}

/// A minimal HTTP/1.1 GET, so the tests do not depend on an HTTP client library.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path).await
}

/// A minimal HTTP/1.1 request with no body.
pub async fn http_request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    http_request_with(addr, method, path, &[]).await
}

/// A minimal HTTP/1.1 request with extra headers and no body. A chunked body is put together,
/// and must be complete: a body that breaks off is a failed scrape.
pub async fn http_request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let response = http_exchange(addr, method, path, headers).await;
    // A response to HEAD has no body, whatever its headers say.
    let body = if response.chunked() && method != "HEAD" {
        let chunks = dechunk(&response.body).expect("a complete chunked body");
        chunks.concat()
    } else {
        response.body
    };
    let body = String::from_utf8(body).expect("a UTF-8 body");
    (response.status, body)
}

/// A response as it came over the connection.
pub struct RawResponse {
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The body as sent, chunk framing included.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// Whether the body was sent in chunks (`Transfer-Encoding: chunked`).
    pub fn chunked(&self) -> bool {
        self.head.lines().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("transfer-encoding") && value.trim() == "chunked"
            })
        })
    }
}

/// Sends one request with `Connection: close` and reads the response to the end.
pub async fn http_exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        // A connection reset after part of the body is a broken response, not a test error.
        let _ = stream.read_to_end(&mut response).await;
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("HTTP response within 10s");
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head and body");
    let head = String::from_utf8(response[..end].to_vec()).expect("a UTF-8 head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    RawResponse {
        status,
        head,
        body: response[end + 4..].to_vec(),
    }
}

/// The chunks of a chunked body; an error when it is malformed or breaks off before the last
/// (empty) chunk.
pub fn dechunk(mut body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut chunks = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| format!("cut off after {} chunks", chunks.len()))?;
        let line = std::str::from_utf8(&body[..line_end]).map_err(|e| e.to_string())?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return if body.starts_with(b"\r\n") {
                Ok(chunks)
            } else {
                Err("no end after the last chunk".to_string())
            };
        }
        if body.len() < size + 2 {
            return Err(format!("chunk {} cut off", chunks.len() + 1));
        }
        if &body[size..size + 2] != b"\r\n" {
            return Err(format!("chunk {} does not end with CRLF", chunks.len() + 1));
        }
        chunks.push(body[..size].to_vec());
        body = &body[size + 2..];
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape.
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// Parses the Prometheus text format (the subset the exporter writes).
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let value: f64 = value.parse().expect("numeric value");
            let (name, labels) = match series.split_once('{') {
                None => (series.to_string(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    (name.to_string(), parse_labels(body))
                }
            };
            samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        Scrape {
            text: text.to_string(),
            samples,
        }
    }

    /// Samples of `name` whose labels include `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample of `name` with `labels`; `None` when there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.find(name, labels);
        assert!(
            found.len() <= 1,
            "several samples of {name} match {labels:?}: {found:?}"
        );
        found.first().map(|s| s.value)
    }

    /// The problems of the record of `selector` under `domain`, sorted; each series must be 1.
    pub fn problems(&self, domain: &str, selector: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .find(
                dkim_exporter::metrics::RECORD_PROBLEM.name,
                &[("domain", domain), ("selector", selector)],
            )
            .iter()
            .map(|sample| {
                assert_eq!(sample.value, 1.0, "{sample:?}");
                sample.labels["problem"].clone()
            })
            .collect();
        found.sort();
        found
    }
}

fn parse_labels(body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

impl Scrape {
    /// Asserts that `resolver` never gave a definitive answer for the record: no present,
    /// correct or info series, lookup success 0, resolver down, and at least `times` errors
    /// with `reason`.
    pub fn assert_never_answered(
        &self,
        record: (&str, &str),
        resolver: &str,
        reason: &str,
        times: f64,
    ) {
        use dkim_exporter::metrics::{
            LOOKUP_ERRORS_TOTAL, RECORD_CORRECT, RECORD_INFO, RECORD_LOOKUP_SUCCESS,
            RECORD_PRESENT, RESOLVER_UP,
        };
        let at = [
            ("domain", record.0),
            ("selector", record.1),
            ("resolver", resolver),
        ];
        assert_eq!(self.value(RECORD_PRESENT.name, &at), None, "{resolver}");
        assert_eq!(self.value(RECORD_CORRECT.name, &at), None, "{resolver}");
        assert!(self.find(RECORD_INFO.name, &at).is_empty(), "{resolver}");
        assert_eq!(
            self.value(RECORD_LOOKUP_SUCCESS.name, &at),
            Some(0.0),
            "{resolver}"
        );
        assert_eq!(
            self.value(RESOLVER_UP.name, &[("resolver", resolver)]),
            Some(0.0),
            "{resolver}"
        );
        let errors = self.value(
            LOOKUP_ERRORS_TOTAL.name,
            &[("resolver", resolver), ("reason", reason)],
        );
        assert!(
            errors >= Some(times),
            "{resolver}: {reason} = {errors:?}\n{}",
            self.text
        );
    }
}

/// A scratch directory for one test, removed when dropped (also when the test fails).
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// A new directory named for `name`, this process and a count: tests of one binary run in
    /// one process, and two may pick the same name.
    pub fn new(name: &str) -> TempDir {
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("dkim-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Writes `text` to `file` in the directory and returns its path.
    pub fn write(&self, file: &str, text: &str) -> std::path::PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a real scrape under `$DKIM_EXPORTER_SCRAPE_DIR`, when set, for CI to lint.
pub fn keep_scrape(name: &str, text: &str) {
    if let Ok(dir) = std::env::var("DKIM_EXPORTER_SCRAPE_DIR") {
        std::fs::write(std::path::Path::new(&dir).join(name), text).unwrap();
    }
}

/// A resolver entry for a test config.
pub fn resolver(name: &str, addr: SocketAddr) -> String {
    format!("  - name: {name}\n    address: {addr}\n    max_queries_per_second: 0\n")
}

/// A resolver entry that uses TCP.
pub fn tcp_resolver(name: &str, addr: SocketAddr) -> String {
    format!(
        "  - name: {name}\n    address: {addr}\n    protocol: tcp\n    max_queries_per_second: 0\n"
    )
}

/// Base64 SubjectPublicKeyInfo of a freshly generated RSA key, as publishers put in `p=`.
pub fn rsa_public_key_base64(bits: usize) -> String {
    use base64::Engine as _;
    use rsa::pkcs8::EncodePublicKey as _;
    // Keys under 1024 bits are weak on purpose in some tests; the unchecked constructor makes them.
    let key = rsa::PrivateKey::new_unchecked(&mut getrandom::SysRng, bits).unwrap();
    let der = key.to_public_key().to_public_key_der().unwrap();
    base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
}

/// A zone with one record per problem, each named for it.
pub fn broken_zone(strong: &str, weak: &str) -> dns::Zone {
    let ses = |s: &str| {
        (
            format!("{s}._domainkey.example.com."),
            format!("{s}.dkim.amazonses.com."),
        )
    };
    let mut zone = dns::Zone::new();
    for selector in ["good", "notprop", "weak", "revoked", "nokey"] {
        let (name, target) = ses(selector);
        zone = zone.cname(&name, &target);
    }
    zone.txt("good.dkim.amazonses.com.", &["v=DKIM1; k=rsa; p=", strong])
        .txt(
            "notprop.dkim.amazonses.com.",
            &["v=DKIM1; k=rsa; p=", strong],
        )
        .txt("weak.dkim.amazonses.com.", &["v=DKIM1; k=rsa; p=", weak])
        .txt("revoked.dkim.amazonses.com.", &["v=DKIM1; k=rsa; p="])
        .txt(
            "nokey.dkim.amazonses.com.",
            &["some-site-verification=1234"],
        )
        .cname("typo._domainkey.example.com.", "typo.dkim.amazonses.co.")
        .cname(
            "wrong._domainkey.example.com.",
            "s1.domainkey.u1234.wl.sendgrid.net.",
        )
        .cname(
            "region._domainkey.example.com.",
            "region.dkim.eu-south-1.amazonses.com.",
        )
        .a("arec._domainkey.example.com.", [52, 94, 236, 248])
        .aaaa("arec._domainkey.example.com.", "2600:1f18::1")
        .txt(
            "txtkey._domainkey.example.com.",
            &["v=DKIM1; k=rsa; p=", strong],
        )
        .cname(
            "doubled._domainkey.example.com.example.com.",
            "doubled.dkim.amazonses.com.",
        )
        .cname(
            "nounder.domainkey.example.com.",
            "nounder.dkim.amazonses.com.",
        )
        .txt("badtxt._domainkey.example.com.", &["v=DKIM1; p=!!!"])
}

pub const SELECTORS: &str = "[good, missing, notprop, typo, wrong, region, arec, txtkey, doubled, nounder, nokey, revoked, weak]";

/// A file of the repository, by its path from the top, as text.
pub fn repo_file(path: &str) -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
