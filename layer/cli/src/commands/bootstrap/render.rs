//! The plan as a shell script (comments, then commands that are safe to run again) or as
//! one JSON document for automation.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::plan::{Command, Guard, Plan};

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

/// A comment line: control characters (none pass the input checks) shown escaped, so a
/// comment never ends early.
fn comment(out: &mut String, text: &str) {
    let text: String = text
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    let _ = writeln!(out, "# {text}");
}

fn render_guard(out: &mut String, g: &Guard) {
    let query = format!("\"$({} 2>/dev/null)\"", shell_line(&g.query));
    let test = match (&g.refuse_if, &g.require) {
        (Some(v), _) => format!("[ {query} = {} ]", shell_quote(v)),
        (None, Some(v)) => format!("[ {query} != {} ]", shell_quote(v)),
        (None, None) => return,
    };
    let _ = writeln!(out, "  if {test}; then");
    let _ = writeln!(
        out,
        "    echo {} >&2",
        shell_quote(&format!("crossfed bootstrap: {}", g.message))
    );
    let _ = writeln!(out, "    exit 1");
    let _ = writeln!(out, "  fi");
}

fn render_command(out: &mut String, c: &Command) {
    comment(out, &c.comment);
    if let Some(file) = &c.file {
        let _ = writeln!(out, "cat > {} <<'JSON'\n{}\nJSON", file.name, file.content);
    }
    let Some(check) = &c.check else {
        let _ = writeln!(out, "{}", shell_line(&c.run));
        return;
    };
    if c.guards.is_empty() && c.update.is_none() {
        let _ = writeln!(
            out,
            "{} >/dev/null 2>&1 ||\n  {}",
            shell_line(check),
            shell_line(&c.run)
        );
        return;
    }
    let _ = writeln!(out, "if {} >/dev/null 2>&1; then", shell_line(check));
    for g in &c.guards {
        render_guard(out, g);
    }
    if let Some(update) = &c.update {
        let _ = writeln!(out, "  {}", shell_line(update));
    }
    let _ = writeln!(out, "else");
    let _ = writeln!(out, "  {}", shell_line(&c.run));
    let _ = writeln!(out, "fi");
}

/// The plan as a shell script (safe to run again: creates what is missing, updates the
/// provider, re-applies bindings and parameters).
pub fn render_shell(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#!/bin/sh");
    comment(
        &mut out,
        &format!(
            "crossfed bootstrap: Workload Identity Federation for {} (AWS account {}) in Google Cloud project {}.",
            plan.stack
                .as_deref()
                .map_or("the given roles".to_string(), |s| format!("stack {s}")),
            plan.account,
            plan.project_id
        ),
    );
    comment(&mut out, &format!("Provider audience: {}", plan.audience));
    let _ = writeln!(out, "set -eu\n");
    comment(&mut out, "Functions:");
    for f in &plan.functions {
        comment(
            &mut out,
            &format!(
                "  {}: role {} -> attribute.aws_role {} -> {}",
                f.function, f.role_arn, f.aws_role_attribute, f.service_account
            ),
        );
        for n in &f.notes {
            comment(&mut out, &format!("    note: {n}"));
        }
    }
    for (sa, grants) in shared_grants(plan) {
        comment(
            &mut out,
            &format!("  {sa} is shared: each of its functions may use all of: {grants}"),
        );
    }
    out.push('\n');
    for c in &plan.gcloud {
        render_command(&mut out, c);
        out.push('\n');
    }
    let mut gcloud_flags = String::new();
    if plan.enable_imdsv2 {
        gcloud_flags.push_str(" --enable-imdsv2");
    }
    if let Some(secs) = plan.token_lifetime_seconds {
        let _ = write!(
            gcloud_flags,
            " --service-account-token-lifetime-seconds={secs}"
        );
    }
    for c in &plan.configs {
        comment(
            &mut out,
            &format!(
                "Credential configuration for {} (what `gcloud iam workload-identity-pools create-cred-config {} --service-account={} --aws{gcloud_flags}` writes)",
                c.service_account,
                plan.audience.trim_start_matches("//iam.googleapis.com/"),
                c.service_account
            ),
        );
        let _ = writeln!(out, "cat > {} <<'JSON'\n{}\nJSON\n", c.file, c.json);
    }
    for c in &plan.aws {
        render_command(&mut out, c);
        out.push('\n');
    }
    let sam = sam_deploy_line(plan);
    comment(&mut out, "SAM parameter overrides:");
    comment(&mut out, &sam);
    let _ = writeln!(
        out,
        "echo {}",
        shell_quote(&format!("Google Cloud is set up. Redeploy with: {sam}"))
    );
    out
}

