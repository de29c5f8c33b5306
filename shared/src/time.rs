//! One timestamp format for the whole system: RFC 3339, UTC, millisecond precision, `Z` suffix.
//!
//! Every stored and returned time goes through [`format`], so stored strings sort and compare
//! lexicographically in the same order as the instants they name (D1 queries rely on that).

use chrono::{DateTime, SecondsFormat, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn format(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn from_unix_millis(ms: i64) -> Option<Timestamp> {
    DateTime::from_timestamp_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_fixed_width_utc_millis() {
        let t = from_unix_millis(1_764_331_200_000).expect("valid");
        assert_eq!(format(t), "2025-11-28T12:00:00.000Z");
        let later = from_unix_millis(1_764_331_200_001).expect("valid");
        assert!(
            format(t) < format(later),
            "lexicographic order must follow time order"
        );
    }

    #[test]
    fn parse_round_trips_and_normalises_offsets() {
        let t = parse("2025-11-28T13:00:00+01:00").expect("parse");
        assert_eq!(format(t), "2025-11-28T12:00:00.000Z");
        assert!(parse("yesterday").is_none());
    }
}
