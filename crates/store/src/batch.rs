//! Statements as data, and the multi-row inserts of bulk loads.
//!
//! A supply's writes are built as [`Stmt`] values (SQL and arguments) by
//! the loader, then run by its writer on whichever connection holds the
//! supply's transaction: the `Any` pool's on PostgreSQL, a connection of
//! its own on its own thread on SQLite (see `sqlite_thread`). Through
//! `Any`, every text argument was copied twice more on its way to SQLite,
//! on the writer's side of the pipeline: a tenth of a supply's CPU, during
//! which SQLite waited (perf, `incasso bench load`).
//!
//! The inserts put hundreds of positions in one statement per table, where
//! the one-by-one path issues three per position. Same columns and rules as
//! the single insert; used only inside a supply's transaction, after every
//! check has passed (a failing statement would abort a PostgreSQL
//! transaction).

use crate::positions::{QuotaJson, metadata_json};
use crate::time::{opt_to_micros, to_micros};
use crate::{Dialect, Result};
use chrono::{DateTime, Utc};
use incasso_core::position::DebtPosition;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// An argument of a [`Stmt`].
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I(i64),
    OI(Option<i64>),
    S(String),
    OS(Option<String>),
    OB(Option<Vec<u8>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OI(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::S(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::S(v.to_string())
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OS(v)
    }
}
impl From<Option<Vec<u8>>> for Arg {
    fn from(v: Option<Vec<u8>>) -> Self {
        Arg::OB(v)
    }
}

/// `stmt` as a query of whichever driver the caller's type names: the
/// arguments bind the same way to each.
macro_rules! bound {
    ($stmt:expr) => {{
        let stmt = $stmt;
        let mut q = sqlx::query(sqlx::AssertSqlSafe(stmt.sql));
        for a in stmt.args {
            q = match a {
                Arg::I(x) => q.bind(x),
                Arg::OI(x) => q.bind(x),
                Arg::S(x) => q.bind(x),
                Arg::OS(x) => q.bind(x),
                Arg::OB(x) => q.bind(x),
            };
        }
        q
    }};
}

/// A statement with its arguments, not yet bound to a driver.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    sql: String,
    args: Vec<Arg>,
}

impl Stmt {
    pub(crate) fn new(sql: impl Into<String>) -> Stmt {
        Stmt {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    pub(crate) fn bind(mut self, arg: impl Into<Arg>) -> Stmt {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn into_any(
        self,
    ) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        bound!(self)
    }

    /// The same statement for a PostgreSQL connection of its own (a
    /// supply's, see `supply_writer`).
    pub(crate) fn into_pg(
        self,
    ) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
        bound!(self)
    }

    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    pub(crate) fn into_args(self) -> Vec<Arg> {
        self.args
    }

    /// PostgreSQL: `writes` as one statement, one data-modifying `WITH`
    /// clause each, in one round trip. They run on one snapshot and do not
    /// see one another's rows, so they must write different rows (a
    /// receipt's position, its option, the receipt, its events). One that
    /// fails fails them all, as in a transaction.
    ///
    /// Each statement numbers its placeholders from `$1` to its argument
    /// count; they are renumbered after the arguments before them.
    pub(crate) fn together(writes: Vec<Stmt>) -> Stmt {
        let mut sql = String::from("WITH ");
        let mut args = Vec::new();
        for (i, w) in writes.into_iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("w{i} AS ("));
            sql.push_str(&shift_placeholders(&w.sql, args.len()));
            sql.push(')');
            args.extend(w.args);
        }
        sql.push_str(" SELECT 1");
        Stmt { sql, args }
    }
}

/// `sql` with every `$n` outside quotes as `$(n + by)`.
fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c != '$' || quoted || !chars.peek().is_some_and(char::is_ascii_digit) {
            out.push(c);
            continue;
        }
        let mut n = 0usize;
        while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
            n = n * 10 + d as usize;
            chars.next();
        }
        out.push_str(&format!("${}", n + by));
    }
    out
}

/// A value of a row to insert.
#[derive(PartialEq, Clone)]
enum V {
    I(i64),
    OI(Option<i64>),
    S(String),
    OS(Option<String>),
    /// The id of the Ente's position with this key, looked up by the
    /// statement itself: the rows of one chunk's three statements are all
    /// built before any runs, so no id needs to come back first.
    PositionOf(String),
}

