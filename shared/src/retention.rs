//! Retention plans: which successful backups of a task to keep, and why. Pure: the Worker passes
//! the backups and the time; the agent deletes what the plan drops; the Worker marks the records.
//!
//! The rules work like restic's and borg's `forget`: each non-zero rule keeps what it selects, and
//! a backup is dropped only when no rule keeps it. Calendar rules (`keepDaily` …) keep the newest
//! backup of each of the newest N days (ISO weeks, months, years) that have a backup, read in the
//! task's time zone. A policy of all zeros keeps everything.

use crate::tasks::Retention;
use crate::time::Timestamp;
use chrono::{Datelike, Duration};
use chrono_tz::Tz;

/// One backup the plan decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backup {
    pub record_id: i64,
    pub finished_at: Timestamp,
}

/// The plan's word on one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub record_id: i64,
    pub keep: bool,
    /// Every rule that keeps it (`last 1/7`, `daily 2026-11-28`, `within 30 days`), or why it goes.
    pub reasons: Vec<String>,
}

/// Names the calendar bucket (day, ISO week, month, year) a local time falls in.
type BucketKey = fn(chrono::DateTime<Tz>) -> String;

/// The time zone calendar rules read dates in: the task's, or UTC when it names none.
pub fn zone(name: &str) -> Tz {
    name.trim().parse().unwrap_or(Tz::UTC)
}

