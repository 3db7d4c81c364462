//! How the fake Google STS and IAM Credentials are configured: the pool provider, the
//! attribute mapping and condition, the service account and its bindings.

use std::net::SocketAddr;
use std::time::Duration;

/// Default [`FakeGoogleConfig::service_account_unique_id`] (also the
/// `LOCALCLOUD_GOOGLE_SUB` moto's `crossfed-from-google` role trusts).
pub const DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID: &str = "111111111111111111111";

/// Configuration of [`FakeGoogle`]; see [`Default`] for the example values.
#[derive(Clone, Debug)]
pub struct FakeGoogleConfig {
    /// Full resource name of the workload identity pool provider, e.g.
    /// `//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/my-pool/providers/my-aws`.
    pub audience: String,
    /// Origin of the AWS STS endpoint the subject token must target and that
    /// the fake replays it to (moto under `make test`).
    pub aws_sts_url: String,
    /// PEM of a CA the fake trusts, besides the system roots, when it replays subject
    /// tokens to an `https://` [`aws_sts_url`](Self::aws_sts_url): the test CA of a
    /// [`crate::aws::https_front::HttpsFront`] in front of moto.
    pub aws_sts_ca_pem: Option<String>,
    /// Where the fake connects for the host of [`aws_sts_url`](Self::aws_sts_url) instead
    /// of looking it up: the [`crate::aws::https_front::HttpsFront`] address a name like
    /// `sts.us-east-1.amazonaws.com` is pinned to.
    pub aws_sts_resolve: Option<SocketAddr>,
    /// Attribute condition: if set, `attribute.aws_role` must be one of these
    /// (`attribute.aws_role in [...]`).
    pub allowed_aws_roles: Option<Vec<String>>,
    /// How the provider maps `attribute.aws_role` (computed here by plain string code,
    /// independently of crossfed's CEL evaluator).
    pub aws_role_mapping: AwsRoleMapping,
    /// How the provider maps `google.subject` (Google refuses a subject over 127 bytes).
    pub subject_mapping: SubjectMapping,
    /// Added to the fake's clock: `+1h` makes every client look an hour slow (stale clock).
    pub clock_offset: Duration,
    /// AWS account the provider admits (`aws.accountId` of the provider resource).
    pub aws_account_id: String,
    /// Bearer token allowed to read the provider resource (`GET /v1/projects/…/providers/…`,
    /// like `iam.workloadIdentityPoolProviders.get`); `None`: nobody may.
    pub provider_reader_token: Option<String>,
    /// The only service account the fake IAM Credentials API knows.
    pub service_account_email: String,
    /// Its unique id: `sub` and `azp` of the ID tokens generateIdToken mints.
    pub service_account_unique_id: String,
    /// Members holding `roles/iam.workloadIdentityUser` on the service
    /// account (`principal://...` or `principalSet://...`).
    pub bindings: Vec<String>,
    /// `expires_in` of STS tokens.
    pub sts_token_lifetime: Duration,
    /// Largest `lifetime` generateAccessToken accepts (Google: 3600s, or up
    /// to 43200s with the `constraints/iam.allowServiceAccountCredentialLifetimeExtension` policy).
    pub max_lifetime_secs: u64,
    /// Largest accepted difference between `x-amz-date` and now.
    pub max_clock_skew: Duration,
}

impl Default for FakeGoogleConfig {
    fn default() -> Self {
        Self {
            audience: "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/my-pool/providers/my-aws".into(),
            aws_sts_url: "http://127.0.0.1:5055".into(),
            aws_sts_ca_pem: None,
            aws_sts_resolve: None,
            allowed_aws_roles: None,
            aws_role_mapping: AwsRoleMapping::default(),
            subject_mapping: SubjectMapping::default(),
            clock_offset: Duration::ZERO,
            aws_account_id: "123456789012".into(),
            provider_reader_token: None,
            service_account_email: "crossfed@my-project.iam.gserviceaccount.com".into(),
            service_account_unique_id: DEFAULT_SERVICE_ACCOUNT_UNIQUE_ID.into(),
            bindings: Vec::new(),
            sts_token_lifetime: Duration::from_secs(3600),
            max_lifetime_secs: 3600,
            max_clock_skew: Duration::from_secs(15 * 60),
        }
    }
}

