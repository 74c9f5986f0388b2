//! The paForNode messages: requests parsed from the Node's SOAP, responses
//! written back; and, for the simulator, the other direction.
//!
//! Parsing checks what the XSD (`paForNode.xsd`) checks for each field that
//! incasso reads: presence, length, pattern. Anything else is a
//! `PAA_SINTASSI_EXTRAXSD` naming the field. Writing follows the XSD's
//! element order and fits every text to its declared length, so that a
//! response is valid whatever is stored.

use crate::fault::{Fault, FaultCode};
use crate::xml::{self, Element, Limits, Writer};
use base64::Engine;
use chrono::{NaiveDate, NaiveDateTime};
use incasso_core::Cents;

pub const PA_FOR_NODE_NS: &str = "http://pagopa-api.pagopa.gov.it/pa/paForNode.xsd";
pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    VerifyPaymentNotice,
    GetPayment,
    GetPaymentV2,
    SendRt,
    SendRtV2,
    DemandPaymentNotice,
}

impl Operation {
    pub fn request_element(self) -> &'static str {
        match self {
            Self::VerifyPaymentNotice => "paVerifyPaymentNoticeReq",
            Self::GetPayment => "paGetPaymentReq",
            Self::GetPaymentV2 => "paGetPaymentV2Request",
            Self::SendRt => "paSendRTReq",
            Self::SendRtV2 => "paSendRTV2Request",
            Self::DemandPaymentNotice => "paDemandPaymentNoticeRequest",
        }
    }

    pub fn response_element(self) -> &'static str {
        match self {
            Self::VerifyPaymentNotice => "paVerifyPaymentNoticeRes",
            Self::GetPayment => "paGetPaymentRes",
            Self::GetPaymentV2 => "paGetPaymentV2Response",
            Self::SendRt => "paSendRTRes",
            Self::SendRtV2 => "paSendRTV2Response",
            Self::DemandPaymentNotice => "paDemandPaymentNoticeResponse",
        }
    }

    const ALL: [Operation; 6] = [
        Self::VerifyPaymentNotice,
        Self::GetPayment,
        Self::GetPaymentV2,
        Self::SendRt,
        Self::SendRtV2,
        Self::DemandPaymentNotice,
    ];

    fn from_request_element(name: &str) -> Option<Operation> {
        Self::ALL.into_iter().find(|o| o.request_element() == name)
    }

    fn from_response_element(name: &str) -> Option<Operation> {
        Self::ALL.into_iter().find(|o| o.response_element() == name)
    }
}

