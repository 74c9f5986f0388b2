//! From records to debt positions: the layout's rules give each target field
//! its value; rows with the same key become one position (a row per
//! installment or single solution); the catalogue fills what the file does
//! not say (taxonomy, IBAN, accertamento).

use crate::layout::{AmountFormat, Case, DateFormat, FieldRule, Layout};
use crate::read::Record;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::catalogue::Service;
use incasso_core::ente::Ente;
use incasso_core::position::{
    AccountingQuota, DebtPosition, Debtor, DebtorType, OptionStatus, PaymentOption, Transfer,
};
use std::collections::{BTreeMap, HashMap};

/// One problem with one row, as the per-row report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub field: String,
    pub value: String,
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Cancel,
}

impl Op {
    /// The operation's name as a clerk reads it in a report.
    pub fn label(self) -> &'static str {
        match self {
            Op::Insert => "inserimento",
            Op::Update => "modifica",
            Op::Cancel => "annullamento",
        }
    }
}

/// A row's target values, after the layout's rules.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: usize,
    pub key: String,
    pub op: Op,
    pub values: BTreeMap<String, String>,
}

fn apply_text(rule: &FieldRule, mut v: String) -> String {
    if rule.trim {
        v = v.trim().to_string();
    }
    if v.is_empty()
        && let Some(d) = &rule.default
    {
        v = d.clone();
    }
    match rule.case {
        Some(Case::Upper) => v = v.to_uppercase(),
        Some(Case::Lower) => v = v.to_lowercase(),
        None => {}
    }
    if let Some(len) = rule.pad
        && !v.is_empty()
    {
        let n = v.chars().count();
        if n < len {
            let c = rule.pad_char.unwrap_or('0');
            v = std::iter::repeat_n(c, len - n).chain(v.chars()).collect();
        }
    }
    v
}

fn source(rule: &FieldRule, r: &Record) -> String {
    if let Some(c) = &rule.constant {
        return c.clone();
    }
    if !rule.join.is_empty() {
        let sep = rule.separator.as_deref().unwrap_or(" ");
        return rule
            .join
            .iter()
            .filter_map(|c| r.get(c))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(sep);
    }
    if let Some(by) = &rule.choose_by {
        let selector = r.get(by).unwrap_or("").trim();
        return rule
            .cases
            .get(selector)
            .or_else(|| rule.cases.get("*"))
            .and_then(|col| r.get(col))
            .unwrap_or("")
            .to_string();
    }
    let Some(col) = &rule.column else {
        return String::new();
    };
    let raw = r.get(col).unwrap_or("");
    match &rule.split {
        Some(sep) => raw
            .split(sep.as_str())
            .nth(rule.index)
            .unwrap_or("")
            .to_string(),
        None => raw.to_string(),
    }
}

/// Parses an amount in the given form into cents; `None` if it is not one.
/// An amount in `format`; `None` if it is not one, or is beyond
/// [`Cents::MAX_AMOUNT`] either way.
pub fn parse_amount(s: &str, format: AmountFormat) -> Option<Cents> {
    let s = s.trim();
    match format {
        AmountFormat::Cents => s.parse::<i64>().ok().map(Cents)?.within_limit(),
        AmountFormat::Dot => Cents::parse_decimal(s),
        AmountFormat::Italian => {
            let (units, decimals) = s.split_once(',').unwrap_or((s, ""));
            // Thousands dots only in groups of three.
            let groups: Vec<&str> = units.split('.').collect();
            if groups.len() > 1
                && (groups[0].is_empty() || groups[1..].iter().any(|g| g.len() != 3))
            {
                return None;
            }
            let plain = groups.concat();
            let text = if decimals.is_empty() {
                plain
            } else {
                format!("{plain}.{decimals}")
            };
            Cents::parse_decimal(&text)
        }
    }
}

