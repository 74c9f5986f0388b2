//! Reporting flows (`FlussoRiversamento`, versions 1.0.4 and 1.0.5) read
//! with the schema's own rules: the elements in the schema's order and
//! namespace, every pattern, length and range. The two versions differ only
//! in the outcome codes (1.0.4 has 3, revoked; 1.0.5 has 4 and 8, stand-in),
//! so one reader takes the union and says which codes it met.
//!
//! A flow that breaks a rule is refused whole, with the element's path:
//! nothing of it is stored. Totals that do not add up are not schema errors;
//! [`ReportingFlow::inconsistencies`] reports them as anomalies.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use incasso_core::Cents;
use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
use incasso_xml::{Element, Limits};

pub const NAMESPACE: &str = "http://www.digitpa.gov.it/schemas/2011/Pagamenti/";

/// A flow refused, with where and why (in Italian, for the clerk).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flusso di rendicontazione non valido: {location}: {message}")]
pub struct FdrError {
    /// The element's path, e.g. `datiSingoliPagamenti[3]/singoloImportoPagato`.
    pub location: String,
    pub message: String,
}

impl FdrError {
    /// The stable code programs read.
    pub const CODE: &'static str = "FDR_INVALID";

    fn at(location: impl Into<String>, message: impl Into<String>) -> FdrError {
        FdrError {
            location: location.into(),
            message: message.into(),
        }
    }
}

/// A big PSP's daily flow to a big Ente holds tens of thousands of lines.
pub const LIMITS: Limits = Limits {
    max_bytes: 64 * 1024 * 1024,
    max_depth: 8,
    max_elements: 2_000_000,
};

/// Reads a `FlussoRiversamento` document.
pub fn parse(bytes: &[u8]) -> Result<ReportingFlow, FdrError> {
    let root = incasso_xml::parse(bytes, LIMITS).map_err(|e| FdrError::at("/", e.to_string()))?;
    if root.name != "FlussoRiversamento" || root.namespace.as_deref() != Some(NAMESPACE) {
        return Err(FdrError::at(
            "/",
            format!(
                "l'elemento radice è {} invece di FlussoRiversamento nel namespace {NAMESPACE}",
                root.name
            ),
        ));
    }
    let mut seq = Seq::new(&root, "FlussoRiversamento");
    let version = seq.text("versioneOggetto", 1, 16)?;
    if version != "1.0" && version != "1.1" {
        return Err(seq.error_at("versioneOggetto", "versione ammessa: 1.0 o 1.1"));
    }
    let flow_id = seq.text("identificativoFlusso", 1, 35)?;
    if !flow_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(seq.error_at(
            "identificativoFlusso",
            "ammessi solo lettere, cifre, '-' e '_'",
        ));
    }
    let flow_date_time = {
        let t = seq.text("dataOraFlusso", 1, 64)?;
        date_time(&t).ok_or_else(|| seq.error_at("dataOraFlusso", "data e ora non valide"))?
    };
    let settlement_ref = seq.text("identificativoUnivocoRegolamento", 1, 35)?;
    let settlement_date = {
        let t = seq.text("dataRegolamento", 1, 32)?;
        date(&t).ok_or_else(|| seq.error_at("dataRegolamento", "data non valida"))?
    };
    let sender = seq.required("istitutoMittente")?;
    let (psp_id_kind, psp_id, psp_name) = {
        let mut s = Seq::new(sender, "FlussoRiversamento/istitutoMittente");
        let id = s.required("identificativoUnivocoMittente")?;
        let (kind, code) = party_id(id, &s.path_of("identificativoUnivocoMittente"), false)?;
        let name = s.optional_text("denominazioneMittente", 3, 70)?;
        s.end()?;
        (kind, code, name)
    };
    let bic = seq.optional_text("codiceBicBancaDiRiversamento", 1, 35)?;
    let receiver = seq.required("istitutoRicevente")?;
    let (ente, ente_name) = {
        let mut s = Seq::new(receiver, "FlussoRiversamento/istitutoRicevente");
        let id = s.required("identificativoUnivocoRicevente")?;
        let (_, code) = party_id(id, &s.path_of("identificativoUnivocoRicevente"), true)?;
        let name = s.optional_text("denominazioneRicevente", 1, 140)?;
        s.end()?;
        (code, name)
    };
    let declared_count = {
        let t = seq.text("numeroTotalePagamenti", 1, 15)?;
        t.parse::<u64>()
            .ok()
            .filter(|n| *n >= 1 && t.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                seq.error_at("numeroTotalePagamenti", "deve essere un intero da 1 in su")
            })?
    };
    let declared_total = {
        let t = seq.text("importoTotalePagamenti", 1, 16)?;
        amount(&t, 0).ok_or_else(|| {
            seq.error_at(
                "importoTotalePagamenti",
                "importo non valido (cifre, punto e due decimali, al massimo 999999999.99)",
            )
        })?
    };
    let lines = seq.many("datiSingoliPagamenti");
    if lines.is_empty() {
        return Err(seq.error_at("datiSingoliPagamenti", "manca: serve almeno un pagamento"));
    }
    let mut payments = Vec::with_capacity(lines.len());
    for (n, line) in lines.iter().enumerate() {
        payments.push(payment(
            line,
            &format!("FlussoRiversamento/datiSingoliPagamenti[{}]", n + 1),
        )?);
    }
    seq.end()?;
    Ok(ReportingFlow {
        flow_id,
        flow_date_time,
        settlement_ref,
        settlement_date,
        psp_id,
        psp_id_kind,
        psp_name,
        bic,
        ente,
        ente_name,
        declared_count,
        declared_total,
        payments,
        revision: None,
    })
}

