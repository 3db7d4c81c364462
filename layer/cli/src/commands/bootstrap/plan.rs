//! The plan: inputs in, a deterministic setup out (provider, members, service accounts,
//! grants, credential configurations, commands, SAM overrides). Pure: no call to any cloud.

use std::collections::BTreeMap;

use crossfed::google::{AttributeMapping, AwsAssertion};

use super::cred_config::credential_config;
use super::grants::{self, CustomRole};
use super::inputs::{
    FunctionRole, Inputs, MappingChoice, bucket_of, function_parameter, report_bucket,
    service_account_id,
};
pub use super::pieces::{Command, ConfigFile, FunctionPlan, Guard};
use super::setup;
use super::template::{self, ConfigParameter};

/// Lambda's session name is the function name: at most 64 characters.
const LONGEST_SESSION: usize = 64;

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
    /// The custom roles the script creates (granted in `functions`).
    pub custom_roles: Vec<&'static CustomRole>,
    pub configs: Vec<ConfigFile>,
    pub gcloud: Vec<Command>,
    pub aws: Vec<Command>,
    pub sam_parameter_overrides: BTreeMap<String, String>,
    pub stack: Option<String>,
    pub project_id: String,
    /// The configurations' `create-cred-config` flags.
    pub enable_imdsv2: bool,
    pub token_lifetime_seconds: Option<u64>,
}

/// Builds the plan.
pub fn plan(inputs: &Inputs) -> Result<Plan, String> {
    let (account, roles) = checked_roles(inputs)?;
    let provider = inputs
        .provider
        .clone()
        .unwrap_or_else(|| format!("aws-{account}"));
    let pool_resource = format!(
        "projects/{}/locations/global/workloadIdentityPools/{}",
        inputs.project_number, inputs.pool
    );
    let audience = format!("//iam.googleapis.com/{pool_resource}/providers/{provider}");
    let mapping = inputs.mapping.mapping();
    let pool_member_base = format!("iam.googleapis.com/{pool_resource}");
    let functions = roles
        .iter()
        .map(|role| function_plan(inputs, role, &mapping, &pool_member_base))
        .collect::<Result<Vec<_>, _>>()?;
    distinct_service_accounts(inputs, &functions)?;
    let attribute_condition = attribute_condition(&functions, inputs.mapping, &roles[0]);
    let configs = config_files(inputs, &functions, &audience);
    let provider_setup = setup::Provider {
        project_id: &inputs.project_id,
        pool: &inputs.pool,
        provider: &provider,
        account: &account,
        mapping: &mapping,
        condition: &attribute_condition,
    };
    Ok(Plan {
        gcloud: setup::gcloud(&provider_setup, &functions),
        custom_roles: grants::custom_roles_of(
            &inputs.project_id,
            functions.iter().flat_map(|f| f.grants.iter()),
        ),
        aws: setup::ssm(inputs, &configs),
        sam_parameter_overrides: sam_overrides(inputs, &functions)?,
        audience,
        pool_resource,
        provider,
        account,
        attribute_mapping: mapping,
        attribute_condition,
        functions,
        configs,
        stack: inputs.stack.clone(),
        project_id: inputs.project_id.clone(),
        enable_imdsv2: inputs.enable_imdsv2,
        token_lifetime_seconds: inputs.token_lifetime_seconds,
    })
}

