//! Backfill and repair: `{"backfill": {"prefix": "logs/"}}` lists the S3 source
//! (`SYNC_SOURCE_BUCKET`) and the Cloud Storage destination in key order, page by page, and
//! merge-joins them: what is missing or has another ETag is looked at, copies without a
//! source are looked at in `delete` mode, in-sync objects cost nothing. Each key looked at
//! goes through [`Replicator::sync_key`], which decides on what S3 serves now (HEAD), not on
//! the listing: the same rules as events.
//!
//! After each page the position is checkpointed in the destination bucket
//! (`<prefix>.crossfed/backfill/<run>`, an empty object whose metadata holds the state,
//! written under a generation precondition). With less than `SYNC_DEADLINE_MARGIN_MS`
//! left, the invocation stops and the function invokes itself asynchronously with
//! `{"backfill": {"run": "<run>"}}`, which continues from the checkpoint.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::batch::Limits;
use crate::destination;
use crate::event::BackfillRequest;
use crate::gcs_writer::{GcsError, is_precondition_failed};
use crate::reconcile::DeleteMode;
use crate::reconcile::SOURCE_ETAG;
use crate::replicate::{Outcome, Replicator};

/// Where checkpoints live, below the destination prefix.
pub const CHECKPOINT_DIR: &str = ".crossfed/backfill/";
/// gcs-sync's own bookkeeping below the destination prefix (checkpoints).
pub use crossfed_kit::sync_areas::CHECKPOINT_AREA;
/// Keys per listing page (both clouds), the unit of work between checkpoints.
pub const DEFAULT_PAGE_SIZE: i32 = 1000;

/// What [`Continuation::invoke`] returns.
pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Starts the next invocation of a run (asynchronously, not through the sync queue).
pub trait Continuation: Send + Sync {
    fn invoke(&self, payload: Value) -> InvokeFuture<'_>;
}

/// `lambda:InvokeFunction` (`InvocationType=Event`) on the function itself.
#[derive(Clone, Debug)]
pub struct LambdaContinuation {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaContinuation {
    /// `function`: a name or ARN (`AWS_LAMBDA_FUNCTION_NAME` in Lambda).
    pub fn new(client: aws_sdk_lambda::Client, function: String) -> Self {
        LambdaContinuation { client, function }
    }
}

impl Continuation for LambdaContinuation {
    fn invoke(&self, payload: Value) -> InvokeFuture<'_> {
        Box::pin(async move {
            self.client
                .invoke()
                .function_name(&self.function)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "lambda:InvokeFunction {} failed: {}",
                        self.function,
                        aws_sdk_lambda::error::DisplayErrorContext(&e)
                    )
                })
        })
    }
}

/// What a backfill needs besides the replicator.
#[derive(Clone)]
pub struct Backfill {
    /// Starts the next invocation of a run; `None`: the run stops at its checkpoint.
    pub continuation: Option<Arc<dyn Continuation>>,
    /// Keys per listing page and checkpoint (at most 1000).
    pub page_size: i32,
}

/// A run's state, kept as the checkpoint object's metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub run: String,
    pub bucket: String,
    pub prefix: String,
    /// Every key up to and including this one is done.
    pub after: Option<String>,
    pub done: bool,
    pub invocations: u64,
    pub examined: u64,
    pub copied: u64,
    pub bytes: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Generation of the checkpoint object (not stored).
    #[serde(skip)]
    generation: i64,
}

impl Checkpoint {
    fn to_metadata(&self) -> Vec<(String, String)> {
        let mut m = vec![
            ("run", self.run.clone()),
            ("bucket", self.bucket.clone()),
            ("prefix", self.prefix.clone()),
            ("done", self.done.to_string()),
            ("invocations", self.invocations.to_string()),
            ("examined", self.examined.to_string()),
            ("copied", self.copied.to_string()),
            ("bytes", self.bytes.to_string()),
            ("deleted", self.deleted.to_string()),
            ("skipped", self.skipped.to_string()),
            ("failed", self.failed.to_string()),
        ];
        if let Some(after) = &self.after {
            m.push(("after", after.clone()));
        }
        m.into_iter()
            .map(|(k, v)| (format!("x-crossfed-backfill-{k}"), v))
            .collect()
    }

