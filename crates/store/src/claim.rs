//! Claims on a supply while it loads: one loader per (Ente, file) across
//! every process sharing the database.
//!
//! A claim must die with its process, because that is how a killed load is
//! told apart from a running one: a supply left `LOADING` whose claim is
//! free was abandoned and may be resumed. So a claim is an OS-level lock,
//! never a row: on SQLite a file lock beside the database, on PostgreSQL a
//! session advisory lock held by a connection of its own.

use crate::{Dialect, Result, Store, StoreError};
use sqlx::{AnyConnection, Connection};
use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::sync::Mutex;

/// Held while a supply loads; released when dropped (or when the process
/// dies).
pub struct SupplyClaim {
    held: Held,
}

enum Held {
    File {
        path: PathBuf,
        _file: File,
    },
    Postgres(Option<AnyConnection>, i64),
    /// An in-memory SQLite database lives in one process only.
    Memory(String),
}

/// Claims of in-memory databases.
static IN_MEMORY: Mutex<Option<HashSet<String>>> = Mutex::new(None);

impl Store {
    /// Claims the supply of `file_hash` for `ente`; `None` while another
    /// loader (in this process or another) holds it.
    pub async fn claim_supply(&self, ente: &str, file_hash: &str) -> Result<Option<SupplyClaim>> {
        let key = format!("{ente}-{file_hash}");
        match (self.dialect, &self.sqlite_file) {
            (Dialect::Sqlite, Some(db)) => {
                let name = format!(
                    "{}.supply-{}.lock",
                    db.file_name().and_then(|n| n.to_str()).unwrap_or("incasso"),
                    &key[..key.len().min(64)]
                );
                let path = db.with_file_name(name);
                claim_file(path)
            }
            (Dialect::Sqlite, None) => {
                let mut set = IN_MEMORY.lock().expect("claims lock");
                let set = set.get_or_insert_with(HashSet::new);
                Ok(set.insert(key.clone()).then_some(SupplyClaim {
                    held: Held::Memory(key),
                }))
            }
            (Dialect::Postgres, _) => {
                let mut conn = self.pool.acquire().await?.detach();
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(advisory_key(&key))
                    .fetch_one(&mut conn)
                    .await?;
                if got {
                    Ok(Some(SupplyClaim {
                        held: Held::Postgres(Some(conn), advisory_key(&key)),
                    }))
                } else {
                    let _ = conn.close().await;
                    Ok(None)
                }
            }
        }
    }
}

fn claim_file(path: PathBuf) -> Result<Option<SupplyClaim>> {
    let io = |e: std::io::Error| StoreError::Config(format!("{}: {e}", path.display()));
    // The previous holder unlinks the file when it lets go; a file opened
    // just before that and locked just after is no longer the one at `path`,
    // so the lock is taken again on the new one.
    for _ in 0..4 {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        if same_file(&file, &path) {
            return Ok(Some(SupplyClaim {
                held: Held::File { path, _file: file },
            }));
        }
    }
    Ok(None)
}

#[cfg(unix)]
fn same_file(file: &File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &std::path::Path) -> bool {
    path.exists()
}

/// A stable 64-bit key (FNV-1a) for PostgreSQL's advisory locks: the same
/// in every process and every build.
fn advisory_key(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

impl SupplyClaim {
    /// Lets go now: the next claimer, in this process or another, gets the
    /// file at once (a dropped PostgreSQL claim is let go in the background).
    pub async fn release(mut self) {
        if let Held::Postgres(conn, key) = &mut self.held
            && let Some(mut conn) = conn.take()
        {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(*key)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }
}

impl Drop for SupplyClaim {
    fn drop(&mut self) {
        match &mut self.held {
            // Unlinked while still locked: nobody can be granted the old
            // file's lock and then believe it holds the claim.
            Held::File { path, .. } => {
                let _ = std::fs::remove_file(path);
            }
            Held::Postgres(conn, _) => {
                // Closing the session releases its advisory locks.
                if let Some(conn) = conn.take()
                    && let Ok(handle) = tokio::runtime::Handle::try_current()
                {
                    handle.spawn(async move {
                        let _ = conn.close().await;
                    });
                }
            }
            Held::Memory(key) => {
                if let Some(set) = IN_MEMORY.lock().expect("claims lock").as_mut() {
                    set.remove(key);
                }
            }
        }
    }
}
