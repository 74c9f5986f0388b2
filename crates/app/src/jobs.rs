//! Scheduled work: time-driven position states, the hourly fetch of
//! reporting flows, the inbox and outbox folders.
//!
//! A job never dies of one bad input: each Ente's share of a round runs on
//! a task of its own, so that a panic in it is caught, reported with the
//! Ente, and the round goes on with the others; the next round runs as
//! usual.

use crate::App;
use crate::reconcile::{self, FetchReport, ReconError};
use chrono::{DateTime, Utc};
use incasso_store::Store;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often reporting flows are fetched from the Node. PSPs publish them
/// once a day (and may correct them until D+4); hourly is ample, and the
/// API fetches on demand.
pub const FLOW_FETCH_EVERY: Duration = Duration::from_secs(3600);

/// How often stored states are moved forward in time.
pub const STATES_EVERY: Duration = Duration::from_secs(60);

/// How often the inbox is scanned.
pub const INBOX_EVERY: Duration = Duration::from_secs(5);

/// The running jobs of one process; [`Jobs::stop`] ends them.
pub struct Jobs(Vec<JoinHandle<()>>);

impl Jobs {
    pub fn stop(self) {
        for job in self.0 {
            job.abort();
        }
    }
}

/// Starts the process's scheduled jobs.
pub fn start(app: &App) -> Jobs {
    let mut jobs = vec![
        tokio::spawn(refresh_states(app.clone())),
        tokio::spawn(fetch_flows_periodically(app.clone())),
        tokio::spawn(resume_uploads(app.store.clone(), app.clock)),
        tokio::spawn(close_expired_sessions(app.clone())),
        tokio::spawn(close_abandoned_spontaneous(app.clone())),
        tokio::spawn(mark_abandoned_supplies(app.clone())),
        tokio::spawn(crate::digitpos::purge_keys_periodically(app.clone())),
        tokio::spawn(crate::webhooks::run(app.clone())),
        tokio::spawn(crate::notify::run(app.clone())),
        tokio::spawn(crate::notify::run_reminders(app.clone())),
    ];
    if app.store.dialect() == incasso_store::Dialect::Postgres {
        jobs.push(tokio::spawn(refresh_statistics(app.clone())));
    }
    if app.settings.pos.is_some() {
        jobs.push(tokio::spawn(crate::pos::run(app.clone())));
    }
    if crate::mail::enabled(app) {
        jobs.push(tokio::spawn(crate::mail::run(app.clone())));
    }
    if let Some(dir) = app.settings.data_dir.clone() {
        jobs.push(tokio::spawn(crate::inbox::run(
            app.store.clone(),
            dir,
            INBOX_EVERY,
        )));
    }
    Jobs(jobs)
}

/// This process's name in `job_turns`: the host and the process id.
fn process_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    format!("{host}:{}", std::process::id())
}

/// Runs `round` once per `every` across every process on the database
/// (`Store::take_job_turn`), the first time `first_after` after the job
/// is first seen. Each process asks a few times per period, so the turn is
/// taken soon after it is due whichever process is alive. The round is
/// given the application's time.
pub async fn on_schedule<F, Fut>(
    app: App,
    job: &'static str,
    every: Duration,
    first_after: Duration,
    mut round: F,
) where
    F: FnMut(App, DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let who = process_name();
    let poll = (every / 4).clamp(Duration::from_secs(1), Duration::from_secs(15));
    let every_c = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
    let first_c = chrono::Duration::from_std(first_after).unwrap_or_default();
    let mut tick = tokio::time::interval(poll);
    loop {
        tick.tick().await;
        let wall = Utc::now();
        match app
            .store
            .take_job_turn(job, &who, wall, every_c, wall + first_c)
            .await
        {
            Ok(true) => round(app.clone(), app.clock.now()).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(job, error = %e, "job turn not taken; asking again later"),
        }
    }
}

/// Removes the back office's sessions past their idle or absolute timeout
/// (they are refused anyway: this keeps the table small), every ten minutes.
async fn close_expired_sessions(app: App) {
    on_schedule(
        app,
        "close_expired_sessions",
        Duration::from_secs(600),
        Duration::ZERO,
        |app, now| async move {
            if let Err(e) = app
                .store
                .close_expired_sessions(
                    now - crate::operators::IDLE_TIMEOUT,
                    now - crate::operators::ABSOLUTE_TIMEOUT,
                )
                .await
            {
                tracing::warn!(error = %e, "closing expired sessions failed; retrying later");
            }
        },
    )
    .await
}

