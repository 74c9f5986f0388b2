//! DigitPOS: the payment API other applications' portals call with an
//! Ente's API key (issue 18). Five use cases, each the same position,
//! notice, receipt and reconciliation as every other channel's:
//!
//! 1. [`pay_spontaneous`]: a catalogue service's form answered by the
//!    caller's portal makes a position (as the citizen portal's spontaneous
//!    payment does, through [`crate::portal::spontaneous::open`], so that
//!    the abandonment job cancels it if never paid) and opens a pagoPA
//!    Checkout cart that sends the payer back to the caller's return URLs;
//! 2. [`load_position`]: a position loaded for later payment (its notice
//!    number and the link of its notice PDF);
//! 3. [`pay_position`]: a Checkout cart for a position already in incasso,
//!    by notice number or by the caller's key (iupd);
//! 4. [`notice_pdf`];
//! 5. [`receipt`] and [`receipt_pdf`] (the *quietanza*), once paid.
//!
//! Around them: the return hosts each Ente registers (a payer is sent back
//! only to a site the Ente vouched for) and the idempotency keys of every
//! POST ([`claim`], [`complete`], [`release`]).

use crate::error::{AppError, At, Kind, Place};
use crate::portal::notice::{self, NoticeStatus};
use crate::portal::spontaneous::{self, ServiceForm};
use crate::{App, Caller, Ctx};
use chrono::{DateTime, NaiveDate, Utc};
use incasso_core::access::{Access, Area};
use incasso_core::form::{self, Accepted, Answers, FormDef};
use incasso_core::position::PositionStatus;
use incasso_core::{Cents, FieldError};
use incasso_pagopa::connector::{Cart, CartNotice, ReturnUrls as CheckoutReturnUrls};
use incasso_store::{IdempotencyClaim, KeyScope, ReturnHostRecord, StoreError, StoredPosition};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// How long an idempotency key's first request may run before another
/// request with it takes over (its process is taken to have died): longer
/// than Checkout's timeouts and retries.
pub const CLAIM_HOLDS_FOR: chrono::Duration = chrono::Duration::minutes(2);

/// How long an answer is kept for replay. A client retries within
/// minutes; a day covers a retry queue that waited out an outage.
pub const KEYS_KEPT_FOR: chrono::Duration = chrono::Duration::hours(24);

/// Positions loaded for later payment without a due date are due so many
/// days after.
pub const DEFAULT_DUE_DAYS: u64 = 30;

/// Every DigitPOS position made without the caller's own key has an iupd
/// starting so (the spontaneous ones keep the portal's `PS-`).
pub const IUPD_PREFIX: &str = "DP-";

/// The payer and their contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Debtor {
    pub fiscal_code: String,
    pub name: String,
    pub email: Option<String>,
}

/// Where Checkout sends the payer back: the caller's own pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnUrls {
    pub ok: String,
    pub cancel: String,
    pub error: String,
}

/// What is to be paid for a catalogue service: the service's form answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAnswers {
    pub service_code: String,
    pub debtor: Debtor,
    /// The form's own fields, by name.
    pub fields: BTreeMap<String, String>,
    /// The amount, where the form lets the payer type it (a range), or
    /// one of its table's amounts; with a fixed amount, if given, it must
    /// be that one.
    pub amount_cents: Option<i64>,
    /// The row of the form's amount table (from 0), instead of
    /// `amount_cents`.
    pub amount_choice: Option<u32>,
}

/// Use case 1's request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpontaneousPayment {
    pub answers: ServiceAnswers,
    pub return_urls: ReturnUrls,
    /// Where pagoPA sends its own receipt of the payment.
    pub email_notice: Option<String>,
}

/// Use case 2's request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadPosition {
    pub answers: ServiceAnswers,
    /// The last day it is payable (Rome); [`DEFAULT_DUE_DAYS`] from today
    /// if absent.
    pub due_date: Option<NaiveDate>,
    /// The caller's own key for the position (iupd).
    pub iupd: Option<String>,
}

/// Use case 3's request: a notice number, or the caller's key of a
/// position with one payable notice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayPosition {
    pub notice_number: Option<String>,
    pub iupd: Option<String>,
    /// The amount the caller showed the payer: refused if the notice's is
    /// another.
    pub amount_cents: Option<i64>,
    pub return_urls: ReturnUrls,
    pub email_notice: Option<String>,
}

/// A position, as the answers tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub iupd: String,
    pub notice_number: String,
    pub iuv: String,
    pub amount: Cents,
    pub description: String,
    pub due_date: DateTime<Utc>,
    /// The notice PDF (use case 4) under incasso's public URL.
    pub notice_pdf_url: String,
}

/// A Checkout cart opened for a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub issued: Issued,
    /// Where to send the payer.
    pub checkout_url: String,
}

/// A paid notice's receipt, as the Node sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptData {
    pub receipt_id: String,
    pub notice_number: String,
    pub iuv: String,
    pub iupd: Option<String>,
    pub amount: Cents,
    pub fee: Option<Cents>,
    pub description: String,
    pub paid_at: Option<DateTime<Utc>>,
    pub psp_id: Option<String>,
    pub psp_name: String,
    pub payment_method: Option<String>,
    pub debtor_fiscal_code: Option<String>,
    pub payer_fiscal_code: Option<String>,
    /// The quietanza PDF (use case 5) under incasso's public URL.
    pub receipt_pdf_url: String,
}

// ------------------------------------------------------------ the checks

fn field_error(field: &str, code: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        code,
        message: message.into(),
    }
}

/// One wrong field, as a 400 naming it.
fn invalid_field(field: &str, code: &'static str, message: impl Into<String>) -> AppError {
    let message = message.into();
    let mut e = AppError::invalid(code, format!("{field}: {message}"));
    e.errors = vec![field_error(field, code, message)];
    e
}

