//! The commands of the plan: gcloud for the Google side (pool, provider, service accounts,
//! bindings, grants), aws for the SSM parameters. Argument vectors, quoted only when rendered.

use crossfed::google::AttributeMapping;

use super::grants::{CustomRole, Grant, custom_roles_of};
use super::inputs::Inputs;
use super::pieces::{Command, ConfigFile, FunctionPlan, Guard, InputFile};

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
    let grants = functions.iter().flat_map(|f| f.grants.iter());
    for role in custom_roles_of(p.project_id, grants) {
        gcloud.push(custom_role(role, &project));
    }
    gcloud.extend(role_grants(functions));
    gcloud
}

/// A custom role of the project with exactly `role.permissions` (created, or updated to
/// them; a deleted one stops the script with the command that restores it).
fn custom_role(role: &CustomRole, project: &str) -> Command {
    let base = |verb: &str| args(&["gcloud", "iam", "roles", verb, role.id, project]);
    let settings = [
        format!("--title={}", role.title),
        format!("--permissions={}", role.permissions.join(",")),
        "--stage=GA".to_string(),
    ];
    let describe = base("describe");
    let mut deleted = describe.clone();
    deleted.push("--format=value(deleted)".into());
    Command {
        comment: format!(
            "Custom role {}: only {}",
            role.id,
            role.permissions.join(", ")
        ),
        check: Some(describe),
        run: base("create").into_iter().chain(settings.clone()).collect(),
        file: None,
        guards: vec![Guard {
            query: deleted,
            refuse_if: Some("True".into()),
            require: None,
            message: format!(
                "custom role {} is deleted: restore it with `{}`, then run this script again",
                role.id,
                base("undelete").join(" ")
            ),
        }],
        update: Some(
            base("update")
                .into_iter()
                .chain(settings)
                .chain(["--quiet".to_string()])
                .collect(),
        ),
    }
}

/// Guards of an existing pool or provider: not soft-deleted (30 days before it is purged,
/// its ID cannot be created again) and not disabled.
fn lifecycle_guards(
    what: &str,
    describe: &[String],
    undelete: String,
    enable: String,
) -> Vec<Guard> {
    let field = |f: &str| -> Vec<String> {
        describe
            .iter()
            .cloned()
            .chain([format!("--format=value({f})")])
            .collect()
    };
    vec![
        Guard {
            query: field("state"),
            refuse_if: Some("DELETED".into()),
            require: None,
            message: format!(
                "{what} is soft-deleted: restore it with `{undelete}`, then run this script again"
            ),
        },
        Guard {
            query: field("disabled"),
            refuse_if: Some("True".into()),
            require: None,
            message: format!(
                "{what} is disabled: enable it with `{enable}`, then run this script again"
            ),
        },
    ]
}

fn pool(p: &Provider, project: &str) -> Command {
    let pool = p.pool;
    let base = |verb: &str| {
        args(&[
            "gcloud",
            "iam",
            "workload-identity-pools",
            verb,
            pool,
            project,
            "--location=global",
        ])
    };
    let describe = base("describe");
    let line = |v: Vec<String>| v.join(" ");
    let mut enable = base("update");
    enable.push("--no-disabled".into());
    Command {
        comment: format!("Workload identity pool {pool}"),
        check: Some(describe.clone()),
        run: base("create")
            .into_iter()
            .chain(["--display-name=AWS Lambda (crossfed)".to_string()])
            .collect(),
        file: None,
        guards: lifecycle_guards(
            &format!("workload identity pool {pool}"),
            &describe,
            line(base("undelete")),
            line(enable),
        ),
        update: None,
    }
}

fn provider(p: &Provider, project: &str) -> Command {
    let command = |verb: &str, extra: &[String]| -> Vec<String> {
        let head = [
            "gcloud",
            "iam",
            "workload-identity-pools",
            "providers",
            verb,
        ];
        head.iter()
            .map(|s| s.to_string())
            .chain([
                p.provider.to_string(),
                project.to_string(),
                "--location=global".into(),
                format!("--workload-identity-pool={}", p.pool),
            ])
            .chain(extra.iter().cloned())
            .collect()
    };
    let settings = [
        format!("--attribute-mapping={}", p.mapping.to_flag()),
        format!("--attribute-condition={}", p.condition),
    ];
    let mut create_extra = vec![format!("--account-id={}", p.account)];
    create_extra.extend(settings.iter().cloned());
    let describe = command("describe", &[]);
    let what = format!("provider {}", p.provider);
    let mut guards = lifecycle_guards(
        &what,
        &describe,
        command("undelete", &[]).join(" "),
        command("update-aws", &["--no-disabled".to_string()]).join(" "),
    );
    guards.push(Guard {
        query: command("describe", &["--format=value(aws.accountId)".to_string()]),
        refuse_if: None,
        require: Some(p.account.to_string()),
        message: format!(
            "{what} admits another AWS account than {} (or its account could not be read): pass --provider with another ID (one provider per account)",
            p.account
        ),
    });
    Command {
        comment: format!(
            "AWS provider {}: account {}, admits exactly the stack's roles",
            p.provider, p.account
        ),
        check: Some(describe),
        run: command("create-aws", &create_extra),
        guards,
        file: None,
        update: Some(command("update-aws", &settings)),
    }
}

/// `crossfed FUNCTION, …`, cut to Google's 100 bytes for a display name.
fn display_name(users: &[&str]) -> String {
    let mut name = format!("crossfed {}", users.join(", "));
    if name.len() > 100 {
        name.truncate(97);
        name.push_str("...");
    }
    name
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
                &format!("--display-name={}", display_name(&users)),
            ]),
            guards: Vec::new(),
            file: None,
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
                "--condition=None",
            ]),
            guards: Vec::new(),
            file: None,
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
            let file = g.condition.as_ref().map(|c| InputFile {
                name: format!("condition-{}.json", f.function),
                content: serde_json::to_string(c).expect("a condition serializes"),
            });
            let condition = match &file {
                Some(file) => format!("--condition-from-file={}", file.name),
                None => "--condition=None".to_string(),
            };
            let run = match g.resource.strip_prefix("projects/") {
                Some(project) => args(&[
                    "gcloud",
                    "projects",
                    "add-iam-policy-binding",
                    project,
                    &member,
                    &role,
                    &condition,
                ]),
                None => args(&[
                    "gcloud",
                    "storage",
                    "buckets",
                    "add-iam-policy-binding",
                    &g.resource,
                    &member,
                    &role,
                    &condition,
                ]),
            };
            let only = g
                .condition
                .as_ref()
                .map(|c| format!(" ({})", c.title))
                .unwrap_or_default();
            out.push(Command {
                comment: format!("{}: {} on {}{only}", f.function, g.role, g.resource),
                check: None,
                run,
                guards: Vec::new(),
                file,
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
                guards: Vec::new(),
                file: None,
                update: None,
            }
        })
        .collect()
}