/// The three identifiers every request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub id_pa: String,
    pub id_broker_pa: String,
    pub id_station: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCode {
    pub fiscal_code: String,
    pub notice_number: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Postal,
    PagoPa,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetPaymentRequest {
    pub header: Header,
    pub qr: QrCode,
    pub amount: Option<Cents>,
    pub payment_note: Option<String>,
    pub transfer_type: Option<TransferType>,
    pub due_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// `F` (natural person) or `G` (legal person).
    pub kind: String,
    pub id: String,
    pub full_name: String,
    pub street_name: Option<String>,
    pub civic_number: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub state_province_region: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptTransfer {
    pub id_transfer: u8,
    pub amount: Cents,
    pub fiscal_code_pa: String,
    pub company_name: Option<String>,
    /// `None` for a digital stamp (`MBDAttachment`).
    pub iban: Option<String>,
    pub remittance_information: String,
    pub transfer_category: String,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub receipt_id: String,
    pub notice_number: String,
    pub fiscal_code: String,
    pub outcome: String,
    pub creditor_reference_id: String,
    pub payment_amount: Cents,
    pub description: String,
    pub company_name: String,
    pub office_name: Option<String>,
    pub debtor: Subject,
    pub transfers: Vec<ReceiptTransfer>,
    pub id_psp: String,
    pub psp_fiscal_code: Option<String>,
    pub psp_partita_iva: Option<String>,
    pub psp_company_name: String,
    pub id_channel: String,
    pub channel_description: String,
    pub payer: Option<Subject>,
    pub payment_method: Option<String>,
    pub payment_note: Option<String>,
    pub fee: Option<Cents>,
    pub primary_ci_incurred_fee: Option<Cents>,
    pub id_bundle: Option<String>,
    pub id_ci_bundle: Option<String>,
    pub payment_date_time: Option<NaiveDateTime>,
    pub application_date: Option<NaiveDate>,
    pub transfer_date: Option<NaiveDate>,
    pub metadata: Vec<(String, String)>,
    pub stand_in: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemandRequest {
    pub header: Header,
    pub service_id: String,
    pub subject_service_id: String,
    /// `datiSpecificiServizioRequest`, base64-decoded: an XML document of the
    /// service's own schema.
    pub service_data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Verify {
        header: Header,
        qr: QrCode,
    },
    GetPayment {
        request: GetPaymentRequest,
        v2: bool,
    },
    SendRt {
        header: Header,
        receipt: Box<Receipt>,
        v2: bool,
    },
    Demand(DemandRequest),
}

impl Request {
    pub fn operation(&self) -> Operation {
        match self {
            Request::Verify { .. } => Operation::VerifyPaymentNotice,
            Request::GetPayment { v2: false, .. } => Operation::GetPayment,
            Request::GetPayment { v2: true, .. } => Operation::GetPaymentV2,
            Request::SendRt { v2: false, .. } => Operation::SendRt,
            Request::SendRt { v2: true, .. } => Operation::SendRtV2,
            Request::Demand(_) => Operation::DemandPaymentNotice,
        }
    }

    pub fn header(&self) -> &Header {
        match self {
            Request::Verify { header, .. } | Request::SendRt { header, .. } => header,
            Request::GetPayment { request, .. } => &request.header,
            Request::Demand(d) => &d.header,
        }
    }
}

/// Why a request could not be read. `operation` is known when the body
/// element was recognised, so the KO can be answered in the right element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub operation: Option<Operation>,
    pub id_pa: Option<String>,
    pub description: String,
}

impl SyntaxError {
    pub fn fault(&self) -> Fault {
        Fault::new(
            FaultCode::SyntaxExtraXsd,
            self.id_pa.clone().unwrap_or_default(),
            self.description.clone(),
        )
    }
}

// ------------------------------------------------------------------ reading

/// Reads field values with XSD-like checks; the first broken rule wins.
struct Fields<'a> {
    el: &'a Element,
    path: String,
}

type Fx<T> = Result<T, String>;

impl<'a> Fields<'a> {
    fn new(el: &'a Element, path: impl Into<String>) -> Self {
        Fields {
            el,
            path: path.into(),
        }
    }

    fn at(&self, name: &str) -> String {
        format!("{}/{}", self.path, name)
    }

    fn node(&self, name: &str) -> Fx<Fields<'a>> {
        self.el
            .child(name)
            .map(|c| Fields::new(c, self.at(name)))
            .ok_or_else(|| format!("elemento obbligatorio mancante: {}", self.at(name)))
    }

    fn opt_node(&self, name: &str) -> Option<Fields<'a>> {
        self.el.child(name).map(|c| Fields::new(c, self.at(name)))
    }

    fn text(&self, name: &str, min: usize, max: usize) -> Fx<String> {
        let v = self
            .el
            .text_of(name)
            .ok_or_else(|| format!("elemento obbligatorio mancante: {}", self.at(name)))?;
        let n = v.chars().count();
        if n < min || n > max {
            return Err(format!(
                "{}: lunghezza {n} fuori da {min}..{max}",
                self.at(name)
            ));
        }
        Ok(v.to_string())
    }

    fn opt_text(&self, name: &str, min: usize, max: usize) -> Fx<Option<String>> {
        match self.el.child(name) {
            None => Ok(None),
            Some(_) => self.text(name, min, max).map(Some),
        }
    }

    fn digits(&self, name: &str, len: usize) -> Fx<String> {
        let v = self.text(name, len, len)?;
        if !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{}: attese {len} cifre", self.at(name)));
        }
        Ok(v)
    }

    fn amount(&self, name: &str) -> Fx<Cents> {
        let v = self.text(name, 4, 20)?;
        parse_amount(&v)
            .ok_or_else(|| format!("{}: importo non valido '{v}' (formato 0.00)", self.at(name)))
    }

    fn opt_amount(&self, name: &str) -> Fx<Option<Cents>> {
        match self.el.child(name) {
            None => Ok(None),
            Some(_) => self.amount(name).map(Some),
        }
    }

    fn opt_date(&self, name: &str) -> Fx<Option<NaiveDate>> {
        match self.opt_text(name, 1, 40)? {
            None => Ok(None),
            Some(v) => NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| format!("{}: data non valida '{v}'", self.at(name))),
        }
    }

    fn opt_datetime(&self, name: &str) -> Fx<Option<NaiveDateTime>> {
        match self.opt_text(name, 1, 40)? {
            None => Ok(None),
            Some(v) => parse_datetime(&v)
                .map(Some)
                .ok_or_else(|| format!("{}: data-ora non valida '{v}'", self.at(name))),
        }
    }

    fn opt_bool(&self, name: &str) -> Fx<Option<bool>> {
        match self.opt_text(name, 1, 5)?.as_deref() {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(v) => Err(format!("{}: booleano non valido '{v}'", self.at(name))),
        }
    }

    fn metadata(&self) -> Fx<Vec<(String, String)>> {
        let Some(m) = self.opt_node("metadata") else {
            return Ok(Vec::new());
        };
        let entries: Vec<&Element> = m.el.children_named("mapEntry").collect();
        if entries.is_empty() || entries.len() > 15 {
            return Err(format!("{}: da 1 a 15 mapEntry", m.path));
        }
        entries
            .into_iter()
            .map(|e| {
                let f = Fields::new(e, format!("{}/mapEntry", m.path));
                Ok((f.text("key", 1, 140)?, f.text("value", 1, 140)?))
            })
            .collect()
    }

    /// The XSD allows no element it does not declare.
    fn only(&self, allowed: &[&str]) -> Fx<()> {
        match self
            .el
            .children
            .iter()
            .find(|c| !allowed.contains(&c.name.as_str()))
        {
            Some(c) => Err(format!("{}: elemento non previsto '{}'", self.path, c.name)),
            None => Ok(()),
        }
    }
}

