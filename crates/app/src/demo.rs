//! `serve --demo`: one intermediary serving two Enti, with offices,
//! catalogue, accertamenti, a station each, back-office operators, API keys
//! and a few hundred positions in several states; and `<data-dir>/demo.json`,
//! which tells a person or a script everything needed to try them,
//! including the test identities of the simulator's SPID/CIE provider (each
//! demo operator's fiscal code, and a citizen's) and the back office's
//! client registration with it.
//!
//! Seeding is idempotent, step by step: a later start (or one after a seed
//! that was interrupted) adds only what is missing, then rewrites demo.json,
//! reusing its keys while they still work (only hashes are stored, so a
//! lost key is replaced by a new one).

use crate::keys::{generate_key, hash_key, issue_key};
use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::{Accertamento, AccertamentoRef};
use incasso_core::access::{Access, Area, Rights, Role};
use incasso_core::catalogue::Service;
use incasso_core::ente::{Ente, Office, StationLink};
use incasso_core::position::{OptionStatus, PositionStatus};
use incasso_core::sample::{self, PositionSpec};
use incasso_store::KeyScope;
use incasso_store::{ListFilter, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const BROKER_ID: &str = "15376371009";

/// Why the demo could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{during}: {source}")]
    Store {
        during: String,
        #[source]
        source: StoreError,
    },
    #[error("scrittura di {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl From<StoreError> for DemoError {
    fn from(source: StoreError) -> Self {
        DemoError::Store {
            during: "seeding the demo".into(),
            source,
        }
    }
}

type Result<T, E = DemoError> = std::result::Result<T, E>;

struct DemoEnte {
    ente: Ente,
    station_id: &'static str,
    segregation_code: u8,
    offices: Vec<Office>,
    accertamenti: Vec<Accertamento>,
    services: Vec<Service>,
    user: &'static str,
    /// The people of the Ente's administrator, office operator and
    /// accountant.
    people: [Person; 3],
    positions: u64,
}

/// A demo person: the operator's name, and who they are to the
/// simulator's SPID/CIE provider.
#[derive(Debug, Clone, Copy)]
struct Person {
    fiscal_code: &'static str,
    given_name: &'static str,
    family_name: &'static str,
}

const fn person(
    fiscal_code: &'static str,
    given_name: &'static str,
    family_name: &'static str,
) -> Person {
    Person {
        fiscal_code,
        given_name,
        family_name,
    }
}

