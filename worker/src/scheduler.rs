//! The scheduler's part of the tick: every enabled task with a schedule gets at most one run per
//! fire time. The rule (the latest fire time since the task's cursor, earlier missed ones
//! coalesced into it) is `shared::schedule::due`; a task and fire time make one record at most
//! (a unique key), so ticks that repeat or overlap are harmless. A fire time that comes while the
//! previous run is still going is skipped, and the task says so in `lastSkip`.

use crate::config::AppState;
use crate::error::ApiError;
use crate::ops::fleet::require_tools;
use crate::ops::runs::{fail_unstarted, hand_out, needs};
use crate::store::{records, tasks};
use stowage_shared::schedule::{Schedule, due};
use stowage_shared::time::{self, Timestamp};

/// What the scheduler did in one tick.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scheduled {
    pub runs_started: usize,
    pub slots_skipped: usize,
    /// Tasks whose run could not be started (the tick goes on with the others).
    pub errors: usize,
}

pub async fn run_due(state: &AppState, now: Timestamp) -> Result<Scheduled, ApiError> {
    let mut out = Scheduled::default();
    let due_tasks = tasks::scheduled(&state.db).await?;
    if due_tasks.is_empty() {
        return Ok(out);
    }
    let sealer = state.config.sealer()?;
    let now_text = time::format(now);
    for task in due_tasks {
        let Ok(schedule) = Schedule::parse(&task.cron_expr, &task.time_zone) else {
            continue; // Checked when saved; a stored schedule always parses.
        };
        let cursor = task
            .schedule_cursor
            .as_deref()
            .or(Some(task.created_at.as_str()))
            .and_then(time::parse)
            .unwrap_or(now);
        let Some(slot) = due(&schedule, cursor, now) else {
            continue;
        };
        let fire = time::format(slot.fire_at);
        let outcome = async {
            match records::start(&state.db, &task, Some(&fire), slot.coalesced, &now_text).await? {
                Some(record_id) => {
                    let handed = async {
                        require_tools(&state.db, task.node_id, needs(&task)?).await?;
                        hand_out(
                            &state.db,
                            &state.config.links,
                            &sealer,
                            &task,
                            record_id,
                            now,
                        )
                        .await
                    };
                    if let Err(e) = handed.await {
                        // The run cannot start (its node lacks the task's programs, say): the
                        // record says why at once rather than waiting for a lease to lapse.
                        fail_unstarted(&state.db, record_id, &e.public_message(), now).await?;
                    }
                    tasks::advance_cursor(&state.db, task.id, &fire, None).await?;
                    Ok::<_, ApiError>(Some(true))
                }
                None if records::exists_for_fire(&state.db, task.id, &fire).await? => {
                    // Another tick started it.
                    tasks::advance_cursor(&state.db, task.id, &fire, None).await?;
                    Ok(None)
                }
                None => {
                    let why = format!("{fire}: skipped, the previous run was still going");
                    tasks::advance_cursor(&state.db, task.id, &fire, Some(&why)).await?;
                    Ok(Some(false))
                }
            }
        }
        .await;
        match outcome {
            Ok(Some(true)) => out.runs_started += 1,
            Ok(Some(false)) => out.slots_skipped += 1,
            Ok(None) => {}
            Err(e) => {
                // A record started without a command is failed by a later tick with the reason.
                worker::console_error!("scheduling task {}: {e}", task.id);
                out.errors += 1;
            }
        }
    }
    Ok(out)
}
