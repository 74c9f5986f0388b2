//! Message templates: a subject and a Markdown body per kind of message
//! and language, with `{{placeholder}}` fields from [`PLACEHOLDERS`].
//!
//! The lengths IO allows (subject 10-120 characters, markdown 80-10000)
//! are checked on the template text when an Ente saves it
//! ([`Template::validate`]); [`Template::render`] checks the result again,
//! since values can make it longer.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Rome;
use std::collections::BTreeMap;

use crate::io::{MARKDOWN_MAX, MARKDOWN_MIN, SUBJECT_MAX, SUBJECT_MIN};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateKind {
    /// A position was published: the notice, with its payment data.
    Invitation,
    /// The due date is near and the position is unpaid.
    Reminder,
    /// The position was cancelled: nothing is owed on that notice.
    Withdrawal,
    /// The payment was received.
    Paid,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 4] = [
        TemplateKind::Invitation,
        TemplateKind::Reminder,
        TemplateKind::Withdrawal,
        TemplateKind::Paid,
    ];

    /// A stable name, for storage and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Invitation => "invitation",
            TemplateKind::Reminder => "reminder",
            TemplateKind::Withdrawal => "withdrawal",
            TemplateKind::Paid => "paid",
        }
    }

    pub fn parse(s: &str) -> Option<TemplateKind> {
        TemplateKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the IO message of this kind carries `payment_data` and
    /// `due_date` (the citizen can pay from the message).
    pub fn carries_payment(self) -> bool {
        matches!(self, TemplateKind::Invitation | TemplateKind::Reminder)
    }
}

/// The languages templates are written in: Italian always, German where
/// the Ente enables it.
pub const LANGUAGES: &[&str] = &["it", "de"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub markdown: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub markdown: String,
}

/// Every placeholder a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    // The Ente's name ("Comune di Prova") and fiscal code (11 digits).
    "ente",
    "ente_fiscal_code",
    // The catalogue service's name ("TARI").
    "service",
    // The position's description ("TARI 2026 - acconto").
    "description",
    "debtor_name",
    // [`format_amount`]: "1.234,56 euro".
    "amount",
    // The 18-digit notice number.
    "notice_number",
    // [`format_date`]: dd/mm/yyyy in Europe/Rome.
    "due_date",
    "iuv",
    // Where the citizen can pay online (the portal's page of the notice).
    "payment_url",
];

/// Values for a template's placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    map: BTreeMap<String, String>,
}

/// Which part of a template an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Subject,
    Markdown,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Subject => "subject",
            Field::Markdown => "markdown",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{field}: {len} characters, at least {min} are needed")]
    TooShort {
        field: Field,
        len: usize,
        min: usize,
    },
    #[error("{field}: {len} characters, at most {max} are allowed")]
    TooLong {
        field: Field,
        len: usize,
        max: usize,
    },
    #[error("{field}: unknown placeholder {{{{{name}}}}}")]
    UnknownPlaceholder { field: Field, name: String },
    #[error("{field}: '{{{{' at character {at} is not closed by '}}}}'")]
    Unclosed { field: Field, at: usize },
    #[error("{field}: no value for {{{{{name}}}}}")]
    MissingValue { field: Field, name: String },
}

impl TemplateError {
    pub fn field(&self) -> Field {
        match self {
            TemplateError::TooShort { field, .. }
            | TemplateError::TooLong { field, .. }
            | TemplateError::UnknownPlaceholder { field, .. }
            | TemplateError::Unclosed { field, .. }
            | TemplateError::MissingValue { field, .. } => *field,
        }
    }