/// The notice number as sent, checked (18 digits), or a 400 naming the
/// field.
fn notice_number(field: &str, nav: &str) -> Result<String, AppError> {
    notice::parse_notice_number(nav)
        .map(|n| n.as_str().to_string())
        .map_err(|e| invalid_field(field, "BAD_NOTICE_NUMBER", e.detail))
}

/// The pagoPA email address for the receipt, if any.
fn email_notice(email: Option<&str>) -> Result<Option<String>, AppError> {
    crate::portal::cart::parse_email(email)
        .map_err(|e| invalid_field("emailNotice", "BAD_EMAIL", e.detail))
}

/// A host name as the Ente registers it: lower case, letters, digits,
/// dots and hyphens (an IPv4 address is one of these), at most 253.
pub fn normalize_host(host: &str) -> Result<String, AppError> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(invalid_field(
            "host",
            "BAD_HOST",
            "nome di host non valido: solo il nome, senza schema, porta o percorso \
             (per esempio pagamenti.comune.example.it)",
        ));
    }
    Ok(host)
}

/// The host of an absolute http(s) URL, lower case, and whether it is
/// https; `None` when it is not such a URL.
fn url_host(url: &str) -> Option<(String, bool)> {
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // No credentials in a return URL: `https://good.example@evil.example/`
    // goes to evil.example.
    if authority.contains('@') || authority.contains('[') {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return None,
        None => authority,
    };
    normalize_host(host).ok().map(|h| (h, https))
}

/// Checks the caller's return URLs: absolute, https (http only on this
/// machine, for demos and tests), on a host the Ente registered.
async fn check_return_urls(ctx: &Ctx, ente: &str, urls: &ReturnUrls) -> Result<(), AppError> {
    let at = Place::new("digitpos.return_urls", ente, "");
    let mut errors = Vec::new();
    let mut checked: Vec<(&str, String)> = Vec::new();
    for (field, url) in [
        ("returnUrls.ok", &urls.ok),
        ("returnUrls.cancel", &urls.cancel),
        ("returnUrls.error", &urls.error),
    ] {
        match url_host(url.trim()) {
            None => errors.push(field_error(
                field,
                "BAD_RETURN_URL",
                "indirizzo non valido: un URL assoluto https://host/percorso, senza credenziali",
            )),
            Some((host, false)) if !matches!(host.as_str(), "localhost" | "127.0.0.1") => errors
                .push(field_error(
                    field,
                    "RETURN_URL_NOT_HTTPS",
                    "l'indirizzo di ritorno deve essere https (http solo per localhost)",
                )),
            Some((host, _)) => checked.push((field, host)),
        }
    }
    if !errors.is_empty() {
        let mut e = AppError::invalid(
            errors[0].code,
            format!("{}: {}", errors[0].field, errors[0].message),
        );
        e.errors = errors;
        return Err(e);
    }
    // One read for the three: an Ente registers a few hosts.
    let registered = if checked.is_empty() {
        Vec::new()
    } else {
        ctx.store().list_return_hosts(ente).await.at(at)?
    };
    let unregistered: Vec<(&str, String)> = checked
        .into_iter()
        .filter(|(_, host)| !registered.iter().any(|r| &r.host == host))
        .collect();
    if let Some((_, host)) = unregistered.first() {
        let mut e = AppError::new(
            Kind::Unprocessable,
            "RETURN_HOST_NOT_REGISTERED",
            format!(
                "l'host {host} non è tra quelli registrati dall'ente per gli indirizzi di \
                 ritorno: l'amministratore dell'ente lo registra con \
                 POST /api/v1/enti/{ente}/digitpos/return-hosts"
            ),
        );
        e.errors = unregistered
            .iter()
            .map(|(field, host)| {
                field_error(
                    field,
                    "RETURN_HOST_NOT_REGISTERED",
                    format!("host {host} non registrato"),
                )
            })
            .collect();
        return Err(e);
    }
    Ok(())
}

/// The service's form error names as the API's fields.
fn api_field(name: &str, choice: bool) -> String {
    match name {
        form::DEBTOR_FISCAL_CODE => "debtor.fiscalCode".into(),
        form::DEBTOR_NAME => "debtor.name".into(),
        form::EMAIL => "debtor.email".into(),
        form::AMOUNT if choice => "amountChoice".into(),
        form::AMOUNT => "amountCents".into(),
        other => format!("fields.{other}"),
    }
}

fn unknown_service(code: &str) -> AppError {
    let mut e = AppError::new(
        Kind::Unprocessable,
        "SERVICE_NOT_FOUND",
        format!(
            "serviceCode: il servizio '{code}' non esiste nel catalogo dell'ente o non è attivo"
        ),
    );
    e.errors = vec![field_error(
        "serviceCode",
        "SERVICE_NOT_FOUND",
        "servizio inesistente o non attivo",
    )];
    e
}