/// The account all roles share and the roles sorted by function (one each).
fn checked_roles(inputs: &Inputs) -> Result<(String, Vec<FunctionRole>), String> {
    inputs.check()?;
    outside_sync_destination(inputs)?;
    if inputs.roles.is_empty() {
        return Err("no function roles: give --stack or --role FUNCTION=ROLE_ARN".into());
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
    Ok((account, roles))
}

/// The sync destination's prefix belongs to gcs-sync: it is refused as another function's
/// place to write. The report's output is the one place another function writes in Cloud
/// Storage, with `roles/storage.objectCreator` on its whole bucket: inside the prefix a report
/// would be mistaken for what gcs-sync mirrors; elsewhere in the destination's bucket the
/// report could still create objects inside the prefix (copies, parts). Both are refused.
/// Buckets the report only inventories (`--report-gcs-bucket`) may be the destination's: it
/// lists them, never writes.
fn outside_sync_destination(inputs: &Inputs) -> Result<(), String> {
    let (Some(dest), Some(out)) = (&inputs.sync_destination, &inputs.report_output) else {
        return Ok(());
    };
    let split = |url: &str| -> (String, String) {
        let rest = url.trim_start_matches("gs://");
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        (bucket.to_string(), path)
    };
    if !out.starts_with("gs://") {
        return Ok(());
    }
    let (dest_bucket, dest_prefix) = split(dest);
    let (out_bucket, out_path) = split(out);
    if dest_bucket != out_bucket {
        return Ok(());
    }
    if out_path.starts_with(&dest_prefix) {
        return Err(format!(
            "--report-output {out} is inside --sync-destination {dest}: that prefix belongs to gcs-sync, which deletes there what the source bucket does not have; write the report to another bucket"
        ));
    }
    Err(format!(
        "--report-output {out} is in the bucket of --sync-destination {dest}: the report's roles/storage.objectCreator is granted on the whole bucket gs://{dest_bucket}, so it could write inside the prefix that belongs to gcs-sync; write the report to another bucket"
    ))
}

/// The member, service account, parameter and grants of one function.
fn function_plan(
    inputs: &Inputs,
    role: &FunctionRole,
    mapping: &AttributeMapping,
    pool_member_base: &str,
) -> Result<FunctionPlan, String> {
    // The longest session Lambda gives the role: what Google maps must fit its limits.
    let session = "s".repeat(LONGEST_SESSION);
    let assertion = AwsAssertion::from_arn(role.assumed_role_arn(&session));
    let mapped = mapping.evaluate(&assertion).map_err(|e| {
        format!(
            "attribute mapping for the sessions of {}: {e}",
            role.function
        )
    })?;
    let aws_role_attribute = mapped
        .attributes
        .get("attribute.aws_role")
        .cloned()
        .ok_or("the mapping yields no attribute.aws_role")?;
    let member = mapped
        .principal_set(pool_member_base, "aws_role")
        .ok_or("the mapping yields no attribute.aws_role")?;
    let in_template = template::config_parameter(&role.function);
    let (service_account, config_parameter) = match (&inputs.shared_service_account, in_template) {
        (Some(name), _) => (name.clone(), inputs.config_parameter.clone()),
        (None, ConfigParameter::SharedOnly) => (
            service_account_id(&role.function),
            inputs.config_parameter.clone(),
        ),
        (None, _) => (
            service_account_id(&role.function),
            function_parameter(&inputs.config_parameter, &role.function),
        ),
    };
    let service_account = if service_account.contains('@') {
        service_account
    } else {
        format!(
            "{service_account}@{}.iam.gserviceaccount.com",
            inputs.project_id
        )
    };
    let (grants, mut notes) = grants::grants(&role.function, inputs)?;
    if in_template == ConfigParameter::NotInTemplate {
        notes.push(format!(
            "not a function of template.yaml: set CROSSFED_CONFIG_PARAMETER={config_parameter} on it"
        ));
    }
    Ok(FunctionPlan {
        function: role.function.clone(),
        role_arn: role.role_arn(),
        aws_role_attribute,
        google_subject: mapped.subject,
        member,
        service_account,
        config_parameter,
        grants,
        notes,
    })
}

/// Per-function service accounts: two functions whose names share their first 21
/// characters would share one.
fn distinct_service_accounts(inputs: &Inputs, functions: &[FunctionPlan]) -> Result<(), String> {
    if inputs.shared_service_account.is_some() {
        return Ok(());
    }
    for (i, f) in functions.iter().enumerate() {
        if let Some(g) = functions[i + 1..]
            .iter()
            .find(|g| g.service_account == f.service_account)
        {
            return Err(format!(
                "functions {} and {} would share the service account {}: shorten one name, or pass --shared-service-account",
                f.function, g.function, f.service_account
            ));
        }
    }
    Ok(())
}

/// The provider's condition: exactly the functions' `attribute.aws_role` values. With the
/// role-name mapping, also only sessions of an assumed role of this account: an IAM user
/// whose path is `/assumed-role/NAME/` maps to the role name too.
fn attribute_condition(
    functions: &[FunctionPlan],
    choice: MappingChoice,
    role: &FunctionRole,
) -> String {
    let mut values: Vec<&str> = Vec::new();
    for f in functions {
        if !values.contains(&f.aws_role_attribute.as_str()) {
            values.push(&f.aws_role_attribute);
        }
    }
    let listed = format!(
        "attribute.aws_role in [{}]",
        values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match choice {
        MappingChoice::Default => listed,
        MappingChoice::RoleName => format!(
            "assertion.arn.startsWith('arn:{}:sts::{}:assumed-role/') && {listed}",
            role.partition, role.account
        ),
    }
}

/// One credential configuration per parameter.
fn config_files(inputs: &Inputs, functions: &[FunctionPlan], audience: &str) -> Vec<ConfigFile> {
    let mut configs: Vec<ConfigFile> = Vec::new();
    for f in functions {
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
            json: credential_config(
                audience,
                Some(&f.service_account),
                inputs.enable_imdsv2,
                inputs.token_lifetime_seconds,
            ),
        });
    }
    configs
}

