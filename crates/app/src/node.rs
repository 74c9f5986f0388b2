//! The Node's payment decisions behind `paForNode`: which Ente and station
//! may ask, which notices can be paid, what a payment carries, and how a
//! receipt is kept. The SOAP door only parses and renders; every answer
//! (OK or the fault GPD gives for the state) is decided here.

use crate::App;
use chrono::{DateTime, Utc};
use incasso_core::codes::NoticeNumber;
use incasso_core::ente::StationLink;
use incasso_core::position::{DebtPosition, OptionStatus, PositionStatus};
use incasso_core::time::to_rome;
use incasso_pagopa::fault::{Fault, FaultCode};
use incasso_pagopa::wire::{
    self, GetPaymentRequest, Header, NoticeSummary, Operation, PaymentData, PaymentTransfer,
    QrCode, Receipt, Request, Stamp, Subject, TransferType,
};
use incasso_store::{ReceiptRecord, StoreError, StoredPosition};

pub type Answer = Result<String, Fault>;

/// The answer to one of the Node's requests: the response payload, or the
/// fault GPD gives. `raw` is the request as received, kept with a receipt.
pub async fn answer(app: &App, request: Request, raw: String) -> Answer {
    let header = request.header().clone();
    let station = check_station(app, &header).await?;
    match request {
        Request::Verify { qr, .. } => {
            let (stored, index) = find_payable(app, &header, &station, &qr).await?;
            Ok(wire::verify_response(&summary(
                &stored.position,
                index,
                &header.id_pa,
            )))
        }
        Request::GetPayment { request, v2 } => {
            get_payment(app, &header, &station, &request, v2).await
        }
        Request::SendRt { receipt, v2, .. } => {
            send_rt(app, &header, &station, &receipt, v2, raw).await
        }
        Request::Demand(d) => crate::node_demand::demand(app, &header, &d).await,
    }
}

pub(crate) fn system_error(id: &str, e: StoreError) -> Fault {
    tracing::error!(error = %e, "paForNode: store failure");
    Fault::new(
        FaultCode::SystemError,
        id,
        "errore interno dell'Ente Creditore",
    )
}

/// `idPA` must be an Ente incasso serves, `idStation` one of its stations,
/// and `idBrokerPA` that station's intermediary.
async fn check_station(app: &App, h: &Header) -> Result<StationLink, Fault> {
    let stations = match app.stations.get(&app.store, &h.id_pa).await {
        Ok(s) => s,
        Err(e) => return Err(system_error(&h.id_pa, e)),
    };
    if stations.is_empty() {
        // Either unknown, or known but not connected through any station.
        return Err(Fault::new(
            FaultCode::WrongDomain,
            &h.id_pa,
            format!(
                "l'Ente Creditore {} non è servito da questa piattaforma",
                h.id_pa
            ),
        ));
    }
    match stations.iter().find(|s| s.station_id == h.id_station) {
        Some(s) if s.broker_id == h.id_broker_pa => Ok(s.clone()),
        Some(_) => Err(Fault::new(
            FaultCode::WrongBroker,
            &h.id_pa,
            format!(
                "la stazione {} non appartiene all'intermediario {}",
                h.id_station, h.id_broker_pa
            ),
        )),
        None if stations.iter().any(|s| s.broker_id == h.id_broker_pa) => Err(Fault::new(
            FaultCode::WrongStation,
            &h.id_pa,
            format!(
                "la stazione {} non è configurata per l'ente {}",
                h.id_station, h.id_pa
            ),
        )),
        None => Err(Fault::new(
            FaultCode::WrongBroker,
            &h.id_pa,
            format!(
                "l'intermediario {} non serve l'ente {}",
                h.id_broker_pa, h.id_pa
            ),
        )),
    }
}

/// A notice that belongs to the station that asks: a current (aux 3)
/// notice carries its station's segregation code.
fn check_notice(h: &Header, station: &StationLink, qr: &QrCode) -> Result<(), Fault> {
    if qr.fiscal_code != h.id_pa {
        return Err(Fault::new(
            FaultCode::WrongDomain,
            &h.id_pa,
            format!(
                "il codice fiscale {} dell'avviso non corrisponde a idPA",
                qr.fiscal_code
            ),
        ));
    }
    let parsed = NoticeNumber::parse(&qr.notice_number).map_err(|e| {
        Fault::new(
            FaultCode::PaymentUnknown,
            &h.id_pa,
            format!("numero avviso {} non valido: {e}", qr.notice_number),
        )
    })?;
    if let Some(seg) = parsed.segregation_code
        && seg != station.segregation_code
    {
        return Err(Fault::new(
            FaultCode::WrongStation,
            &h.id_pa,
            format!(
                "l'avviso {} (segregazione {seg:02}) appartiene a un'altra stazione, non a {}",
                qr.notice_number, station.station_id
            ),
        ));
    }
    Ok(())
}