/// Parameters per statement (counted as if none were shared): more rows per
/// statement save round trips, but 30,000 made a supply slower than 4,000,
/// and 1,000 no faster (`incasso bench load`).
const PARAMS_PER_STATEMENT: usize = 4_000;

fn placeholder(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::Sqlite => "?".into(),
        Dialect::Postgres => format!("${n}"),
    }
}

pub(crate) fn push_placeholder(sql: &mut String, dialect: Dialect, n: &mut usize) {
    *n += 1;
    match dialect {
        Dialect::Sqlite => sql.push('?'),
        Dialect::Postgres => {
            use std::fmt::Write as _;
            let _ = write!(sql, "${n}");
        }
    }
}

/// Appends `rows` parenthesized groups of `columns` placeholders (a
/// multi-row `VALUES`), numbered on from `n`.
pub(crate) fn push_rows(
    sql: &mut String,
    dialect: Dialect,
    rows: usize,
    columns: usize,
    n: &mut usize,
) {
    for r in 0..rows {
        sql.push_str(if r > 0 { ",(" } else { "(" });
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            push_placeholder(sql, dialect, n);
        }
        sql.push(')');
    }
}

/// Multi-row INSERT statements for `rows`, as many rows to a statement as
/// the parameter budget allows.
///
/// On SQLite a column whose value is the same in every row of a statement
/// is bound once, in a one-row subquery joined to the rows' VALUES. A
/// supply's rows share most of their values (the Ente, the service's
/// accounting, the due date, the state, the load's time): bound per row,
/// each text was allocated and copied again by the driver and by SQLite.
/// Numbered placeholders would say the same more simply, but sqlx looks
/// each one up by name, a linear search per parameter that made a supply
/// twice as slow (`incasso bench load`).
fn insert_statements(dialect: Dialect, ente: &str, head: &str, rows: Vec<Vec<V>>) -> Vec<Stmt> {
    let params_per_row = rows.first().map_or(1, |r| {
        r.iter()
            .map(|v| if let V::PositionOf(_) = v { 2 } else { 1 })
            .sum::<usize>()
    });
    let per_statement = (PARAMS_PER_STATEMENT / params_per_row.max(1)).max(1);
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<Vec<V>> = rows.by_ref().take(per_statement).collect();
        let columns = batch[0].len();
        let mut constant: Vec<bool> = (0..columns)
            .map(|c| {
                dialect == Dialect::Sqlite
                    && batch.len() > 1
                    && batch.iter().all(|r| r[c] == batch[0][c])
            })
            .collect();
        if constant.iter().all(|c| *c) {
            constant.iter_mut().for_each(|c| *c = false);
        }
        out.push(if constant.iter().any(|c| *c) {
            shared_insert(ente, head, batch, &constant)
        } else {
            plain_insert(dialect, ente, head, batch, params_per_row)
        });
    }
    out
}

fn plain_insert(
    dialect: Dialect,
    ente: &str,
    head: &str,
    batch: Vec<Vec<V>>,
    params_per_row: usize,
) -> Stmt {
    let mut sql = String::with_capacity(head.len() + batch.len() * params_per_row * 3);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for (r, row) in batch.iter().enumerate() {
        sql.push_str(if r > 0 { ",(" } else { "(" });
        for (c, v) in row.iter().enumerate() {
            if c > 0 {
                sql.push(',');
            }
            if let V::PositionOf(_) = v {
                let ente = placeholder(dialect, n + 1);
                let iupd = placeholder(dialect, n + 2);
                n += 2;
                sql.push_str(&position_lookup(&ente, &iupd));
            } else {
                push_placeholder(&mut sql, dialect, &mut n);
            }
        }
        sql.push(')');
    }
    let mut stmt = Stmt::new(sql);
    stmt.args.reserve(batch.len() * params_per_row);
    for row in batch {
        for v in row {
            push_value(&mut stmt, ente, v);
        }
    }
    stmt
}

fn push_value(stmt: &mut Stmt, ente: &str, v: V) {
    let arg = match v {
        V::I(x) => Arg::I(x),
        V::OI(x) => Arg::OI(x),
        V::S(x) => Arg::S(x),
        V::OS(x) => Arg::OS(x),
        V::PositionOf(iupd) => {
            stmt.args.push(Arg::S(ente.to_string()));
            Arg::S(iupd)
        }
    };
    stmt.args.push(arg);
}

