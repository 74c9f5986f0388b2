//! PosPA: a clerk takes payment of one to five notices on the card
//! terminal of their desk, through pagoPA's POS gateway: positions that
//! exist here first (`CI_PROVIDED`, [`push`]), or positions the gateway
//! creates at the terminal ([`push_new`]: `TO_CREATE`, and
//! `TO_CREATE_PROVIDED_IUV` with an IUV incasso reserves).
//!
//! The path of a payment: [`push`] checks the notices and holds them in a
//! new session (so no second attempt can start on any of them), opens the
//! gateway's session and sends the authorization request; the gateway
//! activates each notice on the Node (incasso answers `paGetPaymentV2` as
//! for any PSP) and wakes the terminal. The terminal's outcome comes back
//! through [`callback`] (the gateway's `PATCH .../auth-requests`), and the
//! money through the receipts (`paSendRTV2`), which [`after_receipt`] links
//! to the session. Only receipts prove a payment: an `AUTHORIZED` outcome
//! waits for them, and a session whose receipts do not come by a deadline
//! is flagged for a person by [`sweep`], its notices still held so that
//! nobody pays them twice.

use crate::audit::audited;
use crate::error::{At, Place};
use crate::{App, AppError, Ctx, Kind};
use chrono::{DateTime, NaiveDate, Utc};
use incasso_core::Cents;
use incasso_core::access::{Access, Area};
use incasso_pagopa::fault::FaultCode;
use incasso_pagopa::pos::{
    AuthOutcome, AuthorizationCallback, CiProvidedDetails, CreditorInstitutionInfo, DebtPosition,
    HttpPosGateway, KoReason, PaymentRequest, PaymentResponse, PosError, PosGateway,
    PosGatewaySettings, PosSessionRequest, PspInfo, SessionOutcome, TerminalStatus,
};
use incasso_store::StoreError;
use incasso_store::pos::{
    self as st, NewPosSession, PosChange, PosOpen, PosSessionRecord, PosTerminalRecord,
};
use std::sync::Arc;

/// Where the POS gateway is and how long incasso waits for what.
#[derive(Clone)]
pub struct PosSettings {
    pub gateway: Arc<dyn PosGateway>,
    /// The PSP of the Ente's terminals (`PspInfo`).
    pub psp: PspInfo,
    /// After the request is accepted: how long to wait for the terminal's
    /// outcome before asking the gateway (a terminal gives at most 60 s,
    /// the gateway 10 s more).
    pub outcome_deadline: chrono::Duration,
    /// After `AUTHORIZED`: how long the receipts may take before a person
    /// is asked to look.
    pub receipt_deadline: chrono::Duration,
    /// After `TIMEOUT`: how long the notices stay held in case the card
    /// was charged after all (a receipt may still come).
    pub timeout_hold: chrono::Duration,
    /// Past this since the session began, a gateway that still says
    /// ONGOING is no longer believed: a person looks.
    pub give_up_after: chrono::Duration,
}

impl std::fmt::Debug for PosSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PosSettings")
            .field("psp", &self.psp)
            .field("outcome_deadline", &self.outcome_deadline)
            .field("receipt_deadline", &self.receipt_deadline)
            .field("timeout_hold", &self.timeout_hold)
            .finish_non_exhaustive()
    }
}

impl PosSettings {
    /// The gateway over HTTP, with the default deadlines.
    pub fn http(settings: PosGatewaySettings) -> Result<PosSettings, PosError> {
        let psp = settings.psp.clone();
        Ok(PosSettings::with_gateway(
            Arc::new(HttpPosGateway::new(settings)?),
            psp,
        ))
    }

    pub fn with_gateway(gateway: Arc<dyn PosGateway>, psp: PspInfo) -> PosSettings {
        PosSettings {
            gateway,
            psp,
            outcome_deadline: chrono::Duration::seconds(90),
            receipt_deadline: chrono::Duration::minutes(10),
            timeout_hold: chrono::Duration::minutes(15),
            give_up_after: chrono::Duration::minutes(30),
        }
    }
}

/// A session as the desk follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PosSessionState {
    /// Being sent to the gateway.
    Opening,
    /// The terminal waits for the card.
    AwaitingOutcome,
    /// The card was authorized; the receipts are on their way.
    Authorized,
    /// Every notice has its receipt.
    Paid,
    Declined,
    Refused,
    /// The citizen cancelled on the terminal.
    Cancelled,
    /// The terminal gave no outcome in time.
    TimedOut,
    /// The gateway did not accept the request.
    Rejected,
    /// Ended without a payment, for another reason.
    Failed,
}

impl PosSessionState {
    pub const ALL: [PosSessionState; 10] = [
        PosSessionState::Opening,
        PosSessionState::AwaitingOutcome,
        PosSessionState::Authorized,
        PosSessionState::Paid,
        PosSessionState::Declined,
        PosSessionState::Refused,
        PosSessionState::Cancelled,
        PosSessionState::TimedOut,
        PosSessionState::Rejected,
        PosSessionState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PosSessionState::Opening => st::OPENING,
            PosSessionState::AwaitingOutcome => st::AWAITING_OUTCOME,
            PosSessionState::Authorized => st::AUTHORIZED,
            PosSessionState::Paid => st::PAID,
            PosSessionState::Declined => st::DECLINED,
            PosSessionState::Refused => st::REFUSED,
            PosSessionState::Cancelled => st::CANCELLED,
            PosSessionState::TimedOut => st::TIMED_OUT,
            PosSessionState::Rejected => st::REJECTED,
            PosSessionState::Failed => st::FAILED,
        }
    }

    pub fn parse(s: &str) -> Option<PosSessionState> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// As the clerk reads it.
    pub fn label(self) -> &'static str {
        match self {
            PosSessionState::Opening => "Invio al terminale in corso",
            PosSessionState::AwaitingOutcome => "In attesa della carta sul terminale",
            PosSessionState::Authorized => "Autorizzato, in attesa della ricevuta",
            PosSessionState::Paid => "Pagato",
            PosSessionState::Declined => "Carta rifiutata",
            PosSessionState::Refused => "Pagamento rifiutato",
            PosSessionState::Cancelled => "Annullato dal cittadino",
            PosSessionState::TimedOut => "Tempo scaduto sul terminale",
            PosSessionState::Rejected => "Non accettato dal circuito pagoPA",
            PosSessionState::Failed => "Non riuscito",
        }
    }

    /// Nothing more will happen to it on its own (the desk stops
    /// refreshing). An authorized session still waits for its receipts.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            PosSessionState::Opening
                | PosSessionState::AwaitingOutcome
                | PosSessionState::Authorized
        )
    }
}

/// The card of an authorized payment, as the desk may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    pub brand: Option<String>,
    pub last_four: Option<String>,
}

