//! Who is calling, and what they may do.
//!
//! Every use case receives a [`Caller`] in its context and checks its
//! rights itself, so that each door (the JSON APIs, the portals, the CLI,
//! the workers) gets the same answer for the same person.

use crate::error::AppError;
use incasso_core::access::{Access, Area, Rights, Role};
use incasso_store::{ApiKeyRecord, KeyScope};

/// A person signed in to the back office, as use cases see them: who, and
/// their rights (never their password's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorIdentity {
    pub id: i64,
    pub username: String,
    pub full_name: String,
    pub rights: Rights,
}

/// A person signed in to the citizen portal with SPID or CIE: who the
/// identity provider vouched for. They act for themselves only: what is
/// owed by or was paid by their own fiscal code, at any Ente of the
/// intermediary, and nothing of an Ente's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitizenIdentity {
    /// The Italian fiscal code, upper case (the `fiscalNumber` claim
    /// without its `TINIT-`).
    pub fiscal_code: String,
    /// Given and family name, as the provider sent them.
    pub name: String,
}

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
    /// A person signed in to the back office, with their rights.
    Operator(Box<OperatorIdentity>),
    /// A citizen signed in to the portal: may see and pay what is owed by
    /// their own fiscal code, and their own receipts; no Ente's rights.
    Citizen(CitizenIdentity),
}

impl Caller {
    /// The intermediary, or incasso itself: may act on every Ente.
    pub fn is_intermediary(&self) -> bool {
        match self {
            Caller::Key(k) => k.scope == KeyScope::Intermediary,
            Caller::System(_) => true,
            Caller::Public => false,
            Caller::Operator(o) => o.rights.role == Role::IntermediaryAdmin,
            Caller::Citizen(_) => false,
        }
    }

    /// Who, as the audit log names them.
    pub fn actor(&self) -> String {
        match self {
            Caller::Key(k) => format!("key:{}", k.key_id),
            Caller::System(what) => format!("system:{what}"),
            Caller::Public => "public".into(),
            Caller::Operator(o) => format!("operator:{}", o.username),
            // Never the whole fiscal code: the log is read by operators.
            Caller::Citizen(c) => format!("citizen:{}", masked(&c.fiscal_code)),
        }
    }

    /// The signed-in citizen, if the caller is one.
    pub fn citizen(&self) -> Option<&CitizenIdentity> {
        match self {
            Caller::Citizen(c) => Some(c),
            _ => None,
        }
    }

    /// The caller is the citizen whose fiscal code is `fiscal_code` (the
    /// same refusal for everyone else).
    pub fn require_citizen(&self, fiscal_code: &str) -> Result<&CitizenIdentity, AppError> {
        match self {
            Caller::Citizen(c) if c.fiscal_code.eq_ignore_ascii_case(fiscal_code.trim()) => Ok(c),
            _ => Err(AppError::forbidden()),
        }
    }

    /// The caller may `access` `area` of this Ente: an API key as its scope
    /// says (keys are for programs, which the areas do not divide), an
    /// operator as their rights say.
    pub fn require(&self, ente: &str, area: Area, access: Access) -> Result<(), AppError> {
        match self {
            Caller::Operator(o) if o.rights.may(ente, area, access) => Ok(()),
            Caller::Operator(_) => Err(AppError::forbidden()),
            _ => self.require_ente(ente),
        }
    }

    /// The caller may act on this Ente's resources. Another Ente's key gets
    /// a refusal, never a hint of whether the resource exists.
    pub fn require_ente(&self, fiscal_code: &str) -> Result<(), AppError> {
        match self {
            _ if self.is_intermediary() => Ok(()),
            Caller::Key(k) if k.ente.as_deref() == Some(fiscal_code) => Ok(()),
            // Deny by default: a use case that checks only the Ente admits
            // the Ente's administrators; the others' areas and offices are
            // checked by the use cases that state them (`require`).
            Caller::Operator(o)
                if o.rights.reaches(fiscal_code) && o.rights.role == Role::EnteAdmin =>
            {
                Ok(())
            }
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
            Caller::Operator(o) if o.rights.may(fiscal_code, Area::Users, Access::Write) => Ok(()),
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

/// A fiscal code as the audit log may show it of a person who is not an
/// operator: enough to recognize a mistyped one, not the whole.
pub(crate) fn masked(fiscal_code: &str) -> String {
    let head: String = fiscal_code.chars().take(6).collect();
    format!("{head}**********")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(role: Role, ente: Option<&str>) -> Caller {
        Caller::Operator(Box::new(OperatorIdentity {
            id: 1,
            username: "x".into(),
            full_name: "X".into(),
            rights: Rights {
                role,
                ente: ente.map(str::to_string),
                grants: vec![(Area::Positions, Access::Write)],
                offices: vec!["UT".into()],
            },
        }))
    }

    /// A use case that names no area admits only administrators: an
    /// accountant or an office operator never passes a check meant for
    /// another kind of caller.
    #[test]
    fn operators_pass_the_ente_check_only_as_administrators() {
        let a = "80000130585";
        assert!(operator(Role::EnteAdmin, Some(a)).require_ente(a).is_ok());
        assert!(
            operator(Role::IntermediaryAdmin, None)
                .require_ente(a)
                .is_ok()
        );
        for role in [Role::OfficeOperator, Role::CounterClerk, Role::Accountant] {
            assert!(operator(role, Some(a)).require_ente(a).is_err(), "{role:?}");
        }
        assert!(
            operator(Role::EnteAdmin, Some(a))
                .require_ente("97000000022")
                .is_err()
        );
        let office = operator(Role::OfficeOperator, Some(a));
        assert!(office.require(a, Area::Positions, Access::Write).is_ok());
        assert!(office.require(a, Area::Users, Access::Read).is_err());
        assert!(!office.is_intermediary());
    }

    /// A citizen has no right on any Ente, whatever the use case checks.
    #[test]
    fn a_citizen_is_nobody_to_an_ente() {
        let a = "80000130585";
        let c = Caller::Citizen(CitizenIdentity {
            fiscal_code: "RSSMRA80A01H501U".into(),
            name: "Mario Rossi".into(),
        });
        assert!(!c.is_intermediary());
        assert!(c.require_ente(a).is_err());
        assert!(c.require(a, Area::Positions, Access::Read).is_err());
        assert!(c.require_key_admin(a).is_err());
        assert!(c.require_intermediary().is_err());
        assert!(c.require_citizen("RSSMRA80A01H501U").is_ok());
        assert!(c.require_citizen("rssmra80a01h501u").is_ok());
        assert!(c.require_citizen("BNCGLI80A41H501C").is_err());
        assert!(Caller::Public.require_citizen("RSSMRA80A01H501U").is_err());
        assert_eq!(c.actor(), "citizen:RSSMRA**********");
    }
}
