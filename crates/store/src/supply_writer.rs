//! The writes of a supply, pipelined: [`Bulk`] is the loader's handle, and
//! a task of its own owns the supply's transaction and runs the writes in
//! order while the loader checks the next chunk.
//!
//! Checking a chunk (building positions, looking up keys and IUVs, handing
//! out notice numbers) and writing the previous one used to alternate, each
//! waiting for the other: on two cores half of every second was idle
//! (`incasso bench load`). Now writes are queued and the loader waits only
//! for what it needs an answer to (a block of IUVs on SQLite, a checkpoint,
//! the commit).
//!
//! The checks read through the pool, outside the supply's transaction, so
//! they see what was committed before, not this supply's own writes. That
//! is enough: keys repeated within the file are refused by the grouper, and
//! IUVs the file brings are tracked here as they go (`seen_iuvs`), so an
//! insert never meets a conflict the checks did not report. A write that
//! fails anyway stops the queue; the failure is returned by the next call
//! that waits, and the transaction rolls back.

use crate::batch::Stmt;
use crate::bulk::{supply_errors, supply_update, supply_updated};
use crate::positions::StoredPosition;
use crate::sqlite_thread::SqliteThread;
use crate::{Dialect, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use incasso_core::codes::NoticeNumber;
use incasso_core::position::{DebtPosition, PositionRules, PositionStatus};
use sqlx::{Any, Row, Transaction};
use std::collections::{HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};

use crate::bulk::{Existing, SupplyRecord};

/// IUVs are reserved this many at a time during a supply.
const NAV_BLOCK: u32 = 5_000;

/// Writes queued ahead of the writer: each is a chunk of positions, so
/// this bounds the memory held by the queue. Deep enough to absorb the
/// bursts of either side: 2 left each side waiting on the other a third of
/// the time; 8 loaded 200,000 rows in 5.7 s instead of 8.2.
const QUEUE: usize = 8;

/// PostgreSQL: at most this many positions in one `COPY`, gathered from
/// the queued chunks.
const COPY_ROWS: usize = 4_000;

/// A chunk's new rows.
enum Inserts {
    Statements(Vec<Stmt>),
    /// PostgreSQL: new positions, for `COPY`.
    Copy(crate::batch::CopyRows),
}

enum Op {
    Insert(Inserts),
    /// An update: the stored position replaced by this one.
    Replace(Box<DebtPosition>, DateTime<Utc>),
    Cancel(String, DateTime<Utc>),
    /// SQLite: IUVs come from the sequence row, which only the writer's
    /// connection may update while the supply's transaction is open. Sent
    /// on a queue of its own (`Bulk::reserve`) that the writer serves
    /// first: behind the queued inserts, the loader ran out of numbers
    /// and waited for them, a fifth of a supply's time.
    Reserve(u8, u32, oneshot::Sender<Result<Vec<NoticeNumber>>>),
    /// Commits what is written, with the supply's record.
    Commit(
        Box<SupplyRecord>,
        DateTime<Utc>,
        oneshot::Sender<Result<()>>,
    ),
    Rollback(oneshot::Sender<Result<()>>),
}

/// The error of a call whose writer (task or SQLite thread) has stopped.
pub(crate) fn writes_stopped() -> StoreError {
    StoreError::Aborted("la scrittura della fornitura si è fermata".into())
}

/// The loader's handle on a supply's writes.
pub struct Bulk {
    queue: mpsc::Sender<Op>,
    reserve: mpsc::Sender<Op>,
    writer: tokio::task::JoinHandle<()>,
    store: Store,
    ente: String,
    origin: String,
    supply_id: i64,
    segregation_codes: Vec<u8>,
    pool_of_navs: Vec<NoticeNumber>,
    /// A block of IUVs asked for before the pool runs dry.
    next_block: Option<oneshot::Receiver<Result<Vec<NoticeNumber>>>>,
    /// IUVs this supply brought, not yet committed.
    seen_iuvs: HashSet<String>,
    /// The blocks of the IUV sequence this supply reserved (segregation
    /// code, first and past-the-end value): its generated IUVs, not yet
    /// committed, are in there, without a set of a million strings.
    reserved: Vec<(u8, u64, u64)>,
    /// IUVs inside those blocks that were used before the block was
    /// reserved (an application brought them): generated numbers skip them.
    /// Looked up once per block, not once per chunk.
    taken_in_blocks: HashSet<String>,
    placements: crate::positions::PlacementCache,
}

impl Store {
    /// Starts the writes of supply `supply_id` for `ente`; positions it
    /// creates are marked as coming from `origin` (the layout).
    pub async fn bulk(&self, ente: &str, origin: &str, supply_id: i64) -> Result<Bulk> {
        let segregation_codes: Vec<u8> = self
            .list_stations(ente)
            .await?
            .iter()
            .map(|s| s.segregation_code)
            .collect();
        self.get_ente(ente).await?;
        // PostgreSQL plans a supply's look-ups (500 iupds at a time) from
        // its statistics, which autovacuum renews a minute or more after a
        // big change. A supply right after another one was planned as if
        // the table were still small: a sequential scan per look-up, 139 ms
        // each over 100,000 positions, ten times the whole load's time
        // (`bench load --database-url`). A sample of the three tables costs
        // a few hundred milliseconds at most.
        //
        // Not while no position is stored: ANALYZE would then record the
        // tables as empty over the pages whose rows a killed or refused
        // supply rolled back, and the planner, scaling that density of
        // zero, takes them for empty however much this supply writes. Every
        // look-up by key and every foreign-key check of its `COPY` then
        // reads the Ente's rows through another `(ente, ...)` index (a
        // tie, at one row each): a supply sent again after its loader was
        // killed crawled at a few hundred rows a second, slower and slower
        // (`crates/cli/tests/faults_supply.rs`). Left unanalyzed, empty
        // pages count for nothing and new ones by their rows' width. A few
        // live rows over many such pages mislead it the same way; that case
        // is still open (a killed load after one stored position).
        if self.dialect == Dialect::Postgres {
            let stored: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM debt_positions LIMIT 1) AS one",
            )
            .fetch_one(&self.pool)
            .await?;
            if stored > 0 {
                sqlx::raw_sql("ANALYZE debt_positions, payment_options, transfers")
                    .execute(&self.writer)
                    .await?;
            }
        }
        // The checkpoint this loader starts from, read now, under its
        // claim: read later by the writer task, it could already be another
        // loader's, and this one's first checkpoint would wrongly pass.
        let expected = sqlx::query_scalar::<_, i64>(
            "SELECT resume_line FROM supplies WHERE ente = $1 AND id = $2",
        )
        .bind(ente)
        .bind(supply_id)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(0);
        let (queue, rx) = mpsc::channel(QUEUE);
        let (reserve, reserves) = mpsc::channel(1);
        let writer = tokio::spawn(write_loop(
            self.clone(),
            ente.to_string(),
            origin.to_string(),
            supply_id,
            expected,
            rx,
            reserves,
        ));
        Ok(Bulk {
            queue,
            reserve,
            writer,
            store: self.clone(),
            ente: ente.to_string(),
            origin: origin.to_string(),
            supply_id,
            segregation_codes,
            pool_of_navs: Vec::new(),
            next_block: None,
            seen_iuvs: HashSet::new(),
            reserved: Vec::new(),
            taken_in_blocks: HashSet::new(),
            placements: Default::default(),
        })
    }
}

