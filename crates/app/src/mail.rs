//! E-mail through a real SMTP server (lettre), from an outbox table.
//!
//! Nothing is sent while a request waits: a use case queues a message (the
//! store's `mail_outbox`, one row per natural key, so a receipt the Node
//! sends twice is mailed once) and [`run`] sends what is due. Each attempt
//! is counted; an SMTP server's temporary refusal (4xx) or a connection
//! that fails is tried again later, each wait twice the last
//! ([`retry_delay`]); a permanent refusal (5xx) or an address that is none
//! fails the message at once, and so does the [`MAX_ATTEMPTS`]th failure:
//! a message is never tried forever. What went wrong is kept in the row.
//!
//! Today's only message is the payment receipt: after a `paSendRT` is
//! stored, the payer who gave an address (in the portal's cart, or to the
//! PSP, in the RT) gets the *quietanza* PDF.

use crate::error::{AppError, At, Place};
use crate::{App, Ctx};
use chrono::{DateTime, Utc};
use incasso_store::mail::{MailRecord, NewMail};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::Notify;

/// Attempts before a message is given up (FAILED).
pub const MAX_ATTEMPTS: i64 = 8;

/// How often the outbox is looked at when nobody says it has work.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// How long a claimed message is a worker's: past it (the worker died
/// mid-send), another worker takes it.
pub const LEASE: Duration = Duration::from_secs(120);

/// An SMTP conversation that takes longer is abandoned (and retried).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The kind of a receipt's message.
pub const RECEIPT: &str = "receipt";

/// The kind of a payment notice's message (from the counter desk): the
/// reference is the notice number, the notice PDF is attached.
pub const NOTICE: &str = "notice";

/// The kind of a notification's message (app::notify, when App IO cannot
/// take it): the reference is the EMAIL notification's id, whose rendered
/// subject and text it sends; invitations and reminders carry the notice.
pub const NOTIFY: &str = "notify";

/// Woken when a message is queued, so it leaves at once rather than at the
/// next poll (in this process; another process's worker polls).
static QUEUED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// The wait after the `attempts`th failure: 1, 2, 4... minutes, at most an
/// hour; eight attempts span about two hours.
pub fn retry_delay(attempts: i64) -> chrono::Duration {
    let minutes = 1i64 << attempts.clamp(1, 7).saturating_sub(1);
    chrono::Duration::minutes(minutes.min(60))
}

/// The natural key of a receipt's message: one per receipt, ever.
pub fn receipt_key(ente: &str, receipt_id: &str) -> String {
    format!("receipt:{ente}:{receipt_id}")
}

/// The natural key of a notice's message: one per notice and address,
/// so that a double click at the desk mails it once.
pub fn notice_key(ente: &str, notice_number: &str, recipient: &str) -> String {
    format!("notice:{ente}:{notice_number}:{}", recipient.to_lowercase())
}

/// Queues the payment notice `notice_number` for `recipient` (checked by
/// the caller); `false` when it was queued before.
pub(crate) async fn queue_notice(
    ctx: &Ctx,
    ente: &str,
    notice_number: &str,
    recipient: &str,
) -> Result<bool, AppError> {
    let mail = NewMail {
        natural_key: notice_key(ente, notice_number, recipient),
        kind: NOTICE.into(),
        ente: ente.into(),
        reference: notice_number.into(),
        recipient: recipient.into(),
    };
    let queued = ctx
        .store()
        .enqueue_mail(&mail, ctx.now())
        .await
        .at(Place::new("mail.queue_notice", ente, notice_number))?;
    if queued {
        QUEUED.notify_one();
    }
    Ok(queued)
}

/// Whether e-mail can be sent at all.
pub fn enabled(app: &App) -> bool {
    app.settings
        .smtp_url
        .as_deref()
        .is_some_and(|u| !u.is_empty())
}

