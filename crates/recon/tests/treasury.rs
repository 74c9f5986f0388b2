//! Treasury files: the spec's OPI journal and camt samples read, and broken
//! ones refused with where they break.

use chrono::NaiveDate;
use incasso_core::Cents;
use incasso_core::treasury::{Direction, DocumentKind, Operation};
use incasso_recon::{TreasuryError, camt, opi};

fn spec(path: &str) -> String {
    let dir = incasso_testkit::spec_dir().expect("the spec folder (../shared/spec) is needed");
    std::fs::read_to_string(dir.join(path)).unwrap()
}

fn journal() -> String {
    spec("treasury/opi/samples/OPI_GIORNALE_DI_CASSA_V_1_8.VALID.xml")
}

#[test]
fn the_opi_sample_journal_is_read() {
    let j = opi::parse(journal().as_bytes()).unwrap();
    assert_eq!(j.ente, "06144260707");
    assert_eq!(j.year, 2022);
    assert_eq!((j.page, j.pages), (1, 2));
    assert_eq!(
        j.reference_date,
        NaiveDate::from_ymd_opt(2022, 9, 29).unwrap()
    );
    assert_eq!(j.movements.len(), 4);
    let sospesi: Vec<_> = j.movements.iter().filter(|m| m.is_open_sospeso()).collect();
    assert_eq!(sospesi.len(), 2);
    let s = sospesi[0];
    assert_eq!(s.account, "0000005");
    assert_eq!(s.document, DocumentKind::ProvisionalIncome);
    assert_eq!(s.document_number, "0064422");
    assert_eq!(s.amount, Cents(501_587));
    assert_eq!(s.payer.as_deref(), Some("TEST 3"));
    assert!(s.causale.contains("TRXID: 0122492727202545"));
    assert_eq!(s.movement_id, "2022/0000005/0000205/ESEGUITO");
    let outgoing = &j.movements[0];
    assert_eq!(outgoing.direction, Direction::Outgoing);
    assert_eq!(
        outgoing.trn.as_deref(),
        Some("0306927122530803481211712117IT")
    );
    assert_eq!(
        outgoing.end_to_end_id.as_deref(),
        Some("2022-20220024002-1")
    );
    // Every movement has its own key.
    let ids: std::collections::HashSet<_> = j.movements.iter().map(|m| &m.movement_id).collect();
    assert_eq!(ids.len(), 4);
}

fn opi_refused(document: &str, location: &str) {
    match opi::parse(document.as_bytes()) {
        Ok(_) => panic!("a journal broken at {location} was read"),
        Err(TreasuryError {
            location: at,
            message,
        }) => {
            assert!(
                at.ends_with(location),
                "expected {location}, got {at}: {message}"
            );
        }
    }
}

#[test]
fn broken_journals_are_refused_whole_with_where_they_break() {
    let good = journal();
    opi_refused(&good[..good.len() / 2], "/");
    opi_refused(
        &good.replacen(
            "<importo>5015.87</importo>",
            "<importo>5015,87</importo>",
            1,
        ),
        "informazioni_conto_evidenza[2]/movimento_conto_evidenza[1]/importo",
    );
    opi_refused(
        &good.replacen(
            "<tipo_operazione>ESEGUITO</tipo_operazione>",
            "<tipo_operazione>FATTO</tipo_operazione>",
            1,
        ),
        "informazioni_conto_evidenza[1]/movimento_conto_evidenza[1]/tipo_operazione",
    );
    opi_refused(
        &good.replacen(
            "<data_movimento>2022-09-29",
            "<data_movimento>2022-09-31",
            1,
        ),
        "movimento_conto_evidenza[1]/data_movimento",
    );
    opi_refused(
        &good.replacen(
            "<codice_fiscale_ente>06144260707",
            "<codice_fiscale_ente>0614426070X",
            1,
        ),
        "testata_messaggio/codice_fiscale_ente",
    );
    opi_refused(
        &good.replacen("<esercizio>2022</esercizio>", "", 1),
        "esercizio",
    );
    // An FdR is not a journal.
    opi_refused(
        &spec("pagopa/samples/authored/FlussoRiversamento_sample.xml"),
        "/",
    );
}

#[test]
fn the_camt_053_sample_statements_are_read() {
    let doc = spec("treasury/camt/samples/camt053.v2.multi.statement.xml");
    let moves = camt::parse(doc.as_bytes(), "80000130585").unwrap();
    assert_eq!(moves.len(), 2);
    let credit = &moves[0];
    assert_eq!(credit.ente, "80000130585");
    assert_eq!(credit.account, "NL26VAYB8060476890");
    assert_eq!(credit.amount, Cents(885));
    assert_eq!(credit.direction, Direction::Income);
    assert!(credit.is_open_sospeso());
    assert_eq!(credit.end_to_end_id.as_deref(), Some("000000001"));
    assert_eq!(credit.causale, "Transaction Description 1");
    assert_eq!(
        credit.booking_date,
        NaiveDate::from_ymd_opt(2014, 12, 31).unwrap()
    );
    assert_eq!(credit.value_date, NaiveDate::from_ymd_opt(2015, 1, 2));
    assert_eq!(moves[1].direction, Direction::Outgoing);
    assert_ne!(moves[0].movement_id, moves[1].movement_id);
    // A reversal of the credit keeps its reference and says it undoes it.
    let reversed = doc.replacen("<RvslInd>false</RvslInd>", "<RvslInd>true</RvslInd>", 1);
    let moves = camt::parse(reversed.as_bytes(), "80000130585").unwrap();
    assert_eq!(moves[0].operation, Operation::Reversed);
    assert_eq!(moves[0].document_key(), credit.document_key());
}

