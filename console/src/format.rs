//! How figures read on screen: sizes, times, durations, rates and the time left.

use stowage_shared::api::Progress;
use stowage_shared::notifications::human_bytes;

pub fn bytes(n: u64) -> String {
    human_bytes(i64::try_from(n).unwrap_or(i64::MAX))
}

pub fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", bytes(bytes_per_sec))
}

/// `1h 02m`, `3m 05s` or `12 s`.
pub fn duration_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s} s")
    }
}

/// Seconds left at the average rate so far; `None` while the total or the rate is unknown.
pub fn eta_secs(progress: &Progress) -> Option<u64> {
    let total = progress.total_bytes?;
    if progress.bytes_per_sec == 0 || total < progress.bytes {
        return None;
    }
    Some((total - progress.bytes).div_ceil(progress.bytes_per_sec))
}

/// For a backup, whose total is unknown while it runs: seconds left and percent done, judged by
/// the source bytes read so far against what the task's last successful run read.
pub fn estimate_from_last_run(progress: &Progress, last_source_bytes: u64) -> Option<(u64, f64)> {
    let secs = progress.elapsed_ms as f64 / 1000.0;
    if progress.source_bytes == 0 || secs <= 0.0 || last_source_bytes <= progress.source_bytes {
        return None;
    }
    let per_sec = progress.source_bytes as f64 / secs;
    let left = ((last_source_bytes - progress.source_bytes) as f64 / per_sec).ceil() as u64;
    let done = progress.source_bytes as f64 / last_source_bytes as f64 * 100.0;
    Some((left, done))
}

/// Percent done, when the total is known.
pub fn percent(progress: &Progress) -> Option<f64> {
    let total = progress.total_bytes.filter(|t| *t > 0)?;
    Some((progress.bytes as f64 / total as f64 * 100.0).min(100.0))
}

/// An API time (RFC 3339, UTC) as `YYYY-MM-DD HH:MM` in the browser's own time zone.
pub fn when(rfc3339: &str) -> String {
    let Some(t) = stowage_shared::time::parse(rfc3339) else {
        return rfc3339.to_owned();
    };
    let offset_min = local_offset_minutes(t.timestamp_millis());
    let local = t + chrono::Duration::minutes(offset_min);
    local.format("%Y-%m-%d %H:%M").to_string()
}

/// How long between two API times, when both are known.
pub fn took(started: &str, finished: Option<&str>) -> Option<String> {
    let start = stowage_shared::time::parse(started)?;
    let end = stowage_shared::time::parse(finished?)?;
    let secs = (end - start).num_seconds().max(0);
    Some(duration_secs(secs as u64))
}

/// The browser's offset from UTC at an instant, in minutes east.
#[cfg(target_arch = "wasm32")]
fn local_offset_minutes(ms: i64) -> i64 {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    -(date.get_timezone_offset() as i64)
}

#[cfg(not(target_arch = "wasm32"))]
fn local_offset_minutes(_ms: i64) -> i64 {
    0
}

/// The browser's IANA time zone (`UTC` when it does not say).
pub fn browser_zone() -> String {
    #[cfg(target_arch = "wasm32")]
    {
        let format =
            js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new());
        js_sys::Reflect::get(&format.resolved_options(), &"timeZone".into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_else(|| "UTC".to_owned())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        "UTC".to_owned()
    }
}

/// Now, from the browser's clock.
pub fn now() -> stowage_shared::time::Timestamp {
    #[cfg(target_arch = "wasm32")]
    let ms = js_sys::Date::now() as i64;
    #[cfg(not(target_arch = "wasm32"))]
    let ms = 0;
    stowage_shared::time::from_unix_millis(ms).unwrap_or_default()
}

/// The next `n` fire times of a schedule, as wall-clock times in its own zone, or why it is not
/// one. The same parser as the server's, so what is shown is what will run.
pub fn next_fires(
    cron: &str,
    zone: &str,
    after: stowage_shared::time::Timestamp,
    n: usize,
) -> Result<Vec<String>, String> {
    let schedule = stowage_shared::schedule::Schedule::parse(cron, zone)
        .map_err(|e| format!("{}: {}", e.field, e.reason))?;
    let tz = schedule.zone();
    Ok(schedule
        .upcoming(after, n)
        .into_iter()
        .map(|t| {
            t.with_timezone(&tz)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_the_way_people_say_them() {
        assert_eq!(duration_secs(12), "12 s");
        assert_eq!(duration_secs(185), "3m 05s");
        assert_eq!(duration_secs(3720), "1h 02m");
        let p = Progress {
            bytes: 250,
            total_bytes: Some(1_000),
            bytes_per_sec: 100,
            ..Progress::default()
        };
        assert_eq!(eta_secs(&p), Some(8));
        assert_eq!(percent(&p), Some(25.0));
        assert_eq!(eta_secs(&Progress::default()), None);
        let running = Progress {
            source_bytes: 300,
            elapsed_ms: 3_000,
            ..Progress::default()
        };
        assert_eq!(estimate_from_last_run(&running, 1_200), Some((9, 25.0)));
        assert_eq!(
            estimate_from_last_run(&running, 200),
            None,
            "past the last run's size"
        );
        assert_eq!(
            took("2026-12-01T10:00:00Z", Some("2026-12-01T10:01:30Z")).as_deref(),
            Some("1m 30s")
        );
        assert_eq!(when("2026-12-01T10:00:00Z"), "2026-12-01 10:00");
    }

    #[test]
    fn the_cron_helper_shows_wall_clock_times_in_the_tasks_zone() {
        let after = stowage_shared::time::parse("2026-03-28T12:00:00Z").expect("a time");
        let fires = next_fires("0 3 * * *", "Europe/Berlin", after, 2).expect("a schedule");
        // Berlin moves to summer time on 29 March: 03:00 is then CEST.
        assert_eq!(
            fires,
            ["Sun 2026-03-29 03:00 CEST", "Mon 2026-03-30 03:00 CEST"]
        );
        let bad = next_fires("0 3 * *", "UTC", after, 2).expect_err("four fields");
        assert!(bad.starts_with("cronExpr:"), "{bad}");
        let zone = next_fires("@daily", "Mars/Olympus", after, 2).expect_err("no such zone");
        assert!(zone.starts_with("timeZone:"), "{zone}");
    }
}