/// `\d+\.\d{2}`, the XSD's `stAmount`.
pub fn parse_amount(s: &str) -> Option<Cents> {
    let (units, cents) = s.split_once('.')?;
    if units.is_empty() || units.len() > 15 || cents.len() != 2 {
        return None;
    }
    if !units
        .bytes()
        .chain(cents.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Cents::parse_decimal(s)
}

fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.naive_utc())
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok())
}

fn header(f: &Fields<'_>) -> Fx<Header> {
    Ok(Header {
        id_pa: f.text("idPA", 1, 35)?,
        id_broker_pa: f.text("idBrokerPA", 1, 35)?,
        id_station: f.text("idStation", 1, 35)?,
    })
}

fn qr_code(f: &Fields<'_>) -> Fx<QrCode> {
    let q = f.node("qrCode")?;
    q.only(&["fiscalCode", "noticeNumber"])?;
    Ok(QrCode {
        fiscal_code: q.digits("fiscalCode", 11)?,
        notice_number: q.digits("noticeNumber", 18)?,
    })
}

fn subject(f: &Fields<'_>) -> Fx<Subject> {
    let id = f.node("uniqueIdentifier")?;
    let kind = id.text("entityUniqueIdentifierType", 1, 1)?;
    if kind != "F" && kind != "G" {
        return Err(format!("{}: F o G", id.at("entityUniqueIdentifierType")));
    }
    Ok(Subject {
        kind,
        id: id.text("entityUniqueIdentifierValue", 2, 16)?,
        full_name: f.text("fullName", 1, 70)?,
        street_name: f.opt_text("streetName", 1, 70)?,
        civic_number: f.opt_text("civicNumber", 1, 16)?,
        postal_code: f.opt_text("postalCode", 1, 16)?,
        city: f.opt_text("city", 1, 35)?,
        state_province_region: f.opt_text("stateProvinceRegion", 1, 35)?,
        country: f.opt_text("country", 2, 2)?,
        email: f.opt_text("e-mail", 3, 256)?,
    })
}

