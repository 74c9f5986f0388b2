//! Reporting flows: the spec's samples read, flows written by incasso valid
//! against both schema versions (xmllint) and read back unchanged, and each
//! kind of broken flow refused with where it breaks.

use chrono::{NaiveDate, TimeZone, Utc};
use incasso_core::Cents;
use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};
use incasso_recon::fdr::{self, FdrError};
use proptest::prelude::*;
use std::path::PathBuf;

fn spec(path: &str) -> PathBuf {
    incasso_testkit::spec_dir()
        .expect("the spec folder (../shared/spec) is needed")
        .join(path)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(spec(path)).unwrap()
}

#[test]
fn the_spec_samples_are_read() {
    let f = fdr::parse(&read(
        "pagopa/samples/authored/FlussoRiversamento_sample.xml",
    ))
    .unwrap();
    assert_eq!(f.flow_id, "2026-10-0260000000001-S000000001");
    assert_eq!(f.settlement_ref, "Bonifico SEPA-60000-AB12C");
    assert_eq!(
        f.settlement_date,
        NaiveDate::from_ymd_opt(2026, 10, 2).unwrap()
    );
    assert_eq!(f.psp_id, "PSPEITMMXXX");
    assert_eq!(f.psp_id_kind, PartyIdKind::Bic);
    assert_eq!(f.ente, "77777777777");
    assert_eq!(f.declared_count, 2);
    assert_eq!(f.declared_total, Cents(15_000));
    assert_eq!(f.payments.len(), 2);
    assert_eq!(f.payments[1].outcome, FlowOutcome::PaidWithoutReceipt);
    assert_eq!(f.payments[1].amount, Cents(5_000));
    // 08:15 in Rome in October is 06:15 UTC.
    assert_eq!(
        f.flow_date_time,
        Utc.with_ymd_and_hms(2026, 10, 3, 6, 15, 0).unwrap()
    );
    assert!(f.inconsistencies().is_empty());

    let f = fdr::parse(&read("peers/pagopa-docs/FlussoRiversamento.sample.xml")).unwrap();
    assert_eq!(f.flow_id, "2021-11-21ABI00000-AABB648200001295");
    assert_eq!(f.payments[0].amount, Cents(123_456));
}

fn flow(outcomes: &[FlowOutcome]) -> ReportingFlow {
    let day = NaiveDate::from_ymd_opt(2026, 10, 2).unwrap();
    let payments: Vec<FlowPayment> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| FlowPayment {
            iuv: format!("010000000{:08}", i),
            iur: format!("IUR{i:010}"),
            transfer_index: if i % 3 == 2 {
                None
            } else {
                Some(1 + (i % 5) as u8)
            },
            amount: Cents(101 + i as i64 * 37),
            outcome: *o,
            outcome_date: day,
        })
        .collect();
    // Revocations taken out of the total, unless that would leave it
    // negative, which the schema does not allow: then added in.
    let signed: i64 = payments.iter().map(|p| p.outcome.signed(p.amount).0).sum();
    let plain: i64 = payments.iter().map(|p| p.amount.0).sum();
    let declared_total = Cents(if signed < 0 { plain } else { signed });
    ReportingFlow {
        flow_id: "2026-10-02PSPEITMMXXX-S0001".into(),
        flow_date_time: Utc.with_ymd_and_hms(2026, 10, 3, 6, 15, 0).unwrap(),
        settlement_ref: "TRN-0001 & co <x>".into(),
        settlement_date: day,
        psp_id: "PSPEITMMXXX".into(),
        psp_id_kind: PartyIdKind::Bic,
        psp_name: Some("PSP d'Esempio S.p.A.".into()),
        bic: Some("PSPEITMMXXX".into()),
        ente: "80000130585".into(),
        ente_name: Some("Comune di Borgo Esempio".into()),
        declared_count: payments.len() as u64,
        declared_total,
        payments,
        revision: None,
    }
}

/// Validates documents against a schema version (`1_0_4`, `1_0_5`).
fn assert_valid(documents: &[String], version: &str) {
    let docs: Vec<&str> = documents.iter().map(String::as_str).collect();
    incasso_testkit::assert_xsd_valid(
        &format!("pagopa/pagopa-api/xsd-common/FlussoRiversamento_{version}.xsd"),
        &docs,
    );
}

