//! Telling citizens about their positions through App IO, or by e-mail
//! when IO cannot (issue 19).
//!
//! - **Settings** per catalogue service ([`save_settings`], [`settings`]):
//!   the IO service's API key (sealed at rest, shown back only as its last
//!   four characters), on/off, invitations on publication, a reminder N
//!   days before the due date, German besides Italian, and the templates
//!   per kind and language ([`save_template`]), checked when saved.
//! - **Triggers** are position events (store::events): PUBLISHED (written
//!   by the publishing transaction when the service invites), DUE_SOON
//!   (written by [`write_reminders`], the daily job, once per option and
//!   due date: several processes or a rerun write it once), CANCELLED and
//!   PAID. Notifications are a consumer of those events ([`fan_out`]), not
//!   an outbox of their own.
//! - **Sending** ([`send_due`], run by [`run`]): a claimed row's position is
//!   read as it is now (a reminder for an option paid meanwhile is SKIPPED,
//!   ALREADY_PAID); the citizen's IO profile is checked; with
//!   `sender_allowed` the rendered message goes to IO with `payment_data`
//!   (amount, notice number, `invalid_after_due_date`, the Ente as payee)
//!   and `due_date` for invitations and reminders. A citizen not on IO, or
//!   who opted out, a service without an IO key, or incasso without IO
//!   (`INCASSO_IO_URL` unset) falls back to e-mail when the debtor has an
//!   address (the e-mail outbox sends it, the notice PDF attached to
//!   invitations and reminders); without one the row is SKIPPED with why.
//! - **Pace**: the calls under each IO key are spaced at the rate IO
//!   allows it, learned from its 429s ([`pace`]), so that the outbox drains
//!   at IO's rate instead of bursting into refusals.
//! - **Failures**: IO's 429 pauses that service's messages only (a
//!   per-service "not before"), without counting an attempt; a 5xx, a
//!   timeout or a refused connection is tried again with exponential
//!   backoff and jitter ([`retry_delay`]), up to [`MAX_ATTEMPTS`], then the
//!   row is FAILED (the dead letter, which a person can retry); a 400 (or
//!   any refusal that would be the same next time) is FAILED at once, its
//!   reason recorded, never retried by itself.
//!
//! **The window in which a message can be sent twice.** IO's `POST
//! /messages` has no idempotency key. The attempt is recorded (and
//! committed) before the call: the claim writes it. The outcome is recorded
//! right after it by the round's recorder ([`record_sent`], a group
//! commit of whatever IO took meanwhile). If the
//! process dies between IO's answer and that record (or IO took the message
//! but the answer was lost), the row stays SENDING until its lease lapses
//! ([`LEASE`]) and another worker sends it again: the citizen gets the same
//! message twice. Nothing else sends twice: the fan-out and the e-mail
//! fallback are transactions keyed by the event. See `docs/NOTIFICATIONS.md`.

pub mod backoffice;
pub mod channels;
pub mod pace;

use crate::error::{AppError, At, Place};
use crate::{App, Ctx};
use chrono::{DateTime, Duration as ChronoDuration, NaiveTime, Utc};
use incasso_core::access::{Access, Area};
use incasso_notify::io::{IoClient, IoError, MessageContent, NewMessage, PaymentData};
use incasso_notify::template::{
    Template, TemplateKind, Values, default_template, format_amount, format_date,
};
use incasso_store::StoredPosition;
use incasso_store::notify::{
    DueNotification, KeyChange, NewNotifySettings, NotificationRecord, NotifySettings, SentMessage,
    TemplateRecord,
};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Attempts before a row is given up (FAILED): with [`retry_delay`], about
/// a day of IO being unavailable.
pub const MAX_ATTEMPTS: i64 = 16;

/// How long a claimed row is its worker's: longer than a profile check and
/// a send may take, so only a worker that died loses it.
pub const LEASE: Duration = Duration::from_secs(60);

/// How often the outbox is looked at when idle.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// How often the reminder job looks for options coming due (its events
/// are once per option and due date, so running often costs nothing more).
pub const REMINDERS_EVERY: Duration = Duration::from_secs(3600);

/// An IO call that takes longer is counted as IO not answering.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows claimed and sent at once by one round.
const BATCH: u32 = 128;

/// A 429 without `Retry-After` pauses the service this long.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(1);

/// A call that would wait longer than this for its turn under its key's
/// pace is not made: its row is put back for then (well within [`LEASE`]).
const PACE_WAIT: Duration = Duration::from_secs(5);

/// The application's pacer of IO calls (see [`pace`]).
fn pacer(app: &App) -> std::sync::MutexGuard<'_, pace::Pacer> {
    app.io_pace
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits for the turn of a call to IO under `key`; `Err` with how long it
/// would have waited when that is more than [`PACE_WAIT`].
async fn io_turn(app: &App, key: &str) -> Result<(), Duration> {
    let wait = pacer(app).reserve(key, std::time::Instant::now(), PACE_WAIT)?;
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    Ok(())
}

/// The row put back until its key's pace has a turn for it: like a 429,
/// no attempt is counted.
async fn paced_back(
    app: &App,
    n: &DueNotification,
    wait: Duration,
    text: Option<(&str, &str)>,
) -> Result<Outcome, AppError> {
    let r = &n.record;
    let until = app.clock.now() + ChronoDuration::from_std(wait).unwrap_or_default();
    app.store
        .notification_not_sent(
            r.id,
            n.attempt,
            "PACED: in attesa del proprio turno nel limite di App IO",
            Some(until),
            true,
            text,
        )
        .await
        .at(Place::new("notify.paced", &r.ente, &r.iupd))?;
    Ok(Outcome::Retried)
}

