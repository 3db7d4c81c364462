//! `crossfed bootstrap`: the Google Cloud setup (pool, provider, service accounts, bindings,
//! least roles), the credential configurations and the SSM/SAM commands for every function of
//! the stack. Pure: inputs in, a deterministic plan out, rendered as shell or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crossfed::google::{AttributeMapping, AwsAssertion};
use serde::Serialize;
use serde_json::{Value, json};

/// Which attribute mapping the provider gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MappingChoice {
    /// Google's default AWS mapping: `attribute.aws_role` = assumed-role ARN without session.
    Default,
    /// The role name only (`assertion.arn.extract('assumed-role/{role}/')`) + `aws_account`.
    RoleName,
}

impl MappingChoice {
    fn mapping(self) -> AttributeMapping {
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

/// A Google IAM grant to a service account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    /// `projects/ID` or `gs://BUCKET`.
    pub resource: String,
    pub role: String,
}

/// One command; `check`, when set, tells whether the resource already exists (then
/// `update`, if any, runs instead of `create`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Command {
    pub comment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Vec<String>>,
    pub run: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<Vec<String>>,
}

/// One function's part of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionPlan {
    pub function: String,
    pub role_arn: String,
    /// The `attribute.aws_role` value Google computes for the role's sessions.
    pub aws_role_attribute: String,
    /// The `principalSet://` member bound to the service account.
    pub member: String,
    pub service_account: String,
    pub config_parameter: String,
    pub grants: Vec<Grant>,
    /// Human notes (e.g. no known roles for a custom function).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A credential configuration to store in one SSM parameter.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigFile {
    pub service_account: String,
    pub config_parameter: String,
    pub file: String,
    /// The JSON exactly as `gcloud iam workload-identity-pools create-cred-config --aws` writes it.
    pub json: String,
}

/// The whole setup.
#[derive(Clone, Debug)]
pub struct Plan {
    pub audience: String,
    pub pool_resource: String,
    pub provider: String,
    pub account: String,
    pub attribute_mapping: AttributeMapping,
    pub attribute_condition: String,
    pub functions: Vec<FunctionPlan>,
    pub configs: Vec<ConfigFile>,
    pub gcloud: Vec<Command>,
    pub aws: Vec<Command>,
    pub sam_parameter_overrides: BTreeMap<String, String>,
    pub stack: Option<String>,
    pub project_id: String,
}

