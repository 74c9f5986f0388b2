//! Faults incasso must survive without a restart: its PostgreSQL going
//! away and coming back. The database is reached through a TCP proxy the
//! test can cut, which is what a restarting PostgreSQL looks like from
//! incasso: connections dropped, new ones refused.

use crate::common::app::gpd::{self, ENTE};
use crate::common::app::schemathesis_tool::serve;
use incasso_pagopa::wire::{self, QrCode};
use incasso_store::Store;
use incasso_testkit::{Backend, backends, fresh_database_url};
use reqwest::{Method, StatusCode};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy to PostgreSQL on a port of its own, that can be cut (every
/// connection dropped, new ones refused) and restored on the same port.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    running: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut p = Proxy {
            addr,
            target,
            running: None,
        };
        p.run(listener);
        p
    }

    fn run(&mut self, listener: TcpListener) {
        let target = self.target;
        self.running = Some(tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                links.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// PostgreSQL gone: the listener and every link aborted (dropping the
    /// `JoinSet` aborts the links it holds).
    async fn cut(&mut self) {
        if let Some(r) = self.running.take() {
            r.abort();
            let _ = r.await;
        }
    }

    /// PostgreSQL back, on the same port.
    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.run(listener);
    }
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let (start, end) = host_span(url);
    format!("{}{addr}{}", &url[..start], &url[end..])
}

/// Where the host and port of `scheme://[user:password@]host[:port]/...`
/// begin and end.
fn host_span(url: &str) -> (usize, usize) {
    let scheme_end = url.find("://").unwrap() + 3;
    let start = url[scheme_end..]
        .find('@')
        .map(|i| scheme_end + i + 1)
        .unwrap_or(scheme_end);
    let end = url[start..]
        .find('/')
        .map(|i| start + i)
        .unwrap_or(url.len());
    (start, end)
}

/// The host and port of a PostgreSQL URL.
async fn address_of(url: &str) -> SocketAddr {
    let (start, end) = host_span(url);
    let hostport = &url[start..end];
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    tokio::net::lookup_host(hostport)
        .await
        .unwrap()
        .next()
        .unwrap()
}

#[tokio::test]
async fn postgresql_away_is_answered_at_once_and_incasso_recovers_by_itself() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let url = fresh_database_url(Backend::Postgres).await;
    // Migrated and seeded directly; then served through the proxy only.
    let (direct, keys) = gpd::enti_at(&url, &[ENTE]).await;
    direct.close().await;
    let mut proxy = Proxy::start(address_of(&url).await).await;
    let store = Store::connect(&through(&url, proxy.addr)).await.unwrap();
    let server = serve(store, keys[0].clone(), "/gpd/v1").await;
    let client = reqwest::Client::new();
    let soap = |body: String| {
        client
            .post(format!("{}/pagopa/paForNode", server.base))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body)
            .send()
    };
    let probe = |path: &'static str| {
        let request = client.get(format!("{}{path}", server.base)).send();
        async move { request.await.unwrap().status() }
    };
    let position = || {
        server.call(
            Method::GET,
            "/organizations/80000130585/debtpositions/AWAY-1",
            Some(&keys[0]),
            None,
        )
    };
    let verify = wire::node::verify_request(
        &gpd::node_header(),
        &QrCode {
            fiscal_code: ENTE.into(),
            notice_number: gpd::nav(1),
        },
    );

    server
        .send(
            Method::POST,
            "/organizations/80000130585/debtpositions?toPublish=true",
            Some(&gpd::position("AWAY-1", &[gpd::iuv(1)])),
        )
        .await;
    assert_eq!(probe("/ready").await, StatusCode::OK);
    let answer =
        wire::node::parse_response(&soap(verify.clone()).await.unwrap().bytes().await.unwrap())
            .unwrap();
    assert!(answer.is_ok(), "{:?}", answer.fault);

    proxy.cut().await;
    // The API: 503 with Retry-After, in the pool's wait, not 30 s.
    let began = Instant::now();
    let away = position().await;
    let waited = began.elapsed();
    assert_eq!(
        away.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        away.text
    );
    assert_eq!(away.json["code"], "DATABASE_UNAVAILABLE", "{}", away.text);
    assert_eq!(away.headers.get("retry-after").unwrap(), "5");
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );
    // The Node: PAA_SYSTEM_ERROR, a valid SOAP answer, as quickly.
    let began = Instant::now();
    let text = soap(verify.clone()).await.unwrap().text().await.unwrap();
    let waited = began.elapsed();
    let answer = wire::node::parse_response(text.as_bytes()).unwrap();
    assert_eq!(answer.fault_code(), Some("PAA_SYSTEM_ERROR"), "{text}");
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );
    // Probes: alive, not ready.
    assert_eq!(probe("/health").await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(probe("/ready").await, StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore().await;
    // Back without a restart: the pool reconnects at the next request.
    let mut back = None;
    for _ in 0..50 {
        let a = position().await;
        if a.status == StatusCode::OK {
            back = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let back = back.expect("incasso did not recover once PostgreSQL was back");
    assert_eq!(back.json["iupd"], "AWAY-1");
    let answer =
        wire::node::parse_response(&soap(verify).await.unwrap().bytes().await.unwrap()).unwrap();
    assert!(answer.is_ok(), "{:?}", answer.fault);
    assert_eq!(probe("/ready").await, StatusCode::OK);
}

#[tokio::test]
async fn ready_means_every_migration_is_applied() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        // Not migrated: alive, not ready.
        let bare = Store::connect_without_migrating(&url).await.unwrap();
        let server = serve(bare.clone(), String::new(), "").await;
        let client = reqwest::Client::new();
        let ready = client
            .get(format!("{}/ready", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            ready.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{backend:?}"
        );
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["code"], "MIGRATIONS_PENDING", "{backend:?}");
        let health = client
            .get(format!("{}/health", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK, "{backend:?}");
        // Migrated by another process: ready.
        Store::connect(&url).await.unwrap().close().await;
        let ready = client
            .get(format!("{}/ready", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "{backend:?}");
    }
}
