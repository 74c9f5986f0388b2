//! Durability before acknowledgement.
//!
//! SQLite runs `synchronous = NORMAL` under WAL: a commit's frames are
//! written to the WAL file but not flushed, so a commit survives the
//! process being killed (the OS holds the pages) but not a power cut.
//! `FULL` would flush the WAL inside every commit, while the single writer
//! waits: at this machine's 2.4 ms per flush that caps every write at about
//! 400 commits a second, whatever they are.
//!
//! Instead, a use case whose answer tells someone outside that a write is
//! kept (a receipt acknowledged to the Node, a supply accepted, a reporting
//! flow or treasury journal taken in) calls [`Store::durable`] after its
//! commit and before answering. It flushes the WAL file once for every
//! caller waiting at that moment (group commit): the writer goes on
//! committing during the flush, and one flush covers every commit before
//! it started.
//!
//! Why flushing the WAL file from outside SQLite is enough: the commit's
//! frames are in it once the commit returns, and SQLite only overwrites
//! them after a checkpoint has copied them into the database file and
//! flushed that file (what `NORMAL` does at every checkpoint). A WAL that
//! was deleted (the last connection closed) was checkpointed and flushed
//! first. A WAL file that is new since the last flush also needs its
//! folder's entry flushed, or the file itself may be gone after a cut.
//!
//! PostgreSQL needs none of this: with `synchronous_commit = on` (its
//! default, and what DEPLOY.md requires) COMMIT returns once the commit is
//! in its WAL on disk.

use crate::{Result, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The group commit of one SQLite database's WAL file.
pub(crate) struct WalFlush {
    wal: PathBuf,
    folder: PathBuf,
    /// Flushes started so far. One numbered `n` started after every
    /// caller that saw `started < n` had arrived.
    started: AtomicU64,
    /// The highest flush that has finished.
    finished: AtomicU64,
    /// Held by the one flush in progress; it keeps the identity of the
    /// WAL file last flushed, to notice a new one.
    turn: tokio::sync::Mutex<Option<FileIdentity>>,
}

type FileIdentity = (u64, u64);

impl WalFlush {
    pub(crate) fn new(database: &Path) -> Arc<WalFlush> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let folder = match database.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Arc::new(WalFlush {
            wal: wal.into(),
            folder,
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            turn: tokio::sync::Mutex::new(None),
        })
    }

    /// Flushes done since the store opened.
    pub(crate) fn flushes(&self) -> u64 {
        self.finished.load(Ordering::SeqCst)
    }

    async fn wait(&self) -> Result<()> {
        // Any flush numbered `wanted` or more starts after this point, so
        // after every commit our caller made.
        let wanted = self.started.load(Ordering::SeqCst) + 1;
        let mut last = self.turn.lock().await;
        if self.finished.load(Ordering::SeqCst) >= wanted {
            return Ok(());
        }
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let (wal, folder, previous) = (self.wal.clone(), self.folder.clone(), *last);
        let identity = tokio::task::spawn_blocking(move || flush(&wal, &folder, previous))
            .await
            .map_err(|e| StoreError::Config(format!("flush del WAL interrotto: {e}")))?
            .map_err(|e| {
                StoreError::Backend(sqlx::Error::Io(std::io::Error::new(
                    e.kind(),
                    format!("flush del WAL non riuscito: {e}"),
                )))
            })?;
        *last = identity.or(previous);
        self.finished.store(number, Ordering::SeqCst);
        Ok(())
    }
}

/// Flushes the WAL file, and its folder when the file is not the one
/// flushed last time. Returns the file's identity; none when there is no
/// WAL (everything is in the database file, already flushed).
fn flush(
    wal: &Path,
    folder: &Path,
    previous: Option<FileIdentity>,
) -> std::io::Result<Option<FileIdentity>> {
    use std::os::unix::fs::MetadataExt;
    let file = match std::fs::File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    file.sync_data()?;
    let meta = file.metadata()?;
    let identity = (meta.dev(), meta.ino());
    if previous != Some(identity) {
        std::fs::File::open(folder)?.sync_all()?;
    }
    Ok(Some(identity))
}

impl Store {
    /// Returns once every write this store committed before the call would
    /// survive a power cut. Call it after the commit and before answering
    /// that something is kept. Concurrent callers share one flush.
    pub async fn durable(&self) -> Result<()> {
        match &self.wal_flush {
            Some(flush) => flush.wait().await,
            None => Ok(()),
        }
    }

    /// How many WAL flushes [`Store::durable`] has done (SQLite; always 0
    /// on PostgreSQL and in memory).
    pub fn wal_flushes(&self) -> u64 {
        self.wal_flush.as_ref().map_or(0, |f| f.flushes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_database(name: &str) -> (PathBuf, String) {
        let dir = std::env::temp_dir().join(format!(
            "incasso-durable-{name}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("d.db").display());
        (dir, url)
    }

    /// Many callers at once share flushes, and each one's own commit is
    /// covered: a flush starts after the caller arrived.
    #[tokio::test]
    async fn concurrent_callers_share_flushes() {
        let (dir, url) = temp_database("group");
        let store = Store::connect_without_migrating(&url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (v INTEGER)")
            .execute(&store.writer)
            .await
            .unwrap();
        store.durable().await.unwrap();
        assert_eq!(store.wal_flushes(), 1, "one caller, one flush");
        let before = store.wal_flushes();
        let callers: Vec<_> = (0..64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    sqlx::query("INSERT INTO t (v) VALUES ($1)")
                        .bind(i as i64)
                        .execute(&store.writer)
                        .await
                        .unwrap();
                    let arrived = store
                        .wal_flush
                        .as_ref()
                        .unwrap()
                        .started
                        .load(Ordering::SeqCst);
                    store.durable().await.unwrap();
                    // The flush that answered started after this caller's
                    // commit: the finished count went past what had started.
                    let finished = store.wal_flushes();
                    assert!(
                        finished > arrived,
                        "answered by a flush started before the commit"
                    );
                })
            })
            .collect();
        for c in callers {
            c.await.unwrap();
        }
        let used = store.wal_flushes() - before;
        assert!(used >= 1, "no flush at all");
        assert!(used < 64, "64 callers took {used} flushes: no grouping");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A flush reaches the disk: the data written through SQLite is in the
    /// WAL file the flush opened (not some other path).
    #[tokio::test]
    async fn the_flushed_file_is_the_databases_wal() {
        let (dir, url) = temp_database("path");
        let store = Store::connect_without_migrating(&url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (v TEXT)")
            .execute(&store.writer)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (v) VALUES ('ricevuta-durevole')")
            .execute(&store.writer)
            .await
            .unwrap();
        store.durable().await.unwrap();
        let wal = std::fs::read(dir.join("d.db-wal")).unwrap();
        assert!(
            wal.windows(17).any(|w| w == b"ricevuta-durevole"),
            "the committed row is not in the WAL the flush names"
        );
        assert_eq!(store.wal_flushes(), 1);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn in_memory_needs_no_flush() {
        let store = Store::connect_without_migrating("sqlite::memory:")
            .await
            .unwrap();
        store.durable().await.unwrap();
        assert_eq!(store.wal_flushes(), 0);
    }
}
