//! The simulated Node and PSP: a full payment cycle against an Ente's
//! `paForNode` endpoint, exactly as pagoPA runs it.

use crate::{Faults, Route};
use chrono::Utc;
use incasso_core::Cents;
use incasso_pagopa::wire::{self, Header, QrCode, Receipt, ReceiptTransfer, Subject};
use incasso_pagopa::xml::Element;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("nessuna stazione configurata per l'ente {0} (segregazione {1:?})")]
    NoRoute(String, Option<u8>),
    #[error("numero avviso non valido: {0}")]
    BadNotice(String),
    #[error("{operation}: l'ente ha risposto KO {code}: {description}")]
    Ko {
        operation: &'static str,
        code: String,
        description: String,
    },
    #[error("{0}: l'ente non risponde: {1}")]
    Unreachable(&'static str, String),
    #[error("{0}: risposta non valida: {1}")]
    BadAnswer(&'static str, String),
}

impl SimError {
    pub fn fault_code(&self) -> Option<&str> {
        match self {
            SimError::Ko { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A PSP as it appears in receipts.
#[derive(Debug, Clone)]
pub struct Psp {
    pub id: String,
    pub fiscal_code: String,
    pub name: String,
    pub channel: String,
    pub channel_description: String,
    pub payment_method: String,
    pub fee: Cents,
}

impl Default for Psp {
    fn default() -> Self {
        Psp {
            id: "60000000001".into(),
            fiscal_code: "60000000001".into(),
            name: "Banca Simulata S.p.A.".into(),
            channel: "60000000001_01".into(),
            channel_description: "app".into(),
            payment_method: "creditCard".into(),
            fee: Cents(150),
        }
    }
}

/// What one payment produced.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    pub fiscal_code: String,
    pub notice_number: String,
    pub amount_cents: i64,
    pub receipt_ids: Vec<String>,
    pub beneficiaries: Vec<String>,
    pub psp_id: String,
    pub paid_at: String,
    /// The IUV (`creditorReferenceId`) and what went to whom: what the
    /// PSP's reporting flows list.
    pub iuv: String,
    pub transfers: Vec<PaidTransfer>,
    /// Collected without a receipt (no RPT): its flow line has outcome 9.
    pub without_receipt: bool,
}

/// One beneficiary's transfer of a payment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PaidTransfer {
    pub fiscal_code: String,
    pub index: u8,
    pub amount_cents: i64,
}

/// The Node's side of `paForNode`, for one set of routes.
#[derive(Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    soap_url: String,
    routes: Vec<Route>,
    pub psp: Psp,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl NodeClient {
    pub fn new(soap_url: impl Into<String>, routes: Vec<Route>) -> Self {
        incasso_pagopa::connector::install_crypto_provider();
        NodeClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(256)
                .build()
                .expect("HTTP client"),
            soap_url: soap_url.into(),
            routes,
            psp: Psp::default(),
        }
    }

    /// The segregation code of the Ente's first route that has one.
    pub(crate) fn segregation_of(&self, fiscal_code: &str) -> Option<u8> {
        self.routes
            .iter()
            .find(|r| r.fiscal_code == fiscal_code && r.segregation_code.is_some())
            .and_then(|r| r.segregation_code)
    }

    /// The station through which the Node reaches the Ente for this notice:
    /// the one whose segregation code the notice carries.
    pub fn header_for(
        &self,
        fiscal_code: &str,
        notice_number: Option<&str>,
    ) -> Result<Header, SimError> {
        let seg = match notice_number {
            Some(nav) => wire_segregation(nav)?,
            None => None,
        };
        self.routes
            .iter()
            .find(|r| r.fiscal_code == fiscal_code && (seg.is_none() || r.segregation_code == seg))
            .or_else(|| {
                self.routes
                    .iter()
                    .find(|r| r.fiscal_code == fiscal_code && seg.is_none())
            })
            .map(|r| Header {
                id_pa: r.fiscal_code.clone(),
                id_broker_pa: r.broker_id.clone(),
                id_station: r.station_id.clone(),
            })
            .ok_or_else(|| SimError::NoRoute(fiscal_code.to_string(), seg))
    }

    pub(crate) async fn call(
        &self,
        operation: &'static str,
        body: String,
    ) -> Result<wire::node::Response, SimError> {
        let resp = self
            .http
            .post(&self.soap_url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", operation)
            .body(body)
            .send()
            .await
            .map_err(|e| SimError::Unreachable(operation, e.to_string()))?;
        let text = resp
            .text()
            .await
            .map_err(|e| SimError::Unreachable(operation, e.to_string()))?;
        let parsed = wire::node::parse_response(text.as_bytes())
            .map_err(|e| SimError::BadAnswer(operation, e))?;
        match &parsed.fault {
            None => Ok(parsed),
            Some((code, description)) => Err(SimError::Ko {
                operation,
                code: code.clone(),
                description: description.clone(),
            }),
        }
    }

    pub async fn verify(&self, fiscal_code: &str, nav: &str) -> Result<Cents, SimError> {
        let h = self.header_for(fiscal_code, Some(nav))?;
        let qr = QrCode {
            fiscal_code: fiscal_code.into(),
            notice_number: nav.into(),
        };
        let r = self
            .call("paVerifyPaymentNotice", wire::node::verify_request(&h, &qr))
            .await?;
        r.amount()
            .ok_or_else(|| SimError::BadAnswer("paVerifyPaymentNotice", "importo mancante".into()))
    }

    /// verify, getPaymentV2, sendRTV2 to the owner and to every other
    /// beneficiary the Node can route to, with the switched-on faults.
    pub async fn pay(
        &self,
        fiscal_code: &str,
        nav: &str,
        faults: &Faults,
    ) -> Result<Payment, SimError> {
        let header = self.header_for(fiscal_code, Some(nav))?;
        let qr = QrCode {
            fiscal_code: fiscal_code.into(),
            notice_number: nav.into(),
        };
        let amount = self.verify(fiscal_code, nav).await?;
        let r = self
            .call(
                "paGetPaymentV2",
                wire::node::get_payment_request(&header, &qr, amount, true),
            )
            .await?;
        let data = r
            .data()
            .ok_or_else(|| SimError::BadAnswer("paGetPaymentV2", "data mancante".into()))?;
        let receipt = self.receipt_from(data, fiscal_code, nav, amount)?;
        if faults.late_receipt_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.late_receipt_ms)).await;
        }
        let mut receipt_ids = vec![receipt.receipt_id.clone()];
        let deliver = !faults.lose_receipt && !faults.paid_without_receipt;
        if deliver {
            self.call(
                "paSendRTV2",
                wire::node::send_rt_request(&header, &receipt, true),
            )
            .await?;
        }
        if deliver && faults.duplicate_receipt {
            // The Node resends the very same receipt: the Ente must refuse it.
            match self
                .call(
                    "paSendRTV2",
                    wire::node::send_rt_request(&header, &receipt, true),
                )
                .await
            {
                Err(SimError::Ko { code, .. }) if code == "PAA_RECEIPT_DUPLICATA" => {}
                other => tracing::warn!(
                    ?other,
                    "duplicate receipt was not refused as PAA_RECEIPT_DUPLICATA"
                ),
            }
        }
        if deliver && faults.pay_twice {
            // A PSP that charges twice: a second, different receipt.
            let mut second = receipt.clone();
            second.receipt_id = random_hex(16);
            self.call(
                "paSendRTV2",
                wire::node::send_rt_request(&header, &second, true),
            )
            .await?;
            receipt_ids.push(second.receipt_id);
        }
        let mut beneficiaries = vec![fiscal_code.to_string()];
        for t in &receipt.transfers {
            if beneficiaries.contains(&t.fiscal_code_pa) {
                continue;
            }
            beneficiaries.push(t.fiscal_code_pa.clone());
            if !deliver {
                continue;
            }
            if let Ok(h) = self.header_for(&t.fiscal_code_pa, None) {
                self.call(
                    "paSendRTV2",
                    wire::node::send_rt_request(&h, &receipt, true),
                )
                .await?;
            }
        }
        Ok(Payment {
            fiscal_code: fiscal_code.into(),
            notice_number: nav.into(),
            amount_cents: amount.0,
            receipt_ids,
            beneficiaries,
            psp_id: self.psp.id.clone(),
            paid_at: Utc::now().to_rfc3339(),
            iuv: receipt.creditor_reference_id.clone(),
            transfers: receipt
                .transfers
                .iter()
                .map(|t| PaidTransfer {
                    fiscal_code: t.fiscal_code_pa.clone(),
                    index: t.id_transfer,
                    amount_cents: t.amount.0,
                })
                .collect(),
            without_receipt: faults.paid_without_receipt,
        })
    }

    pub(crate) fn receipt_from(
        &self,
        data: &Element,
        fiscal_code: &str,
        nav: &str,
        amount: Cents,
    ) -> Result<Receipt, SimError> {
        let bad = |what: &str| SimError::BadAnswer("paGetPaymentV2", format!("{what} mancante"));
        let text = |el: &Element, name: &str| {
            el.text_of(name)
                .map(str::to_string)
                .ok_or_else(|| bad(name))
        };
        let debtor_el = data.child("debtor").ok_or_else(|| bad("debtor"))?;
        let id_el = debtor_el
            .child("uniqueIdentifier")
            .ok_or_else(|| bad("uniqueIdentifier"))?;
        let debtor = Subject {
            kind: text(id_el, "entityUniqueIdentifierType")?,
            id: text(id_el, "entityUniqueIdentifierValue")?,
            full_name: text(debtor_el, "fullName")?,
            street_name: debtor_el.text_of("streetName").map(str::to_string),
            civic_number: debtor_el.text_of("civicNumber").map(str::to_string),
            postal_code: debtor_el.text_of("postalCode").map(str::to_string),
            city: debtor_el.text_of("city").map(str::to_string),
            state_province_region: debtor_el.text_of("stateProvinceRegion").map(str::to_string),
            country: debtor_el.text_of("country").map(str::to_string),
            email: debtor_el.text_of("e-mail").map(str::to_string),
        };
        let mut transfers = Vec::new();
        for t in data
            .child("transferList")
            .ok_or_else(|| bad("transferList"))?
            .children_named("transfer")
        {
            transfers.push(ReceiptTransfer {
                id_transfer: text(t, "idTransfer")?
                    .parse()
                    .map_err(|_| bad("idTransfer"))?,
                amount: wire::parse_amount(&text(t, "transferAmount")?)
                    .ok_or_else(|| bad("transferAmount"))?,
                fiscal_code_pa: text(t, "fiscalCodePA")?,
                company_name: t.text_of("companyName").map(str::to_string),
                iban: t.text_of("IBAN").map(str::to_string),
                remittance_information: text(t, "remittanceInformation")?,
                transfer_category: text(t, "transferCategory")?,
                metadata: Vec::new(),
            });
        }
        let now = incasso_core::time::to_rome(Utc::now());
        Ok(Receipt {
            receipt_id: random_hex(16),
            notice_number: nav.into(),
            fiscal_code: fiscal_code.into(),
            outcome: "OK".into(),
            creditor_reference_id: text(data, "creditorReferenceId")?,
            payment_amount: amount,
            description: text(data, "description")?,
            company_name: text(data, "companyName")?,
            office_name: data.text_of("officeName").map(str::to_string),
            debtor: debtor.clone(),
            transfers,
            id_psp: self.psp.id.clone(),
            psp_fiscal_code: Some(self.psp.fiscal_code.clone()),
            psp_partita_iva: Some(self.psp.fiscal_code.clone()),
            psp_company_name: self.psp.name.clone(),
            id_channel: self.psp.channel.clone(),
            channel_description: self.psp.channel_description.clone(),
            payer: Some(debtor),
            payment_method: Some(self.psp.payment_method.clone()),
            payment_note: None,
            fee: Some(self.psp.fee),
            primary_ci_incurred_fee: Some(Cents::ZERO),
            id_bundle: Some("bundle-sim-0001".into()),
            id_ci_bundle: None,
            payment_date_time: Some(now),
            application_date: Some(now.date()),
            transfer_date: Some(now.date() + chrono::Duration::days(1)),
            metadata: Vec::new(),
            stand_in: Some(false),
        })
    }
}

fn wire_segregation(nav: &str) -> Result<Option<u8>, SimError> {
    incasso_core::codes::NoticeNumber::parse(nav)
        .map(|p| p.segregation_code)
        .map_err(|e| SimError::BadNotice(format!("{nav}: {e}")))
}