/// The answers as the form takes them, and the form's verdict; errors
/// name the API's fields (`fields.pratica`, `debtor.fiscalCode`,
/// `amountCents`).
fn accept(f: &ServiceForm, a: &ServiceAnswers) -> Result<Accepted, AppError> {
    let mut answers: Answers = a
        .fields
        .iter()
        .filter(|(k, _)| !form::RESERVED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    answers.insert(
        form::DEBTOR_FISCAL_CODE.into(),
        a.debtor.fiscal_code.clone(),
    );
    answers.insert(form::DEBTOR_NAME.into(), a.debtor.name.clone());
    if let Some(email) = &a.debtor.email {
        answers.insert(form::EMAIL.into(), email.clone());
    }
    let mut early = Vec::new();
    if a.amount_cents.is_some() && a.amount_choice.is_some() {
        early.push(field_error(
            "amountChoice",
            "AMOUNT_TWICE",
            "indicare amountCents oppure amountChoice, non entrambi",
        ));
    }
    if let Some(c) = a.amount_cents
        && (c < 1 || Cents(c) > Cents::MAX_AMOUNT)
    {
        early.push(field_error(
            "amountCents",
            "AMOUNT_OUT_OF_RANGE",
            format!(
                "l'importo va da 1 centesimo a {} €",
                Cents::MAX_AMOUNT.to_italian()
            ),
        ));
    }
    if !early.is_empty() {
        return Err(spontaneous::rejected(early));
    }
    let choice = a.amount_choice.is_some();
    match (&f.def.amount, a.amount_cents, a.amount_choice) {
        (form::Amount::Fixed(fixed), Some(c), _) if c != fixed.0 => {
            let mut e = AppError::new(
                Kind::Unprocessable,
                "AMOUNT_MISMATCH",
                format!(
                    "amountCents: il servizio ha un importo fisso di {} €, non {} €",
                    fixed.to_italian(),
                    Cents(c).to_italian()
                ),
            );
            e.errors = vec![field_error(
                "amountCents",
                "AMOUNT_MISMATCH",
                format!("l'importo del servizio è {} centesimi", fixed.0),
            )];
            return Err(e);
        }
        (form::Amount::Fixed(_), _, Some(_)) => {
            return Err(spontaneous::rejected(vec![field_error(
                "amountChoice",
                "NOT_A_CHOICE",
                "il servizio ha un importo fisso: non si sceglie",
            )]));
        }
        (form::Amount::Range { .. }, _, Some(_)) => {
            return Err(spontaneous::rejected(vec![field_error(
                "amountChoice",
                "NOT_A_CHOICE",
                "il servizio non ha una tabella di importi: indicare amountCents",
            )]));
        }
        (form::Amount::Range { .. }, Some(c), None) => {
            answers.insert(form::AMOUNT.into(), Cents(c).to_decimal());
        }
        (form::Amount::Table(rows), Some(c), None) => {
            match rows.iter().position(|r| r.cents.0 == c) {
                Some(i) => {
                    answers.insert(form::AMOUNT.into(), i.to_string());
                }
                None => {
                    let allowed: Vec<String> = rows.iter().map(|r| r.cents.0.to_string()).collect();
                    return Err(spontaneous::rejected(vec![field_error(
                        "amountCents",
                        "NOT_A_CHOICE",
                        format!(
                            "l'importo deve essere uno di quelli del servizio (centesimi: {})",
                            allowed.join(", ")
                        ),
                    )]));
                }
            }
        }
        (form::Amount::Table(_), None, Some(i)) => {
            answers.insert(form::AMOUNT.into(), i.to_string());
        }
        _ => {}
    }
    f.def.check(&answers).map_err(|i| {
        spontaneous::rejected(
            i.0.into_iter()
                .map(|e| FieldError {
                    field: api_field(&e.field, choice),
                    ..e
                })
                .collect(),
        )
    })
}

/// The service `code` with the form its positions are made from: its
/// defined form; a fixed amount's minimal one; for use case 2 only, a
/// service without either takes any amount the caller gives (its
/// positions are the Ente's own business, not an open offer).
async fn service_form(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    spontaneous_only: bool,
) -> Result<ServiceForm, AppError> {
    if code.trim().is_empty() {
        return Err(invalid_field(
            "serviceCode",
            "REQUIRED",
            "campo obbligatorio",
        ));
    }
    if !incasso_core::text::is_safe_identifier(code, 35) {
        return Err(unknown_service(code));
    }
    let at = Place::new("digitpos.service", ente, code);
    // Both read at once: the create call's latency is a target.
    let (service, saved) = tokio::join!(
        ctx.store().get_service(ente, code),
        ctx.store().service_form(ente, code)
    );
    let service = match service {
        Ok(s) if s.active && (s.spontaneous || !spontaneous_only) => s,
        Ok(_) | Err(StoreError::NotFound(_)) => return Err(unknown_service(code)),
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    match spontaneous::form_from(ente, service.clone(), saved.at(at)?)? {
        Some(f) => Ok(f),
        None if spontaneous_only => Err(unknown_service(code)),
        None => Ok(ServiceForm {
            def: FormDef {
                fields: Vec::new(),
                amount: form::Amount::Range {
                    min: Cents(1),
                    max: Cents::MAX_AMOUNT,
                },
                causale: service.name.chars().take(form::MAX_CAUSALE).collect(),
            },
            service,
            version: None,
        }),
    }
}

fn issued(
    ctx: &Ctx,
    ente: &str,
    stored: &StoredPosition,
    index: usize,
) -> Result<Issued, AppError> {
    let p = &stored.position;
    let o = &p.options[index];
    let nav = o
        .notice_number
        .as_ref()
        .ok_or_else(|| {
            AppError::internal(
                &Place::new("digitpos.issued", ente, &p.iupd),
                &StoreError::NotFound("avviso"),
            )
        })?
        .as_str()
        .to_string();
    Ok(Issued {
        iupd: p.iupd.clone(),
        iuv: o
            .iuv
            .clone()
            .unwrap_or_else(|| nav.get(1..).unwrap_or_default().to_string()),
        notice_pdf_url: format!(
            "{}/api/v1/enti/{ente}/digitpos/notices/{nav}/pdf",
            ctx.settings().public_url
        ),
        notice_number: nav,
        amount: o.amount,
        description: o.description.clone(),
        due_date: o.due_date,
    })
}

/// Opens a pagoPA Checkout cart for notice `index` of `stored`, through
/// the station that owns it, sending the payer back to the caller's URLs.
async fn open_checkout(
    ctx: &Ctx,
    ente: &str,
    stored: &StoredPosition,
    index: usize,
    urls: &ReturnUrls,
    email: Option<String>,
) -> Result<Started, AppError> {
    let issued = issued(ctx, ente, stored, index)?;
    let p = &stored.position;
    let connector = crate::checkout::station_connector(ctx, ente, &issued.notice_number).await?;
    let cart = Cart {
        payment_notices: vec![CartNotice {
            notice_number: issued.notice_number.clone(),
            fiscal_code: ente.to_string(),
            amount: issued.amount.0,
            company_name: p.company_name.chars().take(140).collect(),
            description: issued.description.chars().take(140).collect(),
        }],
        return_urls: CheckoutReturnUrls {
            return_ok_url: urls.ok.trim().to_string(),
            return_cancel_url: urls.cancel.trim().to_string(),
            return_error_url: urls.error.trim().to_string(),
        },
        email_notice: email,
        id_cart: None,
    };
    let checkout_url = crate::checkout::create_cart(connector.as_ref(), ente, &cart).await?;
    Ok(Started {
        issued,
        checkout_url,
    })
}

/// An Ente none of whose stations reaches the Node cannot take a payment
/// through Checkout: refused before any position is made for it.
async fn require_served(ctx: &Ctx, ente: &str) -> Result<(), AppError> {
    let at = Place::new("digitpos.served", ente, "");
    for s in ctx.app.stations.get(ctx.store(), ente).await.at(at)? {
        if ctx
            .app
            .stations
            .connection(ctx.store(), ente, &s.station_id)
            .await
            .at(at)?
            .is_some()
        {
            return Ok(());
        }
    }
    Err(AppError::conflict(
        "ENTE_NOT_SERVED",
        "l'ente non ha una stazione collegata al nodo pagoPA: i suoi pagamenti non possono \
         passare da Checkout",
    ))
}

// ------------------------------------------------------------ use cases

/// The one-time token of the spontaneous payment made for idempotency key
/// `key` of the caller: the same key always makes the same position, even
/// after its first request died half-way.
fn spontaneous_token(ctx: &Ctx, ente: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("digitpos\n{ente}\n{}\n{key}", ctx.caller.actor()));
    crate::keys::hex(&digest[..16])
}

/// Use case 1: makes the position of a spontaneous service's form and
/// opens its Checkout cart. `idempotency_key` names the request (the same
/// key finds the same position); checked before: the return URLs, then
/// the service and the form.
pub async fn pay_spontaneous(
    ctx: &Ctx,
    ente: &str,
    idempotency_key: &str,
    req: &SpontaneousPayment,
) -> Result<Started, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    let email = email_notice(req.email_notice.as_deref())?;
    check_return_urls(ctx, ente, &req.return_urls).await?;
    let f = service_form(ctx, ente, &req.answers.service_code, true).await?;
    let accepted = accept(&f, &req.answers)?;
    require_served(ctx, ente).await?;
    let token = spontaneous_token(ctx, ente, idempotency_key);
    let (stored, _) = spontaneous::open(ctx, ente, &f, &accepted, &token).await?;
    let email = email.or_else(|| stored.position.debtor.email.clone());
    open_checkout(ctx, ente, &stored, 0, &req.return_urls, email).await
}

