//! Messages to citizens over HTTP (issue 19), with an Ente's API key:
//! a catalogue service's notification settings and templates, a
//! position's messages, an invitation asked for a position, and the
//! Ente's e-mail texts, under
//! `/api/v1/enti/{fiscalCode}/...`. The decisions are
//! [`incasso_app::notify::backoffice`]'s; the POST is held to its
//! `Idempotency-Key` by the request's natural key (the same key asks
//! once, and answers what the first call asked).

use crate::AppState;
use crate::admin::SecurityAddon;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ProblemJson};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::SecondsFormat;
use incasso_app::notify::backoffice as nb;
use incasso_app::notify::channels;
use incasso_app::notify::{ServiceSettings, SettingsInput};
use incasso_app::{AppError, Kind};
use incasso_store::notify::NotificationRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/enti/{fiscalCode}/services/{code}/notifications/settings",
            get(get_settings).put(put_settings),
        )
        .route(
            "/enti/{fiscalCode}/services/{code}/notifications/templates/{kind}/{language}",
            get(get_template).put(put_template),
        )
        .route(
            "/enti/{fiscalCode}/positions/{iupd}/notifications",
            get(list_messages).post(send),
        )
        .route(
            "/enti/{fiscalCode}/notifications/email-templates/{kind}",
            get(get_email_template)
                .put(put_email_template)
                .delete(delete_email_template),
        )
}

/// `openapi` with these operations and their tag.
pub fn documented(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    openapi.merge(NotifyDoc::openapi());
    openapi
}

const ABOUT: &str = "Messages to citizens through App IO, or by e-mail when IO cannot (see docs/NOTIFICATIONS.md): \
each catalogue service's settings (its IO API key, shown back only masked) and templates per kind (INVITATION, REMINDER, WITHDRAWAL, PAID) \
and language (it, de); a position's messages with their channel and outcome; and an invitation asked for a position, \
written to the notification outbox and sent by its worker, never from the request.";

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_settings, put_settings, get_template, put_template, list_messages, send,
          get_email_template, put_email_template, delete_email_template),
    components(schemas(ProblemJson, SettingsDto, SettingsRequest, TemplateDto, TemplateRequest, MessageDto, SendDto,
                       EmailTemplateDto, EmailTemplateRequest)),
    tags((name = "notifications", description = ABOUT)),
    modifiers(&SecurityAddon)
)]
pub struct NotifyDoc;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsDto {
    pub service_code: String,
    /// `••••` and the key's last four characters; absent: no key.
    pub io_api_key_hint: Option<String>,
    pub enabled: bool,
    pub invite_on_publish: bool,
    pub reminder_days: Option<i64>,
    /// `it`, and `de` when German is on.
    pub languages: Vec<String>,
    /// App IO's time to live of each message, in seconds; absent: IO's
    /// default. A message not sent within it (a week when absent) is not
    /// sent.
    pub time_to_live: Option<i64>,
    pub updated_at: String,
    pub updated_by: String,
}

