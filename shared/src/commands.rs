//! The agent command queue's rules: the states a command moves through and who may report what,
//! when. The Worker's SQL applies these decisions atomically; this module makes them once.
//!
//! ```text
//! pending ──claim──▶ claimed ──report ok──▶ succeeded
//!    │                 │  └────report error──▶ failed
//!    └──abandon──▶ expired ◀──lease lapsed──┘
//! ```
//! A lease is renewed by every heartbeat that lists the command as running; a command whose lease
//! lapses is expired by the cron tick, and a late result for it is refused.

use crate::time::Timestamp;
use chrono::Duration;

pub use crate::status::CommandStatus;

impl CommandStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CommandStatus::Succeeded | CommandStatus::Failed | CommandStatus::Expired
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An agent of the command's node claimed it.
    Claim,
    /// The claiming agent reported success (`true`) or failure (`false`).
    Report { ok: bool },
    /// The lease ran out without a report.
    LeaseLapsed,
    /// The caller stopped waiting before any agent claimed it.
    Abandon,
}

/// The state after `event`, or `None` when the event cannot happen in `status`.
pub fn next(status: CommandStatus, event: Event) -> Option<CommandStatus> {
    use CommandStatus::*;
    match (status, event) {
        (Pending, Event::Claim) => Some(Claimed),
        (Pending, Event::Abandon) => Some(Expired),
        (Claimed, Event::Report { ok: true }) => Some(Succeeded),
        (Claimed, Event::Report { ok: false }) => Some(Failed),
        (Claimed, Event::LeaseLapsed) => Some(Expired),
        _ => None,
    }
}

pub fn lease_until(now: Timestamp, lease: Duration) -> Timestamp {
    now + lease
}

/// A lease that ends exactly now has lapsed.
pub fn lease_lapsed(lease_expires_at: Timestamp, now: Timestamp) -> bool {
    lease_expires_at <= now
}

/// The facts about a stored command that decide how a result report is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub node_id: i64,
    pub status: CommandStatus,
    pub lease_expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportDecision {
    /// Record the result: the claim is this node's and its lease is live.
    Record(CommandStatus),
    /// The same outcome was recorded before (a retried report): answer success, change nothing.
    AlreadyRecorded,
    /// Another node's command.
    Forbidden,
    /// The lease lapsed (or the command was given up) before the result came.
    LeaseExpired,
    /// The report cannot apply: never claimed, or finished with the other outcome.
    Invalid,
}

pub fn judge_report(cmd: Stored, reporter_node: i64, ok: bool, now: Timestamp) -> ReportDecision {
    if cmd.node_id != reporter_node {
        return ReportDecision::Forbidden;
    }
    let wanted = if ok {
        CommandStatus::Succeeded
    } else {
        CommandStatus::Failed
    };
    match cmd.status {
        CommandStatus::Claimed => match cmd.lease_expires_at {
            Some(until) if !lease_lapsed(until, now) => ReportDecision::Record(wanted),
            _ => ReportDecision::LeaseExpired,
        },
        CommandStatus::Expired => ReportDecision::LeaseExpired,
        done if done == wanted => ReportDecision::AlreadyRecorded,
        _ => ReportDecision::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_unix_millis;
    use CommandStatus::*;

    fn at(secs: i64) -> Timestamp {
        from_unix_millis(1_800_000_000_000 + secs * 1000).expect("valid")
    }

    #[test]
    fn transitions() {
        let table = [
            (Pending, Event::Claim, Some(Claimed)),
            (Pending, Event::Abandon, Some(Expired)),
            (Pending, Event::Report { ok: true }, None),
            (Pending, Event::LeaseLapsed, None),
            (Claimed, Event::Report { ok: true }, Some(Succeeded)),
            (Claimed, Event::Report { ok: false }, Some(Failed)),
            (Claimed, Event::LeaseLapsed, Some(Expired)),
            (Claimed, Event::Claim, None),
            (Claimed, Event::Abandon, None),
        ];
        for (from, event, to) in table {
            assert_eq!(next(from, event), to, "{from:?} + {event:?}");
        }
        for terminal in [Succeeded, Failed, Expired] {
            assert!(terminal.is_terminal());
            for event in [
                Event::Claim,
                Event::Report { ok: true },
                Event::Report { ok: false },
                Event::LeaseLapsed,
                Event::Abandon,
            ] {
                assert_eq!(next(terminal, event), None, "{terminal:?} is final");
            }
        }
    }

    #[test]
    fn status_text_round_trips() {
        for s in CommandStatus::ALL {
            assert_eq!(CommandStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(CommandStatus::parse("running"), None);
    }

    #[test]
    fn lease_ends_exactly_at_its_time() {
        let until = lease_until(at(0), Duration::seconds(30));
        assert_eq!(until, at(30));
        assert!(!lease_lapsed(until, at(29)));
        assert!(lease_lapsed(until, at(30)));
    }

    #[test]
    fn reports() {
        let claimed = Stored {
            node_id: 7,
            status: Claimed,
            lease_expires_at: Some(at(30)),
        };
        assert_eq!(
            judge_report(claimed, 7, true, at(10)),
            ReportDecision::Record(Succeeded)
        );
        assert_eq!(
            judge_report(claimed, 7, false, at(10)),
            ReportDecision::Record(Failed)
        );
        assert_eq!(
            judge_report(claimed, 8, true, at(10)),
            ReportDecision::Forbidden
        );
        assert_eq!(
            judge_report(claimed, 7, true, at(30)),
            ReportDecision::LeaseExpired
        );

        let done = Stored {
            status: Succeeded,
            ..claimed
        };
        assert_eq!(
            judge_report(done, 7, true, at(99)),
            ReportDecision::AlreadyRecorded
        );
        assert_eq!(
            judge_report(done, 7, false, at(10)),
            ReportDecision::Invalid
        );
        assert_eq!(
            judge_report(done, 8, true, at(10)),
            ReportDecision::Forbidden
        );

        let expired = Stored {
            status: Expired,
            ..claimed
        };
        assert_eq!(
            judge_report(expired, 7, true, at(10)),
            ReportDecision::LeaseExpired
        );

        let pending = Stored {
            status: Pending,
            lease_expires_at: None,
            ..claimed
        };
        assert_eq!(
            judge_report(pending, 7, true, at(10)),
            ReportDecision::Invalid
        );
    }
}