impl Person {
    fn name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// The intermediary's administrator.
const INTERMEDIARY_PERSON: Person = person("RMNLNE70C62L219Q", "Elena", "Romano");
/// A citizen, who is no operator: the provider signs them in, the back
/// office refuses them, and the portals' personal area lists what they
/// owe at both Enti.
const CITIZEN: Person = person("RSSMRA80A01H501U", "Mario", "Rossi");
/// The counter clerks of the Sportello Digitale, one per Ente in order.
const DESK_CLERKS: [Person; 2] = [
    person("GLLLCU88C41H501S", "Lucia", "Galli"),
    person("MRTNDR84L12F205M", "Andrea", "Moretti"),
];
/// The desk seeded at the first Ente (the POS gateway's workstation).
pub const DEMO_DESK: &str = "SPORTELLO_01";

/// The simulator's card terminals `serve --demo` registers: by the index
/// of the Ente in [`demo_enti`], the terminal id, its description, and
/// whether it sits on the first Ente's desk ([`DEMO_DESK`]). `SIMPOS08`
/// is the terminal that is out of order.
pub const DEMO_TERMINALS: [(usize, &str, &str, bool); 3] = [
    (0, "SIMPOS01", "POS dello sportello polifunzionale", true),
    (0, "SIMPOS08", "POS guasto (prova)", false),
    (1, "SIMPOS02", "POS dello sportello", false),
];

/// The client the demo's back office is to the simulator's provider.
pub const SPID_CLIENT_ID: &str = "incasso-backoffice";

fn acc(year: i32, code: &str, description: &str, chapter: &str) -> Accertamento {
    Accertamento {
        year,
        code: code.into(),
        description: description.into(),
        chapter: chapter.into(),
        article: Some("1".into()),
        siope_code: None,
        active: true,
    }
}

fn service(
    code: &str,
    name: &str,
    office: &str,
    taxonomy: &str,
    acc: &str,
    fixed: Option<i64>,
    spontaneous: bool,
) -> Service {
    // A 5-character id in pagoPA's catalogue, for payments started at a PSP.
    let pagopa_service_id = spontaneous.then(|| {
        let base: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(5)
            .collect();
        format!("{base:X<5}")
    });
    Service {
        code: code.into(),
        name: name.into(),
        office_code: Some(office.into()),
        taxonomy_code: taxonomy.into(),
        default_accertamento: Some(AccertamentoRef {
            year: 2026,
            code: acc.into(),
        }),
        iban: None,
        fixed_amount: fixed.map(Cents),
        spontaneous,
        pagopa_service_id,
        active: true,
    }
}

fn demo_enti() -> Vec<DemoEnte> {
    vec![
        DemoEnte {
            ente: Ente {
                fiscal_code: "80000130585".into(),
                name: "Comune di Borgo Esempio".into(),
                ipa_code: Some("c_z999".into()),
                iban: Some("IT65B0200805364000104567891".into()),
                postal_iban: Some("IT98A0760103200001234567890".into()),
                cbill_code: Some("AB123".into()),
                email: Some("protocollo@comune.borgoesempio.example.it".into()),
            },
            station_id: "15376371009_01",
            segregation_code: 1,
            offices: vec![
                Office {
                    code: "TRIB".into(),
                    name: "Ufficio Tributi".into(),
                    email: None,
                },
                Office {
                    code: "SCUOLA".into(),
                    name: "Servizi Scolastici".into(),
                    email: None,
                },
                Office {
                    code: "PM".into(),
                    name: "Polizia Municipale".into(),
                    email: None,
                },
                Office {
                    code: "ANAG".into(),
                    name: "Servizi Demografici".into(),
                    email: None,
                },
            ],
            accertamenti: vec![
                acc(2026, "ACC-TARI", "TARI 2026 - tassa rifiuti", "1010"),
                acc(2026, "ACC-TARI-ADD", "TARI 2026 - addizionale", "1011"),
                acc(2026, "ACC-MENSA", "Refezione scolastica 2026", "3010"),
                acc(2026, "ACC-CDS", "Sanzioni codice della strada 2026", "3020"),
                acc(
                    2026,
                    "ACC-ANAG",
                    "Diritti di segreteria anagrafe 2026",
                    "3050",
                ),
            ],
            services: vec![
                service(
                    "TARI",
                    "Tassa rifiuti (TARI)",
                    "TRIB",
                    "9/0101101IM/",
                    "ACC-TARI",
                    None,
                    false,
                ),
                service(
                    "MENSA",
                    "Refezione scolastica",
                    "SCUOLA",
                    "9/0103100TS/",
                    "ACC-MENSA",
                    None,
                    true,
                ),
                service(
                    "CDS",
                    "Sanzioni codice della strada",
                    "PM",
                    "9/0102106SA/",
                    "ACC-CDS",
                    None,
                    false,
                ),
                service(
                    "CERT-ANAG",
                    "Diritti certificati anagrafici",
                    "ANAG",
                    "9/0104103SP/",
                    "ACC-ANAG",
                    Some(52),
                    true,
                ),
            ],
            user: "operatore.comune",
            people: [
                person("BNCGLI80A41H501C", "Giulia", "Bianchi"),
                person("VRDMRC85M12H501U", "Marco", "Verdi"),
                person("NRENNA78D55H501T", "Anna", "Neri"),
            ],
            positions: 200,
        },
        DemoEnte {
            ente: Ente {
                fiscal_code: "97000000022".into(),
                name: "Azienda Sanitaria Locale di Esempio".into(),
                ipa_code: Some("asl_es".into()),
                iban: Some("IT61X0306909606100000012345".into()),
                postal_iban: None,
                cbill_code: Some("CD456".into()),
                email: None,
            },
            station_id: "15376371009_02",
            segregation_code: 47,
            offices: vec![Office {
                code: "CUP".into(),
                name: "Centro Unico Prenotazioni".into(),
                email: None,
            }],
            accertamenti: vec![
                acc(2026, "ACC-TICKET", "Ticket sanitari 2026", "2010"),
                acc(2026, "ACC-PS", "Ticket pronto soccorso 2026", "2011"),
            ],
            services: vec![
                service(
                    "TICKET",
                    "Ticket sanitario",
                    "CUP",
                    "9/0501100TS/",
                    "ACC-TICKET",
                    None,
                    true,
                ),
                service(
                    "TICKET-PS",
                    "Ticket pronto soccorso",
                    "CUP",
                    "9/0501102TS/",
                    "ACC-PS",
                    Some(2500),
                    false,
                ),
            ],
            user: "operatore.asl",
            people: [
                person("RSSLCU82T10F205E", "Luca", "Russo"),
                person("CLMSRA90B48F205X", "Sara", "Colombo"),
                person("FRRPLA75H20F205S", "Paolo", "Ferrari"),
            ],
            positions: 100,
        },
    ]
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoFile {
    pub base_url: String,
    pub broker_id: String,
    /// The built-in pagoPA simulator (Checkout, Node, PSP).
    #[serde(default)]
    pub simulator_url: String,
    #[serde(default)]
    pub simulator_subscription_key: String,
    /// The SMTP server incasso mails receipts through (the simulator's,
    /// unless another was configured), and where the simulator lists the
    /// messages it took (JSON).
    #[serde(default)]
    pub smtp_url: String,
    #[serde(default)]
    pub mail_url: String,
    pub intermediary_api_key: String,
    /// The back office's sign-in page.
    #[serde(default)]
    pub backoffice_url: String,
    /// The intermediary's page of its Enti, each with a link to its
    /// citizen portal.
    #[serde(default)]
    pub portal_index_url: String,
    /// The intermediary's administrator, who reaches every Ente.
    #[serde(default)]
    pub intermediary_user: String,
    #[serde(default)]
    pub intermediary_password: String,
    /// The SPID/CIE test identities of the simulator's provider, and the
    /// operator each one signs in as.
    #[serde(default)]
    pub test_identities: Vec<DemoIdentity>,
    /// The simulator's SPID/CIE provider (its issuer URL), and the
    /// back office as its client.
    #[serde(default)]
    pub spid_issuer: String,
    #[serde(default)]
    pub spid_client_id: String,
    #[serde(default)]
    pub spid_client_secret: String,
    pub enti: Vec<DemoEnteFile>,
    /// The simulator's webhook receivers and what they got (JSON), and
    /// the endpoints registered for them (the first Ente's events).
    #[serde(default)]
    pub webhook_deliveries_url: String,
    #[serde(default)]
    pub webhook_receivers: Vec<crate::webhooks::DemoReceiver>,
    /// The demo receiver's URL: `GET` lists what it got (in arrival
    /// order), `PUT` scripts it (`fail_next`, `slow_ms`, `ack_later`).
    #[serde(default)]
    pub webhook_receiver_url: String,
    /// The simulated POS gateway incasso's desks talk to (pagoPA's
    /// `pos-layer-service`), and where a terminal's behaviour is scripted:
    /// `GET` lists the terminals, `PUT {pos_control_url}/{id}` with
    /// `{"script": [{"mode": "DECLINED"}]}` or `{"status": ...}`.
    #[serde(default)]
    pub pos_gateway_url: String,
    #[serde(default)]
    pub pos_control_url: String,
}

/// A card terminal of the demo, as demo.json tells it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoTerminal {
    pub id: String,
    /// The desk it sits on, if any.
    pub desk: Option<String>,
    pub description: String,
}

/// The webhook endpoint the demo registered for an Ente.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoWebhookEndpoint {
    pub id: i64,
    pub url: String,
    /// Its deliveries in incasso (`GET`, the intermediary's key).
    pub deliveries_url: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoEnteFile {
    /// Open in a browser to pay the first payable notice through Checkout.
    #[serde(default)]
    pub pay_url: String,
    /// The Ente's citizen payment portal.
    #[serde(default)]
    pub portal_url: String,
    pub fiscal_code: String,
    pub name: String,
    pub station_id: String,
    pub segregation_code: String,
    pub iban: String,
    pub api_key: String,
    pub backoffice_user: String,
    pub backoffice_password: String,
    /// An office operator limited to the Ente's first office.
    #[serde(default)]
    pub office_user: String,
    #[serde(default)]
    pub office_password: String,
    /// A read-only accountant.
    #[serde(default)]
    pub accountant_user: String,
    #[serde(default)]
    pub accountant_password: String,
    /// A counter clerk of the Sportello Digitale (every office).
    #[serde(default)]
    pub desk_user: String,
    #[serde(default)]
    pub desk_password: String,
    /// The Sportello Digitale; its desk, at the first Ente.
    #[serde(default)]
    pub desk_url: String,
    pub services: Vec<DemoService>,
    /// The spontaneous services the portal offers, each with its form.
    #[serde(default)]
    pub spontaneous_services: Vec<DemoSpontaneous>,
    pub payable_notices: Vec<DemoNotice>,
    /// DigitPOS (the first Ente only): an application key for another
    /// application's portal, and the host its return URLs may use.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digitpos_api_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digitpos_return_host: String,
    /// The Ente's card terminals (the simulator's).
    #[serde(default)]
    pub terminals: Vec<DemoTerminal>,
    /// The Ente's events feed (`GET ?after=0`, the Ente's key).
    #[serde(default)]
    pub events_url: String,
    /// The webhook endpoint registered for the demo's receiver, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_endpoint: Option<DemoWebhookEndpoint>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoSpontaneous {
    pub code: String,
    pub name: String,
    /// Its form on the portal.
    pub form_url: String,
}

/// The return host the demo's DigitPOS key may send payers back to: a
/// portal tried on this machine.
pub const DIGITPOS_RETURN_HOST: &str = "localhost";

/// A test identity of the simulator's SPID/CIE provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoIdentity {
    pub fiscal_code: String,
    pub name: String,
    /// The back-office username it signs in as; none for a citizen.
    pub operator: Option<String>,
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
}