/// What a use case run under its idempotency key answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keyed {
    /// The same request was answered before: this answer again.
    Replay { status: u16, body: String },
    /// This request's answer, kept for replay.
    Answered { status: u16, body: String },
}

/// Use case 1 under idempotency key `key` of the request whose
/// [`fingerprint`] is `fingerprint`: [`claim`], [`pay_spontaneous`] and
/// [`complete`] (or [`release`]) in fewer steps. A new key's claim is
/// written in the position's own transaction (with the spontaneous request
/// and the audit event), so a payment costs SQLite's single writer two
/// turns (that and the completion) instead of seven. `render` makes the
/// answer kept for replay.
///
/// Crash safety is the claim-first design's: the claim commits with the
/// position, PENDING, before Checkout is called; a process that dies
/// before the completion leaves it PENDING, so the same key is answered
/// `IDEMPOTENCY_KEY_IN_PROGRESS` until [`CLAIM_HOLDS_FOR`] has passed and
/// then runs again step by step, finding the same position (its iupd comes
/// from the key) and opening a Checkout cart for it. A request refused
/// before any write has claimed nothing; its key still answers first, as
/// [`claim`] would have (a replay, `IDEMPOTENCY_KEY_REUSED`,
/// `IDEMPOTENCY_KEY_IN_PROGRESS`).
pub async fn pay_spontaneous_keyed(
    ctx: &Ctx,
    ente: &str,
    key: &str,
    fingerprint: &str,
    req: &SpontaneousPayment,
    render: impl FnOnce(Started) -> (u16, String),
) -> Result<Keyed, AppError> {
    ctx.caller.require_ente(ente)?;
    let ticket = Ticket {
        ente: ente.to_string(),
        caller: ctx.caller.actor(),
        key: key.to_string(),
    };
    let made = match spontaneous_claimed(ctx, ente, key, fingerprint, req).await {
        Ok(made) => made,
        Err(refused) => {
            let at = Place::new("digitpos.claim", ente, key);
            let now = ctx.now();
            let found = ctx
                .store()
                .peek_idempotency(
                    ente,
                    &ticket.caller,
                    key,
                    fingerprint,
                    now - CLAIM_HOLDS_FOR,
                )
                .await
                .at(at)?;
            return match found {
                None | Some(IdempotencyClaim::Claimed) => Err(refused),
                Some(IdempotencyClaim::Replay { status, body }) => {
                    Ok(Keyed::Replay { status, body })
                }
                Some(IdempotencyClaim::Mismatch) => Err(key_reused()),
                Some(IdempotencyClaim::InProgress) => Err(key_in_progress()),
            };
        }
    };
    let started = match made {
        Some((stored, email)) => {
            match open_checkout(ctx, ente, &stored, 0, &req.return_urls, email).await {
                Ok(s) => s,
                Err(e) => {
                    release(ctx, &ticket).await;
                    return Err(e);
                }
            }
        }
        // The key, the token or the position was there: step by step.
        None => match claim(ctx, ente, key, fingerprint).await? {
            Claimed::Replay { status, body } => return Ok(Keyed::Replay { status, body }),
            Claimed::Run(t) => match pay_spontaneous(ctx, ente, key, req).await {
                Ok(s) => s,
                Err(e) => {
                    release(ctx, &t).await;
                    return Err(e);
                }
            },
        },
    };
    let (status, body) = render(started);
    if let Err(e) = complete(ctx, &ticket, status, &body).await {
        // The effect is done: answer it; a retry runs again and finds it.
        tracing::warn!(ente, error = %e, "idempotent answer not stored");
        release(ctx, &ticket).await;
    }
    Ok(Keyed::Answered { status, body })
}

