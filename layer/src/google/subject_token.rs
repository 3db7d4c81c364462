//! The AWS subject token: a SigV4-signed `GetCallerIdentity` request that Google STS replays
//! to AWS to learn who the caller is. It is only signed here, never sent.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde::Serialize;
use url::Url;

use crate::error::{Error, Result, Step};
use crate::secret::Secret;

const TARGET_HEADER: &str = "x-goog-cloud-target-resource";

/// DNS suffix of the AWS partition a region belongs to.
pub(crate) fn partition_dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else if region.starts_with("eusc-") {
        "amazonaws.eu"
    } else {
        "amazonaws.com"
    }
}

/// Fills `{region}` into the verification URL template, moving the standard
/// `*.amazonaws.com` host into the region's partition (e.g. `amazonaws.com.cn` for `cn-*`).
pub(crate) fn verification_url(template: &str, region: &str) -> Result<Url> {
    let filled = template.replace("{region}", region);
    let mut url = Url::parse(&filled).map_err(|e| {
        Error::invalid(
            "credential_source.regional_cred_verification_url",
            format!("`{filled}` is not a valid URL ({e})"),
        )
    })?;
    let suffix = partition_dns_suffix(region);
    if let Some(host) = url.host_str().map(str::to_string)
        && suffix != "amazonaws.com"
        && let Some(prefix) = host.strip_suffix(".amazonaws.com")
    {
        let _ = url.set_host(Some(&format!("{prefix}.{suffix}")));
    }
    Ok(url)
}

#[derive(Serialize)]
struct HeaderEntry<'a> {
    key: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct SubjectToken<'a> {
    url: &'a str,
    method: &'static str,
    headers: Vec<HeaderEntry<'a>>,
}

/// Signs `POST <verification url>` for `audience` and serialises it as Google documents:
/// URL-encoded JSON with `url`, `method` and a `headers` list of `{key, value}`.
pub(crate) fn build(
    credentials: &Credentials,
    region: &str,
    template: &str,
    audience: &str,
    now: SystemTime,
) -> Result<Secret> {
    crate::endpoint::check_region("region", region)?;
    let url = verification_url(template, region)?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => {
            return Err(Error::invalid(
                "credential_source.regional_cred_verification_url",
                "has no host",
            ));
        }
    };
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| {
            Error::failed_with(Step::SubjectToken, false, "invalid signing parameters", e)
        })?
        .into();
    let headers = [("host", host.as_str()), (TARGET_HEADER, audience)];
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| Error::failed_with(Step::SubjectToken, false, "cannot sign the request", e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| Error::failed_with(Step::SubjectToken, false, "SigV4 signing failed", e))?
        .into_parts();

    let mut entries: Vec<HeaderEntry<'_>> = Vec::with_capacity(5);
    let signed: Vec<(&str, &str)> = instructions.headers().collect();
    let get = |name: &str| {
        signed
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    let authorization = get("authorization").ok_or_else(|| {
        Error::failed(
            Step::SubjectToken,
            false,
            "SigV4 produced no Authorization header",
        )
    })?;
    entries.push(HeaderEntry {
        key: "Authorization",
        value: authorization,
    });
    entries.push(HeaderEntry {
        key: "host",
        value: &host,
    });
    if let Some(date) = get("x-amz-date") {
        entries.push(HeaderEntry {
            key: "x-amz-date",
            value: date,
        });
    }
    if let Some(token) = get("x-amz-security-token") {
        entries.push(HeaderEntry {
            key: "x-amz-security-token",
            value: token,
        });
    }
    entries.push(HeaderEntry {
        key: TARGET_HEADER,
        value: audience,
    });
    let json = serde_json::to_string(&SubjectToken {
        url: url.as_str(),
        method: "POST",
        headers: entries,
    })
    .map_err(|e| Error::failed_with(Step::SubjectToken, false, "cannot serialise", e))?;
    Ok(Secret::new(
        percent_encoding::utf8_percent_encode(&json, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn decode(token: &Secret) -> serde_json::Value {
        let json = percent_encoding::percent_decode_str(token.expose())
            .decode_utf8()
            .unwrap();
        serde_json::from_str(&json).unwrap()
    }

    fn header<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
        v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == key)
            .and_then(|h| h["value"].as_str())
    }

    const AUD: &str =
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/a";
    const TEMPLATE: &str =
        "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";

    #[test]
    fn signs_all_required_headers() {
        let creds = Credentials::new("ASIAEXAMPLE", "secret", Some("session".into()), None, "t");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = build(&creds, "eu-west-1", TEMPLATE, AUD, now).unwrap();
        let v = decode(&token);
        assert_eq!(v["method"], "POST");
        assert_eq!(
            v["url"],
            "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
        );
        assert_eq!(header(&v, "host"), Some("sts.eu-west-1.amazonaws.com"));
        assert_eq!(header(&v, "x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(header(&v, "x-amz-security-token"), Some("session"));
        assert_eq!(header(&v, TARGET_HEADER), Some(AUD));
        let auth = header(&v, "Authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20231114/eu-west-1/sts/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains(
                "SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource"
            ),
            "{auth}"
        );
        assert!(format!("{token:?}").contains("redacted"));
    }

    #[test]
    fn signature_depends_on_the_audience() {
        let creds = Credentials::new("AKIAEXAMPLE", "secret", None, None, "t");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let a = decode(&build(&creds, "us-east-1", TEMPLATE, AUD, now).unwrap());
        let b = decode(
            &build(
                &creds,
                "us-east-1",
                TEMPLATE,
                "//iam.googleapis.com/other",
                now,
            )
            .unwrap(),
        );
        assert_ne!(header(&a, "Authorization"), header(&b, "Authorization"));
        assert_eq!(header(&a, "x-amz-security-token"), None);
    }

    #[test]
    fn partition_aware_hosts() {
        assert_eq!(
            verification_url(TEMPLATE, "cn-north-1").unwrap().host_str(),
            Some("sts.cn-north-1.amazonaws.com.cn")
        );
        assert_eq!(
            verification_url(TEMPLATE, "us-gov-west-1")
                .unwrap()
                .host_str(),
            Some("sts.us-gov-west-1.amazonaws.com")
        );
        assert_eq!(
            verification_url(TEMPLATE, "us-iso-east-1")
                .unwrap()
                .host_str(),
            Some("sts.us-iso-east-1.c2s.ic.gov")
        );
        let local = verification_url(
            "http://127.0.0.1:5055/?Action=GetCallerIdentity",
            "cn-north-1",
        )
        .unwrap();
        assert_eq!(local.host_str(), Some("127.0.0.1"));
    }
}