/// The position and option index of a notice that can be paid now, or the
/// fault GPD answers for its state.
async fn find_payable(
    app: &App,
    h: &Header,
    station: &StationLink,
    qr: &QrCode,
) -> Result<(StoredPosition, usize), Fault> {
    check_notice(h, station, qr)?;
    let (stored, index) = match app
        .store
        .find_by_notice_number(&h.id_pa, &qr.notice_number)
        .await
    {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => {
            return Err(Fault::new(
                FaultCode::PaymentUnknown,
                &h.id_pa,
                format!(
                    "nessuna posizione debitoria per il numero avviso {}",
                    qr.notice_number
                ),
            ));
        }
        Err(e) => return Err(system_error(&h.id_pa, e)),
    };
    payable_fault(
        &stored.position,
        index,
        app.clock.now(),
        &h.id_pa,
        &qr.notice_number,
    )?;
    Ok((stored, index))
}

/// GPD's mapping of position states to Node faults.
pub(crate) fn payable_fault(
    p: &DebtPosition,
    index: usize,
    now: DateTime<Utc>,
    id: &str,
    nav: &str,
) -> Result<(), Fault> {
    let fault = |code, text: &str| Err(Fault::new(code, id, format!("avviso {nav}: {text}")));
    let option = &p.options[index];
    if option.status != OptionStatus::Unpaid {
        return fault(FaultCode::PaymentDuplicate, "già pagato");
    }
    match p.effective_status(now) {
        PositionStatus::Valid => Ok(()),
        PositionStatus::PartiallyPaid if option.is_partial_payment => Ok(()),
        PositionStatus::PartiallyPaid => fault(
            FaultCode::PaymentDuplicate,
            "una rata è già stata pagata: la soluzione unica non è più pagabile",
        ),
        PositionStatus::Paid | PositionStatus::Reported => {
            fault(FaultCode::PaymentDuplicate, "posizione già pagata")
        }
        PositionStatus::Expired => fault(FaultCode::PaymentExpired, "posizione scaduta"),
        PositionStatus::Invalid => fault(FaultCode::PaymentCancelled, "posizione annullata"),
        PositionStatus::Draft | PositionStatus::Published => fault(
            FaultCode::PaymentUnknown,
            "posizione non ancora pubblicata o non ancora valida",
        ),
    }
}

fn rome_date(t: DateTime<Utc>) -> chrono::NaiveDate {
    to_rome(t).date()
}

pub(crate) fn summary(p: &DebtPosition, index: usize, id_pa: &str) -> NoticeSummary {
    let o = &p.options[index];
    let all_ccp = o.transfers.iter().all(|t| {
        t.postal_iban.is_some()
            || t.iban
                .as_deref()
                .is_some_and(incasso_core::codes::is_postal_iban)
    });
    NoticeSummary {
        amount: o.amount,
        due_date: Some(rome_date(o.due_date)),
        detail_description: o.description.clone(),
        all_ccp,
        payment_description: o.description.clone(),
        fiscal_code_pa: id_pa.to_string(),
        // Required, and validated non-empty, on every position.
        company_name: p.company_name.clone(),
        office_name: p.office_name.clone(),
    }
}

