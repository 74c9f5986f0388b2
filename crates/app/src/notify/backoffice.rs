//! The people's side of the notifications (issue 19): what the back
//! office, the desk and the API doors show and do. A service's settings
//! and templates within the caller's offices; counts per service; the
//! Ente's messages (the dead letters among them) and a person's retry;
//! a position's messages; and messages asked for by hand, for a position
//! or a whole supply, after a preview.
//!
//! A message asked for is written to the outbox (a PUBLISHED event per
//! position, store::notify_admin), never sent from the request: the worker
//! sends it like any invitation. The request's token (the preview form's,
//! or the API call's `Idempotency-Key`) is its natural key, so a confirm
//! sent twice asks once.

use super::{
    ServiceSettings, SettingsInput, effective_template, kind_name, save_settings, save_template,
};
use crate::error::{At, Place};
use crate::positions::{office_scope, sees_office};
use crate::sheet::{Cell, Sheet};
use crate::{AppError, Ctx, Kind};
use incasso_core::FieldError;
use incasso_core::access::{Access, Area};
use incasso_core::catalogue::Service;
/// The template types, for doors that do not depend on incasso-notify.
pub use incasso_notify::template::{Template, TemplateKind};
use incasso_notify::template::{Values, default_template, format_amount, format_date};
use incasso_store::StoredPosition;
use incasso_store::notify::NotificationRecord;
use incasso_store::notify_admin::{RequestOutcome, Selector};

/// The kinds, in the order a page lists them.
pub const KINDS: [TemplateKind; 4] = [
    TemplateKind::Invitation,
    TemplateKind::Reminder,
    TemplateKind::Withdrawal,
    TemplateKind::Paid,
];

/// A kind as a clerk reads it.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "INVITATION" => "Invito al pagamento",
        "REMINDER" => "Promemoria di scadenza",
        "WITHDRAWAL" => "Annullamento",
        "PAID" => "Pagamento ricevuto",
        _ => "Altro",
    }
}

/// A state as a clerk reads it.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "PENDING" => "In attesa",
        "SENDING" => "In invio",
        "SENT" => "Inviato",
        "SKIPPED" => "Non inviato",
        "FAILED" => "Fallito",
        _ => "Sconosciuto",
    }
}

/// A channel as a clerk reads it.
pub fn channel_label(channel: &str) -> &'static str {
    match channel {
        "IO" => "App IO",
        "EMAIL" => "E-mail",
        _ => "Altro",
    }
}

/// A service's template for a kind and language, its own or incasso's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateView {
    pub kind: &'static str,
    pub language: &'static str,
    pub subject: String,
    pub markdown: String,
    /// The service's own (else incasso's default).
    pub own: bool,
}

/// A service with its notification settings and templates.
#[derive(Debug, Clone)]
pub struct ServiceNotify {
    pub service: Service,
    pub settings: Option<ServiceSettings>,
    pub templates: Vec<TemplateView>,
}

/// A service the caller may change (catalogue area, write, within their
/// offices): one outside them is, to them, not there.
async fn writable_service(ctx: &Ctx, ente: &str, code: &str) -> Result<Service, AppError> {
    ctx.caller.require(ente, Area::Catalogue, Access::Write)?;
    crate::admin::get_service(ctx, ente, code).await
}

/// A service's notification settings and templates (catalogue area, read,
/// within the caller's offices).
pub async fn service(ctx: &Ctx, ente: &str, code: &str) -> Result<ServiceNotify, AppError> {
    let service = crate::admin::get_service(ctx, ente, code).await?;
    let settings = super::settings(ctx, ente, code).await?;
    let own = ctx
        .store()
        .notify_templates(ente, code)
        .await
        .at(Place::new("notify.templates", ente, code))?;
    let mut languages = vec!["it"];
    if settings.as_ref().is_some_and(|s| s.languages.len() > 1) {
        languages.push("de");
    }
    let mut templates = Vec::new();
    for kind in KINDS {
        for &language in &languages {
            let mine = own
                .iter()
                .find(|t| t.kind == kind_name(kind) && t.language == language);
            let (subject, markdown, own) = match mine {
                Some(t) => (t.subject.clone(), t.markdown.clone(), true),
                None => {
                    let d = default_template(kind, language);
                    (d.subject, d.markdown, false)
                }
            };
            templates.push(TemplateView {
                kind: kind_name(kind),
                language,
                subject,
                markdown,
                own,
            });
        }
    }
    Ok(ServiceNotify {
        service,
        settings,
        templates,
    })
}