/// The supply's open transaction: on an in-memory SQLite database the
/// writer pool's, on a SQLite file that of the supply's own thread (see
/// `sqlite_thread`), on PostgreSQL that of a connection of the supply's own.
enum SupplyTx {
    Shared(Transaction<'static, Any>),
    Own(SqliteThread),
    /// PostgreSQL's new positions go in with `COPY`, which the `Any`
    /// driver cannot send. Measured against multi-row inserts, it saves the
    /// server the binding of 30 parameters per row: a fifth of a supply's
    /// time (`bench load --database-url`). A connection outside the pool,
    /// so a supply never waits for one while the pool is busy.
    Pg(Box<sqlx::PgConnection>),
}

impl SupplyTx {
    async fn begin(
        store: &Store,
        own: Option<&SqliteThread>,
        idle: &mut Option<Box<sqlx::PgConnection>>,
    ) -> Result<SupplyTx> {
        if let Some(thread) = own {
            let writer = store.writer.acquire().await?;
            thread.begin(writer).await?;
            return Ok(SupplyTx::Own(thread.clone()));
        }
        match &store.pg_connect {
            Some(options) => {
                let mut conn = match idle.take() {
                    Some(conn) => conn,
                    None => Box::new(
                        sqlx::ConnectOptions::connect(options.as_ref())
                            .await
                            .map_err(StoreError::from)?,
                    ),
                };
                sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
                Ok(SupplyTx::Pg(conn))
            }
            None => Ok(SupplyTx::Shared(store.write_tx().await?)),
        }
    }

    /// Runs `s`; the rows it touched.
    async fn execute(&mut self, s: Stmt) -> Result<u64> {
        match self {
            SupplyTx::Shared(tx) => Ok(s.into_any().execute(&mut **tx).await?.rows_affected()),
            SupplyTx::Own(thread) => thread.execute(s).await,
            SupplyTx::Pg(conn) => Ok(s.into_pg().execute(&mut **conn).await?.rows_affected()),
        }
    }