/// Something about a session that a person must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosAnomaly {
    pub code: String,
    pub at: Option<DateTime<Utc>>,
}

impl PosAnomaly {
    pub fn label(&self) -> &'static str {
        match self.code.as_str() {
            "RECEIPT_MISSING" => {
                "Autorizzato ma senza ricevuta: verificare con il PSP prima di accettare un nuovo pagamento"
            }
            "RECEIPT_AFTER_TIMEOUT" => {
                "Ricevuta arrivata dopo il tempo scaduto: il pagamento è registrato, verificare con il cittadino"
            }
            "TIMEOUT_NO_RECEIPT" => {
                "Tempo scaduto senza ricevuta: se la carta risulta addebitata, il PSP deve stornare l'addebito"
            }
            "NO_OUTCOME" => {
                "Nessun esito dal circuito POS: verificare con il PSP prima di accettare un nuovo pagamento"
            }
            "AUTHORIZED_AFTER_CLOSE" => {
                "Autorizzazione arrivata dopo la chiusura della sessione: verificare con il PSP"
            }
            "RELEASED_BY_OPERATOR" => "Avvisi liberati da un operatore dopo la verifica",
            _ => "Da verificare",
        }
    }
}

/// A session as the desk shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosSessionView {
    /// incasso's id of the session.
    pub id: String,
    pub terminal_id: String,
    pub desk: String,
    /// Who pushed it, as the audit log names them.
    pub operator: String,
    pub state: PosSessionState,
    /// Notice number and amount, in the order of the notice numbers.
    pub notices: Vec<(String, Cents)>,
    /// The notices whose receipt arrived, with the receipt's id.
    pub receipts: Vec<(String, String)>,
    pub total: Cents,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When authorized: brand and last four digits.
    pub card: Option<CardInfo>,
    /// When it failed: why, in Italian.
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub anomaly: Option<PosAnomaly>,
    /// The gateway's id of the session, once it has one.
    pub gateway_session: Option<String>,
}

fn view(s: PosSessionRecord) -> PosSessionView {
    let card = (s.card_brand.is_some() || s.card_last4.is_some()).then(|| CardInfo {
        brand: s.card_brand.clone(),
        last_four: s.card_last4.clone(),
    });
    PosSessionView {
        state: PosSessionState::parse(&s.state).unwrap_or(PosSessionState::Failed),
        notices: s
            .notices
            .iter()
            .map(|n| (n.notice_number.clone(), Cents(n.amount)))
            .collect(),
        receipts: s
            .notices
            .iter()
            .filter_map(|n| Some((n.notice_number.clone(), n.receipt_id.clone()?)))
            .collect(),
        total: Cents(s.total),
        card,
        error: s.error,
        error_code: s.error_code,
        anomaly: s.anomaly.map(|code| PosAnomaly {
            code,
            at: s.anomaly_at,
        }),
        id: s.id,
        terminal_id: s.terminal_id,
        desk: s.desk,
        operator: s.operator,
        created_at: s.created_at,
        updated_at: s.updated_at,
        gateway_session: s.gateway_session,
    }
}

/// A terminal of the Ente.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub terminal_id: String,
    pub description: String,
    /// The desk it sits on.
    pub desk: Option<String>,
    /// Usable (not disabled by the Ente).
    pub active: bool,
}

fn terminal(t: PosTerminalRecord) -> Terminal {
    Terminal {
        active: t.status == "ACTIVE",
        terminal_id: t.terminal_id,
        description: t.description,
        desk: t.desk,
    }
}

/// The most notices one session may carry (the gateway's `maxItems`).
pub const MAX_NOTICES: usize = 5;

/// The Ente's terminals.
pub async fn terminals(ctx: &Ctx, ente: &str) -> Result<Vec<Terminal>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let list = ctx
        .store()
        .pos_terminals(ente)
        .await
        .at(Place::new("pos.terminals", ente, ""))?;
    Ok(list.into_iter().map(terminal).collect())
}

/// A `TerminalId`: exactly 8 characters, letters and digits (what the
/// gateway's terminals are called).
fn check_terminal_id(id: &str) -> Result<(), AppError> {
    if id.len() == 8 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(AppError::invalid(
            "POS_TERMINAL_ID_INVALID",
            format!("identificativo del terminale '{id}' non valido: 8 caratteri, lettere e cifre"),
        ))
    }
}

/// Registers a terminal of the Ente (or changes its description and desk):
/// the Ente's administrator's work. A terminal another Ente registered is
/// refused.
pub async fn register_terminal(
    ctx: &Ctx,
    ente: &str,
    terminal_id: &str,
    description: &str,
    desk: Option<&str>,
) -> Result<Terminal, AppError> {
    audited(
        ctx,
        Some(ente),
        "pos.terminal.register",
        terminal_id,
        async {
            ctx.caller.require_ente(ente)?;
            check_terminal_id(terminal_id)?;
            let description = description.trim();
            if description.is_empty() || description.chars().count() > 50 {
                return Err(AppError::invalid(
                    "POS_TERMINAL_DESCRIPTION",
                    "la descrizione del terminale è obbligatoria, al più 50 caratteri",
                ));
            }
            let t = ctx
                .store()
                .pos_register_terminal(ente, terminal_id, description, desk, ctx.now())
                .await
                .map_err(|e| terminal_error(e, ente, terminal_id, desk))?;
            Ok(terminal(t))
        },
    )
    .await
}

/// Puts a terminal on a desk (`None`: on none).
pub async fn bind_terminal(
    ctx: &Ctx,
    ente: &str,
    terminal_id: &str,
    desk: Option<&str>,
) -> Result<(), AppError> {
    audited(ctx, Some(ente), "pos.terminal.bind", terminal_id, async {
        ctx.caller.require_ente(ente)?;
        ctx.store()
            .pos_bind_terminal(ente, terminal_id, desk, ctx.now())
            .await
            .map_err(|e| terminal_error(e, ente, terminal_id, desk))
    })
    .await
}

/// Registers a new terminal of the Ente: unlike [`register_terminal`]
/// (which also updates), an id the Ente already has is refused, so that a
/// person typing a new terminal never rewrites another one by mistake.
pub async fn add_terminal(
    ctx: &Ctx,
    ente: &str,
    terminal_id: &str,
    description: &str,
    desk: Option<&str>,
) -> Result<Terminal, AppError> {
    ctx.caller.require_ente(ente)?;
    let existing = ctx
        .store()
        .pos_terminal(ente, terminal_id)
        .await
        .at(Place::new("pos.terminal.add", ente, terminal_id))?;
    if existing.is_some() {
        return Err(AppError::conflict(
            "POS_TERMINAL_EXISTS",
            format!("il terminale {terminal_id} è già registrato presso questo ente"),
        ));
    }
    register_terminal(ctx, ente, terminal_id, description, desk).await
}