/// The number written by `len` ASCII digits at `at`, if they are digits.
fn digits(s: &[u8], at: usize, len: usize) -> Option<u32> {
    s.get(at..at + len)?.iter().try_fold(0u32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// The common, fixed-width spelling of a date (`dd/mm/yyyy`, `yyyymmdd`,
/// `yyyy-mm-dd`) read without chrono's format interpreter, which parsed
/// every date of a million-row supply anew (a tenth of its reading time).
fn fixed_width_date(s: &str, format: DateFormat) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let (y, m, d) = match (format, b.len()) {
        (DateFormat::DayMonthYear, 10) if b[2] == b'/' && b[5] == b'/' => {
            (digits(b, 6, 4)?, digits(b, 3, 2)?, digits(b, 0, 2)?)
        }
        (DateFormat::Compact, 8) => (digits(b, 0, 4)?, digits(b, 4, 2)?, digits(b, 6, 2)?),
        (DateFormat::Iso, 10) if b[4] == b'-' && b[7] == b'-' => {
            (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?)
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(y as i32, m, d)
}

fn iso_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// A date as the layout spells it, with a year of four digits: chrono
/// alone reads "01/01/26" as the year 26 and "1/1/0" as the year 0, which
/// a validity or payment date would then keep as written.
pub fn parse_date(s: &str, format: DateFormat) -> Option<NaiveDate> {
    use chrono::Datelike;
    any_year_date(s.trim(), format).filter(|d| (1000..=9999).contains(&d.year()))
}

fn any_year_date(s: &str, format: DateFormat) -> Option<NaiveDate> {
    if let Some(d) = fixed_width_date(s, format) {
        return Some(d);
    }
    match format {
        DateFormat::DayMonthYear => NaiveDate::parse_from_str(s, "%d/%m/%Y").ok(),
        DateFormat::Compact => NaiveDate::parse_from_str(s, "%Y%m%d").ok(),
        DateFormat::Iso => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| incasso_core::time::to_rome(t.with_timezone(&Utc)).date())
                .ok()
                .or_else(|| {
                    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                        .ok()
                        .map(|d| d.date())
                })
                .or_else(|| {
                    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
                        .ok()
                        .map(|d| d.date())
                })
        }),
    }
}

/// Applies the layout's rules to a record. Amounts and dates are checked
/// here (and normalized: amounts to cents, dates to `yyyy-mm-dd`), so that
/// every later step works on one form.
pub fn row(layout: &Layout, r: &Record) -> Result<Row, Vec<RowError>> {
    let mut errors = Vec::new();
    let key = layout
        .key
        .iter()
        .map(|k| r.get(k).unwrap_or("").trim().to_string())
        .collect::<Vec<_>>()
        .join("-");
    if key.is_empty() || key.chars().all(|c| c == '-') {
        errors.push(RowError {
            line: r.line,
            field: layout.key.join("+"),
            value: String::new(),
            code: "MISSING_KEY",
            message: "manca la chiave della posizione".into(),
        });
    }
    let op = match &layout.operation {
        None => Op::Insert,
        Some(rule) => {
            let v = r.get(&rule.column).unwrap_or("").trim();
            if rule.update.iter().any(|x| x == v) {
                Op::Update
            } else if rule.cancel.iter().any(|x| x == v) {
                Op::Cancel
            } else if rule.insert.iter().any(|x| x == v) || (rule.insert.is_empty() && v.is_empty())
            {
                Op::Insert
            } else if let Some(op) = rule.otherwise.as_deref().and_then(|o| match o {
                "insert" => Some(Op::Insert),
                "update" => Some(Op::Update),
                "cancel" => Some(Op::Cancel),
                _ => None,
            }) {
                op
            } else {
                errors.push(RowError {
                    line: r.line,
                    field: rule.column.clone(),
                    value: v.to_string(),
                    code: "BAD_OPERATION",
                    message: "operazione sconosciuta".into(),
                });
                Op::Insert
            }
        }
    };
    let mut values = BTreeMap::new();
    for (target, rule) in &layout.fields {
        let v = apply_text(rule, source(rule, r));
        if v.is_empty() {
            continue;
        }
        let column = rule.column.clone().unwrap_or_else(|| target.clone());
        let normalized = if let Some(f) = rule.amount {
            match parse_amount(&v, f) {
                Some(c) => Some(c.0.to_string()),
                None => {
                    errors.push(RowError {
                        line: r.line,
                        field: column,
                        value: v.clone(),
                        code: "BAD_AMOUNT",
                        message: format!("importo non valido: atteso {}", f.spelled()),
                    });
                    None
                }
            }
        } else if let Some(f) = rule.date {
            match parse_date(&v, f) {
                Some(d) => Some(iso_date(d)),
                None => {
                    errors.push(RowError {
                        line: r.line,
                        field: column,
                        value: v.clone(),
                        code: "BAD_DATE",
                        message: format!(
                            "data non valida: attesa nel formato {}, con l'anno di quattro cifre",
                            f.spelled()
                        ),
                    });
                    None
                }
            }
        } else {
            Some(v)
        };
        if let Some(n) = normalized {
            values.insert(target.clone(), n);
        }
    }
    if errors.is_empty() {
        Ok(Row {
            line: r.line,
            key,
            op,
            values,
        })
    } else {
        Err(errors)
    }
}