impl From<ServiceSettings> for SettingsDto {
    fn from(s: ServiceSettings) -> Self {
        SettingsDto {
            service_code: s.service_code,
            io_api_key_hint: s.io_api_key_hint,
            enabled: s.enabled,
            invite_on_publish: s.invite_on_publish,
            reminder_days: s.reminder_days,
            languages: s.languages,
            time_to_live: s.time_to_live,
            updated_at: s.updated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            updated_by: s.updated_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsRequest {
    /// The IO service's API key (16-200 letters, digits, - or _). Absent:
    /// keep the stored one; empty: remove it.
    #[serde(default)]
    pub io_api_key: Option<String>,
    pub enabled: bool,
    #[serde(default)]
    pub invite_on_publish: bool,
    /// 1-60 days before the due date; absent: no reminder.
    #[serde(default)]
    pub reminder_days: Option<i64>,
    #[serde(default)]
    pub german: bool,
    /// App IO's time to live in seconds, 3600-604800; absent: IO's default.
    #[serde(default)]
    pub time_to_live: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateDto {
    pub kind: String,
    pub language: String,
    pub subject: String,
    pub markdown: String,
    /// The service's own; false: incasso's default.
    pub own: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateRequest {
    /// 10-120 characters.
    pub subject: String,
    /// 80-10,000 characters of Markdown; placeholders {{ente}}, {{service}},
    /// {{debtor_name}}, {{amount}}, {{notice_number}}, {{due_date}}, {{iuv}},
    /// {{payment_url}}.
    pub markdown: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageDto {
    pub id: i64,
    pub service_code: String,
    /// INVITATION, REMINDER, WITHDRAWAL, PAID.
    pub kind: String,
    /// IO or EMAIL.
    pub channel: String,
    /// PENDING, SENDING, SENT, SKIPPED, FAILED.
    pub status: String,
    /// Why it was not sent (SKIPPED), or the last error.
    pub reason: Option<String>,
    pub attempts: i64,
    pub notice_number: Option<String>,
    pub io_message_id: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl From<NotificationRecord> for MessageDto {
    fn from(n: NotificationRecord) -> Self {
        MessageDto {
            reason: nb::reason_of(&n),
            id: n.id,
            service_code: n.service_code,
            kind: n.kind,
            channel: n.channel,
            status: n.status,
            attempts: n.attempts,
            notice_number: n.notice_number,
            io_message_id: n.io_message_id,
            created_at: n.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            sent_at: n
                .sent_at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendDto {
    /// Positions whose invitation was asked (0 or 1 here).
    pub requested: i64,
    /// false: this Idempotency-Key had asked already; nothing more was.
    pub first: bool,
}

/// A service's notification settings (404 until saved).
#[utoipa::path(get, operation_id = "notify_get_settings", path = "/api/v1/enti/{fiscalCode}/services/{code}/notifications/settings", tag = "notifications",
    params(("fiscalCode" = String, Path), ("code" = String, Path)),
    responses((status = 200, body = SettingsDto), (status = 403, body = ProblemJson),
              (status = 404, body = ProblemJson, description = "NOT_FOUND: the service, or NOTIFY_SETTINGS_NOT_FOUND")))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, code)): Path<(String, String)>,
) -> Result<Json<SettingsDto>, ApiError> {
    let s = nb::service(&state.ctx(caller), &fc, &code).await?;
    match s.settings {
        Some(x) => Ok(Json(x.into())),
        None => Err(AppError::new(
            Kind::NotFound,
            "NOTIFY_SETTINGS_NOT_FOUND",
            "il servizio non ha impostazioni dei messaggi",
        )
        .into()),
    }
}

/// Saves a service's notification settings (idempotent: the same body
/// gives the same settings).
#[utoipa::path(put, operation_id = "notify_put_settings", path = "/api/v1/enti/{fiscalCode}/services/{code}/notifications/settings", tag = "notifications",
    params(("fiscalCode" = String, Path), ("code" = String, Path)), request_body = SettingsRequest,
    responses((status = 200, body = SettingsDto),
              (status = 400, body = ProblemJson, description = "BAD_REMINDER_DAYS, BAD_IO_API_KEY, BAD_TIME_TO_LIVE (nothing saved)"),
              (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, code)): Path<(String, String)>,
    ApiJson(body): ApiJson<SettingsRequest>,
) -> Result<Json<SettingsDto>, ApiError> {
    let input = SettingsInput {
        io_api_key: body.io_api_key,
        enabled: body.enabled,
        invite_on_publish: body.invite_on_publish,
        reminder_days: body.reminder_days,
        german: body.german,
    };
    let saved =
        nb::save_service_settings_ttl(&state.ctx(caller), &fc, &code, &input, body.time_to_live)
            .await?;
    Ok(Json(saved.into()))
}

fn kind_and_language(kind: &str, language: &str) -> Result<nb::TemplateKind, ApiError> {
    let k = incasso_app::notify::kind_of(kind).ok_or_else(|| {
        ApiError::from(AppError::new(
            Kind::NotFound,
            "BAD_KIND",
            "tipo di messaggio: INVITATION, REMINDER, WITHDRAWAL o PAID",
        ))
    })?;
    if !matches!(language, "it" | "de") {
        return Err(AppError::new(
            Kind::NotFound,
            "BAD_LANGUAGE",
            "lingua: it (italiano) o de (tedesco)",
        )
        .into());
    }
    Ok(k)
}

/// The template a service uses for a kind and language: its own, else
/// incasso's default (`own` false).
#[utoipa::path(get, operation_id = "notify_get_template", path = "/api/v1/enti/{fiscalCode}/services/{code}/notifications/templates/{kind}/{language}", tag = "notifications",
    params(("fiscalCode" = String, Path), ("code" = String, Path),
           ("kind" = String, Path, description = "INVITATION, REMINDER, WITHDRAWAL or PAID"),
           ("language" = String, Path, description = "it or de")),
    responses((status = 200, body = TemplateDto), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
pub async fn get_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, code, kind, language)): Path<(String, String, String, String)>,
) -> Result<Json<TemplateDto>, ApiError> {
    let k = kind_and_language(&kind, &language)?;
    let s = nb::service(&state.ctx(caller), &fc, &code).await?;
    let (subject, markdown, own) = match s
        .templates
        .into_iter()
        .find(|t| t.kind == kind && t.language == language)
    {
        Some(t) => (t.subject, t.markdown, t.own),
        None => {
            // German asked of a service without it: the default, as a
            // clerk would start from.
            let d = nb::default_of(k, &language);
            (d.subject, d.markdown, false)
        }
    };
    Ok(Json(TemplateDto {
        kind,
        language,
        subject,
        markdown,
        own,
    }))
}

/// Saves a service's template for a kind and language, checked first:
/// a refusal names the field (`errors[].field`: subject or markdown). The
/// service's settings must exist (409 NOTIFY_SETTINGS_MISSING).
#[utoipa::path(put, operation_id = "notify_put_template", path = "/api/v1/enti/{fiscalCode}/services/{code}/notifications/templates/{kind}/{language}", tag = "notifications",
    params(("fiscalCode" = String, Path), ("code" = String, Path),
           ("kind" = String, Path, description = "INVITATION, REMINDER, WITHDRAWAL or PAID"),
           ("language" = String, Path, description = "it or de")),
    request_body = TemplateRequest,
    responses((status = 200, body = TemplateDto),
              (status = 400, body = ProblemJson, description = "BAD_TEMPLATE: errors[].field says subject or markdown"),
              (status = 403, body = ProblemJson), (status = 404, body = ProblemJson),
              (status = 409, body = ProblemJson, description = "NOTIFY_SETTINGS_MISSING")))]
pub async fn put_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, code, kind, language)): Path<(String, String, String, String)>,
    ApiJson(body): ApiJson<TemplateRequest>,
) -> Result<Json<TemplateDto>, ApiError> {
    let k = kind_and_language(&kind, &language)?;
    let template = nb::Template {
        subject: body.subject,
        markdown: body.markdown,
    };
    nb::save_service_template(&state.ctx(caller), &fc, &code, k, &language, &template).await?;
    Ok(Json(TemplateDto {
        kind,
        language,
        subject: template.subject,
        markdown: template.markdown,
        own: true,
    }))
}

