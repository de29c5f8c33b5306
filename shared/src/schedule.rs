//! Backup schedules: a cron expression in an IANA time zone, and what the scheduler's tick does
//! with it. Pure: the caller passes the times in.
//!
//! Expressions have five fields (minute, hour, day of month, month, day of week) or are one of
//! `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`; croner parses
//! them (the same parser validates and schedules, so a saved expression always runs). Fire times are
//! wall-clock times in the schedule's zone and follow croner's rules across daylight-saving changes:
//! a time that does not exist (the spring gap) fires at the first instant after the gap, and a time
//! that occurs twice (the autumn overlap) fires once.

use crate::time::Timestamp;
use crate::validate::FieldError;
use chrono::Utc;
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// How many missed fire times one tick looks through before it stops counting.
pub const MAX_SLOTS_SCANNED: u32 = 100_000;

/// A checked schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.cron.pattern.to_string() == other.cron.pattern.to_string() && self.zone == other.zone
    }
}

impl Schedule {
    /// Parses `expression` in the IANA time zone `zone` (e.g. `Europe/Berlin`; `UTC` works too).
    pub fn parse(expression: &str, zone: &str) -> Result<Self, FieldError> {
        let expression = expression.trim();
        if expression.is_empty() {
            return Err(FieldError::new("cronExpr", "is empty"));
        }
        if !expression.starts_with('@') && expression.split_whitespace().count() != 5 {
            return Err(FieldError::new(
                "cronExpr",
                "must have five fields (minute hour day-of-month month day-of-week) or be one of @hourly, @daily, @weekly, @monthly, @yearly",
            ));
        }
        if expression.starts_with("@every") || expression.starts_with("@reboot") {
            return Err(FieldError::new(
                "cronExpr",
                "@every and @reboot are not schedules Stowage runs; use five fields or @hourly/@daily/@weekly/@monthly/@yearly",
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| FieldError::new("cronExpr", e.to_string()))?;
        let zone: Tz = zone.trim().parse().map_err(|_| {
            FieldError::new(
                "timeZone",
                "must be an IANA time zone such as Europe/Berlin, America/New_York or UTC",
            )
        })?;
        Ok(Self { cron, zone })
    }

    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first fire time strictly after `t`; `None` when the expression never fires again
    /// (e.g. the 30th of February).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.zone), false)
            .ok()
            .map(|next| next.with_timezone(&Utc))
    }

    /// The next `n` fire times after `t`, for showing a schedule to the user.
    pub fn upcoming(&self, t: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = t;
        while out.len() < n {
            let Some(next) = self.next_after(cursor) else {
                break;
            };
            out.push(next);
            cursor = next;
        }
        out
    }
}

/// What one tick owes a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The fire time the run is for: the latest one not after `now`. A run is identified by its
    /// task and this time, so ticks that repeat or overlap create it once.
    pub fire_at: Timestamp,
    /// Earlier fire times since the cursor that this one run stands for (missed during an outage,
    /// for instance); capped at [`MAX_SLOTS_SCANNED`].
    pub coalesced: u32,
}

/// The run a task is due, given the last fire time already dealt with (`cursor`: the task's
/// creation or schedule change when none) and the tick's `now`. `None` when no fire time lies in
/// `(cursor, now]`.
pub fn due(schedule: &Schedule, cursor: Timestamp, now: Timestamp) -> Option<Due> {
    let mut latest = None;
    let mut seen = 0u32;
    let mut at = cursor;
    while let Some(next) = schedule.next_after(at) {
        if next > now {
            break;
        }
        seen += 1;
        latest = Some(next);
        at = next;
        if seen == MAX_SLOTS_SCANNED {
            // Jump straight to the last fire time not after `now`.
            let mut back = schedule.cron.iter_before(now.with_timezone(&schedule.zone));
            if let Some(last) = back.next() {
                latest = Some(last.with_timezone(&Utc));
            }
            break;
        }
    }
    latest.map(|fire_at| Due {
        fire_at,
        coalesced: seen.saturating_sub(1),
    })
}