/// What a position needs from the Ente and its catalogue.
pub struct Context<'a> {
    pub ente: &'a Ente,
    pub services: &'a HashMap<String, Service>,
    /// The service rows name when they name none (the layout's application).
    pub default_service: Option<&'a str>,
}

/// The rows of one key, the line of each option, and the position built.
pub struct Built {
    pub key: String,
    pub op: Op,
    pub lines: Vec<usize>,
    pub position: DebtPosition,
    /// The rows' `notify.invite`: `Some(true)` asks for the App IO
    /// invitation, `Some(false)` refuses it, `None` leaves it to the
    /// service.
    pub notify_invite: Option<bool>,
}

/// A `notify.invite` value: yes or no, in the ways files say it; `None`
/// for anything else.
pub fn parse_yes_no(v: &str) -> Option<bool> {
    match v.trim().to_uppercase().as_str() {
        "S" | "SI" | "SÌ" | "Y" | "YES" | "1" | "TRUE" | "X" | "J" | "JA" => Some(true),
        "N" | "NO" | "0" | "FALSE" | "NEIN" => Some(false),
        _ => None,
    }
}

fn err(
    line: usize,
    field: &str,
    value: &str,
    code: &'static str,
    message: impl Into<String>,
) -> RowError {
    RowError {
        line,
        field: field.into(),
        value: value.into(),
        code,
        message: message.into(),
    }
}

/// The field names of transfers 1 to 5, in the order of [`TransferField`]:
/// looked up for every row, so spelled out once rather than formatted.
const TRANSFER_KEYS: [[&str; 9]; 5] = [
    [
        "transfer.1.amount",
        "transfer.1.iban",
        "transfer.1.postal_iban",
        "transfer.1.fiscal_code",
        "transfer.1.remittance",
        "transfer.1.category",
        "transfer.1.stamp_type",
        "transfer.1.stamp_hash",
        "transfer.1.stamp_province",
    ],
    [
        "transfer.2.amount",
        "transfer.2.iban",
        "transfer.2.postal_iban",
        "transfer.2.fiscal_code",
        "transfer.2.remittance",
        "transfer.2.category",
        "transfer.2.stamp_type",
        "transfer.2.stamp_hash",
        "transfer.2.stamp_province",
    ],
    [
        "transfer.3.amount",
        "transfer.3.iban",
        "transfer.3.postal_iban",
        "transfer.3.fiscal_code",
        "transfer.3.remittance",
        "transfer.3.category",
        "transfer.3.stamp_type",
        "transfer.3.stamp_hash",
        "transfer.3.stamp_province",
    ],
    [
        "transfer.4.amount",
        "transfer.4.iban",
        "transfer.4.postal_iban",
        "transfer.4.fiscal_code",
        "transfer.4.remittance",
        "transfer.4.category",
        "transfer.4.stamp_type",
        "transfer.4.stamp_hash",
        "transfer.4.stamp_province",
    ],
    [
        "transfer.5.amount",
        "transfer.5.iban",
        "transfer.5.postal_iban",
        "transfer.5.fiscal_code",
        "transfer.5.remittance",
        "transfer.5.category",
        "transfer.5.stamp_type",
        "transfer.5.stamp_hash",
        "transfer.5.stamp_province",
    ],
];

