//! The commands of the plan: gcloud for the Google side (pool, provider, service accounts,
//! bindings, grants), aws for the SSM parameters. Argument vectors, quoted only when rendered.

use crossfed::google::AttributeMapping;

use super::grants::Grant;
use super::inputs::Inputs;
use super::plan::{Command, ConfigFile, FunctionPlan};

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The pool and provider settings.
pub struct Provider<'a> {
    pub project_id: &'a str,
    pub pool: &'a str,
    pub provider: &'a str,
    pub account: &'a str,
    pub mapping: &'a AttributeMapping,
    pub condition: &'a str,
}

/// The Google side, in the order it must run.
pub fn gcloud(p: &Provider, functions: &[FunctionPlan]) -> Vec<Command> {
    let project = format!("--project={}", p.project_id);
    let mut gcloud = vec![pool(p, &project), provider(p, &project)];
    gcloud.extend(service_accounts(functions, &project));
    gcloud.extend(impersonation_bindings(functions, &project));
    gcloud.extend(role_grants(functions));
    gcloud
}

fn pool(p: &Provider, project: &str) -> Command {
    let pool = p.pool;
    Command {
        comment: format!("Workload identity pool {pool}"),
        check: Some(args(&[
            "gcloud",
            "iam",
            "workload-identity-pools",
            "describe",
            pool,
            project,
            "--location=global",
        ])),
        run: args(&[
            "gcloud",
            "iam",
            "workload-identity-pools",
            "create",
            pool,
            project,
            "--location=global",
            "--display-name=AWS Lambda (crossfed)",
        ]),
        update: None,
    }
}

fn provider(p: &Provider, project: &str) -> Command {
    let common = [
        "gcloud".to_string(),
        "iam".into(),
        "workload-identity-pools".into(),
        "providers".into(),
    ];
    let tail = [
        p.provider.to_string(),
        project.to_string(),
        "--location=global".into(),
        format!("--workload-identity-pool={}", p.pool),
    ];
    let settings = [
        format!("--attribute-mapping={}", p.mapping.to_flag()),
        format!("--attribute-condition={}", p.condition),
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
    let mut create_extra = vec![format!("--account-id={}", p.account)];
    create_extra.extend(settings.iter().cloned());
    Command {
        comment: format!(
            "AWS provider {}: account {}, admits exactly the stack's roles",
            p.provider, p.account
        ),
        check: Some(cmd("describe", &[])),
        run: cmd("create-aws", &create_extra),
        update: Some(cmd("update-aws", &settings)),
    }
}

/// One per service account, named for the functions that use it.
fn service_accounts(functions: &[FunctionPlan], project: &str) -> Vec<Command> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for f in functions {
        if seen.contains(&f.service_account.as_str()) {
            continue;
        }
        seen.push(&f.service_account);
        let id = f.service_account.split('@').next().unwrap_or_default();
        let users: Vec<&str> = functions
            .iter()
            .filter(|g| g.service_account == f.service_account)
            .map(|g| g.function.as_str())
            .collect();
        out.push(Command {
            comment: format!("Service account of {}", users.join(", ")),
            check: Some(args(&[
                "gcloud",
                "iam",
                "service-accounts",
                "describe",
                &f.service_account,
                project,
            ])),
            run: args(&[
                "gcloud",
                "iam",
                "service-accounts",
                "create",
                id,
                project,
                &format!("--display-name=crossfed {}", users.join(", ")),
            ]),
            update: None,
        });
    }
    out
}

/// `roles/iam.workloadIdentityUser` for each role's principal set on its service account.
fn impersonation_bindings(functions: &[FunctionPlan], project: &str) -> Vec<Command> {
    let mut out = Vec::new();
    let mut bound: Vec<(&str, &str)> = Vec::new();
    for f in functions {
        let pair = (f.service_account.as_str(), f.member.as_str());
        if bound.contains(&pair) {
            continue;
        }
        bound.push(pair);
        out.push(Command {
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
                project,
                "--role=roles/iam.workloadIdentityUser",
                &format!("--member={}", f.member),
            ]),
            update: None,
        });
    }
    out
}

/// The functions' least roles, once per service account.
fn role_grants(functions: &[FunctionPlan]) -> Vec<Command> {
    let mut out = Vec::new();
    let mut granted: Vec<(&str, &Grant)> = Vec::new();
    for f in functions {
        for g in &f.grants {
            if granted.contains(&(f.service_account.as_str(), g)) {
                continue;
            }
            granted.push((&f.service_account, g));
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
            out.push(Command {
                comment: format!("{}: {} on {}", f.function, g.role, g.resource),
                check: None,
                run,
                update: None,
            });
        }
    }
    out
}

/// `aws ssm put-parameter` for each credential configuration.
pub fn ssm(inputs: &Inputs, configs: &[ConfigFile]) -> Vec<Command> {
    configs
        .iter()
        .map(|c| {
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
            Command {
                comment: format!("Credential configuration for {}", c.service_account),
                check: None,
                run,
                update: None,
            }
        })
        .collect()
}
