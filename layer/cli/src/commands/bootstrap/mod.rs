//! `crossfed bootstrap`: reads the stack's role outputs (CloudFormation `DescribeStacks`) or
//! explicit roles and prints the Google Cloud setup, credential configurations and SSM/SAM
//! commands for every function: [`inputs`] → [`plan`] (with [`grants`], the least roles) →
//! [`render`].

mod cred_config;
mod formats;
mod grants;
mod inputs;
mod pieces;
mod plan;
mod render;
mod setup;
mod template;
#[cfg(test)]
mod test_inputs;

use inputs::{FunctionRole, Inputs, MappingChoice};

use super::Outcome;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A shell script (safe to run again).
    Shell,
    /// One JSON document, for automation.
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// CloudFormation stack whose `<Function>RoleArn` outputs name the functions' roles
    /// (e.g. `crossfed`).
    #[arg(long, required_unless_present = "roles")]
    stack: Option<String>,
    /// A function's role instead of (or on top of) the stack: FUNCTION=ROLE_ARN (repeatable),
    /// e.g. `list-buckets=arn:aws:iam::111122223333:role/my-role`.
    #[arg(long = "role", value_name = "FUNCTION=ROLE")]
    roles: Vec<String>,
    /// AWS account of roles given by name (default: from the ARNs).
    #[arg(long)]
    aws_account: Option<String>,
    /// Google Cloud project id.
    #[arg(long)]
    project_id: String,
    /// Google Cloud project number (`gcloud projects describe ID --format='value(projectNumber)'`).
    #[arg(long)]
    project_number: String,
    /// Workload identity pool id.
    #[arg(long, default_value = "aws-lambda")]
    pool: String,
    /// Provider id [default: aws-<account>].
    #[arg(long)]
    provider: Option<String>,
    /// One service account (id or e-mail) shared by all functions; default: one per function
    /// (`crossfed-<function>`), each with its own config parameter.
    #[arg(long)]
    shared_service_account: Option<String>,
    /// Attribute mapping: Google's default (assumed-role ARN) or the role name only.
    #[arg(long, value_enum, default_value = "default")]
    mapping: MappingChoice,
    /// gcs-sync destination, gs://BUCKET[/PREFIX].
    #[arg(long)]
    sync_destination: Option<String>,
    /// A bucket cross-cloud-report inventories (repeatable).
    #[arg(long = "report-gcs-bucket")]
    report_gcs_buckets: Vec<String>,
    /// Where cross-cloud-report writes (gs://… gets object create).
    #[arg(long)]
    report_output: Option<String>,
    /// Vertex AI location of the report's model.
    #[arg(long)]
    vertex_location: Option<String>,
    /// The shared SSM parameter (per-function ones are derived from it).
    #[arg(long, default_value = "/crossfed/google-credential-config")]
    config_parameter: String,
    /// KMS key: store SecureString parameters (default: String, the config holds no secret).
    #[arg(long)]
    kms_key_id: Option<String>,
    /// AWS region of the stack and parameters (default: AWS_REGION).
    #[arg(long)]
    region: Option<String>,
    /// The credential configurations use IMDSv2 (gcloud's `create-cred-config --enable-imdsv2`;
    /// only matters on EC2: Lambda passes credentials in the environment).
    #[arg(long)]
    enable_imdsv2: bool,
    /// Lifetime of the service accounts' access tokens, 600-43200 s (default: Google's
    /// 3600; more needs the `iam.allowServiceAccountCredentialLifetimeExtension` policy).
    #[arg(long)]
    token_lifetime_seconds: Option<u64>,
    /// Limit gcs-sync's grant to the --sync-destination prefix with an IAM condition (the
    /// bucket needs uniform bucket-level access); default: the whole bucket.
    #[arg(long)]
    prefix_condition: bool,
    #[arg(long, value_enum, default_value = "shell")]
    format: Format,
}

/// Reads the `<Function>RoleArn` outputs of a stack (the template's contract: one per
/// function that federates). Two outputs naming the same role (a stack deployed from an older
/// template also has `ListBucketsFunctionRoleArn`): the shorter key wins.
async fn stack_roles(stack: &str, region: Option<String>) -> Result<Vec<FunctionRole>, String> {
    formats::stack(stack)?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    let cfn = aws_sdk_cloudformation::Client::new(&loader.load().await);
    let out = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            format!(
                "CloudFormation DescribeStacks {stack}: {}",
                crossfed::ErrorChain(&e)
            )
        })?;
    let mut outputs: Vec<(String, String)> = out
        .stacks()
        .first()
        .ok_or_else(|| format!("stack {stack} not found"))?
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .filter(|(key, _)| key.len() > "RoleArn".len() && key.ends_with("RoleArn"))
        .collect();
    outputs.sort_by_key(|(key, _)| (key.len(), key.clone()));
    let mut roles: Vec<FunctionRole> = Vec::new();
    for (key, value) in &outputs {
        let function = inputs::function_from_output_prefix(&key[..key.len() - "RoleArn".len()]);
        let role = FunctionRole::parse(&function, value, None)
            .map_err(|e| format!("stack output {key}: {e}"))?;
        if !roles.iter().any(|r| r.role_arn() == role.role_arn()) {
            roles.push(role);
        }
    }
    if roles.is_empty() {
        return Err(format!(
            "stack {stack} has no <Function>RoleArn outputs (deployed from another template?); pass --role FUNCTION=ROLE_ARN"
        ));
    }
    Ok(roles)
}

/// Runs the command; errors are usage-level problems with what to fix.
pub async fn run(args: Args) -> Outcome {
    let region = args
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()));
    if let Some(r) = &region {
        formats::aws_region(r)?;
    }
    let mut roles = match &args.stack {
        Some(stack) => stack_roles(stack, region.clone()).await?,
        None => Vec::new(),
    };
    for spec in &args.roles {
        let (function, role) = spec.split_once('=').ok_or_else(|| {
            format!(
                "--role {}: expected FUNCTION=ROLE_ARN",
                formats::shown(spec)
            )
        })?;
        if let Some(account) = &args.aws_account {
            formats::aws_account("--aws-account", account)?;
        }
        let role = FunctionRole::parse(function, role, args.aws_account.as_deref())
            .map_err(|e| format!("--role: {e}"))?;
        roles.retain(|r| r.function != role.function);
        roles.push(role);
    }
    let inputs = Inputs {
        project_id: args.project_id,
        project_number: args.project_number,
        pool: args.pool,
        provider: args.provider,
        roles,
        shared_service_account: args.shared_service_account,
        mapping: args.mapping,
        sync_destination: args.sync_destination,
        report_gcs_buckets: args.report_gcs_buckets,
        report_output: args.report_output,
        vertex_location: args.vertex_location,
        config_parameter: args.config_parameter,
        kms_key_id: args.kms_key_id,
        region,
        stack: args.stack,
        enable_imdsv2: args.enable_imdsv2,
        token_lifetime_seconds: args.token_lifetime_seconds,
        prefix_condition: args.prefix_condition,
    };
    let plan = plan::plan(&inputs)?;
    match args.format {
        Format::Shell => print!("{}", render::render_shell(&plan)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::render_json(&plan)).map_err(|e| e.to_string())?
        ),
    }
    Ok(())
}