#[derive(Clone, Copy)]
enum TransferField {
    Amount,
    Iban,
    PostalIban,
    FiscalCode,
    Remittance,
    Category,
    StampType,
    StampHash,
    StampProvince,
}

/// `quota.N.accertamento` and `quota.N.amount` for N = 1 to 5.
const QUOTA_KEYS: [[&str; 2]; 5] = [
    ["quota.1.accertamento", "quota.1.amount"],
    ["quota.2.accertamento", "quota.2.amount"],
    ["quota.3.accertamento", "quota.3.amount"],
    ["quota.4.accertamento", "quota.4.amount"],
    ["quota.5.accertamento", "quota.5.amount"],
];

/// Builds a position from the rows of one key (each row one payment option).
pub fn build(rows: &[&Row], ctx: &Context<'_>) -> Result<Built, Vec<RowError>> {
    let first = rows[0];
    // One position gets one operation: taking the first row's would silently
    // insert what another row asked to cancel, or the other way round.
    let mixed: Vec<RowError> = rows
        .iter()
        .filter(|r| r.op != first.op)
        .map(|r| {
            err(
                r.line,
                "operation",
                &r.key,
                "MIXED_OPERATION",
                format!(
                    "le righe della posizione chiedono operazioni diverse (riga {}: {}, questa riga: {})",
                    first.line,
                    first.op.label(),
                    r.op.label()
                ),
            )
        })
        .collect();
    if !mixed.is_empty() {
        return Err(mixed);
    }
    // A cancellation needs only its key: the position built is empty.
    if first.op == Op::Cancel {
        return Ok(Built {
            key: first.key.clone(),
            op: Op::Cancel,
            lines: rows.iter().map(|r| r.line).collect(),
            position: empty_position(&first.key, ctx),
            notify_invite: None,
        });
    }
    let mut errors = Vec::new();
    let v = |r: &Row, k: &str| r.values.get(k).cloned();
    let service_code = v(first, "service").or(ctx.default_service.map(str::to_string));
    let service = match &service_code {
        Some(code) => match ctx.services.get(code) {
            Some(s) if s.active => Some(s),
            _ => {
                errors.push(err(
                    first.line,
                    "service",
                    code,
                    "UNKNOWN_SERVICE",
                    "servizio sconosciuto o non attivo nel catalogo",
                ));
                None
            }
        },
        None => None,
    };
    let fiscal_code = v(first, "debtor.fiscal_code")
        .unwrap_or_default()
        .to_uppercase();
    let kind = match v(first, "debtor.type").as_deref() {
        Some("G") | Some("g") => DebtorType::G,
        Some("F") | Some("f") | None => {
            if fiscal_code.len() == 11 && fiscal_code.bytes().all(|b| b.is_ascii_digit()) {
                DebtorType::G
            } else {
                DebtorType::F
            }
        }
        Some(other) => {
            errors.push(err(
                first.line,
                "debtor.type",
                other,
                "BAD_FORMAT",
                "tipo soggetto: F o G",
            ));
            DebtorType::F
        }
    };
    let notify_invite = match v(first, "notify.invite") {
        None => None,
        Some(x) => match parse_yes_no(&x) {
            Some(b) => Some(b),
            None => {
                errors.push(err(
                    first.line,
                    "notify.invite",
                    &x,
                    "BAD_FORMAT",
                    "invito App IO: S/SI/1 per chiederlo, N/NO/0 per escluderlo, vuoto come dice il servizio",
                ));
                None
            }
        },
    };
    let mut options = Vec::with_capacity(rows.len());
    let mut lines = Vec::with_capacity(rows.len());
    let mut seen_installments = std::collections::HashSet::new();
    for &r in rows {
        let installment: u32 = match v(r, "option.installment").as_deref() {
            None | Some("") | Some("0") => 0,
            Some(n) => match n.parse() {
                Ok(n) => n,
                Err(_) => {
                    errors.push(err(
                        r.line,
                        "option.installment",
                        n,
                        "BAD_FORMAT",
                        "numero rata non valido",
                    ));
                    continue;
                }
            },
        };
        let alternative = v(r, "option.alternative").unwrap_or_default();
        if !seen_installments.insert((installment, alternative)) {
            errors.push(err(
                r.line,
                "option.installment",
                &installment.to_string(),
                "DUPLICATE_KEY",
                format!("rata ripetuta per la chiave {}", r.key),
            ));
            continue;
        }
        let Some(amount) = v(r, "option.amount")
            .and_then(|a| a.parse::<i64>().ok())
            .and_then(|a| Cents(a).within_limit())
        else {
            errors.push(err(
                r.line,
                "option.amount",
                "",
                "REQUIRED",
                "importo mancante",
            ));
            continue;
        };
        let due = match v(r, "option.due_date") {
            Some(d) => fixed_width_date(&d, DateFormat::Iso),
            None => None,
        };
        let Some(due) = due else {
            errors.push(err(
                r.line,
                "option.due_date",
                "",
                "REQUIRED",
                "data di scadenza mancante",
            ));
            continue;
        };
        // A due date is the whole day in Italy.
        let due_date =
            incasso_core::time::from_rome(due.and_hms_opt(23, 59, 59).unwrap_or_default());
        let retention_date = v(r, "option.retention_date")
            .and_then(|d| fixed_width_date(&d, DateFormat::Iso))
            .map(|d| incasso_core::time::from_rome(d.and_hms_opt(23, 59, 59).unwrap_or_default()));
        let description = v(r, "option.description")
            .or_else(|| service.map(|s| s.name.clone()))
            .unwrap_or_default();
        let category = service.map(|s| s.taxonomy_code.clone()).unwrap_or_default();
        let own_iban = service
            .and_then(|s| s.iban.clone())
            .or_else(|| ctx.ente.iban.clone());
        // Transfers the row names; the first is the Ente's and takes what the
        // others leave of the amount when its own amount is not given.
        let mut transfers = Vec::new();
        // Most rows name no transfer at all: one range query says so.
        let any_transfer = r
            .values
            .range::<str, _>((
                std::ops::Bound::Included("transfer."),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|(k, _)| k.starts_with("transfer."));
        for n in 1..=5u8 {
            use TransferField as F;
            let keys = &TRANSFER_KEYS[usize::from(n - 1)];
            let t = |f: F| {
                if any_transfer {
                    v(r, keys[f as usize])
                } else {
                    None
                }
            };
            let named = any_transfer && keys[..7].iter().any(|k| r.values.contains_key(*k));
            let stamp = t(F::StampType).map(|stamp_type| incasso_core::position::Stamp {
                hash_document: t(F::StampHash).unwrap_or_default(),
                stamp_type,
                provincial_residence: t(F::StampProvince).unwrap_or_default(),
            });
            if n > 1 && !named {
                continue;
            }
            let amount = t(F::Amount)
                .and_then(|a| a.parse::<i64>().ok())
                .and_then(|a| Cents(a).within_limit());
            transfers.push(Transfer {
                id_transfer: n,
                amount: amount.unwrap_or(Cents(-1)),
                organization_fiscal_code: t(F::FiscalCode)
                    .unwrap_or_else(|| ctx.ente.fiscal_code.clone()),
                company_name: None,
                remittance_information: t(F::Remittance)
                    .unwrap_or_else(|| description.chars().take(140).collect()),
                category: t(F::Category).unwrap_or_else(|| category.clone()),
                iban: t(F::Iban).or_else(|| {
                    if n == 1 && stamp.is_none() {
                        own_iban.clone()
                    } else {
                        None
                    }
                }),
                postal_iban: t(F::PostalIban),
                stamp,
                metadata: Vec::new(),
                quotas: Vec::new(),
                reported: false,
            });
        }
        let others: i64 = transfers.iter().skip(1).map(|t| t.amount.0.max(0)).sum();
        if transfers[0].amount.0 < 0 {
            transfers[0].amount = Cents(amount.0 - others);
        }
        // Accertamenti: the row's quotas, else the service's default one.
        let mut quotas = Vec::new();
        for n in 1..=5u8 {
            let [acc_key, amount_key] = QUOTA_KEYS[usize::from(n - 1)];
            let Some(acc) = v(r, acc_key) else {
                continue;
            };
            let parsed = acc
                .split_once('/')
                .and_then(|(y, c)| Some((y.trim().parse::<i32>().ok()?, c.trim().to_string())));
            let quota_amount = v(r, amount_key)
                .and_then(|a| a.parse::<i64>().ok())
                .filter(|a| Cents(*a).within_limit().is_some());
            match (parsed, quota_amount) {
                (Some((year, code)), Some(a)) => quotas.push(AccountingQuota {
                    accertamento: AccertamentoRef { year, code },
                    amount: Cents(a),
                }),
                (Some((year, code)), None) if n == 1 => quotas.push(AccountingQuota {
                    accertamento: AccertamentoRef { year, code },
                    amount: transfers[0].amount,
                }),
                _ => errors.push(err(
                    r.line,
                    &format!("quota.{n}"),
                    &acc,
                    "BAD_FORMAT",
                    "quota di accertamento: 'anno/codice' e importo",
                )),
            }
        }
        if let Some(xml) = v(r, "quota.bilancio") {
            match parse_bilancio(&xml, due.year()) {
                Some(q) => quotas.extend(q),
                None => errors.push(err(
                    r.line,
                    "bilancio",
                    &xml.chars().take(60).collect::<String>(),
                    "BAD_FORMAT",
                    "bilancio non valido: atteso <bilancio><capitolo>...<accertamento><codAccertamento/><importo/></accertamento></capitolo></bilancio>",
                )),
            }
        }
        if quotas.is_empty()
            && let Some(acc) = service.and_then(|s| s.default_accertamento.clone())
        {
            quotas.push(AccountingQuota {
                accertamento: acc,
                amount: transfers[0].amount,
            });
        }
        transfers[0].quotas = quotas;
        let metadata = r
            .values
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("metadata.")
                    .map(|n| (n.to_string(), v.clone()))
            })
            .collect();
        options.push(PaymentOption {
            iuv: v(r, "option.iuv"),
            notice_number: None,
            amount,
            description,
            is_partial_payment: installment > 0,
            due_date,
            retention_date,
            fee: Cents::ZERO,
            notification_fee: Cents::ZERO,
            status: OptionStatus::Unpaid,
            payment_date: None,
            reporting_date: None,
            metadata,
            transfers,
        });
        lines.push(r.line);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let debtor = Debtor {
        street_name: v(first, "debtor.street"),
        civic_number: v(first, "debtor.civic"),
        postal_code: v(first, "debtor.postal_code"),
        city: v(first, "debtor.city"),
        province: v(first, "debtor.province"),
        country: v(first, "debtor.country"),
        email: v(first, "debtor.email"),
        phone: v(first, "debtor.phone"),
        ..Debtor::named(
            kind,
            fiscal_code,
            v(first, "debtor.full_name").unwrap_or_default(),
        )
    };
    let position = DebtPosition {
        office_name: v(first, "office_name"),
        ..DebtPosition::draft(
            first.key.clone(),
            debtor,
            v(first, "company_name").unwrap_or_else(|| ctx.ente.name.clone()),
            options,
        )
    };
    Ok(Built {
        key: first.key.clone(),
        op: first.op,
        lines,
        position,
        notify_invite,
    })
}

