//! Regularization proposals as OPI *flusso ordinativi* 1.7.1: one
//! `reversale` per sospeso, `tipo_riscossione` REGOLARIZZAZIONE, quoting the
//! sospeso's number, its amount split by budget chapter (`bilancio`), and
//! by SIOPE code (`classificazione`) where the accertamenti carry one.
//!
//! The schema checks no sums; this writer does, and refuses a proposal
//! whose parts do not add up to the sospeso. The document ends with an
//! XML-DSig skeleton, because the schema requires a signature: the Ente's
//! signing tool replaces it before the flow goes to the treasury (through
//! SIOPE+). The accertamenti themselves, which OPI has no element for, go
//! in the Ente's free data of the versante.

use chrono::{NaiveDate, NaiveDateTime};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_xml::Writer;
use std::collections::BTreeMap;

/// Who sends the flow to whom: the Ente's treasury service settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderHeader {
    /// The treasury bank's ABI code (5 digits).
    pub bank_abi: String,
    /// This flow's id (`[a-zA-Z0-9#_\-.]{1,70}`).
    pub flow_id: String,
    pub created_at: NaiveDateTime,
    /// The Ente's IPA office code (6 characters).
    pub ipa_office_code: String,
    pub ente_name: String,
    /// The Ente's SIOPE code (9 to 15 digits).
    pub siope_ente_code: String,
    pub ente_fiscal_code: String,
    /// `A2A-` and 8 digits, for the Ente's and the bank's intermediaries.
    pub ente_channel: String,
    pub bank_channel: String,
    /// The bank's own code for the Ente.
    pub bank_ente_code: String,
    pub year: i32,
}

/// One accertamento's part of a sospeso.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetPart {
    pub accertamento: AccertamentoRef,
    /// The budget chapter (capitolo), digits.
    pub chapter: String,
    pub article: Option<String>,
    pub description: String,
    /// The SIOPE code (`codice_cge`, 4 to 10 digits), when known.
    pub siope_code: Option<String>,
    pub amount: Cents,
}

/// The regularization of one sospeso.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regularization {
    pub number: u32,
    pub date: NaiveDate,
    pub sospeso_number: String,
    pub sospeso_amount: Cents,
    pub account: Option<String>,
    pub causale: String,
    pub parts: Vec<BudgetPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReversaleError {
    #[error("la reversale {number}: le quote sommano {parts} ma il sospeso è di {sospeso}")]
    Sum {
        number: u32,
        parts: String,
        sospeso: String,
    },
    #[error("la reversale {number}: {message}")]
    Invalid { number: u32, message: String },
    #[error("intestazione del flusso: {0}")]
    Header(String),
}

impl ReversaleError {
    pub const CODE: &'static str = "REVERSALE_INVALID";
}

/// A budget line: chapter, article, and the year of a residuo (none for
/// this year's competenza).
type BudgetLineKey = (String, Option<String>, Option<i32>);

/// OPI's budget lines per reversale.
const MAX_BILANCI: usize = 10;

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Checks a header against the schema's patterns, before anything is
/// written with it.
pub fn check_header(h: &OrderHeader) -> Result<(), ReversaleError> {
    let bad = |what: &str| Err(ReversaleError::Header(what.to_string()));
    if !digits(&h.bank_abi, 5, 5) {
        return bad("il codice ABI della tesoreria deve essere di 5 cifre");
    }
    if h.flow_id.is_empty()
        || h.flow_id.len() > 70
        || !h
            .flow_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"#_-.".contains(&b))
    {
        return bad("identificativo del flusso non valido");
    }
    if h.ipa_office_code.len() != 6
        || !h
            .ipa_office_code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return bad("il codice IPA dell'ufficio deve essere di 6 caratteri (A-Z, 0-9)");
    }
    if !digits(&h.siope_ente_code, 9, 15) {
        return bad("il codice SIOPE dell'ente deve essere di 9-15 cifre");
    }
    for c in [&h.ente_channel, &h.bank_channel] {
        if !(c.len() == 12 && c.starts_with("A2A-") && digits(&c[4..], 8, 8)) {
            return bad("i codici tramite devono essere A2A- seguito da 8 cifre");
        }
    }
    if h.ente_name.trim().is_empty() || h.bank_ente_code.trim().is_empty() {
        return bad("mancano la descrizione dell'ente o il suo codice presso la tesoreria");
    }
    Ok(())
}

