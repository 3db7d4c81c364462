//! `crossfed doctor`: runs the federation chain step by step and prints each step ✓/✗ with
//! the exact fix: configuration → AWS caller → attributes Google computes (the provider's
//! mapping and condition evaluated locally) → STS exchange → impersonation → a test call.

use std::fmt::Write as _;

use crossfed::google::{
    AttributeCondition, AttributeMapping, AwsAssertion, ConfigSource, Credentials,
    ExternalAccountConfig, MappedAttributes,
};
use crossfed::{Error, ErrorChain, Step};
use serde::Serialize;
use serde_json::Value;

use super::config::ConfigArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// The provider's attribute mapping (`google.subject=…,attribute.aws_role=…` or JSON);
    /// default: Google's default AWS mapping.
    #[arg(long)]
    attribute_mapping: Option<String>,
    /// The provider's attribute condition (CEL).
    #[arg(long)]
    attribute_condition: Option<String>,
    /// Read mapping, condition, state and AWS account from the provider (IAM API), with the
    /// access token in CLOUDSDK_AUTH_ACCESS_TOKEN (`gcloud auth print-access-token`).
    #[arg(long)]
    fetch_provider: bool,
    /// IAM API base URL for --fetch-provider.
    #[arg(long, default_value = "https://iam.googleapis.com")]
    iam_endpoint: String,
    /// Test call: list one object of this bucket (default: list one bucket of --project).
    #[arg(long)]
    test_bucket: Option<String>,
    /// Project whose buckets the test call lists.
    #[arg(long, env = "GOOGLE_CLOUD_PROJECT")]
    project: Option<String>,
    /// Print the report as JSON (for CI).
    #[arg(long)]
    json: bool,
}

/// Runs `crossfed doctor`; exit code 0 only when no step failed.
pub async fn main(args: Args) -> std::process::ExitCode {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let storage_endpoint = env("STORAGE_EMULATOR_HOST")
        .map(|h| {
            if h.contains("://") {
                h
            } else {
                format!("http://{h}")
            }
        })
        .unwrap_or_else(|| "https://storage.googleapis.com".into());
    let report = run(Options {
        source: args.config.source(),
        attribute_mapping: args.attribute_mapping,
        attribute_condition: args.attribute_condition,
        fetch_provider: args.fetch_provider.then(|| FetchProvider {
            iam_endpoint: args.iam_endpoint,
            access_token: env("CLOUDSDK_AUTH_ACCESS_TOKEN"),
        }),
        test_bucket: args.test_bucket,
        project: args.project,
        storage_endpoint,
        allow_local: env(crossfed::ALLOW_LOCAL_ENV).as_deref() == Some("1"),
    })
    .await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render_text(&report));
    }
    if report.ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Outcome of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One checked step.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Stable id: `config`, `aws`, `attributes`, `sts`, `impersonation`, `test_call`.
    pub step: &'static str,
    pub status: Status,
    /// One-line summary.
    pub summary: String,
    /// What was found (no secrets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// The exact fix, when the step failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(step: &'static str, summary: impl Into<String>) -> Self {
        Check {
            step,
            status: Status::Pass,
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    fn fail(step: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            step,
            status: Status::Fail,
            summary: summary.into(),
            details: Vec::new(),
            fix: Some(fix.into()),
        }
    }

    fn skip(step: &'static str, summary: impl Into<String>) -> Self {
        Check {
            step,
            status: Status::Skip,
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    fn detail(mut self, d: impl Into<String>) -> Self {
        self.details.push(d.into());
        self
    }
}

/// Everything `doctor` is told.
pub struct Options {
    /// The configuration source and what selected it (`--config-parameter`, an env var).
    pub source: Result<(ConfigSource, String), Error>,
    pub attribute_mapping: Option<String>,
    pub attribute_condition: Option<String>,
    /// Read mapping and condition from the provider (IAM API) with this access token.
    pub fetch_provider: Option<FetchProvider>,
    pub test_bucket: Option<String>,
    pub project: Option<String>,
    /// `https://storage.googleapis.com` or `STORAGE_EMULATOR_HOST`.
    pub storage_endpoint: String,
    pub allow_local: bool,
}

/// How to read the provider resource.
pub struct FetchProvider {
    pub iam_endpoint: String,
    pub access_token: Option<String>,
}

/// The full report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub steps: Vec<Check>,
}

