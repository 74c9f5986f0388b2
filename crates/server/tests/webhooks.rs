//! Webhooks end to end over HTTP, on every backend: an Ente's
//! administrator registers the simulator's receiver through the API,
//! notices are paid through the simulated Node, and the receiver checks
//! every signature as a receiver would; failures are retried, a 202 is
//! acknowledged through the ack door, whose refusals are checked one by
//! one; an application's key may not register.

// Shared fixtures: this test uses part of them.
use crate::common::app;
use crate::common::pay_world;

use app::gpd::{ENTE, OTHER_ENTE};
use incasso_simulator::webhooks::{ReceiverReport, ReceiverSettings, sign};
use incasso_store::KeyScope;
use incasso_testkit::backends;
use pay_world::world;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, url);
    if let Some(k) = key {
        req = req.header("Ocp-Apim-Subscription-Key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The receiver's report once `done` holds, or after 30 s.
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    done: impl Fn(&ReceiverReport) -> bool,
) -> ReceiverReport {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report: ReceiverReport = client.get(url).send().await.unwrap().json().await.unwrap();
        if done(&report) || Instant::now() > deadline {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ack(
    client: &reqwest::Client,
    base: &str,
    body: &[u8],
    sig: Option<&str>,
) -> (u16, String) {
    let mut req = client
        .post(format!("{base}/api/v1/webhooks/ack"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(s) = sig {
        req = req.header("X-Incasso-Signature", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    (status, v["code"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_reach_the_receiver_signed_retried_and_acknowledged() {
    for backend in backends() {
        let w = world(backend).await;
        let http = reqwest::Client::new();
        let base = w.base().to_string();
        let (_, admin) = incasso_app::keys::issue_key(
            &w.app.store,
            Some(ENTE),
            KeyScope::EnteAdmin,
            "amministrazione",
        )
        .await
        .unwrap();
        let hooks = format!("{base}/api/v1/enti/{ENTE}/webhooks");
        let receiver = format!("{}/simulator/webhooks/gestionale", w.sim_url);

        // An application's key may not register; another Ente's neither.
        let body = json!({"url": receiver, "description": "gestionale"});
        let (s, v) = send(
            &http,
            reqwest::Method::POST,
            &hooks,
            Some(&w.app.key_a),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("FORBIDDEN_SCOPE"))
        );
        let (s, _) = send(
            &http,
            reqwest::Method::POST,
            &hooks,
            Some(&w.app.key_b),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let bad = json!({"url": "http://gestionale.example.it/hook"});
        let (s, v) = send(
            &http,
            reqwest::Method::POST,
            &hooks,
            Some(&admin),
            Some(bad),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("BAD_WEBHOOK_URL"))
        );

        let (s, reg) = send(
            &http,
            reqwest::Method::POST,
            &hooks,
            Some(&admin),
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{backend:?}: {reg}");
        let secret = reg["secret"].as_str().unwrap().to_string();
        let id = reg["id"].as_i64().unwrap();
        let (s, v) = send(
            &http,
            reqwest::Method::POST,
            &hooks,
            Some(&admin),
            Some(body),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::CONFLICT, Some("WEBHOOK_URL_REGISTERED"))
        );

        // Under an idempotency key a retry after a lost answer gets the
        // same endpoint and its secret again; the key for another body is
        // refused; once the endpoint is deleted the key says so.
        let keyed = |body: Value| {
            http.post(&hooks)
                .header("Ocp-Apim-Subscription-Key", &admin)
                .header("Idempotency-Key", "registra-gestionale-2")
                .json(&body)
                .send()
        };
        let second = json!({"url": format!("{receiver}-2"), "description": "secondo"});
        let first = keyed(second.clone()).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(first.headers().get("idempotent-replayed").is_none());
        let first: Value = first.json().await.unwrap();
        let again = keyed(second.clone()).await.unwrap();
        assert_eq!(again.status(), StatusCode::CREATED, "{backend:?}");
        assert_eq!(
            again
                .headers()
                .get("idempotent-replayed")
                .map(|v| v.as_bytes()),
            Some(&b"true"[..])
        );
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["id"], first["id"], "{again}");
        assert_eq!(again["secret"], first["secret"], "the same secret again");
        let other = keyed(json!({"url": format!("{receiver}-2"), "description": "altro"}))
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::CONFLICT);
        let other: Value = other.json().await.unwrap();
        assert_eq!(other["code"], "IDEMPOTENCY_KEY_REUSED", "{other}");
        let (s, _) = send(
            &http,
            reqwest::Method::DELETE,
            &format!("{hooks}/{}", first["id"]),
            Some(&admin),
            None,
        )
        .await;
        assert!(s.is_success(), "{s}");
        let gone = keyed(second).await.unwrap();
        assert_eq!(gone.status(), StatusCode::CONFLICT);
        let gone: Value = gone.json().await.unwrap();
        assert_eq!(gone["code"], "WEBHOOK_DELETED", "{gone}");

        let (s, list) = send(&http, reqwest::Method::GET, &hooks, Some(&admin), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert!(list[0].get("secret").is_none(), "the secret is shown once");

        // The receiver knows the secret and fails the first two.
        let settings = ReceiverSettings {
            secret: Some(secret.clone()),
            fail_next: 2,
            ..Default::default()
        };
        let put = http.put(&receiver).json(&settings).send().await.unwrap();
        assert!(put.status().is_success());

        let a = w.notice(ENTE, "WH-A", 5_000, 30).await;
        let b = w.notice(ENTE, "WH-B", 7_000, 30).await;
        w.sim.pay(ENTE, &a.nav).await.unwrap();
        w.sim.pay(ENTE, &b.nav).await.unwrap();
        let report = wait_for(&http, &receiver, |r| r.events >= 2).await;
        assert_eq!(report.events, 2, "{backend:?}: {report:?}");
        assert_eq!(report.rejected, 0, "every signature verified");
        let answered: Vec<u16> = report.deliveries.iter().map(|d| d.answered).collect();
        assert_eq!(&answered[..2], &[500, 500], "{answered:?}");
        let paid: Vec<&str> = report
            .deliveries
            .iter()
            .filter(|d| d.answered == 200)
            .map(|d| d.notice_number.as_deref().unwrap())
            .collect();
        assert_eq!(paid.len(), 2);
        assert!(paid.contains(&a.nav.as_str()) && paid.contains(&b.nav.as_str()));
        for d in &report.deliveries {
            assert_eq!(d.kind, "PAID");
            assert_eq!(d.body["organizationFiscalCode"], ENTE);
            assert!(d.body["data"]["receiptId"].is_string());
        }
        let deliveries = format!("{hooks}/{id}/deliveries");
        let listed = wait_for_delivered(&http, &deliveries, &admin, 2).await;
        assert!(
            listed.iter().all(|d| d["status"] == "DELIVERED"),
            "{listed:?}"
        );
        assert!(listed.iter().all(|d| d["attempts"].as_i64().unwrap() >= 2));

        // A receiver that answers 202 acknowledges through the door.
        let settings = ReceiverSettings {
            secret: Some(secret.clone()),
            ack_later: true,
            ack_delay_ms: 50,
            ..Default::default()
        };
        http.put(&receiver).json(&settings).send().await.unwrap();
        let c = w.notice(ENTE, "WH-C", 9_000, 30).await;
        w.sim.pay(ENTE, &c.nav).await.unwrap();
        let report = wait_for(&http, &receiver, |r| !r.acks.is_empty()).await;
        assert_eq!(report.acks, vec![200], "{backend:?}: {report:?}");
        let acked = report.deliveries.last().unwrap().clone();
        assert_eq!(acked.answered, 202);
        let listed = wait_for_delivered(&http, &deliveries, &admin, 3).await;
        let row = listed
            .iter()
            .find(|d| d["id"] == acked.delivery_id)
            .unwrap();
        assert_eq!(row["status"], "DELIVERED");
        assert!(row["acknowledgedAt"].is_string());

        // The door's refusals.
        let ts = chrono::Utc::now().timestamp();
        let signed = |delivery: i64, ts: i64, secret: &str| {
            let body =
                serde_json::to_vec(&json!({"deliveryId": delivery, "timestamp": ts})).unwrap();
            let sig = sign(secret, ts, &body);
            (body, sig)
        };
        let (body, sig) = signed(acked.delivery_id, ts, &secret);
        assert_eq!(
            ack(&http, &base, &body, None).await,
            (401, "WEBHOOK_SIGNATURE_MISSING".into())
        );
        let (_, wrong) = signed(acked.delivery_id, ts, "whsec_not_it");
        assert_eq!(
            ack(&http, &base, &body, Some(&wrong)).await,
            (401, "WEBHOOK_SIGNATURE_INVALID".into())
        );
        assert_eq!(
            ack(&http, &base, &body, Some(&sig)).await,
            (409, "WEBHOOK_ACK_REPLAYED".into())
        );
        let first = report.deliveries[0].delivery_id;
        let (old, old_sig) = signed(first, ts - 600, &secret);
        assert_eq!(
            ack(&http, &base, &old, Some(&old_sig)).await,
            (409, "WEBHOOK_ACK_STALE".into())
        );
        assert_eq!(
            ack(&http, &base, b"{}", Some(&sig)).await,
            (400, "BAD_ACK".into())
        );

        // Turned off, then removed.
        let (s, v) = send(
            &http,
            reqwest::Method::PATCH,
            &format!("{hooks}/{id}"),
            Some(&admin),
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!((s, v["active"].as_bool()), (StatusCode::OK, Some(false)));
        let (s, _) = send(
            &http,
            reqwest::Method::DELETE,
            &format!("{hooks}/{id}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let other = format!("{base}/api/v1/enti/{OTHER_ENTE}/webhooks");
        let (s, _) = send(&http, reqwest::Method::GET, &other, Some(&admin), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // The document states the scheme and the door's want of a key.
        let doc: Value = http
            .get(format!("{base}/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let door = &doc["paths"]["/api/v1/webhooks/ack"]["post"];
        assert_eq!(door["security"], json!([{}]), "{door}");
        assert!(door["responses"]["409"].is_object());
        assert!(doc["paths"]["/api/v1/enti/{fiscalCode}/webhooks"]["post"].is_object());
        let tag = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "webhooks")
            .unwrap();
        assert!(
            tag["description"]
                .as_str()
                .unwrap()
                .contains("X-Incasso-Signature")
        );
    }
}

/// The endpoint's deliveries once `n` are DELIVERED (or after 30 s).
async fn wait_for_delivered(http: &reqwest::Client, url: &str, key: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = send(http, reqwest::Method::GET, url, Some(key), None).await;
        let list = v.as_array().cloned().unwrap_or_default();
        let delivered = list.iter().filter(|d| d["status"] == "DELIVERED").count();
        if delivered >= n || Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A paused endpoint misses nothing: the events of the pause (PAID and
/// REPORTED of several positions) are queued, none is sent while it is
/// paused, and once resumed each arrives once, a position's in order; the
/// Ente's events feed lists the same events, pages by `after`, and no
/// other Ente's key reads it. Deleting the endpoint drops its queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_endpoint_misses_nothing_and_the_feed_is_the_entes_own() {
    for backend in backends() {
        let w = world(backend).await;
        let http = reqwest::Client::new();
        let base = w.base().to_string();
        let (_, admin) = incasso_app::keys::issue_key(
            &w.app.store,
            Some(ENTE),
            KeyScope::EnteAdmin,
            "amministrazione",
        )
        .await
        .unwrap();
        let hooks = format!("{base}/api/v1/enti/{ENTE}/webhooks");
        let receiver = format!("{}/simulator/webhooks/pausa", w.sim_url);
        let (s, reg) = send(
            &http,
            reqwest::Method::POST,
            &hooks,
            Some(&admin),
            Some(json!({"url": receiver, "description": "gestionale in pausa"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{backend:?}: {reg}");
        let id = reg["id"].as_i64().unwrap();
        let settings = ReceiverSettings {
            secret: Some(reg["secret"].as_str().unwrap().to_string()),
            ..Default::default()
        };
        http.put(&receiver).json(&settings).send().await.unwrap();
        let endpoint = format!("{hooks}/{id}");

        // Before the pause: delivered as usual.
        let a = w.notice(ENTE, "PZ-A", 1_000, 30).await;
        w.sim.pay(ENTE, &a.nav).await.unwrap();
        let report = wait_for(&http, &receiver, |r| r.events >= 1).await;
        assert_eq!(report.events, 1, "{backend:?}: {report:?}");

        // Paused: two payments, the flows reporting all three, and a
        // payment at the other Ente.
        let (s, v) = send(
            &http,
            reqwest::Method::PATCH,
            &endpoint,
            Some(&admin),
            Some(json!({"active": false})),
        )
        .await;
        assert_eq!((s, v["active"].as_bool()), (StatusCode::OK, Some(false)));
        let b = w.notice(ENTE, "PZ-B", 2_000, 30).await;
        let c = w.notice(ENTE, "PZ-C", 3_000, 30).await;
        let d = w.notice(OTHER_ENTE, "PZ-D", 4_000, 30).await;
        for (fc, n) in [(ENTE, &b), (ENTE, &c), (OTHER_ENTE, &d)] {
            w.sim.pay(fc, &n.nav).await.unwrap();
        }
        assert!(!w.sim.publish_flows().is_empty());
        let fetched = incasso_app::reconcile::fetch_all(&w.app.store, chrono::Utc::now()).await;
        assert!(fetched.iter().all(|(_, r)| r.is_ok()), "{fetched:?}");

        // The feed: the Ente's events, PAID and REPORTED, by id.
        let feed_url = format!("{base}/api/v1/enti/{ENTE}/events");
        let (s, feed) = send(
            &http,
            reqwest::Method::GET,
            &format!("{feed_url}?after=0&limit=1000"),
            Some(&w.app.key_a),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{backend:?}: {feed}");
        let feed = feed.as_array().unwrap().clone();
        let kinds: Vec<(String, String)> = feed
            .iter()
            .map(|e| {
                (
                    e["iupd"].as_str().unwrap().to_string(),
                    e["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for iupd in ["PZ-A", "PZ-B", "PZ-C"] {
            for kind in ["PAID", "REPORTED"] {
                assert!(
                    kinds.contains(&(iupd.to_string(), kind.to_string())),
                    "{backend:?}: {iupd} {kind} in the feed: {kinds:?}"
                );
            }
        }
        assert!(
            feed.iter().all(|e| e["organizationFiscalCode"] == ENTE),
            "{feed:?}"
        );
        let ids: Vec<i64> = feed
            .iter()
            .map(|e| e["eventId"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|p| p[0] < p[1]), "by id: {ids:?}");
        // Paged by the last id read.
        let (_, page) = send(
            &http,
            reqwest::Method::GET,
            &format!("{feed_url}?after={}&limit=2", ids[0]),
            Some(&w.app.key_a),
            None,
        )
        .await;
        let paged: Vec<i64> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["eventId"].as_i64().unwrap())
            .collect();
        assert_eq!(paged, ids[1..3], "{backend:?}");
        let (s, v) = send(
            &http,
            reqwest::Method::GET,
            &format!("{feed_url}?limit=0"),
            Some(&w.app.key_a),
            None,
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("BAD_LIMIT"))
        );
        // Another Ente's key never reads them; its own feed has only its own.
        let (s, _) = send(
            &http,
            reqwest::Method::GET,
            &feed_url,
            Some(&w.app.key_b),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{backend:?}");
        let (s, theirs) = send(
            &http,
            reqwest::Method::GET,
            &format!("{base}/api/v1/enti/{OTHER_ENTE}/events?limit=1000"),
            Some(&w.app.key_b),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let theirs = theirs.as_array().unwrap();
        assert!(
            theirs.iter().any(|e| e["iupd"] == "PZ-D"),
            "{backend:?}: {theirs:?}"
        );
        assert!(
            theirs
                .iter()
                .all(|e| e["organizationFiscalCode"] == OTHER_ENTE
                    && !ids.contains(&e["eventId"].as_i64().unwrap())),
            "{theirs:?}"
        );

        // Nothing is sent while paused, but it is queued.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let report = wait_for(&http, &receiver, |_| true).await;
        assert_eq!(report.deliveries.len(), 1, "{backend:?}: sent while paused");
        let waiting = ids.len() - 1;
        let (_, listed) = send(
            &http,
            reqwest::Method::GET,
            &format!("{endpoint}/deliveries"),
            Some(&admin),
            None,
        )
        .await;
        let pending = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "PENDING")
            .count();
        assert_eq!(
            pending, waiting,
            "{backend:?}: queued while paused: {listed}"
        );

        // Resumed: each event once, a position's in order.
        let (s, _) = send(
            &http,
            reqwest::Method::PATCH,
            &endpoint,
            Some(&admin),
            Some(json!({"active": true})),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let report = wait_for(&http, &receiver, |r| r.events >= ids.len()).await;
        assert_eq!(report.events, ids.len(), "{backend:?}: {report:?}");
        assert_eq!(report.rejected, 0);
        let arrived: Vec<i64> = report.deliveries.iter().map(|d| d.event_id).collect();
        let mut sorted = arrived.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, ids, "{backend:?}: each event once: {arrived:?}");
        for iupd in ["PZ-A", "PZ-B", "PZ-C"] {
            let of: Vec<i64> = report
                .deliveries
                .iter()
                .filter(|d| d.iupd == iupd)
                .map(|d| d.event_id)
                .collect();
            assert!(
                of.windows(2).all(|p| p[0] < p[1]),
                "{backend:?}: {iupd} in order: {of:?}"
            );
        }

        // Deleting drops the queue: paused, a payment queued, deleted.
        send(
            &http,
            reqwest::Method::PATCH,
            &endpoint,
            Some(&admin),
            Some(json!({"active": false})),
        )
        .await;
        let e = w.notice(ENTE, "PZ-E", 5_000, 30).await;
        w.sim.pay(ENTE, &e.nav).await.unwrap();
        let queued = async {
            for _ in 0..100 {
                let (_, l) = send(
                    &http,
                    reqwest::Method::GET,
                    &format!("{endpoint}/deliveries"),
                    Some(&admin),
                    None,
                )
                .await;
                if l.as_array().unwrap().iter().any(|d| d["iupd"] == "PZ-E") {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        };
        assert!(queued.await, "{backend:?}: PZ-E queued");
        let (s, _) = send(
            &http,
            reqwest::Method::DELETE,
            &endpoint,
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(
            w.app
                .store
                .webhook_deliveries(ENTE, id, 1000)
                .await
                .unwrap()
                .is_empty(),
            "{backend:?}: the queue went with it"
        );
        let (_, feed) = send(
            &http,
            reqwest::Method::GET,
            &format!("{feed_url}?after={}", ids.last().unwrap()),
            Some(&w.app.key_a),
            None,
        )
        .await;
        assert!(
            feed.as_array().unwrap().iter().any(|e| e["iupd"] == "PZ-E"),
            "{backend:?}: the feed still has it: {feed}"
        );
        // The document lists the feed.
        let doc: Value = http
            .get(format!("{base}/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["paths"]["/api/v1/enti/{fiscalCode}/events"]["get"].is_object());
    }
}
