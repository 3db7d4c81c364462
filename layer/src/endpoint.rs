//! Which endpoints the flow may talk to: Google endpoints on an allow-list over https,
//! AWS STS hosts for the signed verification URL, and loopback only on explicit opt-in.

use std::net::IpAddr;

use url::{Host, Url};

use crate::error::{Error, Result};

/// Name of the opt-in that allows plain-http loopback endpoints (local emulators).
pub const ALLOW_LOCAL_ENV: &str = "CROSSFED_ALLOW_LOCAL_ENDPOINTS";
/// Name of the out-of-band list (comma-separated) of universe domains besides
/// `googleapis.com` that a credential configuration may name.
pub const ALLOWED_UNIVERSES_ENV: &str = "CROSSFED_ALLOWED_UNIVERSES";
/// The default (public) Google universe.
pub(crate) const DEFAULT_UNIVERSE: &str = "googleapis.com";

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

/// Whether `host` is an endpoint of `service` in `universe`: the global host, a regional
/// endpoint (`sts.<location>.rep.<universe>`), and in the default universe also mTLS
/// (`<service>.mtls.googleapis.com`) and Private Service Connect
/// (`<service>-<endpoint>.p.googleapis.com`) hosts.
pub(crate) fn google_host_allowed(host: &str, service: GoogleService, universe: &str) -> bool {
    let name = service.host_label();
    let Some(rest) = host
        .strip_suffix(universe)
        .and_then(|r| r.strip_suffix('.'))
    else {
        return false;
    };
    if rest == name {
        return true;
    }
    if service == GoogleService::Sts
        && rest
            .strip_prefix("sts.")
            .and_then(|r| r.strip_suffix(".rep"))
            .is_some_and(is_label)
    {
        return true;
    }
    if universe != DEFAULT_UNIVERSE {
        return false;
    }
    rest.strip_prefix(name).is_some_and(|r| {
        r == ".mtls"
            || r.strip_prefix('-')
                .and_then(|r| r.strip_suffix(".p"))
                .is_some_and(is_label)
    })
}

fn expected_hosts(service: GoogleService, ud: &str) -> String {
    let name = service.host_label();
    let mut forms = vec![format!("{name}.{ud}")];
    if service == GoogleService::Sts {
        forms.push(format!("sts.<location>.rep.{ud}"));
    }
    if ud == DEFAULT_UNIVERSE {
        forms.push(format!("{name}.mtls.{ud}"));
        forms.push(format!("{name}-<endpoint>.p.{ud}"));
    }
    forms.join(" or ")
}

impl GoogleService {
    fn host_label(self) -> &'static str {
        match self {
            GoogleService::Sts => "sts",
            GoogleService::IamCredentials => "iamcredentials",
        }
    }
}

/// Checks that `universe` may be used: `googleapis.com` always, any other only when listed
/// out of band (`allowed`, from the builder or `CROSSFED_ALLOWED_UNIVERSES`), never because a
/// credential configuration names it.
pub(crate) fn check_universe(universe: &str, allowed: &[String]) -> Result<()> {
    let is_domain = universe.len() <= 253
        && universe.contains('.')
        && universe.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if !is_domain {
        return Err(Error::invalid(
            "universe_domain",
            format!("`{universe}` is not a lower-case domain name"),
        ));
    }
    if universe == DEFAULT_UNIVERSE || allowed.iter().any(|a| a == universe) {
        return Ok(());
    }
    Err(Error::invalid(
        "universe_domain",
        format!(
            "`{universe}` is not an allowed universe: only {DEFAULT_UNIVERSE} is allowed unless the deployment lists others in {ALLOWED_UNIVERSES_ENV} (comma-separated) or with the builder's `with_allowed_universes`; a credential configuration cannot allow its own universe"
        ),
    ))
}

/// Checks an AWS region name (`us-east-1`, `cn-north-1`, `us-gov-west-1`): it becomes part
/// of the signed STS host, so anything but lower-case letters, digits and inner hyphens is
/// refused (`x.evil.com#` would move the host).
pub(crate) fn check_region(field: &str, region: &str) -> Result<()> {
    let ok = (1..=32).contains(&region.len())
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && !region.ends_with('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "`{region}` is not an AWS region name (like us-east-1): set AWS_REGION to the region's code"
            ),
        ))
    }
}

