//! The world of the personal-area tests: incasso with Ente A and Ente B
//! connected to the simulated pagoPA (its Node and PSP pay notices and
//! send the receipts), whose portals sign citizens in through the
//! simulator's SPID/CIE provider; and the positions of two citizens, Mario
//! and Anna, at both Enti.
//!
//! Include after `common/app.rs` (as `app`) and `common/portal.rs` (as
//! `portal`) with `#[path = "common/portal_citizen_world.rs"] mod world;`.

use super::app::gpd::{self, BROKER, ENTE, IBAN, OTHER_ENTE, OTHER_IBAN};
use super::portal::Visitor;
use chrono::{Duration, Utc};
use incasso_app::spid::SpidSettings;
use incasso_core::Cents;
use incasso_core::sample::{self, PositionSpec};
use incasso_pagopa::connector::{Auth, ConnectionSettings};
use incasso_simulator::{
    Faults, OidcClient, OidcSettings, Route, Settings, Simulator, TestIdentity,
};
use incasso_store::Store;
use incasso_testkit::Backend;
use reqwest::StatusCode;

const KEY: &str = "portal-citizen-subscription-key";
pub const CLIENT_ID: &str = "incasso-portale-test";
const CLIENT_SECRET: &str = "segreto-del-portale-di-prova";

/// The citizen the tests sign in as.
pub const MARIO: (&str, &str, &str) = ("RSSMRA80A01H501U", "Mario", "Rossi");
/// Another citizen, whose positions Mario must never see.
pub const ANNA: (&str, &str, &str) = ("BNCNNA85M41F205Q", "Anna", "Bianchi");

