//! Reconciliation inputs as the outside world sends them, shared by the
//! tests of every crate instead of a copy in each: a PSP's reporting flow
//! (write it as XML with `incasso_recon::fdr::write`) and a treasury bank's
//! OPI giornale di cassa.

use chrono::{NaiveDate, TimeZone, Utc};
use incasso_core::Cents;
use incasso_core::fdr::{FlowOutcome, FlowPayment, PartyIdKind, ReportingFlow};

/// The PSP every flow here comes from.
pub const PSP: &str = "PSPEITMMXXX";

/// One line of a flow, settled on `day`.
pub fn line(iuv: &str, iur: &str, cents: i64, outcome: FlowOutcome, day: NaiveDate) -> FlowPayment {
    FlowPayment {
        iuv: iuv.into(),
        iur: iur.into(),
        transfer_index: Some(1),
        amount: Cents(cents),
        outcome,
        outcome_date: day,
    }
}

/// [`PSP`]'s flow `id` to `ente`, settled by the transfer `settlement_ref`
/// on the day of its lines (the first line's; today without lines), sent
/// at 06:00 the day after; its declared count and total are what its
/// lines move (revocations taken out), so it contradicts itself in
/// nothing.
pub fn flow(
    ente: &str,
    id: &str,
    settlement_ref: &str,
    payments: Vec<FlowPayment>,
) -> ReportingFlow {
    let day = payments
        .first()
        .map(|p| p.outcome_date)
        .unwrap_or_else(|| Utc::now().date_naive());
    let total = payments.iter().map(|p| p.outcome.signed(p.amount).0).sum();
    let sent = day.succ_opt().unwrap().and_hms_opt(6, 0, 0).unwrap();
    ReportingFlow {
        flow_id: id.into(),
        flow_date_time: Utc.from_utc_datetime(&sent),
        settlement_ref: settlement_ref.into(),
        settlement_date: day,
        psp_id: PSP.into(),
        psp_id_kind: PartyIdKind::Bic,
        psp_name: Some("PSP Esempio".into()),
        bic: None,
        ente: ente.into(),
        ente_name: None,
        declared_count: payments.len() as u64,
        declared_total: Cents(total),
        payments,
        revision: None,
    }
}

/// The causale of the bank transfer that settles flow `id`, as the PSP
/// writes it (what the matching reads a flow's id from).
pub fn settlement_causale(id: &str) -> String {
    format!("/PUR/LGPE-RIVERSAMENTO/URI/{id}")
}

/// One movement of a journal, as a treasury bank writes it: incoming ones
/// are sospesi (SOSPESO ENTRATA), outgoing ones pay a MANDATO.
#[derive(Debug, Clone)]
pub struct Movement<'a> {
    pub number: u32,
    pub income: bool,
    pub operation: &'a str,
    pub cents: i64,
    pub causale: &'a str,
    pub trn: Option<&'a str>,
    pub end_to_end_id: Option<&'a str>,
    pub payer: &'a str,
}

impl<'a> Movement<'a> {
    pub fn sospeso(number: u32, cents: i64, causale: &'a str) -> Movement<'a> {
        Movement {
            number,
            income: true,
            operation: "ESEGUITO",
            cents,
            causale,
            trn: None,
            end_to_end_id: None,
            payer: "PSP ESEMPIO SPA",
        }
    }
}

/// `ente`'s one-page giornale di cassa of 2026-10-03 in the shape of OPI
/// 1.7.1, written here element by element from that schema (not by
/// incasso's own writer), with the signature first: the schema allows it
/// before the header or after the accounts. `execution` is every
/// movement's `tipo_esecuzione`. A movement's id in incasso is
/// `2026/<account>/<number>/<operation>`.
pub fn opi_journal_1_7_1(
    ente: &str,
    accounts: &[(&str, &[Movement<'_>])],
    execution: &str,
) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<flusso_giornale_di_cassa>\
         <ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
         <ds:Reference URI=\"\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
         <ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>\
         <ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>",
    );
    x.push_str(&format!(
        "<testata_messaggio><codice_ABI_BT>03069</codice_ABI_BT>\
         <data_ora_creazione_flusso>2026-10-03T06:30:00</data_ora_creazione_flusso>\
         <codice_ente>UFAB12</codice_ente><descrizione_ente>COMUNE DI BORGO ESEMPIO</descrizione_ente>\
         <codice_istat_ente>012345678</codice_istat_ente><codice_fiscale_ente>{ente}</codice_fiscale_ente>\
         <codice_tramite_ente>A2A-12345678</codice_tramite_ente><codice_tramite_BT>A2A-87654321</codice_tramite_BT>\
         <codice_ente_BT>1234567</codice_ente_BT></testata_messaggio>\
         <identificativo_flusso_BT>GDC-20261003BORGOESEMPIO01#001#001</identificativo_flusso_BT>\
         <pagina>1</pagina><pagine_totali>1</pagine_totali><esercizio>2026</esercizio>\
         <data_riferimento_GdC>2026-10-03</data_riferimento_GdC>"
    ));
    for (account, movements) in accounts {
        x.push_str(&format!(
            "<informazioni_conto_evidenza><conto_evidenza>{account}</conto_evidenza>\
             <descrizione_conto_evidenza>CONTO DI TESORERIA</descrizione_conto_evidenza>"
        ));
        for m in *movements {
            let (direction, document, progressive) = if m.income {
                ("ENTRATA", "SOSPESO ENTRATA", 0)
            } else {
                ("USCITA", "MANDATO", 1)
            };
            x.push_str(&format!(
                "<movimento_conto_evidenza><identificativo_flusso>2026{number:014}</identificativo_flusso>\
                 <numero_movimento>{number}</numero_movimento><tipo_movimento>{direction}</tipo_movimento>\
                 <tipo_documento>{document}</tipo_documento><tipo_operazione>{operation}</tipo_operazione>\
                 <numero_documento>{number:07}</numero_documento>\
                 <progressivo_documento>{progressive}</progressivo_documento>\
                 <importo>{units}.{cents:02}</importo><data_movimento>2026-10-03</data_movimento>\
                 <data_movimento_siope>2026-10-03</data_movimento_siope>\
                 <data_valuta_ente>2026-10-02</data_valuta_ente><tipo_esecuzione>{execution}</tipo_esecuzione>",
                number = m.number,
                operation = m.operation,
                units = m.cents / 100,
                cents = m.cents % 100,
            ));
            if let Some(trn) = m.trn {
                x.push_str(&format!(
                    "<codice_riferimento_operazione>{trn}</codice_riferimento_operazione>"
                ));
            }
            if let Some(e2e) = m.end_to_end_id {
                x.push_str(&format!("<end_to_end_id>{e2e}</end_to_end_id>"));
            }
            x.push_str(&format!(
                "<assoggettamento_bollo>ESENTE BOLLO</assoggettamento_bollo>\
                 <cliente><anagrafica_cliente>{}</anagrafica_cliente></cliente>\
                 <causale>{}</causale></movimento_conto_evidenza>",
                incasso_xml::escape(m.payer),
                incasso_xml::escape(m.causale)
            ));
        }
        x.push_str("</informazioni_conto_evidenza>");
    }
    x.push_str("</flusso_giornale_di_cassa>\n");
    x
}
