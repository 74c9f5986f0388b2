//! The *quietanza*: the payment receipt a citizen keeps, drawn from the RT
//! (the receipt pagoPA's Node sent the Ente) with the same pen, fonts and
//! colours as the notice.
//!
//! One A4 page: the Ente, the outcome and amount in large print, then the
//! payment's data as label and value rows (who owed, who paid, what, the
//! notice number and IUV, the receipt's id, the PSP, when and how), then
//! where the money went (one row per beneficiary of the transfers). Every
//! value a person may have to quote (IUV, receipt id) is text, so it can
//! be copied from the PDF.

use crate::render::{
    BLUE, CONTENT_W, GREY, MARGIN, PAGE_H, PAGE_W, Pen, Weight, font, image_fit, logo_image,
};
use crate::{Creditor, Language, NoticeError, italian_amount};
use chrono::NaiveDateTime;
use incasso_core::Cents;
use krilla::Document;
use krilla::page::PageSettings;

/// A person or company named on the receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub fiscal_code: String,
}

/// Where part of the money went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beneficiary {
    /// The beneficiary Ente's name, when the receipt gives it.
    pub name: Option<String>,
    pub fiscal_code: String,
    pub iban: Option<String>,
    pub amount: Cents,
    pub remittance: String,
}

/// The data of one receipt, as printed.
#[derive(Debug, Clone, Default)]
pub struct Quietanza {
    pub language: Language,
    /// The Ente that owns the notice (name, fiscal code, logo).
    pub creditor: Creditor,
    pub debtor: Party,
    /// Who paid, when the receipt names them.
    pub payer: Option<Party>,
    pub notice_number: String,
    pub iuv: String,
    pub description: String,
    pub amount: Cents,
    /// The PSP's fee, paid on top of the amount, when stated.
    pub fee: Option<Cents>,
    pub psp_name: String,
    pub psp_id: String,
    /// Italian time, as pagoPA states it.
    pub paid_at: Option<NaiveDateTime>,
    pub receipt_id: String,
    pub payment_method: Option<String>,
    /// The channel's description (app, ATM, desk...).
    pub channel: Option<String>,
    pub transfers: Vec<Beneficiary>,
}

/// `1.234,56 €`.
pub fn euro(amount: Cents) -> String {
    format!("{} €", italian_amount(amount))
}

/// `dd/mm/yyyy hh:mm`.
pub fn italian_date_time(t: NaiveDateTime) -> String {
    t.format("%d/%m/%Y %H:%M").to_string()
}

/// pagoPA's payment method codes in words.
pub fn payment_method_words(code: &str) -> String {
    match code {
        "creditCard" | "CP" => "Carta di pagamento".into(),
        "bancomatPay" | "BPAY" => "BANCOMAT Pay".into(),
        "paypal" | "PPAL" => "PayPal".into(),
        "BBT" | "bankTransfer" => "Bonifico bancario".into(),
        "BP" => "Bollettino postale".into(),
        "AD" => "Addebito diretto".into(),
        "PO" => "Pagamento presso PSP".into(),
        "MYBK" | "myBank" => "MyBank".into(),
        "JIF" => "Bancomat".into(),
        "APPL" => "Apple Pay".into(),
        "GOOG" => "Google Pay".into(),
        "cash" => "Contanti".into(),
        "" => "-".into(),
        other => other.to_string(),
    }
}

const LABEL_W: f32 = 170.0;

/// Renders the receipt to PDF.
pub fn render_receipt(q: &Quietanza) -> Result<Vec<u8>, NoticeError> {
    let mut doc = Document::new();
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4");
    {
        let mut page = doc.start_page_with(settings);
        let mut surface = page.surface();
        let mut pen = Pen {
            s: &mut surface,
            lang: q.language,
        };
        let title = pen.l("RICEVUTA DI PAGAMENTO", "ZAHLUNGSBESTÄTIGUNG");
        let y = header(&mut pen, &q.creditor, &title);
        let y = outcome(&mut pen, q, y + 14.0);
        let y = details(&mut pen, q, y + 10.0);
        let y = beneficiaries(&mut pen, q, y + 14.0);
        footer(&mut pen, y + 18.0);
        surface.finish();
    }
    doc.finish().map_err(|e| NoticeError::Pdf(format!("{e:?}")))
}