/// Saves a service's settings (catalogue area, write, within the caller's
/// offices).
pub async fn save_service_settings(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    input: &SettingsInput,
) -> Result<ServiceSettings, AppError> {
    writable_service(ctx, ente, code).await?;
    save_settings(ctx, ente, code, input).await
}

/// Saves a service's settings with its App IO time to live (`None`: IO's
/// default), both checked before either is written (catalogue area,
/// write, within the caller's offices).
pub async fn save_service_settings_ttl(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    input: &SettingsInput,
    time_to_live: Option<i64>,
) -> Result<ServiceSettings, AppError> {
    writable_service(ctx, ente, code).await?;
    super::channels::check_time_to_live(time_to_live)?;
    let mut saved = save_settings(ctx, ente, code, input).await?;
    if saved.time_to_live != time_to_live {
        super::channels::save_time_to_live(ctx, ente, code, time_to_live).await?;
        saved.time_to_live = time_to_live;
    }
    Ok(saved)
}

/// Saves a service's template (catalogue area, write, within the caller's
/// offices). A template that breaks a rule is refused with the field it
/// is about (`subject` or `markdown`) in `errors`; the service's settings
/// must be saved first.
pub async fn save_service_template(
    ctx: &Ctx,
    ente: &str,
    code: &str,
    kind: TemplateKind,
    language: &str,
    template: &Template,
) -> Result<(), AppError> {
    writable_service(ctx, ente, code).await?;
    if let Err(e) = template.validate() {
        let mut err = AppError::invalid(
            "BAD_TEMPLATE",
            format!("{}: {}", e.field().as_str(), e.message_it()),
        );
        err.errors.push(FieldError {
            field: e.field().as_str().into(),
            code: "BAD_TEMPLATE",
            message: e.message_it(),
        });
        return Err(err);
    }
    if super::settings(ctx, ente, code).await?.is_none() {
        return Err(AppError::conflict(
            "NOTIFY_SETTINGS_MISSING",
            "salvare prima le impostazioni dei messaggi del servizio",
        ));
    }
    save_template(ctx, ente, code, kind, language, template).await
}

/// A service's messages counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceCounts {
    pub service_code: String,
    pub service_name: String,
    /// The service tells its citizens.
    pub enabled: bool,
    /// Sent through App IO.
    pub sent_io: i64,
    /// Handed to the e-mail outbox.
    pub sent_email: i64,
    /// Waiting or being sent.
    pub pending: i64,
    /// Dead letters.
    pub failed: i64,
    /// Not sent through IO, by reason code (the e-mail fallback among them).
    pub skipped: Vec<(String, i64)>,
}

/// The services the caller sees (all of them, or their offices').
async fn visible_services(ctx: &Ctx, ente: &str) -> Result<Vec<Service>, AppError> {
    let mut all =
        ctx.store()
            .list_services(ente)
            .await
            .at(Place::new("notify.services", ente, ""))?;
    all.retain(|s| sees_office(ctx, s.office_code.as_deref()));
    Ok(all)
}

