//! A mailbox that receives DMARC aggregate reports, read over IMAP and never changed: the folder
//! is opened with EXAMINE (read only) and messages are fetched with `BODY.PEEK[]`, so nothing is
//! moved, flagged (no `\Seen`) or deleted, and the people who also read the mailbox see it as
//! it was.
//!
//! One [`read`] is one connection: connect (implicit TLS, STARTTLS, or plain to a loopback
//! address only), log in, EXAMINE, `UID SEARCH SINCE` the start of the window, fetch what was
//! not read before, LOGOUT. The caller keeps a [`Mailbox`] between reads, so a message is
//! fetched once while the folder's UIDVALIDITY stays the same.
//!
//! The protocol is async-imap's. What a server can make this side hold is bounded here: every
//! command's answer is metered ([`Meter`]), a literal announced larger than what is left is
//! refused before anything is allocated for it, and memory holds one message at a time.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_imap::imap_proto::{Capability, Response, Status};
use futures_util::TryStreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::ReadError;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// TLS from the first byte (IMAPS, port 993).
    Tls,
    /// Plain, then upgraded with STARTTLS before logging in (port 143); a server that does not
    /// offer STARTTLS is refused, never used in plain.
    StartTls,
    /// No TLS at all: only to a loopback address, where nothing crosses a network.
    None,
}

/// Where the mailbox is and how to log in.
#[derive(Clone)]
pub struct Settings {
    /// The server's name (checked against its certificate) or address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: Tls,
    /// A PEM file of trust roots added to the Mozilla roots, for a server with a private CA.
    pub ca_file: Option<PathBuf>,
    /// The user to log in as.
    pub username: String,
    /// The password, already read (from a file or the environment) by the caller.
    pub password: String,
    /// The folder the reports arrive in.
    pub folder: String,
    /// Bounds the connection (TCP and TLS), each command, and each message's fetch.
    pub timeout: Duration,
}

/// Never prints the password.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("folder", &self.folder)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// `host:port`, as errors name the server (`[::1]:143` for an IPv6 address).
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// What the caller keeps between reads of one mailbox: which messages were already read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailbox {
    /// The folder's UIDVALIDITY when `read` was filled: UIDs mean nothing under another.
    uid_validity: Option<u32>,
    /// The UIDs handed to the caller (or reported too large), still in the window.
    read: BTreeSet<u32>,
}

impl Mailbox {
    /// A mailbox of which nothing was read yet.
    pub fn new() -> Mailbox {
        Mailbox::default()
    }

    /// The UIDs already read, in order.
    pub fn read_uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.read.iter().copied()
    }

    /// Takes the folder's UIDVALIDITY: a different one forgets every UID read.
    fn validity(&mut self, uid_validity: Option<u32>) {
        if self.uid_validity != uid_validity {
            self.read.clear();
            self.uid_validity = uid_validity;
        }
    }
}

/// One message of the window, not read before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its UID in the folder.
    pub uid: u32,
    /// Its raw bytes (RFC 5322), or [`ReadError::TooLarge`] when it is over the size allowed,
    /// in which case it was not fetched.
    pub body: Result<Vec<u8>, ReadError>,
}

