//! Sample notices, one per variant: for the tests that scan them, the
//! reference images in `docs/notices/`, and `incasso bench notices`.

use crate::{Creditor, Language, Notice, Payments, Recipient, Slip};
use chrono::NaiveDate;
use incasso_core::Cents;
use incasso_core::codes::NoticeNumber;

fn nav(sequence: u64) -> String {
    NoticeNumber::generate(1, sequence)
        .expect("sample sequence")
        .as_str()
        .to_string()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("sample date")
}

/// A made-up emblem (a disc with a band), for the variants with a logo.
pub const SAMPLE_LOGO: &[u8] = include_bytes!("sample-logo.png");

fn with_logo(c: Creditor) -> Creditor {
    Creditor {
        logo: Some(SAMPLE_LOGO.to_vec()),
        ..c
    }
}

fn comune(postal: bool) -> Creditor {
    Creditor {
        name: "Comune di Borgo Esempio".into(),
        fiscal_code: "80000130585".into(),
        cbill_code: Some("A0B1C".into()),
        postal_account: postal.then(|| "001234567890".into()),
        logo: None,
    }
}

fn mario() -> Recipient {
    Recipient {
        name: "Mario Rossi".into(),
        fiscal_code: "RSSMRA85T10A562S".into(),
        address: Some("Via Roma 1, 00100 Roma (RM)".into()),
    }
}

/// The variants, by name: `single` (no logo: the layout without one),
/// `single-poste` and `installments` (with a logo), `traffic-fine`,
/// `bilingual`, `long-names`.
pub fn variants() -> Vec<(&'static str, Notice)> {
    let single = Slip {
        notice_number: nav(1_000_001),
        amount: Cents(123_456),
        due_date: date(2027, 12, 31),
    };
    let installments: Vec<Slip> = (0..4)
        .map(|k| Slip {
            notice_number: nav(2_000_001 + k),
            amount: Cents(30_864),
            due_date: date(2027, 3 + 3 * k as u32, 30),
        })
        .collect();
    vec![
        (
            "single",
            Notice {
                language: Language::Italian,
                creditor: comune(false),
                recipient: mario(),
                subject: "TARI 2027 - Tassa sui rifiuti, saldo".into(),
                payments: Payments::Single(single.clone()),
            },
        ),
        (
            "single-poste",
            Notice {
                language: Language::Italian,
                creditor: with_logo(comune(true)),
                recipient: mario(),
                subject: "Servizio mensa scolastica, settembre 2027".into(),
                payments: Payments::Single(Slip {
                    notice_number: nav(1_000_002),
                    amount: Cents(4_200),
                    due_date: date(2027, 10, 15),
                }),
            },
        ),
        (
            "installments",
            Notice {
                language: Language::Italian,
                creditor: with_logo(comune(true)),
                recipient: mario(),
                subject: "TARI 2027 - Tassa sui rifiuti".into(),
                payments: Payments::Installments {
                    single: Some(single.clone()),
                    installments,
                },
            },
        ),
        (
            "traffic-fine",
            Notice {
                language: Language::Italian,
                creditor: Creditor {
                    name: "Polizia Locale di Borgo Esempio".into(),
                    ..comune(false)
                },
                recipient: mario(),
                subject: "Verbale n. 2027/000123 - art. 7 Codice della Strada".into(),
                payments: Payments::Alternatives(vec![
                    Slip {
                        notice_number: nav(3_000_001),
                        amount: Cents(5_880),
                        due_date: date(2027, 5, 6),
                    },
                    Slip {
                        notice_number: nav(3_000_002),
                        amount: Cents(8_400),
                        due_date: date(2027, 6, 30),
                    },
                ]),
            },
        ),
        (
            "bilingual",
            Notice {
                language: Language::ItalianGerman,
                creditor: Creditor {
                    name: "Comune di Bolzano / Gemeinde Bozen".into(),
                    fiscal_code: "00389240219".into(),
                    ..comune(true)
                },
                recipient: Recipient {
                    name: "Anna Müller".into(),
                    fiscal_code: "MLLNNA80A41A952X".into(),
                    address: Some("Via Museo 1 / Museumstraße 1, 39100 Bolzano (BZ)".into()),
                },
                subject: "Mensa scolastica / Schulausspeisung 2027".into(),
                payments: Payments::Single(Slip {
                    notice_number: nav(4_000_001),
                    amount: Cents(15_000),
                    due_date: date(2027, 11, 30),
                }),
            },
        ),
        (
            "long-names",
            Notice {
                language: Language::Italian,
                creditor: Creditor {
                    name: "Azienda Unità Sanitaria Locale della Romagna - Dipartimento di Sanità Pubblica, Servizio Igiene e Sanità Pubblica delle sedi territoriali di Ravenna, Forlì, Cesena e Rimini".into(),
                    ..comune(true)
                },
                recipient: Recipient {
                    name: "Maria Antonietta Giuseppina Francesca Beatrice della Valle di Sopra Sant'Angelo in Vado".into(),
                    fiscal_code: "DLLMNT70A41A944K".into(),
                    address: Some("Località Case Sparse di Monte San Pietrangeli, Strada Provinciale 239 del Colle, chilometro 12, 63815 Monte San Pietrangeli (FM)".into()),
                },
                subject: "Rimborso spese per prestazioni sanitarie non erogate a seguito di mancata disdetta della prenotazione nei termini previsti dal regolamento aziendale, anno 2027, pratica n. 2027/ABCDEFGHIJKLMNOPQRSTUVWXYZ/000001".into(),
                payments: Payments::Single(Slip {
                    notice_number: nav(5_000_001),
                    amount: Cents(123_456_789),
                    due_date: date(2027, 12, 31),
                }),
            },
        ),
    ]
}
