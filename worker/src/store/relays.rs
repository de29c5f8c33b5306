//! The `relays` and `relay_chunks` tables: artifacts an agent streams through the Worker.

use super::StoreError;
use super::{first, int, run, text};
use serde::Deserialize;
use stowage_shared::status::{RelayKind, RelayStatus};
use worker::D1Database;

pub async fn start(
    db: &D1Database,
    record_id: i64,
    node_id: i64,
    now: &str,
) -> Result<i64, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "INSERT INTO relays (record_id, node_id, created_at) VALUES (?1, ?2, ?3) RETURNING id",
        &[int(record_id), int(node_id), text(now)],
    )
    .await?;
    row.map(|r| r.id)
        .ok_or_else(|| StoreError::new("start relay", "insert returned no id"))
}

pub async fn attach(db: &D1Database, id: i64, command_id: i64) -> Result<(), StoreError> {
    run(
        db,
        "UPDATE relays SET command_id = ?2 WHERE id = ?1",
        &[int(id), int(command_id)],
    )
    .await
    .map(drop)
}

#[derive(Debug, Clone, Deserialize)]
pub struct RelayRow {
    pub status: RelayStatus,
    pub kind: RelayKind,
    pub chunks: i64,
    pub error: String,
    /// Chunks stored and not yet sent.
    pub waiting: i64,
}

pub async fn get(db: &D1Database, id: i64) -> Result<Option<RelayRow>, StoreError> {
    first(
        db,
        "SELECT status, kind, chunks, error,
                (SELECT count(*) FROM relay_chunks WHERE relay_id = ?1) AS waiting
         FROM relays WHERE id = ?1",
        &[int(id)],
    )
    .await
}

/// What happened to a posted chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Stored,
    /// Too many chunks wait already: send it again shortly.
    Busy,
    /// Not this node's relay, or it has ended.
    Gone,
}

/// Stores chunk `seq` of a relay the node is sending, unless `max_waiting` chunks wait already.
/// The first chunk says what the download carries.
pub async fn put_chunk(
    db: &D1Database,
    id: i64,
    node_id: i64,
    (seq, kind): (i64, RelayKind),
    data: &str,
    max_waiting: i64,
) -> Result<Put, StoreError> {
    let live = run(
        db,
        "UPDATE relays SET status = 'sending', kind = CASE WHEN ?3 = 0 THEN ?4 ELSE kind END
         WHERE id = ?1 AND node_id = ?2 AND status IN ('waiting', 'sending')",
        &[int(id), int(node_id), int(seq), text(kind.as_str())],
    )
    .await?;
    if live == 0 {
        return Ok(Put::Gone);
    }
    let stored = run(
        db,
        "INSERT INTO relay_chunks (relay_id, seq, data)
         SELECT ?1, ?2, ?3
         WHERE (SELECT count(*) FROM relay_chunks WHERE relay_id = ?1) < ?4
         ON CONFLICT (relay_id, seq) DO NOTHING",
        &[int(id), int(seq), text(data), int(max_waiting)],
    )
    .await?;
    if stored > 0 {
        return Ok(Put::Stored);
    }
    // A chunk sent twice (a retried request) is stored already: that is success.
    #[derive(Deserialize)]
    struct N {
        n: i64,
    }
    let dup: Option<N> = first(
        db,
        "SELECT count(*) AS n FROM relay_chunks WHERE relay_id = ?1 AND seq = ?2",
        &[int(id), int(seq)],
    )
    .await?;
    Ok(if dup.is_some_and(|d| d.n > 0) {
        Put::Stored
    } else {
        Put::Busy
    })
}

/// Takes chunk `seq` (read and delete), if it has arrived, and notes that the download is being
/// read (so the tick does not purge it however long it takes).
pub async fn take_chunk(
    db: &D1Database,
    id: i64,
    seq: i64,
    now: &str,
) -> Result<Option<String>, StoreError> {
    #[derive(Deserialize)]
    struct Data {
        data: String,
    }
    let row: Option<Data> = first(
        db,
        "DELETE FROM relay_chunks WHERE relay_id = ?1 AND seq = ?2 RETURNING data",
        &[int(id), int(seq)],
    )
    .await?;
    if row.is_some() {
        run(
            db,
            "INSERT INTO relay_reads (relay_id, read_at) VALUES (?1, ?2)
             ON CONFLICT (relay_id) DO UPDATE SET read_at = excluded.read_at",
            &[int(id), text(now)],
        )
        .await?;
    }
    Ok(row.map(|r| r.data))
}

pub async fn by_command(db: &D1Database, command_id: i64) -> Result<Option<i64>, StoreError> {
    #[derive(Deserialize)]
    struct Id {
        id: i64,
    }
    let row: Option<Id> = first(
        db,
        "SELECT id FROM relays WHERE command_id = ?1",
        &[int(command_id)],
    )
    .await?;
    Ok(row.map(|r| r.id))
}

/// Ends a relay: `done` with the number of chunks sent, or failed with the reason.
pub async fn finish(
    db: &D1Database,
    id: i64,
    outcome: Result<i64, &str>,
) -> Result<(), StoreError> {
    let (status, chunks, error) = match outcome {
        Ok(chunks) => (RelayStatus::Done, chunks, ""),
        Err(e) => (RelayStatus::Failed, 0, e),
    };
    run(
        db,
        "UPDATE relays SET status = ?2, chunks = ?3, error = ?4
         WHERE id = ?1 AND status IN ('waiting', 'sending')",
        &[int(id), text(status.as_str()), int(chunks), text(error)],
    )
    .await?;
    if status == RelayStatus::Failed {
        // Nobody will read them: their bytes go at once.
        run(
            db,
            "DELETE FROM relay_chunks WHERE relay_id = ?1",
            &[int(id)],
        )
        .await?;
    }
    Ok(())
}

/// Fails relays whose command ended without a result (the agent died), and removes relays (and
/// their chunks) older than `before`; returns how many were removed.
pub async fn purge(db: &D1Database, before: &str) -> Result<usize, StoreError> {
    run(
        db,
        "UPDATE relays SET status = 'failed',
                error = 'the agent stopped sending (its command ended without a result)'
         WHERE status IN ('waiting', 'sending')
           AND command_id IN (SELECT id FROM agent_commands WHERE status IN ('expired', 'failed'))",
        &[],
    )
    .await?;
    // Abandoned: begun before `before` and not read from since (a download still being read
    // stays, however long it takes).
    macro_rules! abandoned {
        () => {
            "SELECT id FROM relays WHERE created_at < ?1 AND NOT EXISTS
             (SELECT 1 FROM relay_reads r WHERE r.relay_id = relays.id AND r.read_at >= ?1)"
        };
    }
    run(
        db,
        concat!(
            "DELETE FROM relay_chunks WHERE relay_id IN (",
            abandoned!(),
            ")"
        ),
        &[text(before)],
    )
    .await?;
    run(
        db,
        concat!(
            "DELETE FROM relay_reads WHERE relay_id IN (",
            abandoned!(),
            ")"
        ),
        &[text(before)],
    )
    .await?;
    run(
        db,
        concat!("DELETE FROM relays WHERE id IN (", abandoned!(), ")"),
        &[text(before)],
    )
    .await
}