    /// Runs `statements`. On SQLite they are queued: a failure is the
    /// answer to the next call that waits.
    async fn execute_all(&mut self, statements: impl IntoIterator<Item = Stmt>) -> Result<()> {
        match self {
            SupplyTx::Shared(_) | SupplyTx::Pg(_) => {
                for s in statements {
                    self.execute(s).await?;
                }
                Ok(())
            }
            SupplyTx::Own(thread) => thread.run(statements.into_iter().collect()).await,
        }
    }

    /// The first column of the one row `s` returns.
    async fn fetch_i64(&mut self, s: Stmt) -> Result<i64> {
        match self {
            SupplyTx::Shared(tx) => Ok(s.into_any().fetch_one(&mut **tx).await?.try_get(0)?),
            SupplyTx::Own(thread) => thread.fetch_i64(s).await,
            SupplyTx::Pg(conn) => Ok(s.into_pg().fetch_one(&mut **conn).await?.try_get(0)?),
        }
    }

    /// The stored position with key `iupd`, as this transaction sees it.
    async fn load(&mut self, store: &Store, ente: &str, iupd: &str) -> Result<StoredPosition> {
        match self {
            // Locked: a receipt must not pay it under this supply.
            SupplyTx::Shared(tx) => {
                crate::positions::load_position(tx, ente, iupd, store.dialect.for_update()).await
            }
            // Read through a reader: this transaction holds SQLite's write
            // lock, so nothing was committed since it began, and a supply
            // touches each key once (the grouper refuses repeated keys), so
            // its own uncommitted writes never concern this position.
            SupplyTx::Own(_) => {
                let mut conn = store.pool.acquire().await?;
                crate::positions::load_position(&mut conn, ente, iupd, "").await
            }
            // Locked here, then read through the pool: what is committed is
            // what this transaction sees of it, for the same reason.
            SupplyTx::Pg(conn) => {
                sqlx::query(
                    "SELECT id FROM debt_positions WHERE ente = $1 AND iupd = $2 FOR UPDATE",
                )
                .bind(ente)
                .bind(iupd)
                .execute(&mut **conn)
                .await?;
                let mut conn = store.pool.acquire().await?;
                crate::positions::load_position(&mut conn, ente, iupd, "").await
            }
        }
    }

    /// Writes a chunk's new rows.
    async fn insert(&mut self, inserts: Inserts) -> Result<()> {
        match (inserts, self) {
            (Inserts::Statements(statements), t) => t.execute_all(statements).await,
            (Inserts::Copy(rows), SupplyTx::Pg(conn)) => rows.write(conn).await,
            (Inserts::Copy(_), _) => Err(StoreError::Corrupt("COPY outside PostgreSQL".into())),
        }
    }

    /// Commits; PostgreSQL's connection is handed back for the next
    /// transaction.
    async fn commit(self) -> Result<Option<Box<sqlx::PgConnection>>> {
        match self {
            SupplyTx::Shared(tx) => tx.commit().await.map(|_| None).map_err(Into::into),
            SupplyTx::Own(thread) => thread.commit().await.map(|_| None),
            SupplyTx::Pg(mut conn) => {
                sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
                Ok(Some(conn))
            }
        }
    }