/// Turns a terminal off (nothing more is sent to it) or back on. The
/// sessions it has keep going: only new pushes are refused.
pub async fn set_terminal_active(
    ctx: &Ctx,
    ente: &str,
    terminal_id: &str,
    active: bool,
) -> Result<(), AppError> {
    let action = if active {
        "pos.terminal.enable"
    } else {
        "pos.terminal.disable"
    };
    audited(ctx, Some(ente), action, terminal_id, async {
        ctx.caller.require_ente(ente)?;
        let status = if active { "ACTIVE" } else { "DISABLED" };
        ctx.store()
            .pos_set_terminal_status(ente, terminal_id, status, ctx.now())
            .await
            .map_err(|e| terminal_error(e, ente, terminal_id, None))
    })
    .await
}

/// The anomalies a person clears with [`release`].
pub const RELEASABLE: [&str; 2] = ["RECEIPT_MISSING", "NO_OUTCOME"];

/// The desk's sessions flagged for a person that still hold their
/// notices (whatever day they began), oldest first.
pub async fn flagged_of_desk(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
) -> Result<Vec<PosSessionView>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let list = ctx
        .store()
        .pos_flagged_sessions(ente, desk, &RELEASABLE)
        .await
        .at(Place::new("pos.flagged_of_desk", ente, desk))?;
    Ok(list.into_iter().map(view).collect())
}

fn terminal_error(e: StoreError, ente: &str, terminal_id: &str, desk: Option<&str>) -> AppError {
    match e {
        StoreError::Conflict(detail) => AppError::conflict("POS_TERMINAL_OF_OTHER_ENTE", detail),
        StoreError::NotFound("sportello") => AppError::new(
            Kind::NotFound,
            "POS_DESK_UNKNOWN",
            format!("sportello {} non trovato", desk.unwrap_or_default()),
        ),
        StoreError::NotFound(_) => AppError::new(
            Kind::NotFound,
            "POS_TERMINAL_UNKNOWN",
            format!("terminale {terminal_id} non trovato"),
        ),
        other => crate::error::from_store(other, &Place::new("pos.terminal", ente, terminal_id)),
    }
}

/// Sends `notices` (1 to 5 notice numbers) to the terminal of `desk`.
pub async fn push(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    notices: &[impl AsRef<str>],
) -> Result<PosSessionView, AppError> {
    let items: Vec<(String, Option<Cents>)> = notices
        .iter()
        .map(|n| (n.as_ref().trim().to_string(), None))
        .collect();
    push_amounts(ctx, ente, desk, &items).await
}

/// [`push`], each notice with the amount the clerk expects (if given): a
/// notice due for another amount is refused, so the citizen is never
/// charged what the clerk did not say.
pub async fn push_amounts(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    items: &[(String, Option<Cents>)],
) -> Result<PosSessionView, AppError> {
    audited(ctx, Some(ente), "pos.push", desk, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        let settings = ctx.settings().pos.clone().ok_or_else(|| {
            AppError::new(
                Kind::Unavailable,
                "POS_NOT_CONFIGURED",
                "il pagamento con POS fisico non è configurato su questa installazione",
            )
        })?;
        let notices = check_notices(ctx, ente, items).await?;
        let positions = notices
            .iter()
            .map(|(nav, _, _)| {
                DebtPosition::CiProvided(CiProvidedDetails {
                    notice_number: nav.clone(),
                })
            })
            .collect();
        open_and_send(ctx, ente, desk, &settings, notices, positions, None).await
    })
    .await
}

/// Holds the notices in a new session of the desk's terminal and sends
/// the positions to the gateway (one per notice, in the same order).
async fn open_and_send(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    settings: &PosSettings,
    notices: Vec<(String, String, i64)>,
    positions: Vec<DebtPosition>,
    session_id: Option<String>,
) -> Result<PosSessionView, AppError> {
    let at = Place::new("pos.push", ente, desk);
    let (_, office) = ctx
        .store()
        .pos_desk(ente, desk)
        .await
        .at(at)?
        .ok_or_else(|| {
            AppError::new(
                Kind::NotFound,
                "POS_DESK_UNKNOWN",
                format!("sportello {desk} non trovato"),
            )
        })?;
    let terminal = ctx
        .store()
        .pos_terminal_of_desk(ente, desk)
        .await
        .at(at)?
        .ok_or_else(|| {
            AppError::new(
                Kind::Unprocessable,
                "POS_NO_TERMINAL",
                format!("allo sportello {desk} non è associato alcun terminale POS"),
            )
        })?;
    if terminal.status != "ACTIVE" {
        return Err(AppError::new(
            Kind::Unprocessable,
            "POS_TERMINAL_DISABLED",
            format!("il terminale {} è disattivato", terminal.terminal_id),
        ));
    }
    let now = ctx.now();
    let session = NewPosSession {
        id: session_id.unwrap_or_else(incasso_pagopa::pos::new_uuid),
        ente: ente.to_string(),
        terminal_id: terminal.terminal_id.clone(),
        desk: desk.to_string(),
        operator: ctx.caller.actor(),
        correlation_id: incasso_pagopa::pos::new_uuid(),
        notices,
    };
    match ctx.store().pos_open_session(&session, now).await.at(at)? {
        PosOpen::Opened => {}
        PosOpen::NoticeBusy { notice, .. } => {
            return Err(AppError::conflict(
                "POS_NOTICE_BUSY",
                format!(
                    "l'avviso {notice} è già in pagamento su un terminale o attende la sua ricevuta: non si può avviare un secondo pagamento"
                ),
            ));
        }
        PosOpen::TerminalBusy { .. } => {
            return Err(AppError::conflict(
                "POS_TERMINAL_BUSY",
                format!(
                    "il terminale {} sta già attendendo un pagamento: attenderne l'esito",
                    terminal.terminal_id
                ),
            ));
        }
    }
    // A push that dies from here on is found by the sweep.
    ctx.store()
        .pos_change(
            &session.id,
            &[st::OPENING],
            &PosChange {
                deadline_at: Some(Some(now + settings.outcome_deadline)),
                ..Default::default()
            },
            now,
        )
        .await
        .at(at)?;
    let request = PosSessionRequest {
        psp: settings.psp.clone(),
        creditor_institution: CreditorInstitutionInfo {
            fiscal_code: ente.to_string(),
            logical_office: office.map(|o| o.chars().take(20).collect()),
            workstation: Some(desk.chars().take(20).collect()),
        },
    };
    send(ctx, settings, &session, &request, positions).await?;
    session_view(ctx, ente, &session.id).await
}