/// Why a mailbox could not be read; each says which server, and what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `tls: none` to a host that is not a loopback address: refused before connecting.
    #[error(
        "imap {server}: plain IMAP (no TLS) is only allowed to a loopback address \
         (127.0.0.0/8, ::1, localhost); use implicit TLS or STARTTLS"
    )]
    PlainNotLoopback {
        /// `host:port`.
        server: String,
    },
    /// The TCP connection failed.
    #[error("imap {server}: connect: {reason}")]
    Connect {
        /// `host:port`.
        server: String,
        /// What the system said.
        reason: String,
    },
    /// TLS failed: the CA file, the handshake, the certificate, or no STARTTLS offered.
    #[error("imap {server}: TLS: {reason}")]
    Tls {
        /// `host:port`.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The server refused the user name and password.
    #[error("imap {server}: login refused for user {user}: {reason}")]
    LoginRefused {
        /// `host:port`.
        server: String,
        /// The user name (never the password).
        user: String,
        /// What the server said.
        reason: String,
    },
    /// The folder could not be examined or searched (it does not exist, no right to read it).
    #[error("imap {server}: folder {folder:?}: {reason}")]
    Folder {
        /// `host:port`.
        server: String,
        /// The folder's name.
        folder: String,
        /// What the server said.
        reason: String,
    },
    /// A step took longer than [`Settings::timeout`].
    #[error("imap {server}: {step}: timed out after {after}")]
    TimedOut {
        /// `host:port`.
        server: String,
        /// What was being done.
        step: String,
        /// The timeout, as `30s` or `500ms`.
        after: String,
    },
    /// The server broke the protocol, closed the connection, sent more than allowed, or
    /// refused a command that should work.
    #[error("imap {server}: {step}: {reason}")]
    Protocol {
        /// `host:port`.
        server: String,
        /// What was being done.
        step: String,
        /// What went wrong, cut to a few hundred characters.
        reason: String,
    },
}

/// At most this many bytes of the answer to a command other than a message's fetch: a UID
/// SEARCH of a million messages is under 8 MB.
const ANSWER_BYTES: u64 = 16 * 1024 * 1024;

/// What a message's FETCH answer holds besides the message.
const FETCH_OVERHEAD: u64 = 64 * 1024;

/// UIDs per `UID FETCH … (RFC822.SIZE)`: keeps each command line short.
const SIZES_PER_COMMAND: usize = 500;

/// How much of what a server said goes into an error.
const REASON_CHARS: usize = 300;

/// Reads the folder of `settings` for the messages that arrived since `since_unix` (by their
/// internal date, to the day) and hands `each` every one not read before, at once, in UID
/// order: memory holds one message, not the mailbox. A message over `max_bytes` (its
/// RFC822.SIZE) is not fetched: it is handed as [`ReadError::TooLarge`].
///
/// Returns the UIDs now in the window, in order, so the caller can drop what it keeps for the
/// others, and updates `mailbox`: a changed UIDVALIDITY forgets every UID read before.
pub async fn read(
    settings: &Settings,
    mailbox: &mut Mailbox,
    since_unix: u64,
    max_bytes: u64,
    mut each: impl FnMut(Message),
) -> Result<Vec<u32>, Error> {
    let connection = Connection::new(settings);
    let mut session = connection.open().await?;
    let result = connection
        .read_folder(&mut session, mailbox, since_unix, max_bytes, &mut each)
        .await;
    // A session that still answers is closed politely; one that broke is just dropped.
    if matches!(result, Ok(_) | Err(Error::Folder { .. })) {
        let _ = connection
            .step(STEP_LOGOUT, ANSWER_BYTES, session.logout())
            .await;
    }
    result
}

const STEP_LOGOUT: &str = "logout";

type Session = async_imap::Session<Metered>;
type Client = async_imap::Client<Metered>;

/// One connection to the server, and what its errors name.
struct Connection<'a> {
    settings: &'a Settings,
    server: String,
    meter: Meter,
}

