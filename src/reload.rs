//! Live knowledge: `cskh serve` rebuilds its answering core when the knowledge files
//! change (polled), on `POST /api/v1/knowledge/reload`, on SIGHUP, and when an agent's
//! answer to a knowledge gap is accepted.
//!
//! Invariants: rebuilds run one at a time; a knowledge base that does not load
//! changes nothing (the previous core keeps answering, the error is kept for
//! `GET /api/v1/knowledge`); turns in flight finish on the core they started with.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use thiserror::Error;

use crate::answer::{Core, CoreError, CoreOptions};
use crate::bot::Bot;
use crate::knowledge::{abbreviations_file, knowledge_files, Contents, KnowledgeError};
use crate::search::index_dir;

/// What set a rebuild off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The knowledge files changed on disk.
    FilesChanged,
    /// `POST /api/v1/knowledge/reload`.
    Request,
    /// SIGHUP.
    Signal,
}

#[derive(Debug, Error)]
pub enum ReloadError {
    /// The files do not load (file and line in the message); nothing changed.
    #[error(transparent)]
    Knowledge(#[from] KnowledgeError),
    #[error("cannot rebuild the answering core: {0}")]
    Core(String),
}

impl From<CoreError> for ReloadError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Knowledge(k) => Self::Knowledge(k),
            other => Self::Core(other.to_string()),
        }
    }
}

/// What `GET /api/v1/knowledge` shows: the knowledge base that answers now, and the
/// last rebuild that failed since it was loaded.
#[derive(Debug, Clone, Serialize)]
pub struct KnowledgeStatus {
    #[serde(flatten)]
    pub contents: Contents,
    pub loaded_at: DateTime<Utc>,
    /// Successful rebuilds since the server started.
    pub reloads: u64,
    pub last_error: Option<ReloadFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReloadFailure {
    pub message: String,
    pub at: DateTime<Utc>,
    pub cause: Cause,
}

/// One successful rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    #[serde(flatten)]
    pub contents: Contents,
    pub took_ms: u64,
}

/// What the last rebuild saw, guarded so that rebuilds run one at a time.
pub struct Attempt {
    /// Fingerprint of the files the last rebuild (or the start-up load) read,
    /// whether it succeeded or not: the watcher does not retry a broken state.
    fingerprint: u64,
    /// Index directories of the current and the previous core (the previous one may
    /// still serve a turn in flight); older ones are removed.
    index_dirs: Vec<PathBuf>,
}

pub struct Reloader {
    opts: CoreOptions,
    attempt: tokio::sync::Mutex<Attempt>,
    status: RwLock<KnowledgeStatus>,
}

/// A fingerprint of the knowledge files: their paths and contents. Contents, not
/// sizes and modification times: an edit that keeps both (a same-length change
/// within the file system's clock resolution, a restored backup, `cp -p`) is still
/// seen. A knowledge base is a few megabytes at most, read from the page cache each
/// poll. A listing or read error fingerprints as the error, so a vanished directory
/// counts as a change and its rebuild reports why.
pub fn fingerprint(dir: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    // The shop's abbreviation table is read with the knowledge files (absent, it
    // fingerprints as its read error, so adding or removing it is a change).
    let files = if dir.is_dir() {
        knowledge_files(dir).map(|mut files| {
            files.push(abbreviations_file(dir));
            files
        })
    } else {
        Ok(vec![dir.to_path_buf()])
    };
    match files {
        Ok(files) => {
            for f in files {
                f.hash(&mut h);
                match std::fs::read(&f) {
                    Ok(bytes) => bytes.hash(&mut h),
                    Err(e) => e.kind().hash(&mut h),
                }
            }
        }
        Err(e) => e.to_string().hash(&mut h),
    }
    h.finish()
}

impl Reloader {
    /// `core` was loaded from `opts` after `fingerprint` was taken.
    pub fn new(opts: CoreOptions, core: &Core, fingerprint: u64) -> Self {
        let kb = core.retriever.knowledge();
        let index_dirs = opts
            .data
            .as_deref()
            .map(|d| vec![index_dir(d, kb)])
            .unwrap_or_default();
        Self {
            attempt: tokio::sync::Mutex::new(Attempt {
                fingerprint,
                index_dirs,
            }),
            status: RwLock::new(KnowledgeStatus {
                contents: kb.contents(),
                loaded_at: Utc::now(),
                reloads: 0,
                last_error: None,
            }),
            opts,
        }
    }

    pub fn options(&self) -> &CoreOptions {
        &self.opts
    }

