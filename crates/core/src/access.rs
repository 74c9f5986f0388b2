//! Who may do what in the back office: operators' roles, the areas of work
//! they are granted, the offices they are limited to, and the rules of
//! their passwords and of sign-in lockout. Pure: the application layer asks
//! these questions before every use case, whichever door it came through.
//!
//! The roles are those GovPay and MyPay let an Ente divide its work by:
//!
//! | role | Enti | areas | offices |
//! | --- | --- | --- | --- |
//! | intermediary administrator | all of the intermediary's | all, read and write | all |
//! | Ente administrator | its own | all, read and write | all |
//! | office operator | its own | those granted, read or read-write | those chosen |
//! | counter clerk | its own | positions, read and write | those chosen |
//! | accountant | its own | all, read only | all |

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// An operator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    IntermediaryAdmin,
    EnteAdmin,
    OfficeOperator,
    CounterClerk,
    Accountant,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::IntermediaryAdmin,
        Role::EnteAdmin,
        Role::OfficeOperator,
        Role::CounterClerk,
        Role::Accountant,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::IntermediaryAdmin => "INTERMEDIARY_ADMIN",
            Role::EnteAdmin => "ENTE_ADMIN",
            Role::OfficeOperator => "OFFICE_OPERATOR",
            Role::CounterClerk => "COUNTER_CLERK",
            Role::Accountant => "ACCOUNTANT",
        }
    }

    /// As a clerk reads it.
    pub fn label(self) -> &'static str {
        match self {
            Role::IntermediaryAdmin => "Amministratore dell'intermediario",
            Role::EnteAdmin => "Amministratore dell'ente",
            Role::OfficeOperator => "Operatore d'ufficio",
            Role::CounterClerk => "Operatore di sportello",
            Role::Accountant => "Ragioneria (sola lettura)",
        }
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

/// An area of the back office's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Area {
    Positions,
    Supplies,
    /// Receipts, reporting flows, treasury and reconciliation.
    Reporting,
    Accertamenti,
    Catalogue,
    Users,
}

impl Area {
    pub const ALL: [Area; 6] = [
        Area::Positions,
        Area::Supplies,
        Area::Reporting,
        Area::Accertamenti,
        Area::Catalogue,
        Area::Users,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Area::Positions => "Posizioni debitorie",
            Area::Supplies => "Forniture",
            Area::Reporting => "Rendicontazione e riconciliazione",
            Area::Accertamenti => "Accertamenti",
            Area::Catalogue => "Catalogo dei servizi",
            Area::Users => "Utenti",
        }
    }
}

/// Reading, or reading and changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Access {
    Read,
    Write,
}

/// What an operator may do: their role, their Ente (none for the
/// intermediary's administrator), the areas granted to an office operator,
/// and the offices an office operator or a counter clerk is limited to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    pub role: Role,
    pub ente: Option<String>,
    /// For an office operator: each area granted and how.
    pub grants: Vec<(Area, Access)>,
    /// For an office operator or a counter clerk: the offices (codes) whose
    /// data they see. Empty: none.
    pub offices: Vec<String>,
}

impl Rights {
    /// Whether the operator may work on `ente` at all.
    pub fn reaches(&self, ente: &str) -> bool {
        match self.role {
            Role::IntermediaryAdmin => true,
            _ => self.ente.as_deref() == Some(ente),
        }
    }

    /// Whether the operator may `access` `area` of `ente`.
    pub fn may(&self, ente: &str, area: Area, access: Access) -> bool {
        if !self.reaches(ente) {
            return false;
        }
        match self.role {
            Role::IntermediaryAdmin | Role::EnteAdmin => true,
            Role::Accountant => access == Access::Read,
            Role::CounterClerk => area == Area::Positions,
            Role::OfficeOperator => self
                .grants
                .iter()
                .any(|(a, granted)| *a == area && *granted >= access),
        }
    }

    /// Whether data of `office` (a position's, a supply's; `None`: of no
    /// office) is in the operator's scope.
    pub fn sees_office(&self, office: Option<&str>) -> bool {
        match self.role {
            Role::OfficeOperator | Role::CounterClerk => {
                office.is_some_and(|o| self.offices.iter().any(|mine| mine == o))
            }
            _ => true,
        }
    }

    /// The offices the operator is limited to, or `None` when they see all.
    pub fn office_scope(&self) -> Option<&[String]> {
        match self.role {
            Role::OfficeOperator | Role::CounterClerk => Some(&self.offices),
            _ => None,
        }
    }

    /// Checks the rights make sense for the role: an Ente for every role but
    /// the intermediary's administrator, grants only for office operators.
    pub fn check(&self) -> Result<(), &'static str> {
        match (self.role, &self.ente) {
            (Role::IntermediaryAdmin, Some(_)) => {
                Err("l'amministratore dell'intermediario non appartiene a un ente")
            }
            (Role::IntermediaryAdmin, None) => Ok(()),
            (_, None) => Err("il ruolo richiede l'ente"),
            (Role::OfficeOperator, Some(_)) => Ok(()),
            (_, Some(_)) if !self.grants.is_empty() => {
                Err("le aree si assegnano solo agli operatori d'ufficio")
            }
            _ => Ok(()),
        }
    }
}