pub struct World {
    pub app: incasso_app::App,
    pub store: Store,
    pub base: String,
    pub sim: Simulator,
    pub sim_url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A position made for a test: its Ente, key, description and notices.
#[derive(Debug, Clone)]
pub struct Made {
    pub ente: String,
    pub iupd: String,
    pub description: String,
    /// Notice numbers, the single solution's first.
    pub navs: Vec<String>,
}

impl Made {
    pub fn iuv(&self, i: usize) -> String {
        self.navs[i][1..].to_string()
    }
}

fn identity((fc, given, family): (&str, &str, &str)) -> TestIdentity {
    TestIdentity {
        fiscal_code: fc.into(),
        given_name: given.into(),
        family_name: family.into(),
    }
}

/// incasso on a port of its own over `store`, with `clock`, signing in
/// through the simulator at `sim_url`.
pub async fn serve(
    store: &Store,
    sim_url: &str,
    clock: incasso_app::Clock,
) -> (incasso_app::App, String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = incasso_app::Settings::new(&base);
    settings.spid = Some(SpidSettings {
        issuer: sim_url.into(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
    });
    let mut app = incasso_app::App::new(store.clone(), settings);
    app.clock = clock;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    (app, base, stop)
}

pub async fn world(backend: Backend) -> World {
    incasso_pagopa::connector::install_crypto_provider();
    let (store, _keys) = gpd::enti(backend, &[ENTE, OTHER_ENTE]).await;
    // incasso's port first: the provider must know the redirect URI.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = [ENTE, OTHER_ENTE]
        .iter()
        .enumerate()
        .map(|(i, fc)| Route {
            fiscal_code: fc.to_string(),
            broker_id: BROKER.into(),
            station_id: format!("ST_{:02}", i + 1),
            segregation_code: Some(i as u8 + 1),
        })
        .collect();
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim_url = format!("http://{}", sim_listener.local_addr().unwrap());
    let sim = Simulator::new(Settings {
        ente_soap_url: format!("{base}/pagopa/paForNode"),
        routes,
        required_subscription_key: Some(KEY.into()),
        faults: Faults::default(),
        public_url: None,
        oidc: OidcSettings {
            identities: vec![identity(MARIO), identity(ANNA)],
            clients: vec![OidcClient {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uris: vec![
                    format!("{base}/portale/spid/callback"),
                    format!("{base}/backoffice/spid/callback"),
                ],
                name: "Portale dei pagamenti di prova".into(),
            }],
        },
    });
    tokio::spawn(sim.clone().serve(sim_listener, std::future::pending()));
    for (ente, station) in [(ENTE, "ST_01"), (OTHER_ENTE, "ST_02")] {
        let connection = ConnectionSettings {
            rest_url: Some(sim_url.clone()),
            soap_url: Some(format!("{sim_url}/nodo/nodeForPa")),
            auth: Auth::SubscriptionKey { key: KEY.into() },
            timeout_ms: 2_000,
            retries: 1,
            backoff_ms: 10,
            ..Default::default()
        };
        store
            .set_station_connection(
                ente,
                station,
                Some(&serde_json::to_string(&connection).unwrap()),
            )
            .await
            .unwrap();
    }
    let mut settings = incasso_app::Settings::new(&base);
    settings.spid = Some(SpidSettings {
        issuer: sim_url.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
    });
    let app = incasso_app::App::new(store.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(incasso_server::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    World {
        app,
        store,
        base,
        sim,
        sim_url,
        _stop: stop,
    }
}

impl World {
    /// A position of `ente` owed by `who`, published unless `draft`, with
    /// `installments` besides its single solution.
    pub async fn position(
        &self,
        ente: &str,
        iupd: &str,
        who: (&str, &str, &str),
        amount: i64,
        installments: u32,
        draft: bool,
    ) -> Made {
        let now = Utc::now();
        let description = format!("Servizio {iupd}");
        let mut p = sample::position(&PositionSpec {
            ente,
            company_name: "Ente di prova",
            iupd: iupd.into(),
            debtor_index: 7,
            amount: Cents(amount),
            description: description.clone(),
            category: gpd::CATEGORY,
            iban: if ente == ENTE { IBAN } else { OTHER_IBAN },
            due_date: now + Duration::days(20),
            installments,
            second_beneficiary: None,
            quotas: vec![],
        });
        p.debtor.fiscal_code = who.0.into();
        p.debtor.full_name = format!("{} {}", who.1, who.2);
        let stored = self
            .store
            .create_position(ente, p, now, !draft)
            .await
            .unwrap();
        Made {
            ente: ente.into(),
            iupd: iupd.into(),
            description,
            navs: stored
                .position
                .options
                .iter()
                .map(|o| o.notice_number.clone().unwrap().as_str().to_string())
                .collect(),
        }
    }

    /// Pays notice `nav` of `ente` through the simulated PSP, and waits
    /// for its receipt to be kept.
    pub async fn pay(&self, ente: &str, nav: &str) {
        self.sim.pay(ente, nav).await.unwrap();
        for _ in 0..100 {
            if self.store.has_receipt(ente, &nav[1..]).await.unwrap() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no receipt for {nav}");
    }
}

/// The value of query parameter `name` in `url`.
pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// From the portal of `ente`'s "Accedi" to the provider's answer for
/// `fiscal_code` (or `annulla`): the callback URL the provider sends the
/// browser to, not yet followed.
pub async fn to_provider_and_back(
    v: &Visitor,
    sim_url: &str,
    ente: &str,
    fiscal_code: &str,
    action: &str,
) -> String {
    let start = v.get(&format!("/portale/{ente}/accedi")).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let to = start.location().unwrap().to_string();
    assert!(to.starts_with(&format!("{sim_url}/authorize?")), "{to}");
    assert!(
        !to.contains(ente),
        "the Ente to go back to stays on the server"
    );
    let set: Vec<String> = start
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .collect();
    let state_cookie = set
        .iter()
        .find(|c| c.starts_with("incasso_cittadino_spid="))
        .expect("the request's state cookie");
    assert!(
        state_cookie.contains("HttpOnly") && state_cookie.contains("SameSite=Lax"),
        "{state_cookie}"
    );
    let page = v.get(&to).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(fiscal_code), "{}", page.body);
    let at = page.body.find("name=\"request\" value=\"").unwrap() + 22;
    let request = page.body[at..at + page.body[at..].find('"').unwrap()].to_string();
    let back = v
        .post_raw(
            &format!("{sim_url}/authorize"),
            &[
                ("request", &request),
                ("identity", fiscal_code),
                ("action", action),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    back.location().unwrap().to_string()
}

/// Signs `fiscal_code` in from `ente`'s portal: the area's path it lands
/// on.
pub async fn sign_in(v: &Visitor, sim_url: &str, ente: &str, fiscal_code: &str) -> String {
    let callback = to_provider_and_back(v, sim_url, ente, fiscal_code, "entra").await;
    let signed = v.get(&callback).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let to = signed.location().unwrap().to_string();
    assert_eq!(to, format!("/portale/{ente}/area-personale"));
    to
}
