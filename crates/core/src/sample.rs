//! Deterministic sample data, valid by construction: used by the demo seed,
//! the benchmarks and the tests, so that all three exercise the same shapes.

use crate::accertamento::AccertamentoRef;
use crate::codes::fiscal_code::{numeric_check_digit, personal_check_char};
use crate::money::Cents;
use crate::position::{
    AccountingQuota, DebtPosition, Debtor, DebtorType, OptionStatus, PaymentOption, Transfer,
};
use chrono::{DateTime, Utc};

/// A valid 11-digit fiscal code (or VAT number) from any 10-digit seed.
pub fn numeric_fiscal_code(seed: u64) -> String {
    let base = format!("{:010}", seed % 10_000_000_000);
    let mut digits = [0u8; 10];
    for (d, b) in digits.iter_mut().zip(base.bytes()) {
        *d = b - b'0';
    }
    format!("{base}{}", numeric_check_digit(&digits))
}

/// A valid personal fiscal code, different for each `n` up to a few million.
pub fn personal_fiscal_code(n: u64) -> String {
    const LETTERS: &[u8] = b"BCDFGHLMNPRSTVZ";
    const MONTHS: &[u8] = b"ABCDEHLMPRST";
    let l = |k: u64| LETTERS[(k % LETTERS.len() as u64) as usize] as char;
    let surname: String = [l(n), l(n / 15), l(n / 225)].iter().collect();
    let name: String = [l(n / 3375), l(n / 7), l(n / 11)].iter().collect();
    let year = 40 + (n / 50_625) % 60;
    let month = MONTHS[((n / 13) % 12) as usize] as char;
    let day = 1 + (n / 17) % 28;
    let first15 = format!("{surname}{name}{year:02}{month}{day:02}H501");
    let check = personal_check_char(&first15);
    format!("{first15}{check}")
}

/// A syntactically valid Italian IBAN for a bank (ABI) and account number.
pub fn italian_iban(abi: &str, cab: &str, account: u64) -> String {
    let bban = format!("X{abi}{cab}{account:012}");
    let check = crate::codes::iban::iban_check_digits("IT", &bban);
    format!("IT{check}{bban}")
}

/// What a sample position looks like.
pub struct PositionSpec<'a> {
    pub ente: &'a str,
    pub company_name: &'a str,
    pub iupd: String,
    pub debtor_index: u64,
    pub amount: Cents,
    pub description: String,
    pub category: &'a str,
    pub iban: &'a str,
    pub due_date: DateTime<Utc>,
    /// 0 for a single payment; N for a single solution plus N installments.
    pub installments: u32,
    /// A second beneficiary (another Ente) taking this many cents of each option.
    pub second_beneficiary: Option<(&'a str, &'a str, Cents)>,
    /// Accertamenti the Ente's own transfer is split over, by share (percent).
    pub quotas: Vec<(AccertamentoRef, u32)>,
}

pub fn position(spec: &PositionSpec<'_>) -> DebtPosition {
    let mut options = vec![option(
        spec,
        spec.amount,
        spec.due_date,
        false,
        spec.description.clone(),
    )];
    if spec.installments > 0 {
        let n = i64::from(spec.installments);
        let base = spec.amount.0 / n;
        for k in 0..n {
            // The last installment takes the rounding remainder: the sum is exact.
            let amount = if k == n - 1 {
                spec.amount.0 - base * (n - 1)
            } else {
                base
            };
            let due = spec.due_date + chrono::Duration::days(30 * k);
            options.push(option(
                spec,
                Cents(amount),
                due,
                true,
                format!("{} - rata {} di {}", spec.description, k + 1, n),
            ));
        }
    }
    let debtor = Debtor {
        street_name: Some("Via Roma".into()),
        civic_number: Some(((spec.debtor_index % 200) + 1).to_string()),
        postal_code: Some("00100".into()),
        city: Some("Roma".into()),
        province: Some("RM".into()),
        country: Some("IT".into()),
        email: Some(format!("contribuente{}@example.org", spec.debtor_index)),
        ..Debtor::named(
            DebtorType::F,
            personal_fiscal_code(spec.debtor_index),
            format!("Contribuente Esempio {}", spec.debtor_index),
        )
    };
    DebtPosition::draft(spec.iupd.clone(), debtor, spec.company_name.into(), options)
}

