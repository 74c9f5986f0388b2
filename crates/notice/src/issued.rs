//! The *avviso PA*: the Ente's own copy of a position issued at a counter
//! desk (Sportello Digitale), kept in its records. It says what was
//! issued, where, by whom and when, to whom, for what, how much, and how
//! the amount is split over the Ente's accertamenti.
//!
//! Drawn with the receipt's pen and helpers (`receipt::header`,
//! `receipt::label_rows`, `receipt::note`), so the Ente's papers look
//! alike: one A4 page, the Ente at the top, the amount in a frame, then
//! label and value rows. It is no payment notice: it carries no QR code,
//! and says so, so that nobody pays from it by mistake.

use crate::receipt::{Party, euro, header, italian_date_time, label_rows, note};
use crate::render::{BLUE, CONTENT_W, MARGIN, PAGE_H, PAGE_W, Pen, Weight};
use crate::{Creditor, Language, NoticeError, in_groups_of_four, italian_date};
use chrono::{NaiveDate, NaiveDateTime};
use incasso_core::Cents;
use krilla::Document;
use krilla::page::PageSettings;

/// One accertamento's share of the amount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    /// `2026/ACC-ANAG`.
    pub accertamento: String,
    /// Its description, when the Ente still has it.
    pub description: String,
    pub amount: Cents,
}

/// What a desk issued, as the Ente's copy prints it.
#[derive(Debug, Clone, Default)]
pub struct IssuedCopy {
    pub creditor: Creditor,
    /// The desk's name and code (`Sportello anagrafe (SPORTELLO_01)`).
    pub desk: String,
    /// The office the desk belongs to, if any.
    pub office: Option<String>,
    /// The clerk who issued it.
    pub clerk: String,
    /// Italian time.
    pub issued_at: NaiveDateTime,
    pub debtor: Party,
    pub email: Option<String>,
    pub service: String,
    pub description: String,
    pub notice_number: String,
    pub iuv: String,
    /// The position's key (iupd).
    pub position: String,
    pub amount: Cents,
    pub due: NaiveDate,
    pub quotas: Vec<Quota>,
}

/// Renders the Ente's copy to PDF.
pub fn render_issued(c: &IssuedCopy) -> Result<Vec<u8>, NoticeError> {
    let mut doc = Document::new();
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4");
    {
        let mut page = doc.start_page_with(settings);
        let mut surface = page.surface();
        let mut pen = Pen {
            s: &mut surface,
            lang: Language::Italian,
        };
        let y = header(&mut pen, &c.creditor, "AVVISO PA - COPIA DELL'ENTE");
        let y = amount(&mut pen, c, y + 14.0);
        let y = label_rows(
            &mut pen,
            "POSIZIONE EMESSA ALLO SPORTELLO",
            details(c),
            y + 10.0,
        );
        let y = quotas(&mut pen, c, y + 14.0);
        note(
            &mut pen,
            y + 18.0,
            "Copia per gli atti dell'Ente creditore: non è un avviso di pagamento e non si può \
             pagare con questo documento. Il debitore paga con l'avviso pagoPA che gli è stato \
             consegnato o inviato, indicando il codice avviso.",
        );
        surface.finish();
    }
    doc.finish().map_err(|e| NoticeError::Pdf(format!("{e:?}")))
}

/// The amount, large, and the due date, in a frame.
fn amount(pen: &mut Pen, c: &IssuedCopy, top: f32) -> f32 {
    let h = 58.0;
    pen.frame(MARGIN, top, CONTENT_W, h);
    pen.text(
        MARGIN + 10.0,
        top + 16.0,
        Weight::Bold,
        9.0,
        "IMPORTO EMESSO",
        BLUE,
    );
    pen.text(
        MARGIN + 10.0,
        top + 42.0,
        Weight::Bold,
        22.0,
        &euro(c.amount),
        (0, 0, 0),
    );
    pen.text_right(
        PAGE_W - MARGIN - 10.0,
        top + 22.0,
        Weight::Regular,
        8.5,
        "Da pagare entro il",
    );
    pen.text_right(
        PAGE_W - MARGIN - 10.0,
        top + 40.0,
        Weight::Bold,
        13.0,
        &italian_date(c.due),
    );
    top + h
}