/// Each notice checked: well formed, once, the Ente's, in the caller's
/// offices, payable now and for the amount the clerk said. Nothing is
/// written before all of them pass.
async fn check_notices(
    ctx: &Ctx,
    ente: &str,
    items: &[(String, Option<Cents>)],
) -> Result<Vec<(String, String, i64)>, AppError> {
    if items.is_empty() {
        return Err(AppError::invalid(
            "POS_NO_NOTICES",
            "indicare almeno un avviso da pagare sul terminale",
        ));
    }
    if items.len() > MAX_NOTICES {
        return Err(AppError::invalid(
            "POS_TOO_MANY_NOTICES",
            format!(
                "al terminale si inviano al più {MAX_NOTICES} avvisi per volta (ne sono stati indicati {})",
                items.len()
            ),
        ));
    }
    let mut out: Vec<(String, String, i64)> = Vec::with_capacity(items.len());
    let now = ctx.now();
    for (nav, expected) in items {
        if nav.len() != 18 || !nav.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::invalid(
                "POS_NOTICE_INVALID",
                format!("'{nav}' non è un numero avviso: 18 cifre"),
            ));
        }
        if out.iter().any(|(n, _, _)| n == nav) {
            return Err(AppError::invalid(
                "POS_DUPLICATE_NOTICE",
                format!("l'avviso {nav} è indicato due volte"),
            ));
        }
        let unknown = || {
            AppError::new(
                Kind::NotFound,
                "POS_NOTICE_UNKNOWN",
                format!("avviso {nav} non trovato presso l'ente"),
            )
        };
        let (stored, index) = match ctx.store().find_by_notice_number(ente, nav).await {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => return Err(unknown()),
            Err(e) => {
                return Err(crate::error::from_store(
                    e,
                    &Place::new("pos.push", ente, nav),
                ));
            }
        };
        let stored = crate::positions::in_scope(ctx, stored).map_err(|_| unknown())?;
        if let Err(fault) = crate::node::payable_fault(&stored.position, index, now, ente, nav) {
            let (kind, code, why) = match fault.code {
                FaultCode::PaymentDuplicate => (Kind::Conflict, "POS_NOTICE_PAID", "è già pagato"),
                FaultCode::PaymentExpired => {
                    (Kind::Unprocessable, "POS_NOTICE_EXPIRED", "è scaduto")
                }
                FaultCode::PaymentCancelled => {
                    (Kind::Unprocessable, "POS_NOTICE_CANCELLED", "è annullato")
                }
                _ => (
                    Kind::Unprocessable,
                    "POS_NOTICE_NOT_PAYABLE",
                    "non è ancora pagabile (posizione non pubblicata o non ancora valida)",
                ),
            };
            return Err(AppError::new(kind, code, format!("l'avviso {nav} {why}")));
        }
        let amount = stored.position.options[index].amount;
        if let Some(expected) = expected
            && *expected != amount
        {
            return Err(AppError::invalid(
                "POS_AMOUNT_MISMATCH",
                format!(
                    "l'importo indicato per l'avviso {nav} ({} €) è diverso da quello dovuto ({} €)",
                    expected.to_italian(),
                    amount.to_italian()
                ),
            ));
        }
        if amount.0 < 1 {
            return Err(AppError::invalid(
                "POS_AMOUNT_INVALID",
                format!("l'avviso {nav} non ha un importo da pagare"),
            ));
        }
        out.push((nav.clone(), stored.position.iupd.clone(), amount.0));
    }
    Ok(out)
}

/// The gateway's part of a push: init, then the authorization request.
/// What it answers decides the session; a failure without an answer is
/// never sent again blindly (the card might be charged twice): the
/// session's status is asked instead, and the sweep asks again later.
async fn send(
    ctx: &Ctx,
    settings: &PosSettings,
    session: &NewPosSession,
    request: &PosSessionRequest,
    positions: Vec<DebtPosition>,
) -> Result<(), AppError> {
    let gw = &settings.gateway;
    let corr = &session.correlation_id;
    let at = Place::new("pos.push", &session.ente, &session.id);
    let init = match gw.init_session(corr, request, true).await {
        Ok(init) => init,
        Err(e) => {
            tracing::warn!(session = %session.id, error = %e, "POS gateway: init failed");
            let text = format!("il circuito POS di pagoPA non ha aperto la sessione: {e}");
            return Err(reject(
                ctx,
                &session.id,
                at,
                Kind::Unavailable,
                "POS_GATEWAY_UNAVAILABLE",
                text,
            )
            .await);
        }
    };
    ctx.store()
        .pos_change(
            &session.id,
            &[st::OPENING],
            &PosChange {
                gateway_session: Some(init.session_id.clone()),
                ..Default::default()
            },
            ctx.now(),
        )
        .await
        .at(at)?;
    if let Some(t) = init
        .terminals
        .iter()
        .find(|t| t.id == session.terminal_id)
        .filter(|t| t.status != TerminalStatus::Available)
    {
        let why = match t.status {
            TerminalStatus::Maintenance => "in manutenzione",
            _ => "non disponibile",
        };
        let text = format!("il terminale {} è {why}", t.id);
        return Err(reject(
            ctx,
            &session.id,
            at,
            Kind::Unprocessable,
            "POS_TERMINAL_UNAVAILABLE",
            text,
        )
        .await);
    }
    let payment = PaymentRequest {
        terminal_id: session.terminal_id.clone(),
        debt_positions: positions,
    };
    let answer = gw.create_payment(corr, &init.session_id, &payment).await;
    let waiting = PosChange {
        state: Some(st::AWAITING_OUTCOME),
        deadline_at: Some(Some(ctx.now() + settings.outcome_deadline)),
        ..Default::default()
    };
    match answer {
        Ok(PaymentResponse::Ok { amount, details }) => {
            let total: i64 = session.notices.iter().map(|(_, _, a)| a).sum();
            if amount != total {
                tracing::warn!(session = %session.id, amount, total, "POS gateway accepted another total");
            }
            name_created(ctx, session, &details).await?;
            // A callback may already have moved it on: then nothing here.
            ctx.store()
                .pos_change(&session.id, &[st::OPENING], &waiting, ctx.now())
                .await
                .at(at)?;
            Ok(())
        }
        Ok(PaymentResponse::Ko { details, .. }) => {
            let text = ko_text(&details);
            Err(reject(
                ctx,
                &session.id,
                at,
                Kind::Unprocessable,
                "POS_GATEWAY_KO",
                text,
            )
            .await)
        }
        Err(e @ PosError::Rejected { .. }) if !e.is_transient() => {
            let text = format!("il circuito POS di pagoPA ha rifiutato la richiesta: {e}");
            Err(reject(
                ctx,
                &session.id,
                at,
                Kind::Unprocessable,
                "POS_GATEWAY_REFUSED",
                text,
            )
            .await)
        }
        Err(e) => {
            tracing::warn!(session = %session.id, error = %e, "POS gateway: no answer to the request; asking its status");
            match gw.session_status(corr, &init.session_id).await {
                Ok(s) if s.outcome == SessionOutcome::Error => {
                    let text =
                        format!("il circuito POS di pagoPA non ha avviato il pagamento: {e}");
                    Err(reject(
                        ctx,
                        &session.id,
                        at,
                        Kind::Unprocessable,
                        "POS_GATEWAY_KO",
                        text,
                    )
                    .await)
                }
                // Ongoing, done, or unknown: wait for the outcome; the
                // sweep asks again at the deadline.
                _ => {
                    ctx.store()
                        .pos_change(&session.id, &[st::OPENING], &waiting, ctx.now())
                        .await
                        .at(at)?;
                    Ok(())
                }
            }
        }
    }
}

