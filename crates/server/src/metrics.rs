//! `GET /metrics`, in Prometheus' text format (version 0.0.4).
//!
//! Counted here, in the process: HTTP requests by route template, method
//! and status, and the Node's primitives by outcome (OK or the fault
//! code), each with a latency histogram. Read from the database at each
//! scrape (`app::ops::snapshot`): the outboxes' depth and the age of their
//! oldest row, supplies and rows by status, anomalies by class, the
//! database pools' use. A handful of families, written by hand: a metrics
//! crate would bring a registry and exporter for what fits in this file.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    /// Observations at or under each bound (not yet cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The process's counters.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    node: Mutex<BTreeMap<(&'static str, String), Histogram>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// A Node primitive answered: `outcome` is `OK` or the fault code.
    pub fn node(&self, primitive: &'static str, outcome: &str, seconds: f64) {
        lock(&self.node)
            .entry((primitive, outcome.to_string()))
            .or_default()
            .observe(seconds);
    }

    fn http(&self, route: &str, method: &str, status: u16, seconds: f64) {
        lock(&self.http)
            .entry((route.to_string(), method.to_string(), status))
            .or_default()
            .observe(seconds);
    }
}

/// Times every routed request under its route's template (never the
/// path itself: no fiscal code or notice number becomes a label).
pub async fn track(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.http(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (String, Histogram)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (labels, h) in series {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
    }
}

fn gauge(out: &mut String, name: &str, help: &str, series: &[(String, i64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in series {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The scrape.
pub async fn render(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    let http: Vec<_> = lock(&state.metrics.http)
        .iter()
        .map(|((route, method, status), h)| {
            (
                format!(
                    "route=\"{}\",method=\"{}\",status=\"{status}\"",
                    escape(route),
                    escape(method)
                ),
                h.clone(),
            )
        })
        .collect();
    histogram(
        &mut out,
        "incasso_http_request_duration_seconds",
        "HTTP requests by route template, method and status.",
        http.into_iter(),
    );
    let node: Vec<_> = lock(&state.metrics.node)
        .iter()
        .map(|((primitive, outcome), h)| {
            (
                format!("primitive=\"{primitive}\",outcome=\"{}\"", escape(outcome)),
                h.clone(),
            )
        })
        .collect();
    histogram(
        &mut out,
        "incasso_node_primitive_duration_seconds",
        "paForNode primitives answered, by outcome (OK or the fault code).",
        node.into_iter(),
    );
    match incasso_app::ops::snapshot(&state.app).await {
        Ok(s) => {
            let now_us = chrono::Utc::now().timestamp_micros();
            let waiting: Vec<_> = s
                .outboxes
                .iter()
                .map(|o| (format!("outbox=\"{}\"", o.outbox), o.waiting))
                .collect();
            gauge(
                &mut out,
                "incasso_outbox_waiting",
                "Rows of each outbox waiting to be sent or being sent.",
                &waiting,
            );
            let age: Vec<_> = s
                .outboxes
                .iter()
                .map(|o| {
                    (
                        format!("outbox=\"{}\"", o.outbox),
                        o.oldest_created_at
                            .map_or(0, |t| (now_us - t).max(0) / 1_000_000),
                    )
                })
                .collect();
            gauge(
                &mut out,
                "incasso_outbox_oldest_age_seconds",
                "Age of each outbox's oldest waiting row (0 when none waits).",
                &age,
            );
            let by_status = |f: fn(&incasso_store::SupplyGauge) -> i64| -> Vec<(String, i64)> {
                s.supplies
                    .iter()
                    .map(|g| (format!("status=\"{}\"", escape(&g.status)), f(g)))
                    .collect()
            };
            gauge(
                &mut out,
                "incasso_supplies",
                "Supply files by status.",
                &by_status(|g| g.supplies),
            );
            gauge(
                &mut out,
                "incasso_supply_rows_read",
                "Rows read from supply files, by the supply's status.",
                &by_status(|g| g.rows_read),
            );
            gauge(
                &mut out,
                "incasso_supply_rows_loaded",
                "Rows loaded from supply files, by the supply's status.",
                &by_status(|g| g.rows_loaded),
            );
            gauge(
                &mut out,
                "incasso_supply_rows_rejected",
                "Rows rejected from supply files, by the supply's status.",
                &by_status(|g| g.rows_rejected),
            );
            let classes = |v: &[(String, i64)]| -> Vec<(String, i64)> {
                v.iter()
                    .map(|(c, n)| (format!("class=\"{}\"", escape(c)), *n))
                    .collect()
            };
            gauge(
                &mut out,
                "incasso_reconciliation_anomalies",
                "Open reconciliation anomalies by class.",
                &classes(&s.recon_anomalies),
            );
            gauge(
                &mut out,
                "incasso_receipt_anomalies",
                "Receipts flagged for a person, by anomaly.",
                &classes(&s.receipt_anomalies),
            );
            let open: Vec<_> = s
                .pools
                .iter()
                .map(|(p, size, _)| (format!("pool=\"{p}\""), i64::from(*size)))
                .collect();
            let idle: Vec<_> = s
                .pools
                .iter()
                .map(|(p, _, idle)| (format!("pool=\"{p}\""), i64::from(*idle)))
                .collect();
            gauge(
                &mut out,
                "incasso_db_connections_open",
                "Database connections open, by pool.",
                &open,
            );
            gauge(
                &mut out,
                "incasso_db_connections_idle",
                "Database connections idle, by pool.",
                &idle,
            );
            let _ = writeln!(
                out,
                "# HELP incasso_wal_flushes_total WAL flushes made so that acknowledged writes survive a power cut (SQLite).\n\
                 # TYPE incasso_wal_flushes_total counter\n\
                 incasso_wal_flushes_total {}",
                s.wal_flushes
            );
            gauge(
                &mut out,
                "incasso_database_up",
                "1 when the database answered this scrape.",
                &[(String::new(), 1)],
            );
        }
        Err(e) => {
            tracing::warn!(code = e.code, "metrics: database not read");
            gauge(
                &mut out,
                "incasso_database_up",
                "1 when the database answered this scrape.",
                &[(String::new(), 0)],
            );
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