    pub fn status(&self) -> KnowledgeStatus {
        self.status.read().expect("status lock").clone()
    }

    /// Waits for any rebuild in progress; while the guard lives no other starts.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, Attempt> {
        self.attempt.lock().await
    }

    /// Rebuilds from the files as they are now and swaps the bot onto the new core.
    /// A failure is kept in the status and changes nothing else.
    pub async fn reload(&self, bot: &Bot, cause: Cause) -> Result<ReloadReport, ReloadError> {
        let mut attempt = self.lock().await;
        let r = self.rebuild(&mut attempt, bot).await;
        if let Err(e) = &r {
            self.status.write().expect("status lock").last_error = Some(ReloadFailure {
                message: e.to_string(),
                at: Utc::now(),
                cause,
            });
            tracing::warn!(?cause, error = %e, "knowledge not reloaded: the previous knowledge base keeps answering");
        }
        r
    }

    /// The rebuild itself, under a guard from [`Reloader::lock`] (an accepted gap
    /// writes its entry and rebuilds under one guard, and undoes the write itself on
    /// failure).
    pub async fn rebuild(
        &self,
        attempt: &mut Attempt,
        bot: &Bot,
    ) -> Result<ReloadReport, ReloadError> {
        let started = Instant::now();
        let opts = self.opts.clone();
        let current = bot.core();
        let (fp, built) = tokio::task::spawn_blocking(move || {
            let fp = fingerprint(&opts.knowledge);
            (fp, current.rebuild(&opts))
        })
        .await
        .map_err(|e| ReloadError::Core(e.to_string()))?;
        attempt.fingerprint = fp;
        let core = Arc::new(built?);
        let kb = core.retriever.knowledge();
        let contents = kb.contents();
        if let Some(data) = &self.opts.data {
            let dir = index_dir(data, kb);
            if attempt.index_dirs.last() != Some(&dir) {
                attempt.index_dirs.push(dir);
            }
            prune_index_dirs(data, &mut attempt.index_dirs);
        }
        bot.swap_core(core);
        let report = ReloadReport {
            contents,
            took_ms: started.elapsed().as_millis() as u64,
        };
        {
            let mut s = self.status.write().expect("status lock");
            s.contents = contents;
            s.loaded_at = Utc::now();
            s.reloads += 1;
            s.last_error = None;
        }
        tracing::info!(
            entries = contents.entries,
            passages = contents.passages,
            files = contents.files,
            took_ms = report.took_ms,
            "knowledge reloaded"
        );
        Ok(report)
    }

    /// Polls the knowledge files every `every` and rebuilds when they changed and
    /// then held still for one more poll (an editor's save is often several writes).
    pub async fn watch(self: Arc<Self>, bot: Arc<Bot>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending: Option<u64> = None;
        loop {
            tick.tick().await;
            let dir = self.opts.knowledge.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&dir)).await else {
                continue;
            };
            if now == self.attempt.lock().await.fingerprint {
                pending = None;
                continue;
            }
            if pending != Some(now) {
                pending = Some(now);
                continue;
            }
            pending = None;
            let _ = self.reload(&bot, Cause::FilesChanged).await;
        }
    }
}

/// Keeps the index directories of the current and the previous core; removes the
/// other indexes this data directory holds (earlier versions of the knowledge).
fn prune_index_dirs(data: &Path, keep: &mut Vec<PathBuf>) {
    while keep.len() > 2 {
        keep.remove(0);
    }
    let Ok(rd) = std::fs::read_dir(data.join("index")) else {
        return;
    };
    for item in rd.flatten() {
        let path = item.path();
        let name = item.file_name();
        // Staging directories of a build in progress (another process) are left alone.
        if name.to_string_lossy().starts_with('.') || keep.contains(&path) {
            continue;
        }
        if path.is_dir() {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove an old index");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shop_abbreviation_table_is_part_of_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md"), "## Q {#a}\nĐáp.\n").unwrap();
        let without = fingerprint(dir.path());
        assert_eq!(without, fingerprint(dir.path()));
        let table = abbreviations_file(dir.path());
        std::fs::write(&table, "ip\tiphone\n").unwrap();
        let with = fingerprint(dir.path());
        assert_ne!(with, without, "added");
        std::fs::write(&table, "ip\tipad\n").unwrap();
        assert_ne!(fingerprint(dir.path()), with, "edited");
        std::fs::remove_file(&table).unwrap();
        assert_eq!(fingerprint(dir.path()), without, "removed");
    }
}
