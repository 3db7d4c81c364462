//! Running a batch: messages of the same key one after another in sequencer order, different
//! keys concurrently (bounded), nothing new started close to the invocation deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::event::ObjectChange;
use crate::ordering::compare_sequencers;
use crate::replicate::{Outcome, Replicator};

/// Concurrency and the invocation deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `SYNC_CONCURRENCY` (default 4): messages (of different keys) in flight.
    pub concurrency: usize,
    /// `SYNC_DEADLINE_MARGIN_MS` (default 10 000): no message starts with less time left.
    pub start_margin: Duration,
    /// `SYNC_ABORT_MARGIN_MS` (default 2 000): work still running this close to the deadline
    /// is abandoned (an unfinished upload never becomes an object) and reported as failed.
    pub abort_margin: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 4,
            start_margin: Duration::from_secs(10),
            abort_margin: Duration::from_secs(2),
        }
    }
}

/// One unit that succeeds or fails as a whole (an SQS message, or one direct change).
#[derive(Clone, Debug)]
pub struct Work {
    pub id: String,
    pub changes: Vec<ObjectChange>,
}

/// What happened to a unit: its applied changes, or why it failed.
pub type WorkResult = Result<Vec<Applied>, String>;

/// One change applied.
#[derive(Clone, Debug)]
pub struct Applied {
    pub outcome: Outcome,
    /// Replication lag: from S3's event time until the copy or removal was done (`None` for
    /// a skip, or when the event carried no usable time).
    pub lag: Option<Duration>,
}

/// Runs `items` and returns one result per item, in input order.
pub async fn run(
    replicator: &Arc<Replicator>,
    limits: &Limits,
    items: Vec<Work>,
    deadline: Instant,
) -> Vec<(String, WorkResult)> {
    let count = items.len();
    let ids: Vec<String> = items.iter().map(|w| w.id.clone()).collect();
    let mut results: Vec<Option<WorkResult>> = vec![None; count];
    let permits = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut lane_members = HashMap::new();
    for lane in lanes(items.into_iter().enumerate().collect()) {
        let indices: Vec<usize> = lane.iter().map(|(i, _)| *i).collect();
        let (replicator, limits, permits) = (replicator.clone(), limits.clone(), permits.clone());
        let handle = tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let mut done = Vec::with_capacity(lane.len());
            for (index, work) in lane {
                done.push((index, run_one(&replicator, &limits, &work, deadline).await));
            }
            done
        });
        lane_members.insert(handle.id(), indices);
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        match joined {
            Ok((_, done)) => {
                for (index, result) in done {
                    results[index] = Some(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "a worker task failed");
                for index in lane_members.remove(&e.id()).unwrap_or_default() {
                    results[index] = Some(Err(format!("worker failed: {e}")));
                }
            }
        }
    }
    ids.into_iter()
        .zip(results)
        .map(|(id, r)| (id, r.unwrap_or_else(|| Err("not run".into()))))
        .collect()
}

async fn run_one(
    replicator: &Replicator,
    limits: &Limits,
    work: &Work,
    deadline: Instant,
) -> WorkResult {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < limits.start_margin {
        tracing::warn!(id = %work.id, left_ms = left.as_millis() as u64, "deadline near: not starting");
        return Err(format!(
            "not started: {} ms left before the invocation deadline",
            left.as_millis()
        ));
    }
    let abort_at = deadline
        .checked_sub(limits.abort_margin)
        .unwrap_or(deadline);
    let apply_all = async {
        let mut outcomes = Vec::with_capacity(work.changes.len());
        for change in &work.changes {
            match replicator.apply(change).await {
                Ok(outcome) => {
                    tracing::info!(
                        id = %work.id,
                        event = %change.event_name,
                        bucket = %change.bucket,
                        key = %change.key,
                        sequencer = change.sequencer.as_deref().unwrap_or(""),
                        outcome = ?outcome,
                        "applied"
                    );
                    let lag = match outcome {
                        Outcome::Skipped(_) => None,
                        Outcome::Copied { .. } | Outcome::Deleted { .. } => change
                            .event_time
                            .and_then(|at| SystemTime::now().duration_since(at).ok()),
                    };
                    outcomes.push(Applied { outcome, lag });
                }
                Err(e) => {
                    tracing::warn!(
                        id = %work.id,
                        event = %change.event_name,
                        bucket = %change.bucket,
                        key = %change.key,
                        error = %e,
                        "failed"
                    );
                    return Err(crossfed_kit::chain(&e));
                }
            }
        }
        Ok(outcomes)
    };
    match tokio::time::timeout_at(abort_at, apply_all).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(id = %work.id, "abandoned at the invocation deadline");
            Err("abandoned: the invocation deadline was reached".into())
        }
    }
}