fn empty_position(key: &str, ctx: &Context<'_>) -> DebtPosition {
    DebtPosition::draft(
        key.to_string(),
        Debtor::named(DebtorType::F, String::new(), String::new()),
        ctx.ente.name.clone(),
        Vec::new(),
    )
}

/// MyPay's `bilancio`: the accertamenti (with their amounts) a dovuto is
/// split over, as a small XML document in one column. Read with a strict
/// scanner: only these elements, amounts `\d+.\d{2}`; anything else refuses
/// the value. The budget year is the due date's.
pub fn parse_bilancio(xml: &str, year: i32) -> Option<Vec<AccountingQuota>> {
    fn inner<'a>(s: &'a str, tag: &str) -> Option<&'a str> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let a = s.find(&open)? + open.len();
        let b = a + s[a..].find(&close)?;
        Some(s[a..b].trim())
    }
    let body = inner(xml.trim(), "bilancio")?;
    if body.contains("<!") || body.contains("&") {
        return None;
    }
    let mut quotas = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("<accertamento>") {
        let end = rest[start..].find("</accertamento>")? + start + "</accertamento>".len();
        let block = &rest[start..end];
        let code = inner(block, "codAccertamento")?.to_string();
        let amount = Cents::parse_decimal(inner(block, "importo")?)?;
        if code.is_empty() {
            return None;
        }
        quotas.push(AccountingQuota {
            accertamento: AccertamentoRef { year, code },
            amount,
        });
        rest = &rest[end..];
    }
    (!quotas.is_empty()).then_some(quotas)
}

