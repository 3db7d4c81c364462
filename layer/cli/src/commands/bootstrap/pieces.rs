//! The pieces of a plan: one function's part, a credential configuration to store, and the
//! commands the script runs (with their guards and input files).

use serde::Serialize;

use super::grants::Grant;

/// One command; `check`, when set, tells whether the resource already exists (then the
/// `guards` run and `update`, if any, instead of `run`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Command {
    pub comment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Vec<String>>,
    pub run: Vec<String>,
    /// When the resource exists: conditions that stop the script with what to do.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<Guard>,
    /// A file `run` reads, written just before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<InputFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<Vec<String>>,
}

/// A file a command reads (an IAM condition): its name and its one-line JSON content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputFile {
    pub name: String,
    pub content: String,
}

/// Stops the script when the existing resource's field (`query` prints it) says the update
/// would be wrong: `refuse_if` equal to the value, or `require` different from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Guard {
    /// A `gcloud … describe … --format=value(FIELD)` printing the field.
    pub query: Vec<String>,
    /// The value that stops the script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_if: Option<String>,
    /// The only value that lets the script go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require: Option<String>,
    /// Why, and the command that fixes it.
    pub message: String,
}

/// One function's part of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionPlan {
    pub function: String,
    pub role_arn: String,
    /// The `attribute.aws_role` value Google computes for the role's sessions.
    pub aws_role_attribute: String,
    /// The `google.subject` of the role's sessions (at most Google's 127 bytes).
    pub google_subject: String,
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