fn bucket_of(url: &str, flag: &str) -> Result<String, String> {
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

fn service_account_id(function: &str) -> String {
    let mut id = format!("crossfed-{function}");
    id.truncate(30);
    id.trim_end_matches('-').to_string()
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

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

/// Builds the plan.
pub fn plan(inputs: &Inputs) -> Result<Plan, String> {
    let Inputs {
        project_id,
        project_number,
        pool,
        ..
    } = inputs;
    if inputs.roles.is_empty() {
        return Err("no function roles: give --stack or --role FUNCTION=ROLE_ARN".into());
    }
    if !project_number.bytes().all(|b| b.is_ascii_digit()) || project_number.is_empty() {
        return Err(format!(
            "--project-number `{project_number}`: expected digits (gcloud projects describe {project_id} --format='value(projectNumber)')"
        ));
    }
    let account = inputs.roles[0].account.clone();
    if let Some(other) = inputs.roles.iter().find(|r| r.account != account) {
        return Err(format!(
            "the roles span AWS accounts {account} and {}: an AWS provider admits one account; run bootstrap once per account",
            other.account
        ));
    }
    let mut roles = inputs.roles.clone();
    roles.sort_by(|a, b| a.function.cmp(&b.function));
    if let Some(w) = roles.windows(2).find(|w| w[0].function == w[1].function) {
        return Err(format!("function {} is given twice", w[0].function));
    }
    let provider = inputs
        .provider
        .clone()
        .unwrap_or_else(|| format!("aws-{account}"));
    let pool_resource =
        format!("projects/{project_number}/locations/global/workloadIdentityPools/{pool}");
    let audience = format!("//iam.googleapis.com/{pool_resource}/providers/{provider}");
    let pool_member_base = format!("iam.googleapis.com/{pool_resource}");
    let mapping = inputs.mapping.mapping();

    let mut functions = Vec::new();
    let mut role_values: Vec<String> = Vec::new();
    for role in &roles {
        let assertion = AwsAssertion::from_arn(role.assumed_role_arn(&role.function));
        let mapped = mapping
            .evaluate(&assertion)
            .map_err(|e| format!("attribute mapping: {e}"))?;
        let aws_role_attribute = mapped
            .attributes
            .get("attribute.aws_role")
            .cloned()
            .ok_or("the mapping yields no attribute.aws_role")?;
        if !role_values.contains(&aws_role_attribute) {
            role_values.push(aws_role_attribute.clone());
        }
        let member = mapped
            .principal_set(&pool_member_base, "aws_role")
            .ok_or("the mapping yields no attribute.aws_role")?;
        let (service_account, config_parameter) = match &inputs.shared_service_account {
            Some(name) => (name.clone(), inputs.config_parameter.clone()),
            None => (
                service_account_id(&role.function),
                function_parameter(&inputs.config_parameter, &role.function),
            ),
        };
        let service_account = if service_account.contains('@') {
            service_account
        } else {
            format!("{service_account}@{project_id}.iam.gserviceaccount.com")
        };
        let project = format!("projects/{project_id}");
        let mut grants = Vec::new();
        let mut notes = Vec::new();
        match role.function.as_str() {
            "list-buckets" => grants.push(Grant {
                resource: project.clone(),
                role: "roles/storage.bucketViewer".into(),
            }),
            "gcs-sync" => {
                let dest = inputs.sync_destination.as_deref().ok_or(
                    "gcs-sync needs --sync-destination gs://BUCKET[/PREFIX] (the SyncDestination parameter)",
                )?;
                grants.push(Grant {
                    resource: bucket_of(dest, "--sync-destination")?,
                    role: "roles/storage.objectUser".into(),
                });
            }
            "cross-cloud-report" => {
                for b in &inputs.report_gcs_buckets {
                    let b = if b.starts_with("gs://") {
                        b.clone()
                    } else {
                        format!("gs://{b}")
                    };
                    grants.push(Grant {
                        resource: bucket_of(&b, "--report-gcs-bucket")?,
                        role: "roles/storage.objectViewer".into(),
                    });
                }
                if let Some(out) = inputs.report_output.as_deref()
                    && out.starts_with("gs://")
                {
                    grants.push(Grant {
                        resource: bucket_of(out, "--report-output")?,
                        role: "roles/storage.objectCreator".into(),
                    });
                }
                grants.push(Grant {
                    resource: project.clone(),
                    role: "roles/aiplatform.user".into(),
                });
            }
            other => notes.push(format!(
                "no Google roles are known for `{other}`: grant its service account what it uses"
            )),
        }
        grants.sort();
        grants.dedup();
        functions.push(FunctionPlan {
            function: role.function.clone(),
            role_arn: format!(
                "arn:{}:iam::{}:role/{}",
                role.partition, role.account, role.role_name
            ),
            aws_role_attribute,
            member,
            service_account,
            config_parameter,
            grants,
            notes,
        });
    }
    let attribute_condition = format!(
        "attribute.aws_role in [{}]",
        role_values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Configs: one per (service account, parameter).
    let mut configs: Vec<ConfigFile> = Vec::new();
    for f in &functions {
        if configs
            .iter()
            .any(|c| c.config_parameter == f.config_parameter)
        {
            continue;
        }
        let file = if inputs.shared_service_account.is_some() {
            "cred-config.json".to_string()
        } else {
            format!("cred-config-{}.json", f.function)
        };
        configs.push(ConfigFile {
            service_account: f.service_account.clone(),
            config_parameter: f.config_parameter.clone(),
            file,
            json: credential_config(&audience, Some(&f.service_account), false, None),
        });
    }

    let p = format!("--project={project_id}");
    let mut gcloud = vec![
        Command {
            comment: format!("Workload identity pool {pool}"),
            check: Some(args(&[
                "gcloud",
                "iam",
                "workload-identity-pools",
                "describe",
                pool,
                &p,
                "--location=global",
            ])),
            run: args(&[
                "gcloud",
                "iam",
                "workload-identity-pools",
                "create",
                pool,
                &p,
                "--location=global",
                "--display-name=AWS Lambda (crossfed)",
            ]),
            update: None,
        },
        {
            let common = [
                "gcloud".to_string(),
                "iam".into(),
                "workload-identity-pools".into(),
                "providers".into(),
            ];
            let tail = [
                provider.clone(),
                p.clone(),
                "--location=global".into(),
                format!("--workload-identity-pool={pool}"),
            ];
            let settings = [
                format!("--attribute-mapping={}", mapping.to_flag()),
                format!("--attribute-condition={attribute_condition}"),
            ];
            let cmd = |verb: &str, extra: &[String]| -> Vec<String> {
                common
                    .iter()
                    .cloned()
                    .chain([verb.to_string()])
                    .chain(tail.iter().cloned())
                    .chain(extra.iter().cloned())
                    .collect()
            };
            let mut create_extra = vec![format!("--account-id={account}")];
            create_extra.extend(settings.iter().cloned());
            Command {
                comment: format!(
                    "AWS provider {provider}: account {account}, admits exactly the stack's roles"
                ),
                check: Some(cmd("describe", &[])),
                run: cmd("create-aws", &create_extra),
                update: Some(cmd("update-aws", &settings)),
            }
        },
    ];
    let mut seen_sa = Vec::new();
    for f in &functions {
        if !seen_sa.contains(&f.service_account) {
            seen_sa.push(f.service_account.clone());
            let id = f.service_account.split('@').next().unwrap_or_default();
            let users: Vec<&str> = functions
                .iter()
                .filter(|g| g.service_account == f.service_account)
                .map(|g| g.function.as_str())
                .collect();
            gcloud.push(Command {
                comment: format!("Service account of {}", users.join(", ")),
                check: Some(args(&[
                    "gcloud",
                    "iam",
                    "service-accounts",
                    "describe",
                    &f.service_account,
                    &p,
                ])),
                run: args(&[
                    "gcloud",
                    "iam",
                    "service-accounts",
                    "create",
                    id,
                    &p,
                    &format!("--display-name=crossfed {}", users.join(", ")),
                ]),
                update: None,
            });
        }
    }
    let mut bound: Vec<(String, String)> = Vec::new();
    for f in &functions {
        if bound.contains(&(f.service_account.clone(), f.member.clone())) {
            continue;
        }
        bound.push((f.service_account.clone(), f.member.clone()));
        gcloud.push(Command {
            comment: format!(
                "{}: its role may impersonate {}",
                f.function, f.service_account
            ),
            check: None,
            run: args(&[
                "gcloud",
                "iam",
                "service-accounts",
                "add-iam-policy-binding",
                &f.service_account,
                &p,
                "--role=roles/iam.workloadIdentityUser",
                &format!("--member={}", f.member),
            ]),
            update: None,
        });
    }
    let mut granted: Vec<(String, Grant)> = Vec::new();
    for f in &functions {
        for g in &f.grants {
            if granted.contains(&(f.service_account.clone(), g.clone())) {
                continue;
            }
            granted.push((f.service_account.clone(), g.clone()));
            let member = format!("--member=serviceAccount:{}", f.service_account);
            let role = format!("--role={}", g.role);
            let run = match g.resource.strip_prefix("projects/") {
                Some(project) => args(&[
                    "gcloud",
                    "projects",
                    "add-iam-policy-binding",
                    project,
                    &member,
                    &role,
                    "--condition=None",
                ]),
                None => args(&[
                    "gcloud",
                    "storage",
                    "buckets",
                    "add-iam-policy-binding",
                    &g.resource,
                    &member,
                    &role,
                ]),
            };
            gcloud.push(Command {
                comment: format!("{}: {} on {}", f.function, g.role, g.resource),
                check: None,
                run,
                update: None,
            });
        }
    }

    let mut aws = Vec::new();
    for c in &configs {
        let mut run = args(&[
            "aws",
            "ssm",
            "put-parameter",
            &format!("--name={}", c.config_parameter),
        ]);
        match &inputs.kms_key_id {
            Some(key) => {
                run.push("--type=SecureString".into());
                run.push(format!("--key-id={key}"));
            }
            None => run.push("--type=String".into()),
        }
        run.push(format!("--value=file://{}", c.file));
        run.push("--overwrite".into());
        if let Some(region) = &inputs.region {
            run.push(format!("--region={region}"));
        }
        aws.push(Command {
            comment: format!("Credential configuration for {}", c.service_account),
            check: None,
            run,
            update: None,
        });
    }

    let mut sam = BTreeMap::new();
    sam.insert(
        "GoogleCredentialConfigParameterName".to_string(),
        inputs.config_parameter.clone(),
    );
    sam.insert("GoogleCloudProject".to_string(), project_id.clone());
    if inputs.shared_service_account.is_none() {
        for f in &functions {
            sam.insert(
                format!("{}ConfigParameterName", output_prefix(&f.function)),
                f.config_parameter.clone(),
            );
        }
    }
    if let Some(d) = &inputs.sync_destination {
        sam.insert("SyncDestination".into(), d.clone());
    }
    if !inputs.report_gcs_buckets.is_empty() {
        let names: Vec<&str> = inputs
            .report_gcs_buckets
            .iter()
            .map(|b| b.trim_start_matches("gs://").trim_end_matches('/'))
            .collect();
        sam.insert("ReportGcsBuckets".into(), names.join(","));
    }
    if let Some(l) = &inputs.vertex_location {
        sam.insert("VertexLocation".into(), l.clone());
    }

    Ok(Plan {
        audience,
        pool_resource,
        provider,
        account,
        attribute_mapping: mapping,
        attribute_condition,
        functions,
        configs,
        gcloud,
        aws,
        sam_parameter_overrides: sam,
        stack: inputs.stack.clone(),
        project_id: project_id.clone(),
    })
}

/// Quotes one shell word (POSIX sh): bare when safe, else in single quotes, else (for
/// CEL with single quotes) in double quotes when nothing in it is special there.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%^".contains(&b));
    if safe {
        s.to_string()
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains(['"', '$', '`', '\\', '!']) {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn render_command(out: &mut String, c: &Command) {
    let _ = writeln!(out, "# {}", c.comment);
    match (&c.check, &c.update) {
        (Some(check), Some(update)) => {
            let _ = writeln!(out, "if {} >/dev/null 2>&1; then", shell_line(check));
            let _ = writeln!(out, "  {}", shell_line(update));
            let _ = writeln!(out, "else");
            let _ = writeln!(out, "  {}", shell_line(&c.run));
            let _ = writeln!(out, "fi");
        }
        (Some(check), None) => {
            let _ = writeln!(
                out,
                "{} >/dev/null 2>&1 ||\n  {}",
                shell_line(check),
                shell_line(&c.run)
            );
        }
        _ => {
            let _ = writeln!(out, "{}", shell_line(&c.run));
        }
    }
}

/// The plan as a shell script (safe to run again: creates what is missing, updates the
/// provider, re-applies bindings and parameters).
pub fn render_shell(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#!/bin/sh");
    let _ = writeln!(
        out,
        "# crossfed bootstrap: Workload Identity Federation for {} (AWS account {}) in Google Cloud project {}.",
        plan.stack
            .as_deref()
            .map_or("the given roles".to_string(), |s| format!("stack {s}")),
        plan.account,
        plan.project_id
    );
    let _ = writeln!(out, "# Provider audience: {}", plan.audience);
    let _ = writeln!(out, "set -eu\n");
    let _ = writeln!(out, "# Functions:");
    for f in &plan.functions {
        let _ = writeln!(
            out,
            "#   {}: role {} -> attribute.aws_role {} -> {}",
            f.function, f.role_arn, f.aws_role_attribute, f.service_account
        );
        for n in &f.notes {
            let _ = writeln!(out, "#     note: {n}");
        }
    }
    out.push('\n');
    for c in &plan.gcloud {
        render_command(&mut out, c);
        out.push('\n');
    }
    for c in &plan.configs {
        let _ = writeln!(
            out,
            "# Credential configuration for {} (what `gcloud iam workload-identity-pools create-cred-config {} --service-account={} --aws` writes)",
            c.service_account,
            plan.audience.trim_start_matches("//iam.googleapis.com/"),
            c.service_account
        );
        let _ = writeln!(out, "cat > {} <<'JSON'\n{}\nJSON\n", c.file, c.json);
    }
    for c in &plan.aws {
        render_command(&mut out, c);
        out.push('\n');
    }
    let _ = writeln!(out, "# SAM parameter overrides:");
    let overrides: Vec<String> = plan
        .sam_parameter_overrides
        .iter()
        .map(|(k, v)| shell_quote(&format!("{k}={v}")))
        .collect();
    let _ = writeln!(
        out,
        "# sam deploy{} --parameter-overrides {}",
        plan.stack
            .as_deref()
            .map(|s| format!(" --stack-name {}", shell_quote(s)))
            .unwrap_or_default(),
        overrides.join(" ")
    );
    out
}

/// The plan as JSON, for automation.
pub fn render_json(plan: &Plan) -> Value {
    let mapping: BTreeMap<&str, &str> = plan.attribute_mapping.entries().collect();
    let configs: Vec<Value> = plan
        .configs
        .iter()
        .map(|c| {
            json!({
                "service_account": c.service_account,
                "config_parameter": c.config_parameter,
                "file": c.file,
                "config": serde_json::from_str::<Value>(&c.json).unwrap_or(Value::Null),
            })
        })
        .collect();
    json!({
        "stack": plan.stack,
        "project_id": plan.project_id,
        "aws_account": plan.account,
        "pool": plan.pool_resource,
        "provider": {
            "id": plan.provider,
            "audience": plan.audience,
            "attribute_mapping": mapping,
            "attribute_condition": plan.attribute_condition,
        },
        "functions": plan.functions,
        "credential_configs": configs,
        "gcloud": plan.gcloud,
        "aws": plan.aws,
        "sam_parameter_overrides": plan.sam_parameter_overrides,
    })
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

    /// Compares with a committed snapshot; on a difference writes `<name>.actual` for review
    /// (never updates the snapshot itself).
    fn assert_snapshot(name: &str, actual: &str) {
        let path = format!("{}/tests/snapshots/{name}", env!("CARGO_MANIFEST_DIR"));
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            std::fs::write(format!("{path}.actual"), actual).unwrap();
            panic!("{name} differs from the snapshot; see {path}.actual");
        }
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

    fn stack_roles(n: usize) -> Vec<FunctionRole> {
        [
            ("list-buckets", "arn:aws:iam::111122223333:role/crossfed-ListBucketsFunctionRole-AbCdEf123456"),
            ("gcs-sync", "arn:aws:iam::111122223333:role/crossfed-GcsSyncFunctionRole-GhIjKl789012"),
            ("cross-cloud-report", "arn:aws:sts::111122223333:assumed-role/crossfed-CrossCloudReportFunctionRole-MnOpQr345678"),
        ]
        .iter()
        .take(n)
        .map(|(f, arn)| FunctionRole::parse(f, arn, None).unwrap())
        .collect()
    }

    fn inputs(n: usize, mapping: MappingChoice, shared: bool) -> Inputs {
        Inputs {
            project_id: "my-project".into(),
            project_number: "123456789012".into(),
            pool: "aws-lambda".into(),
            provider: None,
            roles: stack_roles(n),
            shared_service_account: shared.then(|| "crossfed".to_string()),
            mapping,
            sync_destination: Some("gs://my-sync-bucket/from-s3".into()),
            report_gcs_buckets: vec!["my-sync-bucket".into(), "gs://archive-bucket".into()],
            report_output: Some("gs://my-reports/daily".into()),
            vertex_location: Some("us-central1".into()),
            config_parameter: "/crossfed/google-credential-config".into(),
            kms_key_id: (!shared).then(|| "alias/crossfed".to_string()),
            region: Some("eu-west-1".into()),
            stack: Some("crossfed".into()),
        }
    }

    #[test]
    fn snapshots_for_both_mappings_one_and_three_roles() {
        for (name, n, mapping, shared) in [
            ("default-1-shared", 1, MappingChoice::Default, true),
            ("default-3-per-function", 3, MappingChoice::Default, false),
            ("role-name-1-shared", 1, MappingChoice::RoleName, true),
            (
                "role-name-3-per-function",
                3,
                MappingChoice::RoleName,
                false,
            ),
        ] {
            let p = plan(&inputs(n, mapping, shared)).unwrap();
            assert_snapshot(&format!("bootstrap-{name}.sh"), &render_shell(&p));
            let json = serde_json::to_string_pretty(&render_json(&p)).unwrap() + "\n";
            assert_snapshot(&format!("bootstrap-{name}.json"), &json);
            // Deterministic and independent of the input order.
            let mut reversed = inputs(n, mapping, shared);
            reversed.roles.reverse();
            assert_eq!(render_shell(&plan(&reversed).unwrap()), render_shell(&p));
        }
    }

    #[test]
    fn plan_is_consistent_with_the_mapping_evaluation() {
        // The condition admits each role's sessions and each member is what Google computes.
        use crossfed::google::AttributeCondition;
        for mapping in [MappingChoice::Default, MappingChoice::RoleName] {
            let p = plan(&inputs(3, mapping, false)).unwrap();
            let condition = AttributeCondition::parse(&p.attribute_condition).unwrap();
            for (f, role) in p.functions.iter().zip(
                stack_roles(3)
                    .iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev(),
            ) {
                let _ = role;
                let session = AwsAssertion::from_arn(format!(
                    "arn:aws:sts::111122223333:assumed-role/{}/some-session",
                    f.role_arn.rsplit('/').next().unwrap()
                ));
                let mapped = p.attribute_mapping.evaluate(&session).unwrap();
                assert_eq!(
                    condition.admits(&session, &mapped),
                    Ok(true),
                    "{}",
                    f.function
                );
                let pool = format!("iam.googleapis.com/{}", p.pool_resource);
                assert_eq!(mapped.principal_set(&pool, "aws_role").unwrap(), f.member);
            }
            let other = AwsAssertion::from_arn("arn:aws:sts::111122223333:assumed-role/other/s");
            let mapped = p.attribute_mapping.evaluate(&other).unwrap();
            assert_eq!(condition.admits(&other, &mapped), Ok(false));
        }
    }

    #[test]
    fn least_roles_per_function() {
        let p = plan(&inputs(3, MappingChoice::Default, false)).unwrap();
        let grants = |name: &str| -> Vec<(String, String)> {
            p.functions
                .iter()
                .find(|f| f.function == name)
                .unwrap()
                .grants
                .iter()
                .map(|g| (g.resource.clone(), g.role.clone()))
                .collect()
        };
        let g = |r: &str, role: &str| (r.to_string(), role.to_string());
        assert_eq!(
            grants("list-buckets"),
            [g("projects/my-project", "roles/storage.bucketViewer")]
        );
        assert_eq!(
            grants("gcs-sync"),
            [g("gs://my-sync-bucket", "roles/storage.objectUser")]
        );
        assert_eq!(
            grants("cross-cloud-report"),
            [
                g("gs://archive-bucket", "roles/storage.objectViewer"),
                g("gs://my-reports", "roles/storage.objectCreator"),
                g("gs://my-sync-bucket", "roles/storage.objectViewer"),
                g("projects/my-project", "roles/aiplatform.user"),
            ]
        );
    }

    #[test]
    fn bad_inputs_say_what_to_fix() {
        let mut i = inputs(3, MappingChoice::Default, false);
        i.sync_destination = None;
        assert!(plan(&i).unwrap_err().contains("--sync-destination"));
        let mut i = inputs(1, MappingChoice::Default, true);
        i.roles.push(
            FunctionRole::parse("gcs-sync", "arn:aws:iam::999999999999:role/x", None).unwrap(),
        );
        assert!(plan(&i).unwrap_err().contains("one account"));
        let mut i = inputs(1, MappingChoice::Default, true);
        i.project_number = "my-project".into();
        assert!(plan(&i).unwrap_err().contains("--project-number"));
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
        assert_eq!(shell_quote("a'b c"), "\"a'b c\"");
        assert_eq!(shell_quote("a'b $c"), r"'a'\''b $c'");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(
            function_parameter("/crossfed/google-credential-config", "gcs-sync"),
            "/crossfed/gcs-sync/google-credential-config"
        );
    }
}
