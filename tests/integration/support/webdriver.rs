//! A real browser for the status page tests (and `examples/page_bench.rs`, which includes this
//! file): Debian's `chromium`, headless, driven through
//! `chromedriver` over the W3C WebDriver protocol (JSON over HTTP on loopback), with no client
//! library.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The environment variable naming chromedriver (default: `chromedriver` on the PATH).
pub const CHROMEDRIVER_ENV: &str = "DKIM_EXPORTER_CHROMEDRIVER";
/// The environment variable naming the browser (default: Debian's `/usr/lib/chromium/chromium`).
pub const CHROMIUM_ENV: &str = "DKIM_EXPORTER_CHROMIUM";

/// chromedriver, killed when dropped.
pub struct Driver {
    process: Child,
    addr: SocketAddr,
}

/// A browser session: one headless Chromium window.
pub struct Browser {
    addr: SocketAddr,
    session: String,
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits until it answers.
    pub async fn start() -> Driver {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let program = std::env::var(CHROMEDRIVER_ENV).unwrap_or_else(|_| "chromedriver".into());
        let process = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} (set {CHROMEDRIVER_ENV}; CI installs chromium-driver): {e}")
            });
        let driver = Driver {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, status)) = request(driver.addr, "GET", "/status", None).await
                && status["value"]["ready"] == json!(true)
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a headless browser window of `width` × `height` CSS pixels.
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        let binary =
            std::env::var(CHROMIUM_ENV).unwrap_or_else(|_| "/usr/lib/chromium/chromium".into());
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--hide-scrollbars",
                         "--no-first-run", "--no-default-browser-check",
                         format!("--window-size={width},{height}")],
            },
        }}});
        let (status, reply) = request(self.addr, "POST", "/session", Some(&capabilities))
            .await
            .expect("chromedriver answers");
        assert_eq!(status, 200, "new session: {reply}");
        let session = reply["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        let browser = Browser {
            addr: self.addr,
            session,
        };
        // The window size chromium takes is the outer one; set the viewport exactly.
        let inner: Value = browser
            .run("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];")
            .await;
        let (dw, dh) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        browser
            .command(
                "POST",
                "window/rect",
                json!({"width": width + dw, "height": height + dh}),
            )
            .await;
        browser
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Browser {
    /// Loads `url` and waits for the page to finish loading.
    pub async fn open(&self, url: &str) {
        self.command("POST", "url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub async fn run(&self, script: &str) -> Value {
        self.command(
            "POST",
            "execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Emulates the reader's colour scheme (`light` or `dark`) through the DevTools protocol.
    pub async fn color_scheme(&self, scheme: &str) {
        self.command(
            "POST",
            "goog/cdp/execute",
            json!({"cmd": "Emulation.setEmulatedMedia", "params": {
                "features": [{"name": "prefers-color-scheme", "value": scheme}]
            }}),
        )
        .await;
    }

    /// A PNG of what the window shows: the first screen.
    pub async fn window_screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self.command("GET", "screenshot", Value::Null).await;
        base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("PNG data"))
            .expect("base64 PNG")
    }

    /// A PNG of the whole page, not only the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let size = self
            .run("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight];")
            .await;
        let shot = self
            .command(
                "POST",
                "goog/cdp/execute",
                json!({"cmd": "Page.captureScreenshot", "params": {
                    "format": "png", "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
                }}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("PNG data"))
            .expect("base64 PNG")
    }

    /// Closes the window.
    pub async fn close(self) {
        let path = format!("/session/{}", self.session);
        let _ = request(self.addr, "DELETE", &path, None).await;
    }

    /// A session command; panics with the driver's message when it fails.
    async fn command(&self, method: &str, command: &str, body: Value) -> Value {
        let path = format!("/session/{}/{command}", self.session);
        let body = (!body.is_null()).then_some(&body);
        let (status, reply) = request(self.addr, method, &path, body)
            .await
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        assert_eq!(status, 200, "{command}: {reply}");
        reply["value"].clone()
    }
}

/// One WebDriver request, JSON in and out.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open whatever the request says: read the head,
        // then as many bytes as it announces.
        let mut response = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
            if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
                let length = head.lines().find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                });
                if length.is_some_and(|length| response.len() >= end + 4 + length) {
                    break;
                }
            }
        }
        Ok::<_, String>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(120), exchange)
        .await
        .map_err(|_| "no answer in 120 s".to_string())??;
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP head")?;
    let head = String::from_utf8_lossy(&response[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    // chromedriver announces its length; it never sends chunks.
    let body = &response[end + 4..];
    let value = serde_json::from_slice(body).map_err(|e| format!("{e}: {head}"))?;
    Ok((status, value))
}
