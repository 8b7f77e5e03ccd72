//! The presets besides SES: SendGrid, Microsoft 365, Mailchimp, Mandrill, Brevo and Google
//! Workspace. Each is what its provider's setup page asks a customer to publish.

use super::{Expected, ExpectedError, Params};

/// SendGrid: `{selector}.domainkey.{account}.sendgrid.net` (account like `u1234.wl001`).
pub fn sendgrid(params: &Params, selector: &str) -> Result<Expected, ExpectedError> {
    let account = params
        .account
        .as_deref()
        .ok_or(ExpectedError::MissingParam(
            "provider sendgrid needs account: (like u1234.wl001, from SendGrid's DNS page)",
        ))?;
    Ok(Expected::Cname(
        format!("{selector}.domainkey.{account}.sendgrid.net").into(),
    ))
}

/// Microsoft 365: `{selector}-{domain_dashed}._domainkey.{tenant_domain}`.
pub fn microsoft365(
    params: &Params,
    selector: &str,
    domain: &str,
) -> Result<Expected, ExpectedError> {
    let tenant = params
        .tenant_domain
        .as_deref()
        .ok_or(ExpectedError::MissingParam(
            "provider microsoft365 needs tenant_domain: (like contoso.onmicrosoft.com, or \
             contoso.n-v1.dkim.mail.microsoft)",
        ))?;
    Ok(Expected::Cname(
        format!(
            "{selector}-{}._domainkey.{tenant}",
            domain.replace('.', "-")
        )
        .into(),
    ))
}

/// Mailchimp: `k{N}` points at `dkim{N}.mcsv.net`.
pub fn mailchimp(selector: &str) -> Result<Expected, ExpectedError> {
    let n = number(selector, "k", "mailchimp", "k2, k3")?;
    Ok(Expected::Cname(format!("dkim{n}.mcsv.net").into()))
}

/// Mandrill: `mte{N}` points at `dkim{N}.mandrillapp.com`.
pub fn mandrill(selector: &str) -> Result<Expected, ExpectedError> {
    let n = number(selector, "mte", "mandrill", "mte1, mte2")?;
    Ok(Expected::Cname(format!("dkim{n}.mandrillapp.com").into()))
}

/// Brevo: `brevo{N}` points at `b{N}.{domain_dashed}.dkim.brevo.com`, itself a CNAME to the key.
pub fn brevo(selector: &str, domain: &str) -> Result<Expected, ExpectedError> {
    let n = number(selector, "brevo", "brevo", "brevo1, brevo2")?;
    Ok(Expected::Cname(
        format!("b{n}.{}.dkim.brevo.com", domain.replace('.', "-")).into(),
    ))
}

/// The number a provider's selector ends in: `k2` → `2`.
fn number<'a>(
    selector: &'a str,
    prefix: &str,
    provider: &str,
    examples: &str,
) -> Result<&'a str, ExpectedError> {
    selector
        .strip_prefix(prefix)
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ExpectedError::UnknownSelector(format!(
                "provider {provider} has selectors {prefix}N ({examples}), not {selector:?}; \
                 list other records under records: with their cname"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let params = Params {
            account: Some("u1234.wl001".into()),
            tenant_domain: Some("contoso.onmicrosoft.com".into()),
            ..Params::default()
        };
        assert_eq!(
            sendgrid(&params, "s1"),
            Ok(Expected::Cname(
                "s1.domainkey.u1234.wl001.sendgrid.net".into()
            ))
        );
        assert_eq!(
            microsoft365(&params, "selector1", "mail.example.com"),
            Ok(Expected::Cname(
                "selector1-mail-example-com._domainkey.contoso.onmicrosoft.com".into()
            ))
        );
        assert_eq!(
            mailchimp("k3"),
            Ok(Expected::Cname("dkim3.mcsv.net".into()))
        );
        assert_eq!(
            mandrill("mte1"),
            Ok(Expected::Cname("dkim1.mandrillapp.com".into()))
        );
        assert_eq!(
            brevo("brevo2", "example.com"),
            Ok(Expected::Cname("b2.example-com.dkim.brevo.com".into()))
        );
        assert!(mailchimp("k").unwrap_err().to_string().contains("k2, k3"));
        assert!(matches!(
            sendgrid(&Params::default(), "s1"),
            Err(ExpectedError::MissingParam(m)) if m.contains("needs account")
        ));
    }
}