/// A push the gateway refused, or could not be asked: the session is
/// recorded as rejected (its notices let go) with the refusal the clerk
/// is answered, so the desk's page and the answer say the same.
async fn reject(
    ctx: &Ctx,
    session_id: &str,
    at: Place<'_>,
    kind: Kind,
    code: &'static str,
    text: String,
) -> AppError {
    let change = PosChange {
        state: Some(st::REJECTED),
        error: Some((code.to_string(), text.clone())),
        deadline_at: Some(None),
        release: true,
        ..Default::default()
    };
    match ctx
        .store()
        .pos_change(session_id, &[st::OPENING], &change, ctx.now())
        .await
        .at(at)
    {
        Ok(_) => AppError::new(kind, code, text),
        Err(e) => e,
    }
}

/// The notice numbers the gateway gave the positions it created: they
/// replace the session's placeholders (by the request's order), and
/// receipts already stored for them are linked.
async fn name_created(
    ctx: &Ctx,
    session: &NewPosSession,
    details: &[incasso_pagopa::pos::PaymentDetail],
) -> Result<(), AppError> {
    let at = Place::new("pos.push", &session.ente, &session.id);
    let mut names = Vec::new();
    for (i, (placeholder, _, _)) in session.notices.iter().enumerate() {
        if !placeholder.starts_with(CREATED) {
            continue;
        }
        match details.get(i) {
            Some(d) => names.push((placeholder.clone(), d.notice_number.clone())),
            None => {
                tracing::warn!(session = %session.id, "the gateway did not name a created position")
            }
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    ctx.store()
        .pos_name_notices(&session.id, &names)
        .await
        .at(at)?;
    for (_, nav) in &names {
        if let Some((receipt, paid_at)) = ctx
            .store()
            .pos_stored_receipt(&session.ente, nav, ctx.now() - chrono::Duration::minutes(5))
            .await
            .at(at)?
        {
            after_receipt(&ctx.app, &session.ente, nav, &receipt, paid_at).await;
        }
    }
    Ok(())
}

/// What a placeholder of a position the gateway creates starts with,
/// until the gateway names its notice.
const CREATED: &str = "NEW-";

/// A position to be created at the terminal (`TO_CREATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPosition {
    /// What is being paid (1 to 140 characters).
    pub description: String,
    /// `F` (a person) or `G` (a legal entity).
    pub debtor_kind: String,
    pub debtor_fiscal_code: String,
    pub debtor_name: String,
    /// 1 to 5 transfers.
    pub transfers: Vec<NewTransfer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub amount: Cents,
    /// 1 to 90 characters: the gateway writes it into the remittance
    /// information (`/RFB/{iuv}/CNR/{debtor}/TXT/{this}`).
    pub description: String,
    pub iban: String,
    /// The taxonomy's code, e.g. `9/0101101IM/`.
    pub category: String,
}

/// Sends positions the gateway is to create (pagoPA creates them in GPD,
/// here incasso's GPD-compatible API) to the desk's terminal: with a new
/// IUV of the gateway's (`TO_CREATE`), or, with `provide_iuv`, with an IUV
/// incasso reserves from the Ente's sequence (`TO_CREATE_PROVIDED_IUV`),
/// whose notice is held at once. incasso does not create them itself:
/// the gateway's creation would conflict.
pub async fn push_new(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    new: &[NewPosition],
    provide_iuv: bool,
) -> Result<PosSessionView, AppError> {
    push_new_as(ctx, ente, desk, new, provide_iuv, None).await
}

/// [`push_new`] as session `session_id` (else a new id): a caller that
/// names its session from a one-time token asks once, however many times
/// it is pressed (a second session of the same id is refused).
pub(crate) async fn push_new_as(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    new: &[NewPosition],
    provide_iuv: bool,
    session_id: Option<String>,
) -> Result<PosSessionView, AppError> {
    audited(ctx, Some(ente), "pos.push_new", desk, async {
        ctx.caller.require(ente, Area::Positions, Access::Write)?;
        let settings = ctx.settings().pos.clone().ok_or_else(|| {
            AppError::new(
                Kind::Unavailable,
                "POS_NOT_CONFIGURED",
                "il pagamento con POS fisico non è configurato su questa installazione",
            )
        })?;
        if new.is_empty() {
            return Err(AppError::invalid(
                "POS_NO_NOTICES",
                "indicare almeno una posizione da pagare sul terminale",
            ));
        }
        if new.len() > MAX_NOTICES {
            return Err(AppError::invalid(
                "POS_TOO_MANY_NOTICES",
                format!(
                    "al terminale si inviano al più {MAX_NOTICES} posizioni per volta (ne sono state indicate {})",
                    new.len()
                ),
            ));
        }
        for (i, p) in new.iter().enumerate() {
            check_new(i, p)?;
        }
        let at = Place::new("pos.push_new", ente, desk);
        let segregation = if provide_iuv {
            let stations = ctx.app.stations.get(ctx.store(), ente).await.at(at)?;
            Some(
                stations
                    .first()
                    .map(|s| s.segregation_code)
                    .ok_or_else(|| {
                        AppError::new(
                            Kind::Unprocessable,
                            "POS_NO_STATION",
                            "l'ente non ha stazioni: nessun IUV da assegnare",
                        )
                    })?,
            )
        } else {
            None
        };
        let mut notices = Vec::new();
        let mut positions = Vec::new();
        for p in new {
            let amount: i64 = p.transfers.iter().map(|t| t.amount.0).sum();
            let (nav, iuv) = match segregation {
                Some(seg) => {
                    let nav = ctx
                        .store()
                        .allocate_notice_numbers(ente, seg, 1)
                        .await
                        .at(at)?
                        .remove(0);
                    (nav.as_str().to_string(), Some(nav.iuv().to_string()))
                }
                None => (
                    format!("{CREATED}{}", incasso_pagopa::pos::new_uuid()),
                    None,
                ),
            };
            notices.push((nav, "(creata dal circuito POS)".to_string(), amount));
            let details = incasso_pagopa::pos::ToCreateDetails {
                iuv: iuv.clone(),
                transfer_list: p
                    .transfers
                    .iter()
                    .map(|t| incasso_pagopa::pos::TransferToCreate {
                        amount: t.amount.0,
                        transfer_description: t.description.trim().to_string(),
                        iban: t.iban.trim().to_uppercase(),
                        category: t.category.trim().to_string(),
                    })
                    .collect(),
                debtor: incasso_pagopa::pos::PosDebtor {
                    kind: p.debtor_kind.clone(),
                    fiscal_code: p.debtor_fiscal_code.trim().to_uppercase(),
                    full_name: p.debtor_name.trim().to_string(),
                },
                description: p.description.trim().to_string(),
            };
            positions.push(if iuv.is_some() {
                DebtPosition::ToCreateProvidedIuv(details)
            } else {
                DebtPosition::ToCreate(details)
            });
        }
        open_and_send(ctx, ente, desk, &settings, notices, positions, session_id).await
    })
    .await
}

/// A position to create, by the CI spec's limits, each broken rule named.
fn check_new(i: usize, p: &NewPosition) -> Result<(), AppError> {
    let bad = |field: &str, why: &str| {
        Err(AppError::invalid(
            "POS_NEW_POSITION_INVALID",
            format!("posizione {}: {field} {why}", i + 1),
        ))
    };
    let len = |s: &str| s.trim().chars().count();
    if len(&p.description) == 0 || len(&p.description) > 140 {
        return bad("descrizione", "obbligatoria, al più 140 caratteri");
    }
    if !matches!(p.debtor_kind.as_str(), "F" | "G") {
        return bad(
            "tipo di debitore",
            "F (persona fisica) o G (persona giuridica)",
        );
    }
    let cf = p.debtor_fiscal_code.trim();
    if !(11..=16).contains(&cf.len()) || !cf.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return bad("codice fiscale del debitore", "di 11 o 16 caratteri");
    }
    if len(&p.debtor_name) > 140 {
        return bad("nome del debitore", "al più 140 caratteri");
    }
    if p.transfers.is_empty() || p.transfers.len() > 5 {
        return bad("versamenti", "da 1 a 5");
    }
    for t in &p.transfers {
        if t.amount.0 < 1 {
            return bad("importo", "di almeno un centesimo");
        }
        if len(&t.description) == 0 || len(&t.description) > 90 {
            return bad(
                "causale del versamento",
                "obbligatoria, al più 90 caratteri",
            );
        }
        if incasso_core::codes::check_iban(t.iban.trim()).is_err() {
            return bad("IBAN", "non valido");
        }
        let c = t.category.trim();
        let taxonomy = c.len() == 12
            && c.starts_with(['6', '7', '8', '9'])
            && c.as_bytes()[1] == b'/'
            && c[2..9].bytes().all(|b| b.is_ascii_digit())
            && ["IM/", "TS/", "SP/", "SA/", "AP/"].contains(&&c[9..]);
        if !taxonomy {
            return bad("tassonomia", "nella forma 9/0101101IM/");
        }
    }
    Ok(())
}

