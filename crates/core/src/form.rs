//! The form of a spontaneous payment, defined as data in the back office:
//! the fields a citizen fills in, the amount (fixed, chosen from a table,
//! or typed within bounds) and the causale built from the answers.
//!
//! Two validations live here, so that the portal, the back office and any
//! later door apply the same rules: [`FormDef::validate`] (is the
//! definition sane: unique names, bounds in order, patterns that compile,
//! at most [`MAX_FIELDS`] fields) and [`FormDef::check`] (is a citizen's
//! submission acceptable). Both report *every* problem, each under the name
//! of its field with an Italian reason, and never panic, whatever the input.
//!
//! Every form also asks who pays (the debtor: fiscal code and name, and an
//! optional e-mail address for the receipt). Those fields are not part of
//! the definition: their names ([`RESERVED`]) are the portal's own.
//!
//! Patterns are regular expressions of the `regex` crate, which matches in
//! time linear in the input (no backtracking): a pattern an operator types
//! cannot be made to hang a request, and its compiled size is capped.

use crate::codes::check_fiscal_code;
use crate::error::{Checker, FieldError, Invalid, codes};
use crate::money::Cents;
use crate::text::is_plausible_email;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The most fields a form may have (besides the debtor's): more is a form
/// nobody completes on a phone.
pub const MAX_FIELDS: usize = 20;
/// The most entries of a choice list, or of an amount table.
pub const MAX_CHOICES: usize = 30;
/// The longest answer a text field takes, whatever its definition says.
pub const MAX_VALUE_LEN: u32 = 500;
/// The longest causale pagoPA carries (`remittanceInformation`).
pub const MAX_CAUSALE: usize = 140;
/// The longest pattern an operator may type.
pub const MAX_PATTERN: usize = 200;
/// A compiled pattern's size limit (bytes of the automaton).
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;

/// The debtor's fiscal code (every form asks it).
pub const DEBTOR_FISCAL_CODE: &str = "debtor_fiscal_code";
/// The debtor's name and surname, or a company's name.
pub const DEBTOR_NAME: &str = "debtor_name";
/// Where the receipt goes (optional).
pub const EMAIL: &str = "email";
/// The amount (typed, or the index of the chosen table row).
pub const AMOUNT: &str = "amount";
/// Names a defined field may not take: the portal's own fields.
pub const RESERVED: &[&str] = &[
    DEBTOR_FISCAL_CODE,
    DEBTOR_NAME,
    EMAIL,
    AMOUNT,
    "csrf",
    "token",
];

/// What a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    /// Digits, with an optional decimal part (`12`, `3,5`).
    Number,
    /// A day: `dd/mm/yyyy`, or `yyyy-mm-dd` as a browser's date input sends.
    Date,
    Email,
    /// An Italian fiscal code, personal (16) or numeric (11).
    FiscalCode,
    /// One of the field's `choices`.
    Choice,
}

impl FieldKind {
    pub const ALL: [FieldKind; 6] = [
        FieldKind::Text,
        FieldKind::Number,
        FieldKind::Date,
        FieldKind::Email,
        FieldKind::FiscalCode,
        FieldKind::Choice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Email => "email",
            FieldKind::FiscalCode => "fiscal_code",
            FieldKind::Choice => "choice",
        }
    }

    pub fn parse(s: &str) -> Option<FieldKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How the back office names it.
    pub fn label(self) -> &'static str {
        match self {
            FieldKind::Text => "Testo",
            FieldKind::Number => "Numero",
            FieldKind::Date => "Data",
            FieldKind::Email => "E-mail",
            FieldKind::FiscalCode => "Codice fiscale",
            FieldKind::Choice => "Scelta da elenco",
        }
    }
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The identifier: lower-case letters, digits and `_`, starting with a
    /// letter; the causale names it as `{name}`.
    pub name: String,
    pub kind: FieldKind,
    pub label: String,
    /// A line under the field that says what to write.
    #[serde(default)]
    pub help: String,
    #[serde(default)]
    pub required: bool,
    /// A regular expression the whole answer must match (text and number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The options of a choice field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
}

/// One row of an amount table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmountChoice {
    pub label: String,
    pub cents: Cents,
}

/// How much is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    /// Always this amount.
    Fixed(Cents),
    /// The citizen chooses one row.
    Table(Vec<AmountChoice>),
    /// The citizen types it, within the bounds (both included).
    Range { min: Cents, max: Cents },
}

impl Amount {
    pub fn mode(&self) -> &'static str {
        match self {
            Amount::Fixed(_) => "fixed",
            Amount::Table(_) => "table",
            Amount::Range { .. } => "range",
        }
    }
}

