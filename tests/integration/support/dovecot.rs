//! A real Dovecot (2.3, as Debian ships it) for one test: its own config, user, Maildir, logs
//! and sockets under a temp dir, listening on loopback ports with plain IMAP (which offers
//! STARTTLS) and implicit TLS, certificates from a test CA. It touches nothing outside its
//! directory, and is stopped and removed when dropped.
//!
//! Run as root, its processes run as Debian's `dovecot` and `dovenull` users and the mail
//! as `nobody` (Dovecot refuses mail access as UID 0); run as anyone else, all of it runs as
//! that user.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::TempDir;
use super::tls::TestCa;

/// The mail user's name and password.
pub const USER: &str = "dmarc";
pub const PASSWORD: &str = "correct horse battery staple";

/// A running Dovecot.
pub struct Dovecot {
    /// Plain IMAP, which offers STARTTLS.
    pub imap: SocketAddr,
    /// Implicit TLS.
    pub imaps: SocketAddr,
    /// The CA that signed its certificate (for `127.0.0.1` and `localhost`).
    pub ca_file: PathBuf,
    child: Child,
    /// Who owns the mail, as `uid:gid`.
    owner: (u32, u32),
    dir: TempDir,
}

/// The messages written so far, for unique Maildir names.
static WRITTEN: AtomicU32 = AtomicU32::new(0);

impl Dovecot {
    /// Starts Dovecot with `messages` (raw RFC 5322 bytes and their internal date) in INBOX.
    pub fn start(messages: &[(&[u8], SystemTime)]) -> Dovecot {
        let binary = which_dovecot();
        let dir = TempDir::new("dovecot");
        let owner = mail_owner(dir.path());
        let ca = TestCa::new();
        let ca_file = ca.write(dir.path());
        let (cert, key) = ca.leaf_pem(&["127.0.0.1", "localhost"]);
        dir.write("cert.pem", &cert);
        dir.write("key.pem", &key);
        let home = dir.path().join("home");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(home.join("Maildir").join(sub)).unwrap();
        }
        let (imap, imaps) = (free_port(), free_port());
        dir.write(
            "passwd",
            &format!(
                "{USER}:{{PLAIN}}{PASSWORD}:{}:{}::{}::\n",
                owner.0,
                owner.1,
                home.display()
            ),
        );
        let config = dir.write("dovecot.conf", &config(dir.path(), imap, imaps));
        let child = Command::new(binary)
            .args(["-F", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot starts");
        let mut dovecot = Dovecot {
            imap,
            imaps,
            ca_file,
            child,
            owner,
            dir,
        };
        for (raw, date) in messages {
            dovecot.deliver(raw, *date);
        }
        dovecot.chown(&home);
        dovecot.wait_ready();
        dovecot
    }

    /// Delivers `raw` to INBOX as a new message received at `date` (Dovecot takes a Maildir
    /// file's mtime as its INTERNALDATE): written in `tmp/`, dated, then moved to `new/`.
    pub fn deliver(&self, raw: &[u8], date: SystemTime) {
        let maildir = self.maildir();
        let n = WRITTEN.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}.M{n}P{}.dkim-test", n + 1_000_000, std::process::id());
        let tmp = maildir.join("tmp").join(&name);
        std::fs::write(&tmp, raw).unwrap();
        let file = std::fs::File::options().write(true).open(&tmp).unwrap();
        file.set_modified(date).unwrap();
        drop(file);
        self.chown(&tmp);
        std::fs::rename(&tmp, maildir.join("new").join(&name)).unwrap();
    }

    /// The INBOX Maildir.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("home").join("Maildir")
    }

    /// The message files of INBOX (`new/` and `cur/`, with their flags in the name), sorted.
    pub fn message_files(&self) -> Vec<String> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(self.maildir().join(sub)).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                files.push(format!("{sub}/{name}"));
            }
        }
        files.sort();
        files
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Waits (10 s at most) for a log line holding every one of `needles`; returns it.
    pub fn wait_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no Dovecot log line with {needles:?} within 10s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn chown(&self, path: &Path) {
        if is_root() {
            let owner = format!("{}:{}", self.owner.0, self.owner.1);
            let status = Command::new("chown")
                .args(["-R", &owner])
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success(), "chown -R {owner} {}", path.display());
        }
    }

    /// Waits (10 s at most) for the plain listener to greet.
    fn wait_ready(&mut self) {
        use std::io::Read as _;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("dovecot exited ({status}) at start:\n{}", self.log());
            }
            if let Ok(mut tcp) =
                std::net::TcpStream::connect_timeout(&self.imap, Duration::from_secs(1))
            {
                tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut greeting = [0; 4];
                if tcp.read_exact(&mut greeting).is_ok() && &greeting == b"* OK" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "dovecot did not greet on {} within 10s:\n{}",
                self.imap,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dovecot {
    /// Asks the master to stop, which stops its processes too; kills it after 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The dovecot binary; fails the test, never skips it, when it is not installed.
fn which_dovecot() -> PathBuf {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("the IMAP tests need Dovecot: apt-get install dovecot-imapd")
}

/// The config: Dovecot 2.3 syntax; every path under `dir`, log to a file there (no syslog).
fn config(dir: &Path, imap: SocketAddr, imaps: SocketAddr) -> String {
    let (internal, group, login) = if is_root() {
        (
            "dovecot".to_string(),
            "dovecot".to_string(),
            "dovenull".to_string(),
        )
    } else {
        let me = id(&["-un"]);
        (me.clone(), id(&["-gn"]), me)
    };
    let d = dir.display();
    format!(
        "base_dir = {d}/run
state_dir = {d}/state
instance_name = dkim-test-{port}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
# The mail's user is nobody under root, or the user running the test.
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
ssl_min_protocol = TLSv1.2
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {imap_ip}
    port = {port}
  }}
  inet_listener imaps {{
    address = {imap_ip}
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
",
        imap_ip = imap.ip(),
        port = imap.port(),
        tls_port = imaps.port(),
    )
}

/// A loopback port free now (Dovecot binds it a moment later).
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Whether this process runs as root: a directory it makes is owned by UID 0.
fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        let dir = TempDir::new("whoami");
        std::fs::metadata(dir.path()).unwrap().uid() == 0
    })
}

/// The mail's owner: `nobody` under root, else whoever runs the test (the owner of `dir`).
fn mail_owner(dir: &Path) -> (u32, u32) {
    if is_root() {
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        (id("-u"), id("-g"))
    } else {
        let meta = std::fs::metadata(dir).unwrap();
        (meta.uid(), meta.gid())
    }
}

/// What `id ARGS` prints.
fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().unwrap();
    assert!(out.status.success(), "id {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