    fn from_metadata(generation: i64, m: &HashMap<String, String>) -> Option<Self> {
        let get = |k: &str| m.get(&format!("x-crossfed-backfill-{k}")).cloned();
        let num = |k: &str| get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(Checkpoint {
            run: get("run")?,
            bucket: get("bucket")?,
            prefix: get("prefix").unwrap_or_default(),
            after: get("after"),
            done: get("done").as_deref() == Some("true"),
            invocations: num("invocations"),
            examined: num("examined"),
            copied: num("copied"),
            bytes: num("bytes"),
            deleted: num("deleted"),
            skipped: num("skipped"),
            failed: num("failed"),
            generation,
        })
    }
}

/// Why a key is looked at (the decision is [`Replicator::sync_key`]'s, on S3's answer now).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    /// Listed in S3 and not (or not with this ETag) in Cloud Storage.
    Copy { key: String },
    /// Listed in Cloud Storage only.
    Delete { key: String },
}

/// One listed S3 object.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SourceEntry {
    key: String,
    etag: String,
}

/// One listed copy: its key (name without the destination prefix) and recorded ETag.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CopyEntry {
    key: String,
    etag: Option<String>,
}

/// Merge-joins two sorted pages; returns the actions for keys up to `limit` (all keys if
/// `None`).
fn join(source: &[SourceEntry], copies: &[CopyEntry], limit: Option<&str>) -> Vec<Action> {
    let within = |k: &str| limit.is_none_or(|l| k <= l);
    let (mut s, mut c) = (source.iter().peekable(), copies.iter().peekable());
    let mut actions = Vec::new();
    loop {
        let a = s.peek().filter(|e| within(&e.key));
        let b = c.peek().filter(|e| within(&e.key));
        match (a, b) {
            (None, None) => return actions,
            (Some(x), Some(y)) if x.key == y.key => {
                if y.etag.as_deref() != Some(x.etag.as_str()) {
                    actions.push(Action::Copy { key: x.key.clone() });
                }
                s.next();
                c.next();
            }
            (Some(x), y) if y.is_none_or(|y| x.key < y.key) => {
                actions.push(Action::Copy { key: x.key.clone() });
                s.next();
            }
            (_, Some(y)) => {
                actions.push(Action::Delete { key: y.key.clone() });
                c.next();
            }
            (Some(_), None) => unreachable!("handled above"),
        }
    }
}

/// Whether a key (relative to the prefixes) is one of crossfed's own objects.
fn reserved(key: &str) -> bool {
    destination::reserved_area(key).is_some()
}

/// Backfill failed (the checkpoint keeps the position; invoke again to retry).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    Request(String),
    #[error("S3 ListObjectsV2 s3://{bucket}/{prefix}: {message}")]
    List {
        bucket: String,
        prefix: String,
        message: String,
    },
    #[error(transparent)]
    Destination(#[from] GcsError),
    #[error("checkpoint {0} was changed by another invocation of the run; stopping this one")]
    Raced(String),
}