/// A spontaneous service's form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormDef {
    #[serde(default)]
    pub fields: Vec<Field>,
    pub amount: Amount,
    /// The payment's causale: text with `{field}` placeholders, filled
    /// with the answers (cut to [`MAX_CAUSALE`] characters).
    pub causale: String,
}

/// A citizen's answers as posted: field name => text. The debtor's fields
/// and the amount are under the [`RESERVED`] names.
pub type Answers = BTreeMap<String, String>;

/// An accepted submission, normalized (trimmed; fiscal codes upper-case;
/// dates as `dd/mm/yyyy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The defined fields' answers in the form's order (an unanswered
    /// optional field is left out).
    pub values: Vec<(String, String)>,
    pub debtor_fiscal_code: String,
    pub debtor_name: String,
    pub email: Option<String>,
    pub amount: Cents,
    /// The amount table's row chosen, if the amount is a table.
    pub amount_label: Option<String>,
    pub causale: String,
}

/// A field name of a definition: `^[a-z][a-z0-9_]{0,39}$`.
fn is_field_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// The `{name}` placeholders of a causale template, or the position of an
/// unbalanced brace.
fn placeholders(template: &str) -> Result<Vec<&str>, ()> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(());
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(())?;
        let name = &after[..close];
        if name.contains('{') {
            return Err(());
        }
        out.push(name);
        rest = &after[close + 1..];
    }
    Ok(out)
}

/// The pattern compiled to match a whole answer.
fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
}

/// Parses an amount as a person types it: `12`, `12,5`, `1.234,56`,
/// `12.50`, with or without `€`. More than two decimals is refused.
pub fn parse_amount(s: &str) -> Option<Cents> {
    let s: String = s
        .trim()
        .trim_start_matches('€')
        .trim_end_matches('€')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if s.starts_with('-') || s.starts_with('+') {
        return None;
    }
    let decimal = if s.contains(',') {
        // Italian: dots group thousands, the comma is the decimal mark.
        let (units, decimals) = s.split_once(',')?;
        if decimals.contains(',') || decimals.contains('.') {
            return None;
        }
        let groups: Vec<&str> = units.split('.').collect();
        if groups.len() > 1
            && (groups[0].is_empty()
                || groups[0].len() > 3
                || groups[1..].iter().any(|g| g.len() != 3))
        {
            return None;
        }
        format!("{}.{decimals}", groups.concat())
    } else {
        s
    };
    Cents::parse_decimal(&decimal)
}

/// Parses a day as `dd/mm/yyyy` (a person) or `yyyy-mm-dd` (a date input).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%d/%m/%Y")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        .ok()
        .filter(|d| (1900..=2200).contains(&chrono::Datelike::year(d)))
}