/// A refused request, said per notice.
fn ko_text(details: &[incasso_pagopa::pos::KoDetail]) -> String {
    if details.is_empty() {
        return "il circuito POS di pagoPA non ha avviato il pagamento".into();
    }
    let parts: Vec<String> = details
        .iter()
        .map(|d| {
            let why = match d.reason {
                KoReason::CreationError => "posizione non creata",
                KoReason::ActivationError => {
                    "avviso non attivato dal nodo (già pagato, scaduto o in pagamento altrove)"
                }
                KoReason::AuthError => "terminale non raggiungibile o occupato",
            };
            match &d.notice_number {
                Some(n) => format!("avviso {n}: {why}"),
                None => why.to_string(),
            }
        })
        .collect();
    format!("pagamento non avviato: {}", parts.join("; "))
}

async fn session_view(ctx: &Ctx, ente: &str, id: &str) -> Result<PosSessionView, AppError> {
    ctx.store()
        .pos_session(ente, id)
        .await
        .at(Place::new("pos.session", ente, id))?
        .map(view)
        .ok_or_else(|| {
            AppError::new(
                Kind::NotFound,
                "POS_SESSION_UNKNOWN",
                format!("sessione POS {id} non trovata"),
            )
        })
}

/// One session of the Ente.
pub async fn session(ctx: &Ctx, ente: &str, session_id: &str) -> Result<PosSessionView, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    session_view(ctx, ente, session_id).await
}