/// Groups work touching the same key into lanes (a unit with several keys joins all their
/// lanes into one), each ordered by sequencer.
fn lanes(items: Vec<(usize, Work)>) -> Vec<Vec<(usize, Work)>> {
    let mut lanes: Vec<Vec<(usize, Work)>> = Vec::new();
    let mut lane_of: HashMap<String, usize> = HashMap::new();
    for item in items {
        let mut keys: Vec<&String> = item.1.changes.iter().map(|c| &c.key).collect();
        keys.dedup();
        let mut hit: Vec<usize> = keys
            .iter()
            .filter_map(|k| lane_of.get(*k).copied())
            .collect();
        hit.sort_unstable();
        hit.dedup();
        let target = match hit.first() {
            Some(&t) => t,
            None => {
                lanes.push(Vec::new());
                lanes.len() - 1
            }
        };
        for &other in hit.iter().skip(1) {
            let moved = std::mem::take(&mut lanes[other]);
            for (_, w) in &moved {
                for c in &w.changes {
                    lane_of.insert(c.key.clone(), target);
                }
            }
            lanes[target].extend(moved);
        }
        for c in &item.1.changes {
            lane_of.insert(c.key.clone(), target);
        }
        lanes[target].push(item);
    }
    for lane in &mut lanes {
        lane.sort_by(|(ia, a), (ib, b)| {
            let seq = |w: &Work| w.changes.first().and_then(|c| c.sequencer.clone());
            match (seq(a), seq(b)) {
                (Some(x), Some(y)) => compare_sequencers(&x, &y).then(ia.cmp(ib)),
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (None, None) => ia.cmp(ib),
            }
        });
    }
    lanes.retain(|l| !l.is_empty());
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ChangeKind;

    fn work(id: &str, keys: &[(&str, Option<&str>)]) -> Work {
        Work {
            id: id.into(),
            changes: keys
                .iter()
                .map(|(k, s)| ObjectChange {
                    kind: ChangeKind::Created,
                    event_name: "ObjectCreated:Put".into(),
                    bucket: "b".into(),
                    key: k.to_string(),
                    size: None,
                    etag: None,
                    version_id: None,
                    sequencer: s.map(str::to_string),
                    event_time: None,
                })
                .collect(),
        }
    }

    fn ids(lanes: &[Vec<(usize, Work)>]) -> Vec<Vec<&str>> {
        lanes
            .iter()
            .map(|l| l.iter().map(|(_, w)| w.id.as_str()).collect())
            .collect()
    }

    #[test]
    fn same_key_is_one_lane_in_sequencer_order() {
        let items = vec![
            work("a2", &[("a", Some("0A02"))]),
            work("b1", &[("b", Some("0B"))]),
            work("a1", &[("a", Some("0A01"))]),
            work("a3", &[("a", Some("0A1"))]),
            work("c", &[("c", None)]),
        ];
        let lanes = lanes(items.into_iter().enumerate().collect());
        assert_eq!(
            ids(&lanes),
            vec![vec!["a1", "a2", "a3"], vec!["b1"], vec!["c"]]
        );
    }

    #[test]
    fn multi_key_messages_join_lanes() {
        let items = vec![
            work("x", &[("a", Some("01"))]),
            work("y", &[("b", Some("02"))]),
            work("z", &[("a", Some("03")), ("b", Some("04"))]),
            work("w", &[("b", Some("05"))]),
            work("empty", &[]),
        ];
        let lanes = lanes(items.into_iter().enumerate().collect());
        assert_eq!(ids(&lanes), vec![vec!["x", "y", "z", "w"], vec!["empty"]]);
    }
}
