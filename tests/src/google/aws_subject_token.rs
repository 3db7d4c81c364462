//! Google's AWS subject token (a serialized, signed `GetCallerIdentity`
//! request): parsing, static checks, and the default AWS attribute mapping.
//! See <https://cloud.google.com/iam/docs/workload-identity-federation-with-other-clouds>.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use url::Url;

use crate::time_format;

/// One header of the serialized request.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsHeader {
    pub key: String,
    pub value: String,
}

/// The decoded subject token.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsSubjectToken {
    pub url: String,
    pub method: String,
    pub headers: Vec<AwsHeader>,
    /// Some libraries include an (empty) body.
    #[serde(default)]
    pub body: Option<String>,
}

/// An OAuth-style error (`error`, `error_description`) as STS returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub error: String,
    pub description: String,
}

impl OAuthError {
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_request".into(),
            description: description.into(),
        }
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_grant".into(),
            description: description.into(),
        }
    }
}

/// Headers every subject token must carry (and sign).
const REQUIRED_HEADERS: [&str; 4] = [
    "authorization",
    "host",
    "x-amz-date",
    "x-goog-cloud-target-resource",
];

impl AwsSubjectToken {
    /// Decodes the `subject_token` form value: URL-encoded JSON, as Google
    /// documents it (plain JSON is rejected).
    pub fn decode(form_value: &str) -> Result<Self, OAuthError> {
        if form_value.trim_start().starts_with('{') {
            return Err(OAuthError::invalid_request(
                "Invalid value for \"subject_token\": the AWS subject token must be the \
                 URL-encoded JSON serialization of the GetCallerIdentity request, got raw JSON.",
            ));
        }
        let json: String = form_urlencoded::parse(format!("x={form_value}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .next()
            .unwrap_or_default();
        serde_json::from_str(&json).map_err(|e| {
            OAuthError::invalid_request(format!(
                "Invalid value for \"subject_token\": not a valid serialized AWS request ({e})."
            ))
        })
    }

    /// Value of a header (case-insensitive key).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.key.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Lower-cased header names, in order.
    pub fn header_names(&self) -> Vec<String> {
        self.headers.iter().map(|h| h.key.to_lowercase()).collect()
    }

    /// Everything that can be checked without calling AWS: method, URL,
    /// required and signed headers, credential scope, target resource and
    /// request age.
    pub fn check(&self, expected: &Expectations<'_>) -> Result<(), OAuthError> {
        if self.method != "POST" {
            return Err(OAuthError::invalid_grant(format!(
                "The AWS request method must be POST, got {:?}.",
                self.method
            )));
        }
        if self.body.as_deref().is_some_and(|b| !b.is_empty()) {
            return Err(OAuthError::invalid_grant(
                "The AWS GetCallerIdentity request must have an empty body.",
            ));
        }
        let url = Url::parse(&self.url).map_err(|e| {
            OAuthError::invalid_grant(format!("The AWS request URL is invalid: {e}."))
        })?;
        self.check_url(&url, expected.aws_sts_url)?;

        let mut names = self.header_names();
        names.sort();
        if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(OAuthError::invalid_grant(format!(
                "The AWS request has a duplicate \"{}\" header.",
                dup[0]
            )));
        }
        for name in REQUIRED_HEADERS {
            if self.header(name).is_none() {
                return Err(OAuthError::invalid_grant(format!(
                    "The AWS request is missing the required \"{name}\" header."
                )));
            }
        }
        let host = self.header("host").unwrap_or_default();
        let url_host = url.host_str().unwrap_or_default();
        let url_authority = match url.port() {
            Some(port) => format!("{url_host}:{port}"),
            None => url_host.to_string(),
        };
        if !host.eq_ignore_ascii_case(url_host) && !host.eq_ignore_ascii_case(&url_authority) {
            return Err(OAuthError::invalid_grant(format!(
                "The AWS request \"host\" header {host:?} does not match the URL host {url_authority:?}."
            )));
        }
        if self.header("x-goog-cloud-target-resource") != Some(expected.audience) {
            return Err(OAuthError::invalid_grant(
                "The \"x-goog-cloud-target-resource\" header of the AWS request does not match \
                 the audience (the workload identity pool provider resource name).",
            ));
        }
        let amz_date = self.header("x-amz-date").unwrap_or_default();
        let signed_at = time_format::parse_amz_date(amz_date).ok_or_else(|| {
            OAuthError::invalid_grant(format!(
                "The AWS request \"x-amz-date\" header {amz_date:?} is not in the \
                 YYYYMMDDTHHMMSSZ format."
            ))
        })?;
        let skew = match expected.now.duration_since(signed_at) {
            Ok(age) => age,
            Err(e) => e.duration(),
        };
        if skew > expected.max_skew {
            return Err(OAuthError::invalid_grant(format!(
                "The AWS request has expired or its signing time is in the future \
                 (x-amz-date {amz_date}, clock skew {}s exceeds {}s).",
                skew.as_secs(),
                expected.max_skew.as_secs()
            )));
        }
        self.check_authorization(amz_date)
    }

    fn check_url(&self, url: &Url, expected: &Url) -> Result<(), OAuthError> {
        let same_origin = url.scheme() == expected.scheme()
            && url.host_str() == expected.host_str()
            && url.port_or_known_default() == expected.port_or_known_default();
        if !same_origin || url.path() != "/" {
            return Err(OAuthError::invalid_grant(format!(
                "The AWS request URL {:?} is not the AWS STS GetCallerIdentity endpoint {:?}.",
                self.url,
                expected.as_str()
            )));
        }
        let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        pairs.sort();
        let want = [
            ("Action".to_string(), "GetCallerIdentity".to_string()),
            ("Version".to_string(), "2011-06-15".to_string()),
        ];
        if pairs != want {
            return Err(OAuthError::invalid_grant(format!(
                "The AWS request URL must have exactly the query \
                 Action=GetCallerIdentity&Version=2011-06-15, got {:?}.",
                url.query().unwrap_or_default()
            )));
        }
        Ok(())
    }

    fn check_authorization(&self, amz_date: &str) -> Result<(), OAuthError> {
        let authorization = self.header("authorization").unwrap_or_default();
        let parsed = parse_authorization(authorization).ok_or_else(|| {
            OAuthError::invalid_grant(
                "The AWS request \"Authorization\" header is not a valid AWS4-HMAC-SHA256 \
                 signature (expected `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., \
                 Signature=...`).",
            )
        })?;
        // Every header except Authorization itself must be signed, but for
        // x-goog-cloud-target-resource: it is for Google, not AWS, and Google's own Python and
        // Node libraries add it after signing (google-auth `aws.py`, google-auth-library
        // `awsclient.js`), which Google's STS accepts. Its value is checked all the same.
        for name in self.header_names() {
            if name != "authorization"
                && name != "x-goog-cloud-target-resource"
                && !parsed.signed_headers.contains(&name)
            {
                return Err(OAuthError::invalid_grant(format!(
                    "The AWS request header \"{name}\" is not listed in SignedHeaders."
                )));
            }
        }
        let scope: Vec<&str> = parsed.credential.split('/').collect();
        let date_ok = scope.get(1).is_some_and(|d| amz_date.starts_with(d));
        if scope.len() != 5 || !date_ok || scope[3] != "sts" || scope[4] != "aws4_request" {
            return Err(OAuthError::invalid_grant(
                "The AWS request credential scope must be \
                 <access key>/<x-amz-date date>/<region>/sts/aws4_request.",
            ));
        }
        Ok(())
    }
}

/// What the subject token must match.
#[derive(Clone, Debug)]
pub struct Expectations<'a> {
    pub aws_sts_url: &'a Url,
    pub audience: &'a str,
    pub now: SystemTime,
    pub max_skew: Duration,
}