/// Decides for every backup; the answer is newest first.
pub fn plan(backups: &[Backup], policy: &Retention, zone: Tz, now: Timestamp) -> Vec<Decision> {
    let mut sorted = backups.to_vec();
    // Newest first; equal times by record id, so the plan is the same whatever the input order.
    sorted.sort_by(|a, b| {
        b.finished_at
            .cmp(&a.finished_at)
            .then(b.record_id.cmp(&a.record_id))
    });
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); sorted.len()];
    if policy.keeps_everything() {
        return sorted
            .iter()
            .map(|b| Decision {
                record_id: b.record_id,
                keep: true,
                reasons: vec!["no retention rules: everything is kept".to_owned()],
            })
            .collect();
    }
    for (i, reason) in reasons
        .iter_mut()
        .enumerate()
        .take(policy.keep_last as usize)
    {
        reason.push(format!("last {}/{}", i + 1, policy.keep_last));
    }
    if policy.keep_days > 0 {
        let since = now - Duration::days(i64::from(policy.keep_days));
        for (b, reason) in sorted.iter().zip(reasons.iter_mut()) {
            if b.finished_at > since {
                reason.push(format!("within {} days", policy.keep_days));
            }
        }
    }
    let buckets: [(u32, &str, BucketKey); 4] = [
        (policy.keep_daily, "daily", |t| {
            t.format("%Y-%m-%d").to_string()
        }),
        (policy.keep_weekly, "weekly", |t| {
            let w = t.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        (policy.keep_monthly, "monthly", |t| {
            t.format("%Y-%m").to_string()
        }),
        (policy.keep_yearly, "yearly", |t| t.format("%Y").to_string()),
    ];
    for (count, label, bucket) in buckets {
        let mut seen: Vec<String> = Vec::new();
        for (b, reason) in sorted.iter().zip(reasons.iter_mut()) {
            if seen.len() == count as usize {
                break;
            }
            let key = bucket(b.finished_at.with_timezone(&zone));
            // Newest first, so the first backup met in a bucket is its newest.
            if !seen.contains(&key) {
                reason.push(format!("{label} {key}"));
                seen.push(key);
            }
        }
    }
    sorted
        .iter()
        .zip(reasons)
        .map(|(b, reasons)| {
            let keep = !reasons.is_empty();
            Decision {
                record_id: b.record_id,
                keep,
                reasons: if keep {
                    reasons
                } else {
                    vec!["no retention rule keeps it".to_owned()]
                },
            }
        })
        .collect()
}

/// Plans a task's runs, complete and partial. Complete runs (every target took the backup) are
/// planned by the policy among themselves, so partial runs never count toward what is kept and
/// never push the last complete copy out; partial runs are planned among all runs, so they do not
/// pile up while a target is down. The answer is newest first.
pub fn plan_runs(
    complete: &[Backup],
    partial: &[Backup],
    policy: &Retention,
    zone: Tz,
    now: Timestamp,
) -> Vec<Decision> {
    let everything: Vec<Backup> = complete.iter().chain(partial).copied().collect();
    let of_complete = plan(complete, policy, zone, now);
    // `plan` answers newest first, so this keeps that order.
    plan(&everything, policy, zone, now)
        .into_iter()
        .map(
            |d| match of_complete.iter().find(|c| c.record_id == d.record_id) {
                Some(c) => c.clone(),
                None => Decision {
                    reasons: d
                        .reasons
                        .into_iter()
                        .map(|r| format!("{r} (a partial run)"))
                        .collect(),
                    ..d
                },
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time;

    #[test]
    fn partial_runs_never_push_out_the_last_complete_one() {
        let policy = Retention {
            keep_last: 2,
            ..Retention::default()
        };
        let at = |t: &str| time::parse(t).expect("time");
        let run = |id: i64, t: &str| Backup {
            record_id: id,
            finished_at: at(t),
        };
        // A complete run, then a target is down for three runs.
        let complete = [run(1, "2026-11-01T00:00:00Z")];
        let partial = [
            run(2, "2026-11-02T00:00:00Z"),
            run(3, "2026-11-03T00:00:00Z"),
            run(4, "2026-11-04T00:00:00Z"),
        ];
        let decisions = plan_runs(
            &complete,
            &partial,
            &policy,
            Tz::UTC,
            at("2026-11-05T00:00:00Z"),
        );
        assert_eq!(kept(&decisions), [1, 3, 4], "{decisions:?}");
        let dropped = decisions.iter().find(|d| d.record_id == 2).expect("run 2");
        assert!(dropped.reasons[0].contains("partial"), "{dropped:?}");
        // Newest first.
        assert_eq!(
            decisions.iter().map(|d| d.record_id).collect::<Vec<_>>(),
            [4, 3, 2, 1]
        );
        // Once complete runs are back, they alone count for complete runs.
        let complete = [
            run(1, "2026-11-01T00:00:00Z"),
            run(5, "2026-11-06T00:00:00Z"),
            run(6, "2026-11-07T00:00:00Z"),
        ];
        let decisions = plan_runs(
            &complete,
            &partial,
            &policy,
            Tz::UTC,
            at("2026-11-08T00:00:00Z"),
        );
        assert_eq!(kept(&decisions), [5, 6], "{decisions:?}");
    }

    fn backups(times: &[&str]) -> Vec<Backup> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| Backup {
                record_id: i as i64 + 1,
                finished_at: time::parse(t).expect("time"),
            })
            .collect()
    }

    fn kept(decisions: &[Decision]) -> Vec<i64> {
        let mut ids: Vec<i64> = decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.record_id)
            .collect();
        ids.sort_unstable();
        ids
    }

    const NOW: &str = "2026-11-28T12:00:00Z";

    #[test]
    fn no_rules_keep_everything() {
        let b = backups(&["2020-01-01T00:00:00Z", "2026-11-28T00:00:00Z"]);
        let d = plan(
            &b,
            &Retention::default(),
            Tz::UTC,
            time::parse(NOW).expect("now"),
        );
        assert_eq!(kept(&d), [1, 2]);
    }

    #[test]
    fn keep_last_and_days_combine() {
        // Ids 1..=6, one a day, the newest on the 28th.
        let b = backups(&[
            "2026-11-23T01:00:00Z",
            "2026-11-24T01:00:00Z",
            "2026-11-25T01:00:00Z",
            "2026-11-26T01:00:00Z",
            "2026-11-27T01:00:00Z",
            "2026-11-28T01:00:00Z",
        ]);
        let policy = Retention {
            keep_last: 2,
            keep_days: 4,
            ..Retention::default()
        };
        let d = plan(&b, &policy, Tz::UTC, time::parse(NOW).expect("now"));
        assert_eq!(kept(&d), [3, 4, 5, 6]);
        assert_eq!(d[0].reasons, ["last 1/2", "within 4 days"]);
        assert_eq!(d[2].reasons, ["within 4 days"]);
        assert_eq!(d[5].reasons, ["no retention rule keeps it"]);
        assert!(!d[5].keep);
    }

    #[test]
    fn calendar_rules_keep_the_newest_of_each_bucket_in_the_task_zone() {
        let b = backups(&[
            "2026-11-27T08:00:00Z", // 1: the 27th in Shanghai
            "2026-11-27T17:00:00Z", // 2: 01:00 on the 28th in Shanghai
            "2026-11-28T03:00:00Z", // 3: the 28th, newest
            "2026-10-15T03:00:00Z", // 4: October
            "2025-06-01T03:00:00Z", // 5: last year
        ]);
        let daily = Retention {
            keep_daily: 2,
            ..Retention::default()
        };
        let shanghai: Tz = "Asia/Shanghai".parse().expect("zone");
        let d = plan(&b, &daily, shanghai, time::parse(NOW).expect("now"));
        // The 28th (newest: 3) and the 27th (1); 2 shares the 28th with 3 in Shanghai.
        assert_eq!(kept(&d), [1, 3]);
        let in_utc = plan(&b, &daily, Tz::UTC, time::parse(NOW).expect("now"));
        // In UTC, 2 is the newest of the 27th.
        assert_eq!(kept(&in_utc), [2, 3]);

        let long = Retention {
            keep_monthly: 2,
            keep_yearly: 2,
            ..Retention::default()
        };
        let d = plan(&b, &long, Tz::UTC, time::parse(NOW).expect("now"));
        assert_eq!(kept(&d), [3, 4, 5]);
        let five = d.iter().find(|d| d.record_id == 5).expect("5");
        assert_eq!(five.reasons, ["yearly 2025"]);
        let three = d.iter().find(|d| d.record_id == 3).expect("3");
        assert_eq!(three.reasons, ["monthly 2026-11", "yearly 2026"]);
    }

    #[test]
    fn weekly_uses_iso_weeks_and_input_order_does_not_matter() {
        let mut b = backups(&[
            "2026-11-23T10:00:00Z", // Monday, W48
            "2026-11-22T10:00:00Z", // Sunday, W47
            "2026-11-16T10:00:00Z", // Monday, W47
        ]);
        let weekly = Retention {
            keep_weekly: 2,
            ..Retention::default()
        };
        let now = time::parse(NOW).expect("now");
        let first = plan(&b, &weekly, Tz::UTC, now);
        assert_eq!(kept(&first), [1, 2]);
        b.reverse();
        assert_eq!(plan(&b, &weekly, Tz::UTC, now), first);
    }
}
