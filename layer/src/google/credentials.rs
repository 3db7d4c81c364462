//! [`Credentials`]: the federated Google credentials, usable directly or as the
//! credentials of the official Google Cloud client libraries.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_types::region::Region;
use google_cloud_auth::credentials::{
    AccessToken, AccessTokenCredentialsProvider, CacheableResource, CredentialsProvider, EntityTag,
};
use google_cloud_auth::errors::CredentialsError;
use http::{Extensions, HeaderMap, HeaderValue};
use tracing::Instrument;

use super::aws_identity::{AwsIdentity, AwsIdentityResolver, AwsIdentitySource};
use super::config::{ExternalAccountConfig, ParseOptions};
use super::config_source::{ConfigLoader, ConfigSource, DEFAULT_SSM_TTL};
use super::id_token;
use super::impersonation::{self, DEFAULT_LIFETIME};
use super::sts;
use super::subject_token;
use crate::aws::IdToken;
use crate::context::Context;
use crate::endpoint::{self, ALLOW_LOCAL_ENV, ALLOWED_UNIVERSES_ENV};
use crate::error::{Error, Result, Step};
use crate::restore::Minted;
use crate::secret::Secret;
use crate::token::Token;
use crate::token_cache::{CacheSettings, Clock, Expiring, TokenCache, TokenSource};
use crate::transport::Transport;

/// The default OAuth scope.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const IAM_SCOPE: &str = "https://www.googleapis.com/auth/iam";
/// A federated token with less than this left is not reused for impersonation.
const STS_REUSE_MARGIN: Duration = Duration::from_secs(60);
/// Most audiences whose ID tokens are cached at once.
const MAX_ID_TOKEN_AUDIENCES: usize = 64;

/// Google credentials obtained from the AWS identity by Workload Identity Federation.
///
/// Cheap to clone; clones share one token cache. Use it with the Google Cloud clients:
/// `Storage::builder().with_credentials(google_cloud_auth::credentials::Credentials::from(creds))`.
#[derive(Clone, Debug)]
pub struct Credentials {
    inner: Arc<TokenCache<FederatedSource>>,
}

impl std::fmt::Debug for TokenCache<FederatedSource> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("source", self.source().federation.loader.source())
            .finish_non_exhaustive()
    }
}

/// Builds [`Credentials`]. Nothing is fetched until the first token is needed.
#[derive(Debug)]
pub struct Builder {
    source: Option<ConfigSource>,
    ctx: Context,
    scopes: Vec<String>,
    aws: Option<AwsIdentity>,
    ssm_client: Option<aws_sdk_ssm::Client>,
    ssm_ttl: Duration,
    cache: CacheSettings,
    allow_local: Option<bool>,
    allowed_universes: Vec<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            source: None,
            ctx: Context::default(),
            scopes: vec![CLOUD_PLATFORM_SCOPE.to_string()],
            aws: None,
            ssm_client: None,
            ssm_ttl: DEFAULT_SSM_TTL,
            cache: CacheSettings::default(),
            allow_local: None,
            allowed_universes: Vec::new(),
        }
    }
}