/// SQLite: `INSERT ... SELECT` from the shared values (`k`, bound once)
/// and the rows' own (`v`, in file order).
/// The id of the position of key `iupd` of Ente `ente` (SQL expressions).
fn position_lookup(ente: &str, iupd: &str) -> String {
    format!("(SELECT id FROM debt_positions WHERE ente = {ente} AND iupd = {iupd})")
}

fn shared_insert(ente: &str, head: &str, batch: Vec<Vec<V>>, constant: &[bool]) -> Stmt {
    use std::fmt::Write as _;
    let mut select = String::from(" SELECT ");
    let mut shared = String::from(" FROM (SELECT ");
    let mut values = String::from(", (VALUES ");
    let mut stmt = Stmt::new(String::new());
    let mut own = 0;
    for (c, v) in batch[0].iter().enumerate() {
        if c > 0 {
            select.push(',');
        }
        if constant[c] {
            if c > 0 && constant[..c].iter().any(|k| *k) {
                shared.push(',');
            }
            if let V::PositionOf(_) = v {
                let _ = write!(shared, "? AS e{c}, ? AS k{c}");
                select.push_str(&position_lookup(&format!("k.e{c}"), &format!("k.k{c}")));
            } else {
                let _ = write!(shared, "? AS k{c}");
                let _ = write!(select, "k.k{c}");
            }
        } else {
            own += 1;
            if let V::PositionOf(_) = v {
                select.push_str(&position_lookup(
                    &format!("v.column{own}"),
                    &format!("v.column{}", own + 1),
                ));
                own += 1;
            } else {
                let _ = write!(select, "v.column{own}");
            }
        }
    }
    shared.push_str(") AS k");
    for (c, v) in batch[0].iter().enumerate() {
        if constant[c] {
            push_value(&mut stmt, ente, v.clone());
        }
    }
    for (r, row) in batch.into_iter().enumerate() {
        values.push_str(if r > 0 { ",(" } else { "(" });
        let mut first = true;
        for (c, v) in row.into_iter().enumerate() {
            if constant[c] {
                continue;
            }
            let count = if let V::PositionOf(_) = v { 2 } else { 1 };
            for _ in 0..count {
                if !first {
                    values.push(',');
                }
                values.push('?');
                first = false;
            }
            push_value(&mut stmt, ente, v);
        }
        values.push(')');
    }
    values.push_str(") AS v");
    stmt.sql = format!("{head}{select}{shared}{values}");
    stmt
}

/// The columns of the three tables a new position goes into, in the order
/// of [`position_rows`]' values.
const POSITION_COLUMNS: &[&str] = &[
    "ente",
    "iupd",
    "debtor_type",
    "debtor_fiscal_code",
    "debtor_name",
    "debtor_street",
    "debtor_civic",
    "debtor_postal_code",
    "debtor_city",
    "debtor_province",
    "debtor_region",
    "debtor_country",
    "debtor_email",
    "debtor_phone",
    "company_name",
    "office_name",
    "validity_date",
    "switch_to_expired",
    "pay_stand_in",
    "status",
    "min_due_date",
    "max_due_date",
    "inserted_at",
    "publish_date",
    "payment_date",
    "updated_at",
    "version",
    "origin",
    "supply_id",
    "service_code",
    "office_code",
];
const OPTION_COLUMNS: &[&str] = &[
    "ente",
    "iuv",
    "notice_number",
    "position_id",
    "option_index",
    "amount",
    "description",
    "is_partial_payment",
    "due_date",
    "retention_date",
    "fee",
    "notification_fee",
    "status",
    "payment_date",
    "reporting_date",
    "metadata",
];
const TRANSFER_COLUMNS: &[&str] = &[
    "ente",
    "iuv",
    "id_transfer",
    "amount",
    "organization_fiscal_code",
    "company_name",
    "remittance_information",
    "category",
    "iban",
    "postal_iban",
    "stamp",
    "metadata",
    "quotas",
    "reported",
];

/// New positions as the rows of their three tables.
struct PositionRows {
    positions: Vec<Vec<V>>,
    /// Each names its position by key ([`V::PositionOf`]).
    options: Vec<Vec<V>>,
    transfers: Vec<Vec<V>>,
}