impl Backfill {
    /// Runs (part of) a backfill until done or `deadline` is near; returns the run's state.
    pub async fn handle(
        &self,
        replicator: &Arc<Replicator>,
        limits: &Limits,
        request: BackfillRequest,
        deadline: SystemTime,
    ) -> Result<Value, BackfillError> {
        let left = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let deadline = Instant::now() + left;
        let gcs = replicator.gcs();
        let mut state = match &request.run {
            Some(run) => self.load(replicator, run).await?,
            None => {
                let bucket = replicator.source_bucket().to_string();
                if let Some(asked) = request.bucket.as_deref().filter(|b| *b != bucket) {
                    return Err(BackfillError::Request(format!(
                        "backfill of bucket {asked:?} refused: this function replicates {bucket:?} \
                         (SYNC_SOURCE_BUCKET); leave \"bucket\" out or deploy a function for that bucket"
                    )));
                }
                let mut state = Checkpoint {
                    run: new_run_id(),
                    bucket,
                    prefix: request.prefix.clone(),
                    ..Checkpoint::default()
                };
                self.save(replicator, &mut state).await?;
                state
            }
        };
        if state.done {
            return Ok(summary(&state, false));
        }
        state.invocations += 1;
        let prefix = gcs.destination().prefix().to_string();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < limits.start_margin {
                break;
            }
            let page = self.page(replicator, &state, &prefix).await?;
            let abort_at = deadline
                .checked_sub(limits.abort_margin)
                .unwrap_or(deadline);
            let tally = std::sync::Mutex::new(Tally::default());
            let work = run_actions(replicator, limits, page.actions, &tally);
            let finished = tokio::time::timeout_at(abort_at, work).await.is_ok();
            // What completed counts even if the page is cut short (it is in sync next time).
            let t = tally.into_inner().unwrap_or_else(|e| e.into_inner());
            state.copied += t.copied;
            state.bytes += t.bytes;
            state.deleted += t.deleted;
            state.skipped += t.skipped;
            state.failed += t.failed;
            if !finished {
                tracing::warn!(run = %state.run, "deadline reached within a page; continuing later");
                break;
            }
            state.examined += page.examined;
            state.after = page.through.or(state.after.take());
            state.done = page.last;
            self.save(replicator, &mut state).await?;
            tracing::info!(run = %state.run, after = ?state.after, copied = state.copied, deleted = state.deleted, "backfill page done");
            if state.done {
                break;
            }
        }
        if state.done {
            tracing::info!(run = %state.run, ?state, "backfill done");
            return Ok(summary(&state, false));
        }
        self.save(replicator, &mut state).await?;
        let continuation = self.continuation.as_ref().ok_or_else(|| {
            BackfillError::Request(format!(
                "backfill run {} needs another invocation but the function cannot invoke itself (AWS_LAMBDA_FUNCTION_NAME unset); send {{\"backfill\": {{\"run\": \"{}\"}}}}",
                state.run, state.run
            ))
        })?;
        continuation
            .invoke(json!({"backfill": {"run": state.run}}))
            .await
            .map_err(BackfillError::Request)?;
        tracing::info!(run = %state.run, "continued asynchronously");
        Ok(summary(&state, true))
    }

    fn checkpoint_name(replicator: &Replicator, run: &str) -> String {
        format!(
            "{}{CHECKPOINT_DIR}{run}",
            replicator.gcs().destination().prefix()
        )
    }

    async fn load(&self, replicator: &Replicator, run: &str) -> Result<Checkpoint, BackfillError> {
        if run.is_empty() || !run.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(BackfillError::Request(format!(
                "invalid backfill run id {run:?}"
            )));
        }
        let name = Self::checkpoint_name(replicator, run);
        let gcs = replicator.gcs();
        let object = gcs
            .control()
            .get_object()
            .set_bucket(gcs.destination().bucket_resource())
            .set_object(&name)
            .send()
            .await
            .map_err(|e| gcs.call_error("get checkpoint", &name, e))?;
        let state =
            Checkpoint::from_metadata(object.generation, &object.metadata).ok_or_else(|| {
                BackfillError::Request(format!("{name} is not a backfill checkpoint"))
            })?;
        if state.bucket != replicator.source_bucket() {
            return Err(BackfillError::Request(format!(
                "backfill run {run} is for bucket {:?}, but this function replicates {:?} \
                 (SYNC_SOURCE_BUCKET); start a new run",
                state.bucket,
                replicator.source_bucket()
            )));
        }
        Ok(state)
    }

    async fn save(
        &self,
        replicator: &Replicator,
        state: &mut Checkpoint,
    ) -> Result<(), BackfillError> {
        let name = Self::checkpoint_name(replicator, &state.run);
        let gcs = replicator.gcs();
        let result = gcs
            .storage()
            .write_object(gcs.destination().bucket_resource(), &name, "")
            .set_if_generation_match(state.generation)
            .set_content_type("application/x-empty")
            .set_metadata(state.to_metadata())
            .send_buffered()
            .await;
        match result {
            Ok(object) => {
                state.generation = object.generation;
                Ok(())
            }
            Err(e) if is_precondition_failed(&e) => Err(BackfillError::Raced(name)),
            Err(e) => Err(gcs.call_error("write checkpoint", &name, e).into()),
        }
    }

    /// The next page of both listings after the checkpoint, joined.
    async fn page(
        &self,
        replicator: &Replicator,
        state: &Checkpoint,
        dest_prefix: &str,
    ) -> Result<Page, BackfillError> {
        let list_error = |message: String| BackfillError::List {
            bucket: state.bucket.clone(),
            prefix: state.prefix.clone(),
            message,
        };
        let mut request = replicator
            .s3()
            .list_objects_v2()
            .bucket(&state.bucket)
            .prefix(&state.prefix)
            .max_keys(self.page_size);
        if let Some(after) = &state.after {
            request = request.start_after(after);
        }
        let listed = request
            .send()
            .await
            .map_err(|e| list_error(aws_sdk_s3::error::DisplayErrorContext(&e).to_string()))?;
        let source_truncated = listed.is_truncated() == Some(true);
        let mut source = Vec::new();
        let mut source_last = None;
        for object in listed.contents() {
            let Some(key) = object.key() else { continue };
            source_last = Some(key.to_string());
            if reserved(key) {
                tracing::warn!(
                    key,
                    "not replicated: the key is in an area gcs-sync reserves for its own objects"
                );
                continue;
            }
            source.push(SourceEntry {
                key: key.to_string(),
                etag: object
                    .e_tag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
            });
        }
        let gcs = replicator.gcs();
        let mut listing = gcs
            .control()
            .list_objects()
            .set_parent(gcs.destination().bucket_resource())
            .set_prefix(format!("{dest_prefix}{}", state.prefix))
            .set_page_size(self.page_size);
        if let Some(after) = &state.after {
            listing = listing.set_lexicographic_start(format!("{dest_prefix}{after}"));
        }
        let prefix_for_errors = format!("{dest_prefix}{}", state.prefix);
        let page = listing
            .send()
            .await
            .map_err(|e| gcs.call_error("list", &prefix_for_errors, e))?;
        let copies_truncated = !page.next_page_token.is_empty();
        let mut copies = Vec::new();
        let mut copies_last = None;
        for object in page.objects {
            let Some(key) = object.name.strip_prefix(dest_prefix) else {
                continue;
            };
            if state.after.as_deref().is_some_and(|a| key <= a) {
                continue;
            }
            copies_last = Some(key.to_string());
            if reserved(key) {
                continue;
            }
            copies.push(CopyEntry {
                key: key.to_string(),
                etag: object.metadata.get(SOURCE_ETAG).cloned(),
            });
        }
        // Only keys both listings have fully covered are decided now.
        let limit = match (source_truncated, copies_truncated) {
            (false, false) => None,
            (true, false) => source_last.clone(),
            (false, true) => copies_last.clone(),
            (true, true) => source_last.clone().min(copies_last.clone()),
        };
        let examined = source
            .iter()
            .filter(|e| limit.as_deref().is_none_or(|l| e.key.as_str() <= l))
            .count() as u64;
        let actions = join(&source, &copies, limit.as_deref());
        let through = limit.clone().or_else(|| source_last.max(copies_last));
        Ok(Page {
            actions,
            examined,
            through,
            last: limit.is_none(),
        })
    }
}

