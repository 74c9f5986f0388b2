//! Schema migrations, embedded in the binary and run at start.
//!
//! Each version has one script per dialect in the same table entry, so the
//! two folders cannot drift apart in numbering. Concurrent starts (several
//! processes on one database) are serialized: on PostgreSQL by an advisory
//! lock, on SQLite by the IMMEDIATE transaction's write lock.

use crate::{Dialect, Result, Store};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "node",
        sqlite: include_str!("../migrations/sqlite/0002_node.sql"),
        postgres: include_str!("../migrations/postgres/0002_node.sql"),
    },
    Migration {
        version: 3,
        name: "bus",
        sqlite: include_str!("../migrations/sqlite/0003_bus.sql"),
        postgres: include_str!("../migrations/postgres/0003_bus.sql"),
    },
    Migration {
        version: 4,
        name: "resumable_supplies",
        sqlite: include_str!("../migrations/sqlite/0004_resumable_supplies.sql"),
        postgres: include_str!("../migrations/postgres/0004_resumable_supplies.sql"),
    },
    Migration {
        version: 5,
        name: "notices",
        sqlite: include_str!("../migrations/sqlite/0005_notices.sql"),
        postgres: include_str!("../migrations/postgres/0005_notices.sql"),
    },
    Migration {
        version: 6,
        name: "reconciliation",
        sqlite: include_str!("../migrations/sqlite/0006_reconciliation.sql"),
        postgres: include_str!("../migrations/postgres/0006_reconciliation.sql"),
    },
    Migration {
        version: 7,
        name: "treasury_settings",
        sqlite: include_str!("../migrations/sqlite/0007_treasury_settings.sql"),
        postgres: include_str!("../migrations/postgres/0007_treasury_settings.sql"),
    },
    Migration {
        version: 8,
        name: "flow_revisions",
        sqlite: include_str!("../migrations/sqlite/0008_flow_revisions.sql"),
        postgres: include_str!("../migrations/postgres/0008_flow_revisions.sql"),
    },
    Migration {
        version: 9,
        name: "accertamento_siope",
        sqlite: include_str!("../migrations/sqlite/0009_accertamento_siope.sql"),
        postgres: include_str!("../migrations/postgres/0009_accertamento_siope.sql"),
    },
    Migration {
        version: 10,
        name: "regularization_exports",
        sqlite: include_str!("../migrations/sqlite/0010_regularization_exports.sql"),
        postgres: include_str!("../migrations/postgres/0010_regularization_exports.sql"),
    },
    Migration {
        version: 11,
        name: "checkout_carts",
        sqlite: include_str!("../migrations/sqlite/0011_checkout_carts.sql"),
        postgres: include_str!("../migrations/postgres/0011_checkout_carts.sql"),
    },
    Migration {
        version: 12,
        name: "gpd_uploads",
        sqlite: include_str!("../migrations/sqlite/0012_gpd_uploads.sql"),
        postgres: include_str!("../migrations/postgres/0012_gpd_uploads.sql"),
    },
    Migration {
        version: 13,
        name: "operators",
        sqlite: include_str!("../migrations/sqlite/0013_operators.sql"),
        postgres: include_str!("../migrations/postgres/0013_operators.sql"),
    },
    Migration {
        version: 14,
        name: "position_search",
        sqlite: include_str!("../migrations/sqlite/0014_position_search.sql"),
        postgres: include_str!("../migrations/postgres/0014_position_search.sql"),
    },
    Migration {
        version: 15,
        name: "dashboard",
        sqlite: include_str!("../migrations/sqlite/0015_dashboard.sql"),
        postgres: include_str!("../migrations/postgres/0015_dashboard.sql"),
    },
    Migration {
        version: 16,
        name: "manual_regularizations",
        sqlite: include_str!("../migrations/sqlite/0016_manual_regularizations.sql"),
        postgres: include_str!("../migrations/postgres/0016_manual_regularizations.sql"),
    },
    Migration {
        version: 18,
        name: "oidc_requests",
        sqlite: include_str!("../migrations/sqlite/0018_oidc_requests.sql"),
        postgres: include_str!("../migrations/postgres/0018_oidc_requests.sql"),
    },
    Migration {
        version: 19,
        name: "supply_offices",
        sqlite: include_str!("../migrations/sqlite/0019_supply_offices.sql"),
        postgres: include_str!("../migrations/postgres/0019_supply_offices.sql"),
    },
    Migration {
        version: 20,
        name: "portal_settings",
        sqlite: include_str!("../migrations/sqlite/0020_portal_settings.sql"),
        postgres: include_str!("../migrations/postgres/0020_portal_settings.sql"),
    },
    Migration {
        version: 21,
        name: "portal_carts",
        sqlite: include_str!("../migrations/sqlite/0021_portal_carts.sql"),
        postgres: include_str!("../migrations/postgres/0021_portal_carts.sql"),
    },
    Migration {
        version: 22,
        name: "service_forms",
        sqlite: include_str!("../migrations/sqlite/0022_service_forms.sql"),
        postgres: include_str!("../migrations/postgres/0022_service_forms.sql"),
    },
    Migration {
        version: 23,
        name: "mail_outbox",
        sqlite: include_str!("../migrations/sqlite/0023_mail_outbox.sql"),
        postgres: include_str!("../migrations/postgres/0023_mail_outbox.sql"),
    },
    Migration {
        version: 24,
        name: "citizen_sessions",
        sqlite: include_str!("../migrations/sqlite/0024_citizen_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0024_citizen_sessions.sql"),
    },
    Migration {
        version: 25,
        name: "desks",
        sqlite: include_str!("../migrations/sqlite/0025_desks.sql"),
        postgres: include_str!("../migrations/postgres/0025_desks.sql"),
    },
    Migration {
        version: 26,
        name: "desk_work",
        sqlite: include_str!("../migrations/sqlite/0026_desk_work.sql"),
        postgres: include_str!("../migrations/postgres/0026_desk_work.sql"),
    },
    Migration {
        version: 27,
        name: "digitpos",
        sqlite: include_str!("../migrations/sqlite/0027_digitpos.sql"),
        postgres: include_str!("../migrations/postgres/0027_digitpos.sql"),
    },
    Migration {
        version: 28,
        name: "position_events",
        sqlite: include_str!("../migrations/sqlite/0028_position_events.sql"),
        postgres: include_str!("../migrations/postgres/0028_position_events.sql"),
    },
    Migration {
        version: 29,
        name: "pos",
        sqlite: include_str!("../migrations/sqlite/0029_pos.sql"),
        postgres: include_str!("../migrations/postgres/0029_pos.sql"),
    },
    Migration {
        version: 30,
        name: "notify_settings",
        sqlite: include_str!("../migrations/sqlite/0030_notify_settings.sql"),
        postgres: include_str!("../migrations/postgres/0030_notify_settings.sql"),
    },
    Migration {
        version: 31,
        name: "notifications",
        sqlite: include_str!("../migrations/sqlite/0031_notifications.sql"),
        postgres: include_str!("../migrations/postgres/0031_notifications.sql"),
    },
    Migration {
        version: 32,
        name: "notify_channels",
        sqlite: include_str!("../migrations/sqlite/0032_notify_channels.sql"),
        postgres: include_str!("../migrations/postgres/0032_notify_channels.sql"),
    },
    Migration {
        version: 33,
        name: "notify_requests",
        sqlite: include_str!("../migrations/sqlite/0033_notify_requests.sql"),
        postgres: include_str!("../migrations/postgres/0033_notify_requests.sql"),
    },
    Migration {
        version: 34,
        name: "job_turns",
        sqlite: include_str!("../migrations/sqlite/0034_job_turns.sql"),
        postgres: include_str!("../migrations/postgres/0034_job_turns.sql"),
    },
    Migration {
        version: 35,
        name: "events_numbered_at_commit",
        sqlite: include_str!("../migrations/sqlite/0035_events_numbered_at_commit.sql"),
        postgres: include_str!("../migrations/postgres/0035_events_numbered_at_commit.sql"),
    },
    Migration {
        version: 36,
        name: "receipt_writes",
        sqlite: include_str!("../migrations/sqlite/0036_receipt_writes.sql"),
        postgres: include_str!("../migrations/postgres/0036_receipt_writes.sql"),
    },
    Migration {
        version: 37,
        name: "event_order",
        sqlite: include_str!("../migrations/sqlite/0037_event_order.sql"),
        postgres: include_str!("../migrations/postgres/0037_event_order.sql"),
    },
    Migration {
        version: 38,
        name: "bulk_integrity",
        sqlite: include_str!("../migrations/sqlite/0038_bulk_integrity.sql"),
        postgres: include_str!("../migrations/postgres/0038_bulk_integrity.sql"),
    },
    Migration {
        version: 39,
        name: "range_link_checks",
        sqlite: include_str!("../migrations/sqlite/0039_range_link_checks.sql"),
        postgres: include_str!("../migrations/postgres/0039_range_link_checks.sql"),
    },
    Migration {
        version: 40,
        name: "current_flow_indexes",
        sqlite: include_str!("../migrations/sqlite/0040_current_flow_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0040_current_flow_indexes.sql"),
    },
];

