//! The AWS SDK client of a `ses:` source: its credentials, role, retries and time limits are
//! every AWS client's ([`crate::aws`]); the endpoint is SES's. The SDK retries throttling
//! (`TooManyRequestsException`) like any other transient error.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::SharedCredentialsProvider;

use crate::aws;
use crate::config::SesSource;

/// The SESv2 client of `source`, with its credentials chain, role and endpoint.
///
/// Nothing is sent yet: credentials are looked up at the first call, so a missing credential
/// shows as that call's error. `credentials`, when given, replace the chain and `profile`.
pub async fn connect(
    source: &SesSource,
    credentials: Option<&SharedCredentialsProvider>,
) -> Client {
    let access = aws::Access {
        region: &source.region,
        profile: source.profile.as_deref(),
        role_arn: source.role_arn.as_deref(),
    };
    let shared = aws::sdk_config(access, credentials).await;
    let mut config = aws_sdk_sesv2::config::Builder::from(&shared);
    if let Some(endpoint) = &source.endpoint {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}