fn payment(el: &Element, path: &str) -> Result<FlowPayment, FdrError> {
    let mut s = Seq::new(el, path);
    let iuv = s.text("identificativoUnivocoVersamento", 1, 35)?;
    let iur = s.text("identificativoUnivocoRiscossione", 1, 35)?;
    let transfer_index = match s.optional_text("indiceDatiSingoloPagamento", 1, 2)? {
        None => None,
        Some(t) => Some(
            t.parse::<u8>()
                .ok()
                .filter(|i| (1..=5).contains(i))
                .ok_or_else(|| s.error_at("indiceDatiSingoloPagamento", "deve essere da 1 a 5"))?,
        ),
    };
    let amount = {
        let t = s.text("singoloImportoPagato", 1, 16)?;
        self::amount(&t, 1).ok_or_else(|| {
            s.error_at(
                "singoloImportoPagato",
                "importo non valido (da 0.01 a 999999999.99, con punto e due decimali)",
            )
        })?
    };
    let outcome = {
        let t = s.text("codiceEsitoSingoloPagamento", 1, 1)?;
        FlowOutcome::from_code(&t).ok_or_else(|| {
            s.error_at(
                "codiceEsitoSingoloPagamento",
                format!("esito '{t}' sconosciuto (ammessi 0, 3, 4, 8, 9)"),
            )
        })?
    };
    let outcome_date = {
        let t = s.text("dataEsitoSingoloPagamento", 1, 32)?;
        date(&t).ok_or_else(|| s.error_at("dataEsitoSingoloPagamento", "data non valida"))?
    };
    s.end()?;
    Ok(FlowPayment {
        iuv,
        iur,
        transfer_index,
        amount,
        outcome,
        outcome_date,
    })
}

/// `ctIdentificativoUnivoco`: the kind (G, A or B; G only for the
/// receiving Ente) and the code.
fn party_id(
    el: &Element,
    path: &str,
    legal_person_only: bool,
) -> Result<(PartyIdKind, String), FdrError> {
    let mut s = Seq::new(el, path);
    let kind_text = s.text("tipoIdentificativoUnivoco", 1, 1)?;
    let kind = PartyIdKind::from_code(&kind_text)
        .filter(|k| !legal_person_only || *k == PartyIdKind::LegalPerson)
        .ok_or_else(|| {
            s.error_at(
                "tipoIdentificativoUnivoco",
                if legal_person_only {
                    "ammesso solo G"
                } else {
                    "ammessi G, A o B"
                },
            )
        })?;
    let code = s.text("codiceIdentificativoUnivoco", 1, 35)?;
    s.end()?;
    Ok((kind, code))
}

/// The children of an element, read in the schema's order.
struct Seq<'a> {
    children: &'a [Element],
    path: String,
    next: usize,
}

impl<'a> Seq<'a> {
    fn new(el: &'a Element, path: &str) -> Seq<'a> {
        Seq {
            children: &el.children,
            path: path.to_string(),
            next: 0,
        }
    }

    fn path_of(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    fn error_at(&self, name: &str, message: impl Into<String>) -> FdrError {
        FdrError::at(self.path_of(name), message)
    }

    fn peek_is(&self, name: &str) -> bool {
        self.children
            .get(self.next)
            .is_some_and(|c| c.name == name && c.namespace.as_deref() == Some(NAMESPACE))
    }

    fn required(&mut self, name: &str) -> Result<&'a Element, FdrError> {
        match self.optional(name) {
            Some(el) => Ok(el),
            None => Err(self.error_at(
                name,
                match self.children.get(self.next) {
                    Some(other) => format!("manca (trovato invece {})", other.name),
                    None => "manca".to_string(),
                },
            )),
        }
    }

    fn optional(&mut self, name: &str) -> Option<&'a Element> {
        if self.peek_is(name) {
            self.next += 1;
            Some(&self.children[self.next - 1])
        } else {
            None
        }
    }