/// Service accounts used by more than one function, with everything they are granted.
fn shared_grants(plan: &Plan) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for f in &plan.functions {
        let users = plan
            .functions
            .iter()
            .filter(|g| g.service_account == f.service_account);
        if users.clone().count() < 2 || out.iter().any(|(sa, _)| *sa == f.service_account) {
            continue;
        }
        let mut grants: Vec<String> = users
            .flat_map(|g| {
                g.grants
                    .iter()
                    .map(|g| format!("{} on {}", g.role, g.resource))
            })
            .collect();
        grants.sort();
        grants.dedup();
        out.push((&f.service_account, grants.join(", ")));
    }
    out
}

/// `sam deploy [--stack-name S] --parameter-overrides 'K=V' …`, quoted for a shell.
fn sam_deploy_line(plan: &Plan) -> String {
    let overrides: Vec<String> = plan
        .sam_parameter_overrides
        .iter()
        .map(|(k, v)| shell_quote(&format!("{k}={v}")))
        .collect();
    format!(
        "sam deploy{} --parameter-overrides {}",
        plan.stack
            .as_deref()
            .map(|s| format!(" --stack-name {}", shell_quote(s)))
            .unwrap_or_default(),
        overrides.join(" ")
    )
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
        "custom_roles": plan.custom_roles,
        "credential_configs": configs,
        "gcloud": plan.gcloud,
        "aws": plan.aws,
        "sam_parameter_overrides": plan.sam_parameter_overrides,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::inputs::{FunctionRole, Inputs, MappingChoice};
    use super::super::plan::plan;
    use super::super::test_inputs::inputs;
    use super::*;

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
    fn shell_words_are_quoted() {
        assert_eq!(shell_quote("a'b c"), "\"a'b c\"");
        assert_eq!(shell_quote("a'b $c"), r"'a'\''b $c'");
        assert_eq!(shell_quote("a b"), "'a b'");
    }

    #[test]
    fn every_binding_carries_condition_none() {
        for mapping in [MappingChoice::Default, MappingChoice::RoleName] {
            for shared in [false, true] {
                let script = render_shell(&plan(&inputs(3, mapping, shared)).unwrap());
                let bindings: Vec<&str> = script
                    .lines()
                    .filter(|l| l.contains("add-iam-policy-binding"))
                    .collect();
                assert!(bindings.len() >= 6, "{script}");
                for line in bindings {
                    assert!(line.trim_end().ends_with(" --condition=None"), "{line}");
                }
                // With --prefix-condition, gcs-sync's binding reads its condition from a file.
                let mut i = inputs(3, mapping, shared);
                i.prefix_condition = true;
                let script = render_shell(&plan(&i).unwrap());
                for line in script
                    .lines()
                    .filter(|l| l.contains("add-iam-policy-binding"))
                {
                    let conditional = line.contains("--role=roles/storage.objectUser");
                    let end = if conditional {
                        " --condition-from-file=condition-gcs-sync.json"
                    } else {
                        " --condition=None"
                    };
                    assert!(line.ends_with(end), "{line}");
                }
                assert!(
                    script.contains("cat > condition-gcs-sync.json <<'JSON'\n{\"title\":\"crossfed gcs-sync: the destination prefix only\",\"expression\":\"resource.name.startsWith('projects/_/buckets/my-sync-bucket/objects/from-s3/')"),
                    "{script}"
                );
            }
        }
    }

    #[test]
    fn a_shared_service_account_says_what_it_gets() {
        let script = render_shell(&plan(&inputs(3, MappingChoice::Default, true)).unwrap());
        let line = script
            .lines()
            .find(|l| l.starts_with("#   crossfed@my-project.iam.gserviceaccount.com is shared: each of its functions may use all of: "))
            .unwrap_or_else(|| panic!("{script}"));
        for grant in [
            "roles/storage.bucketViewer on projects/my-project",
            "roles/storage.objectUser on gs://my-sync-bucket",
            "projects/my-project/roles/crossfedGeminiCaller on projects/my-project",
        ] {
            assert!(line.contains(grant), "{line}");
        }
        let script = render_shell(&plan(&inputs(3, MappingChoice::Default, false)).unwrap());
        assert!(!script.contains("is shared"));
    }

    /// Outside the heredocs, every line of the script is a comment or one of the commands
    /// bootstrap writes, and no line holds a control character.
    fn assert_only_our_lines(script: &str) {
        const STARTS: [&str; 10] = [
            "#", "set -eu", "if ", "else", "fi", "gcloud ", "aws ", "cat > ", "echo ", "exit 1",
        ];
        let mut heredoc = false;
        for line in script.lines() {
            assert!(!line.chars().any(char::is_control), "{line:?}");
            if heredoc {
                heredoc = line != "JSON";
                continue;
            }
            let trimmed = line.trim_start();
            assert!(
                trimmed.is_empty() || STARTS.iter().any(|s| trimmed.starts_with(s)),
                "a line bootstrap does not write: {line:?}"
            );
            heredoc = trimmed.starts_with("cat > ");
        }
    }

    /// Sets one free-text flag (or the partition of a role ARN) to `value`.
    fn with_flag(flag: usize, value: &str) -> Inputs {
        let mut i = inputs(3, MappingChoice::RoleName, false);
        match flag {
            0 => i.project_id = value.into(),
            1 => i.pool = value.into(),
            2 => i.provider = Some(value.into()),
            3 => i.shared_service_account = Some(value.into()),
            4 => i.config_parameter = value.into(),
            5 => i.vertex_location = Some(value.into()),
            6 => {
                i.sync_destination = Some(format!("gs://my-sync-bucket/{value}"));
                i.prefix_condition = true;
            }
            7 => i.report_gcs_buckets.push(value.into()),
            8 => i.report_output = Some(format!("gs://my-reports/{value}")),
            9 => i.kms_key_id = Some(value.into()),
            10 => i.region = Some(value.into()),
            11 => i.stack = Some(value.into()),
            12 => i.project_number = value.into(),
            _ => {
                let arn = format!("arn:{value}:iam::111122223333:role/crossfed-x");
                match FunctionRole::parse("gcs-sync", &arn, None) {
                    Ok(role) => i.roles[1] = role,
                    Err(e) => i.project_number = e,
                }
            }
        }
        i
    }

    fn nasty() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z0-9./'\"`$(){}\\;|&<>!* \n\r\t\x00-]{0,24}",
            Just("x\nrm -rf ~".to_string()),
            Just("$(touch /tmp/pwned)".to_string()),
            Just("`id`".to_string()),
            Just("a\0b".to_string()),
            Just("aws'] || 'a' in ['a".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_flag_value_is_refused_clearly_or_stays_one_word(flag in 0usize..14, value in nasty()) {
            match plan(&with_flag(flag, &value)) {
                Ok(p) => {
                    assert_only_our_lines(&render_shell(&p));
                    let json = serde_json::to_string(&render_json(&p)).unwrap();
                    prop_assert!(serde_json::from_str::<Value>(&json).is_ok());
                }
                Err(e) => {
                    prop_assert!(!e.chars().any(char::is_control), "{e:?}");
                    prop_assert!(e.contains("--") || e.contains("expected"), "{e}");
                }
            }
        }
    }
}