/// The wait after the `attempts`th failure of row `id`: 2, 4, 8... seconds,
/// at most an hour, plus up to a quarter more (jitter, different for each
/// row and attempt) so that rows that failed together do not come back
/// together.
pub fn retry_delay(attempts: i64, id: i64) -> ChronoDuration {
    let base_ms = (2000i64 << attempts.clamp(1, 12).saturating_sub(1)).min(3_600_000);
    let seed = (id ^ attempts.wrapping_mul(0x9E37_79B9)).wrapping_mul(2_654_435_761);
    let spread = seed.rem_euclid(250) * base_ms / 1000;
    ChronoDuration::milliseconds(base_ms + spread)
}

/// A kind as stored and named in templates.
pub fn kind_name(kind: TemplateKind) -> &'static str {
    match kind {
        TemplateKind::Invitation => incasso_store::notify::INVITATION,
        TemplateKind::Reminder => incasso_store::notify::REMINDER,
        TemplateKind::Withdrawal => incasso_store::notify::WITHDRAWAL,
        TemplateKind::Paid => incasso_store::notify::PAID,
    }
}

pub fn kind_of(name: &str) -> Option<TemplateKind> {
    match name {
        "INVITATION" => Some(TemplateKind::Invitation),
        "REMINDER" => Some(TemplateKind::Reminder),
        "WITHDRAWAL" => Some(TemplateKind::Withdrawal),
        "PAID" => Some(TemplateKind::Paid),
        _ => None,
    }
}

/// A service's settings as a clerk sees them: the key masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSettings {
    pub service_code: String,
    /// `••••` and the key's last four characters; `None`: no key.
    pub io_api_key_hint: Option<String>,
    pub enabled: bool,
    pub invite_on_publish: bool,
    pub reminder_days: Option<i64>,
    /// Languages messages are written in: `it`, and `de` when enabled.
    pub languages: Vec<String>,
    /// App IO's time to live in seconds; `None`: IO's default.
    pub time_to_live: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

fn mask_key(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("••••{tail}")
}

impl From<NotifySettings> for ServiceSettings {
    fn from(s: NotifySettings) -> Self {
        let mut languages = vec!["it".to_string()];
        if s.german {
            languages.push("de".into());
        }
        ServiceSettings {
            service_code: s.service_code,
            io_api_key_hint: s.io_api_key.as_deref().map(mask_key),
            enabled: s.enabled,
            invite_on_publish: s.invite_on_publish,
            reminder_days: s.reminder_days,
            languages,
            time_to_live: s.time_to_live,
            updated_at: s.updated_at,
            updated_by: s.updated_by,
        }
    }
}

/// What a clerk saves for a service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SettingsInput {
    /// `None`: keep the stored key; `Some("")`: remove it; else the new key.
    pub io_api_key: Option<String>,
    pub enabled: bool,
    pub invite_on_publish: bool,
    /// 1 to 60 days; `None`: no reminder.
    pub reminder_days: Option<i64>,
    /// German messages too (for citizens who prefer it).
    pub german: bool,
}

/// Saves a service's settings (catalogue area, write).
pub async fn save_settings(
    ctx: &Ctx,
    ente: &str,
    service_code: &str,
    input: &SettingsInput,
) -> Result<ServiceSettings, AppError> {
    crate::audit::audited(ctx, Some(ente), "notify.settings", service_code, async {
        ctx.caller.require(ente, Area::Catalogue, Access::Write)?;
        if let Some(d) = input.reminder_days
            && !(1..=60).contains(&d)
        {
            return Err(AppError::invalid(
                "BAD_REMINDER_DAYS",
                "reminderDays: da 1 a 60 giorni prima della scadenza (vuoto: nessun promemoria)",
            ));
        }
        let key = match input.io_api_key.as_deref().map(str::trim) {
            None => KeyChange::Keep,
            Some("") => KeyChange::Remove,
            Some(k) => {
                if k.len() < 16
                    || k.len() > 200
                    || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(AppError::invalid(
                        "BAD_IO_API_KEY",
                        "ioApiKey: la chiave del servizio App IO (da 16 a 200 lettere, cifre, - o _), come la mostra il portale IO per gli enti",
                    ));
                }
                KeyChange::Set(k.to_string())
            }
        };
        let saved = ctx
            .store()
            .put_notify_settings(
                &NewNotifySettings {
                    ente: ente.into(),
                    service_code: service_code.into(),
                    io_api_key: key,
                    enabled: input.enabled,
                    invite_on_publish: input.invite_on_publish,
                    reminder_days: input.reminder_days,
                    german: input.german,
                    updated_by: ctx.caller.actor(),
                },
                ctx.now(),
            )
            .await
            .at(Place::new("notify.save_settings", ente, service_code))?;
        Ok(saved.into())
    })
    .await
}

/// A service's settings, if saved (catalogue area, read).
pub async fn settings(
    ctx: &Ctx,
    ente: &str,
    service_code: &str,
) -> Result<Option<ServiceSettings>, AppError> {
    ctx.caller.require(ente, Area::Catalogue, Access::Read)?;
    Ok(ctx
        .store()
        .notify_settings(ente, service_code)
        .await
        .at(Place::new("notify.settings", ente, service_code))?
        .map(Into::into))
}

