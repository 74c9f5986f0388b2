//! The debt position's rules and life cycle, without any storage.

use chrono::{Duration, Utc};
use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use incasso_core::position::{
    DebtPosition, OptionStatus, PositionRules, PositionStatus, TransitionError,
};
use incasso_core::sample::{self, PositionSpec, italian_iban};
use proptest::prelude::*;

const ENTE: &str = "80000130585";

fn plan(installments: u32, amount: i64) -> DebtPosition {
    let iban = italian_iban("02008", "05364", 104_567_891);
    let mut p = sample::position(&PositionSpec {
        ente: ENTE,
        company_name: "Comune",
        iupd: "P".into(),
        debtor_index: 3,
        amount: Cents(amount),
        description: "TARI".into(),
        category: "9/0101101IM/",
        iban: &iban,
        due_date: Utc::now() + Duration::days(10),
        installments,
        second_beneficiary: None,
        quotas: vec![(
            AccertamentoRef {
                year: 2026,
                code: "A".into(),
            },
            100,
        )],
    });
    for (i, o) in p.options.iter_mut().enumerate() {
        let nav = incasso_core::codes::NoticeNumber::generate(1, i as u64 + 1).unwrap();
        o.iuv = Some(nav.as_str()[1..].to_string());
    }
    p
}

fn rules(now: chrono::DateTime<Utc>) -> PositionRules<'static> {
    PositionRules {
        ente_fiscal_code: ENTE,
        now,
        segregation_codes: &[1],
    }
}

#[test]
fn publish_without_validity_date_is_valid_at_once() {
    let now = Utc::now();
    let mut p = plan(0, 1000);
    p.publish(now).unwrap();
    assert_eq!(p.status, PositionStatus::Valid);
    assert_eq!(p.validity_date, Some(now));
    assert_eq!(
        p.publish(now),
        Err(TransitionError::NotAllowed {
            action: "pubblicare",
            status: PositionStatus::Valid
        })
    );
}

#[test]
fn published_becomes_valid_then_expired_only_with_switch() {
    let now = Utc::now();
    let mut p = plan(0, 1000);
    p.validity_date = Some(now + Duration::days(1));
    p.publish(now).unwrap();
    assert_eq!(p.status, PositionStatus::Published);
    assert_eq!(p.effective_status(now), PositionStatus::Published);
    assert_eq!(
        p.effective_status(now + Duration::days(2)),
        PositionStatus::Valid
    );
    assert_eq!(
        p.effective_status(now + Duration::days(30)),
        PositionStatus::Valid,
        "no switchToExpired"
    );
    p.switch_to_expired = true;
    assert_eq!(
        p.effective_status(now + Duration::days(30)),
        PositionStatus::Expired
    );
    assert_eq!(
        p.pay_option(0, now, now + Duration::days(30)),
        Err(TransitionError::Expired)
    );
    // Not yet valid: not payable either.
    assert!(matches!(
        p.pay_option(0, now, now),
        Err(TransitionError::NotAllowed { .. })
    ));
}

#[test]
fn draft_is_not_payable_and_invalid_is_cancelled() {
    let now = Utc::now();
    let mut p = plan(0, 1000);
    assert!(matches!(
        p.pay_option(0, now, now),
        Err(TransitionError::NotAllowed { .. })
    ));
    assert!(matches!(
        p.invalidate(now),
        Err(TransitionError::NotAllowed { .. })
    ));
    p.publish(now).unwrap();
    p.invalidate(now).unwrap();
    assert_eq!(p.pay_option(0, now, now), Err(TransitionError::Cancelled));
    assert!(p.check_updatable(now).is_err());
    assert!(p.check_deletable().is_ok());
}

#[test]
fn validation_reports_every_error_with_its_field() {
    let now = Utc::now();
    let mut p = plan(0, 1000);
    p.debtor.fiscal_code = "XXXXXX".into();
    p.options[0].amount = Cents(0);
    p.options[0].due_date = now - Duration::days(1);
    p.options[0].transfers[0].category = "nope".into();
    let err = p.validate(&rules(now)).unwrap_err();
    let got: Vec<(&str, &str)> = err.0.iter().map(|e| (e.field.as_str(), e.code)).collect();
    for expected in [
        ("fiscalCode", "BAD_FISCAL_CODE"),
        ("paymentOption[0].amount", "AMOUNT_NOT_POSITIVE"),
        ("paymentOption[0].dueDate", "DATE_IN_PAST"),
        ("paymentOption[0].transfer[0].category", "UNKNOWN_TAXONOMY"),
        ("paymentOption[0].transfer", "AMOUNT_MISMATCH"),
    ] {
        assert!(got.contains(&expected), "missing {expected:?} in {got:?}");
    }
    assert!(err.0.iter().all(|e| !e.message.is_empty()));
}