fn details(c: &IssuedCopy) -> Vec<(String, String)> {
    let with_cf = |p: &Party| {
        if p.fiscal_code.is_empty() {
            p.name.clone()
        } else {
            format!("{} ({})", p.name, p.fiscal_code)
        }
    };
    let mut rows = vec![
        (
            "Ente creditore".to_string(),
            format!("{} ({})", c.creditor.name, c.creditor.fiscal_code),
        ),
        ("Sportello".into(), c.desk.clone()),
    ];
    if let Some(o) = c.office.as_ref().filter(|o| !o.is_empty()) {
        rows.push(("Ufficio".into(), o.clone()));
    }
    rows.push(("Operatore".into(), c.clerk.clone()));
    rows.push((
        "Data e ora di emissione".into(),
        format!("{} (ora italiana)", italian_date_time(c.issued_at)),
    ));
    rows.push(("Debitore".into(), with_cf(&c.debtor)));
    if let Some(e) = c.email.as_ref().filter(|e| !e.is_empty()) {
        rows.push(("E-mail del debitore".into(), e.clone()));
    }
    rows.push(("Servizio".into(), c.service.clone()));
    rows.push(("Causale".into(), c.description.clone()));
    rows.push(("Codice avviso".into(), in_groups_of_four(&c.notice_number)));
    rows.push(("Codice IUV".into(), c.iuv.clone()));
    rows.push(("Posizione (IUPD)".into(), c.position.clone()));
    rows.push(("Importo".into(), euro(c.amount)));
    rows
}

/// One row per accertamento: which, and how much of the amount.
fn quotas(pen: &mut Pen, c: &IssuedCopy, top: f32) -> f32 {
    if c.quotas.is_empty() {
        return top;
    }
    let rows = c
        .quotas
        .iter()
        .map(|q| {
            let what = if q.description.is_empty() {
                euro(q.amount)
            } else {
                format!("{}: {}", q.description, euro(q.amount))
            };
            (q.accertamento.clone(), what)
        })
        .collect();
    label_rows(pen, "QUOTE DEGLI ACCERTAMENTI", rows, top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IssuedCopy {
        IssuedCopy {
            creditor: Creditor {
                name: "Comune di Borgo Esempio".into(),
                fiscal_code: "80000130585".into(),
                ..Default::default()
            },
            desk: "Sportello anagrafe (SPORTELLO_01)".into(),
            office: Some("Servizi Demografici".into()),
            clerk: "Lucia Bianchi".into(),
            issued_at: NaiveDate::from_ymd_opt(2026, 12, 3)
                .unwrap()
                .and_hms_opt(10, 15, 0)
                .unwrap(),
            debtor: Party {
                name: "Mario Rossi".into(),
                fiscal_code: "RSSMRA80A01H501U".into(),
            },
            email: Some("mario.rossi@example.it".into()),
            service: "Diritti di segreteria".into(),
            description: "Diritti di segreteria - Certificato di residenza".into(),
            notice_number: "301000000000000123".into(),
            iuv: "01000000000000123".into(),
            position: "SD-0123456789ABCDEF0123456789ABCDEF".into(),
            amount: Cents(1600),
            due: NaiveDate::from_ymd_opt(2027, 1, 2).unwrap(),
            quotas: vec![Quota {
                accertamento: "2026/ACC-ANAG".into(),
                description: "Diritti di segreteria 2026".into(),
                amount: Cents(1600),
            }],
        }
    }

    #[test]
    fn the_copy_is_one_pdf_page_that_names_what_was_issued() {
        let pdf = render_issued(&sample()).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
        assert!(pdf.len() > 2_000, "{} bytes", pdf.len());
        // One page: the page tree counts one kid.
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 1"), "not one page");
    }

    #[test]
    fn the_rows_carry_every_fact() {
        let rows = details(&sample());
        let all: Vec<String> = rows.iter().map(|(l, v)| format!("{l}: {v}")).collect();
        let joined = all.join("\n");
        for needle in [
            "Sportello: Sportello anagrafe (SPORTELLO_01)",
            "Operatore: Lucia Bianchi",
            "Debitore: Mario Rossi (RSSMRA80A01H501U)",
            "Codice avviso: 3010 0000 0000 0001 23",
            "Codice IUV: 01000000000000123",
            "Importo: 16,00 €",
            "03/12/2026 10:15",
        ] {
            assert!(joined.contains(needle), "{needle} missing in\n{joined}");
        }
    }
}