impl Builder {
    /// Where the configuration comes from (default: [`ConfigSource::from_env`]).
    pub fn with_config_source(mut self, source: ConfigSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Reads the configuration from this SSM parameter (name or ARN).
    pub fn with_config_parameter(self, name: impl Into<String>) -> Self {
        self.with_config_source(ConfigSource::Ssm(name.into()))
    }

    /// Reads the configuration from this file.
    pub fn with_config_file(self, path: impl Into<PathBuf>) -> Self {
        self.with_config_source(ConfigSource::File(path.into()))
    }

    /// Uses this configuration JSON.
    pub fn with_config_json(self, json: impl Into<String>) -> Self {
        self.with_config_source(ConfigSource::Inline(json.into()))
    }

    /// Environment, clock, timeouts, retry policy and HTTP client (default:
    /// [`Context::default`]). Give both directions' builders the same context to share one HTTP
    /// client pool.
    pub fn with_context(mut self, ctx: Context) -> Self {
        self.ctx = ctx;
        self
    }

    /// OAuth scopes of the final token (default: cloud-platform).
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Uses these AWS credentials and region instead of resolving them.
    pub fn with_aws_identity(
        mut self,
        credentials: impl ProvideCredentials + 'static,
        region: impl Into<String>,
    ) -> Self {
        self.aws = Some(AwsIdentity {
            credentials: SharedCredentialsProvider::new(credentials),
            region: Region::new(region.into()),
        });
        self
    }

    /// Uses this SSM client instead of one built from the AWS identity.
    pub fn with_ssm_client(mut self, client: aws_sdk_ssm::Client) -> Self {
        self.ssm_client = Some(client);
        self
    }

    /// How long an SSM value is reused (default 5 minutes).
    pub fn with_ssm_ttl(mut self, ttl: Duration) -> Self {
        self.ssm_ttl = ttl;
        self
    }

    /// Token cache tuning (refresh-ahead window, error back-off).
    pub fn with_cache_settings(mut self, settings: CacheSettings) -> Self {
        self.cache = settings;
        self
    }

    /// Allows plain-http loopback Google endpoints (default: `CROSSFED_ALLOW_LOCAL_ENDPOINTS=1`).
    pub fn with_allow_local_endpoints(mut self, allow: bool) -> Self {
        self.allow_local = Some(allow);
        self
    }

    /// Also allows these universe domains besides `googleapis.com` (added to
    /// `CROSSFED_ALLOWED_UNIVERSES`). A configuration naming any other universe is refused
    /// before any connection: the configuration cannot widen the allow-list itself.
    pub fn with_allowed_universes<I, S>(mut self, universes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_universes = universes.into_iter().map(Into::into).collect();
        self
    }

    /// Validates what can be validated now and returns the credentials. Needs no runtime.
    pub fn build(self) -> Result<Credentials> {
        let source = match self.source {
            Some(s) => s,
            None => ConfigSource::from_env(&self.ctx)?,
        };
        if self.scopes.is_empty() {
            return Err(Error::invalid(
                "scopes",
                "at least one OAuth scope is required",
            ));
        }
        if let Some(identity) = &self.aws {
            endpoint::check_region("region", identity.region.as_ref())?;
        }
        let allow_local = self
            .allow_local
            .unwrap_or_else(|| self.ctx.env_var(ALLOW_LOCAL_ENV).is_some_and(|v| v == "1"));
        let mut universes = self.allowed_universes;
        if let Some(raw) = self.ctx.env_var(ALLOWED_UNIVERSES_ENV) {
            universes.extend(endpoint::parse_allowed_universes(&raw));
        }
        let options = ParseOptions::default()
            .with_allow_local(allow_local)
            .with_allowed_universes(universes);
        let loader = ConfigLoader::new(
            source,
            options,
            self.ssm_ttl,
            self.ssm_client,
            self.ctx.clock().clone(),
        )?;
        let aws = AwsIdentityResolver::new(match self.aws {
            Some(identity) => AwsIdentitySource::Provided(identity),
            None => AwsIdentitySource::Auto(self.ctx.clone()),
        });
        let federation = Arc::new(Federation {
            loader,
            aws,
            transport: self.ctx.transport()?,
            clock: self.ctx.clock().clone(),
            cache: self.cache,
            federated: Mutex::new(None),
            sts_flight: tokio::sync::Mutex::new(()),
            id_tokens: Mutex::new(HashMap::new()),
        });
        Ok(Credentials::new(federation, self.scopes))
    }
}

impl Credentials {
    /// A builder with defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn new(federation: Arc<Federation>, scopes: Vec<String>) -> Self {
        let (cache, clock) = (federation.cache.clone(), federation.clock.clone());
        Credentials {
            inner: Arc::new(TokenCache::new(
                FederatedSource { federation, scopes },
                cache,
                clock,
            )),
        }
    }

