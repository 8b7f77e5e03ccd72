//! The records one request asks about: `dkim_exporter check DOMAIN --selector …` on the command
//! line, or `/probe?target=DOMAIN&selector=…` from Prometheus.
//!
//! Everything given is validated by the same rules as the config file, so a name or selector
//! the file refuses is refused here with the same words.

use super::{check_record_name, expand_cname, normalise_name, parse_selector};
use crate::provider::{Expected, Params, Provider, ses};
use crate::records::{Domain, Record, Records};

/// What a request asks to check.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// The domain; `None` for every configured domain.
    pub domain: Option<&'a str>,
    /// Selectors to check; empty for the domain's configured selectors.
    pub selectors: Vec<&'a str>,
    /// The provider the selectors point at; none for TXT keys.
    pub provider: Option<&'a str>,
    /// The SES region of the identity.
    pub region: Option<&'a str>,
    /// The SendGrid account (`u1234.wl001`).
    pub account: Option<&'a str>,
    /// The Microsoft 365 tenant's DKIM domain.
    pub tenant_domain: Option<&'a str>,
    /// The expected CNAME target (or a template) of a record of no preset.
    pub cname: Option<&'a str>,
    /// Where the request comes from, which decides how an error names what it is about.
    pub origin: Origin,
}

/// Where a request comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// `dkim_exporter check`: errors name the value.
    #[default]
    CommandLine,
    /// `/probe`: errors name the URL parameter first (`selector="a b": …`).
    Query,
}