/// The sessions of a desk on a day (Italian time), newest first.
pub async fn sessions_of_desk(
    ctx: &Ctx,
    ente: &str,
    desk: &str,
    day: NaiveDate,
) -> Result<Vec<PosSessionView>, AppError> {
    ctx.caller.require(ente, Area::Positions, Access::Read)?;
    let start =
        |d: NaiveDate| incasso_core::time::from_rome(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    let next = day.succ_opt().unwrap_or(day);
    let list = ctx
        .store()
        .pos_sessions_of_desk(ente, desk, start(day), start(next))
        .await
        .at(Place::new("pos.sessions_of_desk", ente, desk))?;
    Ok(list.into_iter().map(view).collect())
}

/// A person who checked with the PSP lets go of the notices of a session
/// flagged for them (an authorization whose receipt never came, a session
/// without an outcome), so that they can be paid again. The Ente's
/// administrator's decision.
pub async fn release(ctx: &Ctx, ente: &str, session_id: &str) -> Result<PosSessionView, AppError> {
    audited(ctx, Some(ente), "pos.release", session_id, async {
        ctx.caller.require_ente(ente)?;
        let s = session_view(ctx, ente, session_id).await?;
        let flagged = s
            .anomaly
            .as_ref()
            .is_some_and(|a| a.code == "RECEIPT_MISSING" || a.code == "NO_OUTCOME");
        if !flagged {
            return Err(AppError::conflict(
                "POS_NOT_RELEASABLE",
                "si liberano solo le sessioni segnalate senza ricevuta o senza esito",
            ));
        }
        ctx.store()
            .pos_change(
                session_id,
                &[st::AUTHORIZED, st::AWAITING_OUTCOME, st::OPENING],
                &PosChange {
                    state: Some(st::FAILED),
                    anomaly: Some("RELEASED_BY_OPERATOR".into()),
                    deadline_at: Some(None),
                    release: true,
                    ..Default::default()
                },
                ctx.now(),
            )
            .await
            .at(Place::new("pos.release", ente, session_id))?;
        session_view(ctx, ente, session_id).await
    })
    .await
}

/// The gateway's outcome of a session (`ciNotifyAuthorizationOutcome`).
/// The same outcome again changes nothing; another outcome for a session
/// that has one is refused and the first kept.
pub async fn callback(
    app: &App,
    gateway_session: &str,
    correlation_id: &str,
    cb: &AuthorizationCallback,
) -> Result<(), AppError> {
    if let Some(body) = &cb.session_id
        && body != gateway_session
    {
        return Err(AppError::invalid(
            "POS_SESSION_MISMATCH",
            "sessionId del corpo diverso da quello del percorso",
        ));
    }
    let unknown = || {
        AppError::new(
            Kind::NotFound,
            "POS_SESSION_UNKNOWN",
            format!("sessione {gateway_session} sconosciuta"),
        )
    };
    let now = app.clock.now();
    // A receipt or the sweep may move the session between the read and
    // the write: read again and decide again (a few times at most).
    for _ in 0..4 {
        let s = app
            .store
            .pos_session_by_gateway(gateway_session)
            .await
            .at(Place::new("pos.callback", "", gateway_session))?
            .ok_or_else(unknown)?;
        let at = Place::new("pos.callback", &s.ente, &s.id);
        if s.correlation_id != correlation_id {
            tracing::warn!(session = %s.id, "POS callback with another x-correlation-id");
        }
        if s.terminal_id != cb.terminal_id {
            tracing::warn!(session = %s.id, terminal = %cb.terminal_id, "POS callback names another terminal");
        }
        if let Some(first) = &s.outcome {
            if first == cb.outcome.as_str() {
                return Ok(());
            }
            tracing::warn!(session = %s.id, first = %first, second = cb.outcome.as_str(), "conflicting POS outcome refused");
            return Err(AppError::invalid(
                "POS_OUTCOME_CONFLICT",
                format!(
                    "esito {} in contrasto con l'esito {first} già ricevuto per la sessione",
                    cb.outcome.as_str()
                ),
            ));
        }
        let settings = app.settings.pos.clone();
        let receipt_deadline = settings
            .as_ref()
            .map(|p| p.receipt_deadline)
            .unwrap_or(chrono::Duration::minutes(10));
        let timeout_hold = settings
            .as_ref()
            .map(|p| p.timeout_hold)
            .unwrap_or(chrono::Duration::minutes(15));
        let mut change = PosChange {
            outcome: Some(cb.outcome.as_str().to_string()),
            outcome_at: Some(now),
            ..Default::default()
        };
        let all_paid = !s.notices.is_empty() && s.notices.iter().all(|n| n.receipt_id.is_some());
        let from: &[&str] = match (cb.outcome, s.state.as_str()) {
            (AuthOutcome::Authorized, st::OPENING | st::AWAITING_OUTCOME) => {
                let card = cb.card().unwrap_or_default();
                change.card_brand = card.brand.map(|b| b.chars().take(20).collect());
                change.card_last4 = card.last_four_digits.map(|b| b.chars().take(4).collect());
                change.card_bin = card.bin.map(|b| b.chars().take(8).collect());
                change.auth_code = card.payment_auth_code.map(|b| b.chars().take(40).collect());
                change.rrn = card.rrn.map(|b| b.chars().take(40).collect());
                if all_paid {
                    change.state = Some(st::PAID);
                    change.deadline_at = Some(None);
                    change.release = true;
                } else {
                    change.state = Some(st::AUTHORIZED);
                    change.deadline_at = Some(Some(now + receipt_deadline));
                }
                &[st::OPENING, st::AWAITING_OUTCOME]
            }
            (AuthOutcome::Authorized, st::PAID) => {
                let card = cb.card().unwrap_or_default();
                change.card_brand = card.brand;
                change.card_last4 = card.last_four_digits.map(|b| b.chars().take(4).collect());
                &[st::PAID]
            }
            (AuthOutcome::Authorized, _) => {
                // The sweep closed it without an outcome: a person checks.
                change.anomaly = Some("AUTHORIZED_AFTER_CLOSE".into());
                change.card_last4 = cb
                    .card()
                    .and_then(|c| c.last_four_digits)
                    .map(|b| b.chars().take(4).collect());
                &[st::REJECTED, st::FAILED, st::TIMED_OUT]
            }
            (AuthOutcome::Timeout, st::OPENING | st::AWAITING_OUTCOME) => {
                change.state = Some(st::TIMED_OUT);
                change.error = Some((
                    "POS_TIMEOUT".into(),
                    with_terminal_text(
                        "il terminale non ha dato esito in tempo",
                        cb.error_description(),
                    ),
                ));
                // Held a while: a card charged at the last second still
                // sends its receipt.
                change.deadline_at = Some(Some(now + timeout_hold));
                &[st::OPENING, st::AWAITING_OUTCOME]
            }
            (negative, st::OPENING | st::AWAITING_OUTCOME) => {
                let (state, code, text) = match negative {
                    AuthOutcome::Declined => (st::DECLINED, "POS_DECLINED", "carta rifiutata"),
                    AuthOutcome::Refused => (st::REFUSED, "POS_REFUSED", "pagamento rifiutato"),
                    _ => (
                        st::CANCELLED,
                        "POS_CANCELLED",
                        "operazione annullata dal cittadino sul terminale",
                    ),
                };
                change.state = Some(state);
                change.error = Some((
                    code.into(),
                    with_terminal_text(text, cb.error_description()),
                ));
                change.deadline_at = Some(None);
                change.release = !s.notices.iter().any(|n| n.receipt_id.is_some());
                &[st::OPENING, st::AWAITING_OUTCOME]
            }
            (AuthOutcome::Timeout, st::PAID | st::TIMED_OUT | st::FAILED) => {
                // A receipt beat the TIMEOUT: the money came anyway.
                if s.state == st::PAID {
                    change.anomaly = Some("RECEIPT_AFTER_TIMEOUT".into());
                }
                &[st::PAID, st::TIMED_OUT, st::FAILED]
            }
            (_, state) => {
                tracing::warn!(session = %s.id, state, outcome = cb.outcome.as_str(), "POS outcome for a closed session refused");
                return Err(AppError::invalid(
                    "POS_OUTCOME_CONFLICT",
                    format!(
                        "esito {} per una sessione già conclusa ({})",
                        cb.outcome.as_str(),
                        PosSessionState::parse(state)
                            .map(|x| x.label())
                            .unwrap_or(state)
                    ),
                ));
            }
        };
        if app
            .store
            .pos_change(&s.id, from, &change, now)
            .await
            .at(at)?
        {
            tracing::info!(session = %s.id, outcome = cb.outcome.as_str(), "POS outcome recorded");
            return Ok(());
        }
    }
    Err(AppError::conflict(
        "POS_BUSY",
        "la sessione è cambiata più volte durante l'aggiornamento: riprovare",
    ))
}

fn with_terminal_text(text: &str, terminal: Option<String>) -> String {
    match terminal.filter(|t| !t.trim().is_empty()) {
        Some(t) => format!("{text} ({})", t.chars().take(200).collect::<String>()),
        None => text.to_string(),
    }
}

/// A receipt was stored for `ente`'s notice: if a session holds it, it is
/// paid there (called by the Node's door once the receipt is committed).
/// Never fails the receipt: a failure here is logged, and the sweep links
/// the receipt later.
pub async fn after_receipt(
    app: &App,
    ente: &str,
    notice_number: &str,
    receipt_id: &str,
    paid_at: Option<DateTime<Utc>>,
) {
    let now = app.clock.now();
    match app
        .store
        .pos_link_receipt(ente, notice_number, receipt_id, paid_at.unwrap_or(now), now)
        .await
    {
        Ok(Some(link)) => {
            tracing::info!(session = %link.session_id, state = %link.state, "receipt linked to its POS session");
            if let Some(a) = &link.anomaly {
                tracing::warn!(session = %link.session_id, anomaly = %a, "POS session flagged");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "linking a receipt to its POS session failed; the sweep will")
        }
    }
}

/// How often [`run`] looks at sessions past their deadline.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// The job: [`sweep`] every [`SWEEP_EVERY`].
pub async fn run(app: App) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        match sweep(&app, app.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "POS sessions past their deadline handled"),
            Err(e) => tracing::warn!(error = %e, "POS sweep failed; retrying later"),
        }
    }
}

