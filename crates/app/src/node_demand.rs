//! `paDemandPaymentNotice`: a citizen at a PSP asks to pay a catalogue
//! service without a notice. incasso creates the position on the spot and
//! answers like a verify, with the new notice's QR code data.
//!
//! The service-specific data (`datiSpecificiServizioRequest`) follow each
//! service's own schema in pagoPA's catalogue (for example
//! `praticaPagamentoCanoni`, `pagamentoPratica`); incasso reads the fields
//! they share: the payer (`codiceFiscalePagatore`, `denominazionePagatore`),
//! falling back to the holder (`...Intestatario`), an optional amount
//! (`importo`) for free-amount services, and an optional note.

use crate::App;
use crate::node::{payable_fault, summary};
use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::codes::check_fiscal_code;
use incasso_core::position::{
    ANONYMOUS_DEBTOR, AccountingQuota, DebtPosition, Debtor, DebtorType, OptionStatus,
    PaymentOption, Transfer,
};
use incasso_pagopa::fault::{Fault, FaultCode};
use incasso_pagopa::wire::{self, DemandRequest, Header, QrCode};
use incasso_pagopa::xml::{self, Element, Limits};

fn find_text<'a>(el: &'a Element, names: &[&str]) -> Option<&'a str> {
    if names.contains(&el.name.as_str()) && !el.text.trim().is_empty() {
        return Some(el.text.trim());
    }
    el.children.iter().find_map(|c| find_text(c, names))
}

pub async fn demand(app: &App, h: &Header, d: &DemandRequest) -> Result<String, Fault> {
    let id = h.id_pa.as_str();
    let semantic = |text: String| Fault::new(FaultCode::Semantics, id, text);
    let service = match app.store.find_service_by_pagopa_id(id, &d.service_id).await {
        Ok(Some(s)) if s.spontaneous => s,
        Ok(_) => {
            return Err(Fault::new(
                FaultCode::PaymentUnknown,
                id,
                format!(
                    "il servizio {} non ammette pagamenti spontanei presso questo ente",
                    d.service_id
                ),
            ));
        }
        Err(e) => return Err(Fault::new(FaultCode::SystemError, id, e.to_string())),
    };
    let data = xml::parse(
        &d.service_data,
        Limits {
            max_bytes: 64 * 1024,
            max_depth: 16,
            max_elements: 500,
        },
    )
    .map_err(|e| {
        Fault::new(
            FaultCode::SyntaxExtraXsd,
            id,
            format!("datiSpecificiServizioRequest: {e}"),
        )
    })?;
    let debtor_cf = find_text(
        &data,
        &[
            "codiceFiscalePagatore",
            "codiceFiscaleIntestatario",
            "codiceFiscale",
        ],
    )
    .unwrap_or(ANONYMOUS_DEBTOR)
    .to_uppercase();
    if debtor_cf != ANONYMOUS_DEBTOR && check_fiscal_code(&debtor_cf).is_err() {
        return Err(semantic(format!(
            "codice fiscale del pagatore non valido: {debtor_cf}"
        )));
    }
    let debtor_name = find_text(
        &data,
        &[
            "denominazionePagatore",
            "denominazioneIntestatario",
            "denominazione",
        ],
    )
    .unwrap_or("Pagatore")
    .chars()
    .take(70)
    .collect::<String>();
    let amount = match service.fixed_amount {
        Some(a) => a,
        None => find_text(&data, &["importo", "amount"])
            .and_then(wire::parse_amount)
            .ok_or_else(|| {
                semantic(
                    "servizio a importo libero: manca l'importo (importo, formato 0.00)".into(),
                )
            })?,
    };
    if amount.0 <= 0 {
        return Err(semantic("l'importo deve essere maggiore di zero".into()));
    }
    let ente = app
        .store
        .get_ente(id)
        .await
        .map_err(|e| Fault::new(FaultCode::SystemError, id, e.to_string()))?;
    let iban = service.iban.clone().or(ente.iban.clone()).ok_or_else(|| {
        semantic(format!(
            "nessun IBAN configurato per il servizio {}",
            service.code
        ))
    })?;
    let note = find_text(&data, &["note", "causale"]).map(str::to_string);
    let description: String = match &note {
        Some(n) => format!("{} - {n}", service.name),
        None => service.name.clone(),
    }
    .chars()
    .take(140)
    .collect();
    let now = Utc::now();
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix)
        .map_err(|e| Fault::new(FaultCode::SystemError, id, e.to_string()))?;
    let iupd = format!("SPONT-{}-{}", service.code, crate::keys::hex(&suffix));
    let kind = if debtor_cf.len() == 11 {
        DebtorType::G
    } else {
        DebtorType::F
    };
    let options = vec![PaymentOption {
        iuv: None,
        notice_number: None,
        amount,
        description: description.clone(),
        is_partial_payment: false,
        // Paid at the counter now; a day's grace covers the PSP's flow.
        due_date: now + Duration::days(1),
        retention_date: None,
        fee: Cents::ZERO,
        notification_fee: Cents::ZERO,
        status: OptionStatus::Unpaid,
        payment_date: None,
        reporting_date: None,
        metadata: vec![("servizio".into(), service.code.clone())],
        transfers: vec![Transfer {
            id_transfer: 1,
            amount,
            organization_fiscal_code: id.to_string(),
            company_name: None,
            remittance_information: description,
            category: service.taxonomy_code.clone(),
            iban: Some(iban),
            postal_iban: None,
            stamp: None,
            metadata: Vec::new(),
            quotas: service
                .default_accertamento
                .clone()
                .map(|accertamento| {
                    vec![AccountingQuota {
                        accertamento,
                        amount,
                    }]
                })
                .unwrap_or_default(),
            reported: false,
        }],
    }];
    // Demanded now and paid now: past its due date it is no longer payable.
    let position = DebtPosition {
        switch_to_expired: true,
        ..DebtPosition::draft(
            iupd.clone(),
            Debtor::named(kind, debtor_cf, debtor_name),
            ente.name.clone(),
            options,
        )
    };
    let stored = app
        .store
        .create_position(id, position, now, true)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "paDemandPaymentNotice: position refused");
            semantic(format!("posizione non creata: {e}"))
        })?;
    // The Node pays the notice it is answered: its receipt must find the
    // position after a power cut too (`Store::durable`).
    app.store
        .durable()
        .await
        .map_err(|e| crate::node::system_error(id, e))?;
    let nav = stored.position.options[0]
        .notice_number
        .as_ref()
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    payable_fault(&stored.position, 0, now, id, &nav)?;
    let s = summary(&stored.position, 0, id);
    Ok(wire::demand_response(
        &QrCode {
            fiscal_code: id.to_string(),
            notice_number: nav,
        },
        &s,
    ))
}