/// The Ente (logo, name, fiscal code) and the document's `title` on the
/// right, over a blue rule; answers the y under it. Shared with the
/// counter desk's *avviso PA* (`issued`).
pub(crate) fn header(pen: &mut Pen, creditor: &Creditor, title: &str) -> f32 {
    let top = MARGIN;
    let mut x = MARGIN;
    if let Some(logo) = &creditor.logo
        && let Some(image) = logo_image(logo)
    {
        let size = image_fit(&image, 56.0, 56.0);
        pen.s
            .push_transform(&krilla::geom::Transform::from_translate(MARGIN, top));
        pen.s.draw_image(image, size);
        pen.s.pop();
        x += 66.0;
    }
    let left_w = CONTENT_W * 0.58 - (x - MARGIN);
    let y = pen.fitted(
        x,
        top - 2.0,
        left_w,
        2,
        Weight::Bold,
        13.0,
        8.0,
        &creditor.name,
    );
    let cf = format!(
        "{} {}",
        pen.l("Codice fiscale", "Steuernummer"),
        creditor.fiscal_code
    );
    let y = pen.fitted(x, y + 1.0, left_w, 1, Weight::Regular, 9.0, 7.0, &cf);
    let (_, m) = font(Weight::Bold);
    let size = if m.width(title, 15.0) > CONTENT_W * 0.4 {
        10.0
    } else {
        15.0
    };
    pen.text_right(PAGE_W - MARGIN, top + 14.0, Weight::Bold, size, title);
    pen.text_right(PAGE_W - MARGIN, top + 28.0, Weight::Bold, 9.0, "pagoPA");
    let bottom = y.max(top + 60.0) + 6.0;
    pen.rule(MARGIN, bottom, CONTENT_W, BLUE, 1.2);
    bottom
}

/// The outcome and the amount, large, in a frame.
fn outcome(pen: &mut Pen, q: &Quietanza, top: f32) -> f32 {
    let h = 58.0;
    pen.frame(MARGIN, top, CONTENT_W, h);
    let done = pen.l("PAGAMENTO ESEGUITO", "ZAHLUNG DURCHGEFÜHRT");
    pen.text(MARGIN + 10.0, top + 16.0, Weight::Bold, 9.0, &done, BLUE);
    pen.text(
        MARGIN + 10.0,
        top + 42.0,
        Weight::Bold,
        22.0,
        &euro(q.amount),
        (0, 0, 0),
    );
    if let Some(t) = q.paid_at {
        let on = pen.l("Data e ora del pagamento", "Datum und Uhrzeit der Zahlung");
        pen.text_right(
            PAGE_W - MARGIN - 10.0,
            top + 22.0,
            Weight::Regular,
            8.5,
            &on,
        );
        pen.text_right(
            PAGE_W - MARGIN - 10.0,
            top + 40.0,
            Weight::Bold,
            13.0,
            &italian_date_time(t),
        );
    }
    top + h
}

/// Label and value rows; returns the y under the last.
fn details(pen: &mut Pen, q: &Quietanza, top: f32) -> f32 {
    let mut rows: Vec<(String, String)> = Vec::new();
    let with_cf = |p: &Party| {
        if p.fiscal_code.is_empty() {
            p.name.clone()
        } else {
            format!("{} ({})", p.name, p.fiscal_code)
        }
    };
    rows.push((
        pen.l("Ente creditore", "Zahlungsempfänger"),
        format!("{} ({})", q.creditor.name, q.creditor.fiscal_code),
    ));
    rows.push((pen.l("Debitore", "Schuldner"), with_cf(&q.debtor)));
    if let Some(payer) = &q.payer {
        rows.push((pen.l("Pagatore", "Zahler"), with_cf(payer)));
    }
    rows.push((
        pen.l("Oggetto del pagamento", "Zahlungsgrund"),
        q.description.clone(),
    ));
    rows.push((
        pen.l("Codice avviso", "Kodex der Mitteilung"),
        crate::in_groups_of_four(&q.notice_number),
    ));
    rows.push((pen.l("Codice IUV", "IUV-Kodex"), q.iuv.clone()));
    rows.push((pen.l("Importo pagato", "Gezahlter Betrag"), euro(q.amount)));
    if let Some(fee) = q.fee {
        rows.push((
            pen.l("Commissione del PSP", "Gebühr des Zahlungsdienstes"),
            euro(fee),
        ));
    }
    if let Some(t) = q.paid_at {
        rows.push((
            pen.l("Data e ora del pagamento", "Datum und Uhrzeit"),
            format!("{} (ora italiana)", italian_date_time(t)),
        ));
    }
    let psp = if q.psp_id.is_empty() {
        q.psp_name.clone()
    } else {
        format!("{} ({})", q.psp_name, q.psp_id)
    };
    rows.push((
        pen.l(
            "Prestatore di servizi di pagamento (PSP)",
            "Zahlungsdienstleister",
        ),
        psp,
    ));
    let how = match (&q.payment_method, &q.channel) {
        (Some(m), Some(c)) if !c.is_empty() => Some(format!("{} - {}", payment_method_words(m), c)),
        (Some(m), _) => Some(payment_method_words(m)),
        (None, Some(c)) if !c.is_empty() => Some(c.clone()),
        _ => None,
    };
    if let Some(how) = how {
        rows.push((pen.l("Metodo e canale", "Zahlungsart und Kanal"), how));
    }
    rows.push((
        pen.l("Identificativo della ricevuta", "Kennung der Quittung"),
        q.receipt_id.clone(),
    ));
    let title = pen.l("DATI DEL PAGAMENTO", "ZAHLUNGSDATEN");
    label_rows(pen, &title, rows, top)
}

