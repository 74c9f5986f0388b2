//! `serve --demo`: one intermediary serving two Enti, with offices,
//! catalogue, accertamenti, a station each, a back-office user, API keys and
//! a few hundred positions in several states; and `<data-dir>/demo.json`,
//! which tells a person or a script everything needed to try them.
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
    positions: u64,
}

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
    pub intermediary_api_key: String,
    /// The back office's sign-in page.
    #[serde(default)]
    pub backoffice_url: String,
    /// The intermediary's administrator, who reaches every Ente.
    #[serde(default)]
    pub intermediary_user: String,
    #[serde(default)]
    pub intermediary_password: String,
    /// The SPID/CIE test identities of the simulator's provider (none yet:
    /// operators sign in with their password).
    #[serde(default)]
    pub test_identities: Vec<serde_json::Value>,
    pub enti: Vec<DemoEnteFile>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DemoEnteFile {
    /// Open in a browser to pay the first payable notice through Checkout.
    #[serde(default)]
    pub pay_url: String,
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
    pub services: Vec<DemoService>,
    pub payable_notices: Vec<DemoNotice>,
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
    for d in &enti {
        let fc = &d.ente.fiscal_code;
        let prev = previous
            .as_ref()
            .and_then(|p| p.enti.iter().find(|e| &e.fiscal_code == fc));
        let api_key = reuse_or_issue(store, prev.map(|e| e.api_key.as_str()), Some(fc)).await?;
        let password = demo_operator(
            store,
            d.user,
            &format!("Amministratore {}", d.ente.name),
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
            &format!("Operatore d'ufficio {}", d.ente.name),
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
            &format!("Ragioneria {}", d.ente.name),
            Rights {
                role: Role::Accountant,
                ente: Some(fc.clone()),
                grants: vec![],
                offices: vec![],
            },
            prev.map(|e| e.accountant_password.as_str()),
        )
        .await?;
        let payable = payable_notices(store, fc).await?;
        out.push(DemoEnteFile {
            pay_url: payable
                .first()
                .map(|n| format!("{base_url}/pay/{fc}/{}", n.notice_number))
                .unwrap_or_default(),
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
            payable_notices: payable,
        });
    }
    let intermediary_user = "intermediario";
    let intermediary_password = demo_operator(
        store,
        intermediary_user,
        "Amministratore dell'intermediario",
        Rights {
            role: Role::IntermediaryAdmin,
            ente: None,
            grants: vec![],
            offices: vec![],
        },
        previous.as_ref().map(|p| p.intermediary_password.as_str()),
    )
    .await?;
    let file = DemoFile {
        backoffice_url: format!("{base_url}/backoffice/"),
        intermediary_user: intermediary_user.into(),
        intermediary_password,
        test_identities: Vec::new(),
        base_url: base_url.into(),
        broker_id: BROKER_ID.into(),
        simulator_url: simulator_url.into(),
        simulator_subscription_key: simulator_key,
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

/// The demo operator `username` (created if missing, with `rights`) and
/// their password: the one the last demo.json gave, or a new one.
async fn demo_operator(
    store: &Store,
    username: &str,
    full_name: &str,
    rights: Rights,
    previous: Option<&str>,
) -> Result<String> {
    if let Some(existing) = store.operator_by_username(username).await?
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
    match store.operator_by_username(username).await? {
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
                        fiscal_code: None,
                        full_name: full_name.into(),
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
