//! The channels' own settings (issue 19): each service's App IO time to
//! live, and each Ente's e-mail texts (the four messages when they go by
//! e-mail, and the citizen portal's receipt), with what sending needs of
//! them: the text to send, and whether a payment's receipt already went to
//! an address.

use crate::error::{AppError, At, Place};
use crate::{App, Ctx};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use incasso_core::FieldError;
use incasso_core::access::{Access, Area};
use incasso_notify::email::default_email_template;
// What a door needs to name a kind, build a text and tell its placeholders.
pub use incasso_notify::email::{EmailKind, EmailTemplate, RECEIPT_PLACEHOLDERS};
pub use incasso_notify::template::PLACEHOLDERS;
use incasso_notify::template::Values;
use serde::Serialize;

/// IO's bounds of `time_to_live` (`TimeToLiveSeconds`).
pub const TTL_MIN: i64 = 3600;
pub const TTL_MAX: i64 = 604_800;

/// How long a message may wait to be sent when its service sets no time
/// to live: past it, news of a position is too old to tell (IO's longest
/// time to live).
pub const DEFAULT_TTL: i64 = TTL_MAX;

/// Sets (`Some`, 3600-604800 seconds: IO's bounds) or clears a service's
/// App IO time to live (catalogue area, write). Set, it is sent with each
/// message; either way a message not sent within it (a week when not set)
/// is recorded as expired instead of going out late.
pub async fn save_time_to_live(
    ctx: &Ctx,
    ente: &str,
    service_code: &str,
    seconds: Option<i64>,
) -> Result<(), AppError> {
    crate::audit::audited(
        ctx,
        Some(ente),
        "notify.time_to_live",
        service_code,
        async {
            ctx.caller.require(ente, Area::Catalogue, Access::Write)?;
            check_time_to_live(seconds)?;
            ctx.store()
                .put_notify_time_to_live(
                    ente,
                    service_code,
                    seconds,
                    &ctx.caller.actor(),
                    ctx.now(),
                )
                .await
                .at(Place::new("notify.time_to_live", ente, service_code))
        },
    )
    .await
}

/// Refuses a time to live outside IO's bounds, naming the field
/// (`timeToLive`), before anything is written.
pub fn check_time_to_live(seconds: Option<i64>) -> Result<(), AppError> {
    match seconds {
        Some(s) if !(TTL_MIN..=TTL_MAX).contains(&s) => {
            let message = "da 3600 secondi (un'ora) a 604800 (una settimana), o vuoto per il valore di App IO";
            let mut err = AppError::invalid("BAD_TIME_TO_LIVE", format!("timeToLive: {message}"));
            err.errors.push(FieldError {
                field: "timeToLive".into(),
                code: "BAD_TIME_TO_LIVE",
                message: message.into(),
            });
            Err(err)
        }
        _ => Ok(()),
    }
}

/// The time a message of a service with `setting` may wait: past
/// `created + ttl` it is not sent.
pub fn expires_at(created: DateTime<Utc>, setting: Option<i64>) -> DateTime<Utc> {
    created + ChronoDuration::seconds(setting.unwrap_or(DEFAULT_TTL))
}

/// An e-mail text as a clerk sees it: the Ente's own, or incasso's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailTemplateView {
    pub kind: String,
    pub subject: String,
    pub body: String,
    /// `false`: incasso's default text.
    pub own: bool,
    pub updated_at: Option<DateTime<Utc>>,
    pub updated_by: Option<String>,
}

fn parse_kind(kind: &str) -> Result<EmailKind, AppError> {
    EmailKind::parse(kind).ok_or_else(|| {
        AppError::invalid(
            "BAD_EMAIL_KIND",
            "kind: INVITATION, REMINDER, WITHDRAWAL, PAID o RECEIPT",
        )
    })
}

/// The Ente's five e-mail texts, its own or incasso's (catalogue area,
/// read).
pub async fn email_templates(ctx: &Ctx, ente: &str) -> Result<Vec<EmailTemplateView>, AppError> {
    ctx.caller.require(ente, Area::Catalogue, Access::Read)?;
    let own = ctx.store().email_templates(ente).await.at(Place::new(
        "notify.email_templates",
        ente,
        "",
    ))?;
    Ok(EmailKind::ALL
        .into_iter()
        .map(|k| match own.iter().find(|t| t.kind == k.as_str()) {
            Some(t) => EmailTemplateView {
                kind: t.kind.clone(),
                subject: t.subject.clone(),
                body: t.body.clone(),
                own: true,
                updated_at: Some(t.updated_at),
                updated_by: Some(t.updated_by.clone()),
            },
            None => {
                let d = default_email_template(k);
                EmailTemplateView {
                    kind: k.as_str().into(),
                    subject: d.subject,
                    body: d.body,
                    own: false,
                    updated_at: None,
                    updated_by: None,
                }
            }
        })
        .collect())
}