/// The provider's `attribute.aws_role` mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AwsRoleMapping {
    /// Google's default: the assumed-role ARN without the session name.
    #[default]
    AssumedRoleArn,
    /// `assertion.arn.extract('assumed-role/{role}/')`: the role name only.
    RoleName,
}

impl AwsRoleMapping {
    /// `attribute.aws_role` for a caller ARN (`None`: not mapped, e.g. a user ARN with
    /// the role-name mapping).
    pub fn aws_role(self, arn: &str) -> Option<String> {
        match self {
            AwsRoleMapping::AssumedRoleArn => {
                Some(crate::google::aws_subject_token::aws_role_attribute(arn))
            }
            AwsRoleMapping::RoleName => {
                let rest = &arn[arn.find("assumed-role/")? + "assumed-role/".len()..];
                let end = rest.find('/')?;
                Some(rest[..end].to_string())
            }
        }
    }
}

/// The provider's `google.subject` mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectMapping {
    /// Google's default, `assertion.arn`: the caller ARN with the session name.
    #[default]
    CallerArn,
    /// The assumed-role ARN without the session (what `crossfed bootstrap` maps).
    AssumedRoleArn,
}

impl SubjectMapping {
    /// `google.subject` for a caller ARN.
    pub fn subject(self, arn: &str) -> String {
        match self {
            SubjectMapping::CallerArn => arn.to_string(),
            SubjectMapping::AssumedRoleArn => {
                crate::google::aws_subject_token::aws_role_attribute(arn)
            }
        }
    }

    /// The CEL expression the provider resource shows.
    pub fn expression(self) -> &'static str {
        match self {
            SubjectMapping::CallerArn => "assertion.arn",
            SubjectMapping::AssumedRoleArn => ASSUMED_ROLE_ARN_EXPRESSION,
        }
    }
}

/// Google's default `attribute.aws_role`: the assumed-role ARN without the session.
pub(crate) const ASSUMED_ROLE_ARN_EXPRESSION: &str = "assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn";

impl FakeGoogleConfig {
    /// `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/POOL`: the
    /// pool, which users often give where the provider is required.
    pub fn pool_audience(&self) -> Option<String> {
        self.pool_resource()
            .map(|pool| format!("//iam.googleapis.com/{pool}"))
    }

    /// `projects/N/locations/global/workloadIdentityPools/POOL`, if the
    /// audience is a well-formed provider name.
    pub fn pool_resource(&self) -> Option<String> {
        let rest = self.audience.strip_prefix("//iam.googleapis.com/")?;
        let (pool, provider) = rest.split_once("/providers/")?;
        let parts: Vec<&str> = pool.split('/').collect();
        let well_formed = parts.len() == 6
            && parts[0] == "projects"
            && parts[2] == "locations"
            && parts[3] == "global"
            && parts[4] == "workloadIdentityPools"
            && parts.iter().all(|p| !p.is_empty())
            && !provider.is_empty()
            && !provider.contains('/');
        well_formed.then(|| pool.to_string())
    }

    /// The member for every identity whose `attribute.aws_role` is `role_arn`
    /// (e.g. `arn:aws:sts::123456789012:assumed-role/crossfed-lambda`).
    pub fn principal_set_for_aws_role(&self, role_arn: &str) -> String {
        format!(
            "principalSet://iam.googleapis.com/{}/attribute.aws_role/{role_arn}",
            self.pool_or_panic()
        )
    }

    /// The member for one AWS identity (`google.subject` under [`Self::subject_mapping`]).
    pub fn principal_for_aws_arn(&self, arn: &str) -> String {
        format!(
            "principal://iam.googleapis.com/{}/subject/{}",
            self.pool_or_panic(),
            self.subject_mapping.subject(arn)
        )
    }

    /// The member for every identity of the pool.
    pub fn principal_set_for_pool(&self) -> String {
        format!(
            "principalSet://iam.googleapis.com/{}/*",
            self.pool_or_panic()
        )
    }

    fn pool_or_panic(&self) -> String {
        self.pool_resource()
            .unwrap_or_else(|| panic!("malformed audience {:?}", self.audience))
    }
}
