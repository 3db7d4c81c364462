//! `--fetch-provider`: the provider's mapping, condition, state and AWS account, read from the
//! IAM API.

use crossfed::google::ExternalAccountConfig;
use serde_json::Value;

use super::http::get_json;
use super::options::FetchProvider;

/// What doctor reads from the provider resource.
pub struct ProviderResource {
    pub mapping: Option<String>,
    pub condition: Option<String>,
    pub account: Option<String>,
    pub disabled: bool,
    pub state: String,
}

impl ProviderResource {
    /// A disabled or deleted provider, or one of another AWS account: summary and fix.
    pub fn problem(&self, caller_account: &str) -> Option<(String, String)> {
        if self.disabled || self.state != "ACTIVE" {
            return Some((
                format!(
                    "the provider is {}",
                    if self.disabled {
                        "disabled".to_string()
                    } else {
                        self.state.clone()
                    }
                ),
                "gcloud iam workload-identity-pools providers undelete/update … --no-disabled"
                    .to_string(),
            ));
        }
        match &self.account {
            Some(a) if a != caller_account => Some((
                format!("the provider admits AWS account {a}, the caller is in {caller_account}"),
                "use credentials of that account, or create a provider for this one (`providers create-aws --account-id=…`)".to_string(),
            )),
            _ => None,
        }
    }
}

/// Reads the provider the configuration's audience names.
pub async fn fetch_provider(
    fetch: &FetchProvider,
    config: &ExternalAccountConfig,
) -> Result<ProviderResource, (String, String)> {
    let token = fetch.access_token.as_deref().ok_or_else(|| {
        (
            "--fetch-provider needs a Google access token of someone who may read the provider".to_string(),
            "export CLOUDSDK_AUTH_ACCESS_TOKEN=$(gcloud auth print-access-token), or pass --attribute-mapping and --attribute-condition".to_string(),
        )
    })?;
    let p = &config.provider;
    let base = crossfed::check_google_api(
        "--iam-endpoint",
        &fetch.iam_endpoint,
        "iam",
        &config.universe_domain,
        fetch.allow_local,
    )
    .map_err(|e| {
        (
            e.to_string(),
            format!(
                "pass --iam-endpoint https://iam.{} (the access token goes only to Google's IAM API)",
                config.universe_domain
            ),
        )
    })?;
    let url = format!(
        "{}/v1/projects/{}/locations/{}/workloadIdentityPools/{}/providers/{}",
        base.as_str().trim_end_matches('/'),
        p.project_number,
        p.location,
        p.pool_id,
        p.provider_id
    );
    let (status, body) = get_json(&url, token).await.map_err(|e| {
        (
            format!("reading the provider failed: {e}"),
            "check network access to iam.googleapis.com".to_string(),
        )
    })?;
    if status != 200 {
        let message = body["error"]["message"].as_str().unwrap_or("").to_string();
        let fix = match status {
            404 => format!(
                "the audience names a provider that does not exist: `gcloud iam workload-identity-pools providers list --workload-identity-pool={} --location={} --project={}`",
                p.pool_id, p.location, p.project_number
            ),
            401 | 403 => "the access token may not read the provider (needs iam.workloadIdentityPoolProviders.get)".to_string(),
            _ => "retry later".to_string(),
        };
        return Err((
            format!("reading the provider: HTTP {status}: {message}"),
            fix,
        ));
    }
    let mapping = body["attributeMapping"]
        .as_object()
        .map(|m| Value::Object(m.clone()).to_string());
    Ok(ProviderResource {
        mapping,
        condition: body["attributeCondition"].as_str().map(str::to_string),
        account: body["aws"]["accountId"].as_str().map(str::to_string),
        disabled: body["disabled"].as_bool().unwrap_or(false),
        state: body["state"].as_str().unwrap_or("ACTIVE").to_string(),
    })
}