#[test]
fn first_transfer_belongs_to_the_ente_and_quotas_only_on_own_transfers() {
    let now = Utc::now();
    let mut p = plan(0, 1000);
    p.options[0].transfers[0].organization_fiscal_code = "97000000022".into();
    let err = p.validate(&rules(now)).unwrap_err();
    let codes: Vec<&str> = err.0.iter().map(|e| e.code).collect();
    assert!(codes.contains(&"FIRST_TRANSFER_NOT_OWN"), "{codes:?}");
    assert!(codes.contains(&"QUOTAS_NOT_OWN"), "{codes:?}");
}

/// A traffic fine: two single solutions, each its own notice number (the
/// reduced amount within five days, the full one after). Accepted alone;
/// beside installments, refused. Paying one settles the position and the
/// other can no longer be paid (issue 14).
#[test]
fn several_single_solutions_are_alternatives() {
    let now = Utc::now();
    let mut p = plan(0, 1000);
    let mut full = p.options[0].clone();
    full.iuv = Some(
        incasso_core::codes::NoticeNumber::generate(1, 99)
            .unwrap()
            .as_str()[1..]
            .to_string(),
    );
    full.due_date = p.options[0].due_date + chrono::Duration::days(55);
    p.options.push(full);
    p.validate(&rules(now)).unwrap();
    assert_eq!(
        p.total_amount(),
        Some(p.options[0].amount.max(p.options[1].amount))
    );
    let mut fine = p.clone();
    fine.publish(now).unwrap();
    fine.pay_option(0, now, now).unwrap();
    assert_eq!(fine.status, PositionStatus::Paid);
    assert_eq!(
        fine.pay_option(1, now, now),
        Err(incasso_core::position::TransitionError::AlreadyPaid)
    );
    // Beside installments, one single solution only.
    let mut mixed = plan(2, 1000);
    let mut extra = mixed.options[0].clone();
    extra.iuv = Some(
        incasso_core::codes::NoticeNumber::generate(1, 98)
            .unwrap()
            .as_str()[1..]
            .to_string(),
    );
    mixed.options.push(extra);
    let err = mixed.validate(&rules(now)).unwrap_err();
    assert!(err.0.iter().any(|e| e.code == "MULTIPLE_SINGLE_SOLUTIONS"));
}

proptest! {
    /// Paying every installment, in any order, settles the position exactly
    /// at the last one; nothing is ever paid twice; the single solution is
    /// no longer payable once an installment is.
    #[test]
    fn installments_in_any_order(n in 1u32..6, amount in 600i64..1_000_000, order in proptest::collection::vec(any::<prop::sample::Index>(), 6)) {
        let now = Utc::now();
        let mut p = plan(n, amount);
        p.validate(&rules(now)).unwrap();
        p.publish(now).unwrap();
        let mut pending: Vec<usize> = (1..=n as usize).collect();
        let mut paid = 0;
        for idx in order.iter().take(n as usize) {
            let k = pending.remove(idx.index(pending.len()));
            p.pay_option(k, now, now).unwrap();
            paid += 1;
            prop_assert_eq!(p.pay_option(k, now, now), Err(TransitionError::AlreadyPaid));
            if paid < n {
                prop_assert_eq!(p.status, PositionStatus::PartiallyPaid);
                prop_assert_eq!(p.pay_option(0, now, now), Err(TransitionError::InstallmentsStarted));
            }
        }
        prop_assert_eq!(p.status, PositionStatus::Paid);
        prop_assert_eq!(p.options[0].status, OptionStatus::Unpaid);
        prop_assert!(p.check_updatable(now).is_err() && p.check_deletable().is_err());
        prop_assert!(p.invalidate(now).is_err());
    }

    /// The single solution settles the position at once, whatever the plan.
    #[test]
    fn single_solution_settles(n in 0u32..6, amount in 600i64..1_000_000) {
        let now = Utc::now();
        let mut p = plan(n, amount);
        p.publish(now).unwrap();
        p.pay_option(0, now, now).unwrap();
        prop_assert_eq!(p.status, PositionStatus::Paid);
        for k in 1..=n as usize {
            prop_assert_eq!(p.pay_option(k, now, now), Err(TransitionError::AlreadyPaid));
        }
    }
}

/// GPD's pattern for an iupd, `[\w*\h-]+` whole: what it refuses could be
/// stored but never read back by its URL (issue 14).
#[test]
fn an_iupd_follows_gpds_pattern() {
    use incasso_core::position::is_valid_iupd;
    for good in ["P", "TARI-2026_001", "ABC*1", "con spazio", "a\tb"] {
        assert!(is_valid_iupd(good), "{good}");
    }
    for bad in [
        "",
        "A/B",
        "A.B",
        "A?B",
        "A#B",
        "à",
        "x%2F",
        &"9".repeat(101),
    ] {
        assert!(!is_valid_iupd(bad), "{bad}");
    }
}