/// A section: its `title` in blue, then label and value rows, each under
/// a thin rule; answers the y under the last. Shared with `issued`.
pub(crate) fn label_rows(pen: &mut Pen, title: &str, rows: Vec<(String, String)>, top: f32) -> f32 {
    pen.text(MARGIN, top + 9.0, Weight::Bold, 8.0, title, BLUE);
    let mut y = top + 14.0;
    let value_x = MARGIN + LABEL_W;
    let value_w = CONTENT_W - LABEL_W;
    for (label, value) in rows {
        let row_top = y;
        let l = pen.fitted(
            MARGIN,
            row_top,
            LABEL_W - 8.0,
            2,
            Weight::Regular,
            9.0,
            7.0,
            &label,
        );
        let v = pen.fitted(
            value_x,
            row_top,
            value_w,
            3,
            Weight::Bold,
            10.0,
            7.0,
            &value,
        );
        y = l.max(v) + 3.0;
        pen.rule(MARGIN, y, CONTENT_W, GREY, 0.3);
        y += 1.0;
    }
    y
}

/// One row per transfer: to whom, on which account, how much.
fn beneficiaries(pen: &mut Pen, q: &Quietanza, top: f32) -> f32 {
    if q.transfers.is_empty() {
        return top;
    }
    let title = pen.l(
        "VERSAMENTI AI BENEFICIARI",
        "ÜBERWEISUNGEN AN DIE EMPFÄNGER",
    );
    pen.text(MARGIN, top + 9.0, Weight::Bold, 8.0, &title, BLUE);
    let amount_w = 90.0;
    let text_w = CONTENT_W - amount_w;
    let mut y = top + 14.0;
    for t in &q.transfers {
        let who = match &t.name {
            Some(n) if !n.is_empty() => format!("{n} ({})", t.fiscal_code),
            _ => t.fiscal_code.clone(),
        };
        let row_top = y;
        let mut bottom = pen.fitted(
            MARGIN,
            row_top,
            text_w - 8.0,
            2,
            Weight::Bold,
            9.5,
            7.0,
            &who,
        );
        let mut more = Vec::new();
        if let Some(iban) = t.iban.as_deref().filter(|i| !i.is_empty()) {
            more.push(format!("IBAN {iban}"));
        }
        if !t.remittance.is_empty() {
            more.push(t.remittance.clone());
        }
        if !more.is_empty() {
            bottom = pen.fitted(
                MARGIN,
                bottom,
                text_w - 8.0,
                2,
                Weight::Regular,
                8.5,
                6.5,
                &more.join(" · "),
            );
        }
        pen.text_right(
            PAGE_W - MARGIN,
            row_top + 11.0,
            Weight::Bold,
            10.0,
            &euro(t.amount),
        );
        y = bottom + 3.0;
        pen.rule(MARGIN, y, CONTENT_W, GREY, 0.3);
        y += 1.0;
    }
    y
}

fn footer(pen: &mut Pen, top: f32) {
    let text = pen.l(
        "Documento generato dai dati della ricevuta telematica (RT) che il Nodo dei Pagamenti pagoPA ha trasmesso all'Ente creditore. Conservalo come prova del pagamento.",
        "Aus der elektronischen Quittung (RT) von pagoPA erstellt. Als Zahlungsnachweis aufbewahren.",
    );
    note(pen, top, &text);
}

