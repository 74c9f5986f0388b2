//! Who is calling, and what they may do.
//!
//! Every use case receives a [`Caller`] in its context and checks its
//! rights itself, so that each door (the JSON APIs, the portals, the CLI,
//! the workers) gets the same answer for the same person.

use crate::error::AppError;
use incasso_store::{ApiKeyRecord, KeyScope};

/// The caller of a use case.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An API key: of one Ente (an application's, or the Ente's
    /// administrator's) or of the intermediary that runs the installation.
    Key(ApiKeyRecord),
    /// incasso itself: a command run by the machine's operator, a background
    /// worker, the demo seed. It may do anything; it never comes from the
    /// network.
    System(&'static str),
    /// Somebody on the public pages, signed in as nobody: may see and pay
    /// a notice whose number they hold, nothing else.
    Public,
}

impl Caller {
    /// The intermediary, or incasso itself: may act on every Ente.
    pub fn is_intermediary(&self) -> bool {
        match self {
            Caller::Key(k) => k.scope == KeyScope::Intermediary,
            Caller::System(_) => true,
            Caller::Public => false,
        }
    }

    /// The caller may act on this Ente's resources. Another Ente's key gets
    /// a refusal, never a hint of whether the resource exists.
    pub fn require_ente(&self, fiscal_code: &str) -> Result<(), AppError> {
        match self {
            _ if self.is_intermediary() => Ok(()),
            Caller::Key(k) if k.ente.as_deref() == Some(fiscal_code) => Ok(()),
            _ => Err(AppError::forbidden()),
        }
    }

    /// The caller may issue and revoke this Ente's keys: the Ente's
    /// administrator key or the intermediary. An application's key may
    /// not, so a leaked one cannot lock the Ente's other integrations out.
    pub fn require_key_admin(&self, fiscal_code: &str) -> Result<(), AppError> {
        match self {
            _ if self.is_intermediary() => Ok(()),
            Caller::Key(k)
                if k.scope == KeyScope::EnteAdmin && k.ente.as_deref() == Some(fiscal_code) =>
            {
                Ok(())
            }
            _ => Err(AppError::new(
                crate::error::Kind::Forbidden,
                "FORBIDDEN_SCOPE",
                "solo la chiave di amministrazione dell'ente o dell'intermediario può gestire le chiavi API",
            )),
        }
    }

    pub fn require_intermediary(&self) -> Result<(), AppError> {
        if self.is_intermediary() {
            Ok(())
        } else {
            Err(AppError::forbidden())
        }
    }
}