    async fn rollback(self) -> Result<Option<Box<sqlx::PgConnection>>> {
        match self {
            SupplyTx::Shared(tx) => tx.rollback().await.map(|_| None).map_err(Into::into),
            SupplyTx::Own(thread) => thread.rollback().await.map(|_| None),
            SupplyTx::Pg(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
                Ok(Some(conn))
            }
        }
    }
}

/// Runs the queued writes in order, in the supply's transaction.
async fn write_loop(
    store: Store,
    ente: String,
    origin: String,
    supply_id: i64,
    // The checkpoint this loader last saw.
    mut expected: i64,
    mut rx: mpsc::Receiver<Op>,
    mut reserves: mpsc::Receiver<Op>,
) {
    // SQLite on a file: the supply's own thread and connection.
    let (thread, thread_stopped) = match &store.sqlite_file {
        Some(file) => {
            let pragmas = format!("{} {}", crate::SQLITE_PRAGMAS, crate::WRITER_PRAGMAS);
            let (thread, stopped) = SqliteThread::start(file.clone(), pragmas);
            (Some(thread), Some(stopped))
        }
        None => (None, None),
    };
    // The positions this supply writes from now on have higher ids: their
    // PUBLISHED events are looked for past this one (store::notify_channels).
    let published_after = crate::notify_channels::last_position_id()
        .into_any()
        .fetch_one(&store.pool)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .unwrap_or(i64::MAX);
    let mut w = Writes {
        store: store.clone(),
        thread,
        tx: None,
        idle: None,
        events: Vec::new(),
        published_after,
    };
    // The first failure: every later write is skipped, and whoever waits
    // next is told.
    let mut failure: Option<StoreError> = None;
    let failed = |f: &Option<StoreError>| {
        f.as_ref()
            .map(|e| StoreError::Aborted(e.to_string()))
            .unwrap_or(StoreError::Aborted(String::new()))
    };
    // An op taken from the queue while gathering `COPY` rows, served next.
    let mut held: Option<Op> = None;
    loop {
        let mut op = match held.take() {
            Some(op) => op,
            None => tokio::select! {
                biased;
                Some(op) = reserves.recv() => op,
                op = rx.recv() => match op {
                    Some(op) => op,
                    None => break,
                },
            },
        };
        // PostgreSQL: the chunks already queued behind this one go in with
        // it, one `COPY` per table for all of them. The queue is full
        // whenever the writer is the slower side, and each `COPY` costs its
        // round trips and the statement's own work (opening ten indexes,
        // planning the links' check) whatever its size.
        if let Op::Insert(Inserts::Copy(rows)) = &mut op {
            while rows.len() < COPY_ROWS {
                match rx.try_recv() {
                    Ok(Op::Insert(Inserts::Copy(more))) => rows.absorb(more),
                    Ok(other) => {
                        held = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        // After a failure nothing more is written: the transaction is
        // rolled back at once, so the (on SQLite, only) writer connection
        // is free for others while the loader winds down.
        if failure.is_some() && w.tx.is_some() {
            w.events.clear();
            let _ = w.rollback().await;
        }
        match op {
            Op::Insert(inserts) => {
                if failure.is_none()
                    && let Err(e) = async {
                        let t = w.open().await?;
                        t.insert(inserts).await
                    }
                    .await
                {
                    failure = Some(e);
                }
            }
            Op::Replace(p, now) => {
                if failure.is_none()
                    && let Err(e) =
                        replace(&mut w, &store, &ente, &origin, supply_id, *p, now).await
                {
                    failure = Some(e);
                }
            }
            Op::Cancel(iupd, now) => {
                if failure.is_none()
                    && let Err(e) = cancel(&mut w, &store, &ente, &iupd, now).await
                {
                    failure = Some(e);
                }
            }
            Op::Reserve(seg, count, reply) => {
                let result = if failure.is_some() {
                    Err(failed(&failure))
                } else {
                    async {
                        let t = w.open().await?;
                        let next = t
                            .fetch_i64(crate::iuv::reservation(&ente, seg, count))
                            .await?;
                        crate::iuv::reserved(seg, count, next)
                    }
                    .await
                };
                let _ = reply.send(result);
            }
            Op::Commit(record, now, reply) => {
                let result = match failure.take() {
                    Some(e) => Err(e),
                    None => {
                        async {
                            let events = std::mem::take(&mut w.events);
                            let published_after = w.published_after;
                            let t = w.open().await?;
                            let updated = t
                                .execute(supply_update(
                                    &ente,
                                    supply_id,
                                    &record,
                                    now,
                                    Some(expected),
                                ))
                                .await;
                            supply_updated(updated, Some(expected))?;
                            t.execute_all(supply_errors(supply_id, &record.errors))
                                .await?;
                            let mut last = crate::events::statements(store.dialect, &events, now);
                            let telling = t
                                .fetch_i64(crate::notify_channels::any_enabled(&ente))
                                .await?
                                > 0;
                            if telling {
                                last.push(crate::notify_channels::published_by_supply(
                                    store.dialect,
                                    &ente,
                                    supply_id,
                                    published_after,
                                    now,
                                ));
                            }
                            t.execute_all(last).await?;
                            let newest = t
                                .fetch_i64(crate::notify_channels::last_position_id())
                                .await?;
                            w.commit().await?;
                            w.published_after = w.published_after.max(newest);
                            Ok(())
                        }
                        .await
                    }
                };
                match &result {
                    Ok(()) => expected = record.resume_line,
                    Err(e) => {
                        failure = Some(StoreError::Aborted(e.to_string()));
                        let _ = w.rollback().await;
                    }
                }
                let _ = reply.send(result);
            }
            Op::Rollback(reply) => {
                w.events.clear();
                let result = w.rollback().await;
                let _ = reply.send(result);
            }
        }
    }
    // Dropped without a commit: the open transaction rolls back (on
    // SQLite, before the thread gives the writer slot back).
    drop(w);
    if let Some(stopped) = thread_stopped {
        let _ = stopped.await;
    }
}

/// Where a supply's writes go: its open transaction, begun on first use
/// after a commit, and on a SQLite file the thread that runs it.
struct Writes {
    store: Store,
    thread: Option<SqliteThread>,
    tx: Option<SupplyTx>,
    /// PostgreSQL: the supply's connection, between transactions.
    idle: Option<Box<sqlx::PgConnection>>,
    /// The CANCELLED events of this transaction, written at its commit.
    events: Vec<crate::events::NewEvent>,
    /// Position ids up to this one were looked at by an earlier commit for
    /// PUBLISHED events.
    published_after: i64,
}

impl Writes {
    async fn open(&mut self) -> Result<&mut SupplyTx> {
        if self.tx.is_none() {
            self.tx =
                Some(SupplyTx::begin(&self.store, self.thread.as_ref(), &mut self.idle).await?);
        }
        Ok(self.tx.as_mut().expect("just begun"))
    }

    /// Commits the open transaction, if any.
    async fn commit(&mut self) -> Result<()> {
        if let Some(t) = self.tx.take() {
            self.idle = t.commit().await?;
        }
        Ok(())
    }

    /// Rolls the open transaction back, if any. A connection whose
    /// rollback failed is dropped, which rolls back too.
    async fn rollback(&mut self) -> Result<()> {
        match self.tx.take() {
            Some(t) => {
                self.idle = t.rollback().await?;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Replaces an unpaid position with `p`, which keeps its key.
async fn replace(
    w: &mut Writes,
    store: &Store,
    ente: &str,
    origin: &str,
    supply_id: i64,
    p: DebtPosition,
    now: DateTime<Utc>,
) -> Result<()> {
    let t = w.open().await?;
    // The check that let this update through read committed data outside
    // this transaction: a receipt may have paid the position since. Read it
    // again here and never overwrite a payment.
    let stored = t.load(store, ente, &p.iupd).await?;
    if matches!(
        stored.position.status,
        PositionStatus::Paid | PositionStatus::PartiallyPaid | PositionStatus::Reported
    ) {
        return Err(StoreError::Aborted(format!(
            "la posizione '{}' è stata pagata durante il caricamento: non viene modificata",
            p.iupd
        )));
    }
    t.execute_all(crate::positions::delete_statements(stored.id))
        .await?;
    let iupd = p.iupd.clone();
    let was_published = crate::events::was_published(&stored);
    // Its notices changed: printed with the supply that changed it, as
    // the new positions are.
    let place = store.placement_of(ente, &p).await?;
    let inserts = crate::batch::insert_positions(
        store.dialect,
        ente,
        vec![p],
        vec![place],
        now,
        origin,
        supply_id,
    );
    for s in inserts {
        match t.execute(s).await {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "la posizione '{iupd}' usa uno IUV già usato da un'altra posizione"
                )));
            }
            Err(e) => return Err(e),
        }
    }
    if was_published {
        t.execute(crate::notify_channels::no_invite_for_replacement(
            ente, &iupd,
        ))
        .await?;
    }
    Ok(())
}

/// Cancels an unpaid position: a draft is removed, a published one
/// invalidated.
async fn cancel(
    w: &mut Writes,
    store: &Store,
    ente: &str,
    iupd: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let t = w.open().await?;
    let mut stored = t.load(store, ente, iupd).await?;
    if stored.position.status == PositionStatus::Draft {
        return t
            .execute_all(crate::positions::delete_statements(stored.id))
            .await;
    }
    let was_published = crate::events::was_published(&stored);
    stored.position.invalidate(now)?;
    t.execute_all(crate::positions::state_statements(&stored, now))
        .await?;
    if was_published {
        stored.version += 1;
        w.events
            .push(crate::events::cancelled(ente, &stored, "INVALIDATED"));
    }
    Ok(())
}

/// (notice number, IUV) of each option.
pub fn numbers_of(p: &DebtPosition) -> Vec<(String, String)> {
    p.options
        .iter()
        .map(|o| {
            (
                o.notice_number
                    .as_ref()
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                o.iuv.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// The segregation code of a generated notice number (aux digit 3).
fn n_seg(n: &NoticeNumber) -> Option<u8> {
    n.as_str().get(1..3).and_then(|s| s.parse().ok())
}

impl Bulk {
    pub fn segregation_codes(&self) -> &[u8] {
        &self.segregation_codes
    }

    pub fn rules(&self, now: DateTime<Utc>) -> PositionRules<'_> {
        PositionRules {
            ente_fiscal_code: &self.ente,
            now,
            segregation_codes: &self.segregation_codes,
        }
    }

    async fn send(&self, op: Op) -> Result<()> {
        self.queue.send(op).await.map_err(|_| writes_stopped())
    }

    /// The stored state of whichever of these keys existed before this
    /// supply (committed), in one query per thousand keys.
    pub async fn existing_many(&mut self, iupds: &[String]) -> Result<HashMap<String, Existing>> {
        let mut conn = self.store.pool.acquire().await?;
        let raw = crate::batch::statuses(&mut conn, self.store.dialect, &self.ente, iupds).await?;
        raw.into_iter()
            .map(|(k, s)| {
                let status = s
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("position status {s}")))?;
                Ok((k, Existing { status }))
            })
            .collect()
    }

    /// Which of these IUVs (brought by the file) the Ente already uses, or
    /// this supply has used or reserved for its own.
    pub async fn taken_many(&mut self, iuvs: &[String]) -> Result<HashSet<String>> {
        let mut taken = self.taken_in_store(iuvs).await?;
        taken.extend(iuvs.iter().filter(|i| self.in_reserved(i)).cloned());
        Ok(taken)
    }

    /// Whether a 17-digit IUV is a value of a block this supply reserved.
    fn in_reserved(&self, iuv: &str) -> bool {
        let (Some(seg), Some(base)) = (
            iuv.get(..2).and_then(|s| s.parse::<u8>().ok()),
            iuv.get(2..15).and_then(|s| s.parse::<u64>().ok()),
        ) else {
            return false;
        };
        iuv.len() == 17
            && self
                .reserved
                .iter()
                .any(|(s, from, to)| *s == seg && (*from..*to).contains(&base))
    }

    /// Which of these IUVs are stored, or brought earlier in this supply.
    async fn taken_in_store(&mut self, iuvs: &[String]) -> Result<HashSet<String>> {
        let mut conn = self.store.pool.acquire().await?;
        let mut taken: HashSet<String> =
            crate::batch::taken(&mut conn, self.store.dialect, &self.ente, iuvs)
                .await?
                .into_iter()
                .collect();
        taken.extend(iuvs.iter().filter(|i| self.seen_iuvs.contains(*i)).cloned());
        Ok(taken)
    }

    /// The notice numbers and IUVs, by option, of one stored position.
    pub async fn notice_numbers(&mut self, iupd: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .notice_numbers_many(&[iupd.to_string()])
            .await?
            .remove(iupd)
            .unwrap_or_default())
    }

    /// The notice numbers and IUVs of these keys' committed positions, by
    /// option (batched): what a resumed supply's outcome carries for the
    /// rows committed before it was interrupted.
    pub async fn notice_numbers_many(
        &mut self,
        iupds: &[String],
    ) -> Result<HashMap<String, Vec<(String, String)>>> {
        let mut conn = self.store.pool.acquire().await?;
        crate::batch::notice_numbers(&mut conn, self.store.dialect, &self.ente, iupds).await
    }

    /// Asks for the next block of IUVs ahead of need (SQLite: from the
    /// writer, which serves it before the writes already queued).
    async fn request_block(&mut self) -> Result<()> {
        if self.next_block.is_some() {
            return Ok(());
        }
        let seg = *self.segregation_codes.first().ok_or_else(|| {
            StoreError::Conflict("l'ente non ha stazioni: impossibile generare lo IUV".into())
        })?;
        let (reply, rx) = oneshot::channel();
        match self.store.dialect {
            Dialect::Sqlite => self
                .reserve
                .send(Op::Reserve(seg, NAV_BLOCK, reply))
                .await
                .map_err(|_| writes_stopped())?,
            // PostgreSQL: a short transaction of its own, so the sequence
            // row is not locked for the whole supply.
            Dialect::Postgres => {
                let _ = reply.send(
                    self.store
                        .allocate_notice_numbers(&self.ente, seg, NAV_BLOCK)
                        .await,
                );
            }
        }
        self.next_block = Some(rx);
        Ok(())
    }

    async fn next_nav(&mut self) -> Result<NoticeNumber> {
        if self.pool_of_navs.len() < NAV_BLOCK as usize / 2 {
            self.request_block().await?;
        }
        if self.pool_of_navs.is_empty() {
            let rx = self.next_block.take().expect("requested above");
            let block = rx.await.map_err(|_| writes_stopped())??;
            if let (Some(first), Some(last)) = (block.first(), block.last()) {
                let value =
                    |n: &NoticeNumber| n.as_str().get(3..16).and_then(|v| v.parse::<u64>().ok());
                let seg = n_seg(first);
                if let (Some(a), Some(b), Some(seg)) = (value(first), value(last), seg) {
                    self.reserved.push((seg, a, b + 1));
                    self.note_taken_in_block(seg, a, b).await?;
                }
            }
            // Handed out lowest first.
            self.pool_of_navs = block.into_iter().rev().collect();
        }
        self.pool_of_navs
            .pop()
            .ok_or_else(|| StoreError::Corrupt("empty IUV block".into()))
    }

    /// Gives a new position its notice numbers (from the coordinator where
    /// it brought no IUV) and publishes it. Returns the indices of the
    /// options whose IUV was generated.
    async fn prepare_new(
        &mut self,
        p: &mut DebtPosition,
        now: DateTime<Utc>,
    ) -> Result<Vec<usize>> {
        let mut generated = Vec::new();
        for (i, o) in p.options.iter_mut().enumerate() {
            if o.iuv.is_none() {
                let nav = self.next_nav().await?;
                o.iuv = Some(nav.as_str()[1..].to_string());
                o.notice_number = Some(nav);
                generated.push(i);
            } else if o.notice_number.is_none() {
                let iuv = o.iuv.clone().unwrap_or_default();
                o.notice_number = Some(
                    incasso_core::codes::notice::notice_number_from_iuv(3, None, &iuv)
                        .map_err(|e| StoreError::Conflict(format!("IUV {iuv}: {e}")))?,
                );
            }
        }
        p.status = PositionStatus::Draft;
        p.inserted_date = Some(now);
        p.last_updated_date = Some(now);
        p.publish(now)?;
        Ok(generated)
    }

    /// Remembers the IUVs of a new block (values `from..=to` of segregation
    /// code `seg`) that are stored or that this supply brought: fixed-width
    /// digits, so the block is one range of the key's index. IUVs brought
    /// later in the supply that fall in a reserved block are refused by
    /// `taken_many`.
    async fn note_taken_in_block(&mut self, seg: u8, from: u64, to: u64) -> Result<()> {
        let low = format!("{seg:02}{from:013}00");
        let high = format!("{seg:02}{to:013}99");
        let mut conn = self.store.pool.acquire().await?;
        let stored = crate::batch::taken_between(&mut conn, &self.ente, &low, &high).await?;
        self.taken_in_blocks.extend(stored);
        let brought = self
            .seen_iuvs
            .iter()
            .filter(|i| (low.as_str()..=high.as_str()).contains(&i.as_str()));
        self.taken_in_blocks.extend(brought.cloned());
        Ok(())
    }

    /// Generated IUVs must not be ones an application brought (in this
    /// supply, or stored before): a clash would fail an insert, and on
    /// PostgreSQL a failed statement aborts the whole supply. Clashing ones
    /// are replaced with fresh numbers until none clashes. What was taken
    /// in each block is known since it was reserved, so no query is needed
    /// here: one per chunk was a twentieth of a load's time.
    async fn avoid_clashes(
        &mut self,
        positions: &mut [DebtPosition],
        mut generated: Vec<(usize, usize)>,
    ) -> Result<()> {
        for _ in 0..8 {
            if generated.is_empty() {
                return Ok(());
            }
            let mine: HashSet<(usize, usize)> = generated.iter().copied().collect();
            let brought: HashSet<&str> = positions
                .iter()
                .enumerate()
                .flat_map(|(p, pos)| {
                    pos.options
                        .iter()
                        .enumerate()
                        .map(move |(o, opt)| ((p, o), opt))
                })
                .filter(|(k, _)| !mine.contains(k))
                .filter_map(|(_, opt)| opt.iuv.as_deref())
                .collect();
            let clashing: Vec<(usize, usize)> = generated
                .into_iter()
                .filter(|(p, o)| {
                    let iuv = positions[*p].options[*o].iuv.as_deref().unwrap_or_default();
                    self.taken_in_blocks.contains(iuv) || brought.contains(iuv)
                })
                .collect();
            for (p, o) in &clashing {
                let nav = self.next_nav().await?;
                let option = &mut positions[*p].options[*o];
                option.iuv = Some(nav.as_str()[1..].to_string());
                option.notice_number = Some(nav);
            }
            generated = clashing;
        }
        Err(StoreError::Conflict(
            "impossibile generare IUV liberi: la sequenza incontra solo IUV già usati".into(),
        ))
    }

    /// Remembers IUVs a chunk brings before any number is generated for
    /// it, so a generated one never equals one brought later in the chunk.
    pub fn note_brought_iuvs(&mut self, iuvs: impl IntoIterator<Item = String>) {
        self.seen_iuvs.extend(iuvs);
    }

    /// Remembers the IUVs a supply's position brought, until commit.
    fn note_brought(&mut self, p: &DebtPosition, generated: &[usize]) {
        for (i, o) in p.options.iter().enumerate() {
            if !generated.contains(&i)
                && let Some(iuv) = &o.iuv
            {
                self.seen_iuvs.insert(iuv.clone());
            }
        }
    }

    /// Queues validated new positions, publishing them and assigning IUVs
    /// where they have none. Returns each position's (notice number, IUV)
    /// by option: the positions themselves go to the writer.
    pub async fn insert_many(
        &mut self,
        mut positions: Vec<DebtPosition>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<(String, String)>>> {
        let mut generated = Vec::new();
        for (k, p) in positions.iter_mut().enumerate() {
            let g = self.prepare_new(p, now).await?;
            generated.extend(g.iter().map(|o| (k, *o)));
        }
        self.avoid_clashes(&mut positions, generated.clone())
            .await?;
        for (k, p) in positions.iter().enumerate() {
            let mine: Vec<usize> = generated
                .iter()
                .filter(|(q, _)| *q == k)
                .map(|(_, o)| *o)
                .collect();
            self.note_brought(p, &mine);
        }
        let numbers = positions.iter().map(numbers_of).collect();
        // Where each position belongs (service, office), as the back office
        // searches and limits office operators by: derived once per kind of
        // content, which a supply repeats.
        let mut placements = Vec::with_capacity(positions.len());
        for p in &positions {
            placements.push(self.placements.derive(&self.store, &self.ente, p).await?);
        }
        let op = if self.store.pg_connect.is_some() {
            Op::Insert(Inserts::Copy(crate::batch::CopyRows::new(
                &self.ente,
                positions,
                placements,
                now,
                &self.origin,
                self.supply_id,
            )))
        } else {
            Op::Insert(Inserts::Statements(crate::batch::insert_positions(
                self.store.dialect,
                &self.ente,
                positions,
                placements,
                now,
                &self.origin,
                self.supply_id,
            )))
        };
        self.send(op).await?;
        Ok(numbers)
    }

    /// Queues the replacement of an unpaid position (operation "update"),
    /// assigning IUVs to options that have none.
    pub async fn replace(&mut self, p: &mut DebtPosition, now: DateTime<Utc>) -> Result<()> {
        let generated: Vec<(usize, usize)> = self
            .prepare_new(p, now)
            .await?
            .into_iter()
            .map(|o| (0, o))
            .collect();
        self.avoid_clashes(std::slice::from_mut(p), generated.clone())
            .await?;
        let mine: Vec<usize> = generated.iter().map(|(_, o)| *o).collect();
        self.note_brought(p, &mine);
        self.send(Op::Replace(Box::new(p.clone()), now)).await
    }

    /// Queues what rows said of their App IO invitation (a layout's
    /// `notify.invite` column): `true` asks for it, `false` refuses it,
    /// whatever the service's "invite on publication" says. After the rows'
    /// insert or replacement; read when the supply commits.
    pub async fn set_invites(&mut self, invites: &[(String, bool)]) -> Result<()> {
        if invites.is_empty() {
            return Ok(());
        }
        self.send(Op::Insert(Inserts::Statements(
            crate::notify_channels::invite_statements(&self.ente, invites),
        )))
        .await
    }

    /// Queues the cancellation of an unpaid position (operation "cancel").
    pub async fn cancel(&mut self, iupd: &str, now: DateTime<Utc>) -> Result<()> {
        self.send(Op::Cancel(iupd.to_string(), now)).await
    }

    async fn commit_with(&mut self, record: &SupplyRecord, now: DateTime<Utc>) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Op::Commit(Box::new(record.clone()), now, reply))
            .await?;
        rx.await.map_err(|_| writes_stopped())??;
        // Committed: these IUVs are now visible to the checks' reads.
        self.seen_iuvs.clear();
        Ok(())
    }

    /// Commits the writes so far with the supply's checkpoint (`record`:
    /// counters, `resume_line` and the errors found since the last one).
    pub async fn checkpoint(&mut self, record: &SupplyRecord, now: DateTime<Utc>) -> Result<()> {
        self.commit_with(record, now).await
    }

    /// Writes the supply's final record and commits.
    pub async fn commit(mut self, record: &SupplyRecord, now: DateTime<Utc>) -> Result<()> {
        self.commit_with(record, now).await?;
        self.finish().await;
        Ok(())
    }

    /// Drops the writes since the last checkpoint.
    pub async fn rollback(self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        let sent = self.send(Op::Rollback(reply)).await;
        let result = match sent {
            Ok(()) => rx.await.unwrap_or(Ok(())),
            Err(e) => Err(e),
        };
        self.finish().await;
        result
    }

    async fn finish(self) {
        drop(self.queue);
        let _ = self.writer.await;
    }
}
