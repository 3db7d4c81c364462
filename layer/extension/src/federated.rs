//! The [`Backend`] over crossfed's federated credentials: one cached token per scope set,
//! all sharing the configuration, the AWS identity and the federated (STS) token; ID tokens
//! from the same federated token, cached per audience.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crossfed::ErrorChain;
use crossfed::google::Credentials;

use crate::backend::{AccessToken, Backend, BackendError, Identity};
use crate::metadata::DEFAULT_SCOPE;
use crate::settings::Settings;

/// Most distinct scope sets kept (each is one token); more are refused. A scope set takes a
/// slot only once it obtained a token; at most as many again may be trying at once.
const MAX_SCOPE_SETS: usize = 16;

/// The credentials of one scope set, and whether they ever obtained a token.
struct ScopeSet {
    credentials: Credentials,
    obtained: bool,
}

/// Federated credentials behind the metadata server.
pub struct FederatedBackend {
    default: Credentials,
    /// Whether a cloud-platform token was asked for (only then is it kept fresh on INVOKE).
    default_requested: AtomicBool,
    scoped: Mutex<HashMap<Vec<String>, ScopeSet>>,
    project_id: Option<String>,
}

impl FederatedBackend {
    /// Credentials from the settings' SSM parameter. Validates without any network call.
    pub fn from_settings(settings: &Settings) -> crossfed::Result<Self> {
        let credentials = Credentials::builder()
            .with_config_parameter(settings.config_parameter.clone())
            .with_scopes([DEFAULT_SCOPE])
            .build()?;
        Ok(Self::new(credentials, settings.project_id.clone()))
    }

    /// Serves `credentials` (cloud-platform scope) and the other scope sets derived from them.
    pub fn new(credentials: Credentials, project_id: Option<String>) -> Self {
        FederatedBackend {
            default: credentials,
            default_requested: AtomicBool::new(false),
            scoped: Mutex::new(HashMap::new()),
            project_id,
        }
    }

    /// Loads the configuration (SSM) so that errors surface at init.
    pub async fn load(&self) -> crossfed::Result<()> {
        self.default.config().await.map(|_| ())
    }

    /// A warm-up (failures are only logged): the AWS identity and the federated (STS) token
    /// now, the service-account token of a scope set when it is first asked for. Client
    /// libraries ask for their own scope sets (google-cloud-storage: the three devstorage
    /// scopes; @google-cloud/storage: iam, cloud-platform, devstorage.full_control), so a
    /// cloud-platform token minted ahead would cost an IAM call and mostly go unused.
    pub async fn warm_up(&self) {
        if let Err(e) = self.default.prefetch().await {
            tracing::warn!(error = %ErrorChain(&e), "could not get a federated Google token yet");
        }
    }

    fn credentials_for(&self, scopes: &[String]) -> Result<Credentials, BackendError> {
        if scopes == [DEFAULT_SCOPE] {
            self.default_requested.store(true, Ordering::Relaxed);
            return Ok(self.default.clone());
        }
        let mut scoped = self.scoped.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = scoped.get(scopes) {
            return Ok(set.credentials.clone());
        }
        let obtained = scoped.values().filter(|set| set.obtained).count();
        let trying = scoped.len() - obtained;
        if obtained >= MAX_SCOPE_SETS || trying >= MAX_SCOPE_SETS {
            return Err(BackendError::BadRequest(format!(
                "Too many distinct scope sets (more than {MAX_SCOPE_SETS}); request cloud-platform instead."
            )));
        }
        let credentials = self
            .default
            .with_scopes(scopes.iter().cloned())
            .map_err(failed)?;
        // Kept while its first token is on the way, so concurrent callers share one exchange.
        scoped.insert(
            scopes.to_vec(),
            ScopeSet {
                credentials: credentials.clone(),
                obtained: false,
            },
        );
        Ok(credentials)
    }

    /// Records the outcome of a scope set's token request: a success keeps its slot, a
    /// failure before any success frees it.
    fn settle(&self, scopes: &[String], ok: bool) {
        if scopes == [DEFAULT_SCOPE] {
            return;
        }
        let mut scoped = self.scoped.lock().unwrap_or_else(|p| p.into_inner());
        match scoped.get_mut(scopes) {
            Some(set) if ok => set.obtained = true,
            Some(set) if !set.obtained => {
                scoped.remove(scopes);
            }
            _ => {}
        }
    }
}

fn failed(e: crossfed::Error) -> BackendError {
    BackendError::Failed {
        transient: e.is_transient(),
        message: ErrorChain(&e).to_string(),
    }
}

/// `name@PROJECT.iam.gserviceaccount.com` → `PROJECT`.
fn project_of(service_account: &str) -> Option<String> {
    let (_, domain) = service_account.split_once('@')?;
    let project = domain.strip_suffix(".iam.gserviceaccount.com")?;
    (!project.is_empty()).then(|| project.to_string())
}

impl Backend for FederatedBackend {
    async fn access_token(&self, scopes: &[String]) -> Result<AccessToken, BackendError> {
        let credentials = self.credentials_for(scopes)?;
        let token = credentials.token().await;
        self.settle(scopes, token.is_ok());
        let token = token.map_err(failed)?;
        Ok(AccessToken {
            value: token.value.expose().to_string(),
            expires_at: token.expires_at,
        })
    }

    async fn id_token(&self, audience: &str, include_email: bool) -> Result<String, BackendError> {
        let token = self
            .default
            .id_token(audience, include_email)
            .await
            .map_err(failed)?;
        Ok(token.jwt.expose().to_string())
    }

    async fn identity(&self) -> Result<Identity, BackendError> {
        let config = self.default.config().await.map_err(failed)?;
        let service_account = config
            .impersonation
            .as_ref()
            .map(|i| i.service_account.clone());
        Ok(Identity {
            project_id: self
                .project_id
                .clone()
                .or_else(|| service_account.as_deref().and_then(project_of)),
            service_account,
            universe_domain: config.universe_domain.clone(),
        })
    }

    async fn refresh_expiring(&self) {
        let scoped: Vec<_> = self
            .scoped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|set| set.obtained)
            .map(|set| set.credentials.clone())
            .collect();
        // Only tokens clients asked for: a fresh one returns at once, one inside the
        // refresh-ahead window is renewed.
        let default = self
            .default_requested
            .load(Ordering::Relaxed)
            .then_some(&self.default);
        for c in default.into_iter().chain(scoped.iter()) {
            if let Err(e) = c.token().await {
                tracing::warn!(error = %ErrorChain(&e), "refreshing a Google access token failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_from_service_account() {
        assert_eq!(
            project_of("sa@my-proj.iam.gserviceaccount.com").as_deref(),
            Some("my-proj")
        );
        assert_eq!(project_of("sa@example.com"), None);
        assert_eq!(project_of("default"), None);
    }
}