/// An address a message can go to: one `local@domain`, nothing else.
pub fn check_address(address: &str) -> Result<String, AppError> {
    let address = address.trim();
    let bad = || {
        AppError::invalid(
            "BAD_EMAIL",
            "indirizzo e-mail non valido: scrivilo nella forma nome@dominio.it",
        )
    };
    let (local, domain) = address.split_once('@').ok_or_else(bad)?;
    if address.len() > 254
        || local.is_empty()
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c))
        || domain.contains('@')
    {
        return Err(bad());
    }
    address.parse::<lettre::Address>().map_err(|_| bad())?;
    Ok(address.to_string())
}

/// After a receipt is stored: queues its quietanza for the payer, if they
/// gave an address: the one typed in the portal's cart first, else the
/// payer's (or the debtor's) in the RT. Idempotent by the receipt's id;
/// never fails the receipt (it is stored already): a failure to queue is
/// logged.
pub async fn after_receipt(
    app: &App,
    ente: &str,
    receipt_id: &str,
    notice_number: &str,
    rt_email: Option<&str>,
) {
    if !enabled(app) {
        return;
    }
    let ctx = app.system("mail");
    let cart = crate::portal::cart::payer_email(&ctx, ente, notice_number).await;
    let Some(recipient) = cart
        .into_iter()
        .chain(rt_email.map(str::to_string))
        .find_map(|a| check_address(&a).ok())
    else {
        return;
    };
    let mail = NewMail {
        natural_key: receipt_key(ente, receipt_id),
        kind: RECEIPT.into(),
        ente: ente.into(),
        reference: receipt_id.into(),
        recipient,
    };
    match app.store.enqueue_mail(&mail, app.clock.now()).await {
        Ok(true) => QUEUED.notify_one(),
        Ok(false) => {}
        Err(e) => tracing::error!(
            ente, receipt = receipt_id, error = %e,
            "receipt e-mail not queued: the payer will not get it by e-mail"
        ),
    }
}

/// The Ente's queued messages, newest first (the back office's view).
pub async fn list(ctx: &Ctx, ente: &str, limit: u32) -> Result<Vec<MailRecord>, AppError> {
    ctx.caller.require(
        ente,
        incasso_core::access::Area::Reporting,
        incasso_core::access::Access::Read,
    )?;
    ctx.store()
        .list_mail(ente, limit)
        .await
        .at(Place::new("mail.list", ente, ""))
}

/// What one round of sending did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Why an attempt failed, and whether it may be tried again.
struct Failure {
    text: String,
    permanent: bool,
}

/// Sends the messages due at `now`. A message claimed here is sent by no
/// other worker.
pub async fn send_due(app: &App, now: DateTime<Utc>) -> Result<Round, AppError> {
    let mut round = Round::default();
    let Some(url) = app.settings.smtp_url.clone().filter(|u| !u.is_empty()) else {
        return Ok(round);
    };
    let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(2));
    let due = app
        .store
        .claim_due_mail(now, lease, 20)
        .await
        .at(Place::new("mail.send_due", "", ""))?;
    if due.is_empty() {
        return Ok(round);
    }
    let transport = transport(&url);
    for m in due {
        let outcome = match &transport {
            Ok(t) => send_one(app, t, &m).await,
            Err(f) => Err(Failure {
                text: f.text.clone(),
                permanent: false,
            }),
        };
        let place = Place::new("mail.outcome", &m.ente, &m.natural_key);
        match outcome {
            Ok(()) => {
                app.store.mail_sent(m.id, app.clock.now()).await.at(place)?;
                tracing::info!(ente = %m.ente, key = %m.natural_key, "e-mail sent");
                round.sent += 1;
            }
            Err(f) => {
                let give_up = f.permanent || m.attempts >= MAX_ATTEMPTS;
                let retry_at = (!give_up).then(|| now + retry_delay(m.attempts));
                app.store
                    .mail_failed(m.id, &f.text, retry_at)
                    .await
                    .at(place)?;
                if give_up {
                    tracing::warn!(
                        ente = %m.ente, key = %m.natural_key, attempts = m.attempts,
                        error = %f.text, "e-mail given up"
                    );
                    round.failed += 1;
                } else {
                    tracing::info!(
                        ente = %m.ente, key = %m.natural_key, attempts = m.attempts,
                        error = %f.text, "e-mail not sent: retrying later"
                    );
                    round.retried += 1;
                }
            }
        }
    }
    Ok(round)
}