    /// The reason in Italian, for the clerk who saved the template.
    pub fn message_it(&self) -> String {
        let campo = match self.field() {
            Field::Subject => "L'oggetto",
            Field::Markdown => "Il testo",
        };
        match self {
            TemplateError::TooShort { len, min, .. } => {
                format!("{campo} ha {len} caratteri: ne servono almeno {min}.")
            }
            TemplateError::TooLong { len, max, .. } => {
                format!("{campo} ha {len} caratteri: al massimo {max}.")
            }
            TemplateError::UnknownPlaceholder { name, .. } => format!(
                "{campo} usa il segnaposto {{{{{name}}}}}, che non esiste. Quelli possibili: {}.",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{{{p}}}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TemplateError::Unclosed { at, .. } => {
                format!(
                    "{campo} apre un segnaposto con {{{{ al carattere {at} senza chiuderlo con }}}}."
                )
            }
            TemplateError::MissingValue { name, .. } => {
                format!("{campo} usa {{{{{name}}}}}, ma il suo valore manca.")
            }
        }
    }
}

impl Values {
    pub fn new() -> Values {
        Values::default()
    }

    /// Builder form: `Values::new().with("ente", "Comune di Prova")`.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Values {
        self.set(name, value);
        self
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.map.insert(name.to_owned(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// `amount`, formatted by [`format_amount`].
    pub fn with_amount(self, cents: i64) -> Values {
        self.with("amount", format_amount(cents))
    }

    /// `due_date`, formatted by [`format_date`].
    pub fn with_due_date(self, due: DateTime<Utc>) -> Values {
        self.with("due_date", format_date(due))
    }
}

/// Cents the Italian way, with the word rather than the sign (screen
/// readers and plain-text e-mail say it the same): `123456` is
/// "1.234,56 euro".
pub fn format_amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let units = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{:02} euro", cents % 100)
}

/// The day in Rome, dd/mm/yyyy: a due date stored as 22:59 UTC on 31
/// December is 23:59 of that day in Rome, and 22:30 UTC on 30 June is
/// already 1 July there.
pub fn format_date(when: DateTime<Utc>) -> String {
    when.with_timezone(&Rome).format("%d/%m/%Y").to_string()
}

enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

/// Splits a text into literal pieces and `{{name}}` fields (spaces inside
/// the braces allowed); every name must be a known placeholder.
fn parse(text: &str, field: Field) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            let at = text.len() - rest.len() + open;
            return Err(TemplateError::Unclosed {
                field,
                at: text[..at].chars().count() + 1,
            });
        };
        let name = after[..close].trim();
        // A `{{` inside the name means the first one was never closed.
        if name.contains("{{") || !PLACEHOLDERS.contains(&name) {
            if name.contains('{') {
                let at = text.len() - rest.len() + open;
                return Err(TemplateError::Unclosed {
                    field,
                    at: text[..at].chars().count() + 1,
                });
            }
            return Err(TemplateError::UnknownPlaceholder {
                field,
                name: name.to_owned(),
            });
        }
        pieces.push(Piece::Field(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

fn check_length(field: Field, text: &str) -> Result<(), TemplateError> {
    let (min, max) = match field {
        Field::Subject => (SUBJECT_MIN, SUBJECT_MAX),
        Field::Markdown => (MARKDOWN_MIN, MARKDOWN_MAX),
    };
    let len = text.chars().count();
    if len < min {
        Err(TemplateError::TooShort { field, len, min })
    } else if len > max {
        Err(TemplateError::TooLong { field, len, max })
    } else {
        Ok(())
    }
}

/// Escapes what Markdown would read as formatting in a value put into the
/// body (a name with `*` or `_` must not turn bold or italic).
fn escape_markdown(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | '*' | '_' | '[' | ']' | '#' | '<' | '>' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Template {
    /// Checks the template as saved: lengths of its own text (subject
    /// 10-120, markdown 80-10000 characters), braces closed, every
    /// placeholder one of [`PLACEHOLDERS`]. The subject is checked first.
    pub fn validate(&self) -> Result<(), TemplateError> {
        for (field, text) in [
            (Field::Subject, &self.subject),
            (Field::Markdown, &self.markdown),
        ] {
            check_length(field, text)?;
            parse(text, field)?;
        }
        Ok(())
    }

    /// The placeholders the template uses, each once, in order of first use.
    pub fn placeholders(&self) -> Result<Vec<&'static str>, TemplateError> {
        let mut used: Vec<&'static str> = Vec::new();
        for (field, text) in [
            (Field::Subject, &self.subject),
            (Field::Markdown, &self.markdown),
        ] {
            for piece in parse(text, field)? {
                if let Piece::Field(name) = piece {
                    let known = PLACEHOLDERS
                        .iter()
                        .copied()
                        .find(|p| *p == name)
                        .expect("parse keeps known names");
                    if !used.contains(&known) {
                        used.push(known);
                    }
                }
            }
        }
        Ok(used)
    }

    /// Fills the placeholders. Values are escaped in the markdown (except
    /// `payment_url`, a link), and line breaks in the subject become
    /// spaces. A subject longer than IO's 120 characters once filled (a
    /// long Ente or service name) is cut at 119 with "…", rather than fail
    /// one citizen's message; a markdown out of bounds is an error.
    pub fn render(&self, values: &Values) -> Result<Rendered, TemplateError> {
        let fill = |field: Field, text: &str| -> Result<String, TemplateError> {
            let mut out = String::with_capacity(text.len() + 64);
            for piece in parse(text, field)? {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Field(name) => {
                        let v = values
                            .get(name)
                            .ok_or_else(|| TemplateError::MissingValue {
                                field,
                                name: name.to_owned(),
                            })?;
                        match field {
                            Field::Subject => out.push_str(&v.replace(['\r', '\n'], " ")),
                            Field::Markdown if name == "payment_url" => out.push_str(v),
                            Field::Markdown => out.push_str(&escape_markdown(v)),
                        }
                    }
                }
            }
            Ok(out)
        };
        let mut subject = fill(Field::Subject, &self.subject)?;
        if subject.chars().count() > SUBJECT_MAX {
            subject = subject.chars().take(SUBJECT_MAX - 1).collect::<String>() + "…";
        }
        check_length(Field::Subject, &subject)?;
        let markdown = fill(Field::Markdown, &self.markdown)?;
        check_length(Field::Markdown, &markdown)?;
        Ok(Rendered { subject, markdown })
    }
}

/// The template incasso proposes until the Ente writes its own, in
/// Italian or German (any other language gets Italian).
///
/// They use `ente`, `ente_fiscal_code` (invitation and reminder),
/// `service`, `description`, `debtor_name`, `amount`, `notice_number` and
/// `due_date` (invitation and reminder).
pub fn default_template(kind: TemplateKind, language: &str) -> Template {
    let (subject, markdown) = match (kind, language) {
        (TemplateKind::Invitation, "de") => (
            "Zahlungsmitteilung: {{service}}",
            "Sehr geehrte/r {{debtor_name}},\n\n\
             {{ente}} teilt Ihnen mit, dass die Zahlungsmitteilung für **{{description}}** zur Verfügung steht.\n\n\
             - Betrag: **{{amount}}**\n\
             - Kodex der Zahlungsmitteilung: **{{notice_number}}**\n\
             - Fälligkeit: **{{due_date}}**\n\n\
             Sie können direkt in der App IO über die Schaltfläche „Bezahlen“ zahlen oder bei allen pagoPA-Zahlungsdienstleistern \
             (Banken, Postämter, Tabaktrafiken, Apps und Websites) unter Angabe des Kodex der Zahlungsmitteilung \
             und der Steuernummer der Körperschaft ({{ente_fiscal_code}}).\n\n\
             Falls Sie bereits bezahlt haben, betrachten Sie diese Mitteilung bitte als gegenstandslos.\n\n\
             Mit freundlichen Grüßen\n\n{{ente}}",
        ),
        (TemplateKind::Invitation, _) => (
            "Avviso di pagamento: {{service}}",
            "Gentile {{debtor_name}},\n\n\
             {{ente}} le comunica che è disponibile l'avviso di pagamento per **{{description}}**.\n\n\
             - Importo: **{{amount}}**\n\
             - Codice avviso: **{{notice_number}}**\n\
             - Scadenza: **{{due_date}}**\n\n\
             Può pagare direttamente in app IO con il pulsante «Paga», oppure presso tutti i prestatori \
             aderenti a pagoPA (banche, uffici postali, tabaccherie, app e siti di pagamento) indicando \
             il codice avviso e il codice fiscale dell'ente ({{ente_fiscal_code}}).\n\n\
             Se ha già pagato, non tenga conto di questo messaggio.\n\n\
             Cordiali saluti\n\n{{ente}}",
        ),
        (TemplateKind::Reminder, "de") => (
            "Erinnerung: {{service}}, fällig am {{due_date}}",
            "Sehr geehrte/r {{debtor_name}},\n\n\
             wir erinnern Sie daran, dass die Zahlung für **{{description}}** am **{{due_date}}** fällig ist \
             und bei {{ente}} noch nicht eingegangen ist.\n\n\
             - Betrag: **{{amount}}**\n\
             - Kodex der Zahlungsmitteilung: **{{notice_number}}**\n\n\
             Sie können direkt in der App IO über die Schaltfläche „Bezahlen“ zahlen oder bei allen pagoPA-Zahlungsdienstleistern \
             unter Angabe des Kodex der Zahlungsmitteilung und der Steuernummer der Körperschaft ({{ente_fiscal_code}}).\n\n\
             Falls Sie in den letzten Tagen bereits bezahlt haben, betrachten Sie diese Erinnerung bitte als gegenstandslos.\n\n\
             Mit freundlichen Grüßen\n\n{{ente}}",
        ),
        (TemplateKind::Reminder, _) => (
            "Promemoria: {{service}} in scadenza il {{due_date}}",
            "Gentile {{debtor_name}},\n\n\
             le ricordiamo che il pagamento per **{{description}}** scade il **{{due_date}}** \
             e a {{ente}} non risulta ancora effettuato.\n\n\
             - Importo: **{{amount}}**\n\
             - Codice avviso: **{{notice_number}}**\n\n\
             Può pagare direttamente in app IO con il pulsante «Paga», oppure presso tutti i prestatori \
             aderenti a pagoPA indicando il codice avviso e il codice fiscale dell'ente ({{ente_fiscal_code}}).\n\n\
             Se ha pagato negli ultimi giorni, non tenga conto di questo promemoria.\n\n\
             Cordiali saluti\n\n{{ente}}",
        ),
        (TemplateKind::Withdrawal, "de") => (
            "Zahlungsmitteilung annulliert: {{service}}",
            "Sehr geehrte/r {{debtor_name}},\n\n\
             {{ente}} teilt Ihnen mit, dass die Zahlungsmitteilung für **{{description}}** \
             (Kodex **{{notice_number}}**, Betrag {{amount}}) annulliert wurde.\n\n\
             Für diese Zahlungsmitteilung ist keine Zahlung mehr zu leisten: bitte zahlen Sie sie nicht. \
             Falls eine neue Mitteilung sie ersetzt, erhalten Sie diese gesondert.\n\n\
             Mit freundlichen Grüßen\n\n{{ente}}",
        ),
        (TemplateKind::Withdrawal, _) => (
            "Avviso di pagamento annullato: {{service}}",
            "Gentile {{debtor_name}},\n\n\
             {{ente}} le comunica che l'avviso di pagamento per **{{description}}** \
             (codice avviso **{{notice_number}}**, importo {{amount}}) è stato annullato.\n\n\
             Per questo avviso non è più dovuto alcun pagamento: la preghiamo di non pagarlo. \
             Se un nuovo avviso lo sostituisce, lo riceverà a parte.\n\n\
             Cordiali saluti\n\n{{ente}}",
        ),
        (TemplateKind::Paid, "de") => (
            "Zahlung erhalten: {{service}}",
            "Sehr geehrte/r {{debtor_name}},\n\n\
             {{ente}} bestätigt den Eingang Ihrer Zahlung von **{{amount}}** für **{{description}}** \
             (Kodex der Zahlungsmitteilung **{{notice_number}}**).\n\n\
             Die Zahlungsbestätigung finden Sie in der App IO oder beim Zahlungsdienstleister, bei dem Sie bezahlt haben.\n\n\
             Vielen Dank.\n\n{{ente}}",
        ),
        (TemplateKind::Paid, _) => (
            "Pagamento ricevuto: {{service}}",
            "Gentile {{debtor_name}},\n\n\
             {{ente}} conferma di aver ricevuto il suo pagamento di **{{amount}}** per **{{description}}** \
             (codice avviso **{{notice_number}}**).\n\n\
             La ricevuta è disponibile in app IO o presso il prestatore con cui ha pagato.\n\n\
             Grazie.\n\n{{ente}}",
        ),
    };
    Template {
        subject: subject.to_owned(),
        markdown: markdown.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn values() -> Values {
        Values::new()
            .with("ente", "Comune di Prova")
            .with("ente_fiscal_code", "80000130585")
            .with("service", "TARI")
            .with("description", "TARI 2026 - acconto")
            .with("debtor_name", "Mario Rossi")
            .with_amount(123_456)
            .with("notice_number", "301000000000000017")
            .with_due_date(Utc.with_ymd_and_hms(2026, 12, 31, 22, 59, 0).unwrap())
            .with("iuv", "01000000000000017")
            .with(
                "payment_url",
                "https://pagamenti.example.it/avvisi/301000000000000017",
            )
    }

    fn template(subject: &str, markdown: &str) -> Template {
        Template {
            subject: subject.into(),
            markdown: markdown.into(),
        }
    }

    const BODY: &str = "Gentile {{debtor_name}}, è disponibile l'avviso {{notice_number}} di {{amount}}, in scadenza il {{due_date}}.";

    #[test]
    fn amounts_and_dates() {
        assert_eq!(format_amount(0), "0,00 euro");
        assert_eq!(format_amount(5), "0,05 euro");
        assert_eq!(format_amount(24_600), "246,00 euro");
        assert_eq!(format_amount(123_456), "1.234,56 euro");
        assert_eq!(format_amount(100_000_000), "1.000.000,00 euro");
        assert_eq!(format_amount(-1_050), "-10,50 euro");
        // 22:59 UTC on 31 December is 23:59 in Rome (winter), the same day;
        // 22:30 UTC on 30 June is 00:30 of 1 July in Rome (summer).
        assert_eq!(
            format_date(Utc.with_ymd_and_hms(2026, 12, 31, 22, 59, 0).unwrap()),
            "31/12/2026"
        );
        assert_eq!(
            format_date(Utc.with_ymd_and_hms(2026, 6, 30, 22, 30, 0).unwrap()),
            "01/07/2026"
        );
    }

    #[test]
    fn each_rule_fails() {
        let ok = template("Avviso di pagamento {{service}}", BODY);
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            template("Avviso", BODY).validate(),
            Err(TemplateError::TooShort {
                field: Field::Subject,
                len: 6,
                min: 10
            })
        );
        assert_eq!(
            template(&"a".repeat(121), BODY).validate(),
            Err(TemplateError::TooLong {
                field: Field::Subject,
                len: 121,
                max: 120
            })
        );
        assert_eq!(
            template("Avviso di pagamento", "Troppo breve {{amount}}").validate(),
            Err(TemplateError::TooShort {
                field: Field::Markdown,
                len: 23,
                min: 80
            })
        );
        assert_eq!(
            template("Avviso di pagamento", &"a".repeat(10_001)).validate(),
            Err(TemplateError::TooLong {
                field: Field::Markdown,
                len: 10_001,
                max: 10_000
            })
        );
        assert_eq!(
            template("Avviso per {{nome}}", BODY).validate(),
            Err(TemplateError::UnknownPlaceholder {
                field: Field::Subject,
                name: "nome".into()
            })
        );
        assert_eq!(
            template(
                "Avviso di pagamento",
                &format!("{BODY} Importo {{{{ importo }}}}")
            )
            .validate(),
            Err(TemplateError::UnknownPlaceholder {
                field: Field::Markdown,
                name: "importo".into()
            })
        );
        assert_eq!(
            template("Avviso di pagamento {{service", BODY).validate(),
            Err(TemplateError::Unclosed {
                field: Field::Subject,
                at: 21
            })
        );
        assert_eq!(
            template("Avviso di pagamento", &format!("{{{{amount {BODY}")).validate(),
            Err(TemplateError::Unclosed {
                field: Field::Markdown,
                at: 1
            })
        );
        // Spaces inside the braces, and single braces, are fine.
        assert_eq!(
            template("Avviso {{ service }} {x}", BODY).validate(),
            Ok(())
        );
        let e = template("Avviso per {{nome}}", BODY)
            .validate()
            .unwrap_err();
        assert!(e.message_it().contains("{{nome}}"), "{}", e.message_it());
        assert!(e.to_string().contains("subject"), "{e}");
    }

    #[test]
    fn renders() {
        let t = template("Avviso di pagamento {{ service }} - {{ente}}", BODY);
        let r = t.render(&values()).unwrap();
        assert_eq!(r.subject, "Avviso di pagamento TARI - Comune di Prova");
        assert_eq!(
            r.markdown,
            "Gentile Mario Rossi, è disponibile l'avviso 301000000000000017 di 1.234,56 euro, in scadenza il 31/12/2026."
        );
        assert_eq!(
            t.placeholders().unwrap(),
            vec![
                "service",
                "ente",
                "debtor_name",
                "notice_number",
                "amount",
                "due_date"
            ]
        );
        // A missing value is named.
        let mut v = values();
        v.map.remove("due_date");
        assert_eq!(
            t.render(&v),
            Err(TemplateError::MissingValue {
                field: Field::Markdown,
                name: "due_date".into()
            })
        );
        // Markdown in a value is escaped; a URL is kept as it is.
        let t2 = template(
            "Avviso di pagamento",
            &format!("{BODY} Paga su {{{{payment_url}}}}"),
        );
        let r = t2
            .render(
                &values()
                    .with("debtor_name", "*Mario_Rossi*")
                    .with("payment_url", "https://x.it/a_b"),
            )
            .unwrap();
        assert!(
            r.markdown.starts_with("Gentile \\*Mario\\_Rossi\\*,"),
            "{}",
            r.markdown
        );
        assert!(r.markdown.ends_with("https://x.it/a_b"), "{}", r.markdown);
        // A long subject once filled is cut to IO's 120 characters.
        let r = t
            .render(&values().with("ente", "Comune ".repeat(30)))
            .unwrap();
        assert_eq!(r.subject.chars().count(), 120);
        assert!(r.subject.ends_with('…'));
        // A markdown too long once filled is refused.
        let big = template(
            "Avviso di pagamento",
            &format!("{BODY} {{{{description}}}}"),
        );
        assert!(matches!(
            big.render(&values().with("description", "x".repeat(10_000))),
            Err(TemplateError::TooLong {
                field: Field::Markdown,
                ..
            })
        ));
    }

    #[test]
    fn defaults_are_valid_and_render() {
        for kind in TemplateKind::ALL {
            assert_eq!(TemplateKind::parse(kind.as_str()), Some(kind));
            for lang in LANGUAGES {
                let t = default_template(kind, lang);
                assert_eq!(t.validate(), Ok(()), "{kind:?} {lang}");
                let r = t
                    .render(&values())
                    .unwrap_or_else(|e| panic!("{kind:?} {lang}: {e}"));
                assert!(r.markdown.contains("1.234,56 euro"), "{kind:?} {lang}");
                assert!(r.markdown.contains("301000000000000017"), "{kind:?} {lang}");
                assert!(r.markdown.contains("Mario Rossi"), "{kind:?} {lang}");
                if kind.carries_payment() {
                    assert!(r.markdown.contains("31/12/2026"), "{kind:?} {lang}");
                    assert!(r.markdown.contains("80000130585"), "{kind:?} {lang}");
                }
                // Never a placeholder left in the text.
                assert!(
                    !r.subject.contains("{{") && !r.markdown.contains("{{"),
                    "{kind:?} {lang}"
                );
            }
            assert_ne!(default_template(kind, "de"), default_template(kind, "it"));
            assert_eq!(default_template(kind, "fr"), default_template(kind, "it"));
        }
        assert!(
            default_template(TemplateKind::Invitation, "de")
                .markdown
                .contains("Betrag")
        );
    }
}