/// Every service's messages counted, for the services the caller sees
/// that tell their citizens or have told them (positions area, read).
pub async fn counts(ctx: &Ctx, ente: &str) -> Result<Vec<ServiceCounts>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let place = Place::new("notify.counts", ente, "");
    let services = visible_services(ctx, ente).await?;
    let settings = ctx.store().list_notify_settings(ente).await.at(place)?;
    let rows = ctx.store().service_notify_counts(ente).await.at(place)?;
    let mut out = Vec::new();
    for s in services {
        let mine: Vec<_> = rows.iter().filter(|r| r.service_code == s.code).collect();
        let enabled = settings
            .iter()
            .any(|x| x.service_code == s.code && x.enabled);
        if mine.is_empty() && !settings.iter().any(|x| x.service_code == s.code) {
            continue;
        }
        let mut c = ServiceCounts {
            service_code: s.code.clone(),
            service_name: s.name.clone(),
            enabled,
            ..Default::default()
        };
        for r in mine {
            match (r.status.as_str(), r.channel.as_str()) {
                ("SENT", "IO") => c.sent_io += r.n,
                ("SENT", _) => c.sent_email += r.n,
                ("PENDING" | "SENDING", _) => c.pending += r.n,
                ("FAILED", _) => c.failed += r.n,
                ("SKIPPED", _) => {
                    let code = r.reason.clone().unwrap_or_default();
                    match c.skipped.iter_mut().find(|(k, _)| *k == code) {
                        Some((_, n)) => *n += r.n,
                        None => c.skipped.push((code, r.n)),
                    }
                }
                _ => {}
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// A page of the Ente's messages.
#[derive(Debug, Clone)]
pub struct Messages {
    pub sheet: Sheet,
    pub items: Vec<NotificationRecord>,
    pub has_next: bool,
    pub total: u64,
}

pub use incasso_store::notify_admin::SORT_KEYS;

/// The sheet of messages, as listed and exported.
pub fn sheet_of(title: &str, items: &[NotificationRecord]) -> Sheet {
    let mut sheet = Sheet::new(
        title,
        &[
            "N.",
            "Servizio",
            "Tipo",
            "Canale",
            "Posizione",
            "Stato",
            "Motivo",
            "Tentativi",
            "Creato",
            "Inviato",
        ],
    );
    for n in items {
        sheet.push(vec![
            Cell::Int(n.id),
            Cell::text(n.service_code.clone()),
            Cell::text(kind_label(&n.kind)),
            Cell::text(channel_label(&n.channel)),
            Cell::text(n.iupd.clone()),
            Cell::text(status_label(&n.status)),
            Cell::opt_text(reason_of(n)),
            Cell::Int(n.attempts),
            Cell::DateTime(n.created_at),
            n.sent_at.map(Cell::DateTime).unwrap_or(Cell::Empty),
        ]);
    }
    sheet
}

/// Why a message is where it is: the reason it was not sent, or the last
/// error of one that failed or waits to be tried again.
pub fn reason_of(n: &NotificationRecord) -> Option<String> {
    match n.status.as_str() {
        "SKIPPED" => n.reason.clone(),
        "SENT" => None,
        _ => n.last_error.clone(),
    }
}

/// Page `page` (from 1) of the Ente's messages with `status` (all when
/// `None`; `FAILED`: the dead letters), of the services the caller sees,
/// sorted by one of [`SORT_KEYS`] (positions area, read).
pub async fn messages(
    ctx: &Ctx,
    ente: &str,
    status: Option<&str>,
    sort: &str,
    descending: bool,
    page: u32,
    per_page: u32,
) -> Result<Messages, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let services: Option<Vec<String>> = match office_scope(ctx) {
        Some(_) => Some(
            visible_services(ctx, ente)
                .await?
                .into_iter()
                .map(|s| s.code)
                .collect(),
        ),
        None => None,
    };
    let per_page = per_page.clamp(1, crate::sheet::MAX_EXPORT_ROWS);
    let offset = u64::from(page.max(1) - 1) * u64::from(per_page);
    let (mut items, total) = ctx
        .store()
        .notifications_page(
            ente,
            status,
            services.as_deref(),
            sort,
            descending,
            per_page + 1,
            offset,
        )
        .await
        .at(Place::new("notify.messages", ente, ""))?;
    let has_next = items.len() > per_page as usize;
    items.truncate(per_page as usize);
    let title = if status == Some("FAILED") {
        "Messaggi falliti"
    } else {
        "Messaggi ai cittadini"
    };
    Ok(Messages {
        sheet: sheet_of(title, &items),
        items,
        has_next,
        total,
    })
}

/// Sends a dead letter again (positions area, write; its service within
/// the caller's offices). Audited by [`super::retry`].
pub async fn retry(ctx: &Ctx, ente: &str, id: i64) -> Result<(), AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    let n =
        ctx.store()
            .notification(id)
            .await
            .at(Place::new("notify.retry", ente, &id.to_string()))?;
    let Some(n) = n.filter(|n| n.ente == ente) else {
        return Err(not_found_message());
    };
    if office_scope(ctx).is_some() {
        let services = visible_services(ctx, ente).await?;
        if !services.iter().any(|s| s.code == n.service_code) {
            return Err(not_found_message());
        }
    }
    super::retry(ctx, ente, id).await
}

fn not_found_message() -> AppError {
    AppError::new(
        Kind::NotFound,
        "NOTIFICATION_NOT_FOUND",
        "messaggio non trovato tra quelli dell'ente",
    )
}

/// A position's messages, oldest first (positions area, read, within the
/// caller's offices).
pub async fn of_position(
    ctx: &Ctx,
    ente: &str,
    iupd: &str,
) -> Result<Vec<NotificationRecord>, AppError> {
    crate::positions::get(ctx, ente, iupd).await?;
    ctx.store()
        .position_notifications(ente, iupd)
        .await
        .at(Place::new("notify.of_position", ente, iupd))
}

/// What a send would do: how many positions would be told, one of them
/// rendered, and where it would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Positions that would be told (payable, their service telling).
    pub count: i64,
    /// The sample's IUPD and its rendered invitation (Italian).
    pub sample_iupd: Option<String>,
    pub subject: String,
    pub markdown: String,
    /// The sample's channel as far as incasso knows before asking IO.
    pub channel: String,
    /// Why nothing would be sent, when `count` is 0.
    pub nothing_because: Option<String>,
}