/// [`pay_spontaneous`]'s checks, then the position made with the key
/// claimed ([`spontaneous::open_claimed`]); `None` when the key, the
/// token or the position is there already.
async fn spontaneous_claimed(
    ctx: &Ctx,
    ente: &str,
    key: &str,
    fingerprint: &str,
    req: &SpontaneousPayment,
) -> Result<Option<(StoredPosition, Option<String>)>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    let email = email_notice(req.email_notice.as_deref())?;
    check_return_urls(ctx, ente, &req.return_urls).await?;
    let f = service_form(ctx, ente, &req.answers.service_code, true).await?;
    let accepted = accept(&f, &req.answers)?;
    require_served(ctx, ente).await?;
    let token = spontaneous_token(ctx, ente, key);
    let made =
        spontaneous::open_claimed(ctx, ente, &f, &accepted, &token, key, fingerprint).await?;
    Ok(made.map(|stored| {
        let email = email.or_else(|| stored.position.debtor.email.clone());
        (stored, email)
    }))
}

/// The caller's key for a position, checked; or one made from the
/// idempotency key, so that a retry finds the same position.
fn iupd_of(
    ctx: &Ctx,
    ente: &str,
    given: Option<&str>,
    idempotency_key: &str,
) -> Result<String, AppError> {
    match given.map(str::trim) {
        Some(iupd) => {
            if !incasso_core::position::is_valid_iupd(iupd) || iupd.len() > 35 {
                return Err(invalid_field(
                    "iupd",
                    "BAD_IUPD",
                    "da 1 a 35 caratteri tra lettere, cifre, '-', '_' e '*'",
                ));
            }
            if iupd.starts_with(spontaneous::IUPD_PREFIX) {
                return Err(invalid_field(
                    "iupd",
                    "BAD_IUPD",
                    format!(
                        "il prefisso {} è riservato ai pagamenti spontanei",
                        spontaneous::IUPD_PREFIX
                    ),
                ));
            }
            Ok(iupd.to_string())
        }
        None => Ok(format!(
            "{IUPD_PREFIX}{}",
            spontaneous_token(ctx, ente, idempotency_key).to_uppercase()
        )),
    }
}

/// Use case 2: loads a position for later payment; answers its notice.
/// The same iupd again with the same service, debtor and amount answers
/// the position made before; with anything else, a conflict.
pub async fn load_position(
    ctx: &Ctx,
    ente: &str,
    idempotency_key: &str,
    req: &LoadPosition,
) -> Result<Issued, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    let iupd = iupd_of(ctx, ente, req.iupd.as_deref(), idempotency_key)?;
    let today = incasso_core::time::to_rome(ctx.now()).date();
    let due_day = match req.due_date {
        Some(d) if d < today => {
            return Err(invalid_field(
                "dueDate",
                "DUE_DATE_PAST",
                "la scadenza non può essere passata",
            ));
        }
        Some(d) => d,
        None => today
            .checked_add_days(chrono::Days::new(DEFAULT_DUE_DAYS))
            .unwrap_or(today),
    };
    let f = service_form(ctx, ente, &req.answers.service_code, false).await?;
    let accepted = accept(&f, &req.answers)?;
    let due = spontaneous::end_of(due_day);
    let stored = crate::audit::audited(ctx, Some(ente), "digitpos.load", &iupd, async {
        spontaneous::create(ctx, ente, &f, &accepted, &iupd, due).await
    })
    .await?;
    // `create` reads back a position already there: the same request
    // again, or another with the same iupd.
    let p = &stored.position;
    let o = &p.options[0];
    let same = p.options.len() == 1
        && stored.placement.service.as_deref() == Some(f.service.code.as_str())
        && p.debtor
            .fiscal_code
            .eq_ignore_ascii_case(&accepted.debtor_fiscal_code)
        && o.amount == accepted.amount;
    if !same {
        let mut e = AppError::conflict(
            "IUPD_ALREADY_USED",
            format!(
                "iupd: la posizione {iupd} esiste già con un altro servizio, debitore o importo"
            ),
        );
        e.errors = vec![field_error(
            "iupd",
            "IUPD_ALREADY_USED",
            "posizione già esistente",
        )];
        return Err(e);
    }
    issued(ctx, ente, &stored, 0)
}

