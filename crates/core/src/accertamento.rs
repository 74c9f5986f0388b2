//! Accertamenti: the accounting items of expected revenue that each euro
//! collected must be booked to.

use crate::error::{Checker, Invalid, codes};
use crate::text::is_safe_identifier;
use serde::{Deserialize, Serialize};

/// An accertamento is identified by its budget year and its code within the
/// year; the same code may be reused every year with a new meaning.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccertamentoRef {
    pub year: i32,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accertamento {
    pub year: i32,
    pub code: String,
    pub description: String,
    /// Budget chapter (capitolo) and article (articolo) of the revenue.
    pub chapter: String,
    pub article: Option<String>,
    pub active: bool,
}

impl Accertamento {
    pub fn reference(&self) -> AccertamentoRef {
        AccertamentoRef {
            year: self.year,
            code: self.code.clone(),
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        check_year(&mut c, "year", self.year);
        if !is_safe_identifier(&self.code, 35) {
            c.fail(
                "code",
                codes::BAD_FORMAT,
                "codice accertamento: da 1 a 35 caratteri tra lettere, cifre, '-', '_' e '.'",
            );
        }
        c.text("description", &self.description, 255);
        c.text("chapter", &self.chapter, 35);
        if let Some(article) = &self.article {
            c.max_len("article", article, 35);
        }
        c.finish()
    }
}

pub(crate) fn check_year(c: &mut Checker, field: &str, year: i32) {
    if !(2000..=2100).contains(&year) {
        c.fail(
            field,
            codes::OUT_OF_RANGE,
            "anno di bilancio fuori intervallo (2000-2100)",
        );
    }
}
