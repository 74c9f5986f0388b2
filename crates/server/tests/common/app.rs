//! The fixture of the GPD API tests (`gpd_v2`, `gpd_v3`, `gpd_upload`):
//! incasso served on a loopback port of its own, on a fresh database with
//! Ente A ([`ENTE`](gpd::ENTE)) and Ente B ([`OTHER_ENTE`](gpd::OTHER_ENTE)),
//! each with a station of [`BROKER`](gpd::BROKER) and an Ente key. The
//! Enti, positions and files are `gpd.rs`'s, the server `schemathesis.rs`'s;
//! each test adds its own calls in an `impl TestApp` of its own.
//!
//! Include it with `#[path = "common/app.rs"] mod app;` and reach the
//! other two through it (`app::gpd`, `app::schemathesis_tool`).

#[path = "gpd.rs"]
pub mod gpd;
#[path = "schemathesis.rs"]
#[allow(dead_code)] // only its server is used here: these tests run no schemathesis
pub mod schemathesis_tool;

use chrono::{Duration, NaiveDate, Utc};
use incasso_store::Store;
use incasso_testkit::Backend;
use schemathesis_tool::{Server, serve};

/// incasso with Ente A and Ente B, and a key of each.
pub struct TestApp {
    /// incasso on its port; its own key (for [`Server::send`]) is Ente A's.
    pub server: Server,
    pub key_a: String,
    pub key_b: String,
    /// The database incasso serves, for what a test writes around the API.
    pub store: Store,
    pub backend: Backend,
}

/// A fresh database on `backend` with Ente A (station `ST_01`, segregation
/// code 1) and Ente B (`ST_02`, 2), served.
pub async fn spawn_app(backend: Backend) -> TestApp {
    let (store, keys) = gpd::enti(backend, &[gpd::ENTE, gpd::OTHER_ENTE]).await;
    let server = serve(store.clone(), keys[0].clone(), "").await;
    TestApp {
        server,
        key_a: keys[0].clone(),
        key_b: keys[1].clone(),
        store,
        backend,
    }
}

/// `days` from now, as GPD's dates are sent (RFC 3339).
pub fn due(days: i64) -> String {
    (Utc::now() + Duration::days(days)).to_rfc3339()
}

/// Today in Rome, where incasso's days begin.
pub fn today() -> NaiveDate {
    incasso_core::time::to_rome(Utc::now()).date()
}
