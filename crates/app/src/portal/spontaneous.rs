//! Spontaneous payments from the catalogue: a citizen picks a spontaneous
//! service of the Ente, fills in its form (defined as data in the back
//! office: `incasso_core::form`), confirms the summary, and goes straight
//! to Checkout with a position made for it.
//!
//! Rules that make it safe to offer to anybody:
//! - the form is checked here, on the server, whatever the page did;
//! - the form carries a one-time token (`request_id`): the position's iupd
//!   is made from it, so a double submit or a retry finds the position
//!   already made and the same Checkout cart, never a second one;
//! - an abandoned payment never leaves a payable position behind: the
//!   position expires by itself the next day, and [`close_abandoned`]
//!   cancels it once [`ABANDONED_AFTER`] has passed without a payment,
//!   unless the Node asked to be paid for it in the last
//!   [`NODE_PAYMENT_HOLD`] (a PSP is paying it: [`hold_for_node`]).
//!
//! Anybody may pay a spontaneous service, as anybody may pay a notice whose
//! number they hold: these use cases check no rights beyond the service
//! being active and spontaneous. A signed-in citizen pays as themselves.

use crate::error::{AppError, At, Kind, Place};
use crate::{App, Ctx};
use chrono::{DateTime, Days, Utc};
use incasso_core::access::{Access, Area};
use incasso_core::catalogue::Service;
use incasso_core::form::{self, Accepted, Answers, FormDef};
use incasso_core::position::{
    AccountingQuota, DebtPosition, Debtor, DebtorType, OptionStatus, PaymentOption, Transfer,
};
use incasso_core::{Cents, FieldError};
use incasso_store::{
    Abandoned, NodeRequestNoted, Placement, ServiceFormRecord, StoreError, StoredPosition,
};

/// Every spontaneous position's iupd starts so (*pagamento spontaneo*):
/// the Node's door notes the payments of these only.
pub const IUPD_PREFIX: &str = "PS-";

/// A spontaneous payment not paid this long after it was made is
/// abandoned: its position is cancelled.
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::minutes(60);

/// How long after the Node last asked to be paid (paGetPayment) a position
/// is left alone: twice the 30 minutes a payment token lives at the Node,
/// for its retries.
pub const NODE_PAYMENT_HOLD: chrono::Duration = chrono::Duration::minutes(60);

/// A spontaneous service as the portal lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub code: String,
    pub name: String,
    /// "16,00 €", "da 5,00 € a 50,00 €", "da 16,00 € a 32,00 €".
    pub amount_text: String,
}

/// A service's form, and the version it was read at.
#[derive(Debug, Clone)]
pub struct ServiceForm {
    pub service: Service,
    pub def: FormDef,
    /// `None`: no definition saved yet (the minimal form of a service
    /// with a fixed amount).
    pub version: Option<i64>,
}

fn not_offered() -> AppError {
    AppError::new(
        Kind::NotFound,
        "SERVICE_NOT_FOUND",
        "Servizio non trovato: scegliere uno dei servizi che l'ente offre per il pagamento spontaneo.",
    )
}

fn amount_text(def: &FormDef) -> String {
    match &def.amount {
        form::Amount::Fixed(c) => format!("{} €", c.to_italian()),
        form::Amount::Range { min, max } => {
            format!("da {} € a {} €", min.to_italian(), max.to_italian())
        }
        form::Amount::Table(rows) => {
            let min = rows.iter().map(|r| r.cents).min().unwrap_or_default();
            let max = rows.iter().map(|r| r.cents).max().unwrap_or_default();
            if min == max {
                format!("{} €", min.to_italian())
            } else {
                format!("da {} € a {} €", min.to_italian(), max.to_italian())
            }
        }
    }
}

/// The form of `service`: its saved definition; without one, the minimal
/// form of a fixed amount; a service with neither is not offered.
pub(crate) async fn form_of(
    ctx: &Ctx,
    ente: &str,
    service: Service,
) -> Result<Option<ServiceForm>, AppError> {
    let at = Place::new("portal.spontaneous.form", ente, &service.code);
    let saved = ctx.store().service_form(ente, &service.code).await.at(at)?;
    form_from(ente, service, saved)
}

