//! The citizen portal's per-client limits over HTTP, on both databases,
//! at their production settings (lookups 30 a minute with a burst of 20,
//! creations 5 a minute with a burst of 3): the lookup after the burst is
//! answered 429 with `Retry-After` and an Italian page in the portal's
//! frame, and spends the budget of the PDF too; another client is not
//! touched; `X-Forwarded-For` names the client only when the peer is a
//! trusted proxy, so a client cannot escape its limit by making addresses
//! up; pages that look nothing up are never limited.

use crate::common::app::gpd;
use crate::common::portal;

use gpd::ENTE;
use incasso_server::portal::limit::LimitSettings;
use incasso_testkit::backends;
use reqwest::StatusCode;

/// incasso on a fresh database with one Ente, with `limits`.
async fn serve(backend: incasso_testkit::Backend, limits: LimitSettings) -> String {
    incasso_pagopa::connector::install_crypto_provider();
    let (store, _) = gpd::enti(backend, &[ENTE]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = incasso_app::App::new(store, incasso_app::Settings::new(&base));
    let state = incasso_server::AppState::new(app).with_limits(limits);
    tokio::spawn(incasso_server::serve_state(
        listener,
        state,
        std::future::pending(),
    ));
    base
}

/// A visitor whose requests say they come, through a proxy, from `address`.
struct Client {
    http: reqwest::Client,
    base: String,
    address: &'static str,
    cookie: String,
    csrf: String,
}

/// A notice number nobody issued: the lookup is made (and counted) and
/// is refused by the field (400 or 404), not by the limit.
const UNKNOWN: &str = "301000000000000017";

impl Client {
    async fn new(base: &str, address: &'static str) -> Client {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut c = Client {
            http,
            base: base.to_string(),
            address,
            cookie: String::new(),
            csrf: String::new(),
        };
        // The form: its token, in the cookie and in the page.
        let resp = c.get(&format!("/portale/{ENTE}/avviso")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let body = resp.text().await.unwrap();
        c.cookie = cookie;
        c.csrf = body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a form token")
            .to_string();
        c
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("x-forwarded-for", self.address)
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all = fields.to_vec();
        all.push(("csrf", &self.csrf));
        self.http
            .post(format!("{}{path}", self.base))
            .header("x-forwarded-for", self.address)
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(portal::form(&all))
            .send()
            .await
            .unwrap()
    }

    async fn look_up(&self) -> reqwest::Response {
        self.post(
            &format!("/portale/{ENTE}/avviso"),
            &[("codice", UNKNOWN), ("ente", ENTE)],
        )
        .await
    }
}

/// The lookup was made and refused by the field, not by the limit.
fn assert_looked_up(status: StatusCode, what: &str) {
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
        "{what}: {status}"
    );
}

/// A 429 as the portal gives it: `Retry-After` in whole seconds (one
/// lookup's interval at most, two seconds at 30 a minute), and the page in
/// the portal's frame saying when to try again.
async fn assert_too_many(resp: reqwest::Response, most: u64) {
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let after: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=most).contains(&after), "Retry-After {after}");
    let body = resp.text().await.unwrap();
    let unit = if after == 1 { "secondo" } else { "secondi" };
    assert!(
        body.contains(&format!("Troppe richieste: riprovare tra {after} {unit}")),
        "{body}"
    );
    assert!(body.contains("data-element=\"breadcrumb\""), "the frame");
    assert!(body.contains("Comune di prova 1"), "the Ente's name");
}

#[tokio::test]
async fn a_client_past_its_burst_waits_and_others_do_not() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        let mut limits = LimitSettings::default();
        limits.set_trusted_proxies("127.0.0.1").unwrap();
        let burst = limits.lookup.burst;
        let base = serve(backend, limits).await;
        let a = Client::new(&base, "198.51.100.1").await;
        for i in 0..burst {
            assert_looked_up(a.look_up().await.status(), &format!("lookup {i}"));
        }
        assert_too_many(a.look_up().await, 2).await;
        // The notice's PDF draws on the same budget.
        let pdf = a
            .post(
                &format!("/portale/{ENTE}/avviso/pdf"),
                &[("codice", UNKNOWN), ("ente", ENTE)],
            )
            .await;
        assert_too_many(pdf, 2).await;
        // Pages that look nothing up are not limited.
        for path in ["/", "/avviso", "/carrello", "/privacy"] {
            let resp = a.get(&format!("/portale/{ENTE}{path}")).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
        }
        // Another client, through the same proxy, has its whole burst.
        let b = Client::new(&base, "198.51.100.2").await;
        for i in 0..burst {
            assert_looked_up(b.look_up().await.status(), &format!("B's lookup {i}"));
        }
        // A's IPv6 neighbour in the same /64 is the same client; another
        // /64 is not.
        let c = Client::new(&base, "2001:db8:1:2::1").await;
        let d = Client::new(&base, "2001:db8:1:2::2").await;
        let e = Client::new(&base, "2001:db8:1:3::1").await;
        for _ in 0..burst {
            assert_looked_up(c.look_up().await.status(), "");
        }
        assert_too_many(d.look_up().await, 2).await;
        assert_looked_up(e.look_up().await.status(), "");

        // Sending the cart to Checkout has a budget of its own: three at
        // once, then one each 12 seconds. (The cart is empty: the answer
        // is the cart page's refusal, after the limit's check.)
        let f = Client::new(&base, "198.51.100.3").await;
        for i in 0..3 {
            let resp = f.post(&format!("/portale/{ENTE}/carrello/paga"), &[]).await;
            assert_ne!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "pay {i}");
        }
        assert_too_many(
            f.post(&format!("/portale/{ENTE}/carrello/paga"), &[]).await,
            12,
        )
        .await;
        // Its lookups are untouched.
        assert_looked_up(f.look_up().await.status(), "");
    }
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    for backend in backends() {
        eprintln!("on {backend:?}");
        // No trusted proxy: the peer (loopback) is the client, whatever
        // the header says.
        let base = serve(backend, LimitSettings::default()).await;
        let burst = LimitSettings::default().lookup.burst;
        let a = Client::new(&base, "198.51.100.1").await;
        for _ in 0..burst {
            assert_looked_up(a.look_up().await.status(), "");
        }
        let b = Client::new(&base, "198.51.100.2").await;
        assert_too_many(b.look_up().await, 2).await;
        // A proxy that is trusted, but a forged address left of the one it
        // wrote proves nothing: the client is the rightmost.
        let mut limits = LimitSettings::default();
        limits.set_trusted_proxies("127.0.0.1").unwrap();
        let base = serve(backend, limits).await;
        let honest = Client::new(&base, "198.51.100.9").await;
        for _ in 0..burst {
            assert_looked_up(honest.look_up().await.status(), "");
        }
        let forging = Client::new(&base, "203.0.113.77, 198.51.100.9").await;
        assert_too_many(forging.look_up().await, 2).await;
    }
}
