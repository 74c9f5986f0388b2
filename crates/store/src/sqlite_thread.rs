//! SQLite: the thread that runs a supply's statements.
//!
//! Through sqlx every statement is a round trip: the writer task hands it
//! to the connection's worker thread and waits for the answer before
//! sending the next. On two cores, with the loader's two threads busy,
//! each hand-over also waited for a core: the SQLite side of a million-row
//! supply sat idle for a quarter of the load (perf, `incasso bench load`).
//! Here one thread owns a connection of its own (rusqlite) and runs the
//! queued chunks back to back; only what needs an answer (the IUV
//! sequence, the supply record's update, the commit) is a round trip.
//!
//! Chunks are not answered one by one: the first statement that fails
//! stops the thread's writes, and the failure is the answer to the next
//! request that waits (a reservation, a checkpoint, the commit). That is
//! the writer task's own rule, one step later.
//!
//! The process's `Any` writer connection is held from BEGIN to COMMIT or
//! ROLLBACK, by this thread, so the other writers of the process queue for
//! it as they always do and never meet this connection in SQLite's busy
//! handler.

use crate::batch::{Arg, Stmt};
use crate::supply_writer::writes_stopped as stopped;
use crate::{Result, StoreError};
use rusqlite::Connection;
use sqlx::Any;
use sqlx::pool::PoolConnection;
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

enum Job {
    /// Begins the supply's transaction, holding the process's writer slot.
    Begin(PoolConnection<Any>, oneshot::Sender<Result<()>>),
    /// Statements whose outcome nobody waits for (see the module's doc).
    Run(Vec<Stmt>),
    /// A statement and the rows it changed.
    Execute(Stmt, oneshot::Sender<Result<u64>>),
    /// A statement and the first column of the one row it returns.
    FetchI64(Stmt, oneshot::Sender<Result<i64>>),
    Commit(oneshot::Sender<Result<()>>),
    Rollback(oneshot::Sender<Result<()>>),
}

/// A handle on the thread. When the last is dropped, the thread rolls
/// back what is not committed, closes the connection and gives the writer
/// slot back; then the receiver `start` returned is told.
#[derive(Clone)]
pub(crate) struct SqliteThread {
    jobs: mpsc::Sender<Job>,
}

impl SqliteThread {
    /// Starts the thread; the connection is opened (with `pragmas`) on it,
    /// at the first BEGIN.
    pub(crate) fn start(file: PathBuf, pragmas: String) -> (SqliteThread, oneshot::Receiver<()>) {
        // One chunk waiting beside the one running: a reservation or a
        // checkpoint waits behind at most these two.
        let (jobs, rx) = mpsc::channel(1);
        let (done_tx, done) = oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let body = move || {
            // The writer slot is a pool connection: it goes back to its
            // pool through the runtime when dropped here.
            let _runtime = runtime.enter();
            serve(&file, &pragmas, rx);
            let _ = done_tx.send(());
        };
        // Named, for `top -H` and perf. Spawning fails only where the
        // process is out of threads, as `std::thread::spawn` panics then.
        std::thread::Builder::new()
            .name("supply-sqlite".into())
            .spawn(body)
            .expect("a thread for the supply's writes");
        (SqliteThread { jobs }, done)
    }