impl DemoIdentity {
    fn of(p: &Person, operator: Option<&str>) -> DemoIdentity {
        DemoIdentity {
            fiscal_code: p.fiscal_code.into(),
            name: p.name(),
            operator: operator.map(str::to_string),
            given_name: p.given_name.into(),
            family_name: p.family_name.into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoService {
    pub code: String,
    pub name: String,
    pub spontaneous: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoNotice {
    pub notice_number: String,
    pub amount_cents: i64,
    pub iupd: String,
    pub due_date: String,
}

/// Seeds the demo (once; a later call adds only what is missing) and
/// writes `<data_dir>/demo.json`, its URLs under the public URL.
pub async fn seed(ctx: &crate::Ctx, data_dir: &Path, simulator_url: &str) -> Result<PathBuf> {
    ctx.caller
        .require_intermediary()
        .map_err(|e| DemoError::Store {
            during: "seeding the demo".into(),
            source: StoreError::Conflict(e.detail),
        })?;
    let store = ctx.store();
    let base_url = ctx.settings().public_url.as_str();
    let path = data_dir.join("demo.json");
    let previous: Option<DemoFile> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let enti = demo_enti();
    let fresh = match store.get_ente(&enti[0].ente.fiscal_code).await {
        Err(StoreError::NotFound(_)) => true,
        Ok(_) => false,
        Err(source) => {
            return Err(DemoError::Store {
                during: "checking for demo data".into(),
                source,
            });
        }
    };
    if fresh {
        for d in &enti {
            seed_ente(store, d)
                .await
                .map_err(|source| DemoError::Store {
                    during: format!("seeding {}", d.ente.name),
                    source,
                })?;
        }
    }
    // Spontaneous services' forms for the portal (added to an older demo too).
    for d in &enti {
        crate::portal::spontaneous::seed_demo_forms(store, &d.ente.fiscal_code, ctx.now())
            .await
            .map_err(|source| DemoError::Store {
                during: format!("the spontaneous forms of {}", d.ente.name),
                source,
            })?;
    }
    // The citizen of the test identities owes positions at every Ente
    // (added to an older demo too), and each portal speaks one more
    // language: German at the first Ente, English at the second.
    for (i, d) in enti.iter().enumerate() {
        seed_citizen(store, d)
            .await
            .map_err(|source| DemoError::Store {
                during: format!("the citizen's positions at {}", d.ente.name),
                source,
            })?;
        let fc = &d.ente.fiscal_code;
        if store.portal_settings(fc).await?.is_none() {
            let (colour, language) = if i == 0 {
                (crate::portal::style::DEFAULT_BRAND_COLOUR, "de")
            } else {
                ("#00695c", "en")
            };
            store
                .put_portal_settings(
                    fc,
                    &incasso_store::PortalSettingsRecord {
                        brand_colour: colour.into(),
                        languages: vec![language.into()],
                    },
                    ctx.now(),
                )
                .await?;
        }
    }
    // The demo stations reach "pagoPA" at the simulator, with a
    // subscription key as the real API gateway wants.
    let simulator_key = previous
        .as_ref()
        .map(|p| p.simulator_subscription_key.clone())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| generate_key().1);
    let connection = incasso_pagopa::connector::ConnectionSettings {
        rest_url: Some(simulator_url.to_string()),
        soap_url: Some(format!("{simulator_url}/nodo/nodeForPa")),
        auth: incasso_pagopa::connector::Auth::SubscriptionKey {
            key: simulator_key.clone(),
        },
        station_password: Some("demoPass01".into()),
        ..Default::default()
    };
    let connection = serde_json::to_string(&connection)?;
    for d in &enti {
        store
            .set_station_connection(&d.ente.fiscal_code, d.station_id, Some(&connection))
            .await?;
    }
    let intermediary_api_key = reuse_or_issue(
        store,
        previous.as_ref().map(|p| p.intermediary_api_key.as_str()),
        None,
    )
    .await?;
    let mut out = Vec::new();
    let mut identities = Vec::new();
    for d in &enti {
        let fc = &d.ente.fiscal_code;
        let prev = previous
            .as_ref()
            .and_then(|p| p.enti.iter().find(|e| &e.fiscal_code == fc));
        let api_key = reuse_or_issue(store, prev.map(|e| e.api_key.as_str()), Some(fc)).await?;
        let [admin, office, accountant] = &d.people;
        let password = demo_operator(
            store,
            d.user,
            admin,
            Rights {
                role: Role::EnteAdmin,
                ente: Some(fc.clone()),
                grants: vec![],
                offices: vec![],
            },
            prev.map(|e| e.backoffice_password.as_str()),
        )
        .await?;
        let office_user = format!("{}.ufficio", d.user);
        let office_password = demo_operator(
            store,
            &office_user,
            office,
            Rights {
                role: Role::OfficeOperator,
                ente: Some(fc.clone()),
                grants: vec![
                    (Area::Positions, Access::Write),
                    (Area::Supplies, Access::Write),
                    (Area::Reporting, Access::Read),
                ],
                offices: d.offices.iter().take(1).map(|o| o.code.clone()).collect(),
            },
            prev.map(|e| e.office_password.as_str()),
        )
        .await?;
        let accountant_user = format!("{}.ragioneria", d.user);
        let accountant_password = demo_operator(
            store,
            &accountant_user,
            accountant,
            Rights {
                role: Role::Accountant,
                ente: Some(fc.clone()),
                grants: vec![],
                offices: vec![],
            },
            prev.map(|e| e.accountant_password.as_str()),
        )
        .await?;
        let desk_user = format!("{}.sportello", d.user);
        let clerk = &DESK_CLERKS[out.len() % DESK_CLERKS.len()];
        let desk_password = demo_operator(
            store,
            &desk_user,
            clerk,
            Rights {
                role: Role::CounterClerk,
                ente: Some(fc.clone()),
                grants: vec![],
                offices: d.offices.iter().map(|o| o.code.clone()).collect(),
            },
            prev.map(|e| e.desk_password.as_str()),
        )
        .await?;
        let desk_url = if out.is_empty() {
            store
                .create_desk(&incasso_store::desks::DeskRecord {
                    ente: fc.clone(),
                    code: DEMO_DESK.into(),
                    name: "Sportello polifunzionale".into(),
                    office: None,
                    created_at: Utc::now(),
                })
                .await?;
            format!("{base_url}/backoffice/sportello/{DEMO_DESK}")
        } else {
            format!("{base_url}/backoffice/sportello")
        };
        identities.push(DemoIdentity::of(admin, Some(d.user)));
        identities.push(DemoIdentity::of(office, Some(&office_user)));
        identities.push(DemoIdentity::of(accountant, Some(&accountant_user)));
        identities.push(DemoIdentity::of(clerk, Some(&desk_user)));
        let payable = payable_notices(store, fc).await?;
        let (digitpos_api_key, digitpos_return_host) = if out.is_empty() {
            let prev_key = prev
                .map(|e| e.digitpos_api_key.as_str())
                .filter(|k| !k.is_empty());
            let key = reuse_or_issue(store, prev_key, Some(fc)).await?;
            store
                .add_return_host(fc, DIGITPOS_RETURN_HOST, "system:demo", chrono::Utc::now())
                .await?;
            (key, DIGITPOS_RETURN_HOST.to_string())
        } else {
            Default::default()
        };
        out.push(DemoEnteFile {
            pay_url: payable
                .first()
                .map(|n| format!("{base_url}/pay/{fc}/{}", n.notice_number))
                .unwrap_or_default(),
            portal_url: format!("{base_url}/portale/{fc}/"),
            fiscal_code: fc.clone(),
            name: d.ente.name.clone(),
            station_id: d.station_id.into(),
            segregation_code: format!("{:02}", d.segregation_code),
            iban: d.ente.iban.clone().unwrap_or_default(),
            api_key,
            backoffice_user: d.user.into(),
            backoffice_password: password,
            office_user,
            office_password,
            accountant_user,
            accountant_password,
            desk_user,
            desk_password,
            desk_url,
            services: store
                .list_services(fc)
                .await?
                .into_iter()
                .map(|s| DemoService {
                    code: s.code,
                    name: s.name,
                    spontaneous: s.spontaneous,
                })
                .collect(),
            spontaneous_services: crate::portal::spontaneous::list(ctx, fc)
                .await
                .map_err(|e| DemoError::Store {
                    during: "listing the spontaneous services".into(),
                    source: StoreError::Conflict(e.detail),
                })?
                .into_iter()
                .map(|s| DemoSpontaneous {
                    form_url: format!("{base_url}/portale/{fc}/servizi/{}", s.code),
                    code: s.code,
                    name: s.name,
                })
                .collect(),
            payable_notices: payable,
            digitpos_api_key,
            digitpos_return_host,
            terminals: DEMO_TERMINALS
                .iter()
                .filter(|(index, ..)| *index == out.len())
                .map(|(_, id, description, on_desk)| DemoTerminal {
                    id: id.to_string(),
                    desk: on_desk.then(|| DEMO_DESK.to_string()),
                    description: description.to_string(),
                })
                .collect(),
            events_url: format!("{base_url}/api/v1/enti/{fc}/events"),
            webhook_endpoint: None,
        });
    }
    let intermediary_user = "intermediario";
    let intermediary_password = demo_operator(
        store,
        intermediary_user,
        &INTERMEDIARY_PERSON,
        Rights {
            role: Role::IntermediaryAdmin,
            ente: None,
            grants: vec![],
            offices: vec![],
        },
        previous.as_ref().map(|p| p.intermediary_password.as_str()),
    )
    .await?;
    identities.insert(
        0,
        DemoIdentity::of(&INTERMEDIARY_PERSON, Some(intermediary_user)),
    );
    identities.push(DemoIdentity::of(&CITIZEN, None));
    let spid_client_secret = previous
        .as_ref()
        .map(|p| p.spid_client_secret.clone())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| generate_key().1);
    let webhook_receivers = crate::webhooks::seed_demo(
        ctx,
        &enti[0].ente.fiscal_code,
        simulator_url,
        previous
            .as_ref()
            .map(|p| p.webhook_receivers.as_slice())
            .unwrap_or_default(),
    )
    .await;
    for r in &webhook_receivers {
        if let Some(e) = out.iter_mut().find(|e| e.fiscal_code == r.fiscal_code) {
            e.webhook_endpoint = Some(DemoWebhookEndpoint {
                id: r.endpoint_id,
                url: r.url.clone(),
                deliveries_url: format!(
                    "{base_url}/api/v1/enti/{}/webhooks/{}/deliveries",
                    r.fiscal_code, r.endpoint_id
                ),
            });
        }
    }
    let file = DemoFile {
        webhook_deliveries_url: format!("{simulator_url}/simulator/webhooks"),
        webhook_receiver_url: webhook_receivers
            .first()
            .map(|r| r.url.clone())
            .unwrap_or_default(),
        pos_gateway_url: format!("{simulator_url}/pos-layer-service"),
        pos_control_url: format!("{simulator_url}/simulator/pos/terminals"),
        webhook_receivers,
        backoffice_url: format!("{base_url}/backoffice/"),
        portal_index_url: format!("{base_url}/portale/"),
        intermediary_user: intermediary_user.into(),
        intermediary_password,
        test_identities: identities,
        spid_issuer: simulator_url.into(),
        spid_client_id: SPID_CLIENT_ID.into(),
        spid_client_secret,
        base_url: base_url.into(),
        broker_id: BROKER_ID.into(),
        simulator_url: simulator_url.into(),
        simulator_subscription_key: simulator_key,
        // Never a configured server's password.
        smtp_url: ctx
            .settings()
            .smtp_url
            .as_deref()
            .map(|u| match (u.split_once("://"), u.rsplit_once('@')) {
                (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
                _ => u.to_string(),
            })
            .unwrap_or_default(),
        mail_url: format!("{simulator_url}/simulator/mail"),
        intermediary_api_key,
        enti: out,
    };
    std::fs::write(&path, serde_json::to_string_pretty(&file)?).map_err(|source| {
        DemoError::Write {
            path: path.display().to_string(),
            source,
        }
    })?;
    Ok(path)
}

/// The demo operator `username` (created if missing, as `who` with
/// `rights`) and their password: the one the last demo.json gave, or a new
/// one. Their fiscal code is `who`'s, for SPID/CIE.
async fn demo_operator(
    store: &Store,
    username: &str,
    who: &Person,
    rights: Rights,
    previous: Option<&str>,
) -> Result<String> {
    let found = store.operator_by_username(username).await?;
    // A demo seeded before SPID/CIE sign-in had no fiscal codes.
    if let Some(existing) = &found
        && existing.fiscal_code.as_deref() != Some(who.fiscal_code)
    {
        match store
            .set_operator_fiscal_code(existing.id, Some(who.fiscal_code), Utc::now())
            .await
        {
            // Someone gave it to another operator: that one keeps it.
            Err(StoreError::Conflict(_)) => {
                tracing::warn!(username, "demo fiscal code taken by another operator")
            }
            other => other?,
        }
    }
    if let Some(existing) = &found
        && let Some(password) = previous.filter(|p| !p.is_empty())
    {
        // The password demo.json tells must open the account.
        let hash = crate::operators::hash_password(password).map_err(|e| DemoError::Store {
            during: "hashing a demo password".into(),
            source: StoreError::Conflict(e.detail),
        })?;
        store
            .set_operator_password(existing.id, &hash, false, Utc::now())
            .await?;
        return Ok(password.to_string());
    }
    // Three kinds of character, as the password policy wants.
    let (_, secret) = generate_key();
    let password = format!("Demo-{}", &secret[4..16]);
    let hash = crate::operators::hash_password(&password).map_err(|e| DemoError::Store {
        during: "hashing a demo password".into(),
        source: StoreError::Conflict(e.detail),
    })?;
    match found {
        Some(existing) => {
            store
                .set_operator_password(existing.id, &hash, false, Utc::now())
                .await?
        }
        None => {
            store
                .create_operator(
                    &incasso_store::NewOperator {
                        username: username.into(),
                        password_hash: Some(hash),
                        fiscal_code: Some(who.fiscal_code.into()),
                        full_name: who.name(),
                        email: None,
                        rights,
                        must_change_password: false,
                    },
                    Utc::now(),
                )
                .await?;
        }
    }
    Ok(password)
}

async fn reuse_or_issue(
    store: &Store,
    previous: Option<&str>,
    ente: Option<&str>,
) -> Result<String> {
    if let Some(key) = previous
        && let Some(record) = store.find_api_key(&hash_key(key)).await?
        && record.ente.as_deref() == ente
    {
        return Ok(key.to_string());
    }
    let (_, key) = issue_key(store, ente, KeyScope::Ente, "demo").await?;
    Ok(key)
}

async fn seed_ente(store: &Store, d: &DemoEnte) -> Result<(), StoreError> {
    let now = Utc::now();
    let fc = &d.ente.fiscal_code;
    ignore_conflict(store.create_ente(&d.ente, now).await)?;
    let station = StationLink {
        broker_id: BROKER_ID.into(),
        station_id: d.station_id.into(),
        segregation_code: d.segregation_code,
    };
    ignore_conflict(store.add_station(fc, &station, now).await)?;
    for o in &d.offices {
        store.put_office(fc, o).await?;
    }
    for a in &d.accertamenti {
        store.put_accertamento(fc, a).await?;
    }
    for s in &d.services {
        store.put_service(fc, s).await?;
    }
    let iban = d.ente.iban.clone().unwrap_or_default();
    let other_ente = if fc == "80000130585" {
        "97000000022"
    } else {
        "80000130585"
    };
    let other_iban = if fc == "80000130585" {
        "IT61X0306909606100000012345"
    } else {
        "IT65B0200805364000104567891"
    };
    for i in 0..d.positions {
        let service = &d.services[(i % d.services.len() as u64) as usize];
        let acc = service
            .default_accertamento
            .clone()
            .unwrap_or(AccertamentoRef {
                year: 2026,
                code: String::new(),
            });
        let quotas = if service.code == "TARI" {
            vec![
                (acc, 90),
                (
                    AccertamentoRef {
                        year: 2026,
                        code: "ACC-TARI-ADD".into(),
                    },
                    10,
                ),
            ]
        } else {
            vec![(acc, 100)]
        };
        let amount = service
            .fixed_amount
            .unwrap_or(Cents(2_000 + ((i * 7919) % 40_000) as i64));
        // One position in ten is a plan: single solution plus three installments.
        let installments = if i % 10 == 4 || i % 10 == 8 { 3 } else { 0 };
        let spec = PositionSpec {
            ente: fc,
            company_name: &d.ente.name,
            iupd: format!("{fc}-DEMO-{i:05}"),
            debtor_index: i + if fc == "80000130585" { 0 } else { 100_000 },
            amount,
            description: format!("{} - posizione {}", service.name, i + 1),
            category: &service.taxonomy_code,
            iban: &iban,
            due_date: now + Duration::days(30 + (i % 60) as i64),
            installments,
            second_beneficiary: (i % 25 == 3).then_some((other_ente, other_iban, Cents(300))),
            quotas,
        };
        let position = sample::position(&spec);
        match store.get_position(fc, &spec.iupd).await {
            Ok(_) => continue,
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let state = i % 20;
        // 0..=13 payable, 14..=15 draft, 16 invalid, 17..=18 paid, 19 partially paid (or paid).
        let publish = state != 14 && state != 15;
        let stored = store.create_position(fc, position, now, publish).await?;
        let iupd = &stored.position.iupd;
        match state {
            16 => {
                store.invalidate_position(fc, iupd, now).await?;
            }
            17..=19 => {
                let options = &stored.position.options;
                let pick = if state == 19 {
                    options.iter().find(|o| o.is_partial_payment)
                } else {
                    None
                }
                .or_else(|| options.first());
                if let Some(nav) = pick.and_then(|o| o.notice_number.as_ref()) {
                    store
                        .mark_option_paid(fc, nav.as_str(), now - Duration::hours(2), now)
                        .await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The citizen's positions at Ente `d` (idempotent by their keys),
/// published and payable: the first service's in a single payment or three
/// installments, and the second's in one payment.
async fn seed_citizen(store: &Store, d: &DemoEnte) -> Result<(), StoreError> {
    let now = Utc::now();
    let fc = &d.ente.fiscal_code;
    let iban = d.ente.iban.clone().unwrap_or_default();
    for (k, service) in d.services.iter().take(2).enumerate() {
        let iupd = format!("{fc}-CITTADINO-{}", service.code);
        match store.get_position(fc, &iupd).await {
            Ok(_) => continue,
            Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let acc = service
            .default_accertamento
            .clone()
            .unwrap_or(AccertamentoRef {
                year: 2026,
                code: String::new(),
            });
        let spec = PositionSpec {
            ente: fc,
            company_name: &d.ente.name,
            iupd: iupd.clone(),
            debtor_index: 0,
            amount: service
                .fixed_amount
                .unwrap_or(Cents(if k == 0 { 24_600 } else { 8_540 })),
            description: format!("{} 2026", service.name),
            category: &service.taxonomy_code,
            iban: &iban,
            due_date: now + Duration::days(20 + 15 * k as i64),
            installments: if k == 0 { 3 } else { 0 },
            second_beneficiary: None,
            quotas: vec![(acc, 100)],
        };
        let mut position = sample::position(&spec);
        position.debtor.fiscal_code = CITIZEN.fiscal_code.into();
        position.debtor.full_name = CITIZEN.name();
        position.debtor.email = Some("mario.rossi@example.org".into());
        store.create_position(fc, position, now, true).await?;
    }
    Ok(())
}

fn ignore_conflict(r: Result<(), StoreError>) -> Result<(), StoreError> {
    match r {
        Err(StoreError::Conflict(_)) => Ok(()),
        other => other,
    }
}

async fn payable_notices(store: &Store, fc: &str) -> Result<Vec<DemoNotice>> {
    let now = Utc::now();
    let mut out = Vec::new();
    let mut page = 0;
    loop {
        let filter = ListFilter {
            statuses: vec![PositionStatus::Valid],
            page,
            limit: 500,
            ascending: true,
            ..Default::default()
        };
        let result = store.list_positions(fc, &filter).await?;
        for stored in &result.items {
            let p = &stored.position;
            if p.effective_status(now) != PositionStatus::Valid {
                continue;
            }
            for o in &p.options {
                if o.status == OptionStatus::Unpaid
                    && o.due_date > now
                    && let Some(nav) = &o.notice_number
                {
                    out.push(DemoNotice {
                        notice_number: nav.as_str().into(),
                        amount_cents: o.amount.0,
                        iupd: p.iupd.clone(),
                        due_date: incasso_core::time::rome_date_string(o.due_date),
                    });
                }
            }
        }
        page += 1;
        if page >= result.total_pages {
            break;
        }
    }
    Ok(out)
}
