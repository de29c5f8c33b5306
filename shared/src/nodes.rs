//! Nodes: name rules, online/offline, and the timings agents keep.

use crate::api::NodeStatus;
use crate::time::Timestamp;
use crate::validate::FieldError;
use chrono::Duration;

/// 1–64 characters: letters, digits, space and `. _ -`; trimmed; compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeName(String);

impl NodeName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim();
        let len = value.chars().count();
        if !(1..=64).contains(&len) {
            return Err(FieldError::new(
                "name",
                format!("must be 1 to 64 characters (got {len})"),
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-')))
        {
            return Err(FieldError::new(
                "name",
                format!("may only contain letters, digits, spaces and . _ - (found {bad:?})"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The timings the Worker enforces and hands to agents in every heartbeat answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub heartbeat: Duration,
    pub poll: Duration,
    /// How long a claimed command may go without a renewing heartbeat.
    pub lease: Duration,
    /// Silence after which a node is offline.
    pub offline_after: Duration,
    /// How long a synchronous call (directory listing) waits for the agent.
    pub rpc_wait: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::seconds(10),
            poll: Duration::seconds(2),
            lease: Duration::seconds(60),
            offline_after: Duration::seconds(35),
            rpc_wait: Duration::seconds(15),
        }
    }
}

impl Timings {
    /// A lease or an offline threshold shorter than a few heartbeats would expire work and flip
    /// nodes offline while everything is healthy.
    pub fn check(&self) -> Result<(), String> {
        if self.lease < self.heartbeat * 2 {
            return Err("the lease must be at least two heartbeat intervals".to_owned());
        }
        if self.offline_after < self.heartbeat * 2 {
            return Err(
                "the offline threshold must be at least two heartbeat intervals".to_owned(),
            );
        }
        Ok(())
    }
}

/// A node is online while it was marked so and its last recorded sighting is within `stale_after`.
/// The node's object writes every change of status; callers pass the threshold plus the slack a
/// live node's `lastSeenAt` may lag by (`link::last_seen_slack`), so that only a node no object
/// answered for is judged by its age.
pub fn effective_status(
    marked_online: bool,
    last_seen: Option<Timestamp>,
    now: Timestamp,
    stale_after: Duration,
) -> NodeStatus {
    match last_seen {
        Some(seen) if marked_online && now - seen < stale_after => NodeStatus::Online,
        _ => NodeStatus::Offline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_unix_millis;

    fn at(secs: i64) -> Timestamp {
        from_unix_millis(1_800_000_000_000 + secs * 1000).expect("valid")
    }

    #[test]
    fn names() {
        assert_eq!(NodeName::parse("  nas-01 ").expect("ok").as_str(), "nas-01");
        assert!(NodeName::parse("Büro Server 2").is_ok());
        assert!(NodeName::parse("").is_err());
        assert!(NodeName::parse(&"n".repeat(65)).is_err());
        assert!(NodeName::parse("a/b").is_err());
    }

    #[test]
    fn online_until_silence_reaches_the_threshold() {
        let after = Duration::seconds(30);
        assert_eq!(
            effective_status(true, Some(at(0)), at(29), after),
            NodeStatus::Online
        );
        assert_eq!(
            effective_status(true, Some(at(0)), at(30), after),
            NodeStatus::Offline
        );
        assert_eq!(
            effective_status(false, Some(at(0)), at(1), after),
            NodeStatus::Offline
        );
        assert_eq!(
            effective_status(true, None, at(0), after),
            NodeStatus::Offline
        );
    }

    #[test]
    fn timings_must_leave_room_for_missed_heartbeats() {
        assert!(Timings::default().check().is_ok());
        let short_lease = Timings {
            lease: Duration::seconds(15),
            ..Timings::default()
        };
        assert!(short_lease.check().is_err());
    }
}
