//! moto (PyPI `moto[server]`) on a loopback port: a second, independent implementation of the
//! AWS APIs the exporter calls (SESv2, STS, S3), for the `#[ignore]`d `*_moto` tests.
//!
//! They need `moto_server`: from `DKIM_EXPORTER_MOTO_SERVER`, or else on the PATH. .ci/run
//! installs moto in a virtualenv and runs them with `cargo test --test integration -- --ignored
//! ses_moto::` (and `dmarc_s3_moto::`).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};

/// A moto server on a loopback port, stopped when dropped.
pub struct Moto {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The process, for tests that stop it early.
    pub child: Child,
}

impl Moto {
    /// Starts `moto_server` and waits until it listens.
    pub async fn start() -> Moto {
        let program = std::env::var("DKIM_EXPORTER_MOTO_SERVER").unwrap_or("moto_server".into());
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {program}: {e}; install moto (pip install 'moto[server]') or set \
                     DKIM_EXPORTER_MOTO_SERVER to its moto_server"
                )
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto_server did not listen on {addr} within 30s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Moto { addr, child }
    }

    /// Its URL, every service's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An SESv2 client for the test's own calls (creating and deleting identities).
    pub fn ses(&self, region: &str) -> aws_sdk_sesv2::Client {
        let config = aws_sdk_sesv2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(credentials())
            .endpoint_url(self.endpoint())
            .http_client(dkim_exporter::aws::http_client())
            .build();
        aws_sdk_sesv2::Client::from_conf(config)
    }

    /// An S3 client for the test's own calls (creating buckets, putting and deleting objects),
    /// path-style as moto needs.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(credentials())
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .http_client(dkim_exporter::aws::http_client())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keys moto takes (it checks none).
pub fn credentials() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new("AKIDTEST", "secret", None, None, "test"))
}
