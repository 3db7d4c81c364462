//! Steps 1–5 of the chain, one function each: the state the next step needs with the passed
//! check, or the failed check (with its fix).

use std::sync::Arc;

use crossfed::google::{
    AttributeCondition, AttributeMapping, AwsAssertion, ConfigSource, Credentials,
    ExternalAccountConfig, MappedAttributes,
};
use crossfed::{Step, Token};

use super::fixes::{
    config_failure, gcloud_provider_flags, impersonation_failure, mapping_failure, pool_path,
    sts_failure,
};
use super::options::Options;
use super::provider::fetch_provider;
use super::report::Check;

/// A step's outcome: the next state and the passed check, or the failed check.
pub type StepResult<T> = Result<(T, Check), Check>;

/// After step 1: the credentials and their configuration.
pub struct Loaded {
    pub creds: Credentials,
    pub config: Arc<ExternalAccountConfig>,
    pub service_account: Option<String>,
}

/// After step 3: what Google computes for the caller.
pub struct Attributes {
    pub mapped: MappedAttributes,
    /// `iam.googleapis.com/projects/…/workloadIdentityPools/POOL`.
    pub pool: String,
}

/// Step 1: The credential configuration: found, readable and valid.
pub async fn configuration(opts: &Options) -> StepResult<Loaded> {
    let (source, origin) = opts.source.as_ref().map_err(|e| {
        Check::fail(
            "config",
            e.to_string(),
            "pass --config-parameter NAME or --config-file PATH, or set CROSSFED_CONFIG_PARAMETER or GOOGLE_APPLICATION_CREDENTIALS (`crossfed bootstrap` prints the configuration and the put-parameter command)",
        )
    })?;
    let described = match source {
        ConfigSource::Ssm(name) => format!("SSM parameter {name} (from {origin})"),
        ConfigSource::File(path) => format!("file {} (from {origin})", path.display()),
        _ => format!("inline JSON (from {origin})"),
    };
    let creds = Credentials::builder()
        .with_config_source(source.clone())
        .with_allow_local_endpoints(opts.allow_local)
        .build()
        .map_err(|e| config_failure(&e, source, &described))?;
    let config = creds
        .config()
        .await
        .map_err(|e| config_failure(&e, source, &described))?;
    let service_account = config
        .impersonation
        .as_ref()
        .map(|i| i.service_account.clone());
    let check = Check::pass("config", format!("{described} is valid"))
        .detail(format!("audience: {}", config.audience))
        .detail(match &service_account {
            Some(sa) => format!("service account: {sa}"),
            None => "no service account: direct resource access".to_string(),
        });
    Ok((
        Loaded {
            creds,
            config,
            service_account,
        },
        check,
    ))
}

/// Step 2: The AWS caller (GetCallerIdentity).
pub async fn aws_caller(loaded: &Loaded) -> StepResult<AwsAssertion> {
    let arn = loaded.creds.caller_arn().await.map_err(|e| {
        Check::fail(
            "aws",
            e.to_string(),
            "give this shell AWS credentials of the function's role: e.g. `aws sts assume-role --role-arn ROLE_ARN --role-session-name doctor` and export the keys, or set AWS_PROFILE; check AWS_REGION",
        )
    })?;
    let assertion = AwsAssertion::from_arn(&arn);
    let mut check = Check::pass("aws", format!("caller {arn}"))
        .detail(format!("account: {}", assertion.account));
    if !arn.contains(":assumed-role/") {
        check = check.detail(
            "not an assumed role: Lambda runs as an assumed role, and role-based conditions and principal sets will not match this caller",
        );
    }
    Ok((assertion, check))
}

/// The mapping and condition to evaluate, and where the mapping came from.
struct ProviderSettings {
    mapping: Option<String>,
    mapping_origin: &'static str,
    condition: Option<String>,
}

/// The flags, completed from the provider resource with `--fetch-provider`.
async fn provider_settings(
    opts: &Options,
    config: &ExternalAccountConfig,
    caller: &AwsAssertion,
) -> Result<ProviderSettings, Check> {
    let mut settings = ProviderSettings {
        mapping: opts.attribute_mapping.clone(),
        mapping_origin: "--attribute-mapping",
        condition: opts.attribute_condition.clone(),
    };
    let Some(fetch) = &opts.fetch_provider else {
        return Ok(settings);
    };
    let p = fetch_provider(fetch, config)
        .await
        .map_err(|(summary, fix)| Check::fail("attributes", summary, fix))?;
    if let Some((summary, fix)) = p.problem(&caller.account) {
        return Err(Check::fail("attributes", summary, fix));
    }
    if settings.mapping.is_none() {
        settings.mapping = p.mapping;
        settings.mapping_origin = "the provider";
    }
    if settings.condition.is_none() {
        settings.condition = p.condition;
    }
    Ok(settings)
}

