//! GPD's reported states, applied when what proves them arrives.
//!
//! A transfer is reported when a current reporting flow lists it as paid
//! (outcomes 0, 4, 8, 9: paid, in stand-in or not, with a receipt or not)
//! and its option is paid. Either may come first: the flow usually arrives
//! the day after the receipt, but an option paid by the flow itself
//! (outcome 8 or 9), or a receipt late after its flow, is paid after the
//! flow is stored. So both events report, each for what it brings: a
//! flow's intake for the flow's lines, a payment for its IUV. The work is
//! proportional to what arrived, never to the year's flows: an hourly
//! fetch of a few flows costs a few flows' lines, whatever the Ente holds.
//!
//! An option is PO_REPORTED when all its transfers are, PO_PARTIALLY_REPORTED
//! when some are (keeping the day it was first reported); a PAID position
//! whose paid options are all reported is REPORTED.

use crate::Result;
use crate::time::to_micros;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

/// What arrived.
pub(crate) enum Arrived<'a> {
    /// A stored flow, by id and version (its `flow_date_time`).
    Flow(&'a str, i64),
    /// A payment of the option with this IUV.
    Payment(&'a str),
}

/// Finds the transfers that `arrived` lets be reported; call [`apply`]
/// after the last of a transaction's arrivals. Answers how many were
/// found.
pub(crate) async fn collect(
    conn: &mut AnyConnection,
    ente: &str,
    arrived: Arrived<'_>,
) -> Result<u64> {
    const FROM: &str = "INSERT INTO reporting_work (ente, iuv, id_transfer, position_id)
         SELECT p.ente, t.iuv, t.id_transfer, o.position_id
         FROM flow_payments p
         JOIN reporting_flows f ON f.ente = p.ente AND f.flow_id = p.flow_id
             AND f.flow_date_time = p.flow_date_time AND f.current = 1
         JOIN transfers t ON t.ente = p.ente AND t.iuv = p.iuv
             AND t.id_transfer = p.transfer_index AND t.reported = 0
         JOIN payment_options o ON o.ente = t.ente AND o.iuv = t.iuv
             AND o.status IN ('PO_PAID', 'PO_PARTIALLY_REPORTED')
         WHERE p.ente = $1 AND p.outcome IN (0, 4, 8, 9) AND ";
    // A flow may list a transfer twice (a repeated line): the first wins.
    const END: &str = " ON CONFLICT (ente, iuv, id_transfer) DO NOTHING";
    let done = match arrived {
        Arrived::Flow(flow_id, version) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{FROM} p.flow_id = $2 AND p.flow_date_time = $3{END}"
            )))
            .bind(ente)
            .bind(flow_id)
            .bind(version)
            .execute(&mut *conn)
            .await?
        }
        Arrived::Payment(iuv) => {
            sqlx::query(sqlx::AssertSqlSafe(format!("{FROM} p.iuv = $2{END}")))
                .bind(ente)
                .bind(iuv)
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(done.rows_affected())
}

/// Moves what [`collect`] found to the reported states and empties the
/// work table. Answers how many positions became REPORTED.
pub(crate) async fn apply(conn: &mut AnyConnection, ente: &str, now: DateTime<Utc>) -> Result<u64> {
    let now = to_micros(now);
    // Each statement is driven by the work rows through the tables' keys
    // (IN over the work table), so a batch costs its own rows.
    sqlx::query(
        "UPDATE transfers SET reported = 1
         WHERE ente = $1 AND (iuv, id_transfer) IN
             (SELECT iuv, id_transfer FROM reporting_work WHERE ente = $1)",
    )
    .bind(ente)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE payment_options
         SET status = CASE WHEN NOT EXISTS (SELECT 1 FROM transfers t
                 WHERE t.ente = payment_options.ente AND t.iuv = payment_options.iuv
                   AND t.reported = 0)
             THEN 'PO_REPORTED' ELSE 'PO_PARTIALLY_REPORTED' END,
             reporting_date = COALESCE(reporting_date, $2)
         WHERE ente = $1 AND iuv IN (SELECT iuv FROM reporting_work WHERE ente = $1)
           AND status IN ('PO_PAID', 'PO_PARTIALLY_REPORTED')",
    )
    .bind(ente)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let moved = sqlx::query(
        "UPDATE debt_positions SET status = 'REPORTED', updated_at = $2, version = version + 1
         WHERE id IN (SELECT position_id FROM reporting_work WHERE ente = $1)
           AND status = 'PAID'
           AND NOT EXISTS (SELECT 1 FROM payment_options o
               WHERE o.position_id = debt_positions.id
                 AND o.status IN ('PO_PAID', 'PO_PARTIALLY_REPORTED'))",
    )
    .bind(ente)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM reporting_work WHERE ente = $1")
        .bind(ente)
        .execute(&mut *conn)
        .await?;
    Ok(moved)
}

/// [`collect`] and, if it found anything, [`apply`]: one arrival.
pub(crate) async fn report(
    conn: &mut AnyConnection,
    ente: &str,
    arrived: Arrived<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    if collect(conn, ente, arrived).await? == 0 {
        return Ok(false);
    }
    apply(conn, ente, now).await?;
    Ok(true)
}