fn receipt(f: &Fields<'_>, v2: bool) -> Fx<Receipt> {
    let r = f.node("receipt")?;
    let list = r.node("transferList")?;
    let mut transfers = Vec::new();
    for t in list.el.children_named("transfer") {
        let t = Fields::new(t, format!("{}/transfer", list.path));
        let id: u8 = t
            .text("idTransfer", 1, 1)?
            .parse()
            .ok()
            .filter(|n| (1..=5).contains(n))
            .ok_or_else(|| format!("{}: da 1 a 5", t.at("idTransfer")))?;
        let iban = t.opt_text("IBAN", 1, 35)?;
        let stamp = v2 && t.el.child("MBDAttachment").is_some();
        if iban.is_none() && !stamp {
            return Err(format!("{}: serve IBAN", t.path));
        }
        transfers.push(ReceiptTransfer {
            id_transfer: id,
            amount: t.amount("transferAmount")?,
            fiscal_code_pa: t.digits("fiscalCodePA", 11)?,
            company_name: if v2 {
                t.opt_text("companyName", 1, 140)?
            } else {
                None
            },
            iban,
            remittance_information: t.text("remittanceInformation", 1, 140)?,
            transfer_category: t.text("transferCategory", 1, 140)?,
            metadata: t.metadata()?,
        });
    }
    if transfers.is_empty() || transfers.len() > 5 {
        return Err(format!("{}: da 1 a 5 transfer", list.path));
    }
    let outcome = r.text("outcome", 2, 2)?;
    if outcome != "OK" && outcome != "KO" {
        return Err(format!("{}: OK o KO", r.at("outcome")));
    }
    Ok(Receipt {
        receipt_id: r.text("receiptId", 1, 256)?,
        notice_number: r.digits("noticeNumber", 18)?,
        fiscal_code: r.digits("fiscalCode", 11)?,
        outcome,
        creditor_reference_id: r.text("creditorReferenceId", 1, 35)?,
        payment_amount: r.amount("paymentAmount")?,
        description: r.text("description", 1, 140)?,
        company_name: r.text("companyName", 1, 140)?,
        office_name: r.opt_text("officeName", 1, 140)?,
        debtor: subject(&r.node("debtor")?)?,
        transfers,
        id_psp: r.text("idPSP", 1, 35)?,
        psp_fiscal_code: r.opt_text("pspFiscalCode", 1, 70)?,
        psp_partita_iva: r.opt_text("pspPartitaIVA", 1, 20)?,
        psp_company_name: r.text("PSPCompanyName", 1, 70)?,
        id_channel: r.text("idChannel", 1, 35)?,
        channel_description: r.text("channelDescription", 1, 35)?,
        payer: r.opt_node("payer").map(|p| subject(&p)).transpose()?,
        payment_method: r.opt_text("paymentMethod", 1, 35)?,
        payment_note: if v2 {
            r.opt_text("paymentNote", 1, 210)?
        } else {
            None
        },
        fee: r.opt_amount("fee")?,
        primary_ci_incurred_fee: if v2 {
            r.opt_amount("primaryCiIncurredFee")?
        } else {
            None
        },
        id_bundle: if v2 {
            r.opt_text("idBundle", 1, 70)?
        } else {
            None
        },
        id_ci_bundle: if v2 {
            r.opt_text("idCiBundle", 1, 70)?
        } else {
            None
        },
        payment_date_time: r.opt_datetime("paymentDateTime")?,
        application_date: r.opt_date("applicationDate")?,
        transfer_date: r.opt_date("transferDate")?,
        metadata: r.metadata()?,
        stand_in: r.opt_bool("standIn")?,
    })
}

/// Reads a SOAP 1.1 envelope from the Node. The operation is chosen by the
/// body's element, never by the SOAPAction header (the Node may omit it).
pub fn parse_request(bytes: &[u8], limits: Limits) -> Result<Request, SyntaxError> {
    let fail = |operation, id_pa, description: String| SyntaxError {
        operation,
        id_pa,
        description,
    };
    let root = xml::parse(bytes, limits).map_err(|e| fail(None, None, e.to_string()))?;
    let payload = soap_payload(&root).map_err(|d| fail(None, None, d))?;
    let operation = Operation::from_request_element(&payload.name).ok_or_else(|| {
        fail(
            None,
            None,
            format!("operazione sconosciuta: {}", payload.name),
        )
    })?;
    let id_pa = payload.text_of("idPA").map(str::to_string);
    if payload.namespace.as_deref() != Some(PA_FOR_NODE_NS) {
        return Err(fail(
            Some(operation),
            id_pa,
            format!("namespace errato: atteso {PA_FOR_NODE_NS}"),
        ));
    }
    let f = Fields::new(payload, payload.name.clone());
    let parsed = (|| -> Fx<Request> {
        Ok(match operation {
            Operation::VerifyPaymentNotice => {
                f.only(&["idPA", "idBrokerPA", "idStation", "qrCode"])?;
                Request::Verify {
                    header: header(&f)?,
                    qr: qr_code(&f)?,
                }
            }
            Operation::GetPayment | Operation::GetPaymentV2 => {
                f.only(&[
                    "idPA",
                    "idBrokerPA",
                    "idStation",
                    "qrCode",
                    "amount",
                    "paymentNote",
                    "transferType",
                    "dueDate",
                ])?;
                let transfer_type = match f.opt_text("transferType", 1, 10)?.as_deref() {
                    None => None,
                    Some("POSTAL") => Some(TransferType::Postal),
                    Some("PAGOPA") => Some(TransferType::PagoPa),
                    Some(v) => {
                        return Err(format!(
                            "{}: POSTAL o PAGOPA, non '{v}'",
                            f.at("transferType")
                        ));
                    }
                };
                Request::GetPayment {
                    request: GetPaymentRequest {
                        header: header(&f)?,
                        qr: qr_code(&f)?,
                        amount: f.opt_amount("amount")?,
                        payment_note: f.opt_text("paymentNote", 1, 210)?,
                        transfer_type,
                        due_date: f.opt_date("dueDate")?,
                    },
                    v2: operation == Operation::GetPaymentV2,
                }
            }
            Operation::SendRt | Operation::SendRtV2 => {
                f.only(&["idPA", "idBrokerPA", "idStation", "receipt"])?;
                let v2 = operation == Operation::SendRtV2;
                Request::SendRt {
                    header: header(&f)?,
                    receipt: Box::new(receipt(&f, v2)?),
                    v2,
                }
            }
            Operation::DemandPaymentNotice => {
                f.only(&[
                    "idPA",
                    "idBrokerPA",
                    "idStation",
                    "idServizio",
                    "idSoggettoServizio",
                    "datiSpecificiServizioRequest",
                ])?;
                let data = f.text("datiSpecificiServizioRequest", 1, 64 * 1024)?;
                let compact: String = data.split_whitespace().collect();
                Request::Demand(DemandRequest {
                    header: header(&f)?,
                    service_id: f.text("idServizio", 5, 5)?,
                    subject_service_id: f.text("idSoggettoServizio", 5, 5)?,
                    service_data: base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .map_err(|_| {
                            format!(
                                "{}: base64 non valido",
                                f.at("datiSpecificiServizioRequest")
                            )
                        })?,
                })
            }
        })
    })();
    parsed.map_err(|d| fail(Some(operation), id_pa, d))
}