/// Writes the flow of reversali.
pub fn write(header: &OrderHeader, orders: &[Regularization]) -> Result<String, ReversaleError> {
    check_header(header)?;
    let mut w = Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .open("flusso_ordinativi")
        .open("testata_flusso")
        .leaf("codice_ABI_BT", &header.bank_abi)
        .leaf("identificativo_flusso", &header.flow_id)
        .leaf(
            "data_ora_creazione_flusso",
            &header.created_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        )
        .leaf("codice_ente", &header.ipa_office_code)
        .leaf("descrizione_ente", &header.ente_name)
        .leaf("codice_istat_ente", &header.siope_ente_code)
        .leaf("codice_fiscale_ente", &header.ente_fiscal_code)
        .leaf("codice_tramite_ente", &header.ente_channel)
        .leaf("codice_tramite_BT", &header.bank_channel)
        .leaf("codice_ente_BT", &header.bank_ente_code)
        .close("testata_flusso")
        .leaf("esercizio", &header.year.to_string());
    let mut numbers = std::collections::HashSet::new();
    for order in orders {
        if !numbers.insert(order.number) {
            return Err(ReversaleError::Invalid {
                number: order.number,
                message: "numero ripetuto nel flusso".into(),
            });
        }
        reversale(&mut w, header.year, order)?;
    }
    signature_placeholder(&mut w, &header.flow_id);
    w.close("flusso_ordinativi");
    Ok(w.out)
}