type Transport = AsyncSmtpTransport<Tokio1Executor>;

fn transport(url: &str) -> Result<Transport, Failure> {
    Transport::from_url(url)
        .map(|b| b.timeout(Some(SMTP_TIMEOUT)).build())
        .map_err(|e| Failure {
            // Never the URL itself: it may hold the password.
            text: format!("server SMTP non configurato correttamente: {e}"),
            permanent: false,
        })
}

async fn send_one(app: &App, transport: &Transport, m: &MailRecord) -> Result<(), Failure> {
    let message = match m.kind.as_str() {
        RECEIPT => receipt_message(app, m).await?,
        NOTICE => notice_message(app, m).await?,
        NOTIFY => notify_message(app, m).await?,
        other => {
            return Err(Failure {
                text: format!("tipo di messaggio sconosciuto: {other}"),
                permanent: true,
            });
        }
    };
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| Failure {
            text: format!("{e}"),
            // 5xx: the server will never take it. Everything else (4xx, a
            // connection refused or cut, a timeout, TLS) may pass later.
            permanent: e.is_permanent(),
        })
}

/// The sender: the configured one, else `noreply@` the public URL's host.
fn sender(app: &App) -> Result<Mailbox, Failure> {
    let configured = app.settings.mail_from.clone().filter(|f| !f.is_empty());
    let from = configured.unwrap_or_else(|| {
        let host = app
            .settings
            .public_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .filter(|h| h.contains('.') && !h.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .unwrap_or("localhost.localdomain")
            .to_string();
        format!("Pagamenti pagoPA <noreply@{host}>")
    });
    from.parse().map_err(|e| Failure {
        text: format!("mittente non valido ({from}): {e}"),
        permanent: true,
    })
}

/// The receipt's message: Italian text and the quietanza attached.
async fn receipt_message(app: &App, m: &MailRecord) -> Result<Message, Failure> {
    let transient = |text: String| Failure {
        text,
        permanent: false,
    };
    let ctx = app.system("mail");
    let copy = app
        .store
        .receipt_copy(&m.ente, &m.reference)
        .await
        .map_err(|e| transient(format!("ricevuta non leggibile: {e}")))?
        .ok_or_else(|| Failure {
            text: "ricevuta non trovata".into(),
            permanent: true,
        })?;
    let receipt = crate::portal::receipts::parse_rt(&copy);
    let pdf = crate::portal::receipts::render(&ctx, &m.ente, &copy, receipt.as_ref())
        .await
        .map_err(|e| transient(format!("ricevuta PDF non prodotta: {}", e.detail)))?;
    let ente_name = match app.store.get_ente(&m.ente).await {
        Ok(e) => e.name,
        Err(_) => m.ente.clone(),
    };
    let to: Mailbox = m.recipient.parse().map_err(|e| Failure {
        text: format!("destinatario non valido: {e}"),
        permanent: true,
    })?;
    let q = crate::portal::receipts::quietanza(&m.ente, &ente_name, None, &copy, receipt.as_ref());
    // The Ente's own text, else incasso's (app::notify::channels).
    let values = incasso_notify::template::Values::new()
        .with("ente", ente_name.clone())
        .with("ente_fiscal_code", m.ente.clone())
        .with("service", "")
        .with(
            "description",
            if q.description.is_empty() {
                "-".to_string()
            } else {
                q.description.clone()
            },
        )
        .with("debtor_name", "")
        .with("amount", incasso_notice::receipt::euro(q.amount))
        .with("notice_number", q.notice_number.clone())
        .with("due_date", "")
        .with("iuv", q.iuv.clone())
        .with(
            "payment_url",
            format!("{}/portale/{}/ricevuta", app.settings.public_url, m.ente),
        )
        .with(
            "paid_at",
            q.paid_at
                .map(incasso_notice::receipt::italian_date_time)
                .unwrap_or_else(|| "-".into()),
        )
        .with("psp", q.psp_name.clone())
        .with("receipt_id", q.receipt_id.clone());
    let (subject, text) = crate::notify::channels::render_email(
        app,
        &m.ente,
        incasso_notify::email::EmailKind::Receipt,
        &values,
    )
    .await
    .map_err(|e| transient(format!("testo non prodotto: {}", e.detail)))?;
    let body = format!(
        "{text}\nQuesto messaggio è stato inviato automaticamente: non rispondere a questo indirizzo.\n"
    );
    let filename = format!("ricevuta-{}.pdf", copy.iuv);
    Message::builder()
        .from(sender(app)?)
        .to(to)
        .subject(subject)
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(Attachment::new(filename).body(
                    pdf,
                    ContentType::parse("application/pdf").expect("a valid content type"),
                )),
        )
        .map_err(|e| Failure {
            text: format!("messaggio non componibile: {e}"),
            permanent: true,
        })
}