impl Request<'_> {
    /// `result`, its error naming the URL parameter `param` given `value` when the request is
    /// a URL's.
    fn at<T>(&self, param: &str, value: &str, result: Result<T, String>) -> Result<T, String> {
        match self.origin {
            Origin::CommandLine => result,
            Origin::Query => result.map_err(|e| format!("{param}={value:?}: {e}")),
        }
    }

    /// The records asked for: the selectors given, or else the domain's records in
    /// `configured` (all of them when no domain is given).
    pub fn records(&self, configured: Option<&Records>) -> Result<Records, String> {
        let provider = self
            .provider
            .map(|p| self.at("provider", p, Provider::from_name(p)))
            .transpose()?;
        let presets_selectors = provider.is_some_and(|p| !p.default_selectors().is_empty());
        if self.cname.is_some() && self.provider.is_some() {
            return Err("give a provider or a cname, not both".into());
        }
        let described = self.region.is_some()
            || self.account.is_some()
            || self.tenant_domain.is_some()
            || self.provider.is_some()
            || self.cname.is_some();
        if self.selectors.is_empty() && described && !presets_selectors {
            return Err(
                "provider and its parameters describe selectors: give at least one selector".into(),
            );
        }
        let given = !self.selectors.is_empty() || presets_selectors;
        let records = match (self.domain, configured) {
            (Some(domain), _) if given => Records {
                domains: vec![self.domain_given(domain)?],
            },
            (Some(domain), configured) => {
                let name = self.at("target", domain, normalise_name(domain, "domain"))?;
                match configured.and_then(|c| c.domain(&name)) {
                    Some(found) => Records {
                        domains: vec![found.clone()],
                    },
                    None => {
                        return Err(format!(
                            "no selectors for {name}: give a selector, or configure the domain"
                        ));
                    }
                }
            }
            (None, Some(configured)) => configured.clone(),
            (None, None) => return Err("give a DOMAIN with --selector, or --config.file".into()),
        };
        if records.domains.is_empty() {
            return Err("the config lists no domains".into());
        }
        Ok(records)
    }

    /// The domain and the records its selectors make.
    fn domain_given(&self, domain: &str) -> Result<Domain, String> {
        let name = self.at("target", domain, normalise_name(domain, "name"))?;
        // Parameters only mean something to a provider that takes them.
        let provider = self
            .provider
            .map(|p| self.at("provider", p, Provider::from_name(p)))
            .transpose()?;
        let params = Params {
            region: self
                .region
                .map(|r| self.at("region", r, ses::region(r)))
                .transpose()?,
            dkim_domain: None,
            account: self
                .account
                .map(|a| self.at("account", a, normalise_name(a, "account")))
                .transpose()?,
            tenant_domain: self
                .tenant_domain
                .map(|t| self.at("tenant_domain", t, normalise_name(t, "tenant_domain")))
                .transpose()?,
        };
        if let Some((param, owners)) = params.foreign_to(provider) {
            return Err(format!("{param} needs provider {owners}"));
        }
        let selectors: Vec<&str> = match (self.selectors.is_empty(), provider) {
            (true, Some(provider)) => provider.default_selectors().to_vec(),
            _ => self.selectors.clone(),
        };
        let mut records: Vec<Record> = Vec::with_capacity(selectors.len());
        for text in selectors {
            let selector = self.at("selector", text, parse_selector(text))?;
            if records.iter().any(|r| r.selector == selector) {
                return Err(format!(
                    "duplicate record: selector {selector:?} is listed twice for {name}"
                ));
            }
            self.at("selector", text, check_record_name(&selector, &name))?;
            let expected = match (provider, self.cname) {
                (Some(p), _) => p
                    .expected(&params, &selector, &name)
                    .map_err(|e| e.to_string())?,
                (None, Some(template)) => Expected::Cname(
                    self.at("cname", template, expand_cname(template, &selector, &name))?
                        .into(),
                ),
                (None, None) => Expected::Txt,
            };
            records.push(Record {
                selector,
                expected,
                from_ses: None,
                from_dmarc: false,
            });
        }
        Ok(Domain::new(name, records, provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        domain: Option<&'a str>,
        selectors: &[&'a str],
        provider: Option<&'a str>,
    ) -> Request<'a> {
        Request {
            domain,
            selectors: selectors.to_vec(),
            provider,
            ..Request::default()
        }
    }

    #[test]
    fn records_from_the_request() {
        let records = request(Some("Example.COM"), &["ABC"], Some("ses"))
            .records(None)
            .unwrap();
        assert_eq!(records.domains[0].name, "example.com");
        assert_eq!(
            records.domains[0].records[0].expected,
            Expected::Cname("abc.dkim.amazonses.com".into())
        );
        let mut regional = request(Some("example.com"), &["abc"], Some("ses"));
        regional.region = Some("eu-south-1");
        assert_eq!(
            regional.records(None).unwrap().domains[0].records[0].expected,
            Expected::Cname("abc.dkim.eu-south-1.amazonses.com".into())
        );
        let records = request(Some("example.org"), &["mail"], None)
            .records(None)
            .unwrap();
        assert_eq!(records.domains[0].records[0].expected, Expected::Txt);
    }

    #[test]
    fn configured_records_when_no_selector_is_given() {
        let configured = request(Some("example.com"), &["a", "b"], Some("ses"))
            .records(None)
            .unwrap();
        let records = request(Some("EXAMPLE.com."), &[], None)
            .records(Some(&configured))
            .unwrap();
        assert_eq!(records, configured);
        assert_eq!(
            request(None, &[], None).records(Some(&configured)).unwrap(),
            configured
        );
    }

    #[test]
    fn usage_errors() {
        let err = |r: Request<'_>| r.records(None).unwrap_err();
        assert!(err(request(None, &[], None)).contains("give a DOMAIN"));
        assert!(err(request(Some("example.com"), &[], None)).contains("give a selector"));
        assert!(err(request(Some("example.com"), &[], Some("ses"))).contains("at least one"));
        let e = err(request(Some("example.com"), &["a b"], Some("ses")));
        assert!(e.contains("invalid selector \"a b\""), "{e}");
        let e = err(request(Some("example.com"), &["a", "A"], Some("ses")));
        assert!(e.contains("listed twice"), "{e}");
        let e = err(request(Some("example.com"), &["s"], Some("postmark")));
        assert!(e.contains("unknown provider"), "{e}");
        let e = err(request(Some("example.com"), &["s"], Some("mailchimp")));
        assert!(e.contains("has selectors kN"), "{e}");
        let mut mars = request(Some("example.com"), &["s"], Some("ses"));
        mars.region = Some("mars-1");
        assert!(err(mars).contains("unknown region"));
        let e = err(request(Some("exa_mple..com"), &["s"], None));
        assert!(e.contains("invalid name"), "{e}");
        let e = err(request(Some("example.com"), &["s._domainkey"], None));
        assert!(e.contains("includes _domainkey"), "{e}");
    }
}