async fn get_payment(
    app: &App,
    h: &Header,
    station: &StationLink,
    req: &GetPaymentRequest,
    v2: bool,
) -> Answer {
    let (mut stored, mut index) = find_payable(app, h, station, &req.qr).await?;
    // A portal's spontaneous payment being paid is kept from the
    // abandonment job; one it cancelled meanwhile is answered as it is now.
    match crate::portal::spontaneous::hold_for_node(app, &h.id_pa, &stored.position.iupd).await {
        Ok(true) => {}
        Ok(false) => (stored, index) = find_payable(app, h, station, &req.qr).await?,
        Err(e) => return Err(system_error(&h.id_pa, e)),
    }
    let p = &stored.position;
    let o = &p.options[index];
    if let Some(amount) = req.amount
        && amount != o.amount
    {
        return Err(Fault::new(
            FaultCode::Semantics,
            &h.id_pa,
            format!(
                "importo richiesto {} diverso da quello dovuto {}",
                amount.to_decimal(),
                o.amount.to_decimal()
            ),
        ));
    }
    if !v2 && o.transfers.iter().any(|t| t.stamp.is_some()) {
        return Err(Fault::new(
            FaultCode::Semantics,
            &h.id_pa,
            "l'avviso comprende una marca da bollo digitale: usare paGetPaymentV2",
        ));
    }
    let postal = req.transfer_type == Some(TransferType::Postal);
    let transfers = o
        .transfers
        .iter()
        .map(|t| PaymentTransfer {
            id_transfer: t.id_transfer,
            amount: t.amount,
            fiscal_code_pa: t.organization_fiscal_code.clone(),
            company_name: t.company_name.clone().or_else(|| {
                (t.organization_fiscal_code == h.id_pa).then(|| p.company_name.clone())
            }),
            iban: if postal {
                t.postal_iban.clone().or(t.iban.clone())
            } else {
                t.iban.clone().or(t.postal_iban.clone())
            },
            stamp: t.stamp.as_ref().map(|s| Stamp {
                hash_document: s.hash_document.clone(),
                stamp_type: s.stamp_type.clone(),
                province: s.provincial_residence.clone(),
            }),
            remittance_information: t.remittance_information.clone(),
            transfer_category: t.category.clone(),
            metadata: t.metadata.clone(),
        })
        .collect();
    let d = &p.debtor;
    let data = PaymentData {
        creditor_reference_id: o.iuv.clone().unwrap_or_default(),
        payment_amount: o.amount,
        due_date: rome_date(o.due_date),
        retention_date: o.retention_date.map(to_rome),
        last_payment: None,
        description: o.description.clone(),
        company_name: p.company_name.clone(),
        office_name: p.office_name.clone(),
        debtor: Subject {
            kind: d.kind.as_str().to_string(),
            id: d.fiscal_code.clone(),
            full_name: d.full_name.clone(),
            street_name: d.street_name.clone(),
            civic_number: d.civic_number.clone(),
            postal_code: d.postal_code.clone(),
            city: d.city.clone(),
            state_province_region: d.province.clone().or(d.region.clone()),
            country: d.country.clone(),
            email: d.email.clone(),
        },
        transfers,
        metadata: o.metadata.clone(),
    };
    Ok(wire::get_payment_response(&data, v2))
}

