//! A loopback Amazon SES API v2 server for the two calls discovery makes, answering with JSON
//! shaped as the AWS API reference shows it (moto's SESv2 returns no DKIM tokens):
//!
//! - `POST /v2/email/list-identities` with `{"NextToken", "PageSize"}` (the path the SDK uses
//!   now), or `GET /v2/email/identities?NextToken=&PageSize=` (the older one):
//!   `ListEmailIdentities`, a page of `page_size` identities at most, whatever PageSize asks,
//!   so pagination is exercised;
//! - `GET /v2/email/identities/{EmailIdentity}`: `GetEmailIdentity`, or `NotFoundException`.
//!
//! Tests change the identities while it runs, make it throttle (`TooManyRequestsException`,
//! HTTP 429) or fail (HTTP 500), and count the requests it served.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One identity as the fake SES describes it.
#[derive(Debug, Clone)]
pub struct FakeIdentity {
    /// The identity name (a domain, or an address for an email identity).
    pub name: String,
    /// `DOMAIN` or `EMAIL_ADDRESS`.
    pub identity_type: &'static str,
    /// `DkimAttributes.Status`: PENDING, SUCCESS, FAILED, TEMPORARY_FAILURE, NOT_STARTED.
    pub status: &'static str,
    /// `DkimAttributes.SigningEnabled`.
    pub signing_enabled: bool,
    /// `DkimAttributes.SigningAttributesOrigin`.
    pub origin: &'static str,
    /// `DkimAttributes.Tokens`.
    pub tokens: Vec<String>,
    /// `DkimAttributes.CurrentSigningKeyLength`.
    pub key_length: Option<&'static str>,
    /// `DkimAttributes.LastKeyGenerationTimestamp`, epoch seconds.
    pub last_key_generation: Option<f64>,
}

impl FakeIdentity {
    /// An Easy DKIM domain identity with `tokens`, SUCCESS and signing.
    pub fn domain(name: &str, tokens: &[&str]) -> FakeIdentity {
        FakeIdentity {
            name: name.to_string(),
            identity_type: "DOMAIN",
            status: "SUCCESS",
            signing_enabled: true,
            origin: "AWS_SES",
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            key_length: Some("RSA_2048_BIT"),
            last_key_generation: Some(1_764_000_000.0),
        }
    }

    /// The same identity with DKIM status `status`.
    pub fn status(mut self, status: &'static str) -> FakeIdentity {
        self.status = status;
        self
    }

    /// The same identity with `SigningAttributesOrigin` `origin`.
    pub fn origin(mut self, origin: &'static str) -> FakeIdentity {
        self.origin = origin;
        self
    }

    /// The same identity with signing disabled.
    pub fn not_signing(mut self) -> FakeIdentity {
        self.signing_enabled = false;
        self
    }

    fn get_response(&self) -> Value {
        let mut dkim = json!({
            "SigningEnabled": self.signing_enabled,
            "Status": self.status,
            "Tokens": self.tokens,
            "SigningAttributesOrigin": self.origin,
            "NextSigningKeyLength": "RSA_2048_BIT",
        });
        if let Some(length) = self.key_length {
            dkim["CurrentSigningKeyLength"] = json!(length);
        }
        if let Some(at) = self.last_key_generation {
            dkim["LastKeyGenerationTimestamp"] = json!(at);
        }
        json!({
            "IdentityType": self.identity_type,
            "FeedbackForwardingStatus": true,
            "VerifiedForSendingStatus": self.status == "SUCCESS",
            "DkimAttributes": dkim,
            "MailFromAttributes": {
                "MailFromDomainStatus": "SUCCESS",
                "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"
            },
            "Policies": {},
            "Tags": [],
            "VerificationStatus": self.status,
        })
    }
}

/// What the fake serves and has seen.
#[derive(Debug, Default)]
pub struct FakeState {
    /// The identities, in listing order.
    pub identities: Vec<FakeIdentity>,
    /// Identities per `ListEmailIdentities` page.
    pub page_size: usize,
    /// The next this many requests get `TooManyRequestsException`.
    pub throttle: usize,
    /// While set, every request gets HTTP 500 `InternalFailure`, which the SDK retries as a
    /// transient error before the listing fails.
    pub failing: bool,
    /// `ListEmailIdentities` requests served (throttled ones included).
    pub list_requests: usize,
    /// `GetEmailIdentity` requests served (throttled ones included).
    pub get_requests: usize,
    /// Whether every request was signed with AWS Signature Version 4.
    pub all_signed: bool,
}

