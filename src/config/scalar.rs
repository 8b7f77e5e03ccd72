//! Scalars that validate themselves, so that serde reports their exact position: names,
//! selectors, durations, resolver names and addresses, providers and regions.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use crate::provider::{Provider, ses};

/// Deserializes a scalar through `parse` inside the deserializer, so that an error carries the
/// scalar's own position. Numbers are accepted as their text (YAML reads `20230601` as one).
fn scalar_with<'de, D, T>(d: D, parse: fn(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T>(fn(&str) -> Result<T, String>);
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.0)(&v.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.0)(&v.to_string()).map_err(E::custom)
        }
    }
    d.deserialize_any(V(parse))
}

/// A Prometheus-style duration: `1h30m`, `5m`, `30s`, `500ms`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConfigDuration(pub(super) Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| parse_duration(text).map(ConfigDuration))
    }
}

/// Parses a Prometheus duration: one or more `<number><unit>` with units y, w, d, h, m, s, ms,
/// largest first, each at most once.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad =
        || format!("invalid duration {text:?}: use a number and a unit, like 30s, 5m or 1h30m");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u64 = 0;
    let mut last_unit = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let index = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
        if last_unit.is_some_and(|last| index <= last) {
            return Err(bad());
        }
        last_unit = Some(index);
        total_ms = number
            .checked_mul(UNITS[index].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way the config writes them.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// A validated, normalised DNS name (domain, CNAME target or DKIM domain).
#[derive(Debug)]
pub(super) struct DnsName(pub(super) String);

impl<'de> Deserialize<'de> for DnsName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| normalise_name(text, "name").map(DnsName))
    }
}

/// A `cname:` value: a DNS name, or a template with `{selector}`, `{domain}` and
/// `{domain_dashed}` (the domain with its dots as dashes), expanded per record.
#[derive(Debug)]
pub(super) struct CnameTemplate(String);

/// The placeholders a `cname:` template may use.
pub const TEMPLATE_PLACEHOLDERS: [&str; 3] = ["selector", "domain", "domain_dashed"];

impl CnameTemplate {
    /// Checks `text`: a valid name when it has no placeholder, else known placeholders only.
    pub(super) fn parse(text: &str) -> Result<CnameTemplate, String> {
        let text = text.trim();
        if !text.contains(['{', '}']) {
            return normalise_name(text, "name").map(CnameTemplate);
        }
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!(
                    "invalid template {text:?}: a '}}' without its '{{'"
                ));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!(
                    "invalid template {text:?}: a '{{' without its '}}'"
                ));
            };
            let name = &rest[open + 1..open + close];
            if !TEMPLATE_PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "unknown placeholder {{{name}}} in {text:?}: use {{selector}}, {{domain}} or {{domain_dashed}}"
                ));
            }
            rest = &rest[open + close + 1..];
        }
        Ok(CnameTemplate(text.to_string()))
    }

    /// The target for `selector` under `domain` (both lower case), not yet validated as a name.
    pub(super) fn expand(&self, selector: &str, domain: &str) -> String {
        self.0
            .replace("{selector}", selector)
            .replace("{domain_dashed}", &domain.replace('.', "-"))
            .replace("{domain}", domain)
    }
}

/// The CNAME target the template `text` gives for `selector` under `domain`, checked as the
/// config checks a `cname:`.
pub fn expand_cname(text: &str, selector: &str, domain: &str) -> Result<String, String> {
    let template = CnameTemplate::parse(text)?;
    normalise_name(&template.expand(selector, domain), "name")
        .map_err(|message| format!("the template gives {message}"))
}

impl<'de> Deserialize<'de> for CnameTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, CnameTemplate::parse)
    }
}

/// A validated, normalised selector: one or more DNS labels.
#[derive(Debug)]
pub(super) struct Selector(pub(super) String);

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| parse_selector(text).map(Selector))
    }
}

/// Normalises and validates a selector: one or more DNS labels, without `._domainkey`.
pub fn parse_selector(text: &str) -> Result<String, String> {
    let selector = normalise_name(text, "selector")?;
    if selector == "_domainkey" || selector.ends_with("._domainkey") {
        return Err(format!(
            "selector {text:?} includes _domainkey: give only the part before it"
        ));
    }
    Ok(selector)
}

/// Refuses a selector whose record name, `{selector}._domainkey.{domain}`, is too long for DNS.
pub fn check_record_name(selector: &str, domain: &str) -> Result<(), String> {
    let length = selector.len() + "._domainkey.".len() + domain.len();
    if length > 253 {
        return Err(format!(
            "{selector}._domainkey.{domain} is {length} characters long; DNS names end at 253"
        ));
    }
    Ok(())
}