#[test]
fn written_flows_are_valid_against_their_version_and_read_back() {
    use FlowOutcome::*;
    // 1.0.5 knows stand-in (4, 8); 1.0.4 knows revocation (3).
    let v105 = flow(&[
        Paid,
        StandIn,
        StandInWithoutReceipt,
        PaidWithoutReceipt,
        Paid,
    ]);
    let v104 = flow(&[Paid, Revoked, PaidWithoutReceipt]);
    let (a, b) = (fdr::write(&v105), fdr::write(&v104));
    assert_valid(std::slice::from_ref(&a), "1_0_5");
    assert_valid(std::slice::from_ref(&b), "1_0_4");
    assert_eq!(fdr::parse(a.as_bytes()).unwrap(), v105);
    assert_eq!(fdr::parse(b.as_bytes()).unwrap(), v104);
    // And the spec samples are valid too, so the reader is tested on truth.
    for sample in [
        "pagopa/samples/authored/FlussoRiversamento_sample.xml",
        "peers/pagopa-docs/FlussoRiversamento.sample.xml",
    ] {
        assert_valid(&[String::from_utf8(read(sample)).unwrap()], "1_0_5");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_flow_round_trips(codes in prop::collection::vec(
        prop::sample::select(vec![
            FlowOutcome::Paid,
            FlowOutcome::Revoked,
            FlowOutcome::StandIn,
            FlowOutcome::StandInWithoutReceipt,
            FlowOutcome::PaidWithoutReceipt,
        ]),
        1..40,
    )) {
        let f = flow(&codes);
        prop_assert_eq!(fdr::parse(fdr::write(&f).as_bytes()).unwrap(), f);
    }
}

fn refused(document: &str, location: &str) -> FdrError {
    match fdr::parse(document.as_bytes()) {
        Ok(_) => panic!("a flow broken at {location} was read: {document}"),
        Err(e) => e,
    }
}

#[test]
fn broken_flows_are_refused_with_where_they_break() {
    let good = fdr::write(&flow(&[FlowOutcome::Paid, FlowOutcome::Paid]));
    let cases: Vec<(String, &str)> = vec![
        (good[..good.len() / 2].to_string(), "/"),
        (
            good.replacen(
                "<singoloImportoPagato>1.01<",
                "<singoloImportoPagato>1.010<",
                1,
            ),
            "datiSingoliPagamenti[1]/singoloImportoPagato",
        ),
        (
            good.replacen(
                "<singoloImportoPagato>1.38<",
                "<singoloImportoPagato>0.00<",
                1,
            ),
            "datiSingoliPagamenti[2]/singoloImportoPagato",
        ),
        (
            good.replacen(
                "<codiceEsitoSingoloPagamento>0</codiceEsitoSingoloPagamento>",
                "<codiceEsitoSingoloPagamento>1</codiceEsitoSingoloPagamento>",
                1,
            ),
            "datiSingoliPagamenti[1]/codiceEsitoSingoloPagamento",
        ),
        (
            good.replacen(
                "<dataRegolamento>2026-10-02",
                "<dataRegolamento>2026-02-30",
                1,
            ),
            "FlussoRiversamento/dataRegolamento",
        ),
        (
            good.replacen(
                "<identificativoFlusso>2026-10-02PSPEITMMXXX-S0001",
                "<identificativoFlusso>2026/10/02 PSP",
                1,
            ),
            "FlussoRiversamento/identificativoFlusso",
        ),
        (
            // The schema's order: dataRegolamento after the TRN.
            {
                let trn = "<identificativoUnivocoRegolamento>TRN-0001 &amp; co &lt;x&gt;</identificativoUnivocoRegolamento>";
                let day = "<dataRegolamento>2026-10-02</dataRegolamento>";
                good.replacen(&format!("{trn}{day}"), &format!("{day}{trn}"), 1)
            },
            "FlussoRiversamento/identificativoUnivocoRegolamento",
        ),
        (
            good.replacen("<numeroTotalePagamenti>2</numeroTotalePagamenti>", "", 1),
            "FlussoRiversamento/numeroTotalePagamenti",
        ),
        (
            good.replacen(
                "</datiSingoliPagamenti>",
                "<extra>1</extra></datiSingoliPagamenti>",
                1,
            ),
            "datiSingoliPagamenti[1]/extra",
        ),
        (
            good.replacen(
                "<tipoIdentificativoUnivoco>G</tipoIdentificativoUnivoco>",
                "<tipoIdentificativoUnivoco>B</tipoIdentificativoUnivoco>",
                1,
            ),
            "identificativoUnivocoRicevente/tipoIdentificativoUnivoco",
        ),
        (
            good.replacen(fdr::NAMESPACE, "http://example.org/altro", 1),
            "/",
        ),
        (
            good.replacen(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]>",
                1,
            ),
            "/",
        ),
    ];
    for (document, location) in cases {
        let e = refused(&document, location);
        assert!(
            e.location.ends_with(location),
            "expected an error at {location}, got {e}"
        );
        assert!(!e.message.is_empty());
    }
}

#[test]
fn totals_that_do_not_add_up_are_read_and_reported() {
    let mut f = flow(&[FlowOutcome::Paid, FlowOutcome::Paid]);
    f.declared_total = Cents(f.declared_total.0 + 1);
    let read = fdr::parse(fdr::write(&f).as_bytes()).unwrap();
    assert_eq!(read.inconsistencies().len(), 1);
}