    /// Credentials for other OAuth scopes that share this one's configuration, AWS identity
    /// and federated (STS) token, with their own token cache.
    pub fn with_scopes<I, S>(&self, scopes: I) -> Result<Credentials>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        if scopes.is_empty() {
            return Err(Error::invalid(
                "scopes",
                "at least one OAuth scope is required",
            ));
        }
        Ok(Credentials::new(
            self.inner.source().federation.clone(),
            scopes,
        ))
    }

    /// A Google ID token for `audience`, of the impersonated service account: IAM
    /// Credentials `generateIdToken` authorised by the federated token the access tokens use
    /// (one STS exchange serves both). Cached per audience until shortly before it expires.
    /// Needs `service_account_impersonation_url` in the configuration.
    pub async fn id_token(&self, audience: &str, include_email: bool) -> Result<IdToken> {
        let federation = &self.inner.source().federation;
        let cache = {
            let mut caches = federation
                .id_tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let key = (audience.to_string(), include_email);
            match caches.get(&key) {
                Some(cache) => cache.clone(),
                None => {
                    if caches.len() >= MAX_ID_TOKEN_AUDIENCES
                        && let Some(old) = caches.keys().next().cloned()
                    {
                        caches.remove(&old);
                    }
                    let cache = Arc::new(TokenCache::new(
                        FederatedIdToken {
                            federation: federation.clone(),
                            audience: key.0.clone(),
                            include_email,
                        },
                        federation.cache.clone(),
                        federation.clock.clone(),
                    ));
                    caches.insert(key, cache.clone());
                    cache
                }
            }
        };
        Ok(cache.get().await?.item.clone())
    }

    /// Credentials configured from the environment (`CROSSFED_CONFIG_PARAMETER` or
    /// `GOOGLE_APPLICATION_CREDENTIALS`).
    pub fn from_env() -> Result<Self> {
        Builder::default().build()
    }

    /// A valid access token, from the cache when possible.
    pub async fn token(&self) -> Result<Token> {
        Ok(self.inner.get().await?.item.token.clone())
    }

    /// Gets ready for the first token without minting one: loads the configuration,
    /// resolves the AWS identity and, with service-account impersonation, exchanges the
    /// federated (STS) token that every scope set and ID token audience then shares (kept
    /// while it has more than a minute left). Without impersonation the federated token is
    /// the access token and depends on the scopes, so this fetches this credential's token.
    /// For callers that do not know yet which scopes they will be asked for.
    pub async fn prefetch(&self) -> Result<()> {
        let federation = &self.inner.source().federation;
        let config = federation.loader.load(&federation.aws).await?;
        if config.impersonation.is_some() {
            federation
                .federated_token(&config, IAM_SCOPE, true)
                .await
                .map(|_| ())
        } else {
            self.token().await.map(|_| ())
        }
    }

    /// The current credential configuration (from the cache when possible).
    pub async fn config(&self) -> Result<Arc<ExternalAccountConfig>> {
        let federation = &self.inner.source().federation;
        federation.loader.load(&federation.aws).await
    }

    /// The resolved AWS identity.
    pub async fn aws_identity(&self) -> Result<&AwsIdentity> {
        self.inner.source().federation.aws.get().await
    }
}

impl CredentialsProvider for Credentials {
    async fn headers(
        &self,
        extensions: Extensions,
    ) -> std::result::Result<CacheableResource<HeaderMap>, CredentialsError> {
        let cached = self.inner.get().await?;
        if extensions.get::<EntityTag>() == Some(&cached.tag) {
            return Ok(CacheableResource::NotModified);
        }
        Ok(CacheableResource::New {
            entity_tag: cached.tag.clone(),
            data: cached.item.headers.clone(),
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        match self.config().await {
            Ok(config) => Some(config.universe_domain.clone()),
            Err(_) => Some("googleapis.com".to_string()),
        }
    }
}

impl AccessTokenCredentialsProvider for Credentials {
    async fn access_token(&self) -> std::result::Result<AccessToken, CredentialsError> {
        let cached = self.inner.get().await?;
        Ok(AccessToken {
            token: cached.item.token.value.expose().to_string(),
        })
    }
}

/// An ID token cache key: (audience, include_email).
type IdTokenKey = (String, bool);

/// What every scope set and ID token audience of one configuration shares: config loader,
/// AWS identity, HTTP transport and the federated (STS) token.
struct Federation {
    loader: ConfigLoader,
    aws: AwsIdentityResolver,
    transport: Transport,
    clock: Arc<dyn Clock>,
    cache: CacheSettings,
    /// The last federated token, reused for impersonation while valid (and not minted
    /// before a restore from a snapshot).
    federated: Mutex<Option<(String, Token, Minted)>>,
    /// One STS exchange at a time: concurrent scope sets and audiences share its result.
    sts_flight: tokio::sync::Mutex<()>,
    /// ID token caches by (audience, include_email).
    id_tokens: Mutex<HashMap<IdTokenKey, Arc<TokenCache<FederatedIdToken>>>>,
}

/// The federation flow for one scope set: config → AWS identity → subject token → STS →
/// impersonation.
struct FederatedSource {
    federation: Arc<Federation>,
    scopes: Vec<String>,
}

impl Federation {
    fn reusable_federated(&self, key: &str) -> Option<Token> {
        let now = self.clock.now();
        let mut federated = self.federated.lock().unwrap_or_else(|p| p.into_inner());
        let restored = federated.as_ref().is_some_and(|(_, _, minted)| {
            minted.dropped_after_restore(&*self.clock, "the federated token")
        });
        if restored {
            *federated = None;
        }
        match &*federated {
            Some((k, token, _)) if k == key && token.remaining(now) > STS_REUSE_MARGIN => {
                Some(token.clone())
            }
            _ => None,
        }
    }

    /// A federated token for `scope`. With `reuse`, the last one is reused while it has
    /// more than a minute left (it only authorises the impersonation call); without, it is
    /// the final token and always freshly exchanged, so a refresh ahead of expiry really
    /// yields a new token.
    async fn federated_token(
        &self,
        config: &ExternalAccountConfig,
        scope: &str,
        reuse: bool,
    ) -> Result<Token> {
        let key = format!("{}\n{}\n{scope}", config.audience, config.token_url);
        if reuse && let Some(token) = self.reusable_federated(&key) {
            tracing::debug!("reusing the federated token");
            return Ok(token);
        }
        let _flight = self.sts_flight.lock().await;
        if reuse && let Some(token) = self.reusable_federated(&key) {
            tracing::debug!("reusing the federated token another caller just obtained");
            return Ok(token);
        }
        let identity = self.aws.get().await?;
        let aws_credentials = identity.credentials().await?;
        let subject_token = subject_token::build(
            &aws_credentials,
            identity.region.as_ref(),
            &config.credential_source.regional_cred_verification_url,
            &config.audience,
            self.clock.now(),
        )?;
        let started = Instant::now();
        let token = sts::exchange(
            &self.transport,
            sts::Exchange {
                token_url: &config.token_url,
                audience: &config.audience,
                scope,
                subject_token: &subject_token,
                impersonating: config.impersonation.is_some(),
                config_lifetime: config
                    .impersonation
                    .as_ref()
                    .is_some_and(|i| i.lifetime.is_some()),
            },
            || self.clock.now(),
        )
        .instrument(tracing::info_span!("crossfed.sts", audience = %config.audience))
        .await?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "STS exchange done"
        );
        if reuse {
            *self.federated.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((key, token.clone(), Minted::now(&*self.clock)));
        }
        Ok(token)
    }
}

fn auth_headers(token: &Secret, quota_project: Option<&str>) -> Result<HeaderMap> {
    let invalid = |what: &str| {
        Error::failed(
            Step::Sts,
            false,
            format!("Google returned {what} that is not a valid header value"),
        )
    };
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| invalid("a token"))?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(http::header::AUTHORIZATION, value);
    if let Some(project) = quota_project {
        let v = HeaderValue::from_str(project)
            .map_err(|_| Error::invalid("quota_project_id", "is not a valid project id"))?;
        headers.insert("x-goog-user-project", v);
    }
    Ok(headers)
}