/// Maps core's field errors (paths like `paymentOption[1].transfer[0].iban`)
/// to the lines of the rows they came from.
pub fn locate(built: &Built, errors: &[incasso_core::FieldError]) -> Vec<RowError> {
    errors
        .iter()
        .map(|e| {
            let option = e
                .field
                .strip_prefix("paymentOption[")
                .and_then(|r| r.split(']').next())
                .and_then(|n| n.parse::<usize>().ok());
            let line = option
                .and_then(|i| built.lines.get(i))
                .or(built.lines.first())
                .copied()
                .unwrap_or(0);
            RowError {
                line,
                field: e.field.clone(),
                value: String::new(),
                code: e.code,
                message: e.message.clone(),
            }
        })
        .collect()
}

/// Groups adjacent rows by key. A key that comes back after other keys is
/// an error (the file must keep a position's rows together, so that loading
/// needs to hold one position at a time, not the whole file).
pub struct Grouper {
    current: Vec<Row>,
    /// The keys met so far, as fingerprints: a million keys as strings
    /// took 60 MB of a load's memory, as fingerprints 16 MB.
    seen: incasso_core::fingerprint::Fingerprints,
    /// A JSON record is a whole position (its options exploded into rows
    /// that share the record's line): a second record with the same key is
    /// a repeat, not more installments.
    one_record_per_position: bool,
}

