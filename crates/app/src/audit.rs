//! The audit log (*giornale degli eventi*): every write by a person or a
//! program, with who, when, what and how it ended. Use cases append to it;
//! nothing changes or removes an event. Writing the log never decides a use
//! case's outcome: a failure to write it is logged, and the answer stands.

use crate::error::{AppError, At, Place};
use crate::paging::{self, Page};
use crate::{App, Ctx};
use incasso_store::AuditEvent;

/// Appends an event.
pub async fn record(
    app: &App,
    actor: &str,
    ente: Option<&str>,
    action: &str,
    object: &str,
    outcome: &str,
) {
    let event = AuditEvent {
        at: app.clock.now(),
        actor: actor.to_string(),
        ente: ente.map(str::to_string),
        action: action.to_string(),
        object: object.to_string(),
        outcome: outcome.to_string(),
        detail: String::new(),
    };
    if let Err(e) = app.store.audit(&event).await {
        tracing::error!(error = %e, action, object, "the audit log could not be written");
    }
}

/// Appends the outcome of a use case by the context's caller: `OK`, or the
/// error's stable code.
pub async fn outcome<T>(
    ctx: &Ctx,
    ente: Option<&str>,
    action: &str,
    object: &str,
    result: &Result<T, AppError>,
) {
    let outcome = match result {
        Ok(_) => "OK",
        // The database is away or its disk full: the event could not be
        // written either, and trying would wait the pool's whole timeout
        // again before the caller is answered (PostgreSQL down: 10 s for a
        // 503 promised within 5). The process log keeps it instead.
        Err(e) if e.kind == crate::Kind::StoreUnavailable => {
            tracing::warn!(
                actor = %ctx.caller.actor(),
                ente,
                action,
                object,
                outcome = e.code,
                "audit event not written: the database is unavailable"
            );
            return;
        }
        Err(e) => e.code,
    };
    record(&ctx.app, &ctx.caller.actor(), ente, action, object, outcome).await;
}

/// Runs a write use case and appends its outcome, refusals included.
pub async fn audited<T>(
    ctx: &Ctx,
    ente: Option<&str>,
    action: &str,
    object: &str,
    work: impl std::future::Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    let result = work.await;
    outcome(ctx, ente, action, object, &result).await;
    result
}

/// A page of the log of `ente` (the intermediary's own events when `None`),
/// newest first, filtered by a text in the actor, action or object. The
/// Ente's administrators and the intermediary read it.
pub async fn search(
    ctx: &Ctx,
    ente: Option<&str>,
    text: Option<&str>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<(i64, AuditEvent)>, AppError> {
    match ente {
        Some(e) => ctx.caller.require(
            e,
            incasso_core::access::Area::Users,
            incasso_core::access::Access::Read,
        )?,
        None => ctx.caller.require_intermediary()?,
    }
    let limit = paging::limit(limit, 100, 1000)?;
    let before = match cursor {
        Some(c) => Some(
            paging::decode(c, 1)?[0]
                .parse::<i64>()
                .map_err(|_| paging::bad_cursor())?,
        ),
        None => None,
    };
    let items = ctx
        .store()
        .audit_events(ente, text, before, limit + 1)
        .await
        .at(Place::new("audit.search", ente.unwrap_or(""), ""))?;
    Ok(paging::page(items, limit, |(id, _)| vec![id.to_string()]))
}