/// The notice to pay of `req`: by notice number, or the one payable
/// notice of the caller's position.
async fn notice_to_pay(
    ctx: &Ctx,
    ente: &str,
    req: &PayPosition,
) -> Result<(StoredPosition, usize), AppError> {
    let at = Place::new("digitpos.pay", ente, "");
    match (req.notice_number.as_deref(), req.iupd.as_deref()) {
        (Some(_), Some(_)) | (None, None) => Err(invalid_field(
            "noticeNumber",
            "NOTICE_OR_IUPD",
            "indicare il numero avviso (noticeNumber) oppure la chiave della posizione (iupd), uno solo",
        )),
        (Some(nav), None) => {
            let nav = notice_number("noticeNumber", nav)?;
            let (stored, index, status) = notice::find(ctx, ente, &nav).await?;
            refuse_unpayable(status, &nav)?;
            Ok((stored, index))
        }
        (None, Some(iupd)) => {
            let stored = match ctx.store().get_position(ente, iupd.trim()).await {
                Ok(s) => s,
                Err(StoreError::NotFound(_)) => {
                    return Err(AppError::new(
                        Kind::NotFound,
                        "POSITION_NOT_FOUND",
                        format!("iupd: nessuna posizione con chiave '{}'", iupd.trim()),
                    ));
                }
                Err(e) => return Err(crate::error::from_store(e, &at)),
            };
            let navs: Vec<String> = stored
                .position
                .options
                .iter()
                .filter_map(|o| o.notice_number.as_ref().map(|n| n.as_str().to_string()))
                .collect();
            let mut payable = Vec::new();
            let mut last_refusal = None;
            for nav in navs {
                let (found, index, status) = notice::find(ctx, ente, &nav).await?;
                match status {
                    NoticeStatus::Payable => payable.push((found, index)),
                    s => last_refusal = Some((s, nav)),
                }
            }
            match payable.len() {
                1 => Ok(payable.remove(0)),
                0 => match last_refusal {
                    Some((s, nav)) => {
                        refuse_unpayable(s, &nav)?;
                        Err(notice::unknown_notice())
                    }
                    None => Err(notice::unknown_notice()),
                },
                n => Err(AppError::new(
                    Kind::Unprocessable,
                    "SEVERAL_NOTICES",
                    format!(
                        "la posizione ha {n} avvisi pagabili (rate o alternative): indicare \
                         noticeNumber per quello da pagare"
                    ),
                )),
            }
        }
    }
}

fn refuse_unpayable(status: NoticeStatus, nav: &str) -> Result<(), AppError> {
    match status.refusal() {
        None => Ok(()),
        Some((code, text)) => Err(AppError::conflict(code, format!("Avviso {nav}: {text}"))),
    }
}

/// Use case 3: a Checkout cart for a notice already in incasso. A paid,
/// expired or cancelled one is refused with its code (`NOTICE_PAID`,
/// `NOTICE_EXPIRED`, `NOTICE_CANCELLED`), as is an amount other than the
/// notice's (`AMOUNT_MISMATCH`).
pub async fn pay_position(ctx: &Ctx, ente: &str, req: &PayPosition) -> Result<Started, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let email = email_notice(req.email_notice.as_deref())?;
    check_return_urls(ctx, ente, &req.return_urls).await?;
    let (stored, index) = notice_to_pay(ctx, ente, req).await?;
    let stored = crate::positions::in_scope(ctx, stored)?;
    let amount = stored.position.options[index].amount;
    if let Some(c) = req.amount_cents
        && c != amount.0
    {
        let mut e = AppError::new(
            Kind::Unprocessable,
            "AMOUNT_MISMATCH",
            format!(
                "amountCents: l'avviso è di {} €, non di {} €",
                amount.to_italian(),
                Cents(c).to_italian()
            ),
        );
        e.errors = vec![field_error(
            "amountCents",
            "AMOUNT_MISMATCH",
            format!("l'importo dell'avviso è {} centesimi", amount.0),
        )];
        return Err(e);
    }
    let email = email.or_else(|| stored.position.debtor.email.clone());
    open_checkout(ctx, ente, &stored, index, &req.return_urls, email).await
}

/// Use case 4: the notice PDF of notice number `nav`.
pub async fn notice_pdf(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
    lang: incasso_notice::Language,
) -> Result<Vec<u8>, AppError> {
    let nav = notice_number("noticeNumber", nav)?;
    match crate::notices::notice_pdf(ctx, ente, &nav, lang).await {
        Err(e) if e.kind == Kind::NotFound => Err(notice::unknown_notice()),
        other => other,
    }
}

/// The paid receipt of notice `nav`, with its RT; 404 `NOTICE_NOT_FOUND`
/// for a notice incasso does not have, `RECEIPT_NOT_AVAILABLE` for one
/// not paid (yet).
async fn paid_receipt(
    ctx: &Ctx,
    ente: &str,
    nav: &str,
) -> Result<
    (
        StoredPosition,
        incasso_store::mail::ReceiptCopy,
        Option<incasso_pagopa::wire::Receipt>,
    ),
    AppError,
> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let nav = notice_number("noticeNumber", nav)?;
    let at = Place::new("digitpos.receipt", ente, &nav);
    let stored = match ctx.store().find_by_notice_number(ente, &nav).await {
        Ok((s, _)) => crate::positions::in_scope(ctx, s)?,
        Err(StoreError::NotFound(_)) => return Err(notice::unknown_notice()),
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    let iuv = incasso_core::codes::NoticeNumber::parse(&nav)
        .map(|n| n.iuv)
        .unwrap_or_default();
    let copy = ctx
        .store()
        .paid_receipt_of_iuv(ente, &iuv)
        .await
        .at(at)?
        .filter(|c| c.notice_number == nav)
        .ok_or_else(|| {
            AppError::new(
                Kind::NotFound,
                "RECEIPT_NOT_AVAILABLE",
                format!(
                    "l'avviso {nav} non risulta ancora pagato: la ricevuta c'è quando pagoPA \
                     conferma il pagamento"
                ),
            )
        })?;
    let rt = crate::portal::receipts::parse_rt(&copy);
    Ok((stored, copy, rt))
}

