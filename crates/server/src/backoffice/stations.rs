//! The Ente's stations and their connection to the pagoPA Node
//! (administrators only). The Ente's administrator sees its stations; the
//! intermediary's, who runs them, adds and removes them and sets how each
//! reaches the Node. Secrets are never shown: a secret field left empty
//! keeps the one saved.

use super::catalogue::{Slice, messages, opt, slice};
use super::ui::{Chrome, ListParams, ListUrls, Table, export, page_with_status};
use super::{SignedIn, error_page, page};
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use incasso_app::sheet::{Cell, Sheet};
use incasso_app::{AppError, Kind, admin};
use incasso_core::access::Role;
use incasso_core::ente::StationLink;
use incasso_pagopa::connector::{Auth, ConnectionSettings, REDACTED, ReportingInterface};
use serde::Deserialize;

const SECTION: &str = "/backoffice/stazioni";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(SECTION, get(list).post(add))
        .route(
            "/backoffice/stazioni/{station}",
            get(connection_form).post(set_connection),
        )
        .route("/backoffice/stazioni/{station}/rimuovi", post(remove))
}

const LABELS: &[(&str, &str)] = &[
    ("brokerId", "Intermediario"),
    ("stationId", "Identificativo della stazione"),
    ("segregationCode", "Codice di segregazione"),
];

/// The intermediary's administrator, who alone configures stations.
fn intermediary(signed: &SignedIn) -> bool {
    signed.operator.rights.role == Role::IntermediaryAdmin
}

#[derive(Default, Deserialize)]
struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    stazione: String,
    #[serde(default)]
    intermediario: String,
    #[serde(default)]
    segregazione: String,
}

#[derive(Template)]
#[template(path = "backoffice/stations.html")]
struct ListPage {
    chrome: Chrome,
    table: Table,
    /// Station ids, for the buttons that remove them.
    stations: Vec<String>,
    can_write: bool,
    form: AddForm,
    errors: Vec<String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    esito: String,
    #[serde(flatten)]
    list: ListParams,
}

async fn list_page(
    state: &AppState,
    signed: &SignedIn,
    params: &ListParams,
    form: AddForm,
    errors: Vec<String>,
    notice: Option<&'static str>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(state, SECTION).await;
    let all = match admin::list_stations(&signed.ctx(state), &ente, None, Some(10_000)).await {
        Ok(p) => p.items,
        Err(e) => return error_page(chrome, &e),
    };
    let can_write = intermediary(signed);
    let keys = ["station", "broker", "segregation"];
    let sort = params.sort(&keys, "station");
    let Slice {
        rows,
        page: page_no,
        has_next,
        total,
    } = slice(all, params, |a: &StationLink, b: &StationLink| {
        match sort {
            "broker" => a.broker_id.cmp(&b.broker_id),
            "segregation" => a.segregation_code.cmp(&b.segregation_code),
            _ => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.station_id.cmp(&b.station_id))
    });
    let mut sheet = Sheet::new(
        "Stazioni",
        &["Stazione", "Intermediario", "Codice di segregazione"],
    );
    let mut links = Vec::new();
    for s in &rows {
        sheet.push(vec![
            Cell::text(&s.station_id),
            Cell::text(&s.broker_id),
            Cell::text(s.segregation_code_str()),
        ]);
        links.push(can_write.then(|| format!("{SECTION}/{}", s.station_id)));
    }
    if let Some(format) = params.export() {
        return export(&sheet, format, &format!("stazioni-{ente}"));
    }
    let stations = rows.iter().map(|s| s.station_id.clone()).collect();
    let table = Table::new(
        &sheet,
        &keys,
        &links,
        &ListUrls {
            path: SECTION,
            filters: vec![],
            sort,
            descending: params.descending(),
        },
        page_no,
        has_next,
    )
    .with_total(total as u64);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    page_with_status(
        &ListPage {
            chrome,
            table,
            stations,
            can_write,
            form,
            errors,
            notice,
        },
        status,
    )
}

async fn list(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    let notice = match q.esito.as_str() {
        "aggiunta" => Some("Stazione aggiunta."),
        "rimossa" => Some("Stazione rimossa."),
        "collegamento" => Some("Collegamento al nodo salvato."),
        _ => None,
    };
    list_page(
        &state,
        &signed,
        &q.list,
        AddForm::default(),
        Vec::new(),
        notice,
    )
    .await
}