/// Every service's settings of the Ente (catalogue area, read).
pub async fn list_settings(ctx: &Ctx, ente: &str) -> Result<Vec<ServiceSettings>, AppError> {
    ctx.caller.require(ente, Area::Catalogue, Access::Read)?;
    Ok(ctx
        .store()
        .list_notify_settings(ente)
        .await
        .at(Place::new("notify.list_settings", ente, ""))?
        .into_iter()
        .map(Into::into)
        .collect())
}

fn check_language(language: &str) -> Result<(), AppError> {
    if matches!(language, "it" | "de") {
        Ok(())
    } else {
        Err(AppError::invalid(
            "BAD_LANGUAGE",
            "language: it (italiano) o de (tedesco)",
        ))
    }
}

/// Saves a service's template for `kind` in `language` (`it` or `de`),
/// checked first (catalogue area, write): a subject of 10-120 characters,
/// markdown of 80-10000, only known placeholders; the error names the
/// field.
pub async fn save_template(
    ctx: &Ctx,
    ente: &str,
    service_code: &str,
    kind: TemplateKind,
    language: &str,
    template: &Template,
) -> Result<(), AppError> {
    let object = format!("{service_code}/{}/{language}", kind_name(kind));
    crate::audit::audited(ctx, Some(ente), "notify.template", &object, async {
        ctx.caller.require(ente, Area::Catalogue, Access::Write)?;
        check_language(language)?;
        template.validate().map_err(|e| {
            AppError::invalid(
                "BAD_TEMPLATE",
                format!("modello {} ({language}): {e}", kind_name(kind)),
            )
        })?;
        ctx.store()
            .put_notify_template(
                ente,
                service_code,
                kind_name(kind),
                language,
                &template.subject,
                &template.markdown,
                &ctx.caller.actor(),
                ctx.now(),
            )
            .await
            .at(Place::new("notify.save_template", ente, &object))
    })
    .await
}

/// The template a service uses for `kind` in `language`: its own, else
/// incasso's default (catalogue area, read).
pub async fn template(
    ctx: &Ctx,
    ente: &str,
    service_code: &str,
    kind: TemplateKind,
    language: &str,
) -> Result<Template, AppError> {
    ctx.caller.require(ente, Area::Catalogue, Access::Read)?;
    check_language(language)?;
    effective_template(&ctx.app, ente, service_code, kind, language).await
}

async fn effective_template(
    app: &App,
    ente: &str,
    service_code: &str,
    kind: TemplateKind,
    language: &str,
) -> Result<Template, AppError> {
    let own = app
        .store
        .notify_templates(ente, service_code)
        .await
        .at(Place::new("notify.template", ente, service_code))?;
    Ok(pick_template(&own, kind, language))
}

/// The service's own template of `kind` in `language` among `own`, else
/// incasso's.
fn pick_template(own: &[TemplateRecord], kind: TemplateKind, language: &str) -> Template {
    match own
        .iter()
        .find(|t| t.kind == kind_name(kind) && t.language == language)
    {
        Some(t) => Template {
            subject: t.subject.clone(),
            markdown: t.markdown.clone(),
        },
        None => default_template(kind, language),
    }
}

/// As [`effective_template`], the service's templates read once a round.
async fn round_template(
    app: &App,
    shared: &RoundShared,
    ente: &str,
    service_code: &str,
    kind: TemplateKind,
    language: &str,
) -> Result<Template, AppError> {
    let cell = shared
        .templates
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry((ente.to_string(), service_code.to_string()))
        .or_default()
        .clone();
    let own = cell
        .get_or_try_init(|| async {
            app.store
                .notify_templates(ente, service_code)
                .await
                .at(Place::new("notify.template", ente, service_code))
        })
        .await?;
    Ok(pick_template(own, kind, language))
}

/// A position's messages, oldest first (positions area, read).
pub async fn position_messages(
    ctx: &Ctx,
    ente: &str,
    iupd: &str,
) -> Result<Vec<NotificationRecord>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    ctx.store()
        .position_notifications(ente, iupd)
        .await
        .at(Place::new("notify.position_messages", ente, iupd))
}

/// The Ente's dead letters (FAILED), newest first (positions area, read).
pub async fn dead_letters(
    ctx: &Ctx,
    ente: &str,
    limit: u32,
) -> Result<Vec<NotificationRecord>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    ctx.store()
        .notifications_with_status(ente, incasso_store::notify::FAILED, limit)
        .await
        .at(Place::new("notify.dead_letters", ente, ""))
}

/// Sends a dead letter again, its attempts counted afresh (positions
/// area, write).
pub async fn retry(ctx: &Ctx, ente: &str, id: i64) -> Result<(), AppError> {
    let object = id.to_string();
    crate::audit::audited(ctx, Some(ente), "notify.retry", &object, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        let done = ctx
            .store()
            .retry_notification(ente, id, ctx.now())
            .await
            .at(Place::new("notify.retry", ente, &object))?;
        if done {
            Ok(())
        } else {
            Err(AppError::conflict(
                "NOTIFICATION_NOT_FAILED",
                "si può ritentare solo un messaggio fallito di questo ente",
            ))
        }
    })
    .await
}