/// A receipt request kept as received (a SOAP envelope), as a document of
/// its own: the `paSendRT(V2)Req` element, valid against `paForNode.xsd`.
pub fn receipt_document(raw: &str) -> Result<String, String> {
    let root = xml::parse(raw.as_bytes(), Limits::default()).map_err(|e| e.to_string())?;
    Ok(soap_payload(&root)?.to_document())
}

fn soap_payload(root: &Element) -> Result<&Element, String> {
    if root.name != "Envelope" || root.namespace.as_deref() != Some(SOAP_ENV_NS) {
        return Err("non è una busta SOAP 1.1".into());
    }
    let body = root
        .children
        .iter()
        .find(|c| c.name == "Body" && c.namespace.as_deref() == Some(SOAP_ENV_NS))
        .ok_or("busta SOAP senza Body")?;
    let mut elements = body.children.iter();
    match (elements.next(), elements.next()) {
        (Some(p), None) => Ok(p),
        (None, _) => Err("Body SOAP vuoto".into()),
        _ => Err("Body SOAP con più di un elemento".into()),
    }
}

// ------------------------------------------------------------------ writing

/// The text cut to the XSD's maximum length (in characters); `None` when
/// empty, since every paForNode text type has a minimum length of 1.
fn fit(s: &str, max: usize) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    Some(t.chars().take(max).collect())
}

fn fit_req(s: &str, max: usize) -> String {
    fit(s, max).unwrap_or_else(|| "-".into())
}

/// The XSD's `stEMail` pattern; an address it would refuse is left out
/// rather than make the whole answer invalid.
fn xsd_email(s: &str) -> Option<&str> {
    let (local, domain) = s.split_once('@')?;
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'));
    let domain_ok = !domain.is_empty()
        && domain
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    (local_ok && domain_ok && s.len() <= 256).then_some(s)
}

pub fn envelope(payload: &str) -> String {
    let mut s = String::with_capacity(payload.len() + 256);
    s.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:pafn="http://pagopa-api.pagopa.gov.it/pa/paForNode.xsd"><soapenv:Body>"#);
    s.push_str(payload);
    s.push_str("</soapenv:Body></soapenv:Envelope>");
    s
}

fn open_payload(w: &mut Writer, element: &str) {
    w.raw("<pafn:").raw(element).raw(">");
}

fn close_payload(w: &mut Writer, element: &str) {
    w.raw("</pafn:").raw(element).raw(">");
}

/// A KO answer for `operation` (the payload element only).
pub fn fault_response(operation: Operation, fault: &Fault) -> String {
    let mut w = Writer::new();
    let el = operation.response_element();
    open_payload(&mut w, el);
    w.leaf("outcome", "KO").open("fault");
    w.leaf("faultCode", fault.code.as_str())
        .leaf("faultString", fault.code.fault_string())
        .leaf("id", &fault.id)
        .leaf_opt("description", Some(fault.description.as_str()));
    w.close("fault");
    close_payload(&mut w, el);
    w.out
}

pub fn ok_response(operation: Operation) -> String {
    let mut w = Writer::new();
    let el = operation.response_element();
    open_payload(&mut w, el);
    w.leaf("outcome", "OK");
    close_payload(&mut w, el);
    w.out
}

/// What a verify (and a demand) answers: the amount due now and who is
/// asking for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeSummary {
    pub amount: Cents,
    pub due_date: Option<NaiveDate>,
    pub detail_description: String,
    /// Every beneficiary's account is a postal one (CCP).
    pub all_ccp: bool,
    pub payment_description: String,
    pub fiscal_code_pa: String,
    pub company_name: String,
    pub office_name: Option<String>,
}

