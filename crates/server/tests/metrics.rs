//! `GET /metrics` as Prometheus scrapes it: requests by route template,
//! the Node's primitives by outcome, and the database's gauges.

use crate::common::app::gpd::{self, ENTE};
use crate::common::app::schemathesis_tool::serve;
use incasso_pagopa::wire::{self, QrCode};
use incasso_testkit::{Backend, backends};
use reqwest::Method;

/// The value of the sample `name{labels}` (labels exactly as written).
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_primitives_and_read_the_database() {
    incasso_pagopa::connector::install_crypto_provider();
    for backend in backends() {
        let (store, keys) = gpd::enti(backend, &[ENTE]).await;
        let server = serve(store, keys[0].clone(), "/gpd/v1").await;
        let http = reqwest::Client::new();
        server
            .send(
                Method::POST,
                "/organizations/80000130585/debtpositions?toPublish=true",
                Some(&gpd::position("MET-1", &[gpd::iuv(1)])),
            )
            .await;
        let missing = server
            .call(
                Method::GET,
                "/organizations/80000130585/debtpositions/MET-404",
                Some(&keys[0]),
                None,
            )
            .await;
        assert_eq!(missing.status, 404);
        // A paForNode request; its answer's text.
        let node = |body: String| async {
            http.post(format!("{}/pagopa/paForNode", server.base))
                .header("Content-Type", "text/xml; charset=utf-8")
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        let verify = |nav: String| {
            wire::node::verify_request(
                &gpd::node_header(),
                &QrCode {
                    fiscal_code: ENTE.into(),
                    notice_number: nav,
                },
            )
        };
        for nav in [gpd::nav(1), gpd::nav(999)] {
            node(verify(nav)).await;
        }
        let scrape_text = || async {
            http.get(format!("{}/metrics", server.base))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        // On SQLite the position's 201 waited for a flush; a verify, a
        // read, waits for none; a receipt's OK does. PostgreSQL's COMMIT
        // is durable by itself: no flush ever.
        let flushes = "incasso_wal_flushes_total";
        let sqlite = backend == Backend::Sqlite;
        let created = sample(&scrape_text().await, flushes).unwrap();
        assert_eq!(created > 0.0, sqlite, "{backend:?}: {created}");
        node(verify(gpd::nav(1))).await;
        assert_eq!(sample(&scrape_text().await, flushes), Some(created));
        let rt = node(wire::node::send_rt_request(
            &gpd::node_header(),
            &gpd::receipt("MET-RT-1", &gpd::nav(1), "OK"),
            true,
        ))
        .await;
        assert!(rt.contains("<outcome>OK</outcome>"), "{rt}");
        let after = sample(&scrape_text().await, flushes).unwrap();
        assert_eq!(after > created, sqlite, "{backend:?}: {after}");
        let scrape = http
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(scrape.status(), 200);
        assert!(
            scrape.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = scrape.text().await.unwrap();
        // Requests under their templates, with their status.
        let created = r#"incasso_http_request_duration_seconds_count{route="/gpd/v1/organizations/{organizationfiscalcode}/debtpositions",method="POST",status="201"}"#;
        assert_eq!(sample(&text, created), Some(1.0), "{backend:?}\n{text}");
        let not_found = r#"incasso_http_request_duration_seconds_count{route="/gpd/v1/organizations/{organizationfiscalcode}/debtpositions/{iupd}",method="GET",status="404"}"#;
        assert_eq!(sample(&text, not_found), Some(1.0), "{backend:?}\n{text}");
        let bucket = r#"incasso_http_request_duration_seconds_bucket{route="/gpd/v1/organizations/{organizationfiscalcode}/debtpositions",method="POST",status="201",le="+Inf"}"#;
        assert_eq!(sample(&text, bucket), Some(1.0), "{text}");
        // No path of a request becomes a label: no Ente, no notice.
        assert!(!text.contains(ENTE) && !text.contains("MET-404"), "{text}");
        // The Node's primitives by outcome.
        let ok = r#"incasso_node_primitive_duration_seconds_count{primitive="paVerifyPaymentNoticeReq",outcome="OK"}"#;
        assert_eq!(sample(&text, ok), Some(2.0), "{backend:?}\n{text}");
        let unknown = r#"incasso_node_primitive_duration_seconds_count{primitive="paVerifyPaymentNoticeReq",outcome="PAA_PAGAMENTO_SCONOSCIUTO"}"#;
        assert_eq!(sample(&text, unknown), Some(1.0), "{backend:?}\n{text}");
        // The database's gauges.
        assert_eq!(sample(&text, "incasso_database_up"), Some(1.0), "{text}");
        for outbox in ["io_and_email", "webhooks", "receipt_email"] {
            let waiting = format!("incasso_outbox_waiting{{outbox=\"{outbox}\"}}");
            assert_eq!(sample(&text, &waiting), Some(0.0), "{text}");
        }
        assert!(
            text.contains("# TYPE incasso_db_connections_open gauge"),
            "{text}"
        );
        assert!(text.contains("incasso_db_connections_open{pool="), "{text}");
        // The format: comments, or `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(series.starts_with("incasso_"), "{line}");
        }
    }
}
