//! What the benchmarks write outside incasso's own paths, so that no SQL
//! lives outside the store: the physical baseline they compare with, and
//! the setup of a reconciliation year.

use crate::{Result, Store};
use chrono::{DateTime, Utc};
use incasso_core::codes::NoticeNumber;
use incasso_core::position::DebtPosition;
use std::path::Path;

/// The physical limit of writing positions on SQLite: the same rows into
/// the same tables and indexes (the database at `path` was made by
/// incasso's migrations), by the fastest plain way there is: rusqlite,
/// prepared statements, one transaction, one thread, nothing checked.
/// `position(i)` is built inside the loop, as the measured side builds
/// each position, so both pay for it and memory stays flat. Notice numbers
/// are aux 3 with segregation code 01, as the benchmarks' station.
pub fn raw_positions(
    path: &Path,
    ente: &str,
    n: u64,
    position: impl Fn(u64) -> DebtPosition,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    let now = now.timestamp_micros();
    let tx = conn.transaction()?;
    {
        let mut position_row = tx.prepare(
            "INSERT INTO debt_positions (ente, iupd, debtor_type, debtor_fiscal_code, debtor_name,
                debtor_street, debtor_civic, debtor_postal_code, debtor_city, debtor_province,
                debtor_region, debtor_country, debtor_email, debtor_phone, company_name, office_name,
                validity_date, switch_to_expired, pay_stand_in, status, min_due_date, max_due_date,
                inserted_at, publish_date, payment_date, updated_at, version)
             VALUES (?1, ?2, 'F', ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11, NULL, ?12, NULL, ?13, 0, 1,
                'VALID', ?14, ?14, ?13, ?13, NULL, ?13, 1)",
        )?;
        let mut option_row = tx.prepare(
            "INSERT INTO payment_options (ente, iuv, notice_number, position_id, option_index, amount,
                description, is_partial_payment, due_date, retention_date, fee, notification_fee,
                status, payment_date, reporting_date, metadata)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, 0, ?7, NULL, 0, 0, 'PO_UNPAID', NULL, NULL, '[]')",
        )?;
        let mut transfer_row = tx.prepare(
            "INSERT INTO transfers (ente, iuv, id_transfer, amount, organization_fiscal_code, company_name,
                remittance_information, category, iban, postal_iban, stamp, metadata, quotas, reported)
             VALUES (?1, ?2, 1, ?3, ?1, NULL, ?4, ?5, ?6, NULL, NULL, '[]', ?7, 0)",
        )?;
        for i in 0..n {
            let p = position(i);
            let (o, d) = (&p.options[0], &p.debtor);
            let t = &o.transfers[0];
            let due = o.due_date.timestamp_micros();
            position_row.execute(rusqlite::params![
                ente,
                p.iupd,
                d.fiscal_code,
                d.full_name,
                d.street_name,
                d.civic_number,
                d.postal_code,
                d.city,
                d.province,
                d.country,
                d.email,
                p.company_name,
                now,
                due,
            ])?;
            let id = tx.last_insert_rowid();
            let nav = NoticeNumber::generate(1, i + 1)
                .map_err(|e| crate::StoreError::Config(e.to_string()))?;
            let iuv = &nav.as_str()[1..];
            option_row.execute(rusqlite::params![
                ente,
                iuv,
                nav.as_str(),
                id,
                o.amount.0,
                o.description,
                due
            ])?;
            let quotas = format!(
                "[{{\"year\":2026,\"code\":\"ACC-TARI\",\"amount\":{}}}]",
                t.amount.0
            );
            transfer_row.execute(rusqlite::params![
                ente,
                iuv,
                t.amount.0,
                t.remittance_information,
                t.category,
                t.iban,
                quotas
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A big Comune's year behind `payments` flow lines, written by the
/// database itself (setup, not timed): line `n` pays IUV `n`. As in life, a few
/// lines have no position (one in 9,973: an IUV of another Ente's), a few
/// positions expect another amount (one in 10,007), and one line in a
/// thousand (paid without a receipt) has an unpaid option and no receipt.
/// `lines` is the flows' size, which spreads the amounts.
pub async fn seed_recon_year(
    store: &Store,
    ente: &str,
    iban: &str,
    payments: u64,
    lines: u64,
) -> Result<()> {
    let now = Utc::now().timestamp_micros();
    let amount = format!("1000 + ((n / {lines}) * 7 + (n % {lines}) * 13) % 9000");
    let postgres = store.dialect() == crate::Dialect::Postgres;
    // The same year on both databases; only the row source and the IUV's
    // zero padding are spelled differently.
    let year = if postgres {
        format!(
            "CREATE TEMP TABLE year AS
              SELECT n, '01' || lpad(n::text, 13, '0') || lpad(((3010000000000000 + n) % 93)::text, 2, '0') AS iuv,
                {amount} AS amount, n % 1000 = 999 AS unpaid
              FROM generate_series(0::bigint, {payments} - 1) AS n WHERE n % 9973 <> 1;"
        )
    } else {
        format!(
            "CREATE TEMP TABLE year AS
              WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n + 1 < {payments})
              SELECT n, printf('01%013d%02d', n, (3010000000000000 + n) % 93) AS iuv, {amount} AS amount, n % 1000 = 999 AS unpaid
              FROM c WHERE n % 9973 <> 1;"
        )
    };
    // The values are the benchmark's own constants and numbers, never input.
    let sql = format!(
        "{year}
        INSERT INTO debt_positions (id, ente, iupd, debtor_type, debtor_fiscal_code, debtor_name,
            company_name, switch_to_expired, pay_stand_in, status, min_due_date, max_due_date,
            inserted_at, updated_at, version)
          SELECT n + 1, '{ente}', 'Y-' || n, 'F', 'RSSMRA80A01H501U', 'Mario Rossi',
            'Comune di Borgo Esempio', 0, 0, CASE WHEN unpaid THEN 'VALID' ELSE 'PAID' END,
            {now}, {now}, {now}, {now}, 1 FROM year;
        INSERT INTO payment_options (ente, iuv, notice_number, position_id, option_index, amount,
            description, is_partial_payment, due_date, fee, notification_fee, status, metadata)
          SELECT '{ente}', iuv, '3' || iuv, n + 1, 0, amount, 'TARI 2026', 0, {now}, 0, 0,
            CASE WHEN unpaid THEN 'PO_UNPAID' ELSE 'PO_PAID' END, '[]' FROM year;
        INSERT INTO transfers (ente, iuv, id_transfer, amount, organization_fiscal_code,
            remittance_information, category, iban, metadata, quotas, reported)
          SELECT '{ente}', iuv, 1, CASE WHEN n % 10007 = 5 THEN amount + 100 ELSE amount END,
            '{ente}', 'TARI 2026', '9/0101100IM/', '{iban}', '[]', '[]', 0 FROM year;
        INSERT INTO receipts (ente, receipt_id, notice_number, iuv, owner_ente, position_id,
            outcome, amount, psp_id, psp_name, channel_id, station_id, primitive, stand_in,
            transfers, raw_xml, received_at)
          SELECT '{ente}', 'R-' || n, '3' || iuv, iuv, '{ente}', n + 1, 'OK', amount,
            'PSPEITMM000', 'PSP Esempio', 'PSPEITMM000_01', '15376371009_01', 'paSendRTV2', 0,
            '[]', '', {now} FROM year WHERE NOT unpaid;
        DROP TABLE year;"
    );
    if postgres {
        // The ids were given, so the identity moves past them; the planner
        // gets the statistics autovacuum would gather soon after such a load.
        let mut tx = store.writer.begin().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(
            "SELECT setval(pg_get_serial_sequence('debt_positions', 'id'), max(id)) FROM debt_positions",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        sqlx::raw_sql("ANALYZE debt_positions, payment_options, transfers, receipts")
            .execute(&store.writer)
            .await?;
        return Ok(());
    }
    let path = store.sqlite_file.clone().ok_or_else(|| {
        crate::StoreError::Config("the recon benchmark needs a database file".into())
    })?;
    tokio::task::spawn_blocking(move || -> Result<()> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA cache_size = -65536;")?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(&sql)?;
        tx.commit()?;
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    })
    .await
    .map_err(|e| crate::StoreError::Config(e.to_string()))?
}

/// How far the notification outbox has drained: rows by channel and
/// status, and the e-mail outbox's `notify` messages by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyCounts {
    /// `(channel, status, rows)`.
    pub notifications: Vec<(String, String, i64)>,
    /// `(status, messages)` of `mail_outbox` rows of kind `notify`.
    pub mail: Vec<(String, i64)>,
}

impl NotifyCounts {
    pub fn of(&self, channel: &str, status: &str) -> i64 {
        self.notifications
            .iter()
            .filter(|(c, s, _)| c == channel && s == status)
            .map(|(_, _, n)| n)
            .sum()
    }

    pub fn mail_of(&self, status: &str) -> i64 {
        self.mail
            .iter()
            .filter(|(s, _)| s == status)
            .map(|(_, n)| n)
            .sum()
    }

    /// Rows not yet at rest (PENDING or SENDING), either outbox.
    pub fn unsettled(&self) -> i64 {
        self.notifications
            .iter()
            .filter(|(_, s, _)| s == crate::notify::PENDING || s == crate::notify::SENDING)
            .map(|(_, _, n)| n)
            .sum::<i64>()
            + self.mail_of(crate::mail::PENDING)
            + self.mail_of(crate::mail::SENDING)
    }
}

impl Store {
    /// The outboxes' rows by status (benchmarks and fault tests watch a
    /// burst drain with it).
    pub async fn outbox_progress(&self) -> Result<NotifyCounts> {
        let rows = sqlx::query(
            "SELECT channel, status, CAST(COUNT(*) AS BIGINT) AS n FROM notifications
             GROUP BY channel, status",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = NotifyCounts::default();
        for r in rows {
            out.notifications.push((
                sqlx::Row::try_get(&r, "channel")?,
                sqlx::Row::try_get(&r, "status")?,
                sqlx::Row::try_get(&r, "n")?,
            ));
        }
        let rows = sqlx::query(
            "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM mail_outbox
             WHERE kind = 'notify' GROUP BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            out.mail.push((
                sqlx::Row::try_get(&r, "status")?,
                sqlx::Row::try_get(&r, "n")?,
            ));
        }
        Ok(out)
    }

    /// Whether a notification or a notice e-mail still waits or is being
    /// sent: one look at the start of each status' index, where
    /// [`Store::outbox_progress`] counts every row (34 ms at 100,000 rows
    /// on PostgreSQL, taken from the workers under test ten times a second).
    pub async fn outbox_busy(&self) -> Result<bool> {
        let busy: i64 = sqlx::query_scalar(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM notifications
                                      WHERE status IN ('PENDING', 'SENDING'))
                          OR EXISTS (SELECT 1 FROM mail_outbox WHERE kind = 'notify'
                                      AND status IN ('PENDING', 'SENDING'))
                     THEN 1 ELSE 0 END",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(busy != 0)
    }
}