fn write_summary(w: &mut Writer, s: &NoticeSummary) {
    w.open("paymentList").open("paymentOptionDescription");
    w.leaf("amount", &s.amount.to_decimal())
        .leaf("options", "EQ");
    if let Some(d) = s.due_date {
        w.leaf("dueDate", &d.format("%Y-%m-%d").to_string());
    }
    w.leaf_opt(
        "detailDescription",
        fit(&s.detail_description, 140).as_deref(),
    )
    .leaf("allCCP", if s.all_ccp { "true" } else { "false" });
    w.close("paymentOptionDescription").close("paymentList");
    w.leaf_opt(
        "paymentDescription",
        fit(&s.payment_description, 140).as_deref(),
    )
    .leaf("fiscalCodePA", &s.fiscal_code_pa)
    .leaf_opt("companyName", fit(&s.company_name, 140).as_deref())
    .leaf_opt(
        "officeName",
        s.office_name
            .as_deref()
            .and_then(|o| fit(o, 140))
            .as_deref(),
    );
}

pub fn verify_response(s: &NoticeSummary) -> String {
    let mut w = Writer::new();
    let el = Operation::VerifyPaymentNotice.response_element();
    open_payload(&mut w, el);
    w.leaf("outcome", "OK");
    write_summary(&mut w, s);
    close_payload(&mut w, el);
    w.out
}

pub fn demand_response(qr: &QrCode, s: &NoticeSummary) -> String {
    let mut w = Writer::new();
    let el = Operation::DemandPaymentNotice.response_element();
    open_payload(&mut w, el);
    w.leaf("outcome", "OK")
        .open("qrCode")
        .leaf("fiscalCode", &qr.fiscal_code)
        .leaf("noticeNumber", &qr.notice_number)
        .close("qrCode");
    write_summary(&mut w, s);
    close_payload(&mut w, el);
    w.out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub hash_document: String,
    pub stamp_type: String,
    pub province: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentTransfer {
    pub id_transfer: u8,
    pub amount: Cents,
    pub fiscal_code_pa: String,
    pub company_name: Option<String>,
    pub iban: Option<String>,
    pub stamp: Option<Stamp>,
    pub remittance_information: String,
    pub transfer_category: String,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentData {
    pub creditor_reference_id: String,
    pub payment_amount: Cents,
    pub due_date: NaiveDate,
    pub retention_date: Option<NaiveDateTime>,
    pub last_payment: Option<bool>,
    pub description: String,
    pub company_name: String,
    pub office_name: Option<String>,
    pub debtor: Subject,
    pub transfers: Vec<PaymentTransfer>,
    pub metadata: Vec<(String, String)>,
}

fn write_metadata(w: &mut Writer, metadata: &[(String, String)]) {
    let entries: Vec<(String, String)> = metadata
        .iter()
        .filter_map(|(k, v)| Some((fit(k, 140)?, fit(v, 140)?)))
        .take(15)
        .collect();
    if entries.is_empty() {
        return;
    }
    w.open("metadata");
    for (k, v) in entries {
        w.open("mapEntry")
            .leaf("key", &k)
            .leaf("value", &v)
            .close("mapEntry");
    }
    w.close("metadata");
}

fn write_subject(w: &mut Writer, name: &str, s: &Subject) {
    w.open(name)
        .open("uniqueIdentifier")
        .leaf("entityUniqueIdentifierType", &s.kind)
        .leaf("entityUniqueIdentifierValue", &fit_req(&s.id, 16))
        .close("uniqueIdentifier")
        .leaf("fullName", &fit_req(&s.full_name, 70))
        .leaf_opt(
            "streetName",
            s.street_name.as_deref().and_then(|v| fit(v, 70)).as_deref(),
        )
        .leaf_opt(
            "civicNumber",
            s.civic_number
                .as_deref()
                .and_then(|v| fit(v, 16))
                .as_deref(),
        )
        .leaf_opt(
            "postalCode",
            s.postal_code.as_deref().and_then(|v| fit(v, 16)).as_deref(),
        )
        .leaf_opt(
            "city",
            s.city.as_deref().and_then(|v| fit(v, 35)).as_deref(),
        )
        .leaf_opt(
            "stateProvinceRegion",
            s.state_province_region
                .as_deref()
                .and_then(|v| fit(v, 35))
                .as_deref(),
        )
        .leaf_opt(
            "country",
            s.country
                .as_deref()
                .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())),
        )
        .leaf_opt("e-mail", s.email.as_deref().and_then(xsd_email))
        .close(name);
}