    fn many(&mut self, name: &str) -> Vec<&'a Element> {
        let mut out = Vec::new();
        while let Some(el) = self.optional(name) {
            out.push(el);
        }
        out
    }

    /// A simple element's text, its length in characters checked.
    fn text(&mut self, name: &str, min: usize, max: usize) -> Result<String, FdrError> {
        let el = self.required(name)?;
        self.leaf_text(el, name, min, max)
    }

    fn optional_text(
        &mut self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<String>, FdrError> {
        match self.optional(name) {
            Some(el) => self.leaf_text(el, name, min, max).map(Some),
            None => Ok(None),
        }
    }

    fn leaf_text(
        &self,
        el: &Element,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<String, FdrError> {
        if !el.children.is_empty() {
            return Err(self.error_at(name, "deve contenere solo testo"));
        }
        let t = el.text.trim();
        let len = t.chars().count();
        if len < min || len > max {
            return Err(self.error_at(
                name,
                format!("lunghezza {len} fuori dai limiti ({min}-{max})"),
            ));
        }
        Ok(t.to_string())
    }

    /// Nothing left that the schema does not allow here.
    fn end(&self) -> Result<(), FdrError> {
        match self.children.get(self.next) {
            None => Ok(()),
            Some(el) => Err(FdrError::at(
                self.path_of(&el.name),
                "elemento inatteso in questa posizione",
            )),
        }
    }
}

/// `\d+\.\d{2}`, at most 999999999.99 and at least `min_cents`.
fn amount(t: &str, min_cents: i64) -> Option<Cents> {
    let cents = crate::two_decimals(t)?;
    (min_cents..=99_999_999_999)
        .contains(&cents.0)
        .then_some(cents)
}

/// `xs:date`, with an optional time zone (ignored: a date is a day).
fn date(t: &str) -> Option<NaiveDate> {
    let day = t.get(..10)?;
    let rest = &t[10..];
    if !(rest.is_empty() || rest == "Z" || is_offset(rest)) {
        return None;
    }
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

fn is_offset(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b':'
        && b[4..6].iter().all(u8::is_ascii_digit)
}

/// `xs:dateTime`. Without a zone it is Italian time, as the Node writes it.
fn date_time(t: &str) -> Option<DateTime<Utc>> {
    if let Ok(with_zone) = DateTime::parse_from_rfc3339(t) {
        return Some(with_zone.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(incasso_core::time::from_rome(naive))
}

/// Writes a flow as a `FlussoRiversamento` document (the simulator's PSPs
/// publish their flows with it). Times are written in Italian time, as the
/// Node does.
pub fn write(flow: &ReportingFlow) -> String {
    let mut w = incasso_xml::Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .raw(&format!("<FlussoRiversamento xmlns=\"{NAMESPACE}\">"))
        .leaf("versioneOggetto", "1.0")
        .leaf("identificativoFlusso", &flow.flow_id)
        .leaf(
            "dataOraFlusso",
            &incasso_core::time::to_rome(flow.flow_date_time)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
        )
        .leaf("identificativoUnivocoRegolamento", &flow.settlement_ref)
        .leaf("dataRegolamento", &flow.settlement_date.to_string())
        .open("istitutoMittente")
        .open("identificativoUnivocoMittente")
        .leaf("tipoIdentificativoUnivoco", flow.psp_id_kind.code())
        .leaf("codiceIdentificativoUnivoco", &flow.psp_id)
        .close("identificativoUnivocoMittente")
        .leaf_opt("denominazioneMittente", flow.psp_name.as_deref())
        .close("istitutoMittente")
        .leaf_opt("codiceBicBancaDiRiversamento", flow.bic.as_deref())
        .open("istitutoRicevente")
        .open("identificativoUnivocoRicevente")
        .leaf("tipoIdentificativoUnivoco", "G")
        .leaf("codiceIdentificativoUnivoco", &flow.ente)
        .close("identificativoUnivocoRicevente")
        .leaf_opt("denominazioneRicevente", flow.ente_name.as_deref())
        .close("istitutoRicevente")
        .leaf("numeroTotalePagamenti", &flow.declared_count.to_string())
        .leaf("importoTotalePagamenti", &flow.declared_total.to_decimal());
    for p in &flow.payments {
        w.open("datiSingoliPagamenti")
            .leaf("identificativoUnivocoVersamento", &p.iuv)
            .leaf("identificativoUnivocoRiscossione", &p.iur)
            .leaf_opt(
                "indiceDatiSingoloPagamento",
                p.transfer_index.map(|i| i.to_string()).as_deref(),
            )
            .leaf("singoloImportoPagato", &p.amount.to_decimal())
            .leaf("codiceEsitoSingoloPagamento", &p.outcome.code().to_string())
            .leaf("dataEsitoSingoloPagamento", &p.outcome_date.to_string())
            .close("datiSingoliPagamenti");
    }
    w.close("FlussoRiversamento");
    w.out
}