/// The statements inserting already validated positions, their options and
/// transfers: three per few hundred positions. Notice numbers must be
/// assigned. Pure: built by the loader while the writer runs the previous
/// chunk's.
pub(crate) fn insert_positions(
    dialect: Dialect,
    ente: &str,
    positions: Vec<DebtPosition>,
    placements: Vec<crate::Placement>,
    now: DateTime<Utc>,
    origin: &str,
    supply_id: i64,
) -> Vec<Stmt> {
    let rows = position_rows(ente, positions, placements, now, origin, supply_id);
    let head =
        |table: &str, columns: &[&str]| format!("INSERT INTO {table} ({})", columns.join(", "));
    let mut out = insert_statements(
        dialect,
        ente,
        &head("debt_positions", POSITION_COLUMNS),
        rows.positions,
    );
    out.extend(insert_statements(
        dialect,
        ente,
        &head("payment_options", OPTION_COLUMNS),
        rows.options,
    ));
    out.extend(insert_statements(
        dialect,
        ente,
        &head("transfers", TRANSFER_COLUMNS),
        rows.transfers,
    ));
    out
}

fn position_rows(
    ente: &str,
    positions: Vec<DebtPosition>,
    placements: Vec<crate::Placement>,
    now: DateTime<Utc>,
    origin: &str,
    supply_id: i64,
) -> PositionRows {
    debug_assert_eq!(positions.len(), placements.len());
    // The positions are consumed: their strings move into the statements'
    // arguments instead of being copied.
    let mut rows = Vec::with_capacity(positions.len());
    let mut options = Vec::new();
    let mut transfers = Vec::new();
    for (p, place) in positions.into_iter().zip(placements) {
        let d = p.debtor;
        let min_due = p.options.iter().map(|o| o.due_date).min().unwrap_or(now);
        let max_due = p.options.iter().map(|o| o.due_date).max().unwrap_or(now);
        let iupd = p.iupd;
        for (index, o) in p.options.into_iter().enumerate() {
            let iuv = o.iuv.unwrap_or_default();
            for t in o.transfers {
                let quotas: Vec<QuotaJson> = t
                    .quotas
                    .iter()
                    .map(|q| QuotaJson {
                        year: q.accertamento.year,
                        code: q.accertamento.code.clone(),
                        amount: q.amount.0,
                    })
                    .collect();
                transfers.push(vec![
                    V::S(ente.into()),
                    V::S(iuv.clone()),
                    V::I(i64::from(t.id_transfer)),
                    V::I(t.amount.0),
                    V::S(t.organization_fiscal_code),
                    V::OS(t.company_name),
                    V::S(t.remittance_information),
                    V::S(t.category),
                    V::OS(t.iban),
                    V::OS(t.postal_iban),
                    V::OS(
                        t.stamp
                            .as_ref()
                            .map(|s| serde_json::to_string(s).unwrap_or_default()),
                    ),
                    V::S(metadata_json(&t.metadata)),
                    V::S(serde_json::to_string(&quotas).unwrap_or_else(|_| "[]".into())),
                    V::I(i64::from(t.reported)),
                ]);
            }
            options.push(vec![
                V::S(ente.into()),
                V::S(iuv),
                V::S(
                    o.notice_number
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default(),
                ),
                V::PositionOf(iupd.clone()),
                V::I(index as i64),
                V::I(o.amount.0),
                V::S(o.description),
                V::I(i64::from(o.is_partial_payment)),
                V::I(to_micros(o.due_date)),
                V::OI(opt_to_micros(o.retention_date)),
                V::I(o.fee.0),
                V::I(o.notification_fee.0),
                V::S(o.status.as_str().into()),
                V::OI(opt_to_micros(o.payment_date)),
                V::OI(opt_to_micros(o.reporting_date)),
                V::S(metadata_json(&o.metadata)),
            ]);
        }
        rows.push(vec![
            V::S(ente.into()),
            V::S(iupd),
            V::S(d.kind.as_str().into()),
            V::S(d.fiscal_code),
            V::S(d.full_name),
            V::OS(d.street_name),
            V::OS(d.civic_number),
            V::OS(d.postal_code),
            V::OS(d.city),
            V::OS(d.province),
            V::OS(d.region),
            V::OS(d.country),
            V::OS(d.email),
            V::OS(d.phone),
            V::S(p.company_name),
            V::OS(p.office_name),
            V::OI(opt_to_micros(p.validity_date)),
            V::I(i64::from(p.switch_to_expired)),
            V::I(i64::from(p.pay_stand_in)),
            V::S(p.status.as_str().into()),
            V::I(to_micros(min_due)),
            V::I(to_micros(max_due)),
            V::I(to_micros(p.inserted_date.unwrap_or(now))),
            V::OI(opt_to_micros(p.publish_date)),
            V::OI(opt_to_micros(p.payment_date)),
            V::I(to_micros(p.last_updated_date.unwrap_or(now))),
            V::I(1),
            V::S(origin.into()),
            V::I(supply_id),
            V::OS(place.service),
            V::OS(place.office),
        ]);
    }
    PositionRows {
        positions: rows,
        options,
        transfers,
    }
}

