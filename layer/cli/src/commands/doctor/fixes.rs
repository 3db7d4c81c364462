//! What a failed step means and the exact fix: Google's and AWS's errors mapped to their
//! likely cause.

use crossfed::google::{
    AttributeMapping, ConfigSource, ExternalAccountConfig, MappedAttributes, MappingError,
};
use crossfed::{Error, ErrorChain, Step};

use super::report::Check;

/// `iam.googleapis.com/projects/N/locations/L/workloadIdentityPools/P` of the configuration.
pub fn pool_path(config: &ExternalAccountConfig) -> String {
    let p = &config.provider;
    format!(
        "iam.{}/projects/{}/locations/{}/workloadIdentityPools/{}",
        config.universe_domain, p.project_number, p.location, p.pool_id
    )
}

/// The provider's id and flags for a `gcloud … providers` command.
pub fn gcloud_provider_flags(config: &ExternalAccountConfig) -> String {
    let p = &config.provider;
    format!(
        "{} --workload-identity-pool={} --location={} --project={}",
        p.provider_id, p.pool_id, p.location, p.project_number
    )
}

/// The fix for a `google.subject` over Google's 127 bytes: the assumed-role ARN without the
/// session, as `crossfed bootstrap` maps it.
fn shorter_subject(config: &ExternalAccountConfig) -> String {
    let role_arn = AttributeMapping::google_default_aws()
        .expression("attribute.aws_role")
        .unwrap_or_default()
        .to_string();
    format!(
        "Google limits google.subject to 127 bytes, and Lambda's session name (the function name, up to 64 characters) makes the whole ARN longer: map the role ARN without the session, e.g. `gcloud iam workload-identity-pools providers update-aws {} \"--attribute-mapping=google.subject={role_arn},attribute.aws_role={role_arn}\"` (keep the provider's other attributes; `crossfed bootstrap` writes this mapping)",
        gcloud_provider_flags(config)
    )
}

/// Step 3 failed: the mapping cannot map this caller (or exceeds Google's limits).
pub fn mapping_failure(e: &MappingError, config: &ExternalAccountConfig) -> Check {
    let fix = if e.expression == "google.subject" && e.message.contains("bytes") {
        shorter_subject(config)
    } else if e.message.contains("more than Google's") {
        "map fewer or shorter attributes: Google allows 50 custom attributes, 2048 characters per expression and 8 KB of mapped attributes".to_string()
    } else {
        "fix that mapping entry so it yields a string for assumed-role ARNs".to_string()
    };
    Check::fail(
        "attributes",
        format!("Google cannot map this caller: {e}"),
        fix,
    )
}

/// Step 1 failed: why and the fix.
pub fn config_failure(e: &Error, source: &ConfigSource, described: &str) -> Check {
    let message = ErrorChain(e).to_string();
    let fix = match (e, source) {
        (Error::InvalidConfig { field, .. }, _) if field == "audience" => {
            if message.contains("names a workload identity pool") {
                "the audience names the pool, not the provider: append /providers/PROVIDER_ID (the full provider name, e.g. //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER); `crossfed bootstrap` writes it".to_string()
            } else {
                "set audience to //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER".to_string()
            }
        }
        (Error::InvalidConfig { field, .. }, _) => format!(
            "correct `{field}` as described, or regenerate the file with `crossfed bootstrap` / `gcloud iam workload-identity-pools create-cred-config … --aws`"
        ),
        (_, ConfigSource::Ssm(name)) if message.contains("ParameterNotFound") => format!(
            "create it in this region: `aws ssm put-parameter --name={name} --type=String --value=file://cred-config.json` (`crossfed bootstrap` writes the file and the command), or fix the name/AWS_REGION"
        ),
        (_, ConfigSource::Ssm(name))
            if message.contains("AccessDenied") || message.contains("HTTP 403") =>
        {
            format!(
                "allow the caller ssm:GetParameter on {name} (and kms:Decrypt via SSM for a SecureString with a customer key)"
            )
        }
        (_, ConfigSource::Ssm(_)) if e.step() == Step::AwsIdentity => {
            "reading SSM needs AWS credentials: export them (or AWS_PROFILE) and AWS_REGION"
                .to_string()
        }
        (_, ConfigSource::File(path)) => {
            format!("check that {} exists and is readable", path.display())
        }
        _ => "see the message above".to_string(),
    };
    Check::fail("config", format!("{described}: {message}"), fix)
}

