//! Listing a source's domain identities (`ListEmailIdentities`, every page) and reading each
//! one's DKIM attributes (`GetEmailIdentity`), paced to the source's request rate.

use std::time::Duration;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::IdentityType;
use tokio::time::{Interval, MissedTickBehavior};

use super::{DkimStatus, Identity, Origin};
use crate::aws::explain;
use crate::config::{self, SesSource};

/// Identities asked for per `ListEmailIdentities` page: the API's largest page.
pub const PAGE_SIZE: i32 = 1000;

/// What one listing found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The identities read, in listing order.
    pub identities: Vec<Identity>,
    /// Identities listed whose attributes could not be read, with the error: the previous
    /// listing's reading of them is kept.
    pub unread: Vec<(String, String)>,
}

/// Lists `source`'s domain identities that its `include` and `exclude` let through, and reads
/// each one's DKIM attributes. With `only`, reads that one domain without listing. An error
/// means nothing could be listed; the text is the SDK's, with its causes.
pub async fn discover(
    client: &Client,
    source: &SesSource,
    only: Option<&str>,
) -> Result<Listing, String> {
    let mut pace = tokio::time::interval(source.request_interval.max(Duration::from_millis(1)));
    pace.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let names = match only {
        Some(domain) => {
            let name = config::normalise_name(domain, "domain")?;
            vec![(name.clone(), name)]
        }
        None => list(client, source, &mut pace).await?,
    };
    let mut listing = Listing::default();
    for (listed, name) in names {
        pace.tick().await;
        match read(client, source, &listed, &name).await {
            Ok(Some(identity)) => listing.identities.push(identity),
            // Deleted between the listing and now.
            Ok(None) if only.is_none() => {}
            Ok(None) => return Err(format!("{name} is not an identity in SES")),
            Err(error) => listing.unread.push((name, error)),
        }
    }
    if only.is_some()
        && let Some((_, error)) = listing.unread.pop()
    {
        return Err(error);
    }
    Ok(listing)
}

/// The domain identities, every page, filtered by the source's globs: each as SES names it,
/// and normalised (lower case, no trailing dot).
async fn list(
    client: &Client,
    source: &SesSource,
    pace: &mut Interval,
) -> Result<Vec<(String, String)>, String> {
    let mut names = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        pace.tick().await;
        let page = client
            .list_email_identities()
            .page_size(PAGE_SIZE)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(|e| explain("ListEmailIdentities", &e))?;
        for info in page.email_identities() {
            if info.identity_type() != Some(&IdentityType::Domain) {
                continue;
            }
            let Some(name) = info.identity_name() else {
                continue;
            };
            let normalised = match config::normalise_name(name, "domain identity") {
                Ok(normalised) => normalised,
                Err(error) => {
                    tracing::warn!(source = %source.name, %error, "SES lists an identity that is not a domain name; it is skipped");
                    continue;
                }
            };
            if source.wants(&normalised) {
                names.push((name.to_string(), normalised));
            }
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
            _ => return Ok(names),
        }
    }
}

/// The identity SES names `listed` (`name` normalised) as SES describes it; `None` when SES no
/// longer has it.
async fn read(
    client: &Client,
    source: &SesSource,
    listed: &str,
    name: &str,
) -> Result<Option<Identity>, String> {
    let output = match client
        .get_email_identity()
        .email_identity(listed)
        .send()
        .await
    {
        Ok(output) => output,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(explain(&format!("GetEmailIdentity {name}"), &e)),
    };
    let dkim = output.dkim_attributes();
    let status = match dkim.and_then(|d| d.status()) {
        Some(status) => DkimStatus::from_api(status.as_str()),
        None => Some(DkimStatus::NotStarted),
    };
    if status.is_none() {
        tracing::warn!(
            source = %source.name,
            domain = name,
            status = dkim.and_then(|d| d.status()).map(|s| s.as_str()).unwrap_or_default(),
            "SES reports a DKIM status this version does not know"
        );
    }
    let mut tokens = Vec::new();
    for token in dkim.map(|d| d.tokens()).unwrap_or_default() {
        let token = token.to_ascii_lowercase();
        match config::parse_selector(&token)
            .and_then(|token| config::check_record_name(&token, name).map(|()| token))
        {
            Ok(token) if !tokens.contains(&token) => tokens.push(token),
            Ok(_) => {}
            Err(error) => tracing::warn!(
                source = %source.name,
                domain = name,
                %error,
                "SES gave a DKIM token that is not a usable selector; it is not checked"
            ),
        }
    }
    Ok(Some(Identity {
        domain: name.to_string(),
        status,
        signing_enabled: dkim.is_some_and(|d| d.signing_enabled()),
        key_length: dkim
            .and_then(|d| d.current_signing_key_length())
            .and_then(|length| key_bits(length.as_str())),
        last_key_generation: dkim
            .and_then(|d| d.last_key_generation_timestamp())
            .map(|t| t.as_secs_f64()),
        origin: Origin::from_api(
            dkim.and_then(|d| d.signing_attributes_origin())
                .map(|o| o.as_str()),
            &source.region,
        ),
        tokens,
    }))
}

/// `RSA_2048_BIT` → 2048.
fn key_bits(text: &str) -> Option<u32> {
    text.split('_').find_map(|part| part.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths() {
        assert_eq!(key_bits("RSA_1024_BIT"), Some(1024));
        assert_eq!(key_bits("RSA_2048_BIT"), Some(2048));
        assert_eq!(key_bits("ED25519"), None);
    }
}
