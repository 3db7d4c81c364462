//! Which endpoints the flow may talk to: Google endpoints on an allow-list over https,
//! AWS STS hosts for the signed verification URL, and loopback only on explicit opt-in.

use std::net::IpAddr;

use url::{Host, Url};

use crate::error::{Error, Result};

/// Name of the opt-in that allows plain-http loopback endpoints (local emulators).
pub const ALLOW_LOCAL_ENV: &str = "CROSSFED_ALLOW_LOCAL_ENDPOINTS";

/// Which Google service a URL must belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GoogleService {
    Sts,
    IamCredentials,
}

/// Endpoint policy: the universe domain and whether loopback endpoints are allowed.
#[derive(Clone, Debug)]
pub(crate) struct EndpointPolicy {
    pub universe_domain: String,
    pub allow_local: bool,
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn parse(field: &str, raw: &str) -> Result<Url> {
    let url = Url::parse(raw)
        .map_err(|e| Error::invalid(field, format!("`{raw}` is not a valid URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            field,
            "URLs with user information are not allowed",
        ));
    }
    Ok(url)
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl EndpointPolicy {
    fn local_allowed(&self, url: &Url) -> bool {
        self.allow_local && is_loopback(url) && matches!(url.scheme(), "http" | "https")
    }

    fn local_hint(&self, url: &Url) -> &'static str {
        if is_loopback(url) && !self.allow_local {
            " (loopback endpoints are allowed only with CROSSFED_ALLOW_LOCAL_ENDPOINTS=1)"
        } else {
            ""
        }
    }

    /// Checks a Google endpoint (`token_url`, `service_account_impersonation_url`).
    pub fn check_google(&self, field: &str, raw: &str, service: GoogleService) -> Result<Url> {
        let url = parse(field, raw)?;
        if self.local_allowed(&url) {
            return Ok(url);
        }
        let ud = self.universe_domain.as_str();
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let allowed = match service {
            GoogleService::Sts => {
                host == format!("sts.{ud}")
                    || host
                        .strip_prefix("sts.")
                        .and_then(|rest| rest.strip_suffix(&format!(".rep.{ud}")))
                        .is_some_and(is_label)
            }
            GoogleService::IamCredentials => host == format!("iamcredentials.{ud}"),
        };
        let expected = match service {
            GoogleService::Sts => format!("sts.{ud} or sts.<location>.rep.{ud}"),
            GoogleService::IamCredentials => format!("iamcredentials.{ud}"),
        };
        if url.scheme() != "https" || !allowed || url.port().is_some_and(|p| p != 443) {
            return Err(Error::invalid(
                field,
                format!(
                    "`{raw}` is not an allowed Google endpoint: expected https://{expected}{}",
                    self.local_hint(&url)
                ),
            ));
        }
        Ok(url)
    }

    /// Checks the AWS GetCallerIdentity URL template (may contain `{region}`); it is only signed.
    pub fn check_aws_verification(&self, field: &str, raw: &str) -> Result<()> {
        let url = parse(field, &raw.replace("{region}", "us-east-1"))?;
        if self.local_allowed(&url) {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let aws_sts = host
            .strip_prefix("sts.")
            .or_else(|| host.strip_prefix("sts-fips."))
            .is_some_and(|rest| {
                let suffixes = [
                    "amazonaws.com",
                    "amazonaws.com.cn",
                    "api.aws",
                    "c2s.ic.gov",
                    "sc2s.sgov.gov",
                ];
                suffixes.iter().any(|s| {
                    rest == *s || rest.strip_suffix(&format!(".{s}")).is_some_and(is_label)
                })
            });
        if url.scheme() != "https" || !aws_sts {
            return Err(Error::invalid(
                field,
                format!(
                    "`{raw}` is not an AWS STS endpoint: expected https://sts.{{region}}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15{}",
                    self.local_hint(&url)
                ),
            ));
        }
        Ok(())
    }

    /// Checks an instance metadata URL (`region_url`, `url`, `imdsv2_session_token_url`).
    pub fn check_imds(&self, field: &str, raw: &str) -> Result<Url> {
        let url = parse(field, raw)?;
        if self.local_allowed(&url) {
            return Ok(url);
        }
        let imds = match url.host() {
            Some(Host::Ipv4(ip)) => ip.octets() == [169, 254, 169, 254],
            Some(Host::Ipv6(ip)) => ip.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254],
            _ => false,
        };
        if url.scheme() != "http" || !imds {
            return Err(Error::invalid(
                field,
                format!(
                    "`{raw}` is not the EC2 instance metadata service: expected http://169.254.169.254/... or http://[fd00:ec2::254]/...{}",
                    self.local_hint(&url)
                ),
            ));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_local: bool) -> EndpointPolicy {
        EndpointPolicy {
            universe_domain: "googleapis.com".into(),
            allow_local,
        }
    }

    #[test]
    fn google_allow_list() {
        let p = policy(false);
        let sts = GoogleService::Sts;
        assert!(
            p.check_google("t", "https://sts.googleapis.com/v1/token", sts)
                .is_ok()
        );
        assert!(
            p.check_google("t", "https://sts.us-east7.rep.googleapis.com/v1/token", sts)
                .is_ok()
        );
        for bad in [
            "http://sts.googleapis.com/v1/token",
            "https://sts.googleapis.com.evil.com/v1/token",
            "https://evil.com/v1/token",
            "https://user:pw@sts.googleapis.com/v1/token",
            "https://sts.a.b.rep.googleapis.com/v1/token",
            "https://sts.googleapis.com:8443/v1/token",
            "http://127.0.0.1:8080/v1/token",
        ] {
            let err = p
                .check_google("token_url", bad, sts)
                .unwrap_err()
                .to_string();
            assert!(err.contains("token_url"), "{bad}: {err}");
        }
        let err = p
            .check_google("t", "http://127.0.0.1:1/x", sts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CROSSFED_ALLOW_LOCAL_ENDPOINTS=1"), "{err}");
        assert!(
            policy(true)
                .check_google("t", "http://127.0.0.1:1/x", sts)
                .is_ok()
        );
        assert!(
            policy(true)
                .check_google("t", "http://10.0.0.1/x", sts)
                .is_err()
        );
        let iam = GoogleService::IamCredentials;
        assert!(
            p.check_google("i", "https://iamcredentials.googleapis.com/v1/x", iam)
                .is_ok()
        );
        assert!(
            p.check_google("i", "https://sts.googleapis.com/v1/x", iam)
                .is_err()
        );
    }

    #[test]
    fn universe_domain_forms() {
        let p = EndpointPolicy {
            universe_domain: "example-universe.goog".into(),
            allow_local: false,
        };
        let url = "https://sts.example-universe.goog/v1/token";
        assert!(p.check_google("t", url, GoogleService::Sts).is_ok());
        let url = "https://sts.googleapis.com/v1/token";
        assert!(p.check_google("t", url, GoogleService::Sts).is_err());
    }

    #[test]
    fn aws_verification_hosts() {
        let p = policy(false);
        for ok in [
            "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "https://sts.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "https://sts.cn-north-1.amazonaws.com.cn?Action=GetCallerIdentity",
        ] {
            assert!(p.check_aws_verification("v", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://sts.{region}.amazonaws.com",
            "https://sts.evil.com",
            "https://sts.us-east-1.amazonaws.com.evil.com",
            "http://127.0.0.1:5055/?Action=GetCallerIdentity",
        ] {
            assert!(p.check_aws_verification("v", bad).is_err(), "{bad}");
        }
        assert!(
            policy(true)
                .check_aws_verification("v", "http://127.0.0.1:5055/?Action=GetCallerIdentity")
                .is_ok()
        );
    }

    #[test]
    fn imds_hosts() {
        let p = policy(false);
        assert!(
            p.check_imds(
                "u",
                "http://169.254.169.254/latest/meta-data/iam/security-credentials"
            )
            .is_ok()
        );
        assert!(
            p.check_imds("u", "http://[fd00:ec2::254]/latest/api/token")
                .is_ok()
        );
        assert!(p.check_imds("u", "http://example.com/latest").is_err());
    }
}