async fn send_rt(
    app: &App,
    h: &Header,
    station: &StationLink,
    r: &Receipt,
    v2: bool,
    raw: String,
) -> Answer {
    // The owner's copy must come through the station that owns the notice;
    // a secondary beneficiary's copy concerns a notice of another Ente.
    if r.fiscal_code == h.id_pa {
        check_notice(
            h,
            station,
            &QrCode {
                fiscal_code: r.fiscal_code.clone(),
                notice_number: r.notice_number.clone(),
            },
        )?;
    } else if !r.transfers.iter().any(|t| t.fiscal_code_pa == h.id_pa) {
        return Err(Fault::new(
            FaultCode::Semantics,
            &h.id_pa,
            "la ricevuta non contiene versamenti a favore di questo ente",
        ));
    }
    let iuv = NoticeNumber::parse(&r.notice_number)
        .map(|p| p.iuv)
        .unwrap_or_else(|_| r.creditor_reference_id.clone());
    let transfers_json = serde_json::to_string(
        &r.transfers
            .iter()
            .map(|t| {
                serde_json::json!({
                    "idTransfer": t.id_transfer, "amount": t.amount.0, "fiscalCodePA": t.fiscal_code_pa,
                    "iban": t.iban, "remittanceInformation": t.remittance_information,
                    "transferCategory": t.transfer_category,
                })
            })
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into());
    let record = ReceiptRecord {
        debtor: Some(r.debtor.id.clone()).filter(|d| !d.is_empty()),
        ente: h.id_pa.clone(),
        receipt_id: r.receipt_id.clone(),
        notice_number: r.notice_number.clone(),
        iuv,
        owner_ente: r.fiscal_code.clone(),
        outcome: r.outcome.clone(),
        amount: r.payment_amount.0,
        fee: r.fee.map(|f| f.0),
        psp_id: r.id_psp.clone(),
        psp_name: r.psp_company_name.clone(),
        channel_id: r.id_channel.clone(),
        payment_method: r.payment_method.clone(),
        // pagoPA's paymentDateTime carries no zone: it is Italian time.
        payment_date_time: r.payment_date_time.map(incasso_core::time::from_rome),
        application_date: r.application_date.map(|d| d.to_string()),
        transfer_date: r.transfer_date.map(|d| d.to_string()),
        station_id: h.id_station.clone(),
        primitive: if v2 { "paSendRTV2" } else { "paSendRT" }.into(),
        stand_in: r.stand_in.unwrap_or(false),
        transfers_json,
        raw_xml: raw,
    };
    match app
        .store
        .record_receipt_for_node(&record, app.clock.now())
        .await
    {
        Ok(recorded) => {
            tracing::debug!(outcome = ?recorded.outcome, "receipt stored");
            // Its PAID event (if any) is committed: the webhooks need not
            // wait for their next look.
            crate::webhooks::wake();
            // Committed: now the payer's e-mail, queued once per receipt
            // id (a paid notice's copy only; a KO receipt paid nothing).
            if record.owner_ente == record.ente && record.outcome == "OK" {
                let rt_email = r
                    .payer
                    .as_ref()
                    .and_then(|p| p.email.as_deref())
                    .or(r.debtor.email.as_deref());
                crate::mail::after_receipt(
                    app,
                    &record.ente,
                    &record.receipt_id,
                    &record.notice_number,
                    rt_email,
                )
                .await;
                // A desk's card terminal may be waiting for this receipt.
                if recorded.may_be_held_by_pos {
                    crate::pos::after_receipt(
                        app,
                        &record.ente,
                        &record.notice_number,
                        &record.receipt_id,
                        record.payment_date_time,
                    )
                    .await;
                }
            }
            // pagoPA never sends again a receipt the Ente acknowledged: it
            // must survive a power cut before the OK leaves.
            if let Err(e) = app.store.durable().await {
                return Err(system_error(&h.id_pa, e));
            }
            Ok(wire::ok_response(if v2 {
                Operation::SendRtV2
            } else {
                Operation::SendRt
            }))
        }
        Err(StoreError::Conflict(_)) => {
            // The first copy may still be on its way to the disk, and this
            // answer acknowledges it too.
            if let Err(e) = app.store.durable().await {
                return Err(system_error(&h.id_pa, e));
            }
            Err(Fault::new(
                FaultCode::ReceiptDuplicate,
                &h.id_pa,
                format!("ricevuta {} già ricevuta", r.receipt_id),
            ))
        }
        Err(e) => Err(system_error(&h.id_pa, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use incasso_core::Cents;
    use incasso_core::accertamento::AccertamentoRef;
    use incasso_core::sample::{self, PositionSpec};

    fn position(switch_to_expired: bool) -> DebtPosition {
        let mut p = sample::position(&PositionSpec {
            ente: "80000130585",
            company_name: "Comune",
            iupd: "P".into(),
            debtor_index: 1,
            amount: Cents(1000),
            description: "TARI".into(),
            category: "9/0101101IM/",
            iban: "IT65B0200805364000104567891",
            due_date: Utc::now() + chrono::Duration::days(10),
            installments: 2,
            second_beneficiary: None,
            quotas: vec![(
                AccertamentoRef {
                    year: 2026,
                    code: "A".into(),
                },
                100,
            )],
        });
        p.switch_to_expired = switch_to_expired;
        p
    }

    fn code(p: &DebtPosition, index: usize, now: DateTime<Utc>) -> Option<FaultCode> {
        payable_fault(p, index, now, "80000130585", "301")
            .err()
            .map(|f| f.code)
    }

    /// GPD's state-to-fault table, including the states that need time to
    /// pass (expiry), which the HTTP tests cannot wait for.
    #[test]
    fn states_map_to_gpd_faults() {
        let now = Utc::now();
        let mut p = position(true);
        assert_eq!(code(&p, 0, now), Some(FaultCode::PaymentUnknown), "draft");
        p.publish(now).unwrap();
        assert_eq!(code(&p, 0, now), None, "valid");
        let later = now + chrono::Duration::days(90);
        assert_eq!(
            code(&p, 0, later),
            Some(FaultCode::PaymentExpired),
            "expired"
        );
        let mut kept = position(false);
        kept.publish(now).unwrap();
        assert_eq!(
            code(&kept, 0, later),
            None,
            "no switchToExpired: still payable"
        );
        kept.pay_option(1, now, now).unwrap();
        assert_eq!(
            code(&kept, 1, now),
            Some(FaultCode::PaymentDuplicate),
            "paid installment"
        );
        assert_eq!(code(&kept, 2, now), None, "next installment");
        assert_eq!(
            code(&kept, 0, now),
            Some(FaultCode::PaymentDuplicate),
            "single solution after an installment"
        );
        let mut cancelled = position(false);
        cancelled.publish(now).unwrap();
        cancelled.invalidate(now).unwrap();
        assert_eq!(code(&cancelled, 0, now), Some(FaultCode::PaymentCancelled));
    }
}