    async fn ask<T>(&self, job: impl FnOnce(oneshot::Sender<Result<T>>) -> Job) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.jobs.send(job(reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub(crate) async fn begin(&self, writer: PoolConnection<Any>) -> Result<()> {
        self.ask(|r| Job::Begin(writer, r)).await
    }

    /// Queues `statements`; a failure is reported by the next request.
    pub(crate) async fn run(&self, statements: Vec<Stmt>) -> Result<()> {
        self.jobs
            .send(Job::Run(statements))
            .await
            .map_err(|_| stopped())
    }

    pub(crate) async fn execute(&self, s: Stmt) -> Result<u64> {
        self.ask(|r| Job::Execute(s, r)).await
    }

    pub(crate) async fn fetch_i64(&self, s: Stmt) -> Result<i64> {
        self.ask(|r| Job::FetchI64(s, r)).await
    }

    pub(crate) async fn commit(&self) -> Result<()> {
        self.ask(Job::Commit).await
    }

    pub(crate) async fn rollback(&self) -> Result<()> {
        self.ask(Job::Rollback).await
    }
}

/// The thread's loop: jobs in order until the handle is dropped.
fn serve(file: &std::path::Path, pragmas: &str, mut rx: mpsc::Receiver<Job>) {
    let mut conn: Option<Connection> = None;
    // The writer slot, held while a transaction is open.
    let mut slot: Option<PoolConnection<Any>> = None;
    // The first failure of a queued statement since BEGIN.
    let mut failure: Option<String> = None;
    while let Some(job) = rx.blocking_recv() {
        match job {
            Job::Begin(writer, reply) => {
                let result = (|| {
                    if conn.is_none() {
                        conn = Some(open(file, pragmas)?);
                    }
                    let c = conn.as_ref().expect("opened above");
                    c.execute_batch("BEGIN IMMEDIATE")?;
                    Ok(())
                })();
                if result.is_ok() {
                    slot = Some(writer);
                    failure = None;
                }
                let _ = reply.send(result);
            }
            Job::Run(statements) => {
                if failure.is_some() {
                    continue;
                }
                let Some(c) = conn.as_ref().filter(|_| slot.is_some()) else {
                    failure = Some("nessuna transazione aperta".into());
                    continue;
                };
                for s in statements {
                    if let Err(e) = run(c, s) {
                        failure = Some(StoreError::from(e).to_string());
                        break;
                    }
                }
            }
            Job::Execute(s, reply) => {
                let result = ready(&failure, conn.as_ref()).and_then(|c| Ok(run(c, s)? as u64));
                let _ = reply.send(result);
            }
            Job::FetchI64(s, reply) => {
                let result = ready(&failure, conn.as_ref()).and_then(|c| Ok(fetch_i64(c, s)?));
                let _ = reply.send(result);
            }
            Job::Commit(reply) => {
                let result =
                    ready(&failure, conn.as_ref()).and_then(|c| Ok(c.execute_batch("COMMIT")?));
                if result.is_ok() {
                    slot = None;
                }
                let _ = reply.send(result);
            }
            Job::Rollback(reply) => {
                let result = roll_back(conn.as_ref());
                slot = None;
                failure = None;
                let _ = reply.send(result);
            }
        }
    }
    // Dropped without a commit: what is open rolls back before the writer
    // slot is given back.
    if slot.is_some() {
        let _ = roll_back(conn.as_ref());
    }
    drop(conn);
    drop(slot);
}

/// The connection, for a request that waits for its answer: unless a
/// queued statement failed since BEGIN (that failure is the answer).
fn ready<'c>(failure: &Option<String>, conn: Option<&'c Connection>) -> Result<&'c Connection> {
    match (failure, conn) {
        (Some(f), _) => Err(StoreError::Aborted(f.clone())),
        (None, Some(c)) => Ok(c),
        (None, None) => Err(stopped()),
    }
}

fn roll_back(conn: Option<&Connection>) -> Result<()> {
    match conn {
        Some(c) if !c.is_autocommit() => Ok(c.execute_batch("ROLLBACK")?),
        _ => Ok(()),
    }
}

fn open(file: &std::path::Path, pragmas: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(file)?;
    conn.execute_batch(pragmas)?;
    // A supply's inserts are a few statements repeated, plus the short
    // last one of each chunk and the checkpoint's.
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Runs `s`; the rows it changed.
fn run(conn: &Connection, s: Stmt) -> rusqlite::Result<usize> {
    let mut st = conn.prepare_cached(s.sql())?;
    bind(&mut st, s)?;
    st.raw_execute()
}

fn fetch_i64(conn: &Connection, s: Stmt) -> rusqlite::Result<i64> {
    let mut st = conn.prepare_cached(s.sql())?;
    bind(&mut st, s)?;
    let mut rows = st.raw_query();
    match rows.next()? {
        Some(row) => row.get(0),
        None => Err(rusqlite::Error::QueryReturnedNoRows),
    }
}

/// Binds the arguments: in order for `?`, by number for `$N` (as sqlx
/// does). Only the short statements are numbered: looking a parameter's
/// name up is linear in SQLite, which made the big inserts quadratic.
fn bind(st: &mut rusqlite::CachedStatement<'_>, s: Stmt) -> rusqlite::Result<()> {
    let numbered = s.sql().contains('$');
    let args = s.into_args();
    for i in 1..=st.parameter_count() {
        let arg = if numbered {
            st.parameter_name(i)
                .and_then(|n| n.strip_prefix('$'))
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| args.get(n.wrapping_sub(1)))
        } else {
            args.get(i - 1)
        };
        match arg {
            Some(Arg::I(v)) => st.raw_bind_parameter(i, v)?,
            Some(Arg::OI(v)) => st.raw_bind_parameter(i, v)?,
            Some(Arg::S(v)) => st.raw_bind_parameter(i, v.as_str())?,
            Some(Arg::OS(v)) => st.raw_bind_parameter(i, v.as_deref())?,
            Some(Arg::OB(v)) => st.raw_bind_parameter(i, v.as_deref())?,
            None => {
                return Err(rusqlite::Error::InvalidParameterCount(i, args.len()));
            }
        }
    }
    Ok(())
}