/// PostgreSQL: new positions as the text of three `COPY ... FROM STDIN`,
/// built by the loader. Only the positions' ids are left out: the writer
/// takes them from the table's sequence, then puts each in front of its
/// position's line and of its options' lines.
pub(crate) struct CopyRows {
    /// A line per position, without its id.
    positions: Vec<String>,
    /// A line per option, without its position's id, and the index of its
    /// position in `positions`.
    options: Vec<(usize, String)>,
    /// The transfers' lines, whole.
    transfers: String,
}

impl CopyRows {
    pub(crate) fn new(
        ente: &str,
        positions: Vec<DebtPosition>,
        placements: Vec<crate::Placement>,
        now: DateTime<Utc>,
        origin: &str,
        supply_id: i64,
    ) -> CopyRows {
        let rows = position_rows(ente, positions, placements, now, origin, supply_id);
        let mut index = HashMap::with_capacity(rows.positions.len());
        let mut positions = Vec::with_capacity(rows.positions.len());
        for (k, row) in rows.positions.into_iter().enumerate() {
            if let Some(V::S(iupd)) = row.get(1) {
                index.insert(iupd.clone(), k);
            }
            positions.push(copy_line(row));
        }
        let options = rows
            .options
            .into_iter()
            .map(|mut row| {
                let of = match row.remove(OPTION_POSITION) {
                    V::PositionOf(iupd) => index.get(&iupd).copied().unwrap_or(usize::MAX),
                    _ => usize::MAX,
                };
                (of, copy_line(row))
            })
            .collect();
        let transfers = rows.transfers.into_iter().map(copy_line).collect();
        CopyRows {
            positions,
            options,
            transfers,
        }
    }

    /// How many positions.
    pub(crate) fn len(&self) -> usize {
        self.positions.len()
    }

    /// Appends `other`'s rows, to be written after these.
    pub(crate) fn absorb(&mut self, other: CopyRows) {
        let offset = self.positions.len();
        self.positions.extend(other.positions);
        // An option whose position is unknown (`usize::MAX`) stays so, and
        // is refused when written.
        self.options.extend(
            other
                .options
                .into_iter()
                .map(|(of, line)| (of.saturating_add(offset), line)),
        );
        self.transfers.push_str(&other.transfers);
    }

    /// Writes the rows, in the transaction open on `conn`.
    pub(crate) async fn write(self, conn: &mut sqlx::PgConnection) -> Result<()> {
        use std::fmt::Write as _;
        if self.positions.is_empty() {
            return Ok(());
        }
        // The sequence by name, resolved once when the statement is parsed:
        // `pg_get_serial_sequence` in the call looked it up again for every
        // id, 2.5 µs each against 0.25 (3 s of a 1,000,000-row supply).
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval('debt_positions_id_seq') FROM generate_series(1, $1)",
        )
        .bind(self.positions.len() as i64)
        .fetch_all(&mut *conn)
        .await?;
        if ids.len() != self.positions.len() {
            return Err(crate::StoreError::Corrupt("position ids".into()));
        }
        let mut text = String::with_capacity(self.positions.iter().map(|l| l.len() + 12).sum());
        for (id, line) in ids.iter().zip(&self.positions) {
            let _ = write!(text, "{id}\t");
            text.push_str(line);
        }
        copy_in(conn, "debt_positions", &[&["id"], POSITION_COLUMNS], text).await?;
        let mut text = String::with_capacity(self.options.iter().map(|l| l.1.len() + 12).sum());
        for (of, line) in &self.options {
            let id = ids
                .get(*of)
                .ok_or_else(|| crate::StoreError::Corrupt("option without position".into()))?;
            let _ = write!(text, "{id}\t");
            text.push_str(line);
        }
        let (before, after) = OPTION_COLUMNS.split_at(OPTION_POSITION);
        copy_in(
            conn,
            "payment_options",
            &[&["position_id"], before, &after[1..]],
            text,
        )
        .await?;
        copy_in(conn, "transfers", &[TRANSFER_COLUMNS], self.transfers).await
    }
}