/// Hands new events on as notifications; answers how many events.
pub async fn fan_out(app: &App) -> Result<usize, AppError> {
    let mut total = 0;
    loop {
        let n = app
            .store
            .fan_out_notifications(app.clock.now(), 500)
            .await
            .at(Place::new("notify.fan_out", "", ""))?;
        total += n;
        if n < 500 {
            return Ok(total);
        }
    }
}

/// The reminder job's round: for every service with reminders, DUE_SOON
/// for the unpaid options due on the day (Europe/Rome) `reminder_days`
/// from today. Once per option and due date, however often it runs.
pub async fn write_reminders(app: &App, now: DateTime<Utc>) -> Result<usize, AppError> {
    let place = Place::new("notify.reminders", "", "");
    let mut total = 0;
    let enti = app.store.list_enti().await.at(place)?;
    for ente in enti {
        let all = app
            .store
            .list_notify_settings(&ente.fiscal_code)
            .await
            .at(place)?;
        for s in all {
            let Some(days) = s.reminder_days.filter(|_| s.enabled) else {
                continue;
            };
            let day = incasso_core::time::to_rome(now).date() + chrono::Days::new(days as u64);
            let from = incasso_core::time::from_rome(day.and_time(NaiveTime::MIN));
            let to = incasso_core::time::from_rome(
                (day + chrono::Days::new(1)).and_time(NaiveTime::MIN),
            );
            total += app
                .store
                .write_due_soon(&s.ente, &s.service_code, from, to, days, now)
                .await
                .at(Place::new("notify.reminders", &s.ente, &s.service_code))?;
        }
    }
    Ok(total)
}

/// What one round of sending did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub emailed: usize,
    pub skipped: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Round {
    pub fn total(&self) -> usize {
        self.sent + self.emailed + self.skipped + self.retried + self.failed
    }
}

/// The IO client for the configured base URL, built once.
fn io_client(app: &App) -> Option<IoClient> {
    static CLIENT: Mutex<Option<(String, IoClient)>> = Mutex::new(None);
    let url = app.settings.io_url.as_deref().filter(|u| !u.is_empty())?;
    let mut cached = CLIENT.lock().ok()?;
    if let Some((u, c)) = cached.as_ref()
        && u == url
    {
        return Some(c.clone());
    }
    incasso_pagopa::connector::install_crypto_provider();
    match IoClient::new(url, IO_TIMEOUT) {
        Ok(c) => {
            *cached = Some((url.to_string(), c.clone()));
            Some(c)
        }
        Err(e) => {
            tracing::error!(error = %e, "App IO client not built: INCASSO_IO_URL is not usable");
            None
        }
    }
}

/// Sends the rows due at `now`, side by side; each claimed here is sent by
/// no other worker meanwhile.
pub async fn send_due(app: &App, now: DateTime<Utc>) -> Result<Round, AppError> {
    let lease = ChronoDuration::from_std(LEASE).unwrap_or(ChronoDuration::seconds(60));
    let due = app
        .store
        .claim_notifications(now, lease, BATCH)
        .await
        .at(Place::new("notify.send_due", "", ""))?;
    let mut round = Round::default();
    if due.is_empty() {
        return Ok(round);
    }
    let positions = round_positions(app, &due).await;
    let (sent_tx, sent_rx) = tokio::sync::mpsc::unbounded_channel();
    let recording = tokio::spawn(record_sent(app.clone(), sent_rx));
    let shared = Arc::new(RoundShared {
        sent: sent_tx,
        positions,
        templates: Mutex::new(HashMap::new()),
    });
    let mut sending = tokio::task::JoinSet::new();
    for n in due {
        let app = app.clone();
        let shared = shared.clone();
        sending.spawn(async move { deliver(&app, &shared, &n, now).await });
    }
    drop(shared);
    let mut failure = None;
    while let Some(done) = sending.join_next().await {
        match done {
            Ok(Ok(o)) => match o {
                Outcome::Sent => round.sent += 1,
                Outcome::Emailed => round.emailed += 1,
                Outcome::Skipped => round.skipped += 1,
                Outcome::Retried => round.retried += 1,
                Outcome::Failed => round.failed += 1,
            },
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => tracing::error!(error = %e, "notification task failed"),
        }
    }
    // Every task's sender is gone: the recorder writes what is queued and
    // ends. The round's messages are all recorded before it answers.
    match recording.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => failure = failure.or(Some(e)),
        Err(e) => tracing::error!(error = %e, "notification recorder failed"),
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(round),
    }
}

/// What a round's deliveries share: the recorder of messages IO took, and
/// the templates read once for the round (a template saved meanwhile is
/// used from the next round).
struct RoundShared {
    sent: tokio::sync::mpsc::UnboundedSender<SentMessage>,
    /// The claimed rows' positions, read together as the round starts
    /// (four queries a round, not four a message: `bench notify` on
    /// PostgreSQL). A position not among them is read on its own.
    positions: HashMap<i64, StoredPosition>,
    templates: Mutex<HashMap<(String, String), ServiceTemplates>>,
}

/// The positions of a round's rows, by id, an Ente at a time. A failed
/// read leaves them to be read one by one.
async fn round_positions(app: &App, due: &[DueNotification]) -> HashMap<i64, StoredPosition> {
    let mut by_ente: HashMap<&str, Vec<i64>> = HashMap::new();
    for n in due {
        by_ente
            .entry(n.record.ente.as_str())
            .or_default()
            .push(n.record.position_id);
    }
    let mut found = HashMap::with_capacity(due.len());
    for (ente, ids) in by_ente {
        match app.store.positions_by_ids(ente, &ids).await {
            Ok(list) => found.extend(list.into_iter().map(|s| (s.id, s))),
            Err(e) => tracing::warn!(error = %e, ente, "round's positions not read together"),
        }
    }
    found
}