/// The values of `stored`'s invitation, as the worker fills them.
async fn values_of(ctx: &Ctx, ente: &str, stored: &StoredPosition) -> Result<Values, AppError> {
    let place = Place::new("notify.preview", ente, &stored.position.iupd);
    let p = &stored.position;
    let option = p
        .options
        .iter()
        .find(|o| !o.is_partial_payment)
        .or_else(|| p.options.first());
    let ente_name = ctx.store().get_ente(ente).await.at(place)?.name;
    let service = match &stored.placement.service {
        Some(code) => ctx
            .store()
            .get_service(ente, code)
            .await
            .map(|s| s.name)
            .unwrap_or_else(|_| code.clone()),
        None => String::new(),
    };
    let mut v = Values::new()
        .with("ente", ente_name)
        .with("ente_fiscal_code", ente.to_string())
        .with("service", service)
        .with("debtor_name", p.debtor.full_name.clone())
        .with(
            "payment_url",
            format!("{}/portale/{}/", ctx.app.settings.public_url, ente),
        );
    if let Some(o) = option {
        v = v
            .with("description", o.description.clone())
            .with("amount", format_amount(o.amount.0))
            .with(
                "notice_number",
                o.notice_number
                    .as_ref()
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
            )
            .with("due_date", format_date(o.due_date))
            .with("iuv", o.iuv.clone().unwrap_or_default());
    }
    Ok(v)
}

