//! Live reporting of a run or restore: log lines and progress go to the server in batches (one a
//! second), numbered so that a batch sent twice is stored once. Sending never blocks the work: a
//! line is queued in memory and a background task delivers it; if the server cannot be reached
//! the lines wait for the next attempt (up to a bound, after which the oldest are dropped and
//! the gap is said in the log).

use crate::client::{Client, Kind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stowage_shared::api::{LogLevel, LogLine, Progress};
use stowage_shared::protocol::{CommandError, LOG_BATCH_MAX_LINES, RunLogBatch};
use tokio::sync::watch;
use tracing::{info, warn};

/// How often queued lines and progress are sent.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Lines kept while the server cannot be reached.
const MAX_QUEUED: usize = 5_000;

/// Counters the work updates as it goes, from any thread.
#[derive(Debug, Default)]
pub struct Counters {
    /// Artifact bytes written (backup) or read (restore).
    pub bytes: AtomicU64,
    pub files: AtomicU64,
    /// Source bytes read (backup) or file bytes written (restore).
    pub source_bytes: AtomicU64,
}

impl Counters {
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_file(&self, bytes: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.add_source(bytes);
    }
    pub fn add_source(&self, n: u64) {
        self.source_bytes.fetch_add(n, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Queue {
    next_seq: u64,
    lines: Vec<LogLine>,
    dropped: u64,
    /// The server said the record has ended: stop sending.
    closed: bool,
}

#[derive(Debug)]
struct Inner {
    client: Option<Client>,
    kind: Kind,
    id: i64,
    total_bytes: Option<u64>,
    started: Instant,
    counters: Arc<Counters>,
    queue: Mutex<Queue>,
}

/// The reporter of one run or restore.
#[derive(Debug)]
pub struct Reporter {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    flusher: Option<tokio::task::JoinHandle<()>>,
}

impl Reporter {
    /// Starts reporting for record `id`; without a client (tests, benchmarks) lines only go to
    /// the agent's own log.
    pub fn start(client: Option<Client>, kind: Kind, id: i64, total_bytes: Option<u64>) -> Self {
        let inner = Arc::new(Inner {
            client,
            kind,
            id,
            total_bytes,
            started: Instant::now(),
            counters: Arc::new(Counters::default()),
            queue: Mutex::new(Queue {
                next_seq: 1,
                ..Queue::default()
            }),
        });
        let (stop, mut stopped) = watch::channel(false);
        let flusher = inner.client.is_some().then(|| {
            let inner = Arc::clone(&inner);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(FLUSH_EVERY) => {
                            inner.flush().await;
                        }
                        _ = stopped.changed() => return,
                    }
                }
            })
        });
        Self {
            inner,
            stop,
            flusher,
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.inner.counters)
    }

    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.inner.log(level, message.into());
    }

    /// A handle that adds lines to this log from another thread (a dump program's stderr).
    pub fn sink(&self) -> LogSink {
        LogSink(Arc::clone(&self.inner))
    }

    pub fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message);
    }

    pub fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message);
    }

    pub fn error(&self, message: impl Into<String>) {
        self.log(LogLevel::Error, message);
    }

    /// Logs how the work ended (`done` words a success), then [`finish`](Self::finish)es, and
    /// hands the outcome on: the log on the server is complete before the result is reported.
    pub async fn conclude<T>(
        self,
        outcome: Result<T, CommandError>,
        done: impl FnOnce(&T) -> String,
    ) -> Result<T, CommandError> {
        match &outcome {
            Ok(value) => self.info(done(value)),
            Err(e) => self.error(format!(
                "the {} failed: {}",
                match self.inner.kind {
                    Kind::Backup => "run",
                    Kind::Restore => "restore",
                    Kind::Verify => "check",
                },
                e.message
            )),
        }
        self.finish().await;
        outcome
    }

    /// Stops the background sender and delivers what is left (a few attempts), so the log is
    /// complete on the server before the result is reported.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.await;
            for _ in 0..3 {
                if self.inner.flush().await {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Adds lines to a run's or restore's log; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct LogSink(Arc<Inner>);

impl LogSink {
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.0.log(level, message.into());
    }
}

impl Inner {
    fn log(&self, level: LogLevel, message: String) {
        match level {
            LogLevel::Info => info!(record = self.id, "{message}"),
            LogLevel::Warn | LogLevel::Error => warn!(record = self.id, "{message}"),
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let seq = q.next_seq;
        q.next_seq += 1;
        if q.lines.len() >= MAX_QUEUED {
            q.lines.remove(0);
            q.dropped += 1;
        }
        q.lines.push(LogLine {
            seq,
            at: stowage_shared::time::format(chrono::Utc::now()),
            level,
            message,
        });
    }

    fn progress(&self) -> Progress {
        let elapsed = self.started.elapsed();
        let bytes = self.counters.bytes.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        Progress {
            bytes,
            total_bytes: self.total_bytes,
            files: self.counters.files.load(Ordering::Relaxed),
            source_bytes: self.counters.source_bytes.load(Ordering::Relaxed),
            bytes_per_sec: if secs > 0.0 {
                (bytes as f64 / secs) as u64
            } else {
                0
            },
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Sends queued lines (in batches) and the progress; true when everything queued went.
    async fn flush(&self) -> bool {
        let Some(client) = &self.client else {
            return true;
        };
        loop {
            let (lines, dropped) = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if q.closed {
                    return true;
                }
                let n = q.lines.len().min(LOG_BATCH_MAX_LINES);
                (q.lines[..n].to_vec(), std::mem::take(&mut q.dropped))
            };
            if dropped > 0 {
                warn!(
                    record = self.id,
                    dropped, "log lines were dropped while the server was unreachable"
                );
            }
            let batch = RunLogBatch {
                progress: Some(self.progress()),
                lines,
            };
            let last_sent = batch.lines.last().map_or(0, |l| l.seq);
            match client.post_log(self.kind, self.id, &batch).await {
                Ok(accepted) => {
                    let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                    q.lines.retain(|l| l.seq > last_sent);
                    if !accepted.live {
                        q.closed = true;
                        return true;
                    }
                    if q.lines.is_empty() {
                        return true;
                    }
                }
                Err(e) => {
                    warn!(record = self.id, error = %e, "could not send log lines; they wait for the next attempt");
                    return false;
                }
            }
        }
    }
}
