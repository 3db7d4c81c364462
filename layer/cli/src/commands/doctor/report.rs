//! The report: one check per step (pass, fail with the fix, or skip), as text or JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// Outcome of one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One checked step.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Stable id: `config`, `aws`, `attributes`, `sts`, `impersonation`, `test_call`.
    pub step: &'static str,
    pub status: Status,
    /// One-line summary.
    pub summary: String,
    /// What was found (no secrets).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// The exact fix, when the step failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A passed step.
    pub fn pass(step: &'static str, summary: impl Into<String>) -> Self {
        Check {
            step,
            status: Status::Pass,
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    /// A failed step with its fix.
    pub fn fail(step: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            step,
            status: Status::Fail,
            summary: summary.into(),
            details: Vec::new(),
            fix: Some(fix.into()),
        }
    }

    /// A step not run.
    pub fn skip(step: &'static str, summary: impl Into<String>) -> Self {
        Check {
            step,
            status: Status::Skip,
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    /// Adds one line of what was found.
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.details.push(d.into());
        self
    }
}

/// The full report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub steps: Vec<Check>,
}

/// The steps in order, by stable id.
pub const STEPS: [&str; 6] = [
    "config",
    "aws",
    "attributes",
    "sts",
    "impersonation",
    "test_call",
];

/// The step's name in the text report.
pub fn title(step: &str) -> &'static str {
    match step {
        "config" => "credential configuration",
        "aws" => "AWS credentials",
        "attributes" => "attribute mapping and condition",
        "sts" => "Google STS token exchange",
        "impersonation" => "service account impersonation",
        _ => "test call",
    }
}

/// Human-readable report.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.steps {
        let mark = match c.status {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Skip => "-",
        };
        let _ = writeln!(out, "{mark} {}: {}", title(c.step), c.summary);
        for d in &c.details {
            let _ = writeln!(out, "    {d}");
        }
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "    fix: {fix}");
        }
    }
    let _ = writeln!(
        out,
        "{}",
        if report.ok {
            "All checks passed."
        } else {
            "Federation is broken at the first ✗ above."
        }
    );
    out
}