/// FdR 3's JSON, as `fdr_organization.json` shapes it: read into the same
/// flow as the SOAP document, and refused whole with the field's path when
/// a field breaks its rule.
#[test]
fn fdr3_flows_are_read_and_bad_ones_refused_with_their_path() {
    use incasso_recon::fdr3;
    let header = |sum: &str, kind: &str| {
        format!(
            r#"{{"status":"PUBLISHED","revision":2,"fdr":"2025-01-0188888888888-0000001",
            "fdrDate":"2025-01-01T12:20:30.800000Z","regulation":"SEPA - Bonifico X",
            "regulationDate":"2025-01-01","bicCodePouringBank":"UNCRITMMXXX",
            "sender":{{"type":"{kind}","id":"SELBIT2B","pspId":"88888888888","pspName":"PSP Name",
              "pspBrokerId":"70000000001","channelId":"80000000001"}},
            "receiver":{{"id":"APPBIT2B","organizationId":"80000130585","organizationName":"Comune"}},
            "published":"2025-01-01T12:20:30.900000Z","totPayments":3,"sumPayments":{sum}}}"#
        )
    };
    let page = |items: &str| {
        format!(
            r#"{{"metadata":{{"pageSize":2,"pageNumber":1,"totPage":2}},"count":2,"data":[{items}]}}"#
        )
    };
    let pay = |index: u32, amount: &str, status: &str| {
        format!(
            r#"{{"index":{index},"iuv":"0100000000000{index:04}","iur":"IUR{index}","idTransfer":1,
            "pay":{amount},"payStatus":"{status}","payDate":"2025-01-01T09:30:50.900000Z"}}"#
        )
    };
    // Pages may come in any order; lines keep the flow's own.
    let pages = vec![
        page(&format!(
            "{},{}",
            pay(3, "0.01", "NO_RPT"),
            pay(2, "100", "STAND_IN")
        ))
        .into_bytes(),
        page(&pay(1, "12.30", "EXECUTED")).into_bytes(),
    ];
    let f = fdr3::parse(header("112.31", "BIC_CODE").as_bytes(), &pages).unwrap();
    assert_eq!(f.flow_id, "2025-01-0188888888888-0000001");
    assert_eq!(f.revision, Some(2));
    assert_eq!(f.ente, "80000130585");
    assert_eq!(f.psp_id, "SELBIT2B");
    assert_eq!(f.psp_id_kind, PartyIdKind::Bic);
    assert_eq!(f.settlement_ref, "SEPA - Bonifico X");
    assert_eq!(f.declared_total, Cents(11_231));
    assert_eq!(
        f.flow_date_time,
        Utc.with_ymd_and_hms(2025, 1, 1, 12, 20, 30).unwrap()
    );
    let lines: Vec<(i64, FlowOutcome)> =
        f.payments.iter().map(|p| (p.amount.0, p.outcome)).collect();
    assert_eq!(
        lines,
        vec![
            (1_230, FlowOutcome::Paid),
            (10_000, FlowOutcome::StandIn),
            (1, FlowOutcome::PaidWithoutReceipt)
        ]
    );
    assert!(f.inconsistencies().is_empty(), "{:?}", f.inconsistencies());

    let bad_amount = vec![page(&pay(1, "12.345", "EXECUTED")).into_bytes()];
    let e = fdr3::parse(header("12.35", "BIC_CODE").as_bytes(), &bad_amount).unwrap_err();
    assert_eq!(e.location, "pagamenti, pagina 1, data[0].pay", "{e}");
    let bad_status = vec![page(&pay(1, "1", "PAID")).into_bytes()];
    let e = fdr3::parse(header("1", "BIC_CODE").as_bytes(), &bad_status).unwrap_err();
    assert_eq!(e.location, "pagamenti, pagina 1, data[0].payStatus", "{e}");
    let twice = vec![
        page(&format!(
            "{},{}",
            pay(1, "1", "EXECUTED"),
            pay(1, "1", "EXECUTED")
        ))
        .into_bytes(),
    ];
    assert!(
        fdr3::parse(header("2", "BIC_CODE").as_bytes(), &twice)
            .unwrap_err()
            .message
            .contains("due volte")
    );
    let e = fdr3::parse(header("1", "SOMEONE").as_bytes(), &bad_status).unwrap_err();
    assert_eq!(e.location, "sender.type");
    let truncated = header("1", "BIC_CODE");
    let e = fdr3::parse(&truncated.as_bytes()[..100], &[]).unwrap_err();
    assert!(e.location.starts_with("flusso"), "{e}");
    assert_eq!(incasso_recon::fdr::FdrError::CODE, "FDR_INVALID");
}