/// Small print at the foot of the page (never below its margin).
/// Shared with `issued`.
pub(crate) fn note(pen: &mut Pen, top: f32, text: &str) {
    let top = top.min(PAGE_H - MARGIN - 40.0);
    pen.fitted(MARGIN, top, CONTENT_W, 4, Weight::Regular, 8.0, 6.5, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Quietanza {
        Quietanza {
            language: Language::Italian,
            creditor: Creditor {
                name: "Comune di Esempio".into(),
                fiscal_code: "80000130585".into(),
                ..Creditor::default()
            },
            debtor: Party {
                name: "Mario Rossi".into(),
                fiscal_code: "RSSMRA80A01H501U".into(),
            },
            payer: Some(Party {
                name: "Anna Rossi".into(),
                fiscal_code: "RSSNNA82A41H501X".into(),
            }),
            notice_number: "301000000000012345".into(),
            iuv: "01000000000012345".into(),
            description: "TARI 2026 - prima rata".into(),
            amount: Cents(123_456),
            fee: Some(Cents(150)),
            psp_name: "Banca Simulata S.p.A.".into(),
            psp_id: "SIMPSP01".into(),
            paid_at: chrono::NaiveDate::from_ymd_opt(2026, 3, 4)
                .and_then(|d| d.and_hms_opt(9, 5, 0)),
            receipt_id: "c0ffee0123456789".into(),
            payment_method: Some("creditCard".into()),
            channel: Some("app".into()),
            transfers: vec![
                Beneficiary {
                    name: Some("Comune di Esempio".into()),
                    fiscal_code: "80000130585".into(),
                    iban: Some("IT65B0200805364000104567891".into()),
                    amount: Cents(100_000),
                    remittance: "TARI".into(),
                },
                Beneficiary {
                    name: None,
                    fiscal_code: "97000000022".into(),
                    iban: None,
                    amount: Cents(23_456),
                    remittance: "Tributo provinciale".into(),
                },
            ],
        }
    }

    #[test]
    fn renders_a_pdf_with_and_without_the_optional_parts() {
        let pdf = render_receipt(&sample()).unwrap();
        assert!(pdf.starts_with(b"%PDF"));
        let bare = Quietanza {
            payer: None,
            fee: None,
            paid_at: None,
            payment_method: None,
            channel: None,
            transfers: Vec::new(),
            ..sample()
        };
        assert!(render_receipt(&bare).unwrap().starts_with(b"%PDF"));
    }

    #[test]
    fn words_for_amounts_and_methods() {
        assert_eq!(euro(Cents(123_456)), "1.234,56 €");
        assert_eq!(payment_method_words("creditCard"), "Carta di pagamento");
        assert_eq!(payment_method_words("XYZ"), "XYZ");
    }
}

/// The PDF read back as text, as a person or a screen reader gets it.
#[cfg(test)]
mod text_tests {
    use super::*;
    use std::process::Command;

    fn pdftotext(pdf: &[u8]) -> Option<String> {
        let found = Command::new("sh")
            .args(["-c", "command -v pdftotext"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var_os("INCASSO_REQUIRE_TOOLS").is_none(),
                "pdftotext is required (poppler-utils; scripts/test.sh installs it)"
            );
            eprintln!("pdftotext missing: text not checked");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("incasso-quietanza-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("q.pdf");
        std::fs::write(&path, pdf).unwrap();
        let out = Command::new("pdftotext")
            .args(["-layout"])
            .arg(&path)
            .arg("-")
            .output()
            .unwrap();
        assert!(out.status.success());
        let _ = std::fs::remove_dir_all(&dir);
        Some(String::from_utf8(out.stdout).unwrap())
    }

    #[test]
    fn the_text_holds_amount_iuv_ente_psp_and_date() {
        let q = super::tests::sample();
        let Some(text) = pdftotext(&render_receipt(&q).unwrap()) else {
            return;
        };
        for wanted in [
            "RICEVUTA DI PAGAMENTO",
            "1.234,56 €",
            "01000000000012345",
            "3010 0000 0000 0123 45",
            "Comune di Esempio",
            "80000130585",
            "Banca Simulata S.p.A.",
            "04/03/2026 09:05",
            "Mario Rossi",
            "RSSMRA80A01H501U",
            "Anna Rossi",
            "c0ffee0123456789",
            "Carta di pagamento",
            "1.000,00 €",
            "234,56 €",
            "IT65B0200805364000104567891",
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing from:\n{text}");
        }
    }
}