/// Arbitrary constant naming incasso's migration lock on PostgreSQL.
const PG_MIGRATION_LOCK: i64 = 0x1AC4_5500;

pub(crate) async fn run(store: &Store) -> Result<()> {
    let mut tx = store.write_tx().await?;
    if store.dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    // Every migration not recorded, not only those past the highest: work
    // merged from parallel branches adds a lower version after a higher one
    // was applied, and a database must not silently miss it.
    let applied: std::collections::HashSet<i64> =
        sqlx::query_scalar("SELECT CAST(version AS BIGINT) FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let script = match store.dialect {
            Dialect::Sqlite => m.sqlite,
            Dialect::Postgres => m.postgres,
        };
        sqlx::raw_sql(script).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(chrono::Utc::now().timestamp_micros())
        .execute(&mut *tx)
        .await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
    }
    tx.commit().await?;
    Ok(())
}

/// The versions this binary knows that the database has not applied (all
/// of them on a database never migrated): a process started by an older
/// binary's side, or before another's migration finished, is not ready.
pub(crate) async fn pending(store: &Store) -> Result<Vec<i64>> {
    let applied: std::collections::HashSet<i64> =
        match sqlx::query_scalar("SELECT CAST(version AS BIGINT) FROM schema_migrations")
            .fetch_all(&store.pool)
            .await
        {
            Ok(v) => v.into_iter().collect(),
            // No table yet: nothing applied.
            Err(sqlx::Error::Database(_)) => Default::default(),
            Err(e) => return Err(e.into()),
        };
    Ok(MIGRATIONS
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_both_dialects_define_the_same_tables() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration versions must increase");
            last = m.version;
            // Every statement that shapes the schema, by its first words.
            let tables = |s: &str| {
                s.lines()
                    .filter_map(|l| {
                        let l = l.trim();
                        // A column's type or default: SQLite cannot
                        // change one, nor does it shape the tables.
                        if l.contains(" ALTER COLUMN ") {
                            return None;
                        }
                        // A table's storage parameters: SQLite has none.
                        // A constraint: SQLite cannot add or drop one in
                        // place.
                        if l.contains(" SET (") || l.contains(" CONSTRAINT ") {
                            return None;
                        }
                        [
                            "CREATE TABLE ",
                            "ALTER TABLE ",
                            "CREATE INDEX ",
                            "DROP INDEX ",
                        ]
                        .iter()
                        .find_map(|p| l.strip_prefix(p))
                    })
                    .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                tables(m.sqlite),
                tables(m.postgres),
                "migration {}",
                m.version
            );
            // Only a migration that replaces PostgreSQL's functions (which
            // SQLite has none of) may shape no table.
            assert!(
                !tables(m.sqlite).is_empty() || m.postgres.contains("CREATE OR REPLACE FUNCTION"),
                "migration {} changes nothing",
                m.version
            );
        }
    }
}