impl Default for Grouper {
    fn default() -> Self {
        Self::new()
    }
}

impl Grouper {
    pub fn new() -> Self {
        Grouper {
            current: Vec::new(),
            seen: Default::default(),
            one_record_per_position: false,
        }
    }

    /// For formats whose records are whole positions (JSON).
    pub fn one_record_per_position() -> Self {
        Grouper {
            one_record_per_position: true,
            ..Self::new()
        }
    }

    /// Adds a row; returns the previous group when this row starts a new one.
    pub fn push(&mut self, row: Row) -> Result<Option<Vec<Row>>, RowError> {
        if let Some(first) = self.current.first()
            && first.key == row.key
            && (!self.one_record_per_position || first.line == row.line)
        {
            self.current.push(row);
            return Ok(None);
        }
        if !self.seen.insert(row.key.as_str()) {
            return Err(err(
                row.line,
                "key",
                &row.key,
                "DUPLICATE_KEY",
                "chiave già usata più sopra nel file: le righe di una posizione devono essere contigue",
            ));
        }
        let previous = std::mem::take(&mut self.current);
        self.current.push(row);
        Ok((!previous.is_empty()).then_some(previous))
    }

    pub fn finish(&mut self) -> Option<Vec<Row>> {
        let last = std::mem::take(&mut self.current);
        (!last.is_empty()).then_some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bilancio() {
        let xml = "<bilancio><capitolo><codCapitolo>1010</codCapitolo><codUfficio>TRIB</codUfficio><accertamento><codAccertamento>A1</codAccertamento><importo>90.00</importo></accertamento><accertamento><codAccertamento>A2</codAccertamento><importo>10.50</importo></accertamento></capitolo></bilancio>";
        let q = parse_bilancio(xml, 2027).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(
            (q[1].accertamento.code.as_str(), q[1].amount),
            ("A2", Cents(1050))
        );
        assert_eq!(q[0].accertamento.year, 2027);
        assert!(parse_bilancio("<bilancio></bilancio>", 2027).is_none());
        assert!(parse_bilancio("<bilancio><accertamento><codAccertamento>A</codAccertamento><importo>1,0</importo></accertamento></bilancio>", 2027).is_none());
        assert!(parse_bilancio("<!DOCTYPE x><bilancio/>", 2027).is_none());
    }

    #[test]
    fn amounts_in_every_form() {
        assert_eq!(
            parse_amount("1.234,56", AmountFormat::Italian),
            Some(Cents(123456))
        );
        assert_eq!(
            parse_amount("1234,5", AmountFormat::Italian),
            Some(Cents(123450))
        );
        assert_eq!(parse_amount("12,345", AmountFormat::Italian), None);
        assert_eq!(parse_amount("1.23,45", AmountFormat::Italian), None);
        assert_eq!(
            parse_amount("1234.56", AmountFormat::Dot),
            Some(Cents(123456))
        );
        assert_eq!(
            parse_amount("123456", AmountFormat::Cents),
            Some(Cents(123456))
        );
        assert_eq!(parse_amount("12a", AmountFormat::Cents), None);
        // Beyond what pagoPA can carry, and where abs() would overflow.
        assert_eq!(
            parse_amount("-9223372036854775808", AmountFormat::Cents),
            None
        );
        assert_eq!(parse_amount("100000000000", AmountFormat::Cents), None);
        assert_eq!(
            parse_amount("1.000.000.000,00", AmountFormat::Italian),
            None
        );
    }

    #[test]
    fn dates_in_every_form() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(parse_date("31/12/2026", DateFormat::DayMonthYear), Some(d));
        assert_eq!(parse_date("20261231", DateFormat::Compact), Some(d));
        assert_eq!(parse_date("2026-12-31", DateFormat::Iso), Some(d));
        assert_eq!(parse_date("2026-12-31T10:00", DateFormat::Iso), Some(d));
        assert_eq!(parse_date("31/02/2026", DateFormat::DayMonthYear), None);
        assert_eq!(
            parse_date(" 31/12/2026  ", DateFormat::DayMonthYear),
            Some(d)
        );
        // Years of fewer than four digits are not guessed at.
        assert_eq!(parse_date("31/12/26", DateFormat::DayMonthYear), None);
        assert_eq!(parse_date("1/1/0", DateFormat::DayMonthYear), None);
        assert_eq!(parse_date("0026-12-31", DateFormat::Iso), None);
        assert_eq!(
            parse_date("1/2/2026", DateFormat::DayMonthYear),
            NaiveDate::from_ymd_opt(2026, 2, 1)
        );
    }