/// Where `stored`'s message would go, without asking IO.
async fn channel_of(ctx: &Ctx, ente: &str, stored: &StoredPosition) -> Result<String, AppError> {
    let debtor = &stored.position.debtor;
    let email = debtor
        .email
        .as_deref()
        .and_then(|e| crate::mail::check_address(e).ok());
    let fallback = match &email {
        Some(a) if crate::mail::enabled(&ctx.app) => format!("e-mail a {a}"),
        _ => "nessun invio (manca l'indirizzo e-mail)".to_string(),
    };
    let key = match &stored.placement.service {
        Some(code) => ctx
            .store()
            .notify_settings(ente, code)
            .await
            .at(Place::new("notify.preview", ente, code))?
            .and_then(|s| s.io_api_key),
        None => None,
    };
    let io_on = ctx
        .app
        .settings
        .io_url
        .as_deref()
        .is_some_and(|u| !u.is_empty());
    Ok(
        if io_on && key.is_some() && incasso_notify::io::is_fiscal_code(&debtor.fiscal_code) {
            format!(
                "App IO, se il cittadino la usa e accetta i messaggi del servizio; altrimenti {fallback}"
            )
        } else {
            fallback
        },
    )
}

async fn preview(ctx: &Ctx, ente: &str, selector: &Selector) -> Result<Preview, AppError> {
    let place = Place::new("notify.preview", ente, "");
    let (count, first) = ctx.store().sendable(ente, selector).await.at(place)?;
    let Some(iupd) = first else {
        return Ok(Preview {
            count: 0,
            sample_iupd: None,
            subject: String::new(),
            markdown: String::new(),
            channel: String::new(),
            nothing_because: Some(nothing_because(ctx, ente, selector).await?),
        });
    };
    let stored = ctx.store().get_position(ente, &iupd).await.at(place)?;
    let code = stored.placement.service.clone().unwrap_or_default();
    let template =
        effective_template(&ctx.app, ente, &code, TemplateKind::Invitation, "it").await?;
    let values = values_of(ctx, ente, &stored).await?;
    let rendered = template.render(&values).map_err(|e| {
        AppError::conflict(
            "BAD_TEMPLATE",
            format!("il modello dell'invito non si compone: {}", e.message_it()),
        )
    })?;
    Ok(Preview {
        count,
        channel: channel_of(ctx, ente, &stored).await?,
        sample_iupd: Some(iupd),
        subject: rendered.subject,
        markdown: rendered.markdown,
        nothing_because: None,
    })
}

async fn nothing_because(ctx: &Ctx, ente: &str, selector: &Selector) -> Result<String, AppError> {
    let Selector::Position(iupd) = selector else {
        return Ok("nessuna posizione della fornitura è pagabile e di un servizio che invia messaggi ai cittadini".into());
    };
    let stored = crate::positions::get(ctx, ente, iupd).await?;
    Ok(match &stored.placement.service {
        None => "la posizione non appartiene a un servizio del catalogo".into(),
        Some(code) => {
            let on = ctx
                .store()
                .notify_settings(ente, code)
                .await
                .at(Place::new("notify.preview", ente, code))?
                .is_some_and(|s| s.enabled);
            if on {
                "la posizione non è pagabile (non pubblicata, già pagata o annullata)".into()
            } else {
                format!(
                    "il servizio {code} non invia messaggi ai cittadini: attivarli nelle sue impostazioni"
                )
            }
        }
    })
}

/// What sending a position's invitation would do (positions area, write,
/// within the caller's offices).
pub async fn preview_position(ctx: &Ctx, ente: &str, iupd: &str) -> Result<Preview, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    crate::positions::get(ctx, ente, iupd).await?;
    preview(ctx, ente, &Selector::Position(iupd.to_string())).await
}

/// Work on a whole supply's positions is for callers who see every office
/// (as the positions' own bulk work).
fn require_every_office(ctx: &Ctx) -> Result<(), AppError> {
    if office_scope(ctx).is_some() {
        return Err(AppError::new(
            Kind::Forbidden,
            "FORBIDDEN_SCOPE",
            "l'invio a tutta una fornitura è riservato a chi vede tutti gli uffici",
        ));
    }
    Ok(())
}

/// What sending an invitation to each of a supply's positions would do
/// (positions area, write; the supply readable; every office).
pub async fn preview_supply(ctx: &Ctx, ente: &str, supply: i64) -> Result<Preview, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    require_every_office(ctx)?;
    crate::bus::supply(ctx, ente, supply).await?;
    preview(ctx, ente, &Selector::Supply(supply)).await
}

