//! The treasury's journal in OPI form (*giornale di cassa*, versions 1.7.1
//! and 1.8, which name their elements alike): the movements of each
//! account, with the Ente, the year and the sospeso numbers.
//!
//! Every field incasso uses is checked to the schema's type (enumerations,
//! amounts, dates, lengths); a journal with a broken one is refused whole,
//! naming the element. Fields incasso does not use, and the signature, are
//! not checked here.

use crate::TreasuryError;
use chrono::NaiveDate;
use incasso_core::Cents;
use incasso_core::treasury::{Direction, DocumentKind, Operation, TreasuryMovement};
use incasso_xml::{Element, Limits};

/// A big Comune's day: thousands of movements, and the signature's depth.
pub const LIMITS: Limits = Limits {
    max_bytes: 64 * 1024 * 1024,
    max_depth: 16,
    max_elements: 2_000_000,
};

/// The journal's page and what it says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// `identificativo_flusso_BT`.
    pub journal_id: String,
    pub ente: String,
    pub year: i32,
    pub reference_date: NaiveDate,
    pub page: u32,
    pub pages: u32,
    pub movements: Vec<TreasuryMovement>,
}

pub fn parse(bytes: &[u8]) -> Result<Journal, TreasuryError> {
    let root =
        incasso_xml::parse(bytes, LIMITS).map_err(|e| TreasuryError::at("/", e.to_string()))?;
    if root.name != "flusso_giornale_di_cassa" {
        return Err(TreasuryError::at(
            "/",
            format!(
                "l'elemento radice è {} invece di flusso_giornale_di_cassa: non è un giornale di cassa OPI",
                root.name
            ),
        ));
    }
    let path = "flusso_giornale_di_cassa";
    let header = required(&root, path, "testata_messaggio")?;
    let ente = text(
        header,
        &format!("{path}/testata_messaggio"),
        "codice_fiscale_ente",
        11,
        11,
    )?;
    if !ente.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TreasuryError::at(
            format!("{path}/testata_messaggio/codice_fiscale_ente"),
            "deve essere di 11 cifre",
        ));
    }
    let journal_id = text(&root, path, "identificativo_flusso_BT", 1, 70)?;
    let page = number(&root, path, "pagina", 1, 9_999_999)? as u32;
    let pages = number(&root, path, "pagine_totali", 1, 9_999_999)? as u32;
    let year = number(&root, path, "esercizio", 1999, 2099)? as i32;
    let reference_date = date(&root, path, "data_riferimento_GdC")?;
    let accounts: Vec<&Element> = root.children_named("informazioni_conto_evidenza").collect();
    if accounts.is_empty() {
        return Err(TreasuryError::at(
            format!("{path}/informazioni_conto_evidenza"),
            "manca: serve almeno un conto",
        ));
    }
    let mut movements = Vec::new();
    for (a, account) in accounts.iter().enumerate() {
        let apath = format!("{path}/informazioni_conto_evidenza[{}]", a + 1);
        let account_id = text(account, &apath, "conto_evidenza", 1, 25)?;
        for (m, el) in account
            .children_named("movimento_conto_evidenza")
            .enumerate()
        {
            let mpath = format!("{apath}/movimento_conto_evidenza[{}]", m + 1);
            movements.push(movement(el, &mpath, &ente, &account_id, year)?);
        }
    }
    Ok(Journal {
        journal_id,
        ente,
        year,
        reference_date,
        page,
        pages,
        movements,
    })
}