/// The parts of an `AWS4-HMAC-SHA256` Authorization header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigV4Authorization {
    pub credential: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(value: &str) -> Option<SigV4Authorization> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, val) = part.trim().split_once('=')?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return None,
        };
        if slot.replace(val.to_string()).is_some() {
            return None;
        }
    }
    let (credential, signature) = (credential?, signature?);
    let valid_signature = signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit());
    let signed_headers: Vec<String> = signed?.split(';').map(str::to_string).collect();
    let valid = valid_signature && signed_headers.iter().all(|h| !h.is_empty());
    valid.then_some(SigV4Authorization {
        credential,
        signed_headers,
        signature,
    })
}

/// Google's default AWS mapping for `attribute.aws_role`: the role ARN for
/// assumed-role sessions, otherwise the ARN itself.
pub fn aws_role_attribute(arn: &str) -> String {
    if let Some((account, rest)) = arn.split_once(":assumed-role/")
        && let Some((role, _session)) = rest.split_once('/')
    {
        return format!("{account}:assumed-role/{role}");
    }
    arn.to_string()
}

/// Extracts `<Arn>` from a `GetCallerIdentityResponse` XML document.
pub fn caller_identity_arn(xml: &str) -> Option<String> {
    let start = xml.find("<Arn>")? + "<Arn>".len();
    let len = xml[start..].find("</Arn>")?;
    let arn = xml[start..start + len].trim();
    (!arn.is_empty()).then(|| arn.to_string())
}