/// What a send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// This call asked; `false`: the same request had asked already, and
    /// nothing more was asked now.
    pub first: bool,
    /// Positions told.
    pub requested: i64,
}

/// A token for a send's confirm form: random, its natural key.
pub fn new_token() -> String {
    let mut b = [0u8; 24];
    let _ = getrandom::fill(&mut b);
    crate::keys::hex(&b)
}

/// The token of an API call's `Idempotency-Key`: its SHA-256, so any key
/// the API accepts names one request.
pub fn token_of_key(key: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    format!("api-{}", crate::keys::hex(&d.as_ref()[..20]))
}

fn check_token(token: &str) -> Result<(), AppError> {
    if (16..=128).contains(&token.len())
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(AppError::invalid(
            "BAD_REQUEST_TOKEN",
            "il modulo di conferma non è valido: riaprire l'anteprima e confermare da lì",
        ))
    }
}

async fn send(ctx: &Ctx, ente: &str, selector: Selector, token: &str) -> Result<Sent, AppError> {
    check_token(token)?;
    let target = selector.target();
    crate::audit::audited(ctx, Some(ente), "notify.send", &target, async {
        let place = Place::new("notify.send", ente, &target);
        let outcome: RequestOutcome = ctx
            .store()
            .request_notifications(ente, token, &selector, &ctx.caller.actor(), ctx.now())
            .await
            .at(place)?;
        if outcome.target != target {
            return Err(AppError::conflict(
                "IDEMPOTENCY_KEY_REUSED",
                "questa richiesta di invio riguardava un'altra posizione o fornitura",
            ));
        }
        if outcome.first && outcome.requested == 0 {
            return Err(AppError::conflict(
                "NOTHING_TO_SEND",
                nothing_because(ctx, ente, &selector).await?,
            ));
        }
        Ok(Sent {
            first: outcome.first,
            requested: outcome.requested,
        })
    })
    .await
}

/// Asks for the invitation of a position through the outbox (positions
/// area, write, within the caller's offices), once per `token`.
pub async fn send_position(
    ctx: &Ctx,
    ente: &str,
    iupd: &str,
    token: &str,
) -> Result<Sent, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    crate::positions::get(ctx, ente, iupd).await?;
    send(ctx, ente, Selector::Position(iupd.to_string()), token).await
}

/// Asks for the invitation of each of a supply's positions that can be
/// told, through the outbox, once per `token` (positions area, write;
/// every office).
pub async fn send_supply(
    ctx: &Ctx,
    ente: &str,
    supply: i64,
    token: &str,
) -> Result<Sent, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    require_every_office(ctx)?;
    crate::bus::supply(ctx, ente, supply).await?;
    send(ctx, ente, Selector::Supply(supply), token).await
}

/// The token of the desk's "send with App IO" of a position: one per
/// position, so a second click (or another clerk's) asks nothing more.
fn desk_token(iupd: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, iupd.as_bytes());
    format!("desk-{}", crate::keys::hex(&d.as_ref()[..20]))
}

/// The Sportello Digitale's "send with App IO" (issue 18): the notice of a
/// position issued at a desk sent to the citizen through the outbox (the
/// same request as [`send_position`]), once per position however often it
/// is asked (positions area, write). The worker picks the channel: App IO
/// with its payment data, else e-mail.
pub async fn send_issued(ctx: &Ctx, ente: &str, iupd: &str) -> Result<Sent, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Write)?;
    let i = crate::desk::issued(ctx, ente, iupd).await?;
    if !i.payable {
        return Err(AppError::conflict(
            "NOT_PAYABLE",
            format!(
                "l'avviso non si può più pagare (stato: {}): non viene inviato",
                i.status_label
            ),
        ));
    }
    send_position(ctx, ente, iupd, &desk_token(iupd)).await
}

/// incasso's own template for a kind and language.
pub fn default_of(kind: TemplateKind, language: &str) -> Template {
    default_template(kind, language)
}