/// Use case 5: the receipt of notice `nav`, once paid.
pub async fn receipt(ctx: &Ctx, ente: &str, nav: &str) -> Result<ReceiptData, AppError> {
    let (stored, copy, rt) = paid_receipt(ctx, ente, nav).await?;
    let rt = rt.as_ref();
    Ok(ReceiptData {
        receipt_pdf_url: format!(
            "{}/api/v1/enti/{ente}/digitpos/notices/{}/receipt.pdf",
            ctx.settings().public_url,
            copy.notice_number
        ),
        receipt_id: copy.receipt_id,
        notice_number: copy.notice_number,
        iuv: copy.iuv,
        iupd: Some(stored.position.iupd),
        amount: Cents(copy.amount),
        fee: rt.and_then(|r| r.fee).filter(|f| f.0 > 0),
        description: rt.map(|r| r.description.clone()).unwrap_or_default(),
        paid_at: copy.payment_date_time,
        psp_id: rt.map(|r| r.id_psp.clone()),
        psp_name: copy.psp_name,
        payment_method: rt.and_then(|r| r.payment_method.clone()),
        debtor_fiscal_code: copy.debtor,
        payer_fiscal_code: rt.and_then(|r| r.payer.as_ref().map(|p| p.id.clone())),
    })
}

/// Use case 5: the quietanza PDF of notice `nav`, once paid.
pub async fn receipt_pdf(ctx: &Ctx, ente: &str, nav: &str) -> Result<Vec<u8>, AppError> {
    let (_, copy, rt) = paid_receipt(ctx, ente, nav).await?;
    crate::portal::receipts::render(ctx, ente, &copy, rt.as_ref()).await
}

/// Whether the position of `iupd` is still open: for the bench and
/// tests, which wait for the receipt.
pub async fn is_paid(ctx: &Ctx, ente: &str, iupd: &str) -> Result<bool, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let stored = ctx.store().get_position(ente, iupd).await.at(Place::new(
        "digitpos.is_paid",
        ente,
        iupd,
    ))?;
    Ok(matches!(
        stored.position.status,
        PositionStatus::Paid | PositionStatus::Reported
    ))
}

// ------------------------------------------------------------ return hosts

/// Registering return hosts is the Ente administrator's (its admin key,
/// an operator who administers it, the intermediary); an application's
/// key may read them, never add one of its choosing.
fn require_admin(ctx: &Ctx, ente: &str) -> Result<(), AppError> {
    ctx.caller.require_ente(ente)?;
    match &ctx.caller {
        Caller::Key(k) if k.scope == KeyScope::Ente => Err(AppError::new(
            Kind::Forbidden,
            "FORBIDDEN_SCOPE",
            "solo la chiave di amministrazione dell'ente o dell'intermediario può gestire \
             gli host di ritorno",
        )),
        _ => Ok(()),
    }
}

pub async fn return_hosts(ctx: &Ctx, ente: &str) -> Result<Vec<ReturnHostRecord>, AppError> {
    ctx.caller.require_ente(ente)?;
    let at = Place::new("digitpos.return_hosts", ente, "");
    ctx.store().get_ente(ente).await.at(at)?;
    ctx.store().list_return_hosts(ente).await.at(at)
}

/// Registers `host`; answers it normalized and whether it is new.
pub async fn add_return_host(
    ctx: &Ctx,
    ente: &str,
    host: &str,
) -> Result<(String, bool), AppError> {
    require_admin(ctx, ente)?;
    let host = normalize_host(host)?;
    crate::audit::audited(ctx, Some(ente), "digitpos.return_host.add", &host, async {
        let at = Place::new("digitpos.add_return_host", ente, &host);
        ctx.store().get_ente(ente).await.at(at)?;
        let new = ctx
            .store()
            .add_return_host(ente, &host, &ctx.caller.actor(), ctx.now())
            .await
            .at(at)?;
        Ok((host.clone(), new))
    })
    .await
}

pub async fn remove_return_host(ctx: &Ctx, ente: &str, host: &str) -> Result<(), AppError> {
    require_admin(ctx, ente)?;
    let host = normalize_host(host)?;
    crate::audit::audited(
        ctx,
        Some(ente),
        "digitpos.return_host.remove",
        &host,
        async {
            let at = Place::new("digitpos.remove_return_host", ente, &host);
            if ctx.store().remove_return_host(ente, &host).await.at(at)? {
                Ok(())
            } else {
                Err(AppError::new(
                    Kind::NotFound,
                    "RETURN_HOST_NOT_FOUND",
                    format!("l'host {host} non è registrato"),
                ))
            }
        },
    )
    .await
}

// ------------------------------------------------------------ idempotency

/// A claimed idempotency key: complete or release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    ente: String,
    caller: String,
    key: String,
}

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Run the request, then [`complete`] with its answer.
    Run(Ticket),
    /// The same request was answered before: answer this again.
    Replay { status: u16, body: String },
}

/// The `Idempotency-Key` header, checked: required, 1 to 255 printable
/// ASCII characters.
pub fn idempotency_key(header: Option<&str>) -> Result<String, AppError> {
    let Some(key) = header.map(str::trim).filter(|k| !k.is_empty()) else {
        return Err(AppError::invalid(
            "IDEMPOTENCY_KEY_REQUIRED",
            "manca l'header Idempotency-Key: ogni POST ne porta uno (per esempio un UUID) \
             che identifica la richiesta, così un nuovo invio non la ripete",
        ));
    };
    if key.len() > 255 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(AppError::invalid(
            "BAD_IDEMPOTENCY_KEY",
            "Idempotency-Key: da 1 a 255 caratteri ASCII stampabili, senza spazi",
        ));
    }
    Ok(key.to_string())
}

/// The fingerprint of a request: its method, path and body. A JSON body
/// counts by its content, not its spacing or key order.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok());
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_deref().unwrap_or(body));
    crate::keys::hex(&h.finalize())
}

