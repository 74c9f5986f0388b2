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
    /// The revenue's SIOPE code (OPI's `codice_cge`: 4 to 10 digits), so
    /// that reversali can be classified by it.
    #[serde(default)]
    pub siope_code: Option<String>,
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
        if let Some(siope) = &self.siope_code
            && (!(4..=10).contains(&siope.len()) || !siope.bytes().all(|b| b.is_ascii_digit()))
        {
            c.fail(
                "siopeCode",
                codes::BAD_FORMAT,
                "codice SIOPE: da 4 a 10 cifre",
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn accertamento(siope: Option<&str>) -> Accertamento {
        Accertamento {
            year: 2026,
            code: "ACC-1".into(),
            description: "TARI".into(),
            chapter: "1010".into(),
            article: None,
            siope_code: siope.map(str::to_string),
            active: true,
        }
    }

    #[test]
    fn a_siope_code_is_four_to_ten_digits() {
        for ok in [None, Some("3010"), Some("3010200"), Some("1234567890")] {
            assert!(accertamento(ok).validate().is_ok(), "{ok:?}");
        }
        for bad in ["301", "12345678901", "E.3.01", "30102 0"] {
            let e = accertamento(Some(bad)).validate().unwrap_err();
            assert_eq!(e.0[0].field, "siopeCode", "{bad}");
        }
    }
}
