//! The credential configuration file, byte for byte as
//! `gcloud iam workload-identity-pools create-cred-config --aws` writes it.

use serde::Serialize;

/// The credential configuration as gcloud writes it (`create-cred-config --aws
/// [--enable-imdsv2] [--service-account=…] [--service-account-token-lifetime-seconds=…]`).
pub fn credential_config(
    audience: &str,
    service_account: Option<&str>,
    imdsv2: bool,
    lifetime_secs: Option<u64>,
) -> String {
    #[derive(Serialize)]
    struct Source {
        environment_id: &'static str,
        region_url: &'static str,
        url: &'static str,
        regional_cred_verification_url: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        imdsv2_session_token_url: Option<&'static str>,
    }
    #[derive(Serialize)]
    struct Lifetime {
        token_lifetime_seconds: u64,
    }
    #[derive(Serialize)]
    struct Config<'a> {
        universe_domain: &'static str,
        #[serde(rename = "type")]
        kind: &'static str,
        audience: &'a str,
        subject_token_type: &'static str,
        token_url: &'static str,
        credential_source: Source,
        #[serde(skip_serializing_if = "Option::is_none")]
        service_account_impersonation_url: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        service_account_impersonation: Option<Lifetime>,
        #[serde(skip_serializing_if = "Option::is_none")]
        token_info_url: Option<&'static str>,
    }
    let config = Config {
        universe_domain: "googleapis.com",
        kind: "external_account",
        audience,
        subject_token_type: "urn:ietf:params:aws:token-type:aws4_request",
        token_url: "https://sts.googleapis.com/v1/token",
        credential_source: Source {
            environment_id: "aws1",
            region_url: "http://169.254.169.254/latest/meta-data/placement/availability-zone",
            url: "http://169.254.169.254/latest/meta-data/iam/security-credentials",
            regional_cred_verification_url: "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            imdsv2_session_token_url: imdsv2.then_some("http://169.254.169.254/latest/api/token"),
        },
        service_account_impersonation_url: service_account.map(|sa| {
            format!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{sa}:generateAccessToken")
        }),
        service_account_impersonation: service_account
            .and(lifetime_secs)
            .map(|token_lifetime_seconds| Lifetime {
                token_lifetime_seconds,
            }),
        token_info_url: service_account
            .is_none()
            .then_some("https://sts.googleapis.com/v1/introspect"),
    };
    serde_json::to_string_pretty(&config).expect("a config serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../tests/fixtures/gcloud-cred-configs/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const AUDIENCE: &str = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/aws-lambda/providers/aws-111122223333";
    const SA: &str = "reader@proj.iam.gserviceaccount.com";

    #[test]
    fn credential_configs_equal_gclouds_byte_for_byte() {
        assert_eq!(
            credential_config(AUDIENCE, Some(SA), true, None),
            fixture("aws-imdsv2-impersonation.json")
        );
        assert_eq!(
            credential_config(AUDIENCE, Some(SA), false, Some(600)),
            fixture("aws-lifetime600-impersonation.json")
        );
        assert_eq!(
            credential_config(AUDIENCE, None, false, None),
            fixture("aws-direct.json")
        );
        // And crossfed itself accepts what bootstrap writes.
        let json = credential_config(AUDIENCE, Some(SA), false, None);
        let parsed = crossfed::google::ExternalAccountConfig::from_json(&json, false).unwrap();
        assert_eq!(parsed.impersonation.unwrap().service_account, SA);
    }
}
