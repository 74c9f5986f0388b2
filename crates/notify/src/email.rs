//! E-mail texts an Ente may word itself (issue 19): the messages of the
//! four events when they go by e-mail, and the citizen portal's receipt.
//!
//! Plain text, not Markdown: values are put in as they are. The same
//! `{{placeholder}}` fields as App IO's templates ([`PLACEHOLDERS`]); the
//! receipt knows three more of its own ([`RECEIPT_PLACEHOLDERS`]).

use crate::template::{PLACEHOLDERS, Values};

/// Bounds of an e-mail template's own text, in characters.
pub const SUBJECT_MIN: usize = 5;
pub const SUBJECT_MAX: usize = 200;
pub const BODY_MIN: usize = 20;
pub const BODY_MAX: usize = 20_000;

/// What only a receipt's e-mail can say: when, through whom, which receipt.
pub const RECEIPT_PLACEHOLDERS: &[&str] = &["paid_at", "psp", "receipt_id"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EmailKind {
    Invitation,
    Reminder,
    Withdrawal,
    Paid,
    /// The citizen portal's receipt (the quietanza attached).
    Receipt,
}

impl EmailKind {
    pub const ALL: [EmailKind; 5] = [
        EmailKind::Invitation,
        EmailKind::Reminder,
        EmailKind::Withdrawal,
        EmailKind::Paid,
        EmailKind::Receipt,
    ];

    /// As stored, and as the notifications' kinds are named.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Invitation => "INVITATION",
            EmailKind::Reminder => "REMINDER",
            EmailKind::Withdrawal => "WITHDRAWAL",
            EmailKind::Paid => "PAID",
            EmailKind::Receipt => "RECEIPT",
        }
    }

    pub fn parse(s: &str) -> Option<EmailKind> {
        EmailKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    /// The placeholders a template of this kind may use.
    pub fn knows(self, name: &str) -> bool {
        PLACEHOLDERS.contains(&name)
            || (self == EmailKind::Receipt && RECEIPT_PLACEHOLDERS.contains(&name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplate {
    pub subject: String,
    pub body: String,
}

/// Why a template is refused: the field (`subject` or `body`) and, in
/// Italian, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EmailTemplateError {
    pub field: &'static str,
    pub message: String,
}

enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

fn parse<'a>(
    text: &'a str,
    field: &'static str,
    kind: EmailKind,
) -> Result<Vec<Piece<'a>>, EmailTemplateError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let name = after.find("}}").map(|close| after[..close].trim());
        match name {
            Some(name) if !name.contains('{') => {
                if !kind.knows(name) {
                    return Err(EmailTemplateError {
                        field,
                        message: format!("segnaposto sconosciuto {{{{{name}}}}}"),
                    });
                }
                out.push(Piece::Field(name));
                rest = &after[after.find("}}").expect("found above") + 2..];
            }
            _ => {
                let at = text[..text.len() - rest.len() + open].chars().count() + 1;
                return Err(EmailTemplateError {
                    field,
                    message: format!("segnaposto aperto al carattere {at} e mai chiuso con }}}}"),
                });
            }
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

impl EmailTemplate {
    /// Checks the template as saved: lengths (subject 5-200 characters,
    /// one line; body 20-20000), braces closed, only the kind's
    /// placeholders. The subject is checked first.
    pub fn validate(&self, kind: EmailKind) -> Result<(), EmailTemplateError> {
        for (field, text, min, max) in [
            ("subject", &self.subject, SUBJECT_MIN, SUBJECT_MAX),
            ("body", &self.body, BODY_MIN, BODY_MAX),
        ] {
            let len = text.trim().chars().count();
            if len < min {
                return Err(EmailTemplateError {
                    field,
                    message: format!("{len} caratteri, ne servono almeno {min}"),
                });
            }
            if len > max {
                return Err(EmailTemplateError {
                    field,
                    message: format!("{len} caratteri, al massimo {max}"),
                });
            }
            if field == "subject" && text.contains(['\r', '\n']) {
                return Err(EmailTemplateError {
                    field,
                    message: "l'oggetto sta su una riga sola".into(),
                });
            }
            parse(text, field, kind)?;
        }
        Ok(())
    }

    /// Fills the placeholders (a value not given is left empty); line
    /// breaks in the subject's values become spaces.
    pub fn render(
        &self,
        kind: EmailKind,
        values: &Values,
    ) -> Result<(String, String), EmailTemplateError> {
        let fill = |field: &'static str, text: &str| -> Result<String, EmailTemplateError> {
            let mut out = String::with_capacity(text.len() + 64);
            for piece in parse(text, field, kind)? {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Field(name) => {
                        let v = values.get(name).unwrap_or_default();
                        if field == "subject" {
                            out.push_str(&v.replace(['\r', '\n'], " "));
                        } else {
                            out.push_str(v);
                        }
                    }
                }
            }
            Ok(out)
        };
        Ok((
            fill("subject", &self.subject)?.trim().to_string(),
            fill("body", &self.body)?,
        ))
    }
}

/// incasso's e-mail text for `kind`, until the Ente writes its own.
pub fn default_email_template(kind: EmailKind) -> EmailTemplate {
    let (subject, body) = match kind {
        EmailKind::Invitation => (
            "Avviso di pagamento {{service}} – {{ente}}",
            "Gentile {{debtor_name}},\n\n\
             {{ente}} ti invia l'avviso di pagamento pagoPA per {{description}}.\n\n\
             Importo: {{amount}}\n\
             Scadenza: {{due_date}}\n\
             Codice avviso: {{notice_number}}\n\n\
             In allegato trovi l'avviso in PDF. Puoi pagarlo online sul portale dei pagamenti dell'ente:\n\
             {{payment_url}}\n\
             oppure presso banche, uffici postali, tabaccherie e gli altri prestatori aderenti a pagoPA, \
             con il codice QR o il codice avviso.\n",
        ),
        EmailKind::Reminder => (
            "Promemoria: {{service}} in scadenza il {{due_date}}",
            "Gentile {{debtor_name}},\n\n\
             ti ricordiamo che il {{due_date}} scade il pagamento di {{amount}} a favore di {{ente}} \
             per {{description}}.\n\n\
             Codice avviso: {{notice_number}}\n\n\
             In allegato trovi l'avviso in PDF. Puoi pagarlo online sul portale dei pagamenti dell'ente:\n\
             {{payment_url}}\n\n\
             Se hai già pagato, non considerare questo messaggio.\n",
        ),
        EmailKind::Withdrawal => (
            "Avviso annullato: {{service}} – {{ente}}",
            "Gentile {{debtor_name}},\n\n\
             {{ente}} ha annullato l'avviso di pagamento {{notice_number}} di {{amount}} per \
             {{description}}: non devi pagarlo.\n",
        ),
        EmailKind::Paid => (
            "Pagamento ricevuto: {{service}} – {{ente}}",
            "Gentile {{debtor_name}},\n\n\
             {{ente}} ha ricevuto il pagamento di {{amount}} per {{description}} \
             (codice avviso {{notice_number}}).\n\n\
             In allegato trovi la ricevuta di pagamento in PDF: conservala come prova del pagamento.\n",
        ),
        EmailKind::Receipt => (
            "Ricevuta di pagamento pagoPA – {{ente}}",
            "Gentile utente,\n\n\
             ti confermiamo il pagamento pagoPA di {{amount}} a favore di {{ente}} il {{paid_at}}.\n\n\
             Oggetto: {{description}}\n\
             Codice avviso: {{notice_number}}\n\
             Codice IUV: {{iuv}}\n\
             Prestatore di servizi di pagamento: {{psp}}\n\
             Identificativo della ricevuta: {{receipt_id}}\n\n\
             In allegato trovi la ricevuta di pagamento (quietanza) in PDF: conservala come prova del pagamento.\n\
             Puoi ritrovarla sul portale dei pagamenti dell'ente con il codice IUV e il codice fiscale del debitore:\n\
             {{payment_url}}\n",
        ),
    };
    EmailTemplate {
        subject: subject.into(),
        body: body.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values::new()
            .with("ente", "Comune di Prova")
            .with("service", "TARI")
            .with("description", "TARI 2026")
            .with("debtor_name", "Mario *Rossi*")
            .with("amount", "123,45 euro")
            .with("notice_number", "301000000000000017")
            .with("due_date", "31/12/2026")
            .with("payment_url", "https://example.org/portale/1/")
            .with("paid_at", "01/12/2026 10:00")
    }

    #[test]
    fn defaults_are_valid_and_render_plain() {
        for kind in EmailKind::ALL {
            let t = default_email_template(kind);
            t.validate(kind).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let (subject, body) = t.render(kind, &values()).unwrap();
            assert!(!subject.contains("{{"), "{subject}");
            assert!(!body.contains("{{"), "{body}");
            assert!(body.contains("Comune di Prova"), "{body}");
        }
        // Plain text: nothing escaped.
        let (_, body) = default_email_template(EmailKind::Invitation)
            .render(EmailKind::Invitation, &values())
            .unwrap();
        assert!(body.contains("Mario *Rossi*"), "{body}");
    }

    #[test]
    fn bad_templates_are_refused_naming_the_field() {
        let t = |s: &str, b: &str| EmailTemplate {
            subject: s.into(),
            body: b.into(),
        };
        let long_body = "Gentile {{debtor_name}}, ecco il tuo avviso.";
        let e = t("Ciao", long_body).validate(EmailKind::Paid).unwrap_err();
        assert_eq!(e.field, "subject");
        let e = t("Avviso {{ente}}", "breve")
            .validate(EmailKind::Paid)
            .unwrap_err();
        assert_eq!(e.field, "body");
        let e = t(
            "Avviso {{ente}}",
            "Gentile {{codice_segreto}}, ecco il tuo avviso.",
        )
        .validate(EmailKind::Paid)
        .unwrap_err();
        assert!(e.message.contains("codice_segreto"), "{e}");
        let e = t("Avviso {{ente", long_body)
            .validate(EmailKind::Paid)
            .unwrap_err();
        assert_eq!(e.field, "subject");
        assert!(e.message.contains("chiuso"), "{e}");
        // A receipt's own placeholders only in a receipt.
        let r = t("Ricevuta {{receipt_id}}", long_body);
        assert!(r.validate(EmailKind::Receipt).is_ok());
        assert!(r.validate(EmailKind::Paid).is_err());
        let e = t("Due\nrighe", long_body)
            .validate(EmailKind::Paid)
            .unwrap_err();
        assert_eq!(e.field, "subject");
    }
}
