//! The agent link: one long-lived WebSocket per agent, held by the node's Durable Object on the
//! Worker's side, over which the server wakes the agent the moment work is queued and the agent
//! proves it is alive. Liveness lives in the object's memory and reaches D1 only when a node's
//! status changes or, for `lastSeenAt`, at most once per [`LAST_SEEN_FLUSH`].
//!
//! An idle agent sends [`PING`] every heartbeat interval; the runtime answers [`PONG`] itself
//! without waking the object (the hibernation API's auto-response), so an idle agent costs no
//! compute and no D1 statement between flushes. Full heartbeats ([`Up::Heartbeat`]) go when the
//! link opens and, while commands run, every heartbeat interval to keep their leases.
//!
//! Everything here is pure: the object feeds in times and gets back what to do.

use crate::protocol::{HeartbeatRequest, HeartbeatResponse};
use crate::time::Timestamp;
use chrono::Duration;
use serde::{Deserialize, Serialize};

/// The keep-alive the agent sends on an idle link, and the answer the runtime gives for the
/// object without waking it.
pub const PING: &str = "ping";
pub const PONG: &str = "pong";

/// A live node's `lastSeenAt` is written to D1 at most this often.
pub fn last_seen_flush() -> Duration {
    Duration::seconds(60)
}

/// How stale D1's `lastSeenAt` of a live node can be: the flush interval plus one tick for an
/// alarm that runs late. Past `offline_after` plus this, D1 alone proves the node silent (the
/// tick's backstop, should an object never have marked it).
pub fn last_seen_slack() -> Duration {
    last_seen_flush() + Duration::seconds(60)
}

/// Agent to server, as JSON text frames (besides [`PING`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Up {
    /// Who the agent is, what it can do and what it runs (renewing those leases).
    Heartbeat(HeartbeatRequest),
}

/// Server to agent, as JSON text frames (besides [`PONG`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Down {
    /// The answer to a heartbeat.
    Heartbeat(HeartbeatResponse),
    /// Commands are waiting: claim them (`POST /api/agent/commands/poll`).
    Work,
}

/// What the object knows of its node's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Last time anything came from the agent (a heartbeat, a ping, a connect).
    pub heard: Timestamp,
    /// Last time `lastSeenAt` (and `status = online`) was written to D1; `None` since this
    /// object's memory began.
    pub flushed: Option<Timestamp>,
}

/// What an alarm does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// Silent for `offline_after`: mark the node offline (and close any link left).
    Offline,
    /// Alive: write `lastSeenAt` now if `flush`, and come back at `next`.
    Alive { flush: bool, next: Timestamp },
}

/// The decision at an alarm. A node is offline once nothing came from it for `offline_after`,
/// open link or not (a half-open TCP connection stays "open" for minutes). Otherwise
/// `lastSeenAt` is flushed when a minute passed and something new was heard, and the alarm comes
/// back:
/// - with a link open (`linked`), at the next flush, or at the threshold when that is later: one
///   wake-up a minute per idle node, and a hung connection found out within the threshold plus a
///   minute (a link that closes brings the alarm forward to the threshold itself);
/// - without one (an agent on HTTP, or gone), at the threshold or the next flush, whichever comes
///   first, since no close will announce its silence.
pub fn at_alarm(live: Liveness, now: Timestamp, offline_after: Duration, linked: bool) -> Alarm {
    let silent_at = live.heard + offline_after;
    if now >= silent_at {
        return Alarm::Offline;
    }
    let flush = live
        .flushed
        .is_none_or(|at| now - at >= last_seen_flush() && live.heard > at);
    let flushed = if flush {
        now
    } else {
        live.flushed.unwrap_or(now)
    };
    let next_flush = flushed + last_seen_flush();
    let next = if linked {
        silent_at.max(next_flush)
    } else {
        silent_at.min(next_flush)
    };
    Alarm::Alive {
        flush,
        next: next.max(now + Duration::seconds(1)),
    }
}

/// Does a running command's lease need renewing at a heartbeat now? Once less than half of it
/// plus one heartbeat interval is left: a heartbeat every interval then writes to D1 about twice
/// per lease, not every time, and the lease never gets closer to its end than half of it.
pub fn lease_due(
    expires: Option<Timestamp>,
    now: Timestamp,
    lease: Duration,
    heartbeat: Duration,
) -> bool {
    expires.is_none_or(|at| at - now <= lease / 2 + heartbeat)
}