const STEPS: [&str; 6] = [
    "config",
    "aws",
    "attributes",
    "sts",
    "impersonation",
    "test_call",
];

fn title(step: &str) -> &'static str {
    match step {
        "config" => "credential configuration",
        "aws" => "AWS credentials",
        "attributes" => "attribute mapping and condition",
        "sts" => "Google STS token exchange",
        "impersonation" => "service account impersonation",
        _ => "test call",
    }
}

/// Runs every step; a failed step skips the ones that depend on it.
pub async fn run(opts: Options) -> Report {
    let mut steps = Vec::new();
    chain(&opts, &mut steps).await;
    for step in STEPS {
        if !steps.iter().any(|c: &Check| c.step == step) {
            steps.push(Check::skip(step, "not run: an earlier step failed"));
        }
    }
    Report {
        ok: !steps.iter().any(|c| c.status == Status::Fail),
        steps,
    }
}

fn pool_path(config: &ExternalAccountConfig) -> String {
    let p = &config.provider;
    format!(
        "iam.{}/projects/{}/locations/{}/workloadIdentityPools/{}",
        config.universe_domain, p.project_number, p.location, p.pool_id
    )
}

fn gcloud_provider_flags(config: &ExternalAccountConfig) -> String {
    let p = &config.provider;
    format!(
        "{} --workload-identity-pool={} --location={} --project={}",
        p.provider_id, p.pool_id, p.location, p.project_number
    )
}