fn reversale(w: &mut Writer, year: i32, r: &Regularization) -> Result<(), ReversaleError> {
    let invalid = |message: String| ReversaleError::Invalid {
        number: r.number,
        message,
    };
    if !(1..=9_999_999).contains(&r.number) {
        return Err(invalid("il numero deve essere da 1 a 9999999".into()));
    }
    let sospeso = r.sospeso_number.trim_start_matches('0');
    if !digits(sospeso, 1, 18) {
        return Err(invalid(format!(
            "numero di sospeso '{}' non valido",
            r.sospeso_number
        )));
    }
    if r.sospeso_amount.0 <= 0 {
        return Err(invalid("il sospeso deve avere un importo positivo".into()));
    }
    if let Some(p) = r.parts.iter().find(|p| p.amount.0 < 0) {
        return Err(invalid(format!(
            "la quota dell'accertamento {}/{} è negativa",
            p.accertamento.year, p.accertamento.code
        )));
    }
    let parts: Vec<&BudgetPart> = r.parts.iter().filter(|p| p.amount.0 > 0).collect();
    let sum: i64 = parts.iter().map(|p| p.amount.0).sum();
    if sum != r.sospeso_amount.0 {
        return Err(ReversaleError::Sum {
            number: r.number,
            parts: Cents(sum).to_italian(),
            sospeso: r.sospeso_amount.to_italian(),
        });
    }
    // Budget lines: by chapter, article and whether the accertamento is of
    // this year (competenza) or an earlier one (residuo).
    let mut bilanci: BTreeMap<BudgetLineKey, (String, i64)> = BTreeMap::new();
    for p in &parts {
        if !digits(&p.chapter, 1, 7) || p.chapter.bytes().all(|b| b == b'0') {
            return Err(invalid(format!(
                "il capitolo '{}' dell'accertamento {}/{} non è un numero da 1 a 9999999",
                p.chapter, p.accertamento.year, p.accertamento.code
            )));
        }
        if let Some(a) = &p.article
            && !digits(a, 1, 3)
        {
            return Err(invalid(format!("articolo '{a}' non valido (1-3 cifre)")));
        }
        let residuo = (p.accertamento.year < year).then_some(p.accertamento.year);
        let entry = bilanci
            .entry((p.chapter.clone(), p.article.clone(), residuo))
            .or_insert_with(|| (p.description.clone(), 0));
        entry.1 += p.amount.0;
    }
    if bilanci.len() > MAX_BILANCI {
        return Err(invalid(format!(
            "tocca {} capitoli di bilancio, ma una reversale ne ammette al massimo {MAX_BILANCI}",
            bilanci.len()
        )));
    }
    w.open("reversale")
        .leaf("tipo_operazione", "INSERIMENTO")
        .leaf("numero_reversale", &r.number.to_string())
        .leaf("data_reversale", &r.date.to_string())
        .leaf("importo_reversale", &r.sospeso_amount.to_decimal())
        .leaf_opt("conto_evidenza", r.account.as_deref());
    for ((chapter, article, residuo), (description, cents)) in &bilanci {
        w.open("bilancio")
            .leaf("codifica_bilancio", chapter.trim_start_matches('0'))
            .leaf_opt("descrizione_codifica", Some(description.as_str()))
            .leaf(
                "gestione",
                if residuo.is_some() {
                    "RESIDUO"
                } else {
                    "COMPETENZA"
                },
            )
            .leaf_opt("anno_residuo", residuo.map(|y| y.to_string()).as_deref())
            .leaf_opt("numero_articolo", article.as_deref())
            .leaf("importo_bilancio", &Cents(*cents).to_decimal())
            .close("bilancio");
    }
    w.open("informazioni_versante")
        .leaf("progressivo_versante", "1")
        .leaf("importo_versante", &r.sospeso_amount.to_decimal())
        .leaf("tipo_riscossione", "REGOLARIZZAZIONE");
    // SIOPE classification only when every part has its code: a partial
    // one would misstate the split.
    if parts.iter().all(|p| p.siope_code.is_some()) {
        let mut by_code: BTreeMap<&str, i64> = BTreeMap::new();
        for p in &parts {
            let code = p.siope_code.as_deref().unwrap_or_default();
            if !digits(code, 4, 10) {
                return Err(invalid(format!(
                    "codice SIOPE '{code}' non valido (4-10 cifre)"
                )));
            }
            *by_code.entry(code).or_insert(0) += p.amount.0;
        }
        for (code, cents) in by_code {
            w.open("classificazione")
                .leaf("codice_cge", code)
                .leaf("importo", &Cents(cents).to_decimal())
                .open("classificazione_dati_siope_entrate")
                .leaf("tipo_debito_siope_nc", "NON_COMMERCIALE")
                .close("classificazione_dati_siope_entrate")
                .close("classificazione");
        }
    }
    let causale = if r.causale.trim().is_empty() {
        format!("REGOLARIZZAZIONE SOSPESO {sospeso}")
    } else {
        r.causale.clone()
    };
    w.open("bollo")
        .leaf("assoggettamento_bollo", "ESENTE BOLLO")
        .close("bollo")
        .open("versante")
        .leaf("anagrafica_versante", "VERSANTI DIVERSI PAGOPA")
        .close("versante")
        .leaf("causale", &causale)
        .open("sospeso")
        .leaf("numero_provvisorio", sospeso)
        .leaf("importo_provvisorio", &r.sospeso_amount.to_decimal())
        .close("sospeso")
        .open("dati_a_disposizione_ente_versante");
    for p in &parts {
        w.open("accertamento")
            .leaf("anno", &p.accertamento.year.to_string())
            .leaf("codice", &p.accertamento.code)
            .leaf("importo", &p.amount.to_decimal())
            .close("accertamento");
    }
    w.close("dati_a_disposizione_ente_versante")
        .close("informazioni_versante")
        .close("reversale");
    Ok(())
}

/// The schema's required signature, as a skeleton for the Ente's signing
/// tool to replace.
fn signature_placeholder(w: &mut Writer, flow_id: &str) {
    w.raw(&format!(
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" Id=\"firma-da-apporre-{}\">",
        incasso_xml::escape(flow_id)
    ))
    .raw("<ds:SignedInfo>")
    .raw("<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"/>")
    .raw("<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>")
    .raw("<ds:Reference URI=\"\"><ds:Transforms>")
    .raw("<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>")
    .raw("</ds:Transforms>")
    .raw("<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>")
    .raw("<ds:DigestValue>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</ds:DigestValue>")
    .raw("</ds:Reference></ds:SignedInfo>")
    .raw("<ds:SignatureValue>AAAA</ds:SignatureValue>")
    .raw("</ds:Signature>");
}