/// Sessions past their deadline: receipts whose link was lost are linked;
/// a session without an outcome is asked of the gateway; an authorized
/// one without its receipts is flagged for a person (its notices stay
/// held: never a second payment); a timed-out one lets its notices go,
/// flagged so that someone checks the card was not charged. Answers how
/// many sessions it handled.
pub async fn sweep(app: &App, now: DateTime<Utc>) -> Result<usize, AppError> {
    let due = app
        .store
        .pos_due_sessions(now, 200)
        .await
        .at(Place::new("pos.sweep", "", ""))?;
    let n = due.len();
    for s in due {
        if let Err(e) = sweep_one(app, &s, now).await {
            tracing::warn!(session = %s.id, error = %e, "POS sweep of a session failed");
        }
    }
    Ok(n)
}

async fn sweep_one(app: &App, s: &PosSessionRecord, now: DateTime<Utc>) -> Result<(), AppError> {
    let at = Place::new("pos.sweep", &s.ente, &s.id);
    // Receipts stored while the link failed.
    for n in s
        .notices
        .iter()
        .filter(|n| n.open && n.receipt_id.is_none())
    {
        if let Some((receipt, paid_at)) = app
            .store
            .pos_stored_receipt(&s.ente, &n.notice_number, s.created_at)
            .await
            .at(at)?
        {
            after_receipt(app, &s.ente, &n.notice_number, &receipt, paid_at).await;
        }
    }
    let Some(s) = app.store.pos_session(&s.ente, &s.id).await.at(at)? else {
        return Ok(());
    };
    if s.deadline_at.is_none_or(|d| d > now) {
        return Ok(());
    }
    let settings = app.settings.pos.clone();
    let flag = |anomaly: &str| PosChange {
        anomaly: Some(anomaly.into()),
        deadline_at: Some(None),
        ..Default::default()
    };
    match s.state.as_str() {
        st::OPENING | st::AWAITING_OUTCOME => {
            let status = match (&settings, &s.gateway_session) {
                (Some(p), Some(g)) => p
                    .gateway
                    .session_status(&s.correlation_id, g)
                    .await
                    .ok()
                    .map(|r| r.outcome),
                _ => None,
            };
            let change = match status {
                _ if s.gateway_session.is_none() => PosChange {
                    state: Some(st::FAILED),
                    error: Some((
                        "POS_INTERRUPTED".into(),
                        "invio al terminale interrotto prima di raggiungere il circuito POS".into(),
                    )),
                    deadline_at: Some(None),
                    release: true,
                    ..Default::default()
                },
                Some(SessionOutcome::Error) => PosChange {
                    state: Some(st::FAILED),
                    error: Some((
                        "POS_NO_PAYMENT".into(),
                        "il circuito POS ha chiuso la sessione senza pagamento".into(),
                    )),
                    deadline_at: Some(None),
                    release: true,
                    ..Default::default()
                },
                Some(SessionOutcome::Success) => PosChange {
                    state: Some(st::AUTHORIZED),
                    deadline_at: Some(Some(
                        now + settings
                            .as_ref()
                            .map(|p| p.receipt_deadline)
                            .unwrap_or(chrono::Duration::minutes(10)),
                    )),
                    ..Default::default()
                },
                _ if now - s.created_at
                    > settings
                        .as_ref()
                        .map(|p| p.give_up_after)
                        .unwrap_or(chrono::Duration::minutes(30)) =>
                {
                    flag("NO_OUTCOME")
                }
                _ => PosChange {
                    deadline_at: Some(Some(now + chrono::Duration::seconds(30))),
                    ..Default::default()
                },
            };
            app.store
                .pos_change(&s.id, &[st::OPENING, st::AWAITING_OUTCOME], &change, now)
                .await
                .at(at)?;
        }
        st::AUTHORIZED => {
            tracing::warn!(session = %s.id, "POS payment authorized without its receipts: flagged");
            app.store
                .pos_change(&s.id, &[st::AUTHORIZED], &flag("RECEIPT_MISSING"), now)
                .await
                .at(at)?;
        }
        st::TIMED_OUT => {
            let change = PosChange {
                anomaly: Some("TIMEOUT_NO_RECEIPT".into()),
                deadline_at: Some(None),
                release: true,
                ..Default::default()
            };
            app.store
                .pos_change(&s.id, &[st::TIMED_OUT], &change, now)
                .await
                .at(at)?;
        }
        _ => {
            app.store
                .pos_change(
                    &s.id,
                    &[s.state.as_str()],
                    &PosChange {
                        deadline_at: Some(None),
                        ..Default::default()
                    },
                    now,
                )
                .await
                .at(at)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_back_and_speak_italian() {
        for s in PosSessionState::ALL {
            assert_eq!(PosSessionState::parse(s.as_str()), Some(s));
            assert!(!s.label().is_empty());
        }
        assert!(!PosSessionState::Authorized.is_final());
        assert!(PosSessionState::Paid.is_final());
        assert_eq!(PosSessionState::Declined.label(), "Carta rifiutata");
    }

    #[test]
    fn terminal_ids_are_eight_letters_or_digits() {
        assert!(check_terminal_id("SIMPOS01").is_ok());
        assert!(check_terminal_id("SIMPOS1").is_err());
        assert!(check_terminal_id("SIMPOS0/").is_err());
    }
}
