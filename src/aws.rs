//! What every AWS SDK client of the exporter shares, whichever service it calls (SES for `ses:`
//! sources, S3 for DMARC reports in a bucket): credentials, the role, HTTPS, retries, time
//! limits, and errors on one line.
//!
//! Credentials come from the standard chain (environment, shared config and credentials files,
//! web identity for EKS IRSA, ECS container and EC2 instance metadata), or from `profile`;
//! with `role_arn` they are used to assume that role. HTTPS goes through rustls with the ring
//! provider the DNS-over-TLS resolvers already use, so the SDK adds no second crypto library.
//! The SDK retries throttling and transient errors with exponential backoff, a bounded number
//! of times, and every call has a time limit.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
// The same aws-credential-types and aws-smithy-runtime-api types every service crate re-exports.
use aws_sdk_sesv2::config::{SharedCredentialsProvider, SharedHttpClient};
use aws_sdk_sesv2::error::SdkError;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Attempts per API call, the first included: throttling and transient errors are retried.
pub const MAX_ATTEMPTS: u32 = 4;
/// The first retry's backoff; each next one doubles it, with jitter.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// One attempt of one API call.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// One API call, its retries included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// How the exporter reaches AWS for a source: where, and as whom.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The region of the service's endpoint.
    pub region: &'a str,
    /// The AWS shared-config profile; `None` for the standard credential chain.
    pub profile: Option<&'a str>,
    /// A role to assume with the credentials found.
    pub role_arn: Option<&'a str>,
}

/// The shared SDK config of `access`, from which a service's client is built
/// (`aws_sdk_*::config::Builder::from`); a service's endpoint is that service's business.
///
/// Nothing is sent yet: credentials are looked up at the first call, so a missing credential
/// shows as that call's error. `credentials`, when given, replace the chain and `profile`.
pub async fn sdk_config(
    access: Access<'_>,
    credentials: Option<&SharedCredentialsProvider>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(access.region.to_string()))
        .http_client(http_client())
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    match (credentials, access.profile) {
        (Some(credentials), _) => loader = loader.credentials_provider(credentials.clone()),
        (None, Some(profile)) => loader = loader.profile_name(profile),
        (None, None) => {}
    }
    let shared = loader.load().await;
    let Some(role_arn) = access.role_arn else {
        return shared;
    };
    let role = aws_config::sts::AssumeRoleProvider::builder(role_arn)
        .session_name("dkim_exporter")
        .configure(&shared)
        .build()
        .await;
    shared
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(role))
        .build()
}

/// HTTPS (and plain HTTP, for a loopback endpoint) through rustls with ring.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Throttling and transient errors retried with exponential backoff, [`MAX_ATTEMPTS`] in all.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Time limits of one attempt and one call.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(CALL_TIMEOUT)
        .build()
}

/// The SDK's error with its causes (`dispatch failure: io error: connection refused`, the
/// service's error code and message, a missing credential), after the call it came from.
pub fn explain<E, R>(call: &str, error: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    format!("{call}: {}", causes(error))
}

/// An error and its causes, each in its own words, on one line, without repeats or the debug
/// dump the SDK's `DisplayErrorContext` ends with (log lines are for people).
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = cause
            .to_string()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}