/// The pause before reconnecting after `failures` failed attempts in a row: doubling from one
/// second to a minute, with `jitter` (0.0–1.0, from the caller's randomness) spreading a fleet
/// that lost the server at once over the second half of each step.
pub fn reconnect_delay(failures: u32, jitter: f64) -> std::time::Duration {
    let step = 1u64 << failures.min(6);
    let secs = step.min(60) as f64;
    std::time::Duration::from_secs_f64(secs * (0.5 + 0.5 * jitter.clamp(0.0, 1.0)))
}

/// A server-directed polling interval spread by `jitter` (0.0–1.0) over ±20 %, so agents that
/// started together do not poll together.
pub fn jittered(interval: std::time::Duration, jitter: f64) -> std::time::Duration {
    interval.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_unix_millis;

    fn at(secs: i64) -> Timestamp {
        from_unix_millis(1_800_000_000_000 + secs * 1000).expect("valid")
    }

    #[test]
    fn silence_past_the_threshold_is_offline_even_with_a_link_open() {
        let live = Liveness {
            heard: at(0),
            flushed: Some(at(0)),
        };
        let after = Duration::seconds(35);
        assert_eq!(at_alarm(live, at(35), after, true), Alarm::Offline);
        assert!(matches!(
            at_alarm(live, at(34), after, true),
            Alarm::Alive { flush: false, .. }
        ));
    }

    #[test]
    fn last_seen_is_flushed_at_most_once_a_minute_by_one_alarm_a_minute() {
        let after = Duration::seconds(35);
        let mut live = Liveness {
            heard: at(100),
            flushed: Some(at(50)),
        };
        // 50 s since the last flush: not yet; the alarm returns when silence would begin
        // (heard + 35 s), later than the minute.
        assert_eq!(
            at_alarm(live, at(100), after, true),
            Alarm::Alive {
                flush: false,
                next: at(135)
            }
        );
        // A minute since: flush, then come back a minute later.
        assert_eq!(
            at_alarm(live, at(110), after, true),
            Alarm::Alive {
                flush: true,
                next: at(170)
            }
        );
        // Nothing new heard since the last flush: nothing to write.
        live.heard = at(60);
        assert_eq!(
            at_alarm(live, at(70), after, true),
            Alarm::Alive {
                flush: false,
                next: at(110)
            }
        );
        // Without a link, the alarm comes back when silence would begin.
        assert_eq!(
            at_alarm(live, at(70), after, false),
            Alarm::Alive {
                flush: false,
                next: at(95)
            }
        );
        // A fresh object (memory lost) writes once.
        live.flushed = None;
        live.heard = at(70);
        assert!(matches!(
            at_alarm(live, at(70), after, true),
            Alarm::Alive { flush: true, .. }
        ));
    }

    #[test]
    fn leases_renew_once_half_is_gone() {
        let (lease, beat) = (Duration::seconds(60), Duration::seconds(10));
        assert!(lease_due(None, at(0), lease, beat));
        assert!(!lease_due(Some(at(41)), at(0), lease, beat));
        assert!(lease_due(Some(at(40)), at(0), lease, beat));
        // The shortest lease allowed (two heartbeats) is renewed at every heartbeat.
        assert!(lease_due(
            Some(at(2)),
            at(0),
            Duration::seconds(2),
            Duration::seconds(1)
        ));
    }

    #[test]
    fn reconnects_back_off_with_jitter_up_to_a_minute() {
        assert_eq!(reconnect_delay(0, 1.0).as_secs(), 1);
        assert_eq!(reconnect_delay(3, 1.0).as_secs(), 8);
        assert_eq!(reconnect_delay(20, 1.0).as_secs(), 60);
        assert_eq!(reconnect_delay(20, 0.0).as_secs(), 30);
        let base = std::time::Duration::from_secs(10);
        assert_eq!(jittered(base, 0.0), std::time::Duration::from_secs(8));
        assert_eq!(jittered(base, 1.0), std::time::Duration::from_secs(12));
    }

    #[test]
    fn messages_read_as_they_are_written() {
        let down = Down::Work;
        let text = serde_json::to_string(&down).expect("json");
        assert_eq!(text, r#"{"type":"work"}"#);
        assert_eq!(serde_json::from_str::<Down>(&text).expect("back"), down);
    }
}