/// The running fake.
pub struct FakeSes {
    /// Where it listens: give `http://{addr}` as the endpoint.
    pub addr: SocketAddr,
    /// What it serves; change it at will.
    pub state: Arc<Mutex<FakeState>>,
    task: JoinHandle<()>,
}

impl FakeSes {
    /// Starts the fake on a loopback port with `identities`, two per page.
    pub async fn start(identities: Vec<FakeIdentity>) -> FakeSes {
        let state = Arc::new(Mutex::new(FakeState {
            identities,
            page_size: 2,
            all_signed: true,
            ..FakeState::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            Ok::<_, Infallible>(answer(&state, &parts, &body))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeSes { addr, state, task }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what the fake serves.
    pub fn with<T>(&self, change: impl FnOnce(&mut FakeState) -> T) -> T {
        change(&mut self.state.lock().unwrap())
    }
}

impl Drop for FakeSes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(
    state: &Mutex<FakeState>,
    request: &hyper::http::request::Parts,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let mut state = state.lock().unwrap();
    let signed = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    state.all_signed &= signed;
    let path = request.uri.path().to_string();
    let listing = match (&request.method, path.as_str()) {
        (&hyper::Method::POST, "/v2/email/list-identities") => {
            let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            Some(body["NextToken"].as_str().map(str::to_string))
        }
        (&hyper::Method::GET, "/v2/email/identities") => Some(
            request
                .uri
                .query()
                .and_then(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .find(|(k, _)| k == "NextToken")
                })
                .map(|(_, v)| v),
        ),
        _ => None,
    };
    let name = path
        .strip_prefix("/v2/email/identities/")
        .map(percent_decode);
    if name.is_some() {
        state.get_requests += 1;
    }
    if listing.is_some() {
        state.list_requests += 1;
    }
    if state.throttle > 0 {
        state.throttle -= 1;
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Too many requests have been made to the operation.",
        );
    }
    if state.failing {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The request processing has failed because of an unknown error.",
        );
    }
    match (name, listing) {
        (Some(_), _) if request.method != hyper::Method::GET => {
            error(StatusCode::BAD_REQUEST, "BadRequestException", "GET only")
        }
        (Some(name), _) => match state.identities.iter().find(|i| i.name == name) {
            Some(identity) => ok(identity.get_response()),
            None => error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                &format!("Email identity {name} does not exist."),
            ),
        },
        (None, Some(next_token)) => {
            let start: usize = next_token.and_then(|t| t.parse().ok()).unwrap_or(0);
            let end = (start + state.page_size).min(state.identities.len());
            let page: Vec<Value> = state.identities[start.min(end)..end]
                .iter()
                .map(|i| {
                    json!({
                        "IdentityType": i.identity_type,
                        "IdentityName": i.name,
                        "SendingEnabled": true,
                        "VerificationStatus": i.status,
                    })
                })
                .collect();
            let mut body = json!({ "EmailIdentities": page });
            if end < state.identities.len() {
                body["NextToken"] = json!(end.to_string());
            }
            ok(body)
        }
        (None, None) => error(StatusCode::NOT_FOUND, "NotFoundException", "no such path"),
    }
}

fn ok(body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-amzn-errortype", kind)
        .header("x-amzn-requestid", "00000000-0000-0000-0000-000000000000")
        .body(Full::new(Bytes::from(
            json!({ "message": message }).to_string(),
        )))
        .unwrap()
}

fn percent_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The environment changes for a child process that must find only the AWS settings a test
/// gives it: every `AWS_*` variable of this process removed, instance metadata off (nothing
/// may look for 169.254.169.254), `HOME` at `home` (no `~/.aws`), and, with `credentials`,
/// fixed keys in the environment. Returns the variables to remove and those to set.
pub fn aws_env(home: &std::path::Path, credentials: bool) -> super::EnvChanges {
    let remove: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("AWS_"))
        .collect();
    let mut set = vec![
        ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
        ("HOME".to_string(), home.display().to_string()),
        (
            "AWS_CONFIG_FILE".to_string(),
            home.join("no-aws-config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".to_string(),
            home.join("no-aws-credentials").display().to_string(),
        ),
    ];
    if credentials {
        set.push(("AWS_ACCESS_KEY_ID".to_string(), "AKIDTEST".to_string()));
        set.push(("AWS_SECRET_ACCESS_KEY".to_string(), "secret".to_string()));
    }
    (remove, set)
}