/// When a task counts as overdue: it is scheduled, existed before the fire time before its latest
/// one, and has no success since that earlier fire time. The run of the latest fire time may still
/// be going, so a task is overdue only once a whole interval passed without a good backup.
/// Returns the fire time by which a success was expected (the latest one).
pub fn overdue(
    schedule: &Schedule,
    created_at: Timestamp,
    last_success: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut back = schedule.cron.iter_before(now.with_timezone(&schedule.zone));
    let latest = back.next()?.with_timezone(&Utc);
    let previous = back.next()?.with_timezone(&Utc);
    let missed = created_at <= previous && last_success.is_none_or(|s| s < previous);
    missed.then_some(latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time;

    fn at(s: &str) -> Timestamp {
        time::parse(s).expect("valid time")
    }

    fn fmt(t: &[Timestamp]) -> Vec<String> {
        t.iter().map(|t| time::format(*t)).collect()
    }

    #[test]
    fn five_fields_and_aliases_parse_and_everything_else_names_the_problem() {
        for ok in [
            "*/15 * * * *",
            "0 3 * * 1-5",
            "30 2 1 * *",
            "@daily",
            "@hourly",
            "@weekly",
            "0 0 * * SUN",
        ] {
            assert!(Schedule::parse(ok, "UTC").is_ok(), "{ok}");
        }
        for (bad, field) in [
            ("", "cronExpr"),
            ("* * * *", "cronExpr"),
            ("0 * * * * *", "cronExpr"),
            ("61 * * * *", "cronExpr"),
            ("@every 5m", "cronExpr"),
            ("0 3 * * *x", "cronExpr"),
        ] {
            let err = Schedule::parse(bad, "UTC").expect_err(bad);
            assert_eq!(err.field, field, "{bad}");
        }
        let zone = Schedule::parse("@daily", "Mars/Olympus").expect_err("zone");
        assert_eq!(zone.field, "timeZone");
    }

    #[test]
    fn overdue_only_after_a_whole_interval_without_success() {
        let daily = Schedule::parse("0 2 * * *", "UTC").expect("valid");
        let now = at("2026-12-10T10:00:00Z");
        let created = at("2026-12-01T00:00:00Z");
        // Yesterday's run succeeded; today's may have failed: failing, not overdue.
        assert_eq!(
            overdue(&daily, created, Some(at("2026-12-09T02:05:00Z")), now),
            None
        );
        // The last success was before yesterday's fire time: a whole day went by without one.
        assert_eq!(
            overdue(&daily, created, Some(at("2026-12-08T02:05:00Z")), now),
            Some(at("2026-12-10T02:00:00Z"))
        );
        assert_eq!(
            overdue(&daily, created, None, now),
            Some(at("2026-12-10T02:00:00Z"))
        );
        // A task created after yesterday's fire time has not missed an interval yet.
        assert_eq!(overdue(&daily, at("2026-12-09T12:00:00Z"), None, now), None);
    }

    #[test]
    fn next_fire_times_follow_the_zone() {
        let s = Schedule::parse("0 3 * * *", "Asia/Shanghai").expect("valid");
        assert_eq!(
            fmt(&s.upcoming(at("2026-11-28T12:00:00Z"), 2)),
            ["2026-11-28T19:00:00.000Z", "2026-11-29T19:00:00.000Z"]
        );
        let never = Schedule::parse("0 0 30 2 *", "UTC").expect("parses");
        assert_eq!(never.next_after(at("2026-01-01T00:00:00Z")), None);
    }

    #[test]
    fn spring_gap_fires_once_just_after_the_gap() {
        // Berlin jumps from 02:00 to 03:00 on 2026-03-29; 02:30 does not exist that day.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").expect("valid");
        assert_eq!(
            fmt(&s.upcoming(at("2026-03-27T12:00:00Z"), 3)),
            [
                "2026-03-28T01:30:00.000Z", // 02:30 CET
                "2026-03-29T01:00:00.000Z", // 03:00 CEST, the first instant after the gap
                "2026-03-30T00:30:00.000Z", // 02:30 CEST
            ]
        );
    }

    #[test]
    fn autumn_overlap_fires_once() {
        // Berlin goes back from 03:00 CEST to 02:00 CET on 2026-10-25; 02:30 happens twice.
        let s = Schedule::parse("30 2 * * *", "Europe/Berlin").expect("valid");
        let times = s.upcoming(at("2026-10-24T12:00:00Z"), 2);
        assert_eq!(times.len(), 2);
        assert_eq!(time::format(times[0]), "2026-10-25T00:30:00.000Z");
        assert_eq!(time::format(times[1]), "2026-10-26T01:30:00.000Z");
        // Hourly jobs still run every real hour through the overlap, each once.
        let hourly = Schedule::parse("0 * * * *", "Europe/Berlin").expect("valid");
        let hours = hourly.upcoming(at("2026-10-24T23:30:00Z"), 4);
        assert_eq!(
            fmt(&hours),
            [
                "2026-10-25T00:00:00.000Z",
                "2026-10-25T01:00:00.000Z",
                "2026-10-25T02:00:00.000Z",
                "2026-10-25T03:00:00.000Z",
            ]
        );
    }

    #[test]
    fn due_is_the_latest_slot_and_counts_the_ones_it_stands_for() {
        let s = Schedule::parse("*/15 * * * *", "UTC").expect("valid");
        let cursor = at("2026-11-28T10:00:00Z");
        assert_eq!(due(&s, cursor, at("2026-11-28T10:14:59Z")), None);
        assert_eq!(
            due(&s, cursor, at("2026-11-28T10:15:00Z")),
            Some(Due {
                fire_at: at("2026-11-28T10:15:00Z"),
                coalesced: 0
            })
        );
        // An outage of a little over an hour: one run, for the latest slot, standing for five.
        assert_eq!(
            due(&s, cursor, at("2026-11-28T11:20:00Z")),
            Some(Due {
                fire_at: at("2026-11-28T11:15:00Z"),
                coalesced: 4
            })
        );
        // Once the cursor moved to the slot handled, a repeated tick owes nothing.
        assert_eq!(
            due(&s, at("2026-11-28T11:15:00Z"), at("2026-11-28T11:20:00Z")),
            None
        );
    }

    #[test]
    fn a_very_long_outage_is_bounded_and_still_lands_on_the_latest_slot() {
        let s = Schedule::parse("* * * * *", "UTC").expect("valid");
        let d = due(&s, at("2026-01-01T00:00:00Z"), at("2026-11-28T12:34:56Z")).expect("due");
        assert_eq!(d.fire_at, at("2026-11-28T12:34:00Z"));
        assert_eq!(d.coalesced, MAX_SLOTS_SCANNED - 1);
    }
}