// ---------------------------------------------------------------- passwords

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The password policy (as AgID's guidelines for public administrations'
/// local accounts ask): at least [`MIN_PASSWORD_CHARS`] characters, three
/// kinds among lower case, upper case, digits and symbols, and not the
/// username. Answers why not, in Italian, for the person choosing it.
pub fn check_password(username: &str, password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "la password deve avere almeno {MIN_PASSWORD_CHARS} caratteri (ne ha {chars})"
        ));
    }
    if chars > 256 {
        return Err("la password può avere al più 256 caratteri".into());
    }
    let kinds = [
        password.chars().any(char::is_lowercase),
        password.chars().any(char::is_uppercase),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds < 3 {
        return Err(
            "la password deve contenere almeno tre tipi di carattere tra minuscole, maiuscole, cifre e simboli"
                .into(),
        );
    }
    let user = username.trim().to_lowercase();
    if !user.is_empty() && password.to_lowercase().contains(&user) {
        return Err("la password non può contenere il nome utente".into());
    }
    Ok(())
}

// ---------------------------------------------------------------- lockout

/// Failures allowed before sign-in waits.
pub const FREE_FAILURES: u32 = 5;
/// The first wait, doubled at each further failure...
pub const FIRST_DELAY_SECS: i64 = 30;
/// ...up to this: never more, so that nobody can lock an account for good
/// by guessing at it from outside.
pub const MAX_DELAY_SECS: i64 = 15 * 60;

/// How long sign-in waits after `failures` consecutive failures, if at
/// all: nothing for the first [`FREE_FAILURES`], then 30 s, 1 min, 2 min...
/// capped at [`MAX_DELAY_SECS`].
pub fn lockout_secs(failures: u32) -> Option<i64> {
    if failures < FREE_FAILURES {
        return None;
    }
    let doublings = (failures - FREE_FAILURES).min(20);
    Some(
        FIRST_DELAY_SECS
            .saturating_mul(1i64 << doublings)
            .min(MAX_DELAY_SECS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(role: Role, grants: Vec<(Area, Access)>, offices: &[&str]) -> Rights {
        Rights {
            role,
            ente: (role != Role::IntermediaryAdmin).then(|| "80000130585".to_string()),
            grants,
            offices: offices.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn each_role_reaches_what_it_should() {
        let own = "80000130585";
        let other = "97000000022";
        for role in Role::ALL {
            let r = rights(role, vec![], &[]);
            assert_eq!(
                r.reaches(other),
                role == Role::IntermediaryAdmin,
                "{role:?}"
            );
            assert!(r.reaches(own) || role == Role::IntermediaryAdmin);
            for area in Area::ALL {
                assert!(!r.may(other, area, Access::Read) || role == Role::IntermediaryAdmin);
            }
        }
        let accountant = rights(Role::Accountant, vec![], &[]);
        assert!(accountant.may(own, Area::Reporting, Access::Read));
        assert!(!accountant.may(own, Area::Reporting, Access::Write));
        let clerk = rights(Role::CounterClerk, vec![], &["UT"]);
        assert!(clerk.may(own, Area::Positions, Access::Write));
        assert!(!clerk.may(own, Area::Users, Access::Read));
        let office = rights(
            Role::OfficeOperator,
            vec![
                (Area::Positions, Access::Write),
                (Area::Reporting, Access::Read),
            ],
            &["UT"],
        );
        assert!(office.may(own, Area::Positions, Access::Write));
        assert!(office.may(own, Area::Reporting, Access::Read));
        assert!(!office.may(own, Area::Reporting, Access::Write));
        assert!(!office.may(own, Area::Catalogue, Access::Read));
        assert!(office.sees_office(Some("UT")));
        assert!(!office.sees_office(Some("ANAG")));
        assert!(!office.sees_office(None));
        assert!(rights(Role::EnteAdmin, vec![], &[]).sees_office(None));
    }

    #[test]
    fn rights_fit_their_role() {
        assert!(rights(Role::IntermediaryAdmin, vec![], &[]).check().is_ok());
        let mut wrong = rights(Role::EnteAdmin, vec![], &[]);
        wrong.ente = None;
        assert!(wrong.check().is_err());
        let granted = rights(Role::Accountant, vec![(Area::Users, Access::Write)], &[]);
        assert!(granted.check().is_err());
    }

    #[test]
    fn the_password_policy_says_why() {
        assert!(
            check_password("mario", "Corta1!")
                .unwrap_err()
                .contains("12")
        );
        assert!(check_password("mario", "soltantominuscole").is_err());
        assert!(
            check_password("mario", "Xmario-2026-Roma")
                .unwrap_err()
                .contains("nome utente")
        );
        assert!(check_password("mario", "Tributi-2026-Roma").is_ok());
        assert!(
            check_password("mario", "tributi 2026 roma").is_ok(),
            "lower, digits, symbols"
        );
    }

    #[test]
    fn lockout_grows_and_stops_growing() {
        assert_eq!(lockout_secs(4), None);
        assert_eq!(lockout_secs(5), Some(30));
        assert_eq!(lockout_secs(6), Some(60));
        assert_eq!(lockout_secs(9), Some(480));
        assert_eq!(lockout_secs(10), Some(MAX_DELAY_SECS));
        assert_eq!(lockout_secs(u32::MAX), Some(MAX_DELAY_SECS));
    }
}
