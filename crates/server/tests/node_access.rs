//! Who may call `paForNode`, over HTTP: the Node's addresses and its
//! subscription key, as `incasso serve --node-allow --node-key` sets them.

use crate::common::app::gpd::{self, ENTE};
use incasso_pagopa::wire::{self, QrCode};
use incasso_server::AppState;
use incasso_server::node_access::NodeAccess;
use incasso_testkit::backends;

/// incasso on a port of its own with `access`; its base URL.
async fn served(
    store: incasso_store::Store,
    access: NodeAccess,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = incasso_app::App::new(store, incasso_app::Settings::new(&base));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve_state(
        listener,
        AppState::new(app).with_node_access(access),
        async {
            let _ = stopped.await;
        },
    ));
    (base, stop)
}

async fn verify(base: &str, key: Option<&str>) -> (u16, String) {
    let body = wire::node::verify_request(
        &gpd::node_header(),
        &QrCode {
            fiscal_code: ENTE.into(),
            notice_number: gpd::nav(1),
        },
    );
    let mut req = reqwest::Client::new()
        .post(format!("{base}/pagopa/paForNode"))
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(body);
    if let Some(k) = key {
        req = req.header("Ocp-Apim-Subscription-Key", k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn only_the_nodes_addresses_with_its_key_reach_pa_for_node() {
    incasso_pagopa::connector::install_crypto_provider();
    for backend in backends() {
        let (store, _) = gpd::enti(backend, &[ENTE]).await;
        // Another network only: this test's 127.0.0.1 is refused, before
        // anything is read.
        let (base, _stop) = served(store.clone(), NodeAccess::new("10.0.0.0/8", "").unwrap()).await;
        let (status, text) = verify(&base, None).await;
        assert_eq!(status, 403, "{backend:?}: {text}");
        assert!(!text.contains("Envelope"), "{text}");
        // This address, and a key.
        let (base, _stop2) = served(
            store.clone(),
            NodeAccess::new("127.0.0.0/8", "chiave-del-nodo").unwrap(),
        )
        .await;
        for wrong in [None, Some("chiave-sbagliata"), Some("")] {
            let (status, _) = verify(&base, wrong).await;
            assert_eq!(status, 403, "{backend:?}: key {wrong:?}");
        }
        let (status, text) = verify(&base, Some("chiave-del-nodo")).await;
        assert_eq!(status, 200, "{backend:?}: {text}");
        // Admitted, the Node gets its SOAP answer (no such notice here).
        let answer = wire::node::parse_response(text.as_bytes()).unwrap();
        assert_eq!(
            answer.fault_code(),
            Some("PAA_PAGAMENTO_SCONOSCIUTO"),
            "{text}"
        );
        // Nothing set: any caller (the default, for a station behind a
        // terminator that checks the Node's certificate).
        let (base, _stop3) = served(store, NodeAccess::default()).await;
        assert_eq!(verify(&base, None).await.0, 200);
    }
}
