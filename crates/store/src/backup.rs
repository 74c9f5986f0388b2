//! A consistent copy of a SQLite database while incasso serves from it.
//!
//! SQLite's online backup API, in one step: the copy is read in a single
//! read transaction, so it is the database as of one instant (a supply
//! being written is in it whole or not at all), and under WAL that reader
//! never blocks the writers. In smaller steps a write by another connection
//! would restart the copy, possibly forever under load. PostgreSQL's copy
//! is `pg_dump`'s (docs/DEPLOY.md).

use crate::{Result, Store, StoreError};
use std::path::{Path, PathBuf};

impl Store {
    /// Copies the SQLite database to `dest`, which must not exist. The
    /// copy is written beside it under another name and renamed only once
    /// complete and on disk: a failed backup never leaves a file that
    /// looks like one.
    pub async fn backup_to(&self, dest: &Path) -> Result<u64> {
        let Some(source) = self.sqlite_file.clone() else {
            return Err(StoreError::Unprocessable(
                "BACKUP_POSTGRESQL",
                "un database PostgreSQL si copia con pg_dump (docs/DEPLOY.md), non con incasso backup"
                    .into(),
            ));
        };
        if dest.exists() {
            return Err(StoreError::Conflict(format!(
                "{} esiste già: la copia non sovrascrive un file",
                dest.display()
            )));
        }
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || copy(&source, &dest))
            .await
            .map_err(|e| StoreError::Config(format!("backup interrotto: {e}")))?
    }
}

fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".parziale");
    PathBuf::from(name)
}

fn copy(source: &Path, dest: &Path) -> Result<u64> {
    let partial = partial_name(dest);
    let _ = std::fs::remove_file(&partial);
    let outcome = (|| -> Result<u64> {
        let from = rusqlite::Connection::open(source)?;
        from.busy_timeout(std::time::Duration::from_secs(30))?;
        let mut to = rusqlite::Connection::open(&partial)?;
        {
            let backup = rusqlite::backup::Backup::new(&from, &mut to)?;
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(StoreError::Config(format!(
                        "backup: il database è occupato ({other:?}), riprovare"
                    )));
                }
            }
        }
        let pages: i64 = to.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = to.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        // The copy as one file, readable without a WAL beside it.
        to.pragma_update(None, "journal_mode", "DELETE")?;
        drop(to);
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::Config(format!("backup: {e}")))?;
        std::fs::rename(&partial, dest).map_err(|e| StoreError::Config(format!("backup: {e}")))?;
        Ok((pages * page_size) as u64)
    })();
    if outcome.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    outcome
}