async fn chain(opts: &Options, steps: &mut Vec<Check>) {
    // 1. Configuration.
    let (source, origin) = match &opts.source {
        Ok(s) => s.clone(),
        Err(e) => {
            steps.push(Check::fail(
                "config",
                e.to_string(),
                "pass --config-parameter NAME or --config-file PATH, or set CROSSFED_CONFIG_PARAMETER or GOOGLE_APPLICATION_CREDENTIALS (`crossfed bootstrap` prints the configuration and the put-parameter command)",
            ));
            return;
        }
    };
    let described = match &source {
        ConfigSource::Ssm(name) => format!("SSM parameter {name} (from {origin})"),
        ConfigSource::File(path) => format!("file {} (from {origin})", path.display()),
        _ => format!("inline JSON (from {origin})"),
    };
    let creds = match Credentials::builder()
        .with_config_source(source.clone())
        .with_allow_local_endpoints(opts.allow_local)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            steps.push(config_failure(&e, &source, &described));
            return;
        }
    };
    let config = match creds.config().await {
        Ok(c) => c,
        Err(e) => {
            steps.push(config_failure(&e, &source, &described));
            return;
        }
    };
    let service_account = config
        .impersonation
        .as_ref()
        .map(|i| i.service_account.clone());
    steps.push(
        Check::pass("config", format!("{described} is valid"))
            .detail(format!("audience: {}", config.audience))
            .detail(match &service_account {
                Some(sa) => format!("service account: {sa}"),
                None => "no service account: direct resource access".to_string(),
            }),
    );

    // 2. AWS caller.
    let me = match creds.whoami().await {
        Ok(me) => me,
        Err(e) => {
            steps.push(Check::fail(
                "aws",
                e.to_string(),
                "give this shell AWS credentials of the function's role: e.g. `aws sts assume-role --role-arn ROLE_ARN --role-session-name doctor` and export the keys, or set AWS_PROFILE; check AWS_REGION",
            ));
            return;
        }
    };
    let assertion = AwsAssertion::from_arn(&me.aws_arn);
    let mut aws = Check::pass("aws", format!("caller {}", me.aws_arn))
        .detail(format!("account: {}", assertion.account));
    if !me.aws_arn.contains(":assumed-role/") {
        aws = aws.detail(
            "not an assumed role: Lambda runs as an assumed role, and role-based conditions and principal sets will not match this caller",
        );
    }
    steps.push(aws);

    // 3. Attributes.
    let pool = pool_path(&config);
    let mut mapping_origin = "--attribute-mapping".to_string();
    let mut mapping_text = opts.attribute_mapping.clone();
    let mut condition_text = opts.attribute_condition.clone();
    if let Some(fetch) = &opts.fetch_provider {
        match fetch_provider(fetch, &config).await {
            Ok(p) => {
                if let Some((summary, fix)) = p.problem(&assertion.account) {
                    steps.push(Check::fail("attributes", summary, fix));
                    return;
                }
                if mapping_text.is_none() {
                    mapping_text = p.mapping;
                    mapping_origin = "the provider".into();
                }
                if condition_text.is_none() {
                    condition_text = p.condition;
                }
            }
            Err((summary, fix)) => {
                steps.push(Check::fail("attributes", summary, fix));
                return;
            }
        }
    }
    let (mapping, mapping_note) = match &mapping_text {
        Some(text) => match AttributeMapping::parse(text) {
            Ok(m) => (m, format!("mapping from {mapping_origin}")),
            Err(e) => {
                steps.push(Check::fail(
                    "attributes",
                    format!("the attribute mapping does not parse: {e}"),
                    "pass the provider's mapping exactly as `gcloud iam workload-identity-pools providers describe … --format='value(attributeMapping)'` prints it, or as KEY=EXPR,KEY=EXPR",
                ));
                return;
            }
        },
        None => (
            AttributeMapping::google_default_aws(),
            "Google's default AWS mapping (pass --attribute-mapping or --fetch-provider if the provider uses another)".to_string(),
        ),
    };
    let mapped = match mapping.evaluate(&assertion) {
        Ok(m) => m,
        Err(e) => {
            steps.push(Check::fail(
                "attributes",
                format!("Google cannot map this caller: {e}"),
                "fix that mapping entry so it yields a string for assumed-role ARNs",
            ));
            return;
        }
    };
    let role_member = mapped.principal_set(&pool, "aws_role");
    let mut check = Check::pass("attributes", "attributes computed").detail(mapping_note);
    check = check.detail(format!("google.subject: {}", mapped.subject));
    for (k, v) in &mapped.attributes {
        check = check.detail(format!("{k}: {v}"));
    }
    check = check.detail(format!("principal: {}", mapped.principal(&pool)));
    if let Some(m) = &role_member {
        check = check.detail(format!("principal set: {m}"));
    }
    match &condition_text {
        None => {
            check.summary = "attributes computed; condition not checked (pass --attribute-condition or --fetch-provider)".into();
        }
        Some(text) => match AttributeCondition::parse(text) {
            Err(e) => {
                steps.push(Check::fail(
                    "attributes",
                    format!("the attribute condition does not parse: {e}"),
                    "pass the provider's condition exactly (CEL)",
                ));
                return;
            }
            Ok(cond) => match cond.admits(&assertion, &mapped) {
                Ok(true) => check.summary = "the attribute condition admits this caller".into(),
                Ok(false) | Err(_) => {
                    let why = match cond.admits(&assertion, &mapped) {
                        Err(e) => format!(" (it fails: {e})"),
                        _ => String::new(),
                    };
                    let value = mapped
                        .attributes
                        .get("attribute.aws_role")
                        .cloned()
                        .unwrap_or_else(|| mapped.subject.clone());
                    let mut c = Check::fail(
                        "attributes",
                        format!(
                            "the attribute condition rejects this caller{why}: Google STS will answer \"The given credential is rejected by the attribute condition\""
                        ),
                        format!(
                            "admit attribute.aws_role '{value}', e.g. `gcloud iam workload-identity-pools providers update-aws {} --attribute-condition=\"attribute.aws_role in [..., '{value}']\"` (or rerun `crossfed bootstrap`, whose condition admits every function's role)",
                            gcloud_provider_flags(&config)
                        ),
                    );
                    c.details = check.details;
                    c.details.push(format!("condition: {}", cond.source()));
                    steps.push(c);
                    return;
                }
            },
        },
    }
    steps.push(check);

    // 4 + 5. STS exchange and impersonation.
    let token = match creds.token().await {
        Ok(t) => {
            steps.push(Check::pass("sts", "Google STS issued a federated token"));
            steps.push(match &service_account {
                Some(sa) => Check::pass("impersonation", format!("impersonated {sa}")),
                None => Check::skip("impersonation", "no service account configured"),
            });
            t
        }
        Err(e) if e.step() == Step::Impersonation => {
            steps.push(Check::pass("sts", "Google STS issued a federated token"));
            steps.push(impersonation_failure(
                &e,
                service_account.as_deref().unwrap_or_default(),
                &mapped,
                &pool,
            ));
            return;
        }
        Err(e) => {
            steps.push(sts_failure(&e, &config, &mapped));
            return;
        }
    };

    // 6. Test call.
    steps.push(test_call(opts, token.value.expose(), service_account.as_deref()).await);
}