/// Where the position's id is among [`OPTION_COLUMNS`].
const OPTION_POSITION: usize = 3;

/// The size of the `CopyData` messages a supply sends.
const COPY_MESSAGE: usize = 64 * 1024;

/// Sends `text` to `COPY table (columns) FROM STDIN`, the columns being
/// the concatenation of `columns`.
async fn copy_in(
    conn: &mut sqlx::PgConnection,
    table: &str,
    columns: &[&[&str]],
    text: String,
) -> Result<()> {
    if text.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = columns.iter().flat_map(|c| c.iter().copied()).collect();
    let statement = format!("COPY {table} ({}) FROM STDIN", names.join(", "));
    let mut copy = conn.copy_in_raw(&statement).await?;
    // In messages of 64 KiB: the backend reads a whole message before it
    // parses a row of it, so one message of a megabyte left it waiting for
    // the last byte, then left incasso waiting for its rows. Smaller ones
    // overlap sending and inserting: a supply's transfers took 4.3 s
    // instead of 7.9 (`bench load --database-url`).
    for message in text.as_bytes().chunks(COPY_MESSAGE) {
        copy.send(message).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// One row in `COPY`'s text format, with its newline.
fn copy_line(row: Vec<V>) -> String {
    use std::fmt::Write as _;
    let mut line = String::with_capacity(row.len() * 12);
    for (c, v) in row.into_iter().enumerate() {
        if c > 0 {
            line.push('\t');
        }
        match v {
            V::I(x) | V::OI(Some(x)) => {
                let _ = write!(line, "{x}");
            }
            V::S(x) | V::OS(Some(x)) | V::PositionOf(x) => copy_escape(&mut line, &x),
            V::OI(None) | V::OS(None) => line.push_str("\\N"),
        }
    }
    line.push('\n');
    line
}

/// A text value as `COPY` reads it: backslash, tab and line ends escaped.
fn copy_escape(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// `ente = <p1> AND <column> IN (<p2>, ...)` in the dialect's placeholders.
fn in_list(dialect: Dialect, column: &str, n: usize) -> String {
    let list = (0..n)
        .map(|i| placeholder(dialect, i + 2))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "ente = {} AND {column} IN ({list})",
        placeholder(dialect, 1)
    )
}

/// The SQL of a look-up of many keys of one Ente: `SELECT {columns} FROM
/// {table} t {join} WHERE ente = $1 AND {key} IN ($2, ...) {order}`.
///
/// On PostgreSQL each key is looked up on its own, through the table's
/// unique `(ente, key)` index: `k` is the list of keys, and `t` the row of
/// one key, in a `LATERAL` subquery whose `LIMIT` keeps the planner from
/// turning it into a join. Written as one `IN` list, the planner took the
/// rows of the Ente from any index starting with `ente`, then filtered them
/// by key: statistics cannot count a supply's uncommitted rows, so they said
/// that the Ente had a few hundred positions while the supply had already
/// written half a million. Each look-up of 500 keys then read them all:
/// 29 ms on average, three quarters of a first supply's time (`bench load
/// --database-url`). With one unique key per probe the estimate is one row,
/// whatever the statistics say.
fn lookup_sql(
    dialect: Dialect,
    columns: &str,
    table: &str,
    key: &str,
    keys: usize,
    join: &str,
    order: &str,
) -> String {
    match dialect {
        Dialect::Sqlite => format!(
            "SELECT {columns} FROM {table} t {join} WHERE t.{} {order}",
            in_list(dialect, key, keys)
        ),
        Dialect::Postgres => format!(
            "SELECT {columns} FROM json_array_elements_text($2::json) AS k(key)
             CROSS JOIN LATERAL (SELECT * FROM {table}
                WHERE ente = $1 AND {key} = k.key LIMIT 1) AS t {join} {order}"
        ),
    }
}

/// A look-up of [`lookup_sql`] with its arguments: the Ente, then the keys
/// (on PostgreSQL, one JSON array of them).
///
/// On PostgreSQL it is planned anew at each call, with its arguments (an
/// unnamed statement). Prepared once, PostgreSQL went over to its generic
/// plan in the middle of a first supply, when the table's size changed under
/// it, and that plan read the Ente's rows through `debt_positions_updated`
/// for each key: 2.4 s per look-up of 500 keys instead of about 1.5 ms, and
/// 10,700,000,000 index entries read before the run was stopped (`bench load
/// --database-url`). Planned with its arguments, each look-up probes the
/// unique index. The keys come as one JSON array rather than 500
/// placeholders in a `VALUES` list, which took 1.8 ms to plan each time
/// against 0.16 ms.
fn lookup<'q>(
    dialect: Dialect,
    sql: String,
    ente: &str,
    keys: &[String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let q = sqlx::query(sqlx::AssertSqlSafe(sql));
    match dialect {
        Dialect::Postgres => q
            .persistent(false)
            .bind(ente.to_owned())
            .bind(serde_json::Value::from(keys.to_vec()).to_string()),
        Dialect::Sqlite => {
            let mut q = q.bind(ente.to_owned());
            for k in keys {
                q = q.bind(k.clone());
            }
            q
        }
    }
}

/// The stored state of those keys (iupd -> status) that exist.
pub(crate) async fn statuses(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ente: &str,
    iupds: &[String],
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in iupds.chunks(PARAMS_PER_STATEMENT) {
        let sql = lookup_sql(
            dialect,
            "t.iupd, t.status",
            "debt_positions",
            "iupd",
            chunk.len(),
            "",
            "",
        );
        for r in lookup(dialect, sql, ente, chunk)
            .fetch_all(&mut *conn)
            .await?
        {
            out.insert(r.try_get("iupd")?, r.try_get("status")?);
        }
    }
    Ok(out)
}

/// The (notice number, IUV) of each option of those keys, in option order.
pub(crate) async fn notice_numbers(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ente: &str,
    iupds: &[String],
) -> Result<HashMap<String, Vec<(String, String)>>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for chunk in iupds.chunks(PARAMS_PER_STATEMENT) {
        let sql = lookup_sql(
            dialect,
            "t.iupd, o.notice_number, o.iuv",
            "debt_positions",
            "iupd",
            chunk.len(),
            "JOIN payment_options o ON o.position_id = t.id",
            "ORDER BY t.iupd, o.option_index",
        );
        for r in lookup(dialect, sql, ente, chunk)
            .fetch_all(&mut *conn)
            .await?
        {
            out.entry(r.try_get("iupd")?)
                .or_default()
                .push((r.try_get("notice_number")?, r.try_get("iuv")?));
        }
    }
    Ok(out)
}

/// The Ente's IUVs from `low` to `high` (same-length digit strings).
pub(crate) async fn taken_between(
    conn: &mut AnyConnection,
    ente: &str,
    low: &str,
    high: &str,
) -> Result<Vec<String>> {
    let rows =
        sqlx::query("SELECT iuv FROM payment_options WHERE ente = $1 AND iuv >= $2 AND iuv <= $3")
            .bind(ente)
            .bind(low)
            .bind(high)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("iuv")?))
        .collect()
}