impl<'a> Connection<'a> {
    fn new(settings: &'a Settings) -> Connection<'a> {
        Connection {
            settings,
            server: settings.server(),
            meter: Meter::default(),
        }
    }

    /// Connects, protects the connection as `tls` says, and logs in.
    async fn open(&self) -> Result<Session, Error> {
        let settings = self.settings;
        if settings.tls == Tls::None && !is_loopback(&settings.host) {
            return Err(Error::PlainNotLoopback {
                server: self.server.clone(),
            });
        }
        // Read before connecting: a CA file that cannot be read is the operator's to fix.
        let tls = match settings.tls {
            Tls::None => None,
            Tls::Tls | Tls::StartTls => Some(self.tls_connector()?),
        };
        let tcp = self.connect().await?;
        let client = match (settings.tls, tls) {
            (Tls::Tls, Some(tls)) => {
                let client = self.client(self.handshake(&tls, tcp).await?);
                self.greeting(client).await?
            }
            (Tls::StartTls, Some(tls)) => {
                let client = self.greeting(self.client(Transport::Plain(tcp))).await?;
                let tcp = self.start_tls(client).await?;
                self.client(self.handshake(&tls, tcp).await?)
            }
            _ => self.greeting(self.client(Transport::Plain(tcp))).await?,
        };
        self.login(client).await
    }

    async fn connect(&self) -> Result<TcpStream, Error> {
        let (host, port) = (self.settings.host.as_str(), self.settings.port);
        let connect = TcpStream::connect((host, port));
        match tokio::time::timeout(self.settings.timeout, connect).await {
            Ok(Ok(tcp)) => Ok(tcp),
            Ok(Err(e)) => Err(Error::Connect {
                server: self.server.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(self.timed_out("connect")),
        }
    }

    fn tls_connector(&self) -> Result<tokio_rustls::TlsConnector, Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &self.settings.ca_file {
            let extra = read_ca_file(path).map_err(|reason| self.tls_error(reason))?;
            for cert in extra {
                roots
                    .add(cert)
                    .map_err(|e| self.tls_error(format!("ca_file {}: {e}", path.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.tls_error(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    async fn handshake(
        &self,
        tls: &tokio_rustls::TlsConnector,
        tcp: TcpStream,
    ) -> Result<Transport, Error> {
        let name = pki_types::ServerName::try_from(self.settings.host.clone())
            .map_err(|e| self.tls_error(format!("{:?}: {e}", self.settings.host)))?;
        match tokio::time::timeout(self.settings.timeout, tls.connect(name, tcp)).await {
            Ok(Ok(stream)) => Ok(Transport::Tls(Box::new(stream))),
            Ok(Err(e)) => Err(self.tls_error(e.to_string())),
            Err(_) => Err(self.timed_out("TLS handshake")),
        }
    }

    fn client(&self, transport: Transport) -> Client {
        async_imap::Client::new(Metered {
            inner: transport,
            meter: self.meter.clone(),
        })
    }

    /// Reads the server's greeting, which must be OK (not BYE, nor PREAUTH: logging in as
    /// someone else than configured is not what was asked).
    async fn greeting(&self, mut client: Client) -> Result<Client, Error> {
        let step = "greeting";
        let greeting = self.step(step, ANSWER_BYTES, async {
            client
                .read_response()
                .await
                .map_err(async_imap::error::Error::Io)
        });
        let refused = match greeting.await? {
            None => "the server closed the connection",
            Some(response) => match response.parsed() {
                Response::Data {
                    status: Status::Ok, ..
                } => return Ok(client),
                Response::Data {
                    status: Status::Bye,
                    ..
                } => "the server said BYE",
                Response::Data {
                    status: Status::PreAuth,
                    ..
                } => "the server logged in on its own (PREAUTH), as a user not configured",
                _ => "the server's greeting is not OK",
            },
        };
        Err(self.protocol(step, refused.to_string()))
    }

    /// Asks for STARTTLS, refused when the server does not offer it; returns the TCP
    /// connection to protect. Whatever the server sent after its OK is dropped with the
    /// client's buffer: nothing from before TLS is read as coming through it.
    async fn start_tls(&self, mut client: Client) -> Result<TcpStream, Error> {
        let (sender, answers) = async_channel::bounded(16);
        let capability = client.run_command_and_check_ok("CAPABILITY", Some(sender));
        self.step("CAPABILITY", ANSWER_BYTES, capability).await?;
        let mut offered = false;
        while let Ok(answer) = answers.try_recv() {
            if let async_imap::types::UnsolicitedResponse::Other(data) = answer
                && let Response::Capabilities(capabilities) = data.parsed()
            {
                offered |= capabilities.iter().any(
                    |c| matches!(c, Capability::Atom(a) if a.eq_ignore_ascii_case("STARTTLS")),
                );
            }
        }
        if !offered {
            return Err(self.tls_error(
                "the server does not offer STARTTLS; not logging in without TLS".to_string(),
            ));
        }
        let start = client.run_command_and_check_ok("STARTTLS", None);
        self.step("STARTTLS", ANSWER_BYTES, start).await?;
        match client.into_inner().inner {
            Transport::Plain(tcp) => Ok(tcp),
            Transport::Tls(_) => Err(self.tls_error("STARTTLS inside TLS".to_string())),
        }
    }

    async fn login(&self, client: Client) -> Result<Session, Error> {
        let settings = self.settings;
        self.meter.allow(ANSWER_BYTES);
        let login = client.login(&settings.username, &settings.password);
        let refused = |reason: String| Error::LoginRefused {
            server: self.server.clone(),
            user: settings.username.clone(),
            reason,
        };
        match tokio::time::timeout(settings.timeout, login).await {
            Ok(Ok(session)) => Ok(session),
            // The server's words, which never hold the password.
            Ok(Err((async_imap::error::Error::No(reason), _))) => Err(refused(cut(&reason))),
            // Names the offending character, which may be the password's.
            Ok(Err((async_imap::error::Error::Validate(_), _))) => Err(refused(
                "the user name or password holds a character IMAP cannot send (CR, LF)".to_string(),
            )),
            Ok(Err((e, _))) => Err(self.imap_error("login", e)),
            Err(_) => Err(self.timed_out("login")),
        }
    }

    /// EXAMINE, UID SEARCH, and the fetch of what was not read before.
    async fn read_folder(
        &self,
        session: &mut Session,
        mailbox: &mut Mailbox,
        since_unix: u64,
        max_bytes: u64,
        each: &mut impl FnMut(Message),
    ) -> Result<Vec<u32>, Error> {
        let folder = &self.settings.folder;
        let examined = self.folder_step("EXAMINE", session.examine(folder)).await?;
        mailbox.validity(examined.uid_validity);
        let query = format!("SINCE {}", imap_date(since_unix));
        let found = self
            .folder_step("UID SEARCH", session.uid_search(&query))
            .await?;
        let window: BTreeSet<u32> = found.into_iter().collect();
        mailbox.read.retain(|uid| window.contains(uid));
        let new: Vec<u32> = window.difference(&mailbox.read).copied().collect();
        let sizes = self.sizes(session, &new).await?;
        for uid in new {
            let body = match sizes.get(&uid) {
                Some(&size) if u64::from(size) > max_bytes => Err(ReadError::TooLarge(format!(
                    "a message of {size} bytes, more than {max_bytes}"
                ))),
                _ => match self.fetch(session, uid, max_bytes).await? {
                    // The server said less than it sent.
                    Some(body) if body.len() as u64 > max_bytes => Err(ReadError::TooLarge(
                        format!("a message of {} bytes, more than {max_bytes}", body.len()),
                    )),
                    Some(body) => Ok(body),
                    // Gone since the search (expunged by someone else).
                    None => continue,
                },
            };
            mailbox.read.insert(uid);
            each(Message { uid, body });
        }
        Ok(window.into_iter().collect())
    }

    /// The RFC822.SIZE of each of `uids`, a few hundred per command.
    async fn sizes(&self, session: &mut Session, uids: &[u32]) -> Result<HashMap<u32, u32>, Error> {
        let step = "UID FETCH (RFC822.SIZE)";
        let mut sizes = HashMap::with_capacity(uids.len());
        for chunk in uids.chunks(SIZES_PER_COMMAND) {
            let set = uid_set(chunk);
            let fetched = async {
                let mut stream = session.uid_fetch(&set, "(RFC822.SIZE)").await?;
                while let Some(fetch) = stream.try_next().await? {
                    if let (Some(uid), Some(size)) = (fetch.uid, fetch.size)
                        && chunk.binary_search(&uid).is_ok()
                    {
                        sizes.insert(uid, size);
                    }
                }
                Ok(())
            };
            self.step(step, ANSWER_BYTES, fetched).await?;
        }
        Ok(sizes)
    }

    /// One message, with BODY.PEEK[] (which leaves `\Seen` alone); `None` when the server
    /// has no such message any more.
    async fn fetch(
        &self,
        session: &mut Session,
        uid: u32,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, Error> {
        let fetched = async {
            let mut stream = session.uid_fetch(uid.to_string(), "BODY.PEEK[]").await?;
            let mut body = None;
            while let Some(fetch) = stream.try_next().await? {
                if fetch.uid == Some(uid)
                    && let Some(bytes) = fetch.body()
                {
                    body = Some(bytes.to_vec());
                }
            }
            Ok(body)
        };
        let budget = max_bytes.saturating_add(FETCH_OVERHEAD);
        self.step("UID FETCH BODY.PEEK[]", budget, fetched).await
    }

    /// Runs one command within the timeout, its answer within `budget` bytes.
    async fn step<T>(
        &self,
        step: &str,
        budget: u64,
        command: impl Future<Output = async_imap::error::Result<T>>,
    ) -> Result<T, Error> {
        self.run(step, budget, command)
            .await?
            .map_err(|e| self.imap_error(step, e))
    }

    /// A step about the folder: a NO or BAD from the server is about the folder (it does not
    /// exist, or is not this user's to read).
    async fn folder_step<T>(
        &self,
        step: &str,
        command: impl Future<Output = async_imap::error::Result<T>>,
    ) -> Result<T, Error> {
        use async_imap::error::Error::{Bad, No};
        match self.run(step, ANSWER_BYTES, command).await? {
            Ok(value) => Ok(value),
            Err(No(reason) | Bad(reason)) => Err(Error::Folder {
                server: self.server.clone(),
                folder: self.settings.folder.clone(),
                reason: cut(&format!("{step}: {reason}")),
            }),
            Err(e) => Err(self.imap_error(step, e)),
        }
    }

    /// Runs one command within the timeout, its answer within `budget` bytes; the outer error
    /// is the timeout.
    async fn run<T>(
        &self,
        step: &str,
        budget: u64,
        command: impl Future<Output = async_imap::error::Result<T>>,
    ) -> Result<async_imap::error::Result<T>, Error> {
        self.meter.allow(budget);
        tokio::time::timeout(self.settings.timeout, command)
            .await
            .map_err(|_| self.timed_out(step))
    }

    fn imap_error(&self, step: &str, e: async_imap::error::Error) -> Error {
        // Past the budget, async-imap only sees a failed read: say what happened.
        let reason = match self.meter.overrun() {
            Some(overrun) => overrun,
            None => e.to_string(),
        };
        self.protocol(step, reason)
    }

    fn protocol(&self, step: &str, reason: String) -> Error {
        Error::Protocol {
            server: self.server.clone(),
            step: step.to_string(),
            reason: cut(&reason),
        }
    }

    fn tls_error(&self, reason: String) -> Error {
        Error::Tls {
            server: self.server.clone(),
            reason: cut(&reason),
        }
    }

    fn timed_out(&self, step: &str) -> Error {
        Error::TimedOut {
            server: self.server.clone(),
            step: step.to_string(),
            after: human_duration(self.settings.timeout),
        }
    }
}

/// Whether `host` is a loopback address, or `localhost` (never resolved: a name that could
/// point anywhere is not loopback).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<pki_types::CertificateDer<'static>>, String> {
    use pki_types::pem::PemObject as _;
    let certs = pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("ca_file {} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// `uids` (sorted) as a UID set: `4,7,9`.
fn uid_set(uids: &[u32]) -> String {
    let mut set = String::new();
    for uid in uids {
        if !set.is_empty() {
            set.push(',');
        }
        set.push_str(&uid.to_string());
    }
    set
}

/// `text` cut to [`REASON_CHARS`] characters: a server's answer may be anything, of any size.
fn cut(text: &str) -> String {
    match text.char_indices().nth(REASON_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// `30s`, `1.5s` or `500ms`.
fn human_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration.as_secs() == 0 {
        format!("{}ms", duration.subsec_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

/// The day of `unix` seconds (UTC) as IMAP writes a date: `7-Dec-2026`.
pub fn imap_date(unix: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (year, month, day) = civil_from_days(unix / 86_400);
    format!("{day}-{}-{year}", MONTHS[(month - 1) as usize])
}

/// The (year, month 1–12, day 1–31) of `days` since 1970-01-01, in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The plain or TLS connection under the IMAP client.
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The transport, with what the server sends metered against the current command's budget.
#[derive(Debug)]
struct Metered {
    inner: Transport,
    meter: Meter,
}

impl AsyncRead for Metered {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        Poll::Ready(this.meter.take(&buf.filled()[before..]))
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// How many bytes the server may still send in answer to the current command, shared by the
/// transport (which counts) and the connection (which sets it before each command).
///
/// Counting alone is not enough: async-imap makes room for a whole literal (`{N}` then N bytes)
/// as soon as it reads its announcement, so a literal announced larger than what is left is
/// refused as the announcement arrives. Quoted strings cannot hold a line break, so `{N}` and a
/// line break are an announcement wherever they appear outside a literal.
#[derive(Debug, Clone, Default)]
struct Meter(Arc<Mutex<Budget>>);

#[derive(Debug, Default)]
struct Budget {
    /// Bytes the server may still send.
    left: u64,
    /// The current command's budget, for the error.
    allowed: u64,
    /// Where the reading of the stream is.
    scan: Scan,
    /// Why the stream was refused, once it was.
    overrun: Option<String>,
}

/// The reading of the stream, one byte at a time, for literal announcements.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Anywhere outside an announcement or a literal.
    #[default]
    Text,
    /// After `{` and these digits.
    Digits(u64),
    /// After `{N}`.
    Closed(u64),
    /// After `{N}\r`.
    Return(u64),
    /// Inside a literal, with this many bytes to go.
    Literal(u64),
}

impl Meter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Budget> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new command: the server may send `bytes` in answer.
    fn allow(&self, bytes: u64) {
        let mut budget = self.lock();
        budget.left = bytes;
        budget.allowed = bytes;
    }

    /// Why the answer was refused, when it was.
    fn overrun(&self) -> Option<String> {
        self.lock().overrun.clone()
    }

    /// Counts `bytes` just read; an error once past the budget, for good.
    fn take(&self, bytes: &[u8]) -> io::Result<()> {
        let mut budget = self.lock();
        if let Some(overrun) = &budget.overrun {
            return Err(io::Error::other(overrun.clone()));
        }
        let refused = budget.take(bytes);
        if let Some(reason) = &refused {
            budget.overrun = Some(reason.clone());
        }
        refused.map_or(Ok(()), |reason| Err(io::Error::other(reason)))
    }
}

impl Budget {
    fn take(&mut self, bytes: &[u8]) -> Option<String> {
        let n = bytes.len() as u64;
        if n > self.left {
            return Some(format!(
                "the server sent more than {} bytes in answer to one command",
                self.allowed
            ));
        }
        self.left -= n;
        let mut rest = bytes;
        while let Some((&byte, tail)) = rest.split_first() {
            if let Scan::Literal(to_go) = self.scan {
                // Skip the literal's bytes at once, without looking at them.
                let skipped = to_go.min(rest.len() as u64);
                self.scan = match to_go - skipped {
                    0 => Scan::Text,
                    more => Scan::Literal(more),
                };
                rest = &rest[skipped as usize..];
                continue;
            }
            self.scan = next_scan(self.scan, byte);
            // What is left counts the rest of this read already.
            let left = self.left.saturating_add(tail.len() as u64);
            if let Scan::Literal(size) = self.scan
                && size > left
            {
                return Some(format!(
                    "the server announced a literal of {size} bytes, more than the {left} left \
                     of {} allowed in answer to one command",
                    self.allowed
                ));
            }
            rest = tail;
        }
        None
    }
}

fn next_scan(scan: Scan, byte: u8) -> Scan {
    match (scan, byte) {
        (Scan::Digits(n), b'0'..=b'9') => match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(byte - b'0')))
        {
            Some(n) => Scan::Digits(n),
            None => Scan::Literal(u64::MAX),
        },
        (Scan::Digits(n), b'}') => Scan::Closed(n),
        (Scan::Closed(n), b'\r') => Scan::Return(n),
        (Scan::Return(0), b'\n') => Scan::Text,
        (Scan::Return(n), b'\n') => Scan::Literal(n),
        (_, b'{') => Scan::Digits(0),
        _ => Scan::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        // 2000 is a leap year (divisible by 400), 2100 is not.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(20_453), (2025, 12, 31));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn imap_dates() {
        assert_eq!(imap_date(0), "1-Jan-1970");
        assert_eq!(imap_date(86_399), "1-Jan-1970");
        // 2024-02-29T23:59:59Z
        assert_eq!(imap_date(1_709_251_199), "29-Feb-2024");
        // 2026-12-07T06:22:34Z
        assert_eq!(imap_date(1_796_624_554), "7-Dec-2026");
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "localhost",
            "LocalHost",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "imap.example.com",
            "localhost.example.com",
            "::2",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn the_meter_counts_and_refuses_past_the_budget() {
        let meter = Meter::default();
        meter.allow(10);
        assert!(meter.take(b"* OK\r\n").is_ok());
        let refused = meter.take(b"* OK\r\n").unwrap_err();
        assert!(
            refused.to_string().contains("more than 10 bytes"),
            "{refused}"
        );
        assert!(meter.take(b"").is_err(), "refused for good");
    }

    #[test]
    fn the_meter_refuses_a_literal_announced_past_the_budget() {
        let meter = Meter::default();
        meter.allow(100);
        let refused = meter.take(b"* 1 FETCH (BODY[] {1000}\r\n").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("announced a literal of 1000 bytes"),
            "{refused}"
        );
        assert!(meter.overrun().is_some());

        let meter = Meter::default();
        meter.allow(100);
        let huge = b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n";
        assert!(meter.take(huge).is_err());
    }

    #[test]
    fn the_meter_skips_literals_and_reads_announcements_split_across_reads() {
        let meter = Meter::default();
        meter.allow(1000);
        // A literal holding something that looks like an announcement is not one.
        assert!(meter.take(b"* 1 FETCH (BODY[] {10}\r\n{900}\r\n").is_ok());
        assert!(meter.take(b"xx)\r\n").is_ok());
        assert!(meter.take(b"* 2 FETCH (BODY[] {99").is_ok());
        assert!(meter.take(b"0}\r").is_ok());
        assert!(meter.take(b"\n").is_err());
    }

    #[test]
    fn reasons_are_cut() {
        let long = "é".repeat(1000);
        let cut = cut(&long);
        assert_eq!(cut.chars().count(), REASON_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(super::cut("short"), "short");
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(Duration::from_secs(30)), "30s");
        assert_eq!(human_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[4, 7, 9]), "4,7,9");
    }

    fn settings(host: &str, port: u16, tls: Tls) -> Settings {
        Settings {
            host: host.into(),
            port,
            tls,
            ca_file: None,
            username: "dmarc".into(),
            password: "hunter2".into(),
            folder: "INBOX".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let settings = settings("imap.example.com", 993, Tls::Tls);
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    /// A fake IMAP server on loopback for what Dovecot will not do: it sends `greeting`, then
    /// answers each command line with `answer(command)` (`{tag}` replaced by its tag), and
    /// keeps the command lines it was sent.
    async fn fake(
        greeting: &'static [u8],
        answer: fn(&str) -> String,
    ) -> (u16, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let seen = commands.clone();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (read, mut write) = tcp.into_split();
            write.write_all(greeting).await.unwrap();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
                seen.lock().unwrap().push(command.to_string());
                let reply = answer(command).replace("{tag}", tag);
                if write.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        (port, commands)
    }

    /// A mailbox of one message, UID 7, of `BODY`.
    fn one_message(command: &str) -> String {
        let word = command.split(' ').next().unwrap_or_default();
        match (word, command) {
            ("LOGIN", _) => "{tag} OK logged in\r\n".into(),
            ("EXAMINE", _) => "* 1 EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n\
                              {tag} OK [READ-ONLY] examined\r\n"
                .into(),
            (_, "UID SEARCH SINCE 1-Jan-1970") => "* SEARCH 7\r\n{tag} OK searched\r\n".into(),
            (_, "UID FETCH 7 (RFC822.SIZE)") => {
                "* 1 FETCH (UID 7 RFC822.SIZE 4)\r\n{tag} OK fetched\r\n".into()
            }
            (_, "UID FETCH 7 BODY.PEEK[]") => {
                "* 1 FETCH (UID 7 BODY[] {4}\r\nBODY)\r\n{tag} OK fetched\r\n".into()
            }
            ("LOGOUT", _) => "* BYE bye\r\n{tag} OK logged out\r\n".into(),
            _ => "{tag} BAD not expected here\r\n".into(),
        }
    }

    async fn read_all(settings: &Settings) -> (Result<Vec<u32>, Error>, Vec<Message>) {
        let mut messages = Vec::new();
        let mut mailbox = Mailbox::new();
        let result = read(settings, &mut mailbox, 0, 1000, |m| messages.push(m)).await;
        (result, messages)
    }

    #[tokio::test]
    async fn the_commands_change_nothing_and_end_with_logout() {
        let (port, commands) = fake(b"* OK ready\r\n", one_message).await;
        let (result, messages) = read_all(&settings("127.0.0.1", port, Tls::None)).await;
        assert_eq!(result, Ok(vec![7]));
        assert_eq!(
            messages,
            [Message {
                uid: 7,
                body: Ok(b"BODY".to_vec())
            }]
        );
        let commands = commands.lock().unwrap().clone();
        assert_eq!(
            commands,
            [
                "LOGIN \"dmarc\" \"hunter2\"",
                "EXAMINE \"INBOX\"",
                "UID SEARCH SINCE 1-Jan-1970",
                "UID FETCH 7 (RFC822.SIZE)",
                "UID FETCH 7 BODY.PEEK[]",
                "LOGOUT"
            ]
        );
    }

    #[tokio::test]
    async fn starttls_not_offered_is_refused_before_logging_in() {
        let (port, commands) = fake(b"* OK ready\r\n", |command| match command {
            "CAPABILITY" => "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n".into(),
            _ => "{tag} OK whatever\r\n".into(),
        })
        .await;
        let (result, _) = read_all(&settings("127.0.0.1", port, Tls::StartTls)).await;
        let error = result.unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "imap 127.0.0.1:{port}: TLS: the server does not offer STARTTLS; not logging in \
                 without TLS"
            )
        );
        assert_eq!(*commands.lock().unwrap(), ["CAPABILITY"]);
    }

    #[tokio::test]
    async fn garbage_is_an_error() {
        let (port, _) = fake(b"\x00\xff{}garbage\r\n\r\n", one_message).await;
        let (result, _) = read_all(&settings("127.0.0.1", port, Tls::None)).await;
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Protocol { .. }), "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("imap 127.0.0.1:{port}: greeting: ")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_literal_larger_than_allowed_is_refused_as_announced() {
        let (port, _) = fake(b"* OK ready\r\n", |command| match command {
            "UID FETCH 7 BODY.PEEK[]" => "* 1 FETCH (UID 7 BODY[] {400000000}\r\n".into(),
            other => one_message(other),
        })
        .await;
        let (result, messages) = read_all(&settings("127.0.0.1", port, Tls::None)).await;
        let error = result.unwrap_err().to_string();
        assert!(
            error.contains("UID FETCH BODY.PEEK[]: the server announced a literal of 400000000"),
            "{error}"
        );
        assert!(messages.is_empty());
    }

    #[tokio::test]
    async fn silence_times_out() {
        let (port, _) = fake(b"", one_message).await;
        let mut settings = settings("127.0.0.1", port, Tls::None);
        settings.timeout = Duration::from_millis(200);
        let (result, _) = read_all(&settings).await;
        assert_eq!(
            result.unwrap_err().to_string(),
            format!("imap 127.0.0.1:{port}: greeting: timed out after 200ms")
        );
    }
}