/// paGetPayment(V2)'s answer. V1 cannot carry a digital stamp; the caller
/// refuses such a position before calling this.
pub fn get_payment_response(data: &PaymentData, v2: bool) -> String {
    let mut w = Writer::new();
    let op = if v2 {
        Operation::GetPaymentV2
    } else {
        Operation::GetPayment
    };
    let el = op.response_element();
    open_payload(&mut w, el);
    w.leaf("outcome", "OK").open("data");
    w.leaf(
        "creditorReferenceId",
        &fit_req(&data.creditor_reference_id, 35),
    )
    .leaf("paymentAmount", &data.payment_amount.to_decimal())
    .leaf("dueDate", &data.due_date.format("%Y-%m-%d").to_string());
    if let Some(r) = data.retention_date {
        w.leaf("retentionDate", &r.format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    if let Some(l) = data.last_payment {
        w.leaf("lastPayment", if l { "true" } else { "false" });
    }
    w.leaf("description", &fit_req(&data.description, 140));
    if v2 {
        w.leaf("companyName", &fit_req(&data.company_name, 140));
    } else {
        w.leaf_opt("companyName", fit(&data.company_name, 140).as_deref());
    }
    w.leaf_opt(
        "officeName",
        data.office_name
            .as_deref()
            .and_then(|o| fit(o, 140))
            .as_deref(),
    );
    write_subject(&mut w, "debtor", &data.debtor);
    w.open("transferList");
    for t in &data.transfers {
        w.open("transfer")
            .leaf("idTransfer", &t.id_transfer.to_string())
            .leaf("transferAmount", &t.amount.to_decimal())
            .leaf("fiscalCodePA", &t.fiscal_code_pa);
        if v2 {
            w.leaf_opt(
                "companyName",
                t.company_name
                    .as_deref()
                    .and_then(|c| fit(c, 140))
                    .as_deref(),
            );
        }
        match (&t.iban, &t.stamp) {
            (_, Some(s)) if v2 => {
                w.open("richiestaMarcaDaBollo")
                    .leaf("hashDocumento", &s.hash_document)
                    .leaf("tipoBollo", &s.stamp_type)
                    .leaf("provinciaResidenza", &s.province)
                    .close("richiestaMarcaDaBollo");
            }
            (Some(iban), _) => {
                w.leaf("IBAN", iban);
            }
            _ => {
                w.leaf("IBAN", "-");
            }
        }
        w.leaf(
            "remittanceInformation",
            &fit_req(&t.remittance_information, 140),
        )
        .leaf("transferCategory", &fit_req(&t.transfer_category, 140));
        write_metadata(&mut w, &t.metadata);
        w.close("transfer");
    }
    w.close("transferList");
    write_metadata(&mut w, &data.metadata);
    w.close("data");
    close_payload(&mut w, el);
    w.out
}

// ------------------------------------------------------------------ the Node's side

/// Requests as the Node sends them: used by the simulator and by tests.
pub mod node {
    use super::*;

    fn header(w: &mut Writer, h: &Header) {
        w.leaf("idPA", &h.id_pa)
            .leaf("idBrokerPA", &h.id_broker_pa)
            .leaf("idStation", &h.id_station);
    }

    fn qr(w: &mut Writer, q: &QrCode) {
        w.open("qrCode")
            .leaf("fiscalCode", &q.fiscal_code)
            .leaf("noticeNumber", &q.notice_number)
            .close("qrCode");
    }

    pub fn verify_request(h: &Header, q: &QrCode) -> String {
        let mut w = Writer::new();
        open_payload(&mut w, "paVerifyPaymentNoticeReq");
        header(&mut w, h);
        qr(&mut w, q);
        close_payload(&mut w, "paVerifyPaymentNoticeReq");
        envelope(&w.out)
    }

    pub fn get_payment_request(h: &Header, q: &QrCode, amount: Cents, v2: bool) -> String {
        let el = if v2 {
            "paGetPaymentV2Request"
        } else {
            "paGetPaymentReq"
        };
        let mut w = Writer::new();
        open_payload(&mut w, el);
        header(&mut w, h);
        qr(&mut w, q);
        w.leaf("amount", &amount.to_decimal())
            .leaf("transferType", "PAGOPA");
        close_payload(&mut w, el);
        envelope(&w.out)
    }

    pub fn send_rt_request(h: &Header, r: &Receipt, v2: bool) -> String {
        let el = if v2 {
            "paSendRTV2Request"
        } else {
            "paSendRTReq"
        };
        let mut w = Writer::new();
        open_payload(&mut w, el);
        header(&mut w, h);
        w.open("receipt")
            .leaf("receiptId", &r.receipt_id)
            .leaf("noticeNumber", &r.notice_number)
            .leaf("fiscalCode", &r.fiscal_code)
            .leaf("outcome", &r.outcome)
            .leaf("creditorReferenceId", &r.creditor_reference_id)
            .leaf("paymentAmount", &r.payment_amount.to_decimal())
            .leaf("description", &fit_req(&r.description, 140))
            .leaf("companyName", &fit_req(&r.company_name, 140))
            .leaf_opt("officeName", r.office_name.as_deref());
        write_subject(&mut w, "debtor", &r.debtor);
        w.open("transferList");
        for t in &r.transfers {
            w.open("transfer")
                .leaf("idTransfer", &t.id_transfer.to_string())
                .leaf("transferAmount", &t.amount.to_decimal())
                .leaf("fiscalCodePA", &t.fiscal_code_pa);
            if v2 {
                w.leaf_opt("companyName", t.company_name.as_deref());
            }
            w.leaf("IBAN", t.iban.as_deref().unwrap_or("-"))
                .leaf(
                    "remittanceInformation",
                    &fit_req(&t.remittance_information, 140),
                )
                .leaf("transferCategory", &t.transfer_category);
            write_metadata(&mut w, &t.metadata);
            w.close("transfer");
        }
        w.close("transferList")
            .leaf("idPSP", &r.id_psp)
            .leaf_opt("pspFiscalCode", r.psp_fiscal_code.as_deref())
            .leaf_opt("pspPartitaIVA", r.psp_partita_iva.as_deref())
            .leaf("PSPCompanyName", &r.psp_company_name)
            .leaf("idChannel", &r.id_channel)
            .leaf("channelDescription", &r.channel_description);
        if let Some(p) = &r.payer {
            write_subject(&mut w, "payer", p);
        }
        w.leaf_opt("paymentMethod", r.payment_method.as_deref());
        if v2 {
            w.leaf_opt("paymentNote", r.payment_note.as_deref());
        }
        if let Some(fee) = r.fee {
            w.leaf("fee", &fee.to_decimal());
        }
        if v2 {
            if let Some(f) = r.primary_ci_incurred_fee {
                w.leaf("primaryCiIncurredFee", &f.to_decimal());
            }
            w.leaf_opt("idBundle", r.id_bundle.as_deref())
                .leaf_opt("idCiBundle", r.id_ci_bundle.as_deref());
        }
        if let Some(t) = r.payment_date_time {
            w.leaf(
                "paymentDateTime",
                &t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            );
        }
        if let Some(d) = r.application_date {
            w.leaf("applicationDate", &d.format("%Y-%m-%d").to_string());
        }
        if let Some(d) = r.transfer_date {
            w.leaf("transferDate", &d.format("%Y-%m-%d").to_string());
        }
        write_metadata(&mut w, &r.metadata);
        if let Some(s) = r.stand_in {
            w.leaf("standIn", if s { "true" } else { "false" });
        }
        w.close("receipt");
        close_payload(&mut w, el);
        envelope(&w.out)
    }

    /// A response as the Node reads it: the outcome, the fault if any, and
    /// the payload element to read further.
    #[derive(Debug, Clone)]
    pub struct Response {
        pub operation: Operation,
        pub fault: Option<(String, String)>,
        pub payload: Element,
    }

    impl Response {
        pub fn is_ok(&self) -> bool {
            self.fault.is_none()
        }

        pub fn fault_code(&self) -> Option<&str> {
            self.fault.as_ref().map(|(c, _)| c.as_str())
        }

        /// Verify: the amount to pay.
        pub fn amount(&self) -> Option<Cents> {
            self.payload
                .child("paymentList")?
                .child("paymentOptionDescription")?
                .text_of("amount")
                .and_then(parse_amount)
        }

        /// getPayment: the data block.
        pub fn data(&self) -> Option<&Element> {
            self.payload.child("data")
        }
    }

    pub fn parse_response(bytes: &[u8]) -> Result<Response, String> {
        let root = xml::parse(bytes, Limits::default()).map_err(|e| e.to_string())?;
        let payload = soap_payload(&root)?;
        let operation = Operation::from_response_element(&payload.name)
            .ok_or_else(|| format!("risposta sconosciuta: {}", payload.name))?;
        let outcome = payload.text_of("outcome").unwrap_or_default();
        let fault = if outcome == "OK" {
            None
        } else {
            let f = payload.child("fault");
            Some((
                f.and_then(|f| f.text_of("faultCode"))
                    .unwrap_or("?")
                    .to_string(),
                f.and_then(|f| f.text_of("description"))
                    .unwrap_or("")
                    .to_string(),
            ))
        };
        Ok(Response {
            operation,
            fault,
            payload: payload.clone(),
        })
    }
}
