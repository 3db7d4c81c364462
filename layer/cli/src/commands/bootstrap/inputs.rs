//! What the plan is made from: the functions' roles, the mapping choice and the flags, each
//! checked against the format its cloud accepts.

use crossfed::google::AttributeMapping;

use super::formats::{self, PARTITIONS, shown};

/// Which attribute mapping the provider gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MappingChoice {
    /// Google's default AWS mapping: `attribute.aws_role` = assumed-role ARN without session.
    Default,
    /// The role name only (`assertion.arn.extract('assumed-role/{role}/')`) + `aws_account`.
    RoleName,
}

/// Google's `attribute.aws_role` expression: the assumed-role ARN without the session.
fn role_arn_expression() -> String {
    AttributeMapping::google_default_aws()
        .expression("attribute.aws_role")
        .unwrap_or_default()
        .to_string()
}

impl MappingChoice {
    /// The mapping the provider is created with. Its `google.subject` is the assumed-role
    /// ARN without the session (at most 110 bytes): Google's default, the whole ARN, exceeds
    /// Google's 127-byte limit for Lambda, whose session name is the function name (up to 64
    /// characters, e.g. `STACK-CrossCloudReportFunction-SUFFIX`).
    pub fn mapping(self) -> AttributeMapping {
        let role_arn = role_arn_expression();
        let pairs: Vec<(&str, String)> = match self {
            MappingChoice::Default => vec![
                ("google.subject", role_arn.clone()),
                ("attribute.aws_role", role_arn),
            ],
            MappingChoice::RoleName => vec![
                ("google.subject", role_arn),
                ("attribute.aws_account", "assertion.account".into()),
                (
                    "attribute.aws_role",
                    "assertion.arn.extract('assumed-role/{role}/')".into(),
                ),
            ],
        };
        AttributeMapping::from_pairs(pairs).expect("bootstrap's mappings parse")
    }
}

/// One function's AWS execution role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionRole {
    /// `list-buckets`, `gcs-sync`, `cross-cloud-report` or any other name.
    pub function: String,
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// AWS account id.
    pub account: String,
    /// Role name (no path).
    pub role_name: String,
}

impl FunctionRole {
    /// From an IAM role ARN (`arn:aws:iam::ACCOUNT:role[/path]/NAME`), an assumed-role ARN
    /// (`arn:aws:sts::ACCOUNT:assumed-role/NAME[/SESSION]`), or a role name with `account`.
    pub fn parse(function: &str, role: &str, account: Option<&str>) -> Result<Self, String> {
        if !valid_function_name(function) {
            return Err(format!(
                "function name {}: use 1-40 lower-case letters, digits and -",
                shown(function)
            ));
        }
        let bad = || {
            format!(
                "role {} of {function}: expected arn:PARTITION:iam::ACCOUNT:role/NAME, arn:PARTITION:sts::ACCOUNT:assumed-role/NAME or a role name with --aws-account (PARTITION one of {})",
                shown(role),
                PARTITIONS.join(", ")
            )
        };
        let (partition, account, role_name) = if let Some(rest) = role.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, "", account, resource] = parts.as_slice() else {
                return Err(bad());
            };
            let name = match (*service, resource.split_once('/')) {
                ("iam", Some(("role", path_and_name))) => path_and_name.rsplit('/').next(),
                ("sts", Some(("assumed-role", rest))) => rest.split('/').next(),
                _ => None,
            };
            (
                partition.to_string(),
                account.to_string(),
                name.ok_or_else(bad)?.to_string(),
            )
        } else {
            let account = account.ok_or_else(bad)?;
            ("aws".to_string(), account.to_string(), role.to_string())
        };
        let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if !PARTITIONS.contains(&partition.as_str())
            || !valid_account
            || !formats::role_name(&role_name)
        {
            return Err(bad());
        }
        Ok(FunctionRole {
            function: function.to_string(),
            partition,
            account,
            role_name,
        })
    }

    /// The ARN Google learns from GetCallerIdentity for a session of this role.
    pub fn assumed_role_arn(&self, session: &str) -> String {
        format!(
            "arn:{}:sts::{}:assumed-role/{}/{session}",
            self.partition, self.account, self.role_name
        )
    }

    /// The IAM role ARN.
    pub fn role_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.partition, self.account, self.role_name
        )
    }
}