fn movement(
    el: &Element,
    path: &str,
    ente: &str,
    account: &str,
    year: i32,
) -> Result<TreasuryMovement, TreasuryError> {
    let number = text(el, path, "numero_movimento", 1, 7)?;
    let direction = match text(el, path, "tipo_movimento", 1, 7)?.as_str() {
        "ENTRATA" => Direction::Income,
        "USCITA" => Direction::Outgoing,
        other => {
            return Err(TreasuryError::at(
                format!("{path}/tipo_movimento"),
                format!("'{other}' non ammesso (ENTRATA o USCITA)"),
            ));
        }
    };
    let document = DocumentKind::from_opi(&text(el, path, "tipo_documento", 1, 40)?);
    let operation_text = text(el, path, "tipo_operazione", 1, 20)?;
    let operation = Operation::from_opi(&operation_text).ok_or_else(|| {
        TreasuryError::at(
            format!("{path}/tipo_operazione"),
            format!(
                "'{operation_text}' non ammesso (ESEGUITO, STORNATO, REGOLARIZZATO, RIPRISTINATO)"
            ),
        )
    })?;
    let document_number = text(el, path, "numero_documento", 1, 7)?;
    let amount = {
        let t = text(el, path, "importo", 1, 20)?;
        amount(&t).ok_or_else(|| {
            TreasuryError::at(
                format!("{path}/importo"),
                format!("importo '{t}' non valido (cifre, punto e due decimali)"),
            )
        })?
    };
    let booking_date = date(el, path, "data_movimento")?;
    let value_date = match el.child("data_valuta_ente") {
        Some(_) => Some(date(el, path, "data_valuta_ente")?),
        None => None,
    };
    let payer = el
        .child("cliente")
        .and_then(|c| c.text_of("anagrafica_cliente"))
        .map(str::to_string);
    let causale = el.text_of("causale").unwrap_or_default().to_string();
    let trn = optional(el, "codice_riferimento_operazione");
    let end_to_end_id = optional(el, "end_to_end_id");
    Ok(TreasuryMovement {
        movement_id: format!("{year}/{account}/{number}/{}", operation.as_str()),
        ente: ente.to_string(),
        account: account.to_string(),
        year,
        direction,
        document,
        operation,
        document_number,
        amount,
        booking_date,
        value_date,
        payer,
        causale,
        trn,
        end_to_end_id,
    })
}

fn required<'a>(el: &'a Element, path: &str, name: &str) -> Result<&'a Element, TreasuryError> {
    el.child(name)
        .ok_or_else(|| TreasuryError::at(format!("{path}/{name}"), "manca"))
}

fn text(
    el: &Element,
    path: &str,
    name: &str,
    min: usize,
    max: usize,
) -> Result<String, TreasuryError> {
    let child = required(el, path, name)?;
    if !child.children.is_empty() {
        return Err(TreasuryError::at(
            format!("{path}/{name}"),
            "deve contenere solo testo",
        ));
    }
    let t = child.text.trim();
    let len = t.chars().count();
    if len < min || len > max {
        return Err(TreasuryError::at(
            format!("{path}/{name}"),
            format!("lunghezza {len} fuori dai limiti ({min}-{max})"),
        ));
    }
    Ok(t.to_string())
}

fn optional(el: &Element, name: &str) -> Option<String> {
    el.text_of(name)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

fn number(el: &Element, path: &str, name: &str, min: i64, max: i64) -> Result<i64, TreasuryError> {
    let t = text(el, path, name, 1, 18)?;
    t.parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n) && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            TreasuryError::at(
                format!("{path}/{name}"),
                format!("'{t}' non è un numero tra {min} e {max}"),
            )
        })
}

fn date(el: &Element, path: &str, name: &str) -> Result<NaiveDate, TreasuryError> {
    let t = text(el, path, name, 10, 16)?;
    t.get(..10)
        .filter(|_| t.len() == 10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| {
            TreasuryError::at(format!("{path}/{name}"), format!("data '{t}' non valida"))
        })
}

/// OPI amounts: digits, a dot and two decimals.
fn amount(t: &str) -> Option<Cents> {
    let (units, decimals) = t.split_once('.')?;
    (!units.is_empty()
        && units.len() <= 13
        && decimals.len() == 2
        && units.bytes().all(|b| b.is_ascii_digit())
        && decimals.bytes().all(|b| b.is_ascii_digit()))
    .then(|| Cents::parse_decimal(t))
    .flatten()
}