/// A resolver name: any non-empty text without spaces, compared case-insensitively.
#[derive(Debug)]
pub(super) struct ResolverName(pub(super) String);

impl<'de> Deserialize<'de> for ResolverName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| {
            if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "invalid resolver name {text:?}: use letters, digits and punctuation, no spaces"
                ));
            }
            Ok(ResolverName(text.to_lowercase()))
        })
    }
}

/// Text of a scalar that YAML may have typed as a number.
#[derive(Debug)]
pub(super) struct ScalarText(pub(super) String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Normalises and validates a DNS name: lower case, no trailing dot, labels of 1–63 letters,
/// digits, hyphens or underscores, 253 characters at most.
pub fn normalise_name(text: &str, what: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let name = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!("empty {what}"));
    }
    if name.len() > 253 {
        return Err(format!(
            "{what} {text:?} is {} characters long; DNS names end at 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("invalid {what} {text:?}: empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "invalid {what} {text:?}: label {label:?} is longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            let hint = if c.is_ascii() {
                ""
            } else {
                " (write internationalised names in their xn-- form)"
            };
            return Err(format!(
                "invalid {what} {text:?}: character {c:?} is not allowed{hint}"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "invalid {what} {text:?}: label {label:?} starts or ends with a hyphen"
            ));
        }
    }
    Ok(name)
}

/// A resolver address: an IP, `IP:port`, or `[IPv6]:port`.
#[derive(Debug)]
pub(super) struct ResolverAddress {
    /// The address.
    pub(super) ip: IpAddr,
    /// The port, when given.
    pub(super) port: Option<u16>,
}

impl<'de> Deserialize<'de> for ResolverAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, parse_resolver_address)
    }
}

pub(super) fn parse_resolver_address(text: &str) -> Result<ResolverAddress, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ResolverAddress { ip, port: None });
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("invalid resolver address {text:?}: port 0"));
        }
        return Ok(ResolverAddress {
            ip: addr.ip(),
            port: Some(addr.port()),
        });
    }
    Err(format!(
        "invalid resolver address {text:?}: give an IP address, IP:port, or [IPv6]:port \
         (host names are not accepted: a resolver is needed to find them)"
    ))
}

/// A `provider:` name.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProviderName(pub(super) Provider);

impl<'de> Deserialize<'de> for ProviderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| Provider::from_name(text).map(ProviderName))
    }
}

/// An AWS region name.
#[derive(Debug)]
pub(super) struct Region(pub(super) String);

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| ses::region(text).map(Region))
    }
}

/// A `ses:` source name: the `source` label. Letters, digits, `-`, `_` and `.`.
#[derive(Debug)]
pub(super) struct SourceName(pub(super) String);

impl<'de> Deserialize<'de> for SourceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| {
            let name = text.trim().to_ascii_lowercase();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(format!(
                    "invalid source name {text:?}: use letters, digits, '-', '_' and '.'"
                ));
            }
            Ok(SourceName(name))
        })
    }
}

/// An AWS shared-config profile name.
#[derive(Debug)]
pub(super) struct ProfileName(pub(super) String);

impl<'de> Deserialize<'de> for ProfileName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| {
            let name = text.trim();
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "invalid profile name {text:?}: give the name of a profile in ~/.aws/config"
                ));
            }
            Ok(ProfileName(name.to_string()))
        })
    }
}

/// The ARN of an IAM role to assume: `arn:{partition}:iam::{account}:role/{name}`.
#[derive(Debug)]
pub(super) struct RoleArn(pub(super) String);

impl<'de> Deserialize<'de> for RoleArn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| {
            let arn = text.trim();
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            let valid = parts.len() == 6
                && parts[0] == "arn"
                && parts[1].starts_with("aws")
                && parts[2] == "iam"
                && parts[3].is_empty()
                && parts[4].len() == 12
                && parts[4].bytes().all(|b| b.is_ascii_digit())
                && parts[5]
                    .strip_prefix("role/")
                    .is_some_and(|n| !n.is_empty());
            if !valid {
                return Err(format!(
                    "invalid role_arn {text:?}: give a role ARN like \
                     arn:aws:iam::123456789012:role/dkim-read"
                ));
            }
            Ok(RoleArn(arn.to_string()))
        })
    }
}

/// An HTTP or HTTPS endpoint URL, without a path, query or user.
#[derive(Debug)]
pub(super) struct EndpointUrl(pub(super) String);

impl<'de> Deserialize<'de> for EndpointUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, |text| parse_endpoint(text).map(EndpointUrl))
    }
}

