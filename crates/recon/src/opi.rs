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
    let number = text(el, path, "numero_movimento", 1, 18)?;
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TreasuryError::at(
            format!("{path}/numero_movimento"),
            "deve essere un numero",
        ));
    }
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
    let document_number = text(el, path, "numero_documento", 1, 18)?;
    if !document_number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TreasuryError::at(
            format!("{path}/numero_documento"),
            "deve essere un numero",
        ));
    }
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

/// OPI amounts: digits, a dot and two decimals, 15 digits at most.
fn amount(t: &str) -> Option<Cents> {
    crate::two_decimals(t).filter(|_| t.len() <= 16)
}

/// Who writes a journal for whom: what the OPI header needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalHeader {
    /// The treasury bank's ABI code (5 digits).
    pub bank_abi: String,
    pub created_at: chrono::NaiveDateTime,
    /// The Ente's IPA office code (6 characters, A-Z and digits).
    pub ipa_office_code: String,
    pub ente_name: String,
    /// The Ente's SIOPE code (9 to 15 digits).
    pub siope_ente_code: String,
    pub ente: String,
    /// `A2A-` and 8 digits.
    pub ente_channel: String,
    pub bank_channel: String,
    pub bank_ente_code: String,
    /// `GDC-<8 digits><10-50 letters or digits>#<3 digits>#<3 digits>`.
    pub journal_id: String,
    pub year: i32,
    pub reference_date: NaiveDate,
    pub account: String,
}

/// Writes a one-page journal of one account's movements, as a treasury
/// bank does (the simulator's treasury uses it). Each movement's number is
/// its `document_number`; times and dates as the schema wants them. The
/// schema requires a signature: an XML-DSig skeleton closes the document.
pub fn write(h: &JournalHeader, movements: &[TreasuryMovement]) -> String {
    let mut w = incasso_xml::Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .open("flusso_giornale_di_cassa")
        .open("testata_messaggio")
        .leaf("codice_ABI_BT", &h.bank_abi)
        .leaf(
            "data_ora_creazione_flusso",
            &h.created_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        )
        .leaf("codice_ente", &h.ipa_office_code)
        .leaf("descrizione_ente", &h.ente_name)
        .leaf("codice_istat_ente", &h.siope_ente_code)
        .leaf("codice_fiscale_ente", &h.ente)
        .leaf("codice_tramite_ente", &h.ente_channel)
        .leaf("codice_tramite_BT", &h.bank_channel)
        .leaf("codice_ente_BT", &h.bank_ente_code)
        .close("testata_messaggio")
        .leaf("identificativo_flusso_BT", &h.journal_id)
        .leaf("pagina", "1")
        .leaf("pagine_totali", "1")
        .leaf("esercizio", &h.year.to_string())
        .leaf("data_riferimento_GdC", &h.reference_date.to_string())
        .open("informazioni_conto_evidenza")
        .leaf("conto_evidenza", &h.account);
    for (n, m) in movements.iter().enumerate() {
        w.open("movimento_conto_evidenza")
            .leaf("identificativo_flusso", &format!("{}{:06}", h.year, n + 1))
            .leaf("numero_movimento", movement_number(&m.document_number))
            .leaf(
                "tipo_movimento",
                match m.direction {
                    Direction::Income => "ENTRATA",
                    Direction::Outgoing => "USCITA",
                },
            )
            .leaf("tipo_documento", m.document.as_str())
            .leaf("tipo_operazione", m.operation.as_str())
            .leaf("numero_documento", &m.document_number)
            .leaf("progressivo_documento", "0")
            .leaf("importo", &m.amount.to_decimal())
            .leaf("data_movimento", &m.booking_date.to_string())
            .leaf("data_movimento_siope", &m.booking_date.to_string())
            .leaf_opt(
                "data_valuta_ente",
                m.value_date.map(|d| d.to_string()).as_deref(),
            )
            .leaf("tipo_esecuzione", "SEPA CREDIT TRANSFER")
            .leaf_opt("codice_riferimento_operazione", m.trn.as_deref())
            .leaf_opt("end_to_end_id", m.end_to_end_id.as_deref())
            .leaf("assoggettamento_bollo", "ESENTE BOLLO")
            .open("cliente")
            .leaf(
                "anagrafica_cliente",
                m.payer.as_deref().unwrap_or("VERSANTE NON INDICATO"),
            )
            .close("cliente")
            .leaf(
                "causale",
                if m.causale.trim().is_empty() {
                    "-"
                } else {
                    m.causale.as_str()
                },
            )
            .close("movimento_conto_evidenza");
    }
    w.close("informazioni_conto_evidenza");
    w.raw("<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>")
        .raw("<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"/>")
        .raw("<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>")
        .raw("<ds:Reference URI=\"\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>")
        .raw("<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>")
        .raw("<ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>");
    w.close("flusso_giornale_di_cassa");
    w.out
}

/// A document number as `numero_movimento` (an integer: no leading zeros).
fn movement_number(document_number: &str) -> &str {
    match document_number.trim_start_matches('0') {
        "" => "0",
        n => n,
    }
}