/// A service's own templates, read by the first of a round's deliveries
/// that needs them.
type ServiceTemplates = Arc<tokio::sync::OnceCell<Vec<TemplateRecord>>>;

/// Messages recorded by one write at most.
const RECORD_AT_ONCE: usize = 256;

/// Records the messages IO took as they come, each write taking all that
/// queued meanwhile: a group commit. Nothing waits on purpose, so a message
/// is recorded as soon as the write before it is done, and the window in
/// which a crash sends twice stays that of one write.
async fn record_sent(
    app: App,
    mut queued: tokio::sync::mpsc::UnboundedReceiver<SentMessage>,
) -> Result<(), AppError> {
    let mut failure = None;
    let mut batch = Vec::new();
    while let Some(first) = queued.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < RECORD_AT_ONCE {
            match queued.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        // A failed write leaves its rows SENDING: their lease lapses and
        // they are sent again (the documented window). The rest are still
        // recorded.
        if let Err(e) = app
            .store
            .notifications_sent(&batch, app.clock.now())
            .await
            .at(Place::new("notify.record_sent", "", ""))
        {
            tracing::warn!(error = %e, messages = batch.len(), "sent messages not recorded");
            failure = failure.or(Some(e));
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

enum Outcome {
    Sent,
    Emailed,
    Skipped,
    Retried,
    Failed,
}

/// What a message says and carries, read from the position as it is now.
struct Prepared {
    values: Values,
    payment: Option<PaymentData>,
    due_date: Option<DateTime<Utc>>,
    debtor_fiscal_code: String,
    email: Option<String>,
    /// The option the message is about is paid (or the position is no
    /// longer payable), for an invitation or reminder: nothing to send.
    not_payable: Option<&'static str>,
}

/// The Ente's and the service's names, as messages print them: read once
/// every [`NAMES_FOR`] rather than twice for every message (perf, `bench
/// notify`); a renamed Ente or service shows in messages that much later.
async fn names(
    app: &App,
    ente: &str,
    service_code: &str,
) -> Result<(String, String), incasso_store::StoreError> {
    type Names = std::collections::HashMap<(String, String), (std::time::Instant, String, String)>;
    static NAMES: Mutex<Option<Names>> = Mutex::new(None);
    let key = (ente.to_string(), service_code.to_string());
    if let Ok(cached) = NAMES.lock()
        && let Some((at, e, s)) = cached.as_ref().and_then(|m| m.get(&key))
        && at.elapsed() < NAMES_FOR
    {
        return Ok((e.clone(), s.clone()));
    }
    let ente_name = app.store.get_ente(ente).await?.name;
    let service = app
        .store
        .get_service(ente, service_code)
        .await
        .map(|s| s.name)
        .unwrap_or_else(|_| service_code.to_string());
    if let Ok(mut cached) = NAMES.lock() {
        let map = cached.get_or_insert_with(Default::default);
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(
            key,
            (
                std::time::Instant::now(),
                ente_name.clone(),
                service.clone(),
            ),
        );
    }
    Ok((ente_name, service))
}

/// How long [`names`] keeps a name.
const NAMES_FOR: Duration = Duration::from_secs(10);

async fn prepare(
    app: &App,
    shared: &RoundShared,
    n: &DueNotification,
) -> Result<Option<Prepared>, AppError> {
    let r = &n.record;
    let place = Place::new("notify.prepare", &r.ente, &r.iupd);
    if let Some(stored) = shared.positions.get(&r.position_id) {
        return prepare_from(app, r, stored).await;
    }
    let stored = match app.store.get_position(&r.ente, &r.iupd).await {
        Ok(s) if s.id == r.position_id => s,
        // A deleted position's withdrawal is told from what its deletion
        // kept (channels: store::notify_channels::keep_gone).
        Ok(_) | Err(incasso_store::StoreError::NotFound(_)) if r.kind == "WITHDRAWAL" => {
            match app.store.gone_position(r.position_id).await.at(place)? {
                Some(s) => s,
                None => return Ok(None),
            }
        }
        Ok(_) | Err(incasso_store::StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(crate::error::from_store(e, &place)),
    };
    prepare_from(app, r, &stored).await
}

/// What [`prepare`] makes of the position as read.
async fn prepare_from(
    app: &App,
    r: &NotificationRecord,
    stored: &StoredPosition,
) -> Result<Option<Prepared>, AppError> {
    use incasso_core::position::PositionStatus as S;
    let place = Place::new("notify.prepare", &r.ente, &r.iupd);
    let p = &stored.position;
    // The option told: the event's notice, else (an invitation) the single
    // solution, else the first installment.
    let option = r
        .notice_number
        .as_deref()
        .and_then(|nav| {
            p.options
                .iter()
                .find(|o| o.notice_number.as_ref().map(|x| x.as_str()) == Some(nav))
        })
        .or_else(|| p.options.iter().find(|o| !o.is_partial_payment))
        .or_else(|| p.options.first());
    let Some(option) = option else {
        return Ok(None);
    };
    let (ente_name, service) = names(app, &r.ente, &r.service_code).await.at(place)?;
    let nav = option
        .notice_number
        .as_ref()
        .map(|x| x.as_str().to_string())
        .unwrap_or_default();
    let payable =
        matches!(p.status, S::Published | S::Valid | S::PartiallyPaid) && !option.status.is_paid();
    let wants_payment = matches!(r.kind.as_str(), "INVITATION" | "REMINDER");
    let not_payable = match r.kind.as_str() {
        "REMINDER" if option.status.is_paid() => Some("ALREADY_PAID"),
        "INVITATION" | "REMINDER" if !payable => Some("NOT_PAYABLE"),
        _ => None,
    };
    let values = Values::new()
        .with("ente", ente_name)
        .with("ente_fiscal_code", r.ente.clone())
        .with("service", service)
        .with("description", option.description.clone())
        .with("debtor_name", p.debtor.full_name.clone())
        .with("amount", format_amount(option.amount.0))
        .with("notice_number", nav.clone())
        .with("due_date", format_date(option.due_date))
        .with("iuv", option.iuv.clone().unwrap_or_default())
        .with(
            "payment_url",
            format!("{}/portale/{}/", app.settings.public_url, r.ente),
        );
    Ok(Some(Prepared {
        values,
        payment: wants_payment.then(|| PaymentData {
            amount: option.amount.0,
            notice_number: nav,
            // Past its due date the notice may no longer be paid when the
            // position expires then.
            invalid_after_due_date: p.switch_to_expired,
            payee_fiscal_code: Some(r.ente.clone()),
        }),
        due_date: wants_payment.then_some(option.due_date),
        debtor_fiscal_code: p.debtor.fiscal_code.clone(),
        email: p
            .debtor
            .email
            .as_deref()
            .and_then(|e| crate::mail::check_address(e).ok()),
        not_payable,
    }))
}

async fn deliver(
    app: &App,
    shared: &RoundShared,
    n: &DueNotification,
    now: DateTime<Utc>,
) -> Result<Outcome, AppError> {
    let r = &n.record;
    let place = Place::new("notify.deliver", &r.ente, &r.iupd);
    let store = &app.store;
    let skip = |reason: String| async move {
        store
            .notification_skipped(r.id, n.attempt, &reason)
            .await
            .at(place)?;
        Ok::<_, AppError>(Outcome::Skipped)
    };
    let Some(kind) = kind_of(&r.kind) else {
        return skip(format!(
            "UNKNOWN_KIND: tipo di messaggio sconosciuto {}",
            r.kind
        ))
        .await;
    };
    // Not sent late: past its time to live the news is stale.
    let expires = channels::expires_at(r.created_at, n.time_to_live);
    if now > expires {
        return skip(format!(
            "EXPIRED: non inviato entro il tempo di validità ({} ore dall'evento)",
            (expires - r.created_at).num_hours()
        ))
        .await;
    }
    let Some(prepared) = prepare(app, shared, n).await? else {
        return skip("POSITION_GONE: la posizione non esiste più".into()).await;
    };
    if let Some(why) = prepared.not_payable {
        let words = if why == "ALREADY_PAID" {
            "già pagato: nessun promemoria"
        } else {
            "la posizione non è più pagabile"
        };
        return skip(format!("{why}: {words}")).await;
    }
    let client = io_client(app);
    let (Some(client), Some(key)) = (client, n.io_api_key.as_deref()) else {
        let why = if app.settings.io_url.is_none() {
            "IO_OFF: App IO non configurato (INCASSO_IO_URL)"
        } else {
            "NO_IO_KEY: il servizio non ha la chiave App IO"
        };
        return by_email(app, n, kind, &prepared, why, now).await;
    };
    if !incasso_notify::io::is_fiscal_code(&prepared.debtor_fiscal_code) {
        return by_email(
            app,
            n,
            kind,
            &prepared,
            "NO_FISCAL_CODE: il debitore non ha un codice fiscale di persona fisica",
            now,
        )
        .await;
    }
    if let Err(wait) = io_turn(app, key).await {
        return paced_back(app, n, wait, None).await;
    }
    let profile = match client.profile(key, &prepared.debtor_fiscal_code).await {
        Ok(p) => {
            pacer(app).taken(key, std::time::Instant::now());
            p
        }
        Err(IoError::NotFound) => {
            return by_email(
                app,
                n,
                kind,
                &prepared,
                "NOT_ON_IO: il cittadino non usa App IO",
                now,
            )
            .await;
        }
        Err(e) => return io_failed(app, n, e, now, None).await,
    };
    if !profile.sender_allowed {
        return by_email(
            app,
            n,
            kind,
            &prepared,
            "OPTED_OUT: il cittadino ha disattivato i messaggi del servizio",
            now,
        )
        .await;
    }
    let supported: &[&str] = if n.german { &["it", "de"] } else { &["it"] };
    let language = profile.language_among(supported).unwrap_or("it");
    let template = round_template(app, shared, &r.ente, &r.service_code, kind, language).await?;
    let rendered = match template.render(&prepared.values) {
        Ok(t) => t,
        Err(e) => {
            store
                .notification_not_sent(
                    r.id,
                    n.attempt,
                    &format!("TEMPLATE: {e}"),
                    None,
                    false,
                    None,
                )
                .await
                .at(place)?;
            return Ok(Outcome::Failed);
        }
    };
    let message = NewMessage {
        fiscal_code: prepared.debtor_fiscal_code.clone(),
        time_to_live: n.time_to_live.and_then(|t| u32::try_from(t).ok()),
        content: MessageContent {
            subject: rendered.subject.clone(),
            markdown: rendered.markdown.clone(),
            payment_data: prepared.payment.clone(),
            due_date: prepared.due_date,
        },
    };
    // The claim recorded the attempt, and committed it, before any call.
    // It is this worker's for the lease; past half of it (IO slow to
    // answer the profile check) the claim is checked again before sending,
    // since another worker may take it once the lease lapses.
    let half_lease = ChronoDuration::from_std(LEASE / 2).unwrap_or(ChronoDuration::seconds(30));
    if app.clock.now() - now > half_lease
        && !store
            .notification_sending(
                r.id,
                n.attempt,
                &rendered.subject,
                &rendered.markdown,
                app.clock.now(),
            )
            .await
            .at(place)?
    {
        return Ok(Outcome::Skipped);
    }
    let text = Some((rendered.subject.as_str(), rendered.markdown.as_str()));
    if let Err(wait) = io_turn(app, key).await {
        return paced_back(app, n, wait, text).await;
    }
    match client.send(key, &message).await {
        Ok(id) => {
            pacer(app).taken(key, std::time::Instant::now());
            // Recorded by the round's recorder right away (a group commit);
            // from the call to that record a crash may send it twice.
            let sent = SentMessage {
                id: r.id,
                attempt: n.attempt,
                io_message_id: id,
                subject: Some(rendered.subject),
                body: Some(rendered.markdown),
            };
            if shared.sent.send(sent).is_err() {
                // Only a recorder that panicked: the row stays SENDING and
                // is sent again when its lease lapses.
                tracing::error!(notification = r.id, "sent message not recorded");
            }
            tracing::debug!(ente = %r.ente, notification = r.id, "App IO message sent");
            Ok(Outcome::Sent)
        }
        Err(e) => io_failed(app, n, e, now, text).await,
    }
}

/// IO did not take it: wait (429, for this service only), retry (5xx...),
/// or give up (a refusal).
async fn io_failed(
    app: &App,
    n: &DueNotification,
    e: IoError,
    now: DateTime<Utc>,
    text: Option<(&str, &str)>,
) -> Result<Outcome, AppError> {
    let r = &n.record;
    let place = Place::new("notify.io_failed", &r.ente, &r.iupd);
    let store = &app.store;
    match e {
        IoError::RateLimited { retry_after } => {
            let retry_after = retry_after.unwrap_or(RATE_LIMIT_PAUSE);
            if let Some(key) = n.io_api_key.as_deref() {
                pacer(app).limited(key, std::time::Instant::now());
            }
            let wait = ChronoDuration::from_std(retry_after).unwrap_or(ChronoDuration::seconds(1));
            // From IO's answer, as IO counts it, not from the round's start.
            let until = app.clock.now() + wait;
            store
                .pause_notify_service(&r.ente, &r.service_code, until)
                .await
                .at(place)?;
            store
                .notification_not_sent(
                    r.id,
                    n.attempt,
                    "RATE_LIMITED: App IO chiede di rallentare (429)",
                    Some(until),
                    true,
                    text,
                )
                .await
                .at(place)?;
            Ok(Outcome::Retried)
        }
        IoError::Transient(why) => {
            let give_up = n.attempt >= MAX_ATTEMPTS;
            let retry_at = (!give_up).then(|| now + retry_delay(n.attempt, r.id));
            store
                .notification_not_sent(
                    r.id,
                    n.attempt,
                    &format!("IO_UNAVAILABLE: {why}"),
                    retry_at,
                    false,
                    text,
                )
                .await
                .at(place)?;
            if give_up {
                tracing::warn!(ente = %r.ente, notification = r.id, "App IO message given up");
                Ok(Outcome::Failed)
            } else {
                Ok(Outcome::Retried)
            }
        }
        other => {
            let why = match &other {
                IoError::Permanent { status, detail } => {
                    format!("IO_REFUSED: HTTP {status}: {detail}")
                }
                e => format!("IO_REFUSED: {e}"),
            };
            store
                .notification_not_sent(r.id, n.attempt, &why, None, false, text)
                .await
                .at(place)?;
            tracing::warn!(ente = %r.ente, notification = r.id, error = %why,
                "App IO refused the message: parked");
            Ok(Outcome::Failed)
        }
    }
}

/// IO cannot take it (`why`): by e-mail when the debtor has an address
/// and incasso sends e-mail, else SKIPPED with why.
async fn by_email(
    app: &App,
    n: &DueNotification,
    kind: TemplateKind,
    prepared: &Prepared,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, AppError> {
    let r = &n.record;
    let place = Place::new("notify.by_email", &r.ente, &r.iupd);
    let store = &app.store;
    let Some(address) = prepared.email.as_deref() else {
        store
            .notification_skipped(r.id, n.attempt, &format!("{why}; nessun indirizzo e-mail"))
            .await
            .at(place)?;
        return Ok(Outcome::Skipped);
    };
    if !crate::mail::enabled(app) {
        store
            .notification_skipped(
                r.id,
                n.attempt,
                &format!("{why}; invio e-mail non configurato"),
            )
            .await
            .at(place)?;
        return Ok(Outcome::Skipped);
    }
    // The portal already sent this payment's receipt to this address.
    if kind == TemplateKind::Paid
        && let Some(receipt) = n.event_payload["receiptId"].as_str()
        && channels::receipt_mailed_to(app, &r.ente, receipt, address).await?
    {
        store
            .notification_skipped(
                r.id,
                n.attempt,
                &format!(
                    "{why}; RECEIPT_ALREADY_MAILED: la ricevuta è già stata inviata a {address} dal portale"
                ),
            )
            .await
            .at(place)?;
        return Ok(Outcome::Skipped);
    }
    let email_kind = incasso_notify::email::EmailKind::parse(kind_name(kind))
        .unwrap_or(incasso_notify::email::EmailKind::Invitation);
    let (subject, body) =
        match channels::render_email(app, &r.ente, email_kind, &prepared.values).await {
            Ok(t) => t,
            Err(e) => {
                store
                    .notification_not_sent(
                        r.id,
                        n.attempt,
                        &format!("TEMPLATE: {}", e.detail),
                        None,
                        false,
                        None,
                    )
                    .await
                    .at(place)?;
                return Ok(Outcome::Failed);
            }
        };
    store
        .notification_to_email(n, why, address, &subject, &body, now)
        .await
        .at(place)?;
    Ok(Outcome::Emailed)
}

/// Fans out and sends until the process ends.
pub async fn run(app: App) {
    loop {
        let mut busy = false;
        let mut full = false;
        match fan_out(&app).await {
            Ok(n) => busy |= n > 0,
            Err(e) => tracing::warn!(error = %e, "notification fan-out failed; retrying later"),
        }
        match send_due(&app, app.clock.now()).await {
            Ok(r) => {
                busy |= r.total() > 0;
                full = r.total() >= BATCH as usize;
            }
            Err(e) => tracing::warn!(error = %e, "notification round failed; retrying later"),
        }
        if full {
            continue;
        }
        let idle = idle_for(&app).await;
        // A round per event, as payments trickle in, was a fan-out
        // transaction (seven statements) per receipt: a tenth of the Node
        // cycle's statements on PostgreSQL (`bench node`), for a message
        // that may leave a few milliseconds later.
        tokio::time::sleep(if busy { idle.min(GATHER) } else { idle }).await;
    }
}

/// How long a worker that found some work, but less than a full batch,
/// lets more gather before its next round.
const GATHER: Duration = Duration::from_millis(50);

/// How long an idle worker sleeps: [`POLL_EVERY`], or less when a service
/// IO paused resumes sooner. Sleeping past the pause wasted what IO's
/// bucket refilled meanwhile: the rate-limited drain was at 83% of IO's
/// rate with a plain poll (`bench notify`).
async fn idle_for(app: &App) -> Duration {
    let now = app.clock.now();
    match app.store.next_notify_resume(now).await {
        Ok(Some(at)) => (at - now)
            .to_std()
            .unwrap_or_default()
            .clamp(Duration::from_millis(2), POLL_EVERY),
        Ok(None) => POLL_EVERY,
        Err(e) => {
            tracing::warn!(error = %e, "notification pauses not read");
            POLL_EVERY
        }
    }
}

/// Writes the reminders' events, a minute after start and then every
/// [`REMINDERS_EVERY`].
pub async fn run_reminders(app: App) {
    crate::jobs::on_schedule(
        app,
        "reminders",
        REMINDERS_EVERY,
        Duration::from_secs(60),
        |app, now| async move {
            match write_reminders(&app, now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(options = n, "payment reminders due"),
                Err(e) => tracing::warn!(error = %e, "reminder job failed; retrying later"),
            }
        },
    )
    .await
}

/// The IO key `serve --demo` gives an Ente's services: the simulator's
/// demo IO service of that Ente (`incasso_simulator::io::DEMO_SERVICES`).
pub fn demo_io_key(ente: &str) -> String {
    format!("io-demo-key-{ente}")
}

/// `serve --demo`: every service of `ente` tells its citizens through the
/// simulator's IO (invitations on publication, reminders three days
/// before, German too), with the Ente's demo IO key. Done after the demo's
/// positions exist, so only what is published from now on is told; a
/// failure is logged, never fatal to the demo.
pub async fn seed_demo(ctx: &Ctx, ente: &str) {
    let services = match ctx.store().list_services(ente).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(ente, error = %e, "demo notification settings not saved");
            return;
        }
    };
    for s in services {
        let input = SettingsInput {
            io_api_key: Some(demo_io_key(ente)),
            enabled: true,
            invite_on_publish: true,
            reminder_days: Some(3),
            german: true,
        };
        if let Err(e) = save_settings(ctx, ente, &s.code, &input).await {
            tracing::warn!(ente, service = %s.code, error = %e,
                "demo notification settings not saved");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_with_jitter() {
        let waits: Vec<i64> = (1..=13)
            .map(|n| retry_delay(n, 0).num_milliseconds() / 1000)
            .collect();
        assert_eq!(waits[0], 2);
        // Doubling until the hour's cap (attempt 12); past it only the
        // jitter differs, so the waits need not grow any more.
        assert!(waits[..12].windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert!(
            waits[11..].iter().all(|s| (3600..4500).contains(s)),
            "{waits:?}"
        );
        assert!(retry_delay(20, 7).num_seconds() <= 4500);
        let spread: std::collections::BTreeSet<i64> = (0..50)
            .map(|id| retry_delay(3, id).num_milliseconds())
            .collect();
        assert!(spread.len() > 10, "jitter differs between rows");
        assert!(spread.iter().all(|ms| (8000..10000).contains(ms)));
    }

    #[test]
    fn keys_are_shown_masked() {
        assert_eq!(mask_key("abcdefghijklmnop1234"), "••••1234");
    }
}