/// [`form_of`] with the service's saved form read already (`saved`).
pub(crate) fn form_from(
    ente: &str,
    service: Service,
    saved: Option<ServiceFormRecord>,
) -> Result<Option<ServiceForm>, AppError> {
    match saved {
        Some(rec) => {
            let def: FormDef = serde_json::from_str(&rec.definition).map_err(|e| {
                AppError::internal(
                    &Place::new("portal.spontaneous.form", ente, &service.code),
                    &e,
                )
            })?;
            Ok(Some(ServiceForm {
                service,
                def,
                version: Some(rec.updated_at),
            }))
        }
        None => Ok(service.fixed_amount.map(|amount| ServiceForm {
            def: FormDef::minimal(&service.name, amount),
            service,
            version: None,
        })),
    }
}

/// The Ente's active spontaneous services that can be paid online.
pub async fn list(ctx: &Ctx, ente: &str) -> Result<Vec<Offered>, AppError> {
    let at = Place::new("portal.spontaneous.list", ente, "");
    ctx.store().get_ente(ente).await.at(at)?;
    let mut out = Vec::new();
    for s in ctx.store().list_services(ente).await.at(at)? {
        if !(s.active && s.spontaneous) {
            continue;
        }
        if let Some(f) = form_of(ctx, ente, s).await? {
            out.push(Offered {
                amount_text: amount_text(&f.def),
                code: f.service.code,
                name: f.service.name,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The form of the Ente's spontaneous service `code` (not found when the
/// service is not one, is inactive, or has no form).
pub async fn get_form(ctx: &Ctx, ente: &str, code: &str) -> Result<ServiceForm, AppError> {
    let at = Place::new("portal.spontaneous.get_form", ente, code);
    if !incasso_core::text::is_safe_identifier(code, 35) {
        return Err(not_offered());
    }
    let service = match ctx.store().get_service(ente, code).await {
        Ok(s) if s.active && s.spontaneous => s,
        Ok(_) | Err(StoreError::NotFound(_)) => return Err(not_offered()),
        Err(e) => return Err(crate::error::from_store(e, &at)),
    };
    form_of(ctx, ente, service).await?.ok_or_else(not_offered)
}

/// A new one-time token for a form about to be shown.
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("random source");
    crate::keys::hex(&b)
}

/// A token is 32 lowercase hex digits: anything else was never given out.
pub fn well_formed_token(t: &str) -> bool {
    t.len() == 32 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn rejected(errors: Vec<FieldError>) -> AppError {
    let mut e = AppError::invalid(
        errors.first().map_or("INVALID", |f| f.code),
        "il modulo contiene errori: correggere i campi indicati",
    );
    e.errors = errors;
    e
}

/// The answers as the form takes them: a signed-in citizen pays as
/// themselves, whatever the page posted for the debtor.
fn as_caller(ctx: &Ctx, mut answers: Answers) -> Answers {
    if let Some(c) = ctx.caller.citizen() {
        answers.insert(form::DEBTOR_FISCAL_CODE.into(), c.fiscal_code.clone());
        answers.insert(form::DEBTOR_NAME.into(), c.name.clone());
    }
    answers
}

/// Checks the answers (step 1 to the summary): what would be paid, or
/// every wrong field with its reason (`Kind::Invalid`, `errors` named as
/// the form's fields).
pub async fn check(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    answers: Answers,
) -> Result<(ServiceForm, Accepted), AppError> {
    let f = get_form(ctx, ente, code).await?;
    let accepted = f
        .def
        .check(&as_caller(ctx, answers))
        .map_err(|i| rejected(i.0))?;
    Ok((f, accepted))
}

/// What a confirmed spontaneous payment answers.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub iupd: String,
    pub notice_number: String,
    pub amount: Cents,
    /// The portal cart it is paid in.
    pub cart_id: String,
    /// Where to send the citizen.
    pub checkout_url: String,
}

/// The end of a day in Italy.
pub(crate) fn end_of(day: chrono::NaiveDate) -> DateTime<Utc> {
    incasso_core::time::from_rome(day.and_hms_opt(23, 59, 59).unwrap_or_default())
}

/// The position of an accepted spontaneous payment: one notice, due at
/// `due` and expiring after it, the service's taxonomy, account and
/// accertamento, the answers as the option's metadata.
fn position_of(
    iupd: &str,
    ente: &incasso_core::ente::Ente,
    service: &Service,
    office_name: Option<String>,
    a: &Accepted,
    due: DateTime<Utc>,
) -> DebtPosition {
    let kind = if a.debtor_fiscal_code.chars().count() == 11 {
        DebtorType::G
    } else {
        DebtorType::F
    };
    let debtor = Debtor {
        kind,
        fiscal_code: a.debtor_fiscal_code.clone(),
        full_name: a.debtor_name.clone(),
        street_name: None,
        civic_number: None,
        postal_code: None,
        city: None,
        province: None,
        region: None,
        country: None,
        email: a.email.clone(),
        phone: None,
    };
    let quotas = service
        .default_accertamento
        .iter()
        .map(|acc| AccountingQuota {
            accertamento: acc.clone(),
            amount: a.amount,
        })
        .collect();
    let mut metadata: Vec<(String, String)> = Vec::new();
    if let Some(label) = &a.amount_label {
        metadata.push(("importo".into(), label.chars().take(140).collect()));
    }
    metadata.extend(
        a.values
            .iter()
            .map(|(k, v)| (k.clone(), v.chars().take(140).collect())),
    );
    metadata.truncate(incasso_core::position::MAX_METADATA);
    let option = PaymentOption {
        iuv: None,
        notice_number: None,
        amount: a.amount,
        description: a.causale.clone(),
        is_partial_payment: false,
        due_date: due,
        retention_date: None,
        fee: Cents::ZERO,
        notification_fee: Cents::ZERO,
        status: OptionStatus::Unpaid,
        payment_date: None,
        reporting_date: None,
        metadata,
        transfers: vec![Transfer {
            id_transfer: 1,
            amount: a.amount,
            organization_fiscal_code: ente.fiscal_code.clone(),
            company_name: None,
            remittance_information: a.causale.clone(),
            category: service.taxonomy_code.clone(),
            iban: service.iban.clone().or_else(|| ente.iban.clone()),
            postal_iban: None,
            stamp: None,
            metadata: Vec::new(),
            quotas,
            reported: false,
        }],
    };
    DebtPosition {
        office_name,
        // Not payable past its due day even if the job never ran.
        switch_to_expired: true,
        ..DebtPosition::draft(iupd.to_string(), debtor, ente.name.clone(), vec![option])
    }
}

/// A refusal of the position by the catalogue's own data (an accertamento
/// that no longer exists, an account missing): the Ente's to fix, not the
/// citizen's.
pub(crate) fn misconfigured(e: AppError, ente: &str, code: &str) -> AppError {
    if e.kind != Kind::Invalid {
        return e;
    }
    tracing::warn!(ente, service = code, error = %e.detail, "spontaneous service refused by the position rules");
    AppError::new(
        Kind::Unprocessable,
        "SERVICE_MISCONFIGURED",
        "Il servizio non può essere pagato in questo momento per un problema di configurazione \
         dell'ente: riprovare più tardi o rivolgersi all'ufficio.",
    )
}

/// Makes the spontaneous payment the citizen confirmed, and opens its
/// Checkout: answers where to send them. `token` is the form's one-time
/// token: the same token again answers the same position and cart (when
/// the service and debtor agree; else it is refused as used).
pub async fn submit(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    token: &str,
    answers: Answers,
) -> Result<Submitted, AppError> {
    if !well_formed_token(token) {
        return Err(AppError::invalid(
            "BAD_TOKEN",
            "Il modulo non è valido o è scaduto: compilarlo di nuovo.",
        ));
    }
    let (f, accepted) = check(ctx, ente, code, answers).await?;
    let iupd = format!("{IUPD_PREFIX}{}", token.to_uppercase());
    let at = Place::new("portal.spontaneous.submit", ente, &iupd);
    let (stored, cart_id) = open(ctx, ente, &f, &accepted, token).await?;
    let o = &stored.position.options[0];
    let nav = o
        .notice_number
        .as_ref()
        .map(|n| n.as_str().to_string())
        .ok_or_else(|| AppError::internal(&at, &StoreError::NotFound("avviso")))?;
    let cart_id = match cart_id {
        Some(id) => id,
        None => {
            let made = crate::portal::cart::add(ctx, None, ente, ente, &nav).await?;
            // A concurrent confirmation may have made its own: both go on
            // with the first remembered (the other is never opened).
            ctx.store()
                .set_spontaneous_cart(ente, token, &made)
                .await
                .at(at)?
        }
    };
    let email = stored.position.debtor.email.clone();
    let checkout_url = crate::portal::cart::open_checkout(ctx, &cart_id, email.as_deref()).await?;
    Ok(Submitted {
        iupd,
        notice_number: nav,
        amount: o.amount,
        cart_id,
        checkout_url,
    })
}

/// Records the spontaneous payment of the one-time `token` and makes its
/// position (iupd [`IUPD_PREFIX`] + the token), or finds the one the same
/// token made before: answers it and the portal cart it went to, if any.
/// Shared by the portal's [`submit`] and DigitPOS (`crate::digitpos`),
/// whose positions the abandonment job closes alike.
pub(crate) async fn open(
    ctx: &Ctx,
    ente: &str,
    f: &ServiceForm,
    accepted: &Accepted,
    token: &str,
) -> Result<(StoredPosition, Option<String>), AppError> {
    let iupd = format!("{IUPD_PREFIX}{}", token.to_uppercase());
    let at = Place::new("portal.spontaneous.open", ente, &iupd);
    crate::audit::audited(ctx, Some(ente), "spontaneous.create", &iupd, async {
        let (request, _new) = ctx
            .store()
            .open_spontaneous(ente, token, &f.service.code, &iupd, ctx.now())
            .await
            .at(at)?;
        if request.service_code != f.service.code
            || request.state != incasso_store::SPONTANEOUS_OPEN
        {
            return Err(used_token());
        }
        let stored = match ctx.store().get_position(ente, &iupd).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => {
                let today = incasso_core::time::to_rome(ctx.now()).date();
                let due = end_of(today.checked_add_days(Days::new(1)).unwrap_or(today));
                create(ctx, ente, f, accepted, &iupd, due).await?
            }
            Err(e) => return Err(crate::error::from_store(e, &at)),
        };
        // The same token with another debtor is not a retry of this one.
        if !stored
            .position
            .debtor
            .fiscal_code
            .eq_ignore_ascii_case(&accepted.debtor_fiscal_code)
        {
            return Err(used_token());
        }
        Ok((stored, request.cart_id))
    })
    .await
}

fn used_token() -> AppError {
    AppError::conflict(
        "FORM_ALREADY_SENT",
        "Questo modulo è già stato inviato: per un nuovo pagamento compilarlo di nuovo.",
    )
}

/// The position of an accepted form and its place in the catalogue.
async fn placed(
    ctx: &Ctx,
    ente: &str,
    f: &ServiceForm,
    accepted: &Accepted,
    iupd: &str,
    due: DateTime<Utc>,
) -> Result<(DebtPosition, Placement), AppError> {
    let at = Place::new("portal.spontaneous.create", ente, iupd);
    let offices = async {
        match &f.service.office_code {
            None => Ok(None),
            Some(code) => ctx
                .store()
                .list_offices(ente)
                .await
                .map(|all| all.into_iter().find(|o| &o.code == code)),
        }
    };
    // Both read at once: a DigitPOS create call's latency is a target.
    let (e, office) = tokio::join!(ctx.store().get_ente(ente), offices);
    let (e, office) = (e.at(at)?, office.at(at)?);
    let position = position_of(
        iupd,
        &e,
        &f.service,
        office.as_ref().map(|o| o.name.clone()),
        accepted,
        due,
    );
    let placement = Placement {
        service: Some(f.service.code.clone()),
        office: office.map(|o| o.code),
    };
    Ok((position, placement))
}

/// [`open`] for a DigitPOS request holding idempotency key `key` (of the
/// caller, with `fingerprint`), when both are new: the key claimed, the
/// request recorded, the position made and the audit event written in one
/// transaction. `None`, with nothing written, when the key, the token or
/// the position is there already: the caller then goes step by step.
pub(crate) async fn open_claimed(
    ctx: &Ctx,
    ente: &str,
    f: &ServiceForm,
    accepted: &Accepted,
    token: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Option<StoredPosition>, AppError> {
    let iupd = format!("{IUPD_PREFIX}{}", token.to_uppercase());
    let at = Place::new("portal.spontaneous.open", ente, &iupd);
    let today = incasso_core::time::to_rome(ctx.now()).date();
    let due = end_of(today.checked_add_days(Days::new(1)).unwrap_or(today));
    let (position, placement) = placed(ctx, ente, f, accepted, &iupd, due).await?;
    let caller = ctx.caller.actor();
    let audit = incasso_store::AuditEvent {
        at: ctx.now(),
        actor: caller.clone(),
        ente: Some(ente.to_string()),
        action: "spontaneous.create".into(),
        object: iupd.clone(),
        outcome: "OK".into(),
        detail: String::new(),
    };
    let with = incasso_store::SpontaneousClaim {
        caller: &caller,
        idempotency_key: key,
        fingerprint,
        request_id: token,
        service_code: &f.service.code,
        audit: &audit,
    };
    let made = ctx
        .store()
        .create_spontaneous_claimed(ente, position, placement, ctx.now(), &with)
        .await
        .map_err(|e| misconfigured(crate::error::from_store(e, &at), ente, &f.service.code));
    if let Err(e) = &made {
        crate::audit::record(
            &ctx.app,
            &caller,
            Some(ente),
            "spontaneous.create",
            &iupd,
            e.code,
        )
        .await;
    }
    // Flushed before its notice number is answered, as `create`'s.
    if let Ok(Some(_)) = &made {
        ctx.store().durable().await.at(at)?;
    }
    made
}

/// Makes the position of an accepted form (`iupd`, due at `due`), placed
/// in the service and its office, published at once; the same iupd made
/// meanwhile by a concurrent request is read back. Shared with the
/// counter desk (`crate::desk`), which issues from the same forms.
pub(crate) async fn create(
    ctx: &Ctx,
    ente: &str,
    f: &ServiceForm,
    accepted: &Accepted,
    iupd: &str,
    due: DateTime<Utc>,
) -> Result<StoredPosition, AppError> {
    let at = Place::new("portal.spontaneous.create", ente, iupd);
    let (position, placement) = placed(ctx, ente, f, accepted, iupd, due).await?;
    match ctx
        .store()
        .create_position_placed(ente, position, Some(placement), ctx.now(), true)
        .await
    {
        // Its notice number is answered at once, printed or paid: flushed
        // first, as GPD's creates are (`Store::durable`).
        Ok(s) => {
            ctx.store().durable().await.at(at)?;
            Ok(s)
        }
        // Made meanwhile by the same token's other request.
        Err(StoreError::Conflict(_)) => ctx.store().get_position(ente, iupd).await.at(at),
        Err(e) => Err(misconfigured(
            crate::error::from_store(e, &at),
            ente,
            &f.service.code,
        )),
    }
}

/// Called by the Node's door when it is asked to pay position `iupd` of
/// `ente` (paGetPayment): notes it, so that [`close_abandoned`] leaves the
/// position alone while a PSP pays it. Answers `false` when the payment
/// was closed (cancelled) before: the caller then reads the position
/// again and answers its state.
pub async fn hold_for_node(app: &App, ente: &str, iupd: &str) -> Result<bool, StoreError> {
    if !iupd.starts_with(IUPD_PREFIX) {
        return Ok(true);
    }
    Ok(app
        .store
        .note_spontaneous_node_request(ente, iupd, app.clock.now())
        .await?
        != NodeRequestNoted::Closed)
}

/// How many abandoned payments one round closes at most: the rest wait
/// for the next minute.
const ROUND_LIMIT: i64 = 500;

/// The abandonment job's round: cancels the positions of spontaneous
/// payments made more than [`ABANDONED_AFTER`] ago, not paid, and not
/// asked for by the Node in the last [`NODE_PAYMENT_HOLD`]; records those
/// paid meanwhile. Answers what it did, payment by payment.
pub async fn close_abandoned(
    app: &App,
    now: DateTime<Utc>,
) -> Result<Vec<(String, String, Abandoned)>, StoreError> {
    let node_before = now - NODE_PAYMENT_HOLD;
    let candidates = app
        .store
        .abandoned_spontaneous(now - ABANDONED_AFTER, node_before, ROUND_LIMIT)
        .await?;
    let mut out = Vec::with_capacity(candidates.len());
    for r in candidates {
        match app
            .store
            .close_abandoned(&r.ente, &r.request_id, node_before, now)
            .await
        {
            Ok(done) => {
                if done == Abandoned::Cancelled {
                    crate::audit::record(
                        app,
                        "system:spontaneous",
                        Some(&r.ente),
                        "position.invalidate",
                        &r.iupd,
                        "OK",
                    )
                    .await;
                }
                out.push((r.ente, r.iupd, done));
            }
            Err(e) => tracing::warn!(
                ente = %r.ente, iupd = %r.iupd, error = %e,
                "closing an abandoned spontaneous payment failed; retrying next round"
            ),
        }
    }
    Ok(out)
}

/// The back office's view of a spontaneous service's form: the service,
/// the definition (or a starting one) and its version.
pub async fn form_for_editing(ctx: &Ctx, ente: &str, code: &str) -> Result<ServiceForm, AppError> {
    ctx.caller.require(ente, Area::Catalogue, Access::Read)?;
    let at = Place::new("spontaneous.form_for_editing", ente, code);
    let service = ctx.store().get_service(ente, code).await.at(at)?;
    match form_of(ctx, ente, service).await? {
        Some(f) => Ok(f),
        None => {
            let service = ctx.store().get_service(ente, code).await.at(at)?;
            Ok(ServiceForm {
                def: FormDef {
                    fields: Vec::new(),
                    amount: form::Amount::Range {
                        min: Cents(100),
                        max: Cents(10_000),
                    },
                    causale: service.name.chars().take(form::MAX_CAUSALE).collect(),
                },
                service,
                version: None,
            })
        }
    }
}

/// Saves a spontaneous service's form over the version the editor read
/// (`expected`; a save in between is a conflict); answers the new
/// version. Invalid definitions answer every wrong field
/// (`fields[2].name`, `amount.min`, `causale`).
pub async fn save_form(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    def: &FormDef,
    expected: Option<i64>,
) -> Result<i64, AppError> {
    crate::audit::audited(ctx, Some(ente), "service.form", code, async {
        ctx.caller.require(ente, Area::Catalogue, Access::Write)?;
        let at = Place::new("spontaneous.save_form", ente, code);
        let service = ctx.store().get_service(ente, code).await.at(at)?;
        if !service.spontaneous {
            return Err(AppError::new(
                Kind::Unprocessable,
                "NOT_SPONTANEOUS",
                "il servizio non è a pagamento spontaneo: il modulo si definisce solo per quelli",
            ));
        }
        def.validate().map_err(|i| rejected(i.0))?;
        let json = serde_json::to_string(def).map_err(|e| AppError::internal(&at, &e))?;
        ctx.store()
            .put_service_form(ente, code, &json, expected, &ctx.caller.actor(), ctx.now())
            .await
            .at(at)
    })
    .await
}

/// The demo's spontaneous services and forms (`serve --demo`), added where
/// missing: at the Comune, 'Diritti di segreteria' with a table of
/// amounts; at the ASL, the 'Ticket sanitario' typed within bounds.
pub async fn seed_demo_forms(
    store: &incasso_store::Store,
    ente: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use form::{AmountChoice, Field, FieldKind};
    let text = |name: &str, label: &str, help: &str| Field {
        name: name.into(),
        kind: FieldKind::Text,
        label: label.into(),
        help: help.into(),
        required: true,
        pattern: None,
        choices: Vec::new(),
        min_length: None,
        max_length: None,
    };
    let (code, def) = match ente {
        "80000130585" => {
            if let Err(StoreError::NotFound(_)) = store.get_service(ente, "DIRITTI-SEG").await {
                store
                    .put_service(
                        ente,
                        &Service {
                            code: "DIRITTI-SEG".into(),
                            name: "Diritti di segreteria".into(),
                            office_code: Some("ANAG".into()),
                            taxonomy_code: "9/0104103SP/".into(),
                            default_accertamento: Some(
                                incasso_core::accertamento::AccertamentoRef {
                                    year: 2026,
                                    code: "ACC-ANAG".into(),
                                },
                            ),
                            iban: None,
                            fixed_amount: None,
                            spontaneous: true,
                            pagopa_service_id: Some("DIRIT".into()),
                            active: true,
                        },
                    )
                    .await?;
            }
            (
                "DIRITTI-SEG",
                FormDef {
                    fields: vec![
                        Field {
                            kind: FieldKind::Choice,
                            choices: vec![
                                "Certificato di residenza".into(),
                                "Certificato di stato di famiglia".into(),
                                "Carta d'identità elettronica".into(),
                            ],
                            ..text("documento", "Documento richiesto", "")
                        },
                        Field {
                            pattern: Some("[A-Za-z]{2}[0-9]{4}".into()),
                            ..text(
                                "pratica",
                                "Numero della pratica",
                                "Due lettere e quattro cifre, come indicato dall'ufficio (esempio AB1234)",
                            )
                        },
                    ],
                    amount: form::Amount::Table(vec![
                        AmountChoice {
                            label: "Rilascio ordinario".into(),
                            cents: Cents(1600),
                        },
                        AmountChoice {
                            label: "Rilascio urgente".into(),
                            cents: Cents(3200),
                        },
                    ]),
                    causale: "Diritti di segreteria - {documento} - pratica {pratica}".into(),
                },
            )
        }
        "97000000022" => (
            "TICKET",
            FormDef {
                fields: vec![
                    Field {
                        pattern: Some("[0-9A-Za-z]{15}".into()),
                        ..text(
                            "ricetta",
                            "Numero della ricetta (NRE)",
                            "I 15 caratteri stampati in alto sulla ricetta elettronica",
                        )
                    },
                    Field {
                        kind: FieldKind::Date,
                        required: false,
                        ..text("data_prestazione", "Data della prestazione", "")
                    },
                ],
                amount: form::Amount::Range {
                    min: Cents(100),
                    max: Cents(50_000),
                },
                causale: "Ticket sanitario - ricetta {ricetta}".into(),
            },
        ),
        _ => return Ok(()),
    };
    if store.service_form(ente, code).await?.is_none() {
        let json = serde_json::to_string(&def).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match store
            .put_service_form(ente, code, &json, None, "system:demo", now)
            .await
        {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = new_token();
        assert!(well_formed_token(&t), "{t}");
        assert_ne!(t, new_token());
        assert!(!well_formed_token("ABCDEF0123456789ABCDEF0123456789"));
        assert!(!well_formed_token("abc"));
        let iupd = format!("{IUPD_PREFIX}{}", t.to_uppercase());
        assert!(incasso_core::position::is_valid_iupd(&iupd));
    }

    #[test]
    fn amounts_as_listed() {
        let mut d = FormDef::minimal("x", Cents(1600));
        assert_eq!(amount_text(&d), "16,00 €");
        d.amount = form::Amount::Range {
            min: Cents(500),
            max: Cents(5000),
        };
        assert_eq!(amount_text(&d), "da 5,00 € a 50,00 €");
        d.amount = form::Amount::Table(vec![
            form::AmountChoice {
                label: "a".into(),
                cents: Cents(3200),
            },
            form::AmountChoice {
                label: "b".into(),
                cents: Cents(1600),
            },
        ]);
        assert_eq!(amount_text(&d), "da 16,00 € a 32,00 €");
    }
}