/// Cancels the positions of spontaneous payments abandoned before paying
/// (the portal's), every minute: none is left payable behind.
async fn close_abandoned_spontaneous(app: App) {
    // First after one period, not at start: nothing made before a restart
    // is late by a minute more, and a process started next to work that
    // is already under way (a test's, a migration's) does not race it.
    on_schedule(
        app,
        "close_abandoned_spontaneous",
        STATES_EVERY,
        STATES_EVERY,
        |app, now| async move {
            match crate::portal::spontaneous::close_abandoned(&app, now).await {
                Ok(done) if !done.is_empty() => {
                    tracing::info!(
                        payments = done.len(),
                        "abandoned spontaneous payments closed"
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "closing abandoned spontaneous payments failed")
                }
            }
        },
    )
    .await
}

/// How often PostgreSQL's statistics are checked for tables that grew
/// since their last sample (`Store::refresh_stale_statistics`): autovacuum
/// looks once a minute, and a fast-growing young table is planned badly
/// until then.
pub const STATISTICS_EVERY: Duration = Duration::from_secs(10);

/// Samples the tables that changed much since autovacuum last did, every
/// ten seconds, once across processes (PostgreSQL only).
async fn refresh_statistics(app: App) {
    on_schedule(
        app,
        "refresh_statistics",
        STATISTICS_EVERY,
        STATISTICS_EVERY,
        |app, _| async move {
            match app.store.refresh_stale_statistics().await {
                Ok(sampled) if !sampled.is_empty() => {
                    tracing::info!(tables = ?sampled, "statistics renewed")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "renewing statistics failed"),
            }
        },
    )
    .await
}

/// Marks the supplies whose loading process died as interrupted, every
/// minute (a live loader's claim keeps its supply out of it).
async fn mark_abandoned_supplies(app: App) {
    on_schedule(
        app,
        "mark_abandoned_supplies",
        STATES_EVERY,
        STATES_EVERY,
        |app, _| async move {
            match crate::supply::mark_abandoned(&app.store).await {
                Ok(round) => {
                    if !round.marked.is_empty() {
                        tracing::warn!(supplies = ?round.marked, "forniture interrotte dall'arresto del processo che le caricava")
                    }
                    for (supply, e) in round.failed {
                        tracing::warn!(supply, error = %e, "marking an abandoned supply failed; retrying next round");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "listing the supplies being loaded failed"),
            }
        },
    )
    .await
}

/// Resumes GPD massive uploads whose process died: at start (a restart
/// picks up what it was doing once the old worker's silence is long
/// enough), then every half minute.
async fn resume_uploads(store: Store, clock: crate::Clock) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        if let Err(e) = crate::upload::resume_stale(&store, clock).await {
            tracing::warn!(error = %e, "resuming GPD uploads failed; retrying later");
        }
    }
}

/// Fetches new reporting flows for every connected Ente and reconciles.
/// The first run is one period after the job is first seen, not at start:
/// a restart loop must not hammer the Node.
async fn fetch_flows_periodically(app: App) {
    on_schedule(
        app,
        "fetch_flows",
        FLOW_FETCH_EVERY,
        FLOW_FETCH_EVERY,
        |app, _| async move {
            fetch_round(&app.store, Utc::now()).await;
        },
    )
    .await
}

/// One round of the flow fetch, reported Ente by Ente.
pub async fn fetch_round(
    store: &Store,
    now: DateTime<Utc>,
) -> Vec<(String, Result<FetchReport, ReconError>)> {
    let results = reconcile::fetch_all(store, now).await;
    for (ente, result) in &results {
        match result {
            Ok(r) if r.taken > 0 || !r.refused.is_empty() => tracing::info!(
                ente = %ente, taken = r.taken, refused = r.refused.len(),
                "flussi di rendicontazione acquisiti dal nodo"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(
                ente = %ente, error = %crate::error::chain(e),
                "acquisizione dei flussi non riuscita"
            ),
        }
    }
    results
}

/// Keeps stored position states in step with time (validity and expiry).
/// Reads never depend on it: they compute the effective state themselves.
async fn refresh_states(app: App) {
    on_schedule(
        app,
        "refresh_states",
        STATES_EVERY,
        Duration::ZERO,
        |app, _| async move {
            match app.store.refresh_time_states(Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(positions = n, "position states moved forward in time"),
                Err(e) => tracing::warn!(error = %e, "refreshing position states failed"),
            }
        },
    )
    .await
}

/// Runs one Ente's share of a job on a task of its own, so that a panic is
/// caught and reported as that Ente's failure instead of ending the job.
pub async fn isolated<T, F>(ente: &str, what: &'static str, work: F) -> Option<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(ente, job = what, error = %e, "job failed for this Ente; the others go on");
            None
        }
    }
}
