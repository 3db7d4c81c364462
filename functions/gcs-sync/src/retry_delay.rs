//! Back-off for failed SQS messages: instead of waiting out the queue's visibility timeout
//! (90 minutes in the template), a failed message becomes visible again after a delay that
//! grows with its receive count (`ChangeMessageVisibility`; the queue URL derives from the
//! message's `eventSourceARN`).

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use tokio::task::JoinSet;

use crate::event::Receipt;

/// Default delays by receive count (1st, 2nd, 3rd and later failures): 30 s, 2 min, 10 min.
pub const DEFAULT_DELAYS: [Duration; 3] = [
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];
/// SQS's largest visibility timeout: 12 hours.
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 3600);

/// Sets the retry delay of failed messages.
#[derive(Clone, Debug)]
pub struct RetryDelay {
    sqs: aws_sdk_sqs::Client,
    /// `AWS_ENDPOINT_URL[_SQS]`, when set: queue URLs are built on it.
    endpoint: Option<String>,
    delays: Vec<Duration>,
}

impl RetryDelay {
    /// `delays[i]` applies after the `i+1`-th receive; the last one to every later receive.
    pub fn new(sqs: aws_sdk_sqs::Client, endpoint: Option<String>, delays: Vec<Duration>) -> Self {
        RetryDelay {
            sqs,
            endpoint,
            delays,
        }
    }

    /// The delay before a message received `receive_count` times is tried again.
    pub fn delay_for(&self, receive_count: u32) -> Duration {
        let index = receive_count.max(1) as usize - 1;
        self.delays
            .get(index)
            .or(self.delays.last())
            .copied()
            .unwrap_or_default()
            .min(MAX_DELAY)
    }

    /// Delays every `(message id, receipt)` concurrently and returns how many were delayed.
    /// A failure is logged, not returned: that message comes back after the queue's
    /// visibility timeout instead.
    pub async fn apply(&self, failed: Vec<(String, Receipt)>) -> usize {
        let mut calls = JoinSet::new();
        for (id, receipt) in failed {
            let delay = self.delay_for(receipt.receive_count);
            let url = queue_url(&receipt.queue_arn, self.endpoint.as_deref());
            let sqs = self.sqs.clone();
            calls.spawn(async move {
                let url = url?;
                sqs.change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(&receipt.handle)
                    .visibility_timeout(delay.as_secs() as i32)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "ChangeMessageVisibility on {url}: {}",
                            DisplayErrorContext(&e)
                        )
                    })?;
                tracing::info!(
                    id,
                    receive_count = receipt.receive_count,
                    delay_s = delay.as_secs(),
                    "retry delayed"
                );
                Ok::<_, String>(())
            });
        }
        let mut delayed = 0;
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(Ok(())) => delayed += 1,
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    "could not delay a failed message's retry; it returns after the queue's visibility timeout"
                ),
                Err(e) => tracing::warn!(error = %e, "retry-delay task failed"),
            }
        }
        delayed
    }
}

/// The queue URL for `arn:PARTITION:sqs:REGION:ACCOUNT:NAME`: on `endpoint` when one is
/// configured, else the regional SQS endpoint.
pub fn queue_url(arn: &str, endpoint: Option<&str>) -> Result<String, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ["arn", partition, "sqs", region, account, name] = parts.as_slice() else {
        return Err(format!("eventSourceARN {arn:?} is not an SQS queue ARN"));
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    };
    if ![partition, region, account, name].iter().all(|s| valid(s)) {
        return Err(format!("eventSourceARN {arn:?} is not an SQS queue ARN"));
    }
    Ok(match endpoint {
        Some(base) => format!("{}/{account}/{name}", base.trim_end_matches('/')),
        None => {
            let domain = match *partition {
                "aws-cn" => "amazonaws.com.cn",
                _ => "amazonaws.com",
            };
            format!("https://sqs.{region}.{domain}/{account}/{name}")
        }
    })
}

/// Parses `SYNC_RETRY_DELAYS_S` (`30,120,600`).
pub fn parse_delays(raw: &str) -> Result<Vec<Duration>, String> {
    let fail = || {
        format!(
            "SYNC_RETRY_DELAYS_S={raw:?} is invalid: use comma-separated whole seconds from 0 to {} \
             (e.g. 30,120,600), one per receive count, the last repeating",
            MAX_DELAY.as_secs()
        )
    };
    raw.split(',')
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= MAX_DELAY.as_secs())
                .map(Duration::from_secs)
                .ok_or_else(fail)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:crossfed-SyncQueue-AbC_1";
        assert_eq!(
            queue_url(arn, None).unwrap(),
            "https://sqs.eu-west-1.amazonaws.com/123456789012/crossfed-SyncQueue-AbC_1"
        );
        assert_eq!(
            queue_url(arn, Some("http://127.0.0.1:5000/")).unwrap(),
            "http://127.0.0.1:5000/123456789012/crossfed-SyncQueue-AbC_1"
        );
        assert_eq!(
            queue_url("arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo", None).unwrap(),
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q.fifo"
        );
        for bad in [
            "",
            "arn:aws:s3:::bucket",
            "arn:aws:sqs:us-east-1:123456789012",
            "arn:aws:sqs:us-east-1:123456789012:a/b",
            "arn:aws:sqs:us-east-1::q",
            "arn:aws:sqs:us-east-1:1:q:extra",
        ] {
            assert!(queue_url(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn delays_grow_with_the_receive_count() {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .build();
        let d = RetryDelay::new(
            aws_sdk_sqs::Client::from_conf(conf),
            None,
            DEFAULT_DELAYS.to_vec(),
        );
        let secs: Vec<u64> = [0, 1, 2, 3, 4, 50]
            .iter()
            .map(|&n| d.delay_for(n).as_secs())
            .collect();
        assert_eq!(secs, [30, 30, 120, 600, 600, 600]);
    }

    #[test]
    fn delay_settings() {
        assert_eq!(
            parse_delays(" 1, 2 ,3").unwrap(),
            [1, 2, 3].map(Duration::from_secs)
        );
        assert_eq!(parse_delays("0").unwrap(), [Duration::ZERO]);
        for bad in ["", "1,,2", "-1", "43201", "1.5", "a"] {
            let err = parse_delays(bad).unwrap_err();
            assert!(err.contains("SYNC_RETRY_DELAYS_S"), "{bad}: {err}");
        }
    }
}
