//! What the plan is made from: the functions' roles, the mapping choice and the flags, each
//! checked against the format its cloud accepts.

use crossfed::google::AttributeMapping;

/// Which attribute mapping the provider gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MappingChoice {
    /// Google's default AWS mapping: `attribute.aws_role` = assumed-role ARN without session.
    Default,
    /// The role name only (`assertion.arn.extract('assumed-role/{role}/')`) + `aws_account`.
    RoleName,
}

impl MappingChoice {
    /// The mapping the provider is created with.
    pub fn mapping(self) -> AttributeMapping {
        match self {
            MappingChoice::Default => AttributeMapping::google_default_aws(),
            MappingChoice::RoleName => AttributeMapping::role_name(),
        }
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
        let bad = || {
            format!(
                "role `{role}` of {function}: expected arn:aws:iam::ACCOUNT:role/NAME, arn:aws:sts::ACCOUNT:assumed-role/NAME or a role name with --aws-account"
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
        let valid_name = !role_name.is_empty()
            && role_name.len() <= 64
            && role_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        if !valid_name || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if !valid_function_name(function) {
            return Err(format!(
                "function name `{function}`: use lower-case letters, digits and -"
            ));
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

/// `list-buckets` → `ListBuckets` (the template's parameter and output prefix).
pub fn output_prefix(function: &str) -> String {
    function
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
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
}

/// `gs://BUCKET` of a `gs://BUCKET[/PREFIX]` flag value.
pub fn bucket_of(url: &str, flag: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("gs://")
        .ok_or_else(|| format!("{flag} `{url}`: expected gs://BUCKET[/PREFIX]"))?;
    let bucket = rest.split('/').next().unwrap_or_default();
    let ok = (3..=222).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !ok {
        return Err(format!("{flag} `{url}`: `{bucket}` is not a bucket name"));
    }
    Ok(format!("gs://{bucket}"))
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
        assert_eq!(output_prefix("cross-cloud-report"), "CrossCloudReport");
        assert_eq!(
            function_parameter("/crossfed/google-credential-config", "gcs-sync"),
            "/crossfed/gcs-sync/google-credential-config"
        );
    }
}