/// One page's work.
struct Page {
    actions: Vec<Action>,
    /// Source keys covered.
    examined: u64,
    /// The last key covered (the next checkpoint).
    through: Option<String>,
    /// Nothing after this page.
    last: bool,
}

#[derive(Default)]
struct Tally {
    copied: u64,
    bytes: u64,
    deleted: u64,
    skipped: u64,
    failed: u64,
}

/// Applies a page's actions, `limits.concurrency` at a time.
async fn run_actions(
    replicator: &Arc<Replicator>,
    limits: &Limits,
    actions: Vec<Action>,
    tally: &std::sync::Mutex<Tally>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for action in actions {
        let key = match action {
            Action::Copy { key } => key,
            // Keep mode keeps copies whatever S3 says: nothing to look at.
            Action::Delete { .. } if replicator.delete_mode() == DeleteMode::Keep => continue,
            Action::Delete { key } => key,
        };
        let (replicator, permits) = (replicator.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = replicator.sync_key(&key).await;
            if let Err(e) = &result {
                tracing::warn!(key = %key, error = %e, "backfill of a key failed");
            }
            result
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
        match joined {
            Ok(Ok(Outcome::Copied { bytes, .. })) => {
                tally.copied += 1;
                tally.bytes += bytes;
            }
            Ok(Ok(Outcome::Deleted { .. })) => tally.deleted += 1,
            Ok(Ok(Outcome::Skipped(_))) => tally.skipped += 1,
            Ok(Err(_)) | Err(_) => tally.failed += 1,
        }
    }
}

fn summary(state: &Checkpoint, continued: bool) -> Value {
    let mut v = serde_json::to_value(state).unwrap_or_default();
    v["continued"] = continued.into();
    v
}

/// A fresh run id: time-ordered hex, unique enough per function.
fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos:x}-{:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(key: &str, etag: &str) -> SourceEntry {
        SourceEntry {
            key: key.into(),
            etag: etag.into(),
        }
    }

    fn copy(key: &str, etag: Option<&str>) -> CopyEntry {
        CopyEntry {
            key: key.into(),
            etag: etag.map(str::to_string),
        }
    }

    fn keys(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Copy { key, .. } => format!("copy {key}"),
                Action::Delete { key } => format!("delete {key}"),
            })
            .collect()
    }

    #[test]
    fn join_finds_missing_different_and_extra() {
        let source = [src("a", "1"), src("b", "2"), src("d", "4"), src("f", "6")];
        let copies = [
            copy("b", Some("2")),
            copy("c", Some("3")),
            copy("d", Some("x")),
            copy("e", None),
        ];
        assert_eq!(
            keys(&join(&source, &copies, None)),
            ["copy a", "delete c", "copy d", "delete e", "copy f"]
        );
        // Up to a limit only (the rest is decided with the next page).
        assert_eq!(
            keys(&join(&source, &copies, Some("c"))),
            ["copy a", "delete c"]
        );
        assert!(join(&source[1..2], &copies[..1], None).is_empty());
    }

    #[test]
    fn checkpoint_round_trip() {
        let state = Checkpoint {
            run: "r1".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
            after: Some("p/ü k".into()),
            invocations: 2,
            copied: 7,
            ..Checkpoint::default()
        };
        let m: HashMap<String, String> = state.to_metadata().into_iter().collect();
        let back = Checkpoint::from_metadata(9, &m).unwrap();
        assert_eq!(back.generation, 9);
        assert_eq!(
            Checkpoint {
                generation: 0,
                ..back
            },
            state
        );
        assert!(Checkpoint::from_metadata(1, &HashMap::new()).is_none());
    }

    #[test]
    fn reserved_names() {
        assert!(reserved(".crossfed-parts/k/e/000001"));
        assert!(reserved(".crossfed/backfill/r"));
        assert!(!reserved("a/.crossfed/x"));
        assert!(CHECKPOINT_DIR.starts_with(CHECKPOINT_AREA));
    }
}