/// The mapping to evaluate and a note saying where it came from.
fn mapping(settings: &ProviderSettings) -> Result<(AttributeMapping, String), Check> {
    match &settings.mapping {
        Some(text) => match AttributeMapping::parse(text) {
            Ok(m) => Ok((m, format!("mapping from {}", settings.mapping_origin))),
            Err(e) => Err(Check::fail(
                "attributes",
                format!("the attribute mapping does not parse: {e}"),
                "pass the provider's mapping exactly as `gcloud iam workload-identity-pools providers describe … --format='value(attributeMapping)'` prints it, or as KEY=EXPR,KEY=EXPR",
            )),
        },
        None => Ok((
            AttributeMapping::google_default_aws(),
            "Google's default AWS mapping (pass --attribute-mapping or --fetch-provider if the provider uses another)".to_string(),
        )),
    }
}

/// Step 3: The attributes Google computes for the caller, and the condition's verdict on them.
pub async fn attributes(
    opts: &Options,
    loaded: &Loaded,
    caller: &AwsAssertion,
) -> StepResult<Attributes> {
    let config = &loaded.config;
    let pool = pool_path(config);
    let settings = provider_settings(opts, config, caller).await?;
    let (mapping, mapping_note) = mapping(&settings)?;
    let mapped = mapping
        .evaluate(caller)
        .map_err(|e| mapping_failure(&e, config))?;
    let mut check = Check::pass("attributes", "attributes computed").detail(mapping_note);
    check = check.detail(format!("google.subject: {}", mapped.subject));
    for (k, v) in &mapped.attributes {
        check = check.detail(format!("{k}: {v}"));
    }
    check = check.detail(format!("principal: {}", mapped.principal(&pool)));
    if let Some(m) = &mapped.principal_set(&pool, "aws_role") {
        check = check.detail(format!("principal set: {m}"));
    }
    let check = match &settings.condition {
        None => {
            check.summary = "attributes computed; condition not checked (pass --attribute-condition or --fetch-provider)".into();
            check
        }
        Some(text) => condition_verdict(text, check, caller, &mapped, config)?,
    };
    Ok((Attributes { mapped, pool }, check))
}

/// The condition admits the caller (the passed check), or the failed check with the value
/// to admit.
fn condition_verdict(
    text: &str,
    mut check: Check,
    caller: &AwsAssertion,
    mapped: &MappedAttributes,
    config: &ExternalAccountConfig,
) -> Result<Check, Check> {
    let cond = AttributeCondition::parse(text).map_err(|e| {
        Check::fail(
            "attributes",
            format!("the attribute condition does not parse: {e}"),
            "pass the provider's condition exactly (CEL)",
        )
    })?;
    let why = match cond.admits(caller, mapped) {
        Ok(true) => {
            check.summary = "the attribute condition admits this caller".into();
            return Ok(check);
        }
        Err(e) => format!(" (it fails: {e})"),
        Ok(false) => String::new(),
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
            gcloud_provider_flags(config)
        ),
    );
    c.details = check.details;
    c.details.push(format!("condition: {}", cond.source()));
    Err(c)
}

/// Step 4: The STS exchange, judged from the outcome of the whole token request (an
/// impersonation failure means the exchange itself succeeded).
pub fn sts(
    exchange: &crossfed::Result<Token>,
    loaded: &Loaded,
    attributes: &Attributes,
) -> StepResult<()> {
    match exchange {
        Err(e) if e.step() != Step::Impersonation => {
            Err(sts_failure(e, &loaded.config, &attributes.mapped))
        }
        _ => Ok((
            (),
            Check::pass("sts", "Google STS issued a federated token"),
        )),
    }
}

/// Step 5: Impersonation of the configured service account (skipped without one).
pub fn impersonation(
    exchange: crossfed::Result<Token>,
    loaded: &Loaded,
    attributes: &Attributes,
) -> StepResult<Token> {
    let sa = loaded.service_account.as_deref();
    match exchange {
        Ok(token) => {
            let check = match sa {
                Some(sa) => Check::pass("impersonation", format!("impersonated {sa}")),
                None => Check::skip("impersonation", "no service account configured"),
            };
            Ok((token, check))
        }
        Err(e) => Err(impersonation_failure(
            &e,
            sa.unwrap_or_default(),
            &attributes.mapped,
            &attributes.pool,
        )),
    }
}

/// Keeps a step's check; the next state when it passed.
pub fn record<T>(steps: &mut Vec<Check>, outcome: StepResult<T>) -> Option<T> {
    match outcome {
        Ok((next, check)) => {
            steps.push(check);
            Some(next)
        }
        Err(check) => {
            steps.push(check);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_ends_the_chain_and_keeps_its_check() {
        let mut steps = Vec::new();
        assert_eq!(
            record(&mut steps, Ok((7, Check::pass("aws", "ok")))),
            Some(7)
        );
        let failed: StepResult<u8> = Err(Check::fail("sts", "no", "fix it"));
        assert_eq!(record(&mut steps, failed), None);
        assert_eq!(
            steps.iter().map(|c| c.step).collect::<Vec<_>>(),
            ["aws", "sts"]
        );
    }
}