fn option(
    spec: &PositionSpec<'_>,
    amount: Cents,
    due: DateTime<Utc>,
    partial: bool,
    description: String,
) -> PaymentOption {
    let mut transfers = Vec::new();
    let mut own = amount;
    if let Some((other_ente, other_iban, share)) = spec.second_beneficiary
        && share.0 < amount.0
    {
        own = Cents(amount.0 - share.0);
        transfers.push(Transfer {
            id_transfer: 2,
            amount: share,
            organization_fiscal_code: other_ente.into(),
            company_name: None,
            remittance_information: format!("Quota altro ente - {description}"),
            category: spec.category.into(),
            iban: Some(other_iban.into()),
            postal_iban: None,
            stamp: None,
            metadata: Vec::new(),
            quotas: Vec::new(),
            reported: false,
        });
    }
    let mut quotas = Vec::new();
    let mut assigned = 0i64;
    for (i, (acc, percent)) in spec.quotas.iter().enumerate() {
        let q = if i + 1 == spec.quotas.len() {
            own.0 - assigned
        } else {
            own.0 * i64::from(*percent) / 100
        };
        assigned += q;
        if q > 0 {
            quotas.push(AccountingQuota {
                accertamento: acc.clone(),
                amount: Cents(q),
            });
        }
    }
    transfers.insert(
        0,
        Transfer {
            id_transfer: 1,
            amount: own,
            organization_fiscal_code: spec.ente.into(),
            company_name: None,
            remittance_information: description.clone(),
            category: spec.category.into(),
            iban: Some(spec.iban.into()),
            postal_iban: None,
            stamp: None,
            metadata: Vec::new(),
            quotas,
            reported: false,
        },
    );
    PaymentOption {
        iuv: None,
        notice_number: None,
        amount,
        description,
        is_partial_payment: partial,
        due_date: due,
        retention_date: None,
        fee: Cents::ZERO,
        notification_fee: Cents::ZERO,
        status: OptionStatus::Unpaid,
        payment_date: None,
        reporting_date: None,
        metadata: Vec::new(),
        transfers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{check_iban, check_numeric_fiscal_code, check_personal_fiscal_code};
    use crate::position::PositionRules;
    use std::collections::HashSet;

    #[test]
    fn generated_codes_are_valid_and_distinct() {
        let mut seen = HashSet::new();
        for n in 0..20_000 {
            let cf = personal_fiscal_code(n);
            assert_eq!(check_personal_fiscal_code(&cf), Ok(()), "{cf}");
            seen.insert(cf);
        }
        assert_eq!(seen.len(), 20_000);
        for seed in [1, 2, 8_000_013_058, 9_999_999_999] {
            assert_eq!(
                check_numeric_fiscal_code(&numeric_fiscal_code(seed)),
                Ok(())
            );
        }
        assert_eq!(check_iban(&italian_iban("03069", "09606", 12345)), Ok(()));
    }

    #[test]
    fn sample_positions_validate_and_quotas_add_up() {
        let now = Utc::now();
        let ente = numeric_fiscal_code(8_000_013_058);
        let other = numeric_fiscal_code(9_700_000_002);
        let iban = italian_iban("03069", "09606", 1);
        let spec = PositionSpec {
            ente: &ente,
            company_name: "Comune",
            iupd: "P-1".into(),
            debtor_index: 7,
            amount: Cents(10_001),
            description: "TARI 2026".into(),
            category: "9/0101101IM/",
            iban: &iban,
            due_date: now + chrono::Duration::days(30),
            installments: 3,
            second_beneficiary: Some((&other, &iban, Cents(500))),
            quotas: vec![
                (
                    AccertamentoRef {
                        year: 2026,
                        code: "A".into(),
                    },
                    90,
                ),
                (
                    AccertamentoRef {
                        year: 2026,
                        code: "B".into(),
                    },
                    10,
                ),
            ],
        };
        let p = position(&spec);
        assert_eq!(p.options.len(), 4);
        let installments: i64 = p
            .options
            .iter()
            .filter(|o| o.is_partial_payment)
            .map(|o| o.amount.0)
            .sum();
        assert_eq!(installments, 10_001);
        p.validate(&PositionRules {
            ente_fiscal_code: &ente,
            now,
            segregation_codes: &[1],
        })
        .unwrap();
    }
}
