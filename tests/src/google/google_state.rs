//! What the fake STS and IAM Credentials handlers share: the configuration, the token
//! registry, per-API call counters and fault queues, and the request records.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use url::Url;

use crate::faults::{Fault, FaultQueue};
use crate::google::fake_google_config::FakeGoogleConfig;
use crate::google::id_tokens::IdTokenIssuer;
use crate::google::records::{IamRequestRecord, StsRequestRecord};
use crate::google::token_registry::TokenRegistry;
use crate::server::lock;

/// An API of [`FakeGoogle`]: the key of its call counters and fault queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GoogleApi {
    /// STS `POST /v1/token`.
    Sts,
    /// IAM Credentials generateAccessToken.
    GenerateAccessToken,
    /// IAM Credentials generateIdToken.
    GenerateIdToken,
}

impl GoogleApi {
    pub(crate) const ALL: [GoogleApi; 3] = [
        GoogleApi::Sts,
        GoogleApi::GenerateAccessToken,
        GoogleApi::GenerateIdToken,
    ];
}

/// Calls received by one API and the faults queued for it.
#[derive(Debug, Default)]
pub(crate) struct ApiTraffic {
    pub(crate) calls: AtomicUsize,
    pub(crate) faults: FaultQueue,
}

impl ApiTraffic {
    /// Counts a call and takes the fault queued for it, if any.
    pub(crate) fn begin(&self) -> Option<Fault> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.faults.next()
    }
}

/// Mutable knobs tests may change while the fake runs.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) sts_token_lifetime: Duration,
    pub(crate) max_lifetime_secs: u64,
}

/// State shared by the STS and IAM handlers.
#[derive(Debug)]
pub(crate) struct GoogleState {
    pub(crate) config: FakeGoogleConfig,
    pub(crate) pool: String,
    pub(crate) aws_sts_url: Url,
    pub(crate) tokens: TokenRegistry,
    pub(crate) http: reqwest::Client,
    pub(crate) settings: Mutex<Settings>,
    /// Indexed by [`GoogleApi`].
    pub(crate) traffic: [ApiTraffic; 3],
    pub(crate) sts_requests: Mutex<Vec<StsRequestRecord>>,
    /// generateAccessToken and generateIdToken requests.
    pub(crate) iam_requests: Mutex<Vec<IamRequestRecord>>,
    pub(crate) id_tokens: IdTokenIssuer,
}

impl GoogleState {
    pub(crate) fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    pub(crate) fn traffic(&self, api: GoogleApi) -> &ApiTraffic {
        &self.traffic[api as usize]
    }
}