fn config_failure(e: &Error, source: &ConfigSource, described: &str) -> Check {
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

fn sts_failure(e: &Error, config: &ExternalAccountConfig, mapped: &MappedAttributes) -> Check {
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
    let (why, fix) = if d.contains("full resource name of the identity provider")
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

fn impersonation_failure(e: &Error, sa: &str, mapped: &MappedAttributes, pool: &str) -> Check {
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

async fn test_call(opts: &Options, token: &str, sa: Option<&str>) -> Check {
    let base = opts.storage_endpoint.trim_end_matches('/');
    let (url, what, grant) = match (&opts.test_bucket, &opts.project) {
        (Some(bucket), _) => (
            format!("{base}/storage/v1/b/{bucket}/o?maxResults=1"),
            format!("listed objects of gs://{bucket}"),
            format!(
                "gcloud storage buckets add-iam-policy-binding gs://{bucket} --member=serviceAccount:{} --role=roles/storage.objectViewer",
                sa.unwrap_or("SERVICE_ACCOUNT")
            ),
        ),
        (None, Some(project)) => (
            format!("{base}/storage/v1/b?project={project}&maxResults=1"),
            format!("listed buckets of project {project}"),
            format!(
                "gcloud projects add-iam-policy-binding {project} --member=serviceAccount:{} --role=roles/storage.bucketViewer --condition=None",
                sa.unwrap_or("SERVICE_ACCOUNT")
            ),
        ),
        (None, None) => {
            return Check::skip(
                "test_call",
                "no test call: pass --test-bucket BUCKET or --project (GOOGLE_CLOUD_PROJECT)",
            );
        }
    };
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await;
    match resp {
        Ok(r) if r.status().is_success() => {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let n = body["items"].as_array().map_or(0, Vec::len);
            Check::pass("test_call", format!("{what} ({n} shown)"))
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("").to_string();
            let fix = match status {
                401 => {
                    "the token was refused: check the scope (cloud-platform) and rerun".to_string()
                }
                403 => grant,
                404 => "the bucket or project does not exist: check the name".to_string(),
                _ => "retry later; check Cloud Storage status".to_string(),
            };
            Check::fail("test_call", format!("HTTP {status}: {message}"), fix)
        }
        Err(e) => Check::fail(
            "test_call",
            format!("Cloud Storage not reachable at {base}: {e}"),
            "check network access (or STORAGE_EMULATOR_HOST)",
        ),
    }
}

struct ProviderResource {
    mapping: Option<String>,
    condition: Option<String>,
    account: Option<String>,
    disabled: bool,
    state: String,
}

impl ProviderResource {
    fn problem(&self, caller_account: &str) -> Option<(String, String)> {
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

async fn fetch_provider(
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
    let url = format!(
        "{}/v1/projects/{}/locations/{}/workloadIdentityPools/{}/providers/{}",
        fetch.iam_endpoint.trim_end_matches('/'),
        p.project_number,
        p.location,
        p.pool_id,
        p.provider_id
    );
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| {
            (
                format!("reading the provider failed: {e}"),
                "check network access to iam.googleapis.com".to_string(),
            )
        })?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
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

/// Human-readable report.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.steps {
        let mark = match c.status {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Skip => "-",
        };
        let _ = writeln!(out, "{mark} {}: {}", title(c.step), c.summary);
        for d in &c.details {
            let _ = writeln!(out, "    {d}");
        }
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "    fix: {fix}");
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if report.ok {
            "All checks passed."
        } else {
            "Federation is broken at the first ✗ above."
        }
    );
    out
}
