//! Login throttling policy: how many failed attempts a key (an account or a client IP) may make in a
//! window before it is locked out, and for how long.
//!
//! The Worker keeps the counters in D1 (so they survive isolates and restarts) and asks this module
//! what to do; the counting itself is one atomic upsert there, so concurrent failures are never lost.
//!
//! Two kinds of key, two kinds of lock. An account is locked only briefly (`lockout`, a minute by
//! default), so nobody can keep someone else's account locked by guessing at it. A client address
//! is locked for `ip_lockout`, doubled at each further lockout within a day (up to
//! `ip_lockout_max`), so an address that keeps guessing waits longer and longer.

use crate::time::Timestamp;
use chrono::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures allowed inside one window; the next failure locks the key.
    pub max_failures: u32,
    pub window: Duration,
    /// How long an account stays locked.
    pub lockout: Duration,
    /// A client address's first lockout; each further one within a day doubles it.
    pub ip_lockout: Duration,
    pub ip_lockout_max: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::minutes(15),
            lockout: Duration::minutes(1),
            ip_lockout: Duration::minutes(1),
            ip_lockout_max: Duration::days(1),
        }
    }
}

/// What is stored for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub failures: u32,
    pub window_start: Timestamp,
    pub locked_until: Option<Timestamp>,
}

/// The answer before an attempt is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Locked: try again after this many whole seconds (the `Retry-After` value, at least 1).
    Locked {
        retry_after_secs: u64,
    },
}

impl ThrottlePolicy {
    /// May an attempt go ahead for this key?
    pub fn gate(&self, counter: Option<&Counter>, now: Timestamp) -> Gate {
        match counter.and_then(|c| c.locked_until) {
            Some(until) if until > now => Gate::Locked {
                retry_after_secs: retry_after(until, now),
            },
            _ => Gate::Open,
        }
    }

    /// Failures counted before this instant belong to an old window and start over.
    pub fn window_cutoff(&self, now: Timestamp) -> Timestamp {
        now - self.window
    }

    /// After a failure has been counted (`failures` is the count in the current window, this one
    /// included): lock the key until the returned time, or not at all.
    pub fn lock_after_failure(&self, failures: u32, now: Timestamp) -> Option<Timestamp> {
        (failures >= self.max_failures).then(|| now + self.lockout)
    }

    /// The same for a client address that was locked `earlier` times within the last day: its
    /// lock doubles each time, up to `ip_lockout_max`.
    pub fn ip_lock_after_failure(
        &self,
        failures: u32,
        earlier: u32,
        now: Timestamp,
    ) -> Option<Timestamp> {
        (failures >= self.max_failures).then(|| {
            let factor = 1_i32.checked_shl(earlier.min(30)).unwrap_or(i32::MAX);
            let length = self
                .ip_lockout
                .checked_mul(factor)
                .unwrap_or(self.ip_lockout_max)
                .min(self.ip_lockout_max);
            now + length
        })
    }
}

/// Whole seconds from `now` until `until`, rounded up, never 0 (a client told to retry after 0 s
/// would hammer the server).
pub fn retry_after(until: Timestamp, now: Timestamp) -> u64 {
    let ms = (until - now).num_milliseconds().max(0);
    (ms as u64).div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_unix_millis;

    fn at(secs: i64) -> Timestamp {
        from_unix_millis(1_800_000_000_000 + secs * 1000).expect("valid")
    }

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            max_failures: 3,
            window: Duration::seconds(60),
            lockout: Duration::seconds(30),
            ip_lockout: Duration::seconds(60),
            ip_lockout_max: Duration::seconds(600),
        }
    }

    #[test]
    fn an_address_that_keeps_guessing_waits_twice_as_long_each_time() {
        let p = policy();
        assert_eq!(p.ip_lock_after_failure(2, 0, at(0)), None);
        let lengths: Vec<i64> = (0..6)
            .map(|earlier| {
                p.ip_lock_after_failure(3, earlier, at(0))
                    .map(|until| (until - at(0)).num_seconds())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(lengths, [60, 120, 240, 480, 600, 600]);
        // Huge counts do not overflow.
        assert_eq!(p.ip_lock_after_failure(3, u32::MAX, at(0)), Some(at(600)));
        // The account's own lock stays short, however often it is hit.
        assert_eq!(p.lock_after_failure(3, at(0)), Some(at(30)));
    }

    #[test]
    fn unknown_and_unlocked_keys_are_open() {
        assert_eq!(policy().gate(None, at(0)), Gate::Open);
        let c = Counter {
            failures: 2,
            window_start: at(0),
            locked_until: None,
        };
        assert_eq!(policy().gate(Some(&c), at(1)), Gate::Open);
    }

    #[test]
    fn locks_at_max_failures_and_reports_retry_after() {
        let p = policy();
        assert_eq!(p.lock_after_failure(2, at(10)), None);
        let until = p.lock_after_failure(3, at(10)).expect("locked");
        assert_eq!(until, at(40));
        let c = Counter {
            failures: 3,
            window_start: at(0),
            locked_until: Some(until),
        };
        assert_eq!(
            p.gate(Some(&c), at(10)),
            Gate::Locked {
                retry_after_secs: 30
            }
        );
        assert_eq!(p.gate(Some(&c), at(40)), Gate::Open, "lock ends on time");
    }

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let now = at(0);
        assert_eq!(retry_after(now + Duration::milliseconds(1), now), 1);
        assert_eq!(retry_after(now + Duration::milliseconds(1500), now), 2);
        assert_eq!(retry_after(now, now), 1);
        assert_eq!(retry_after(now - Duration::seconds(5), now), 1);
    }

    #[test]
    fn window_cutoff_is_one_window_back() {
        assert_eq!(policy().window_cutoff(at(100)), at(40));
    }
}