/// Step 4 failed: Google STS's answer mapped to its cause and fix.
pub fn sts_failure(e: &Error, config: &ExternalAccountConfig, mapped: &MappedAttributes) -> Check {
    let step = "sts";
    let Error::Google {
        code, description, ..
    } = e
    else {
        if e.step() == Step::AwsIdentity || e.step() == Step::SubjectToken {
            return Check::fail(
                step,
                e.to_string(),
                "AWS credentials are needed to sign the subject token: export them (or AWS_PROFILE) and AWS_REGION",
            );
        }
        return Check::fail(
            step,
            e.to_string(),
            "check network access to sts.googleapis.com",
        );
    };
    let d = description.to_ascii_lowercase();
    let provider = gcloud_provider_flags(config);
    let value = mapped
        .attributes
        .get("attribute.aws_role")
        .cloned()
        .unwrap_or_default();
    let (why, fix) = if d.contains("google.subject") && d.contains("exceeds") {
        (
            "the provider's mapping makes a google.subject longer than Google's 127 bytes"
                .to_string(),
            shorter_subject(config),
        )
    } else if d.contains("full resource name of the identity provider")
        || d.contains("invalid value for \"audience\"")
    {
        (
            "the audience names a pool, not a provider".to_string(),
            "append /providers/PROVIDER_ID to `audience` in the credential configuration"
                .to_string(),
        )
    } else if d.contains("attribute condition") || code == "unauthorized_client" {
        (
            "the provider's attribute condition rejected this caller".to_string(),
            format!(
                "admit attribute.aws_role '{value}': `gcloud iam workload-identity-pools providers update-aws {provider} --attribute-condition=\"attribute.aws_role in [..., '{value}']\"`; pass --attribute-condition/--fetch-provider to check it locally"
            ),
        )
    } else if d.contains("x-amz-date") || d.contains("expired") || d.contains("clock") {
        (
            "the signed request's time is too far from Google's: this machine's clock is off"
                .to_string(),
            "sync the clock (e.g. `sudo chronyc makestep` or `timedatectl set-ntp true`) and retry"
                .to_string(),
        )
    } else if code == "invalid_target" {
        (
            "the provider does not exist, is disabled or deleted, or the audience's project number is wrong".to_string(),
            format!("`gcloud iam workload-identity-pools providers describe {provider}` must show state ACTIVE"),
        )
    } else if d.contains("account") {
        (
            "the caller's AWS account is not the provider's".to_string(),
            "create a provider for this account (`providers create-aws --account-id=…`) or use credentials from the provider's account".to_string(),
        )
    } else if d.contains("signature") {
        (
            "AWS rejected the signed GetCallerIdentity request".to_string(),
            "refresh the AWS credentials (expired session token?) and check AWS_REGION".to_string(),
        )
    } else {
        (
            "Google STS refused the exchange".to_string(),
            "compare the audience, the provider's AWS account id and its mapping/condition with `crossfed doctor --fetch-provider`".to_string(),
        )
    };
    Check::fail(step, format!("{why}: {code}: {description}"), fix)
}

/// Step 5 failed: the binding or service account that is missing.
pub fn impersonation_failure(e: &Error, sa: &str, mapped: &MappedAttributes, pool: &str) -> Check {
    let (code, description) = match e {
        Error::Google {
            code, description, ..
        } => (code.as_str(), description.as_str()),
        _ => ("", ""),
    };
    let project = sa
        .split('@')
        .nth(1)
        .and_then(|d| d.strip_suffix(".iam.gserviceaccount.com"))
        .unwrap_or("PROJECT_ID");
    match code {
        "PERMISSION_DENIED" => {
            let member = mapped
                .principal_set(pool, "aws_role")
                .unwrap_or_else(|| mapped.principal(pool));
            Check::fail(
                "impersonation",
                format!("{sa} may not be impersonated by this caller: {description}"),
                format!(
                    "gcloud iam service-accounts add-iam-policy-binding {sa} --project={project} --role=roles/iam.workloadIdentityUser --member={member}"
                ),
            )
        }
        "NOT_FOUND" => Check::fail(
            "impersonation",
            format!("service account {sa} does not exist: {description}"),
            format!(
                "gcloud iam service-accounts create {} --project={project} (or fix service_account_impersonation_url)",
                sa.split('@').next().unwrap_or_default()
            ),
        ),
        _ => Check::fail(
            "impersonation",
            e.to_string(),
            "check the service account and the federated token's scope (cloud-platform)",
        ),
    }
}