/// One of the Ente's e-mail texts (catalogue area, read).
pub async fn email_template(
    ctx: &Ctx,
    ente: &str,
    kind: &str,
) -> Result<EmailTemplateView, AppError> {
    let k = parse_kind(kind)?;
    Ok(email_templates(ctx, ente)
        .await?
        .into_iter()
        .find(|t| t.kind == k.as_str())
        .expect("one per kind"))
}

/// Saves the Ente's e-mail text for `kind`, checked first (catalogue area,
/// write): a subject of 5-200 characters on one line, a body of 20-20000,
/// only the notifications' placeholders (a receipt's also `paid_at`, `psp`,
/// `receipt_id`); the error names the field.
pub async fn save_email_template(
    ctx: &Ctx,
    ente: &str,
    kind: &str,
    template: &EmailTemplate,
) -> Result<(), AppError> {
    crate::audit::audited(ctx, Some(ente), "notify.email_template", kind, async {
        ctx.caller.require(ente, Area::Catalogue, Access::Write)?;
        let k = parse_kind(kind)?;
        template.validate(k).map_err(|e| {
            let mut err = AppError::invalid(
                "BAD_EMAIL_TEMPLATE",
                format!("modello e-mail {}: {e}", k.as_str()),
            );
            // The field named, so a form or a client puts it beside it.
            err.errors.push(FieldError {
                field: e.field.into(),
                code: "BAD_EMAIL_TEMPLATE",
                message: e.message.clone(),
            });
            err
        })?;
        ctx.store()
            .put_email_template(
                ente,
                k.as_str(),
                template.subject.trim(),
                &template.body,
                &ctx.caller.actor(),
                ctx.now(),
            )
            .await
            .at(Place::new("notify.save_email_template", ente, kind))
    })
    .await
}

/// Goes back to incasso's text for `kind` (catalogue area, write).
pub async fn reset_email_template(ctx: &Ctx, ente: &str, kind: &str) -> Result<(), AppError> {
    crate::audit::audited(
        ctx,
        Some(ente),
        "notify.email_template.reset",
        kind,
        async {
            ctx.caller.require(ente, Area::Catalogue, Access::Write)?;
            let k = parse_kind(kind)?;
            ctx.store()
                .delete_email_template(ente, k.as_str())
                .await
                .at(Place::new("notify.reset_email_template", ente, kind))?;
            Ok(())
        },
    )
    .await
}

/// The e-mail of `kind` for the Ente, filled with `values`: the Ente's
/// text, else incasso's. Answers (subject, plain-text body).
pub(crate) async fn render_email(
    app: &App,
    ente: &str,
    kind: EmailKind,
    values: &Values,
) -> Result<(String, String), AppError> {
    let own = app
        .store
        .email_templates(ente)
        .await
        .at(Place::new("notify.render_email", ente, kind.as_str()))?
        .into_iter()
        .find(|t| t.kind == kind.as_str());
    let template = match own {
        Some(t) => EmailTemplate {
            subject: t.subject,
            body: t.body,
        },
        None => default_email_template(kind),
    };
    match template.render(kind, values) {
        Ok(r) => Ok(r),
        // Saved templates were checked: only incasso's own could fail.
        Err(e) => Err(AppError::invalid(
            "BAD_EMAIL_TEMPLATE",
            format!("modello e-mail {}: {e}", kind.as_str()),
        )),
    }
}

/// Whether the citizen portal already e-mailed (or is e-mailing) the
/// receipt `receipt_id` to `address`: then the PAID message's e-mail
/// would tell the same person the same payment twice. A receipt e-mail
/// that FAILED does not count.
pub(crate) async fn receipt_mailed_to(
    app: &App,
    ente: &str,
    receipt_id: &str,
    address: &str,
) -> Result<bool, AppError> {
    let mail = app
        .store
        .mail_by_key(&crate::mail::receipt_key(ente, receipt_id))
        .await
        .at(Place::new("notify.receipt_mailed_to", ente, receipt_id))?;
    Ok(mail.is_some_and(|m| {
        m.recipient.eq_ignore_ascii_case(address) && m.status != incasso_store::mail::FAILED
    }))
}
