//! Regularization proposals: OPI reversali valid against the ordinativi
//! schema (xmllint), with sums the schema does not check checked here.

use chrono::NaiveDate;
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_recon::reversale::{self, BudgetPart, OrderHeader, Regularization, ReversaleError};

fn header() -> OrderHeader {
    OrderHeader {
        bank_abi: "03069".into(),
        flow_id: "REV-2026-000001".into(),
        created_at: NaiveDate::from_ymd_opt(2026, 10, 5)
            .unwrap()
            .and_hms_opt(9, 30, 0)
            .unwrap(),
        ipa_office_code: "UFAB12".into(),
        ente_name: "Comune di Borgo Esempio".into(),
        siope_ente_code: "012345678".into(),
        ente_fiscal_code: "80000130585".into(),
        ente_channel: "A2A-12345678".into(),
        bank_channel: "A2A-87654321".into(),
        bank_ente_code: "1234567".into(),
        year: 2026,
    }
}

fn part(year: i32, code: &str, chapter: &str, siope: Option<&str>, cents: i64) -> BudgetPart {
    BudgetPart {
        accertamento: AccertamentoRef {
            year,
            code: code.into(),
        },
        chapter: chapter.into(),
        article: Some("1".into()),
        description: format!("Capitolo {chapter}"),
        siope_code: siope.map(str::to_string),
        amount: Cents(cents),
    }
}

fn order(number: u32, sospeso: i64, parts: Vec<BudgetPart>) -> Regularization {
    Regularization {
        number,
        date: NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(),
        sospeso_number: format!("{:07}", 64_000 + number),
        sospeso_amount: Cents(sospeso),
        account: Some("0000001".into()),
        causale: "/PUR/LGPE-RIVERSAMENTO/URI/2026-10-02PSPA-1 & altro".into(),
        parts,
    }
}

fn assert_valid(document: &str) {
    incasso_testkit::assert_xsd_valid(
        "treasury/opi/OPI_FLUSSO_ORDINATIVI_V_1_7_1.xsd",
        &[document],
    );
}

#[test]
fn reversali_are_valid_and_add_up() {
    let orders = vec![
        // Two accertamenti on two chapters, with SIOPE codes: classified.
        order(
            1,
            15_000,
            vec![
                part(2026, "ACC-A", "10101", Some("1010151001"), 10_000),
                part(2026, "ACC-B", "30200", Some("3020201001"), 5_000),
            ],
        ),
        // Two on one chapter, one of last year (residuo), no SIOPE codes.
        order(
            2,
            7_777,
            vec![
                part(2026, "ACC-C", "10101", None, 7_000),
                part(2025, "ACC-D", "10101", None, 777),
                part(2026, "ACC-E", "20100", None, 0),
            ],
        ),
    ];
    let xml = reversale::write(&header(), &orders).unwrap();
    assert_valid(&xml);
    let root = incasso_xml::parse(xml.as_bytes(), incasso_xml::Limits::default()).unwrap();
    let reversali: Vec<_> = root.children_named("reversale").collect();
    assert_eq!(reversali.len(), 2);
    let cents = |t: &str| Cents::parse_decimal(t).unwrap().0;
    for (r, o) in reversali.iter().zip(&orders) {
        let total = cents(r.text_of("importo_reversale").unwrap());
        assert_eq!(total, o.sospeso_amount.0);
        let budget: i64 = r
            .children_named("bilancio")
            .map(|b| cents(b.text_of("importo_bilancio").unwrap()))
            .sum();
        assert_eq!(budget, total, "the budget lines add up to the sospeso");
        let v = r.child("informazioni_versante").unwrap();
        assert_eq!(v.text_of("tipo_riscossione"), Some("REGOLARIZZAZIONE"));
        let s = v.child("sospeso").unwrap();
        assert_eq!(
            s.text_of("numero_provvisorio").unwrap(),
            o.sospeso_number.trim_start_matches('0')
        );
        let classified: i64 = v
            .children_named("classificazione")
            .map(|c| cents(c.text_of("importo").unwrap()))
            .sum();
        assert!(classified == 0 || classified == total);
    }
    // The first is classified by SIOPE code; the second has one chapter of
    // this year and one of last year's residui.
    assert_eq!(
        reversali[0]
            .child("informazioni_versante")
            .unwrap()
            .children_named("classificazione")
            .count(),
        2
    );
    let gestioni: Vec<&str> = reversali[1]
        .children_named("bilancio")
        .map(|b| b.text_of("gestione").unwrap())
        .collect();
    assert_eq!(gestioni, ["COMPETENZA", "RESIDUO"]);
}

#[test]
fn proposals_that_do_not_add_up_or_break_a_rule_are_refused() {
    let h = header();
    let e = reversale::write(
        &h,
        &[order(
            1,
            15_000,
            vec![part(2026, "A", "10101", None, 14_999)],
        )],
    );
    assert!(matches!(e, Err(ReversaleError::Sum { .. })), "{e:?}");
    let many: Vec<BudgetPart> = (1..=11)
        .map(|i| part(2026, &format!("A{i}"), &format!("{}", 100 + i), None, 100))
        .collect();
    let e = reversale::write(&h, &[order(1, 1_100, many)]);
    assert!(matches!(e, Err(ReversaleError::Invalid { .. })), "{e:?}");
    let mut bad = order(1, 100, vec![part(2026, "A", "10101", None, 100)]);
    bad.sospeso_number = "000".into();
    assert!(reversale::write(&h, &[bad]).is_err());
    let twice = vec![
        order(1, 100, vec![part(2026, "A", "10101", None, 100)]),
        order(1, 100, vec![part(2026, "A", "10101", None, 100)]),
    ];
    assert!(reversale::write(&h, &twice).is_err());
    let mut h2 = header();
    h2.bank_abi = "3069".into();
    let e = reversale::write(
        &h2,
        &[order(1, 100, vec![part(2026, "A", "10101", None, 100)])],
    );
    assert!(matches!(e, Err(ReversaleError::Header(_))), "{e:?}");
}
