//! Soak (`make bench`, not `make test`): 50 concurrent callers across 20 token
//! lifetimes of simulated wall-clock time, with injected 5xx/429 answers, timeouts and clock
//! jumps. Checks: no failed call while a token is valid, at most one exchange per lifetime
//! (none before the refresh-ahead window), and no growth in memory or tasks.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossfed::Clock;
use support::{ManualClock, Response, Server, config, sts_handler, sts_token};

const CALLERS: usize = 50;
const LIFETIME: u64 = 3600;
const LIFETIMES: u64 = 20;
const STEP: Duration = Duration::from_secs(20);
const REFRESH_AHEAD: Duration = Duration::from_secs(225);

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Figures {
    calls: AtomicU64,
    failed_while_valid: AtomicU64,
    failed_without_token: AtomicU64,
    exchanges: AtomicU64,
    premature: AtomicU64,
    faults: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "soak: run by `make bench`"]
async fn soak_fifty_callers_twenty_lifetimes() {
    let clock = ManualClock::new();
    let figures = Arc::new(Figures::default());
    // Expiry of the last token the fake issued, in seconds since the epoch.
    let last_expiry = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (clock, figures, last_expiry, requests) = (
            clock.clone(),
            figures.clone(),
            last_expiry.clone(),
            requests.clone(),
        );
        sts_handler(move |n| {
            // Every request's fate is drawn: 10% 503, 5% 429, 3% slower than the client
            // timeout, the rest a token valid for LIFETIME seconds.
            let r = requests.fetch_add(1, Ordering::SeqCst);
            let roll = fastrand_like(r as u64) % 100;
            if roll < 18 {
                figures.faults.fetch_add(1, Ordering::SeqCst);
            }
            match roll {
                0..10 => return Response::json(503, r#"{"error":"unavailable"}"#),
                10..15 => return Response::json(429, r#"{"error":"rate_limited"}"#),
                15..18 => {
                    let mut slow = sts_token(n, LIFETIME);
                    slow.delay = Some(Duration::from_millis(400));
                    return slow;
                }
                _ => {}
            }
            let now = secs(clock.now());
            let previous = last_expiry.swap(now + LIFETIME, Ordering::SeqCst);
            // An exchange while the previous token had more than the window (and a step of
            // slack for the callers in flight) left was premature.
            if previous > now + REFRESH_AHEAD.as_secs() + STEP.as_secs() {
                figures.premature.fetch_add(1, Ordering::SeqCst);
            }
            figures.exchanges.fetch_add(1, Ordering::SeqCst);
            sts_token(n, LIFETIME)
        })
    };
    let sts = Server::start(handler).await;
    let ctx = crossfed::Context::new()
        .with_env_vars::<_, String, String>([])
        .with_timeouts(
            crossfed::Timeouts::default()
                .with_connect(Duration::from_millis(200))
                .with_total(Duration::from_millis(200)),
        )
        .with_retry_policy(
            crossfed::RetryPolicy::default()
                .with_max_attempts(4)
                .with_delays(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .with_clock(clock.clone());
    let creds = support::builder_with(&config(&sts.url("/v1/token")), ctx)
        .with_cache_settings(
            crossfed::CacheSettings::default()
                .with_refresh_ahead(REFRESH_AHEAD)
                .with_error_backoff(Duration::from_secs(1), Duration::from_secs(10)),
        )
        .build()
        .unwrap();
    creds.token().await.expect("warm-up");
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    let stop = Arc::new(AtomicBool::new(false));
    let valid_until = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (creds, clock, figures, stop, valid_until) = (
                creds.clone(),
                clock.clone(),
                figures.clone(),
                stop.clone(),
                valid_until.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let before = secs(clock.now());
                    figures.calls.fetch_add(1, Ordering::SeqCst);
                    match creds.token().await {
                        Ok(t) => {
                            assert!(
                                secs(t.expires_at) + 60 > before,
                                "an expired token was handed out"
                            );
                            valid_until.fetch_max(secs(t.expires_at), Ordering::SeqCst);
                        }
                        Err(_) if valid_until.load(Ordering::SeqCst) > before => {
                            figures.failed_while_valid.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => {
                            figures.failed_without_token.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();

    // Drive simulated time: STEP per tick; every 300 ticks a forward jump past expiry (a
    // thawed sandbox), every 170 ticks a small backward step (NTP).
    let total = LIFETIME * LIFETIMES;
    let mut simulated = 0u64;
    let mut tick = 0u64;
    let mut jumps = 0u64;
    let mut rss_mid = 0;
    while simulated < total {
        tick += 1;
        if tick.is_multiple_of(300) {
            clock.advance(Duration::from_secs(LIFETIME + 60));
            simulated += LIFETIME + 60;
            jumps += 1;
        } else if tick.is_multiple_of(170) {
            clock.set(clock.now() - Duration::from_secs(30));
        } else {
            clock.advance(STEP);
            simulated += STEP.as_secs();
        }
        if simulated >= total / 4 && rss_mid == 0 {
            rss_mid = rss_kib();
        }
        tokio::time::sleep(Duration::from_millis(8)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for c in callers {
        c.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // let slow fake answers finish
    let tasks_after = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let rss_end = rss_kib();

    let f = &figures;
    let exchanges = f.exchanges.load(Ordering::SeqCst);
    let lifetimes = simulated / LIFETIME + jumps;
    println!(
        "soak: {CALLERS} callers, {} simulated s ({lifetimes} lifetimes incl. {jumps} forward jumps) in {:.1} s real; calls {}, failed while a token was valid {}, failed with no valid token {}, STS requests {}, injected faults {}, exchanges {exchanges}, premature exchanges {}, RSS {} -> {} KiB, alive tasks {tasks_before} -> {tasks_after}",
        simulated,
        started.elapsed().as_secs_f64(),
        f.calls.load(Ordering::SeqCst),
        f.failed_while_valid.load(Ordering::SeqCst),
        f.failed_without_token.load(Ordering::SeqCst),
        requests.load(Ordering::SeqCst),
        f.faults.load(Ordering::SeqCst),
        f.premature.load(Ordering::SeqCst),
        rss_mid,
        rss_end,
    );
    assert_eq!(f.failed_while_valid.load(Ordering::SeqCst), 0);
    assert_eq!(f.premature.load(Ordering::SeqCst), 0);
    assert!(
        exchanges <= lifetimes + 1,
        "{exchanges} exchanges for {lifetimes} lifetimes"
    );
    // Forward jumps skip whole lifetimes, so fewer exchanges than lifetimes is right.
    assert!(
        exchanges >= LIFETIMES / 2,
        "the token was refreshed: {exchanges}"
    );
    assert!(
        tasks_after <= tasks_before,
        "tasks {tasks_before} -> {tasks_after}"
    );
    assert!(
        rss_end <= rss_mid + 8 * 1024,
        "memory grew from {rss_mid} KiB to {rss_end} KiB"
    );
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// A fixed pseudo-random sequence (SplitMix64), so every run sees the same faults.
fn fastrand_like(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
