//! The application layer's error: what went wrong, said once for every door.
//!
//! A door maps [`Kind`] to its own language (an HTTP status, a SOAP fault,
//! an exit code) and shows `code` and the Italian `detail`. An internal
//! failure never shows its cause: it is logged here, with the use case, the
//! Ente, the object and the whole cause chain, under a reference that the
//! person sees and can quote.

use incasso_core::FieldError;
use incasso_core::position::TransitionError;
use incasso_store::StoreError;

/// What kind of failure, independent of any protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or breaks a rule (HTTP 400).
    Invalid,
    /// Nobody known is calling (401).
    Unauthenticated,
    /// The caller may not do this (403).
    Forbidden,
    /// The object does not exist (404).
    NotFound,
    /// The object's state or a unique key forbids it (409).
    Conflict,
    /// Well formed, but not applicable to the object's state (422).
    Unprocessable,
    /// No longer kept (410).
    Gone,
    /// Too large to take (413).
    TooLarge,
    /// A party incasso depends on (the pagoPA Node) did not answer (502).
    Unavailable,
    /// incasso's own database is out of reach for now (503, with
    /// `Retry-After`): PostgreSQL restarting, say.
    StoreUnavailable,
    /// incasso's own failure (500): logged with its cause, never shown.
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct AppError {
    pub kind: Kind,
    /// Stable, language-independent code for programs.
    pub code: &'static str,
    /// Italian, for the person who reads it.
    pub detail: String,
    /// Every broken rule of rejected input, with its field path.
    pub errors: Vec<FieldError>,
}

impl AppError {
    pub fn new(kind: Kind, code: &'static str, detail: impl Into<String>) -> Self {
        AppError {
            kind,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn invalid(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, code, detail)
    }

    pub fn forbidden() -> Self {
        Self::new(
            Kind::Forbidden,
            "FORBIDDEN",
            "la chiave API non consente l'accesso a questa risorsa",
        )
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            Kind::Unauthenticated,
            "UNAUTHORIZED",
            "chiave API mancante o non valida (header Ocp-Apim-Subscription-Key)",
        )
    }

    /// incasso's own failure. Logged here, with where it happened and the
    /// whole cause chain; the person sees only a reference to quote.
    pub fn internal(at: &Place<'_>, cause: &(dyn std::error::Error + 'static)) -> Self {
        let reference = reference();
        tracing::error!(
            reference = %reference,
            use_case = at.use_case,
            ente = at.ente,
            object = at.object,
            error = %chain(cause),
            "internal failure"
        );
        Self::new(
            Kind::Internal,
            "INTERNAL",
            format!("errore interno: riprovare più tardi (riferimento {reference})"),
        )
    }
}

/// Where a failure happened: the use case, the Ente and the object it was
/// working on, as the log of an internal failure reports them.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub use_case: &'static str,
    pub ente: &'a str,
    pub object: &'a str,
}

impl<'a> Place<'a> {
    pub fn new(use_case: &'static str, ente: &'a str, object: &'a str) -> Self {
        Place {
            use_case,
            ente,
            object,
        }
    }
}

/// An error and its sources, outermost first, as one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A short random reference under which an internal failure is logged.
fn reference() -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        return "n/d".into();
    }
    crate::keys::hex(&bytes)
}

/// A store failure seen by a use case: the expected ones (not found, a
/// conflict, invalid data, a refused transition) become what the person is
/// told; the rest are internal, logged with `at`.
pub fn from_store(e: StoreError, at: &Place<'_>) -> AppError {
    match e {
        StoreError::NotFound(what) => AppError::new(
            Kind::NotFound,
            "NOT_FOUND",
            format!("{what} {}", not_found(what)),
        ),
        StoreError::Conflict(detail) => AppError::conflict("CONFLICT", detail),
        StoreError::Invalid(invalid) => {
            let mut err = AppError::invalid(invalid.first_code(), invalid.to_string());
            err.errors = invalid.0;
            err
        }
        StoreError::Transition(t) => t.into(),
        StoreError::Unprocessable(code, detail) => AppError::new(Kind::Unprocessable, code, detail),
        // A full disk is told as the database being away for now (HTTP 503
        // with Retry-After, the Node's PAA_SYSTEM_ERROR), not as 507
        // Insufficient Storage: 507 is WebDAV's, and the Node, GPD clients
        // and load balancers retry a 503 but give up on a 507, while the
        // write was rolled back whole and succeeds as sent once an operator
        // makes room. Its own code tells the two apart; logged as an error,
        // since only an operator can end it.
        e if e.is_disk_full() => {
            tracing::error!(use_case = at.use_case, ente = at.ente, object = at.object, error = %e, "database disk full");
            AppError::new(
                Kind::StoreUnavailable,
                "DISK_FULL",
                "spazio su disco del database esaurito: nulla è stato scritto; riprovare più tardi",
            )
        }
        e if e.is_unavailable() => {
            tracing::warn!(use_case = at.use_case, ente = at.ente, error = %e, "database unavailable");
            AppError::new(
                Kind::StoreUnavailable,
                "DATABASE_UNAVAILABLE",
                "il servizio è momentaneamente non disponibile: riprovare tra qualche secondo",
            )
        }
        // The position's own error, told with its place in the call: the
        // field paths as the caller sent them (`paymentPositions[i].…`).
        StoreError::Item {
            index,
            iupd,
            source,
        } => {
            let mut err = from_store(*source, at);
            if err.kind != Kind::Internal {
                err.detail = format!("paymentPositions[{index}] (iupd '{iupd}'): {}", err.detail);
                for e in &mut err.errors {
                    e.field = format!("paymentPositions[{index}].{}", e.field);
                }
            }
            err
        }
        other => AppError::internal(at, &other),
    }
}

/// "non trovato" agreeing with the noun: Italian nouns in -a and -ione are
/// feminine (posizione, ricevuta, fornitura, stazione), the store's others
/// masculine (ente, avviso, accertamento, servizio, ufficio).
fn not_found(noun: &str) -> &'static str {
    let head = noun.split_whitespace().next().unwrap_or(noun);
    if head.ends_with('a') || head.ends_with("ione") {
        "non trovata"
    } else {
        "non trovato"
    }
}

/// Adds the place of a use case to a store result.
pub trait At<T> {
    fn at(self, at: Place<'_>) -> Result<T, AppError>;
}

impl<T> At<T> for Result<T, StoreError> {
    fn at(self, at: Place<'_>) -> Result<T, AppError> {
        self.map_err(|e| from_store(e, &at))
    }
}

impl From<TransitionError> for AppError {
    fn from(t: TransitionError) -> Self {
        AppError::conflict(t.code(), t.to_string())
    }
}

impl From<incasso_core::Invalid> for AppError {
    fn from(invalid: incasso_core::Invalid) -> Self {
        let mut err = AppError::invalid(invalid.first_code(), invalid.to_string());
        err.errors = invalid.0;
        err
    }
}

/// Without a place: for the few paths where none is known (the store
/// failing before any use case began). Prefer [`At::at`].
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        from_store(e, &Place::new("unknown", "", ""))
    }
}
