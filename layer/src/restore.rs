//! Noticing a restore from a snapshot (Lambda SnapStart): tokens and credentials minted
//! before the snapshot must not be served by the environments restored from it.
//!
//! A restored process sees the wall clock jump ahead by the time the snapshot was kept,
//! while its own running time (`CLOCK_MONOTONIC`, std's `Instant`) goes on from where the
//! snapshot stopped it. A sandbox frozen between invocations sees both move together. So
//! whatever was minted when the wall clock has since run [`RESTORE_GAP`] or more ahead of
//! the process's own time is dropped and fetched again. A wall clock stepped forward by
//! hand or by NTP looks the same; it costs one refresh.

use std::time::{Duration, Instant, SystemTime};

use crate::token_cache::Clock;

/// Smallest lead of the wall clock over the process's own time taken for a restore.
pub const RESTORE_GAP: Duration = Duration::from_secs(10);

/// The process's own running time, frozen with it (`CLOCK_MONOTONIC`), from a fixed start.
pub(crate) fn process_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// When something was minted, on the wall clock and on the process's own clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Minted {
    wall: SystemTime,
    process: Option<Duration>,
}

impl Minted {
    /// Now, on `clock`.
    pub(crate) fn now(clock: &dyn Clock) -> Self {
        Minted {
            wall: clock.now(),
            process: clock.process_time(),
        }
    }

    /// `Some(lead)` when the process was restored from a snapshot since (the wall clock
    /// ran `lead` ahead of the process's own time, at least [`RESTORE_GAP`]). `None` for a
    /// clock without process time.
    pub(crate) fn restored_since(&self, clock: &dyn Clock) -> Option<Duration> {
        let (then, now) = (self.process?, clock.process_time()?);
        let ran = now.saturating_sub(then);
        let wall = clock.now().duration_since(self.wall).ok()?;
        let lead = wall.saturating_sub(ran);
        (lead >= RESTORE_GAP).then_some(lead)
    }

    /// [`Self::restored_since`], logged once per dropped item as `what`.
    pub(crate) fn dropped_after_restore(&self, clock: &dyn Clock, what: &str) -> bool {
        let Some(lead) = self.restored_since(clock) else {
            return false;
        };
        tracing::info!(
            wall_clock_lead_s = lead.as_secs(),
            "restored from a snapshot (the wall clock ran ahead of this process): {what} minted before it is dropped"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Wall clock and process time the test moves separately.
    #[derive(Debug, Default)]
    struct TwoClocks {
        wall_s: AtomicU64,
        process_s: AtomicU64,
    }
    impl Clock for TwoClocks {
        fn now(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH
                + Duration::from_secs(1_700_000_000 + self.wall_s.load(Ordering::SeqCst))
        }
        fn process_time(&self) -> Option<Duration> {
            Some(Duration::from_secs(self.process_s.load(Ordering::SeqCst)))
        }
    }

    #[test]
    fn a_freeze_is_not_a_restore_but_a_wall_clock_lead_is() {
        let clock = TwoClocks::default();
        let minted = Minted::now(&clock);
        // Frozen for an hour: both clocks moved.
        clock.wall_s.store(3600, Ordering::SeqCst);
        clock.process_s.store(3600, Ordering::SeqCst);
        assert_eq!(minted.restored_since(&clock), None);
        // Restored: the wall clock ran 9 s ahead (below the gap), then 10 s.
        clock.wall_s.store(3609, Ordering::SeqCst);
        assert_eq!(minted.restored_since(&clock), None);
        clock.wall_s.store(3610, Ordering::SeqCst);
        assert_eq!(minted.restored_since(&clock), Some(RESTORE_GAP));
        // A wall clock stepped back is no restore.
        clock.wall_s.store(0, Ordering::SeqCst);
        assert_eq!(minted.restored_since(&clock), None);
    }

    #[test]
    fn clocks_without_process_time_never_see_a_restore() {
        #[derive(Debug)]
        struct WallOnly(SystemTime);
        impl Clock for WallOnly {
            fn now(&self) -> SystemTime {
                self.0
            }
        }
        let minted = Minted::now(&WallOnly(SystemTime::UNIX_EPOCH));
        let later = WallOnly(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400));
        assert_eq!(minted.restored_since(&later), None);
    }

    #[test]
    fn the_system_clock_sees_no_restore_while_running() {
        let clock = crate::token_cache::SystemClock;
        let minted = Minted::now(&clock);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(minted.restored_since(&clock), None);
        assert!(clock.process_time().is_some());
    }
}