async fn add(
    State(state): State<AppState>,
    signed: SignedIn,
    axum::Form(form): axum::Form<AddForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let Ok(segregation_code) = form.segregazione.trim().parse::<u8>() else {
        let errors = vec![format!(
            "Codice di segregazione: «{}» non è un numero di due cifre (00-99)",
            form.segregazione.trim()
        )];
        return list_page(&state, &signed, &ListParams::default(), form, errors, None).await;
    };
    let link = StationLink {
        broker_id: form.intermediario.trim().to_string(),
        station_id: form.stazione.trim().to_string(),
        segregation_code,
    };
    match admin::add_station(&signed.ctx(&state), &ente, &link).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?esito=aggiunta")).into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            let errors = messages(&e, LABELS);
            list_page(&state, &signed, &ListParams::default(), form, errors, None).await
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn remove(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(station): Path<String>,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    match admin::remove_station(&signed.ctx(&state), &ente, &station).await {
        Ok(()) => Redirect::to(&format!("{SECTION}?esito=rimossa")).into_response(),
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}

// ---------------------------------------------------------------- connection

/// The connection's fields as the form has them; secrets are never filled
/// in (empty: keep the saved one).
#[derive(Default, Deserialize)]
struct ConnectionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rest_url: String,
    #[serde(default)]
    soap_url: String,
    /// `none`, `subscription_key`, `basic`, `client_certificate`.
    #[serde(default)]
    auth: String,
    #[serde(default)]
    subscription_key: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    certificate_pem: String,
    #[serde(default)]
    key_pem: String,
    #[serde(default)]
    station_password: String,
    /// `soap` or `fdr3`.
    #[serde(default)]
    reporting: String,
    #[serde(default)]
    fdr3_page_size: String,
    #[serde(default)]
    timeout_ms: String,
    #[serde(default)]
    retries: String,
    #[serde(default)]
    backoff_ms: String,
}

impl ConnectionForm {
    fn of(c: &ConnectionSettings) -> ConnectionForm {
        let mut f = ConnectionForm {
            rest_url: c.rest_url.clone().unwrap_or_default(),
            soap_url: c.soap_url.clone().unwrap_or_default(),
            reporting: match c.reporting {
                ReportingInterface::Soap => "soap".into(),
                ReportingInterface::Fdr3 => "fdr3".into(),
            },
            fdr3_page_size: c.fdr3_page_size.to_string(),
            timeout_ms: c.timeout_ms.to_string(),
            retries: c.retries.to_string(),
            backoff_ms: c.backoff_ms.to_string(),
            ..ConnectionForm::default()
        };
        f.auth = match &c.auth {
            Auth::None => "none".into(),
            Auth::SubscriptionKey { .. } => "subscription_key".into(),
            Auth::Basic { username, .. } => {
                f.username = username.clone();
                "basic".into()
            }
            Auth::ClientCertificate {
                certificate_pem, ..
            } => {
                f.certificate_pem = certificate_pem.clone();
                "client_certificate".into()
            }
        };
        f
    }

    /// The settings the form describes, a secret left empty standing for
    /// the one saved (`***`, which the use case keeps); or what cannot be
    /// read.
    fn settings(&self) -> Result<ConnectionSettings, Vec<String>> {
        let mut problems = Vec::new();
        let secret = |s: &str| {
            if s.is_empty() {
                REDACTED.to_string()
            } else {
                s.to_string()
            }
        };
        let mut number = |label: &str, value: &str, default: u64| -> u64 {
            let v = value.trim();
            if v.is_empty() {
                return default;
            }
            v.parse::<u64>().unwrap_or_else(|_| {
                problems.push(format!("{label}: «{v}» non è un numero intero"));
                default
            })
        };
        let defaults = ConnectionSettings::default();
        let fdr3_page_size = number(
            "Elementi per pagina di FdR 3",
            &self.fdr3_page_size,
            u64::from(defaults.fdr3_page_size),
        );
        let timeout_ms = number("Attesa massima", &self.timeout_ms, defaults.timeout_ms);
        let retries = number(
            "Nuovi tentativi",
            &self.retries,
            u64::from(defaults.retries),
        );
        let backoff_ms = number(
            "Pausa tra i tentativi",
            &self.backoff_ms,
            defaults.backoff_ms,
        );
        if !(1..=1000).contains(&fdr3_page_size) {
            problems.push("Elementi per pagina di FdR 3: da 1 a 1000".into());
        }
        if retries > 10 {
            problems.push("Nuovi tentativi: al più 10".into());
        }
        let auth = match self.auth.as_str() {
            "" | "none" => Auth::None,
            "subscription_key" => Auth::SubscriptionKey {
                key: secret(self.subscription_key.trim()),
            },
            "basic" => {
                if self.username.trim().is_empty() {
                    problems.push("Nome utente: obbligatorio per l'autenticazione di base".into());
                }
                Auth::Basic {
                    username: self.username.trim().to_string(),
                    password: secret(&self.password),
                }
            }
            "client_certificate" => {
                if self.certificate_pem.trim().is_empty() {
                    problems.push(
                        "Certificato del client: obbligatorio per l'autenticazione con certificato"
                            .into(),
                    );
                }
                Auth::ClientCertificate {
                    certificate_pem: self.certificate_pem.trim().to_string(),
                    key_pem: secret(self.key_pem.trim()),
                }
            }
            other => {
                problems.push(format!("Autenticazione: «{other}» non prevista"));
                Auth::None
            }
        };
        let reporting = match self.reporting.as_str() {
            "fdr3" => ReportingInterface::Fdr3,
            _ => ReportingInterface::Soap,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ConnectionSettings {
            connector: "pagopa".into(),
            rest_url: opt(&self.rest_url),
            soap_url: opt(&self.soap_url),
            auth,
            station_password: Some(secret(&self.station_password)),
            reporting,
            fdr3_page_size: fdr3_page_size as u32,
            timeout_ms,
            retries: retries as u32,
            backoff_ms,
        })
    }
}

#[derive(Template)]
#[template(path = "backoffice/stations_connection.html")]
struct ConnectionPage {
    chrome: Chrome,
    station: String,
    form: ConnectionForm,
    /// Which secrets are saved (shown as such, never their value).
    saved: Vec<&'static str>,
    configured: bool,
    errors: Vec<String>,
}

/// The saved secrets of a redacted connection, by the form's field.
fn saved_secrets(c: Option<&ConnectionSettings>) -> Vec<&'static str> {
    let Some(c) = c else { return Vec::new() };
    let mut out = Vec::new();
    if c.station_password.is_some() {
        out.push("station_password");
    }
    match &c.auth {
        Auth::SubscriptionKey { .. } => out.push("subscription_key"),
        Auth::Basic { .. } => out.push("password"),
        Auth::ClientCertificate { .. } => out.push("key_pem"),
        Auth::None => {}
    }
    out
}