/// Claims idempotency key `key` for the request whose [`fingerprint`] is
/// `fingerprint`.
///
/// Claim first, complete after, rather than one transaction with the
/// effect: a request's effects include pagoPA's Checkout cart, an HTTP
/// call no database transaction can hold, and the position is written by
/// the store's own transaction. The gap is closed by the effects being
/// idempotent themselves (the position's iupd is derived from the key),
/// and a claim whose process died is taken over after
/// [`CLAIM_HOLDS_FOR`].
pub async fn claim(
    ctx: &Ctx,
    ente: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Claimed, AppError> {
    ctx.caller.require_ente(ente)?;
    let caller = ctx.caller.actor();
    let at = Place::new("digitpos.claim", ente, key);
    let now = ctx.now();
    match ctx
        .store()
        .claim_idempotency(ente, &caller, key, fingerprint, now, now - CLAIM_HOLDS_FOR)
        .await
        .at(at)?
    {
        IdempotencyClaim::Claimed => Ok(Claimed::Run(Ticket {
            ente: ente.to_string(),
            caller,
            key: key.to_string(),
        })),
        IdempotencyClaim::Replay { status, body } => Ok(Claimed::Replay { status, body }),
        IdempotencyClaim::Mismatch => Err(key_reused()),
        IdempotencyClaim::InProgress => Err(key_in_progress()),
    }
}

fn key_reused() -> AppError {
    AppError::conflict(
        "IDEMPOTENCY_KEY_REUSED",
        "Idempotency-Key già usata per una richiesta diversa: una nuova richiesta vuole \
         una chiave nuova",
    )
}

fn key_in_progress() -> AppError {
    AppError::conflict(
        "IDEMPOTENCY_KEY_IN_PROGRESS",
        "una richiesta con la stessa Idempotency-Key è ancora in corso: riprovare tra \
         qualche istante per averne la risposta",
    )
}

/// Stores the answer of a claimed key's request, for replay.
pub async fn complete(ctx: &Ctx, ticket: &Ticket, status: u16, body: &str) -> Result<(), AppError> {
    ctx.store()
        .complete_idempotency(
            &ticket.ente,
            &ticket.caller,
            &ticket.key,
            status,
            body,
            ctx.now(),
        )
        .await
        .at(Place::new("digitpos.complete", &ticket.ente, &ticket.key))
}

/// Lets a claimed key go: its request was refused or failed, so no
/// answer is kept. As Stripe's keys do, only a request that did what it
/// asked is replayed: a refusal may rest on what the caller can still fix
/// (a return host not yet registered, pagoPA unreachable), and whatever
/// a failed request left behind (a position made before Checkout did not
/// answer) the same key finds again, its iupd being derived from it.
pub async fn release(ctx: &Ctx, ticket: &Ticket) {
    if let Err(e) = ctx
        .store()
        .release_idempotency(&ticket.ente, &ticket.caller, &ticket.key)
        .await
    {
        tracing::warn!(ente = %ticket.ente, error = %e, "idempotency key not released; it is taken over after its hold");
    }
}

/// The job's round: forgets the keys older than [`KEYS_KEPT_FOR`].
pub async fn purge_keys(app: &App, now: DateTime<Utc>) -> Result<u64, StoreError> {
    app.store.purge_idempotency(now - KEYS_KEPT_FOR).await
}

/// The job: forgets old idempotency keys every hour (the first round an
/// hour after start, so a restart does not race other work).
pub async fn purge_keys_periodically(app: App) {
    let every = std::time::Duration::from_secs(3600);
    crate::jobs::on_schedule(app, "purge_idempotency_keys", every, every, |app, now| async move {
        match purge_keys(&app, now).await {
            Ok(n) if n > 0 => tracing::info!(keys = n, "old DigitPOS idempotency keys forgotten"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "forgetting old idempotency keys failed; retrying next hour")
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_url_hosts() {
        assert_eq!(
            url_host("https://Pay.Example.it/ok?x=1"),
            Some(("pay.example.it".into(), true))
        );
        assert_eq!(
            url_host("http://localhost:8080/ok"),
            Some(("localhost".into(), false))
        );
        assert_eq!(
            url_host("https://pay.example.it:8443"),
            Some(("pay.example.it".into(), true))
        );
        for bad in [
            "ftp://pay.example.it/",
            "https://good.example@evil.example/",
            "https:///nohost",
            "https://pay.example.it:x/",
            "javascript:alert(1)",
            "https://pay example.it/",
            "/relative",
            "https://[::1]/",
        ] {
            assert_eq!(url_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(
            normalize_host(" Pay.Example.IT. ").unwrap(),
            "pay.example.it"
        );
        for bad in ["", "https://x.it", "x.it:443", "x.it/ok", "-x.it", "a..b"] {
            assert_eq!(normalize_host(bad).unwrap_err().code, "BAD_HOST", "{bad}");
        }
    }

    #[test]
    fn fingerprints_ignore_json_spacing_not_content() {
        let a = fingerprint("POST", "/p", br#"{"a":1,"b":[1,2]}"#);
        assert_eq!(a, fingerprint("POST", "/p", b"{ \"b\": [1,2], \"a\": 1 }"));
        assert_ne!(a, fingerprint("POST", "/p", br#"{"a":2,"b":[1,2]}"#));
        assert_ne!(a, fingerprint("POST", "/q", br#"{"a":1,"b":[1,2]}"#));
    }

    #[test]
    fn idempotency_keys() {
        assert_eq!(
            idempotency_key(None).unwrap_err().code,
            "IDEMPOTENCY_KEY_REQUIRED"
        );
        assert_eq!(
            idempotency_key(Some("a b")).unwrap_err().code,
            "BAD_IDEMPOTENCY_KEY"
        );
        assert_eq!(idempotency_key(Some(" k-1 ")).unwrap(), "k-1");
    }
}
