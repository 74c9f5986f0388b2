//! incasso's HTTP surface.
//!
//! - `/health`
//! - `/gpd/v1/...`: the GPD-compatible positions API ([`gpd`])
//! - `/api/v1/...`: incasso's own API ([`admin`]), documented at
//!   `/api/openapi.json` and browsable at `/api/docs` (Swagger UI, vendored
//!   into the binary so it works offline)

pub mod admin;
pub mod auth;
pub mod bus_api;
pub mod checkout;
pub mod error;
pub mod export;
pub mod gpd;
pub mod inbox;
pub mod node;
mod node_demand;
pub mod notices;
pub mod recon_api;
pub mod reconcile;
pub mod supply;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use incasso_core::ente::StationLink;
use incasso_store::Store;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// The largest request body accepted. A GPD position with five installments
/// of five transfers each is about 20 KiB; a megabyte leaves ample room for
/// metadata while keeping a hostile client from filling memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub stations: StationCache,
}

impl AppState {
    pub fn new(store: Store) -> AppState {
        AppState {
            store,
            stations: StationCache::default(),
        }
    }
}

/// The Enti's stations, read on every Node request, kept for a few seconds.
/// A station added or removed (possibly by another process) takes effect
/// within [`StationCache::TTL`]; that is the price of not asking the
/// database three times per payment.
type StationEntries = HashMap<String, (Instant, Vec<StationLink>)>;

#[derive(Clone, Default)]
pub struct StationCache {
    entries: Arc<Mutex<StationEntries>>,
}

impl StationCache {
    pub const TTL: Duration = Duration::from_secs(5);

    pub async fn get(
        &self,
        store: &Store,
        ente: &str,
    ) -> Result<Vec<StationLink>, incasso_store::StoreError> {
        if let Some((at, stations)) = self.entries.lock().expect("station cache").get(ente)
            && at.elapsed() < Self::TTL
        {
            return Ok(stations.clone());
        }
        let stations = store.list_stations(ente).await?;
        self.entries
            .lock()
            .expect("station cache")
            .insert(ente.to_string(), (Instant::now(), stations.clone()));
        Ok(stations)
    }
}

pub fn router(state: AppState) -> Router {
    let openapi = admin::ApiDoc::openapi();
    let guard = axum::middleware::from_fn_with_state(state.clone(), auth::tenant_guard);
    Router::new()
        .route("/health", get(health))
        .route("/pagopa/paForNode", axum::routing::post(node::pa_for_node))
        .route(
            "/pay/{fiscalCode}/{noticeNumber}",
            get(checkout::pay_redirect),
        )
        .route(
            "/pay/{fiscalCode}/{noticeNumber}/esito",
            get(checkout::outcome),
        )
        .nest("/gpd/v1", gpd::routes().route_layer(guard.clone()))
        .nest("/api/v1", admin::routes().route_layer(guard))
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(
                serde_json::json!({"status": "UP", "database": format!("{:?}", state.store.dialect())}),
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database not answering");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "DOWN"})),
            )
        }
    }
}

async fn not_found() -> error::ApiError {
    error::ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "risorsa inesistente")
}

/// Serves until `shutdown` completes, then stops accepting and lets the
/// requests in flight finish. Tests pass a listener bound to port 0.
pub async fn serve_with_listener(
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_data_dir(listener, store, None, shutdown).await
}

/// As [`serve_with_listener`], with a data directory whose
/// `inbox/<ente>/<layout>/` folders are watched and `outbox/` filled.
pub async fn serve_with_data_dir(
    listener: TcpListener,
    store: Store,
    data_dir: Option<std::path::PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = tokio::spawn(refresh_states(store.clone()));
    let fetcher = tokio::spawn(fetch_flows_periodically(store.clone()));
    let watcher =
        data_dir.map(|d| tokio::spawn(inbox::run(store.clone(), d, Duration::from_secs(5))));
    let app = router(AppState::new(store));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    refresher.abort();
    fetcher.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    result
}

/// How often reporting flows are fetched from the Node. PSPs publish them
/// once a day (and may correct them until D+4); hourly is ample, and the
/// API fetches on demand.
const FLOW_FETCH_EVERY: Duration = Duration::from_secs(3600);

/// Fetches new reporting flows for every connected Ente and reconciles.
/// The first run is one period after start, not at start: a restart loop
/// must not hammer the Node.
async fn fetch_flows_periodically(store: Store) {
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + FLOW_FETCH_EVERY,
        FLOW_FETCH_EVERY,
    );
    loop {
        tick.tick().await;
        for (ente, result) in reconcile::fetch_all(&store, chrono::Utc::now()).await {
            match result {
                Ok(r) if r.taken > 0 || !r.refused.is_empty() => tracing::info!(
                    ente = %ente, taken = r.taken, refused = r.refused.len(),
                    "flussi di rendicontazione acquisiti dal nodo"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(ente = %ente, error = %e, "acquisizione dei flussi non riuscita")
                }
            }
        }
    }
}

/// Keeps stored position states in step with time (validity and expiry).
/// Reads never depend on it: they compute the effective state themselves.
async fn refresh_states(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match store.refresh_time_states(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(positions = n, "position states moved forward in time"),
            Err(e) => tracing::warn!(error = %e, "refreshing position states failed"),
        }
    }
}