/// Extracts `<Message>` from an AWS error XML document.
pub fn aws_error_message(xml: &str) -> Option<String> {
    let start = xml.find("<Message>")? + "<Message>".len();
    let len = xml[start..].find("</Message>")?;
    Some(xml[start..start + len].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIENCE: &str = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/my-pool/providers/my-aws";
    const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn token(now: SystemTime) -> AwsSubjectToken {
        let date = time_format::format_amz_date(now);
        AwsSubjectToken {
            url: "http://127.0.0.1:5055/?Action=GetCallerIdentity&Version=2011-06-15".into(),
            method: "POST".into(),
            headers: vec![
                header("host", "127.0.0.1:5055"),
                header("x-amz-date", &date),
                header("x-amz-security-token", "FwoG+/abc=="),
                header("x-goog-cloud-target-resource", AUDIENCE),
                header(
                    "Authorization",
                    &format!(
                        "AWS4-HMAC-SHA256 Credential=ASIAXXX/{}/us-east-1/sts/aws4_request, \
                         SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, \
                         Signature={SIG}",
                        &date[..8]
                    ),
                ),
            ],
            body: Some(String::new()),
        }
    }

    fn header(key: &str, value: &str) -> AwsHeader {
        AwsHeader {
            key: key.into(),
            value: value.into(),
        }
    }

    fn check(t: &AwsSubjectToken, now: SystemTime) -> Result<(), OAuthError> {
        let url = Url::parse("http://127.0.0.1:5055").unwrap();
        t.check(&Expectations {
            aws_sts_url: &url,
            audience: AUDIENCE,
            now,
            max_skew: Duration::from_secs(900),
        })
    }

    fn set(t: &mut AwsSubjectToken, key: &str, value: &str) {
        t.headers
            .iter_mut()
            .find(|h| h.key.eq_ignore_ascii_case(key))
            .unwrap()
            .value = value.into();
    }

    #[test]
    fn decode_requires_url_encoding() {
        let json = serde_json::json!({
            "url": "http://x/", "method": "POST",
            "headers": [{"key": "a", "value": "b+c/d=="}]
        })
        .to_string();
        let encoded: String = form_urlencoded::byte_serialize(json.as_bytes()).collect();
        let t = AwsSubjectToken::decode(&encoded).unwrap();
        assert_eq!(t.header("A"), Some("b+c/d=="));
        assert_eq!(
            AwsSubjectToken::decode(&json).unwrap_err().error,
            "invalid_request"
        );
        assert!(AwsSubjectToken::decode("%7Bnot-json").is_err());
        let unknown = r#"{"url":"u","method":"POST","headers":[],"extra":1}"#;
        let unknown: String = form_urlencoded::byte_serialize(unknown.as_bytes()).collect();
        assert!(AwsSubjectToken::decode(&unknown).is_err());
    }

    #[test]
    fn valid_token_passes() {
        let now = SystemTime::now();
        assert_eq!(check(&token(now), now), Ok(()));
        // Host without port is what some signers put in the header.
        let mut t = token(now);
        set(&mut t, "host", "127.0.0.1");
        assert_eq!(check(&t, now), Ok(()));
    }

    #[test]
    fn rejects_wrong_method_url_and_query() {
        let now = SystemTime::now();
        let mut t = token(now);
        t.method = "GET".into();
        assert_eq!(check(&t, now).unwrap_err().error, "invalid_grant");

        for url in [
            "http://127.0.0.1:5056/?Action=GetCallerIdentity&Version=2011-06-15",
            "http://evil.example/?Action=GetCallerIdentity&Version=2011-06-15",
            "http://127.0.0.1:5055/x?Action=GetCallerIdentity&Version=2011-06-15",
            "http://127.0.0.1:5055/?Action=AssumeRole&Version=2011-06-15",
            "http://127.0.0.1:5055/?Action=GetCallerIdentity",
        ] {
            let mut t = token(now);
            t.url = url.into();
            assert!(check(&t, now).is_err(), "{url}");
        }
    }

    #[test]
    fn rejects_missing_duplicate_or_unsigned_headers() {
        let now = SystemTime::now();
        for name in REQUIRED_HEADERS {
            let mut t = token(now);
            t.headers.retain(|h| !h.key.eq_ignore_ascii_case(name));
            let err = check(&t, now).unwrap_err();
            assert_eq!(err.error, "invalid_grant");
            assert!(err.description.contains(name), "{err:?}");
        }
        let mut t = token(now);
        t.headers.push(header("Host", "127.0.0.1:5055"));
        assert!(
            check(&t, now)
                .unwrap_err()
                .description
                .contains("duplicate")
        );

        let mut t = token(now);
        let auth = t
            .header("authorization")
            .unwrap()
            .replace(";x-amz-security-token", "");
        set(&mut t, "authorization", &auth);
        let err = check(&t, now).unwrap_err();
        assert!(err.description.contains("x-amz-security-token"), "{err:?}");
    }

    #[test]
    fn target_resource_may_be_unsigned_other_headers_may_not() {
        let now = SystemTime::now();
        let mut t = token(now);
        let auth = t
            .header("authorization")
            .unwrap()
            .replace(";x-goog-cloud-target-resource", "");
        set(&mut t, "authorization", &auth);
        assert!(
            check(&t, now).is_ok(),
            "as google-auth (Python, Node) sends it"
        );
        t.headers.push(header("x-amz-extra", "1"));
        let err = check(&t, now).unwrap_err();
        assert!(err.description.contains("x-amz-extra"), "{err:?}");
    }

    #[test]
    fn rejects_wrong_target_resource() {
        let now = SystemTime::now();
        let mut t = token(now);
        set(
            &mut t,
            "x-goog-cloud-target-resource",
            "//iam.googleapis.com/other",
        );
        let err = check(&t, now).unwrap_err();
        assert!(err.description.contains("x-goog-cloud-target-resource"));
    }

    #[test]
    fn rejects_clock_skew() {
        let now = SystemTime::now();
        let t = token(now);
        assert!(check(&t, now + Duration::from_secs(14 * 60)).is_ok());
        let err = check(&t, now + Duration::from_secs(16 * 60)).unwrap_err();
        assert!(err.description.contains("expired"), "{err:?}");
        assert!(check(&t, now - Duration::from_secs(16 * 60)).is_err());
        let mut t = token(now);
        set(&mut t, "x-amz-date", "2024-01-01T00:00:00Z");
        assert!(check(&t, now).is_err());
    }

    #[test]
    fn rejects_bad_authorization() {
        let now = SystemTime::now();
        let good = token(now).header("authorization").unwrap().to_string();
        for bad in [
            good.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
            good.replace("/sts/", "/s3/"),
            good.replace(SIG, "xyz"),
            good.replace("SignedHeaders=host;", "SignedHeaders="),
            format!("{good}, Signature={SIG}"),
        ] {
            let mut t = token(now);
            set(&mut t, "authorization", &bad);
            assert!(check(&t, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_authorization() {
        let a = parse_authorization(&format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sts/aws4_request,SignedHeaders=host;x-amz-date,Signature={SIG}"
        ))
        .unwrap();
        assert_eq!(a.credential, "AKID/20240101/us-east-1/sts/aws4_request");
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
    }

    #[test]
    fn maps_aws_role() {
        assert_eq!(
            aws_role_attribute("arn:aws:sts::123456789012:assumed-role/crossfed-lambda/session-1"),
            "arn:aws:sts::123456789012:assumed-role/crossfed-lambda"
        );
        assert_eq!(
            aws_role_attribute("arn:aws:iam::123456789012:user/alice"),
            "arn:aws:iam::123456789012:user/alice"
        );
    }

    #[test]
    fn parses_caller_identity_xml() {
        let xml = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>
    <UserId>AROA:s</UserId><Account>123456789012</Account>
  </GetCallerIdentityResult></GetCallerIdentityResponse>"#;
        assert_eq!(
            caller_identity_arn(xml).as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/r/s")
        );
        assert_eq!(caller_identity_arn("<Arn></Arn>"), None);
        assert_eq!(
            aws_error_message("<Error><Message>bad sig</Message></Error>").as_deref(),
            Some("bad sig")
        );
    }
}