/// The connection as saved (redacted), or none yet; a refusal as is.
async fn saved(
    state: &AppState,
    signed: &SignedIn,
    ente: &str,
    station: &str,
) -> Result<Option<ConnectionSettings>, AppError> {
    match admin::connection(&signed.ctx(state), ente, station).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.kind == Kind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn connection_form(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(station): Path<String>,
) -> Response {
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    let chrome = signed.chrome(&state, SECTION).await;
    match saved(&state, &signed, &ente, &station).await {
        Ok(c) => page(&ConnectionPage {
            chrome,
            station,
            form: ConnectionForm::of(c.as_ref().unwrap_or(&ConnectionSettings::default())),
            saved: saved_secrets(c.as_ref()),
            configured: c.is_some(),
            errors: Vec::new(),
        }),
        Err(e) => error_page(chrome, &e),
    }
}

async fn set_connection(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(station): Path<String>,
    axum::Form(form): axum::Form<ConnectionForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r;
    }
    let ente = match signed.ente() {
        Ok(e) => e.to_string(),
        Err(r) => return r,
    };
    // What is saved tells whether an empty station password keeps one or
    // means none at all.
    let stored = match saved(&state, &signed, &ente, &station).await {
        Ok(c) => c,
        Err(e) => return error_page(signed.chrome(&state, SECTION).await, &e),
    };
    let back = |form: ConnectionForm, errors: Vec<String>| {
        let state = state.clone();
        let signed = &signed;
        let station = station.clone();
        let stored = stored.clone();
        async move {
            page_with_status(
                &ConnectionPage {
                    chrome: signed.chrome(&state, SECTION).await,
                    station,
                    form,
                    saved: saved_secrets(stored.as_ref()),
                    configured: stored.is_some(),
                    errors,
                },
                StatusCode::BAD_REQUEST,
            )
        }
    };
    let mut settings = match form.settings() {
        Ok(s) => s,
        Err(problems) => return back(form, problems).await,
    };
    if form.station_password.is_empty()
        && stored.as_ref().is_none_or(|s| s.station_password.is_none())
    {
        settings.station_password = None;
    }
    match admin::set_connection(&signed.ctx(&state), &ente, &station, settings).await {
        Ok(_) => Redirect::to(&format!("{SECTION}?esito=collegamento")).into_response(),
        Err(e) if e.kind == Kind::Invalid => {
            let errors = messages(
                &e,
                &[
                    ("station_password", "Password della stazione"),
                    ("auth.key", "Chiave di sottoscrizione"),
                    ("auth.password", "Password"),
                    ("auth.key_pem", "Chiave privata del client"),
                ],
            );
            back(form, errors).await
        }
        Err(e) => error_page(signed.chrome(&state, SECTION).await, &e),
    }
}