/// Checks an endpoint URL: `http://` or `https://`, a host, an optional port, nothing after.
pub fn parse_endpoint(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let bad = |why: &str| {
        format!(
            "invalid endpoint {text:?}: {why}; give a URL like https://email.eu-west-1.amazonaws.com or http://127.0.0.1:4566"
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("it must start with http:// or https://"))?;
    if rest.is_empty() {
        return Err(bad("no host"));
    }
    if let Some(c) = rest
        .chars()
        .find(|c| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace())
    {
        return Err(bad(&format!(
            "{c:?} is not allowed (no path, query or user)"
        )));
    }
    Ok(url.to_string())
}

/// A positive number of requests per second.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rate(pub(super) f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of requests per second greater than 0, like 1 or 0.5")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                if v.is_finite() && v > 0.0 && v <= 1000.0 {
                    Ok(Rate(v))
                } else {
                    Err(E::custom(format!(
                        "invalid rate {v}: give a number of requests per second over 0 and at most 1000"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

/// A glob on domain names: `*` matches any run of characters (dots included), `?` one
/// character; compared in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// The glob `text`, lower case; an error when it could match no domain name.
    pub fn new(text: &str) -> Result<Glob, String> {
        let pattern = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if pattern.is_empty() {
            return Err("empty glob: give a domain pattern like *.example.com".to_string());
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '?')))
        {
            return Err(format!(
                "invalid glob {text:?}: character {c:?} cannot be in a domain name"
            ));
        }
        Ok(Glob(pattern))
    }

    /// Whether the lower-case `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let (pattern, name) = (self.0.as_bytes(), name.as_bytes());
        let (mut p, mut n) = (0, 0);
        // Where the latest `*` is, and where in the name it started matching.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match pattern.get(p) {
                Some(b'*') => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(&c) if c == b'?' || c == name[n] => {
                    p += 1;
                    n += 1;
                }
                _ => match star {
                    Some((star_p, star_n)) => {
                        p = star_p + 1;
                        n = star_n + 1;
                        star = Some((star_p, star_n + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|&c| c == b'*')
    }

    /// The pattern as written, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_with(d, Glob::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("30s5m").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(
            format_duration(Duration::from_millis(5_400_250)),
            "1h30m250ms"
        );
    }

    #[test]
    fn cname_templates() {
        let t =
            CnameTemplate::parse("{selector}-{domain_dashed}._domainkey.contoso.onmicrosoft.com")
                .unwrap();
        assert_eq!(
            t.expand("selector1", "mail.example.com"),
            "selector1-mail-example-com._domainkey.contoso.onmicrosoft.com"
        );
        let t = CnameTemplate::parse("{selector}.{domain}.dkim.example.net").unwrap();
        assert_eq!(t.expand("s1", "a.org"), "s1.a.org.dkim.example.net");
        assert!(
            CnameTemplate::parse("{sel}.example.com")
                .unwrap_err()
                .contains("unknown placeholder {sel}")
        );
        assert!(CnameTemplate::parse("{selector.example.com").is_err());
        assert!(CnameTemplate::parse("selector}.example.com").is_err());
        assert!(
            CnameTemplate::parse("a..b")
                .unwrap_err()
                .contains("empty label")
        );
    }

    #[test]
    fn globs() {
        let glob = |text: &str| Glob::new(text).unwrap();
        assert!(glob("*.example.com").matches("mail.example.com"));
        assert!(glob("*.example.com").matches("a.b.example.com"));
        assert!(!glob("*.example.com").matches("example.com"));
        assert!(glob("Example.COM.").matches("example.com"));
        assert!(glob("ex?mple.*").matches("example.org"));
        assert!(!glob("ex?mple.*").matches("exmple.org"));
        assert!(glob("*").matches("anything.test"));
        assert!(glob("*mail*").matches("mail"));
        assert!(!glob("a*b*c").matches("acb"));
        assert!(Glob::new("").is_err());
        assert!(Glob::new("exa mple.com").is_err());
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:4566/").as_deref(),
            Ok("http://127.0.0.1:4566")
        );
        assert!(parse_endpoint("127.0.0.1:4566").is_err());
        assert!(parse_endpoint("https://host/path").is_err());
        assert!(parse_endpoint("https://").is_err());
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            normalise_name("Example.COM.", "name").as_deref(),
            Ok("example.com")
        );
        assert!(normalise_name("a..b", "name").is_err());
        assert!(normalise_name("-a.b", "name").is_err());
        assert!(normalise_name("ex ample.com", "name").is_err());
        assert!(
            normalise_name("bücher.de", "name")
                .unwrap_err()
                .contains("xn--")
        );
        assert!(normalise_name(&"a".repeat(64), "name").is_err());
    }
}