/// A Google access token and the request headers that carry it.
struct GoogleToken {
    token: Token,
    headers: HeaderMap,
}

impl Expiring for GoogleToken {
    fn expires_at(&self) -> std::time::SystemTime {
        self.token.expires_at
    }
}

impl TokenSource for FederatedSource {
    type Output = GoogleToken;

    async fn fetch(&self) -> Result<GoogleToken> {
        let fed = &self.federation;
        let config = fed.loader.load(&fed.aws).await?;
        let token = match &config.impersonation {
            Some(imp) => {
                let federated = fed.federated_token(&config, IAM_SCOPE, true).await?;
                let started = Instant::now();
                let token = impersonation::generate_access_token(
                    &fed.transport,
                    &imp.url,
                    &federated.value,
                    &self.scopes,
                    imp.lifetime.unwrap_or(DEFAULT_LIFETIME),
                    fed.clock.now(),
                )
                .instrument(tracing::info_span!(
                    "crossfed.impersonation",
                    service_account = %imp.service_account
                ))
                .await?;
                tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "impersonation done"
                );
                token
            }
            None => {
                fed.federated_token(&config, &self.scopes.join(" "), false)
                    .await?
            }
        };
        let headers = auth_headers(&token.value, config.quota_project_id.as_deref())?;
        tracing::info!(
            expires_in_s = token.remaining(fed.clock.now()).as_secs(),
            "obtained a Google access token"
        );
        Ok(GoogleToken { token, headers })
    }
}

/// The ID token flow for one audience: config → federated token → generateIdToken.
struct FederatedIdToken {
    federation: Arc<Federation>,
    audience: String,
    include_email: bool,
}

impl Expiring for IdToken {
    fn expires_at(&self) -> std::time::SystemTime {
        self.claims.expires_at()
    }
}

impl TokenSource for FederatedIdToken {
    type Output = IdToken;

    async fn fetch(&self) -> Result<IdToken> {
        let fed = &self.federation;
        let config = fed.loader.load(&fed.aws).await?;
        let Some(imp) = &config.impersonation else {
            return Err(Error::invalid(
                "service_account_impersonation_url",
                "ID tokens need service account impersonation: create the configuration with `--service-account`",
            ));
        };
        let url = id_token::url(&imp.url)?;
        let federated = fed.federated_token(&config, IAM_SCOPE, true).await?;
        let token = id_token::generate(
            &fed.transport,
            &url,
            &federated.value,
            &self.audience,
            self.include_email,
        )
        .instrument(tracing::info_span!(
            "crossfed.id_token",
            service_account = %imp.service_account
        ))
        .await?;
        tracing::info!("obtained a Google ID token");
        Ok(token)
    }
}
