//! What an operator's tools ask of a running incasso: is it alive, is it
//! ready for traffic, a consistent copy of its SQLite database.

use crate::App;
use crate::error::{AppError, At, Kind, Place};

/// Alive: the database answers a query.
pub async fn health(app: &App) -> Result<(), AppError> {
    app.store.ping().await.at(Place::new("ops.health", "", ""))
}

/// Ready for traffic: the database answers and has every migration this
/// binary knows. A process started beside a newer one's migration, or
/// while its own has not run, is not ready (`MIGRATIONS_PENDING`).
pub async fn readiness(app: &App) -> Result<(), AppError> {
    let at = Place::new("ops.readiness", "", "");
    let pending = app.store.pending_migrations().await.at(at)?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(AppError::new(
            Kind::StoreUnavailable,
            "MIGRATIONS_PENDING",
            format!(
                "il database non ha ancora le migrazioni {pending:?}: `incasso migrate` o il \
                 primo `incasso serve` le applica"
            ),
        ))
    }
}

/// A consistent copy of the SQLite database to `dest` while serving
/// (PostgreSQL: refused, `pg_dump` is the tool); its size in bytes.
pub async fn backup(app: &App, dest: &std::path::Path) -> Result<u64, AppError> {
    let shown = dest.display().to_string();
    app.store
        .backup_to(dest)
        .await
        .at(Place::new("ops.backup", "", &shown))
}

/// What `GET /metrics` reads from the database.
pub async fn snapshot(app: &App) -> Result<incasso_store::OperationsSnapshot, AppError> {
    app.store
        .operations_snapshot()
        .await
        .at(Place::new("ops.snapshot", "", ""))
}