/// A position's messages, oldest first: each channel's row with its
/// outcome.
#[utoipa::path(get, operation_id = "notify_list_messages", path = "/api/v1/enti/{fiscalCode}/positions/{iupd}/notifications", tag = "notifications",
    params(("fiscalCode" = String, Path), ("iupd" = String, Path)),
    responses((status = 200, body = Vec<MessageDto>), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
pub async fn list_messages(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, iupd)): Path<(String, String)>,
) -> Result<Json<Vec<MessageDto>>, ApiError> {
    let list = nb::of_position(&state.ctx(caller), &fc, &iupd).await?;
    Ok(Json(list.into_iter().map(MessageDto::from).collect()))
}

/// Asks for the position's invitation to pay: written to the notification
/// outbox and sent by its worker (App IO with the notice's payment data,
/// else e-mail). The same Idempotency-Key asks once: again, it answers
/// 200 with `first` false; for another position, 409.
#[utoipa::path(post, operation_id = "notify_send", path = "/api/v1/enti/{fiscalCode}/positions/{iupd}/notifications", tag = "notifications",
    params(("fiscalCode" = String, Path), ("iupd" = String, Path),
           ("Idempotency-Key" = String, Header, description = "A key of the caller's choosing (1-255 printable ASCII characters, e.g. a UUID) naming this request: sent again, nothing more is asked")),
    responses((status = 202, body = SendDto, description = "asked"),
              (status = 200, body = SendDto, description = "already asked with this key (header Idempotent-Replayed: true)"),
              (status = 400, body = ProblemJson, description = "IDEMPOTENCY_KEY_REQUIRED, BAD_IDEMPOTENCY_KEY"),
              (status = 403, body = ProblemJson), (status = 404, body = ProblemJson),
              (status = 409, body = ProblemJson, description = "NOTHING_TO_SEND (not payable, or its service sends no messages), IDEMPOTENCY_KEY_REUSED")))]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, iupd)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = incasso_app::digitpos::idempotency_key(
        headers
            .get(crate::digitpos::IDEMPOTENCY_KEY)
            .and_then(|v| v.to_str().ok()),
    )?;
    let token = nb::token_of_key(&key);
    let sent = nb::send_position(&state.ctx(caller), &fc, &iupd, &token).await?;
    let status = if sent.first {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut resp = (
        status,
        Json(SendDto {
            requested: sent.requested,
            first: sent.first,
        }),
    )
        .into_response();
    if !sent.first {
        resp.headers_mut()
            .insert(crate::digitpos::REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// One of the Ente's e-mail texts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailTemplateDto {
    /// INVITATION, REMINDER, WITHDRAWAL, PAID or RECEIPT.
    pub kind: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// The Ente's own; false: incasso's default.
    pub own: bool,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
}

impl From<channels::EmailTemplateView> for EmailTemplateDto {
    fn from(t: channels::EmailTemplateView) -> Self {
        EmailTemplateDto {
            kind: t.kind,
            subject: t.subject,
            body: t.body,
            own: t.own,
            updated_at: t
                .updated_at
                .map(|x| x.to_rfc3339_opts(SecondsFormat::Secs, true)),
            updated_by: t.updated_by,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmailTemplateRequest {
    /// 5-200 characters, one line.
    pub subject: String,
    /// 20-20,000 characters of plain text; the notifications' placeholders
    /// ({{ente}}, {{debtor_name}}, {{amount}}, {{notice_number}}, ...), and
    /// for RECEIPT also {{paid_at}}, {{psp}}, {{receipt_id}}.
    pub body: String,
}

/// A kind in the path; unknown, 404.
fn email_kind(kind: &str) -> Result<&'static str, ApiError> {
    channels::EmailKind::parse(kind)
        .map(channels::EmailKind::as_str)
        .ok_or_else(|| {
            AppError::new(
                Kind::NotFound,
                "BAD_EMAIL_KIND",
                "tipo di e-mail: INVITATION, REMINDER, WITHDRAWAL, PAID o RECEIPT",
            )
            .into()
        })
}

/// The Ente's e-mail text of a kind (a message sent by e-mail when the
/// citizen is not on App IO, or the portal's receipt): its own, else
/// incasso's default (`own` false).
#[utoipa::path(get, operation_id = "notify_get_email_template", path = "/api/v1/enti/{fiscalCode}/notifications/email-templates/{kind}", tag = "notifications",
    params(("fiscalCode" = String, Path),
           ("kind" = String, Path, description = "INVITATION, REMINDER, WITHDRAWAL, PAID or RECEIPT")),
    responses((status = 200, body = EmailTemplateDto), (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
pub async fn get_email_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, kind)): Path<(String, String)>,
) -> Result<Json<EmailTemplateDto>, ApiError> {
    let k = email_kind(&kind)?;
    let t = channels::email_template(&state.ctx(caller), &fc, k).await?;
    Ok(Json(t.into()))
}

/// Saves the Ente's e-mail text of a kind, checked first: a refusal names
/// the field (`errors[].field`: subject or body) and saves nothing. The
/// same body again gives the same text.
#[utoipa::path(put, operation_id = "notify_put_email_template", path = "/api/v1/enti/{fiscalCode}/notifications/email-templates/{kind}", tag = "notifications",
    params(("fiscalCode" = String, Path),
           ("kind" = String, Path, description = "INVITATION, REMINDER, WITHDRAWAL, PAID or RECEIPT")),
    request_body = EmailTemplateRequest,
    responses((status = 200, body = EmailTemplateDto),
              (status = 400, body = ProblemJson, description = "BAD_EMAIL_TEMPLATE: errors[].field says subject or body"),
              (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
pub async fn put_email_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, kind)): Path<(String, String)>,
    ApiJson(body): ApiJson<EmailTemplateRequest>,
) -> Result<Json<EmailTemplateDto>, ApiError> {
    let k = email_kind(&kind)?;
    let ctx = state.ctx(caller);
    let template = channels::EmailTemplate {
        subject: body.subject,
        body: body.body,
    };
    channels::save_email_template(&ctx, &fc, k, &template).await?;
    Ok(Json(channels::email_template(&ctx, &fc, k).await?.into()))
}

/// Goes back to incasso's default text for a kind (idempotent).
#[utoipa::path(delete, operation_id = "notify_delete_email_template", path = "/api/v1/enti/{fiscalCode}/notifications/email-templates/{kind}", tag = "notifications",
    params(("fiscalCode" = String, Path),
           ("kind" = String, Path, description = "INVITATION, REMINDER, WITHDRAWAL, PAID or RECEIPT")),
    responses((status = 200, body = EmailTemplateDto, description = "incasso's default, now used"),
              (status = 403, body = ProblemJson), (status = 404, body = ProblemJson)))]
pub async fn delete_email_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((fc, kind)): Path<(String, String)>,
) -> Result<Json<EmailTemplateDto>, ApiError> {
    let k = email_kind(&kind)?;
    let ctx = state.ctx(caller);
    channels::reset_email_template(&ctx, &fc, k).await?;
    Ok(Json(channels::email_template(&ctx, &fc, k).await?.into()))
}
