//! Amazon SES Easy DKIM: three CNAMEs `{token}._domainkey.{domain}` →
//! `{token}.dkim.amazonses.com`, or `{token}.dkim.{region}.amazonses.com` in the regions that
//! sign with a regional DKIM domain.

use super::Params;
use crate::problem::Problem;

/// The SES DKIM domain for regions without a regional one.
pub const GLOBAL_DKIM_DOMAIN: &str = "dkim.amazonses.com";

/// SES regions that sign with the regional DKIM domain `dkim.{region}.amazonses.com`.
pub const REGIONAL_DKIM_REGIONS: [&str; 11] = [
    "af-south-1",
    "ap-northeast-3",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "il-central-1",
    "me-central-1",
    "us-gov-east-1",
];

/// Every AWS region a `region:` may name; the ones not in [`REGIONAL_DKIM_REGIONS`] use the
/// global DKIM domain. Kept broad so a region SES adds later is not refused as a typo.
const AWS_REGIONS: [&str; 40] = [
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-isob-east-1",
    "us-west-1",
    "us-west-2",
];

/// The AWS region `text` names, lower case; an error for anything that is not one.
pub fn region(text: &str) -> Result<String, String> {
    let region = text.trim().to_ascii_lowercase();
    if AWS_REGIONS.contains(&region.as_str()) {
        Ok(region)
    } else {
        Err(format!(
            "unknown region {text:?}: give an AWS region such as us-east-1 or eu-south-1"
        ))
    }
}

/// The DKIM domain SES signs with in `region` (none: the global one).
pub fn dkim_domain(region: Option<&str>) -> String {
    match region {
        Some(region) if REGIONAL_DKIM_REGIONS.contains(&region) => {
            format!("dkim.{region}.amazonses.com")
        }
        _ => GLOBAL_DKIM_DOMAIN.to_string(),
    }
}

/// The DKIM domain of an identity with `params`: `dkim_domain:` when given, else the region's.
pub fn dkim_domain_of(params: &Params) -> String {
    params
        .dkim_domain
        .clone()
        .unwrap_or_else(|| dkim_domain(params.region.as_deref()))
}

/// The CNAME target of the token `selector` under `dkim_domain`.
pub fn target(selector: &str, dkim_domain: &str) -> String {
    format!("{selector}.{dkim_domain}")
}

/// `found` is the expected SES token under another SES DKIM domain: the wrong region.
pub fn misdirection(
    selector: &str,
    expected: &str,
    found: &str,
) -> Option<(Problem, &'static str)> {
    let (want, got) = (region_of(selector, expected)?, region_of(selector, found)?);
    if want == got {
        return None;
    }
    let why = if got.is_some() {
        " (a regional SES DKIM domain)"
    } else {
        " (the global SES DKIM domain)"
    };
    Some((Problem::WrongRegion, why))
}

/// For an SES DKIM target `{selector}.dkim[.{region}].amazonses.com`: `Some(None)` for the
/// global DKIM domain, `Some(Some(region))` for a regional one, `None` when not SES-shaped.
fn region_of<'a>(selector: &str, target: &'a str) -> Option<Option<&'a str>> {
    let rest = target
        .strip_prefix(selector)?
        .strip_prefix(".dkim.")?
        .strip_suffix("amazonses.com")?;
    match rest {
        "" => Some(None),
        region => {
            let region = region.strip_suffix('.')?;
            (!region.is_empty() && !region.contains('.')).then_some(Some(region))
        }
    }
}