    proptest! {
        /// The fast date reader agrees with chrono's, valid dates or not.
        #[test]
        fn fixed_width_dates_read_as_chrono_reads_them(
            y in 1900u32..2200, m in 0u32..14, d in 0u32..33, junk in "[0-9/ -]{0,10}",
        ) {
            for (text, format, pattern) in [
                (format!("{d:02}/{m:02}/{y:04}"), DateFormat::DayMonthYear, "%d/%m/%Y"),
                (format!("{y:04}{m:02}{d:02}"), DateFormat::Compact, "%Y%m%d"),
                (format!("{y:04}-{m:02}-{d:02}"), DateFormat::Iso, "%Y-%m-%d"),
                (junk.clone(), DateFormat::DayMonthYear, "%d/%m/%Y"),
            ] {
                // A value is read trimmed, as a fixed-width field's padding
                // asks, and only with a year of four digits.
                prop_assert_eq!(
                    parse_date(&text, format),
                    NaiveDate::parse_from_str(text.trim(), pattern)
                        .ok()
                        .filter(|d| (1000..=9999).contains(&chrono::Datelike::year(d))),
                    "{}", text
                );
            }
        }

        #[test]
        fn italian_amounts_round_trip(cents in 0i64..10_000_000_000) {
            let text = Cents(cents).to_italian();
            prop_assert_eq!(parse_amount(&text, AmountFormat::Italian), Some(Cents(cents)));
        }
    }
}
