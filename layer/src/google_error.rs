//! Google's error bodies (OAuth-style from STS, `google.rpc.Status`-style from IAM) turned
//! into typed errors with a hint for the usual misconfigurations.

use serde::Deserialize;

use crate::error::{Error, Step};

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct RpcEnvelope {
    error: RpcStatus,
}

#[derive(Deserialize)]
struct RpcStatus {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

fn hint(step: Step, code: &str, description: &str) -> Option<String> {
    let d = description.to_ascii_lowercase();
    let h = if d.contains("x-goog-cloud-target-resource")
        || d.contains("missing") && d.contains("header")
    {
        "the signed GetCallerIdentity request lacks a required header; the x-goog-cloud-target-resource header must equal the audience"
    } else if d.contains("expired")
        || d.contains("clock")
        || d.contains("skew")
        || d.contains("x-amz-date")
    {
        "the signed request is too old or from the future: check the clock of this machine (NTP)"
    } else if d.contains("attribute condition") || code == "unauthorized_client" {
        "the workload identity provider's attribute condition rejected this AWS role, or the provider is disabled: compare the condition with `crossfed whoami`"
    } else if code == "invalid_target" || d.contains("audience") {
        "the `audience` in the credential configuration must be the full provider name //iam.googleapis.com/projects/<NUMBER>/locations/global/workloadIdentityPools/<POOL>/providers/<PROVIDER> of an enabled provider"
    } else if d.contains("signature") {
        "AWS rejected the signed GetCallerIdentity request: the AWS credentials are invalid or expired, or the provider's AWS account id does not match"
    } else if code == "PERMISSION_DENIED" && step == Step::Impersonation {
        "grant roles/iam.workloadIdentityUser on the service account to the principal set of this AWS role (`crossfed whoami` prints it)"
    } else if code == "PERMISSION_DENIED" && step == Step::IdToken {
        "grant roles/iam.serviceAccountOpenIdTokenCreator on the service account to the calling principal"
    } else if code == "UNAUTHENTICATED" {
        "the federated token was not accepted; it may have expired"
    } else if code == "NOT_FOUND" && matches!(step, Step::Impersonation | Step::IdToken) {
        "the service account in service_account_impersonation_url does not exist"
    } else if code == "invalid_grant" {
        "check the audience, the provider's AWS account id and its attribute mapping/condition"
    } else {
        return None;
    };
    Some(h.to_string())
}

/// Builds the typed error for a non-success Google response.
pub(crate) fn from_response(step: Step, status: u16, body: &str) -> Error {
    let (code, description) = if let Ok(e) = serde_json::from_str::<OAuthError>(body) {
        (e.error, e.error_description)
    } else if let Ok(e) = serde_json::from_str::<RpcEnvelope>(body) {
        (e.error.status, e.error.message)
    } else {
        let snippet: String = body.chars().take(200).collect();
        (format!("HTTP {status}"), snippet)
    };
    let hint = hint(step, &code, &description);
    Error::Google {
        step,
        status,
        code,
        description,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_with_hint() {
        let e = from_response(
            Step::Sts,
            400,
            r#"{"error":"invalid_grant","error_description":"The audience in the request does not match"}"#,
        );
        let msg = e.to_string();
        assert!(
            msg.contains("invalid_grant") && msg.contains("does not match"),
            "{msg}"
        );
        assert!(msg.contains("Hint:") && msg.contains("audience"), "{msg}");
        assert!(!e.is_transient());
    }

    #[test]
    fn rpc_error_permission_denied() {
        let body = r#"{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied","status":"PERMISSION_DENIED"}}"#;
        let msg = from_response(Step::Impersonation, 403, body).to_string();
        assert!(
            msg.contains("PERMISSION_DENIED") && msg.contains("workloadIdentityUser"),
            "{msg}"
        );
    }

    #[test]
    fn unparseable_body_and_5xx_is_transient() {
        let e = from_response(Step::Sts, 503, "<html>oops</html>");
        assert!(e.is_transient());
        assert!(e.to_string().contains("HTTP 503"));
    }
}
