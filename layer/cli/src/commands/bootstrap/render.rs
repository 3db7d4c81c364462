//! The plan as a shell script (comments, then commands that are safe to run again) or as
//! one JSON document for automation.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::plan::{Command, Plan};

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
    use super::super::inputs::MappingChoice;
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
}