/// A stored receipt's quietanza PDF and its file name.
async fn receipt_pdf(
    app: &App,
    ente: &str,
    receipt_id: &str,
) -> Result<(Vec<u8>, String), Failure> {
    let ctx = app.system("mail");
    let copy = app
        .store
        .receipt_copy(ente, receipt_id)
        .await
        .map_err(|e| Failure {
            text: format!("ricevuta non leggibile: {e}"),
            permanent: false,
        })?
        .ok_or_else(|| Failure {
            text: "ricevuta non trovata".into(),
            permanent: true,
        })?;
    let receipt = crate::portal::receipts::parse_rt(&copy);
    let pdf = crate::portal::receipts::render(&ctx, ente, &copy, receipt.as_ref())
        .await
        .map_err(|e| Failure {
            text: format!("ricevuta PDF non prodotta: {}", e.detail),
            permanent: false,
        })?;
    Ok((pdf, format!("ricevuta-{}.pdf", copy.iuv)))
}

/// A payment notice's message: Italian text and the notice attached.
async fn notice_message(app: &App, m: &MailRecord) -> Result<Message, Failure> {
    let ctx = app.system("mail");
    let pdf = crate::notices::notice_pdf(
        &ctx,
        &m.ente,
        &m.reference,
        incasso_notice::Language::Italian,
    )
    .await
    .map_err(|e| Failure {
        // Paid or cancelled meanwhile, or gone: never worth a retry.
        permanent: e.kind != crate::Kind::Internal,
        text: format!("avviso PDF non prodotto: {}", e.detail),
    })?;
    let ente_name = match app.store.get_ente(&m.ente).await {
        Ok(e) => e.name,
        Err(_) => m.ente.clone(),
    };
    let to: Mailbox = m.recipient.parse().map_err(|e| Failure {
        text: format!("destinatario non valido: {e}"),
        permanent: true,
    })?;
    let body = format!(
        "Gentile utente,\n\n\
         in allegato trovi l'avviso di pagamento pagoPA che {ente_name} ha emesso per te allo sportello.\n\n\
         Codice avviso: {nav}\n\n\
         Puoi pagarlo online sul portale dei pagamenti dell'ente:\n\
         {base}/portale/{ente}/\n\
         oppure presso banche, uffici postali, tabaccherie e gli altri prestatori aderenti a pagoPA, \
         con il codice QR o il codice avviso stampati sull'avviso.\n\n\
         Questo messaggio è stato inviato automaticamente: non rispondere a questo indirizzo.\n",
        nav = incasso_notice::in_groups_of_four(&m.reference),
        base = app.settings.public_url,
        ente = m.ente,
    );
    let filename = format!("avviso-{}.pdf", crate::notices::file_safe(&m.reference));
    Message::builder()
        .from(sender(app)?)
        .to(to)
        .subject(format!("Avviso di pagamento pagoPA – {ente_name}"))
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(Attachment::new(filename).body(
                    pdf,
                    ContentType::parse("application/pdf").expect("a valid content type"),
                )),
        )
        .map_err(|e| Failure {
            text: format!("messaggio non componibile: {e}"),
            permanent: true,
        })
}