#[test]
fn camt_054_in_a_currency_other_than_euro_is_refused_and_in_euro_read() {
    let doc = spec("treasury/camt/samples/camt054.v2.xml");
    let e = camt::parse(doc.as_bytes(), "80000130585").unwrap_err();
    assert!(e.location.ends_with("Ntfctn[1]/Ntry[1]/Amt"), "{e}");
    assert!(e.message.contains("EUR"));
    let euro = doc.replace("Ccy=\"SEK\"", "Ccy=\"EUR\"");
    let moves = camt::parse(euro.as_bytes(), "80000130585").unwrap();
    assert!(!moves.is_empty());
    assert_eq!(moves[0].document_number, "AAAASESS-FP-ACCR001");
    assert_eq!(moves[0].amount, Cents(20_000_000));
    // Unstructured remittance blocks are joined into one causale.
    assert!(moves.iter().any(|m| {
        m.causale
            .contains("block 1 Unstructured Remittance Information V3 block 2")
    }));
}

#[test]
fn a_document_that_is_not_camt_is_refused() {
    let e = camt::parse(journal().as_bytes(), "80000130585").unwrap_err();
    assert_eq!(e.location, "/");
}

/// The simulator's statements: written camt.053 is valid against the
/// schema, and reads back as the movements written, a reversal included.
#[test]
fn a_written_camt_053_statement_is_valid_and_reads_back() {
    use incasso_core::treasury::TreasuryMovement;
    let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
    let sospeso = |n: u32, causale: &str, trn: Option<&str>, op: Operation| TreasuryMovement {
        movement_id: String::new(),
        ente: "80000130585".into(),
        account: String::new(),
        year: 2026,
        direction: Direction::Income,
        document: DocumentKind::ProvisionalIncome,
        operation: op,
        document_number: format!("{n:07}"),
        amount: Cents(123_456 + i64::from(n)),
        booking_date: day,
        value_date: Some(day),
        payer: Some("PSP & C. SPA".into()),
        causale: causale.into(),
        trn: trn.map(str::to_string),
        end_to_end_id: None,
    };
    let written = vec![
        sospeso(
            1,
            "/PUR/LGPE-RIVERSAMENTO/URI/2026-03-01PSPEITMM-S000000001",
            None,
            Operation::Executed,
        ),
        sospeso(
            2,
            "ACCREDITO <PSP>",
            Some("TRN0000002"),
            Operation::Executed,
        ),
        sospeso(
            2,
            "ACCREDITO <PSP>",
            Some("TRN0000002"),
            Operation::Reversed,
        ),
        TreasuryMovement {
            account: "IT02L1234512345123456789012".into(),
            ..sospeso(3, "BONIFICO", None, Operation::Executed)
        },
    ];
    let header = camt::StatementHeader {
        message_id: "SIM-053-1".into(),
        created_at: chrono::DateTime::parse_from_rfc3339("2026-03-02T18:00:00+01:00").unwrap(),
        statement_id: "SIM-STMT-1".into(),
        iban: "IT60X0542811101000000123456".into(),
        opening_balance: Cents(1_000),
    };
    let doc = camt::write_053(&header, &written);
    incasso_testkit::assert_xsd_valid("treasury/camt/camt.053.001.02.xsd", &[&doc]);
    let read = camt::parse(doc.as_bytes(), "80000130585").unwrap();
    assert_eq!(read.len(), written.len());
    // The movement on another account came in a statement of its own.
    assert_eq!(doc.matches("<Stmt>").count(), 2);
    for (r, w) in read.iter().zip(&written) {
        let account = if w.account.is_empty() {
            &header.iban
        } else {
            &w.account
        };
        assert_eq!(&r.account, account);
        assert_eq!(
            r.movement_id,
            format!("{account}/{}/{}", w.document_number, w.operation.as_str())
        );
        assert_eq!(
            (&r.document_number, r.amount, r.booking_date, r.operation),
            (&w.document_number, w.amount, w.booking_date, w.operation)
        );
        assert_eq!(
            (&r.causale, &r.trn, &r.payer),
            (&w.causale, &w.trn, &w.payer)
        );
    }
    // A reversal is no sospeso of its own: it undoes one when matching.
    assert_eq!(read.iter().filter(|m| m.is_open_sospeso()).count(), 3);
}