fn valid_function_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `ListBuckets` (a stack output prefix) → `list-buckets`.
pub fn function_from_output_prefix(prefix: &str) -> String {
    let mut out = String::new();
    for (i, c) in prefix.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Everything the plan is made from.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub project_id: String,
    pub project_number: String,
    pub pool: String,
    /// Default: `aws-<account>`.
    pub provider: Option<String>,
    pub roles: Vec<FunctionRole>,
    /// `Some(name)`: one service account for all functions; `None`: one per function.
    pub shared_service_account: Option<String>,
    pub mapping: MappingChoice,
    /// `gs://bucket[/prefix]` gcs-sync writes to.
    pub sync_destination: Option<String>,
    /// Buckets cross-cloud-report inventories.
    pub report_gcs_buckets: Vec<String>,
    /// `gs://…` or `s3://…` the report is written to.
    pub report_output: Option<String>,
    pub vertex_location: Option<String>,
    /// The shared SSM parameter name (template default `/crossfed/google-credential-config`).
    pub config_parameter: String,
    /// KMS key for a SecureString parameter; `None`: a String parameter (no secret inside).
    pub kms_key_id: Option<String>,
    pub region: Option<String>,
    /// The stack name, when the roles came from its outputs.
    pub stack: Option<String>,
    /// The configurations get IMDSv2's session token URL (`create-cred-config --enable-imdsv2`).
    pub enable_imdsv2: bool,
    /// Lifetime of the service accounts' access tokens (600-43200 s; default Google's 3600).
    pub token_lifetime_seconds: Option<u64>,
    /// gcs-sync's grant carries an IAM condition limiting it to the destination prefix.
    pub prefix_condition: bool,
}

impl Inputs {
    /// Every flag in the format its cloud accepts: an error names the flag.
    pub fn check(&self) -> Result<(), String> {
        formats::project_id(&self.project_id)?;
        formats::project_number(&self.project_number, &self.project_id)?;
        formats::pool_or_provider_id("--pool", &self.pool)?;
        if let Some(provider) = &self.provider {
            formats::pool_or_provider_id("--provider", provider)?;
        }
        if let Some(sa) = &self.shared_service_account {
            formats::service_account(sa)?;
        }
        if let Some(d) = &self.sync_destination {
            formats::gcs_url("--sync-destination", d)?;
        }
        for b in &self.report_gcs_buckets {
            report_bucket(b)?;
        }
        match self.report_output.as_deref() {
            Some(out) if out.starts_with("gs://") => {
                formats::gcs_url("--report-output", out)?;
            }
            Some(out) => formats::s3_url("--report-output", out)?,
            None => {}
        }
        if let Some(l) = &self.vertex_location {
            formats::google_location(l)?;
        }
        formats::ssm_name(&self.config_parameter)?;
        if let Some(key) = &self.kms_key_id {
            formats::kms_key(key)?;
        }
        if let Some(region) = &self.region {
            formats::aws_region(region)?;
        }
        if let Some(stack) = &self.stack {
            formats::stack(stack)?;
        }
        if let Some(secs) = self.token_lifetime_seconds
            && !(600..=43200).contains(&secs)
        {
            return Err(format!(
                "--token-lifetime-seconds {secs}: expected 600-43200 (gcloud's --service-account-token-lifetime-seconds; over 3600 needs the constraints/iam.allowServiceAccountCredentialLifetimeExtension policy)"
            ));
        }
        Ok(())
    }
}

/// The bucket name of a `--report-gcs-bucket` (`BUCKET` or `gs://BUCKET`, no path).
pub fn report_bucket(value: &str) -> Result<&str, String> {
    let name = value.strip_prefix("gs://").unwrap_or(value);
    let name = name.strip_suffix('/').unwrap_or(name);
    formats::bucket("--report-gcs-bucket", name)?;
    Ok(name)
}

/// `gs://BUCKET` of a `gs://BUCKET[/PREFIX]` flag value.
pub fn bucket_of(url: &str, flag: &str) -> Result<String, String> {
    Ok(format!("gs://{}", formats::gcs_url(flag, url)?))
}

/// The parameter of one function when each has its own service account:
/// `/crossfed/google-credential-config` → `/crossfed/list-buckets/google-credential-config`.
pub fn function_parameter(shared: &str, function: &str) -> String {
    match shared.rsplit_once('/') {
        Some((parent, last)) => format!("{parent}/{function}/{last}"),
        None => format!("{function}/{shared}"),
    }
}

/// The default service account id of a function (`crossfed-<function>`, at most 30 bytes).
pub fn service_account_id(function: &str) -> String {
    let mut id = format!("crossfed-{function}");
    id.truncate(30);
    id.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_names_and_parameters_parse_or_say_what_to_fix() {
        for bad in [
            "arn:aws:iam::1:role/x",
            "arn:aws:s3:::bucket",
            "role-without-account",
            "arn:aws:iam::111122223333:user/bob",
            "arn:aws\n:iam::111122223333:role/x",
            "arn:aws'] || 'a' in ['a:iam::111122223333:role/x",
            "arn:aws:iam::111122223333:role/x'y",
        ] {
            assert!(FunctionRole::parse("f", bad, None).is_err(), "{bad}");
        }
        let r =
            FunctionRole::parse("f", "arn:aws:iam::111122223333:role/path/to/Name", None).unwrap();
        assert_eq!(r.role_name, "Name");
        let r = FunctionRole::parse("f", "Name", Some("111122223333")).unwrap();
        assert_eq!(
            r.assumed_role_arn("s"),
            "arn:aws:sts::111122223333:assumed-role/Name/s"
        );
        assert_eq!(
            function_from_output_prefix("CrossCloudReport"),
            "cross-cloud-report"
        );
        assert_eq!(
            function_parameter("/crossfed/google-credential-config", "gcs-sync"),
            "/crossfed/gcs-sync/google-credential-config"
        );
    }
}