/// A notification's message: the text rendered from the service's
/// template, and for an invitation or a reminder the notice attached.
async fn notify_message(app: &App, m: &MailRecord) -> Result<Message, Failure> {
    let id: i64 = m.reference.parse().map_err(|_| Failure {
        text: format!("riferimento non valido: {}", m.reference),
        permanent: true,
    })?;
    let n = app
        .store
        .notification(id)
        .await
        .map_err(|e| Failure {
            text: format!("messaggio non leggibile: {e}"),
            permanent: false,
        })?
        .ok_or_else(|| Failure {
            text: "messaggio non trovato".into(),
            permanent: true,
        })?;
    let to: Mailbox = m.recipient.parse().map_err(|e| Failure {
        text: format!("destinatario non valido: {e}"),
        permanent: true,
    })?;
    let body = format!(
        "{}\n\nQuesto messaggio è stato inviato automaticamente: non rispondere a questo indirizzo.\n",
        n.body.clone().unwrap_or_default()
    );
    let builder = Message::builder()
        .from(sender(app)?)
        .to(to)
        .subject(n.subject.clone().unwrap_or_default());
    // A paid message carries the receipt, as the portal's receipt e-mail.
    if n.kind == "PAID"
        && let Some(receipt_id) = app
            .store
            .event_payload(n.event_id)
            .await
            .map_err(|e| Failure {
                text: format!("evento non leggibile: {e}"),
                permanent: false,
            })?
            .and_then(|p| p["receiptId"].as_str().map(str::to_string))
    {
        let (pdf, filename) = receipt_pdf(app, &m.ente, &receipt_id).await?;
        return builder
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(body))
                    .singlepart(Attachment::new(filename).body(
                        pdf,
                        ContentType::parse("application/pdf").expect("a valid content type"),
                    )),
            )
            .map_err(|e| Failure {
                text: format!("messaggio non componibile: {e}"),
                permanent: true,
            });
    }
    let attach = matches!(n.kind.as_str(), "INVITATION" | "REMINDER");
    let message = match n.notice_number.as_deref().filter(|_| attach) {
        Some(nav) => {
            let ctx = app.system("mail");
            let pdf =
                crate::notices::notice_pdf(&ctx, &m.ente, nav, incasso_notice::Language::Italian)
                    .await
                    .map_err(|e| Failure {
                        permanent: e.kind != crate::Kind::Internal,
                        text: format!("avviso PDF non prodotto: {}", e.detail),
                    })?;
            let filename = format!("avviso-{}.pdf", crate::notices::file_safe(nav));
            builder.multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(body))
                    .singlepart(Attachment::new(filename).body(
                        pdf,
                        ContentType::parse("application/pdf").expect("a valid content type"),
                    )),
            )
        }
        None => builder.singlepart(SinglePart::plain(body)),
    };
    message.map_err(|e| Failure {
        text: format!("messaggio non componibile: {e}"),
        permanent: true,
    })
}

/// Sends due messages until the process ends: at once when one is queued
/// here, else every [`POLL_EVERY`] (messages queued by other processes,
/// retries coming due).
pub async fn run(app: App) {
    loop {
        match send_due(&app, app.clock.now()).await {
            Ok(r) if r.sent + r.retried + r.failed > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "e-mail round failed; retrying later"),
        }
        tokio::select! {
            _ = QUEUED.notified() => {}
            _ = tokio::time::sleep(POLL_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS)
            .map(|n| retry_delay(n).num_minutes())
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            check_address(" mario.rossi@example.it ").unwrap(),
            "mario.rossi@example.it"
        );
        for bad in [
            "",
            "mario",
            "mario@",
            "@example.it",
            "mario@example",
            "a b@example.it",
            "mario@example.it, x@y.it",
            "<mario@example.it>",
            "mario@@example.it",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }
}