/// Which of these IUVs the Ente already uses.
pub(crate) async fn taken(
    conn: &mut AnyConnection,
    dialect: Dialect,
    ente: &str,
    iuvs: &[String],
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in iuvs.chunks(PARAMS_PER_STATEMENT) {
        let sql = lookup_sql(
            dialect,
            "t.iuv",
            "payment_options",
            "iuv",
            chunk.len(),
            "",
            "",
        );
        for r in lookup(dialect, sql, ente, chunk)
            .fetch_all(&mut *conn)
            .await?
        {
            out.push(r.try_get("iuv")?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_together_keep_each_argument_at_its_placeholder() {
        let together = Stmt::together(vec![
            Stmt::new("UPDATE a SET x = $2 WHERE id = $1")
                .bind(7)
                .bind("x"),
            Stmt::new("INSERT INTO b (k, v) VALUES ($1, '$1 stays'), ($2, $10)")
                .bind("k")
                .bind(Some(3i64)),
        ]);
        assert_eq!(
            together.sql(),
            "WITH w0 AS (UPDATE a SET x = $2 WHERE id = $1), \
             w1 AS (INSERT INTO b (k, v) VALUES ($3, '$1 stays'), ($4, $12)) SELECT 1"
        );
        assert_eq!(together.into_args().len(), 4);
    }
}