/// The template parameters the redeploy sets (only parameters the template has).
fn sam_overrides(
    inputs: &Inputs,
    functions: &[FunctionPlan],
) -> Result<BTreeMap<String, String>, String> {
    let mut sam = BTreeMap::new();
    sam.insert(
        template::SHARED_PARAMETER.to_string(),
        inputs.config_parameter.clone(),
    );
    sam.insert("GoogleCloudProject".to_string(), inputs.project_id.clone());
    if inputs.shared_service_account.is_none() {
        for f in functions {
            if let ConfigParameter::Own(parameter) = template::config_parameter(&f.function) {
                sam.insert(parameter.to_string(), f.config_parameter.clone());
            }
        }
    }
    if let Some(d) = &inputs.sync_destination {
        sam.insert("SyncDestination".into(), d.clone());
    }
    // Extra buckets only: the template always inventories the destination, and the report
    // refuses a bucket listed twice.
    let destination = match &inputs.sync_destination {
        Some(d) => Some(bucket_of(d, "--sync-destination")?),
        None => None,
    };
    let mut extra: Vec<&str> = Vec::new();
    for b in &inputs.report_gcs_buckets {
        let name = report_bucket(b)?;
        if destination.as_deref() != Some(&format!("gs://{name}")) && !extra.contains(&name) {
            extra.push(name);
        }
    }
    if !extra.is_empty() {
        sam.insert("ReportGcsBuckets".into(), extra.join(","));
    }
    if let Some(l) = &inputs.vertex_location {
        sam.insert("VertexLocation".into(), l.clone());
    }
    Ok(sam)
}

#[cfg(test)]
mod tests {
    use super::super::inputs::MappingChoice;
    use super::super::test_inputs::{inputs, stack_roles};
    use super::*;

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
        // Elsewhere in the destination's bucket: the report's bucket-wide grant reaches into
        // the prefix.
        for (dest, out) in [
            ("gs://bkt/mirror", "gs://bkt/mirrored"),
            ("gs://bkt/mirror", "gs://bkt/reports"),
            ("gs://bkt/mirror/", "gs://bkt"),
        ] {
            let mut i = inputs(3, MappingChoice::Default, false);
            i.sync_destination = Some(dest.into());
            i.report_output = Some(out.into());
            let e = plan(&i).unwrap_err();
            assert!(
                e.contains("is in the bucket of --sync-destination")
                    && e.contains("objectCreator is granted on the whole bucket gs://bkt")
                    && e.contains("belongs to gcs-sync")
                    && e.contains("write the report to another bucket"),
                "{e}"
            );
        }
        // The sync destination's prefix is gcs-sync's alone.
        for (dest, out, inside) in [
            ("gs://bkt/mirror", "gs://bkt/mirror/reports", true),
            ("gs://bkt/mirror/", "gs://bkt/mirror", true),
            ("gs://bkt", "gs://bkt/reports", true),
            ("gs://bkt/mirror", "gs://other/mirror", false),
            ("gs://bkt/mirror", "gs://bkt-2/mirror/reports", false),
            ("gs://bkt/mirror", "s3://bkt/mirror", false),
        ] {
            let mut i = inputs(3, MappingChoice::Default, false);
            i.sync_destination = Some(dest.into());
            i.report_output = Some(out.into());
            let result = plan(&i);
            assert_eq!(result.is_err(), inside, "{dest} {out}");
            if let Err(e) = result {
                assert!(
                    e.contains("is inside --sync-destination")
                        && e.contains("belongs to gcs-sync")
                        && e.contains("write the report to another bucket"),
                    "{e}"
                );
            }
        }
        // Inventorying the destination's bucket (listing only) is the report's job.
        let mut i = inputs(3, MappingChoice::Default, false);
        i.report_gcs_buckets = vec!["gs://my-sync-bucket".into(), "archive".into()];
        assert!(plan(&i).is_ok());
    }
}