fn is_number(s: &str) -> bool {
    let (units, decimals) = match s.split_once([',', '.']) {
        Some((u, d)) => (u, Some(d)),
        None => (s, None),
    };
    !units.is_empty()
        && units.bytes().all(|b| b.is_ascii_digit())
        && decimals.is_none_or(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

impl FormDef {
    /// A minimal form: no fields of its own, a fixed amount, the service's
    /// name as causale. What a spontaneous service without a definition
    /// shows.
    pub fn minimal(causale: &str, amount: Cents) -> FormDef {
        FormDef {
            fields: Vec::new(),
            amount: Amount::Fixed(amount),
            causale: causale.chars().take(MAX_CAUSALE).collect(),
        }
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether the definition is one a citizen can fill in: every broken
    /// rule, under paths such as `fields[2].name`, `amount.min`, `causale`.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        if self.fields.len() > MAX_FIELDS {
            c.fail(
                "fields",
                codes::OUT_OF_RANGE,
                format!("al più {MAX_FIELDS} campi, trovati {}", self.fields.len()),
            );
        }
        let mut names = BTreeSet::new();
        for (i, f) in self.fields.iter().enumerate() {
            check_field(&mut c, &format!("fields[{i}]"), f);
            if is_field_name(&f.name) && !names.insert(f.name.as_str()) {
                c.fail(
                    format!("fields[{i}].name"),
                    "DUPLICATE_NAME",
                    format!("il nome '{}' è già usato da un altro campo", f.name),
                );
            }
        }
        check_amount(&mut c, &self.amount);
        if self.causale.trim().is_empty() {
            c.fail("causale", codes::REQUIRED, "campo obbligatorio");
        } else {
            c.max_len("causale", &self.causale, MAX_CAUSALE);
            match placeholders(&self.causale) {
                Err(()) => c.fail(
                    "causale",
                    codes::BAD_FORMAT,
                    "parentesi graffe non bilanciate: i campi si scrivono come {nome}",
                ),
                Ok(used) => {
                    for name in used {
                        if !names.contains(name) {
                            c.fail(
                                "causale",
                                "UNKNOWN_FIELD",
                                format!("{{{name}}} non è il nome di un campo del modulo"),
                            );
                        }
                    }
                }
            }
        }
        c.finish()
    }

    /// Checks a citizen's answers against the form; answers what to make
    /// the payment of, or every field that is wrong (named as the form
    /// names it) with the reason in Italian. Answers to names the form does
    /// not have are ignored.
    pub fn check(&self, answers: &Answers) -> Result<Accepted, Invalid> {
        let mut c = Checker::new();
        let get = |name: &str| answers.get(name).map(|v| v.trim()).unwrap_or("");
        let mut values = Vec::new();
        for f in &self.fields {
            if let Some(v) = check_answer(&mut c, f, get(&f.name)) {
                values.push((f.name.clone(), v));
            }
        }
        // Who pays.
        let fc = get(DEBTOR_FISCAL_CODE).to_uppercase();
        if fc.is_empty() {
            c.fail(DEBTOR_FISCAL_CODE, codes::REQUIRED, "campo obbligatorio");
        } else if let Err(e) = check_fiscal_code(&fc) {
            c.fail(
                DEBTOR_FISCAL_CODE,
                codes::BAD_FISCAL_CODE,
                format!("codice fiscale non valido: {e}"),
            );
        }
        let name = get(DEBTOR_NAME);
        c.text(DEBTOR_NAME, name, 70);
        let email = get(EMAIL);
        if !email.is_empty() && (!is_plausible_email(email) || chars(email) > 254) {
            c.fail(
                EMAIL,
                codes::BAD_FORMAT,
                "indirizzo e-mail non valido (esempio: nome@dominio.it)",
            );
        }
        let (amount, amount_label) = match check_amount_answer(&mut c, &self.amount, get(AMOUNT)) {
            Some((a, l)) => (a, l),
            None => (Cents::ZERO, None),
        };
        c.finish()?;
        let causale = self.causale_of(&values);
        Ok(Accepted {
            values,
            debtor_fiscal_code: fc,
            debtor_name: name.to_string(),
            email: (!email.is_empty()).then(|| email.to_string()),
            amount,
            amount_label,
            causale,
        })
    }

    /// The causale with each `{name}` replaced by its answer (empty when
    /// unanswered), spaces collapsed, cut to [`MAX_CAUSALE`] characters.
    pub fn causale_of(&self, values: &[(String, String)]) -> String {
        let mut out = String::new();
        let mut rest = self.causale.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = &after[..close];
                    if let Some((_, v)) = values.iter().find(|(n, _)| n == name) {
                        out.push_str(v);
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
        collapsed.chars().take(MAX_CAUSALE).collect()
    }
}

fn check_field(c: &mut Checker, at: &str, f: &Field) {
    if !is_field_name(&f.name) {
        c.fail(
            format!("{at}.name"),
            codes::BAD_FORMAT,
            "nome: da 1 a 40 caratteri tra lettere minuscole, cifre e '_', iniziando con una lettera",
        );
    } else if RESERVED.contains(&f.name.as_str()) {
        c.fail(
            format!("{at}.name"),
            "RESERVED_NAME",
            format!(
                "il nome '{}' è riservato (il modulo chiede già codice fiscale, nome ed e-mail del pagatore e l'importo)",
                f.name
            ),
        );
    }
    c.text(&format!("{at}.label"), &f.label, 100);
    c.max_len(&format!("{at}.help"), &f.help, 300);
    if let (Some(min), Some(max)) = (f.min_length, f.max_length)
        && min > max
    {
        c.fail(
            format!("{at}.min_length"),
            codes::OUT_OF_RANGE,
            "la lunghezza minima supera la massima",
        );
    }
    if f.max_length.is_some_and(|m| m == 0 || m > MAX_VALUE_LEN) {
        c.fail(
            format!("{at}.max_length"),
            codes::OUT_OF_RANGE,
            format!("lunghezza massima: da 1 a {MAX_VALUE_LEN}"),
        );
    }
    if f.min_length.is_some_and(|m| m > MAX_VALUE_LEN) {
        c.fail(
            format!("{at}.min_length"),
            codes::OUT_OF_RANGE,
            format!("lunghezza minima: al più {MAX_VALUE_LEN}"),
        );
    }
    if let Some(p) = &f.pattern {
        if !matches!(f.kind, FieldKind::Text | FieldKind::Number) {
            c.fail(
                format!("{at}.pattern"),
                "NOT_APPLICABLE",
                "un'espressione regolare si applica solo a campi di testo o numero",
            );
        } else if p.is_empty() || chars(p) > MAX_PATTERN {
            c.fail(
                format!("{at}.pattern"),
                codes::OUT_OF_RANGE,
                format!("espressione regolare: da 1 a {MAX_PATTERN} caratteri"),
            );
        } else if compile(p).is_err() {
            c.fail(
                format!("{at}.pattern"),
                codes::BAD_FORMAT,
                "espressione regolare non valida (o troppo complessa)",
            );
        }
    }
    if f.kind == FieldKind::Choice {
        if f.choices.is_empty() || f.choices.len() > MAX_CHOICES {
            c.fail(
                format!("{at}.choices"),
                codes::OUT_OF_RANGE,
                format!("un campo a scelta ha da 1 a {MAX_CHOICES} opzioni"),
            );
        }
        let mut seen = BTreeSet::new();
        for choice in &f.choices {
            if choice.trim().is_empty() || chars(choice) > 100 {
                c.fail(
                    format!("{at}.choices"),
                    codes::BAD_FORMAT,
                    "ogni opzione: da 1 a 100 caratteri",
                );
                break;
            }
            if !seen.insert(choice.trim()) {
                c.fail(
                    format!("{at}.choices"),
                    "DUPLICATE_CHOICE",
                    format!("l'opzione '{}' è ripetuta", choice.trim()),
                );
                break;
            }
        }
    } else if !f.choices.is_empty() {
        c.fail(
            format!("{at}.choices"),
            "NOT_APPLICABLE",
            "le opzioni si danno solo a un campo a scelta",
        );
    }
}

fn check_positive(c: &mut Checker, at: &str, amount: Cents) {
    if amount.0 <= 0 {
        c.fail(
            at,
            codes::AMOUNT_NOT_POSITIVE,
            "l'importo deve essere maggiore di zero",
        );
    } else if amount > Cents::MAX_AMOUNT {
        c.fail(
            at,
            codes::AMOUNT_OUT_OF_RANGE,
            format!("l'importo supera {} €", Cents::MAX_AMOUNT.to_italian()),
        );
    }
}

fn check_amount(c: &mut Checker, amount: &Amount) {
    match amount {
        Amount::Fixed(cents) => check_positive(c, "amount.fixed", *cents),
        Amount::Table(rows) => {
            if rows.is_empty() || rows.len() > MAX_CHOICES {
                c.fail(
                    "amount.table",
                    codes::OUT_OF_RANGE,
                    format!("la tabella degli importi ha da 1 a {MAX_CHOICES} righe"),
                );
            }
            let mut seen = BTreeSet::new();
            for (i, row) in rows.iter().enumerate() {
                c.text(&format!("amount.table[{i}].label"), &row.label, 100);
                if !row.label.trim().is_empty() && !seen.insert(row.label.trim()) {
                    c.fail(
                        format!("amount.table[{i}].label"),
                        "DUPLICATE_CHOICE",
                        format!("la voce '{}' è ripetuta", row.label.trim()),
                    );
                }
                check_positive(c, &format!("amount.table[{i}].cents"), row.cents);
            }
        }
        Amount::Range { min, max } => {
            check_positive(c, "amount.min", *min);
            check_positive(c, "amount.max", *max);
            if min > max {
                c.fail(
                    "amount.min",
                    codes::OUT_OF_RANGE,
                    "l'importo minimo supera il massimo",
                );
            }
        }
    }
}

/// One answer checked against its field; `Some(normalized)` when it is
/// answered and acceptable.
fn check_answer(c: &mut Checker, f: &Field, v: &str) -> Option<String> {
    let name = f.name.as_str();
    if v.is_empty() {
        if f.required {
            c.fail(name, codes::REQUIRED, "campo obbligatorio");
        }
        return None;
    }
    let n = chars(v) as u32;
    let max = f.max_length.unwrap_or(MAX_VALUE_LEN).min(MAX_VALUE_LEN);
    if n > max {
        c.fail(
            name,
            codes::TOO_LONG,
            format!("troppo lungo: massimo {max} caratteri, trovati {n}"),
        );
        return None;
    }
    if let Some(min) = f.min_length
        && n < min
    {
        c.fail(
            name,
            "TOO_SHORT",
            format!("troppo corto: almeno {min} caratteri, trovati {n}"),
        );
        return None;
    }
    if v.chars().any(char::is_control) {
        c.fail(name, codes::BAD_FORMAT, "contiene caratteri non ammessi");
        return None;
    }
    let value = match f.kind {
        FieldKind::Text => v.to_string(),
        FieldKind::Number => {
            if !is_number(v) {
                c.fail(
                    name,
                    codes::BAD_FORMAT,
                    "scrivere un numero, solo cifre (con la virgola per i decimali)",
                );
                return None;
            }
            v.to_string()
        }
        FieldKind::Date => match parse_date(v) {
            Some(d) => d.format("%d/%m/%Y").to_string(),
            None => {
                c.fail(
                    name,
                    codes::BAD_FORMAT,
                    "data non valida: scrivere gg/mm/aaaa (esempio 31/01/2026)",
                );
                return None;
            }
        },
        FieldKind::Email => {
            if !is_plausible_email(v) {
                c.fail(
                    name,
                    codes::BAD_FORMAT,
                    "indirizzo e-mail non valido (esempio: nome@dominio.it)",
                );
                return None;
            }
            v.to_string()
        }
        FieldKind::FiscalCode => {
            let up = v.to_uppercase();
            if let Err(e) = check_fiscal_code(&up) {
                c.fail(
                    name,
                    codes::BAD_FISCAL_CODE,
                    format!("codice fiscale non valido: {e}"),
                );
                return None;
            }
            up
        }
        FieldKind::Choice => match f.choices.iter().find(|o| o.trim() == v) {
            Some(o) => o.trim().to_string(),
            None => {
                c.fail(name, "NOT_A_CHOICE", "scegliere una delle opzioni proposte");
                return None;
            }
        },
    };
    if let Some(p) = &f.pattern {
        // A definition is validated before it is saved; a pattern that no
        // longer compiles refuses the answer rather than skipping the rule.
        let ok = compile(p).map(|re| re.is_match(&value)).unwrap_or(false);
        if !ok {
            c.fail(
                name,
                codes::BAD_FORMAT,
                "il formato non è quello richiesto (vedere l'aiuto del campo)",
            );
            return None;
        }
    }
    Some(value)
}

/// The amount answered, with the chosen row's label for a table.
fn check_amount_answer(
    c: &mut Checker,
    amount: &Amount,
    v: &str,
) -> Option<(Cents, Option<String>)> {
    match amount {
        Amount::Fixed(cents) => Some((*cents, None)),
        Amount::Table(rows) => {
            if v.is_empty() {
                c.fail(AMOUNT, codes::REQUIRED, "scegliere l'importo");
                return None;
            }
            match v.parse::<usize>().ok().and_then(|i| rows.get(i)) {
                Some(row) => Some((row.cents, Some(row.label.clone()))),
                None => {
                    c.fail(
                        AMOUNT,
                        "NOT_A_CHOICE",
                        "scegliere uno degli importi proposti",
                    );
                    None
                }
            }
        }
        Amount::Range { min, max } => {
            if v.is_empty() {
                c.fail(AMOUNT, codes::REQUIRED, "campo obbligatorio");
                return None;
            }
            match parse_amount(v) {
                None => {
                    c.fail(
                        AMOUNT,
                        codes::BAD_FORMAT,
                        "importo non valido: scrivere euro e centesimi, per esempio 12,50",
                    );
                    None
                }
                Some(a) if a < *min || a > *max => {
                    c.fail(
                        AMOUNT,
                        codes::AMOUNT_OUT_OF_RANGE,
                        format!(
                            "l'importo deve essere tra {} € e {} €",
                            min.to_italian(),
                            max.to_italian()
                        ),
                    );
                    None
                }
                Some(a) => Some((a, None)),
            }
        }
    }
}

/// The first error of each field (a field shows one message at a time).
pub fn first_per_field(errors: &[FieldError]) -> Vec<&FieldError> {
    let mut seen = BTreeSet::new();
    errors
        .iter()
        .filter(|e| seen.insert(e.field.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: FieldKind) -> Field {
        Field {
            name: name.into(),
            kind,
            label: format!("Etichetta {name}"),
            help: String::new(),
            required: true,
            pattern: None,
            choices: Vec::new(),
            min_length: None,
            max_length: None,
        }
    }

    fn def() -> FormDef {
        FormDef {
            fields: vec![
                Field {
                    pattern: Some("[A-Z]{2}[0-9]{4}".into()),
                    ..field("pratica", FieldKind::Text)
                },
                Field {
                    choices: vec!["Carta d'identità".into(), "Certificato".into()],
                    ..field("documento", FieldKind::Choice)
                },
                Field {
                    required: false,
                    ..field("data", FieldKind::Date)
                },
            ],
            amount: Amount::Range {
                min: Cents(100),
                max: Cents(10_000),
            },
            causale: "Pratica {pratica} - {documento}".into(),
        }
    }

    fn answers(pairs: &[(&str, &str)]) -> Answers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn good() -> Answers {
        answers(&[
            ("pratica", "AB1234"),
            ("documento", "Certificato"),
            (DEBTOR_FISCAL_CODE, "rssmra85t10a562s"),
            (DEBTOR_NAME, "Mario Rossi"),
            (AMOUNT, "12,50"),
        ])
    }

    fn fields_of(e: &Invalid) -> Vec<&str> {
        e.0.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn a_good_definition_passes_and_survives_json() {
        let d = def();
        d.validate().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"range\""), "{json}");
        let back: FormDef = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        let fixed: FormDef =
            serde_json::from_str(r#"{"amount":{"fixed":1600},"causale":"Diritti"}"#).unwrap();
        assert_eq!(fixed.amount, Amount::Fixed(Cents(1600)));
        fixed.validate().unwrap();
    }

    #[test]
    fn names_must_be_identifiers_unique_and_not_reserved() {
        let mut d = def();
        d.fields.push(field("pratica", FieldKind::Text));
        d.fields.push(field("Bad Name", FieldKind::Text));
        d.fields.push(field(DEBTOR_NAME, FieldKind::Text));
        d.fields.push(field("1abc", FieldKind::Text));
        let e = d.validate().unwrap_err();
        assert_eq!(
            fields_of(&e),
            vec![
                "fields[3].name",
                "fields[4].name",
                "fields[5].name",
                "fields[6].name"
            ]
        );
        assert_eq!(e.0[0].code, "DUPLICATE_NAME");
        assert_eq!(e.0[2].code, "RESERVED_NAME");
    }

    #[test]
    fn at_most_twenty_fields() {
        let mut d = def();
        d.causale = "x".into();
        d.fields = (0..=MAX_FIELDS)
            .map(|i| field(&format!("f{i}"), FieldKind::Text))
            .collect();
        let e = d.validate().unwrap_err();
        assert_eq!(fields_of(&e), vec!["fields"]);
        d.fields.pop();
        d.validate().unwrap();
    }

    #[test]
    fn labels_lengths_patterns_and_choices_are_checked() {
        let mut d = def();
        d.fields[0].label = " ".into();
        d.fields[0].min_length = Some(10);
        d.fields[0].max_length = Some(5);
        d.fields[0].pattern = Some("([a-z]".into());
        d.fields[1].choices.clear();
        d.fields[2].choices = vec!["x".into()];
        d.fields[2].pattern = Some("x".into());
        let e = d.validate().unwrap_err();
        assert_eq!(
            fields_of(&e),
            vec![
                "fields[0].label",
                "fields[0].min_length",
                "fields[0].pattern",
                "fields[1].choices",
                "fields[2].pattern",
                "fields[2].choices",
            ]
        );
        let mut d = def();
        d.fields[1].choices = vec!["A".into(), "A ".into()];
        d.fields[0].max_length = Some(0);
        d.fields[0].help = "h".repeat(301);
        let e = d.validate().unwrap_err();
        assert_eq!(
            fields_of(&e),
            vec![
                "fields[0].help",
                "fields[0].max_length",
                "fields[1].choices"
            ]
        );
        // A pattern that would blow up is refused, not run.
        let mut d = def();
        d.fields[0].pattern = Some("(a{1000}){1000}".into());
        assert_eq!(
            fields_of(&d.validate().unwrap_err()),
            vec!["fields[0].pattern"]
        );
        d.fields[0].pattern = Some("a".repeat(MAX_PATTERN + 1));
        assert_eq!(
            fields_of(&d.validate().unwrap_err()),
            vec!["fields[0].pattern"]
        );
    }

    #[test]
    fn amounts_must_be_sane() {
        let mut d = def();
        d.amount = Amount::Fixed(Cents(0));
        assert_eq!(fields_of(&d.validate().unwrap_err()), vec!["amount.fixed"]);
        d.amount = Amount::Range {
            min: Cents(500),
            max: Cents(100),
        };
        assert_eq!(fields_of(&d.validate().unwrap_err()), vec!["amount.min"]);
        d.amount = Amount::Range {
            min: Cents(-1),
            max: Cents(Cents::MAX_AMOUNT.0 + 1),
        };
        assert_eq!(
            fields_of(&d.validate().unwrap_err()),
            vec!["amount.min", "amount.max"]
        );
        d.amount = Amount::Table(vec![]);
        assert_eq!(fields_of(&d.validate().unwrap_err()), vec!["amount.table"]);
        d.amount = Amount::Table(vec![
            AmountChoice {
                label: "Urgente".into(),
                cents: Cents(1000),
            },
            AmountChoice {
                label: "Urgente".into(),
                cents: Cents(0),
            },
        ]);
        assert_eq!(
            fields_of(&d.validate().unwrap_err()),
            vec!["amount.table[1].label", "amount.table[1].cents"]
        );
    }

    #[test]
    fn the_causale_names_only_fields_of_the_form() {
        let mut d = def();
        d.causale = "Pratica {nonesiste}".into();
        assert_eq!(d.validate().unwrap_err().0[0].code, "UNKNOWN_FIELD");
        for bad in ["Pratica {pratica", "Pratica }", "{{pratica}}", ""] {
            d.causale = bad.into();
            assert_eq!(
                fields_of(&d.validate().unwrap_err()),
                vec!["causale"],
                "{bad}"
            );
        }
        d.causale = "x".repeat(MAX_CAUSALE + 1);
        assert_eq!(fields_of(&d.validate().unwrap_err()), vec!["causale"]);
    }

    #[test]
    fn a_good_submission_is_normalized() {
        let mut a = good();
        a.insert("data".into(), "2026-03-01".into());
        a.insert("ignored".into(), "whatever".into());
        a.insert(EMAIL.into(), " mario@example.it ".into());
        let ok = def().check(&a).unwrap();
        assert_eq!(ok.amount, Cents(1250));
        assert_eq!(ok.debtor_fiscal_code, "RSSMRA85T10A562S");
        assert_eq!(ok.email.as_deref(), Some("mario@example.it"));
        assert_eq!(
            ok.values,
            vec![
                ("pratica".to_string(), "AB1234".to_string()),
                ("documento".to_string(), "Certificato".to_string()),
                ("data".to_string(), "01/03/2026".to_string()),
            ]
        );
        assert_eq!(ok.causale, "Pratica AB1234 - Certificato");
    }

    #[test]
    fn missing_and_malformed_answers_are_named() {
        let e = def().check(&Answers::new()).unwrap_err();
        assert_eq!(
            fields_of(&e),
            vec![
                "pratica",
                "documento",
                DEBTOR_FISCAL_CODE,
                DEBTOR_NAME,
                AMOUNT
            ]
        );
        assert!(e.0.iter().all(|f| f.code == codes::REQUIRED));
        let mut a = good();
        a.insert("pratica".into(), "ab12".into());
        a.insert("documento".into(), "Passaporto".into());
        a.insert("data".into(), "31/02/2026".into());
        a.insert(DEBTOR_FISCAL_CODE.into(), "RSSMRA85T10A562X".into());
        a.insert(EMAIL.into(), "mario@".into());
        a.insert(AMOUNT.into(), "dodici".into());
        let e = def().check(&a).unwrap_err();
        assert_eq!(
            fields_of(&e),
            vec![
                "pratica",
                "documento",
                "data",
                DEBTOR_FISCAL_CODE,
                EMAIL,
                AMOUNT
            ]
        );
        assert!(e.0.iter().all(|f| !f.message.is_empty()));
    }

    #[test]
    fn lengths_numbers_emails_and_fiscal_codes() {
        let d = FormDef {
            fields: vec![
                Field {
                    min_length: Some(3),
                    max_length: Some(5),
                    ..field("t", FieldKind::Text)
                },
                field("n", FieldKind::Number),
                field("e", FieldKind::Email),
                field("cf", FieldKind::FiscalCode),
            ],
            amount: Amount::Fixed(Cents(100)),
            causale: "{t} {n}".into(),
        };
        d.validate().unwrap();
        let base = |t: &str, n: &str, e: &str, cf: &str| {
            let mut a = good();
            for (k, v) in [("t", t), ("n", n), ("e", e), ("cf", cf)] {
                a.insert(k.into(), v.into());
            }
            d.check(&a)
        };
        let e = base("abcd", "3,5", "a@b.it", "01234567898").unwrap_err();
        assert_eq!(fields_of(&e), vec!["cf"]);
        let ok = base("abcd", "12", "a@b.it", "01234567897").unwrap();
        assert_eq!(ok.causale, "abcd 12");
        assert_eq!(ok.amount, Cents(100));
        let e = base("ab", "1a", "a b@c.it", "XYZ").unwrap_err();
        assert_eq!(fields_of(&e), vec!["t", "n", "e", "cf"]);
        assert_eq!(e.0[0].code, "TOO_SHORT");
        let e = base("abcdef", "1,", "x", "01234567897").unwrap_err();
        assert_eq!(fields_of(&e), vec!["t", "n", "e"]);
        assert_eq!(e.0[0].code, codes::TOO_LONG);
        let e = base("ab\u{7}c", "1", "a@b.it", "01234567897").unwrap_err();
        assert_eq!(fields_of(&e), vec!["t"]);
    }

    #[test]
    fn amount_bounds_and_tables() {
        for (typed, cents) in [
            ("1", 100),
            ("100", 10_000),
            ("12,5", 1250),
            ("12.50", 1250),
            ("€ 7,00", 700),
        ] {
            let mut a = good();
            a.insert(AMOUNT.into(), typed.into());
            assert_eq!(def().check(&a).unwrap().amount, Cents(cents), "{typed}");
        }
        for typed in ["0,99", "100,01", "-5", "1,234", "1.2.3", "abc", "1e3"] {
            let mut a = good();
            a.insert(AMOUNT.into(), typed.into());
            let e = def().check(&a).unwrap_err();
            assert_eq!(fields_of(&e), vec![AMOUNT], "{typed}");
        }
        let mut d = def();
        d.amount = Amount::Table(vec![
            AmountChoice {
                label: "Ordinario".into(),
                cents: Cents(1600),
            },
            AmountChoice {
                label: "Urgente".into(),
                cents: Cents(3200),
            },
        ]);
        let mut a = good();
        a.insert(AMOUNT.into(), "1".into());
        let ok = d.check(&a).unwrap();
        assert_eq!(
            (ok.amount, ok.amount_label.as_deref()),
            (Cents(3200), Some("Urgente"))
        );
        for bad in ["2", "-1", "x", ""] {
            a.insert(AMOUNT.into(), bad.into());
            assert_eq!(fields_of(&d.check(&a).unwrap_err()), vec![AMOUNT], "{bad}");
        }
        d.amount = Amount::Fixed(Cents(1600));
        a.insert(AMOUNT.into(), "999999".into());
        assert_eq!(d.check(&a).unwrap().amount, Cents(1600));
    }

    #[test]
    fn italian_amounts_parse_strictly() {
        assert_eq!(parse_amount("1.234,56"), Some(Cents(123_456)));
        assert_eq!(parse_amount("1234,56"), Some(Cents(123_456)));
        assert_eq!(parse_amount("12.345.678,00"), Some(Cents(1_234_567_800)));
        assert_eq!(parse_amount("1.23,00"), None);
        assert_eq!(parse_amount("1,234"), None);
        assert_eq!(parse_amount(",5"), None);
        assert_eq!(parse_amount(""), None);
    }

    #[test]
    fn the_causale_is_filled_collapsed_and_cut() {
        let d = def();
        let c = d.causale_of(&[("pratica".into(), "AB1234".into())]);
        assert_eq!(c, "Pratica AB1234 -");
        let long = "x".repeat(300);
        let c = d.causale_of(&[("pratica".into(), long)]);
        assert_eq!(c.chars().count(), MAX_CAUSALE);
    }

    #[test]
    fn nothing_panics_on_odd_input() {
        let d = def();
        for v in [
            "",
            " ",
            "\u{0}",
            "{",
            "}",
            "€",
            "💶💶",
            ",",
            ".",
            "99999999999999999999",
        ] {
            let mut a = Answers::new();
            for k in [
                "pratica",
                "documento",
                "data",
                DEBTOR_FISCAL_CODE,
                DEBTOR_NAME,
                EMAIL,
                AMOUNT,
            ] {
                a.insert(k.into(), v.into());
            }
            assert!(d.check(&a).is_err(), "{v:?}");
        }
        for t in ["{", "}", "{}", "{{}", "é{pratica}é", "{pratica}{pratica}"] {
            let mut d = def();
            d.causale = t.into();
            let _ = d.validate();
            let _ = d.causale_of(&[("pratica".into(), "x".into())]);
        }
    }

    #[test]
    fn first_error_of_each_field() {
        let errors = vec![
            FieldError {
                field: "a".into(),
                code: "X",
                message: "1".into(),
            },
            FieldError {
                field: "a".into(),
                code: "Y",
                message: "2".into(),
            },
        ];
        assert_eq!(first_per_field(&errors).len(), 1);
    }
}