/// Checks the base URL of a Google API a bearer token is sent to (`service`: `iam`,
/// `storage`, …): `https://<service>.<universe>` on port 443, or a loopback URL when
/// `allow_local` ([`ALLOW_LOCAL_ENV`]).
pub fn check_google_api(
    field: &str,
    raw: &str,
    service: &str,
    universe: &str,
    allow_local: bool,
) -> Result<Url> {
    let policy = EndpointPolicy {
        universe_domain: universe.to_ascii_lowercase(),
        allow_local,
    };
    let url = parse(field, raw)?;
    if policy.local_allowed(&url) {
        return Ok(url);
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let expected = format!("{service}.{}", policy.universe_domain);
    if url.scheme() != "https" || host != expected || url.port().is_some_and(|p| p != 443) {
        return Err(Error::invalid(
            field,
            format!(
                "`{raw}` is not an allowed Google endpoint: expected https://{expected}{}",
                policy.local_hint(&url)
            ),
        ));
    }
    Ok(url)
}

/// Parses `CROSSFED_ALLOWED_UNIVERSES`: comma-separated, blanks ignored, lower-cased.
pub(crate) fn parse_allowed_universes(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|u| u.trim().to_ascii_lowercase())
        .filter(|u| !u.is_empty())
        .collect()
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
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let allowed = google_host_allowed(&host, service, &self.universe_domain);
        let expected = expected_hosts(service, &self.universe_domain);
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
    fn google_apis_a_bearer_token_goes_to() {
        let ok = |raw: &str, local: bool| {
            check_google_api("f", raw, "iam", "googleapis.com", local).is_ok()
        };
        assert!(ok("https://iam.googleapis.com", false));
        assert!(ok("https://iam.googleapis.com:443/", false));
        assert!(!ok("http://iam.googleapis.com", false));
        assert!(!ok("https://iam.googleapis.com.evil.example", false));
        assert!(!ok("https://evil.example/iam.googleapis.com", false));
        assert!(!ok("https://iam.googleapis.com:8443", false));
        assert!(!ok("https://user@iam.googleapis.com", false));
        assert!(!ok("http://127.0.0.1:9000", false));
        assert!(ok("http://127.0.0.1:9000", true));
        assert!(!ok("http://10.0.0.1:9000", true));
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
    fn region_names() {
        for ok in ["us-east-1", "cn-north-1", "us-gov-west-1", "eusc-de-east-1"] {
            assert!(check_region("region", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "x.evil.com#",
            "US-EAST-1",
            "us-east-1/",
            "-a",
            "a-",
            "a b",
        ] {
            assert!(check_region("region", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_service_connect_and_mtls_only_in_the_default_universe() {
        let sts = GoogleService::Sts;
        let iam = GoogleService::IamCredentials;
        let d = DEFAULT_UNIVERSE;
        assert!(google_host_allowed("sts-abc1.p.googleapis.com", sts, d));
        assert!(google_host_allowed(
            "iamcredentials-abc1.p.googleapis.com",
            iam,
            d
        ));
        assert!(google_host_allowed("sts.mtls.googleapis.com", sts, d));
        assert!(google_host_allowed(
            "iamcredentials.mtls.googleapis.com",
            iam,
            d
        ));
        assert!(!google_host_allowed(
            "iamcredentials-abc1.p.googleapis.com",
            sts,
            d
        ));
        assert!(!google_host_allowed("sts-abc1.p.googleapis.com", iam, d));
        assert!(!google_host_allowed("sts-a.b.p.googleapis.com", sts, d));
        assert!(!google_host_allowed(
            "sts-abc1.p.other.goog",
            sts,
            "other.goog"
        ));
        assert!(!google_host_allowed(
            "sts.mtls.other.goog",
            sts,
            "other.goog"
        ));
        assert!(google_host_allowed("sts.other.goog", sts, "other.goog"));
        assert!(!google_host_allowed("xsts.googleapis.com", sts, d));
        assert!(!google_host_allowed("sts.googleapis.com.evil", sts, d));
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

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn any_service() -> impl Strategy<Value = GoogleService> {
        prop_oneof![
            Just(GoogleService::Sts),
            Just(GoogleService::IamCredentials)
        ]
    }

    proptest! {
        /// Whatever the host, an admitted one lies inside the universe.
        #[test]
        fn admitted_hosts_stay_in_the_universe(
            host in "[a-z0-9.-]{0,40}(\\.googleapis\\.com|\\.evil\\.com|googleapis\\.com)?",
            universe in prop_oneof![Just("googleapis.com".to_string()), "[a-z]{1,8}\\.goog"],
            service in any_service(),
        ) {
            if google_host_allowed(&host, service, &universe) {
                prop_assert!(host.ends_with(&format!(".{universe}")), "{host}");
                prop_assert!(!host.split('.').any(str::is_empty), "{host}");
            }
        }

        /// Private Service Connect and mTLS hosts are admitted in the default universe
        /// only, for their own service only.
        #[test]
        fn psc_names_are_admitted_per_service(name in "[a-z][a-z0-9-]{0,19}", service in any_service()) {
            let label = service.host_label();
            let psc = format!("{label}-{name}.p.googleapis.com");
            prop_assert!(google_host_allowed(&psc, service, DEFAULT_UNIVERSE));
            let other = match service {
                GoogleService::Sts => GoogleService::IamCredentials,
                GoogleService::IamCredentials => GoogleService::Sts,
            };
            prop_assert!(!google_host_allowed(&psc, other, DEFAULT_UNIVERSE));
            let foreign = format!("{label}-{name}.p.example.goog");
            prop_assert!(!google_host_allowed(&foreign, service, "example.goog"));
        }

        /// A URL the policy accepts (loopback off) is https, port 443, no user info, and
        /// its host is admitted; arbitrary input never panics.
        #[test]
        fn checked_urls_are_https_on_the_list(raw in "(https?://)?[a-z0-9@:.%/#?-]{0,60}", service in any_service()) {
            let policy = EndpointPolicy { universe_domain: DEFAULT_UNIVERSE.into(), allow_local: false };
            if let Ok(url) = policy.check_google("f", &raw, service) {
                prop_assert_eq!(url.scheme(), "https");
                prop_assert_eq!(url.port_or_known_default(), Some(443));
                prop_assert!(url.username().is_empty() && url.password().is_none());
                prop_assert!(google_host_allowed(url.host_str().unwrap(), service, DEFAULT_UNIVERSE));
            }
        }

        /// The configuration's universe is admitted only when listed out of band.
        #[test]
        fn universes_need_the_out_of_band_list(universe in "[a-z]{1,10}\\.[a-z]{2,6}", listed in any::<bool>()) {
            let allowed = if listed { vec![universe.clone()] } else { Vec::new() };
            let ok = check_universe(&universe, &allowed).is_ok();
            prop_assert_eq!(ok, listed || universe == DEFAULT_UNIVERSE);
        }
    }
}
