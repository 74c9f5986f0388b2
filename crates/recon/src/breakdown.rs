//! The accounting breakdown: how much of a flow, a sospeso or an IUV goes
//! to each accertamento.
//!
//! Each line of money (a flow line: one transfer of one payment) is split
//! by its transfer's quotas. When the quotas add up to another amount than
//! the line moved (a partial payment, a revocation), they are scaled to it
//! by largest remainders, so the parts are whole cents and add up exactly.
//! A transfer without quotas goes to its service's default accertamento,
//! and without one, to "not attributed": reported, never guessed.

use incasso_core::Cents;
use incasso_core::accertamento::AccertamentoRef;
use std::collections::BTreeMap;

/// One line of money with what is known of its accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub iuv: String,
    pub transfer_index: u8,
    /// What the line moved (negative for a revocation).
    pub amount: Cents,
    /// The transfer's quotas, as the position was loaded with.
    pub quotas: Vec<(AccertamentoRef, Cents)>,
    /// The service's default accertamento, for a transfer without quotas.
    pub fallback: Option<AccertamentoRef>,
}

/// Amounts by accertamento; `None` is money attributed to none.
pub type Breakdown = BTreeMap<Option<AccertamentoRef>, Cents>;

/// Adds up the parts of every line.
pub fn breakdown(lines: &[Line]) -> Breakdown {
    let mut out = Breakdown::new();
    for line in lines {
        for (acc, cents) in split(line) {
            out.entry(acc).or_insert(Cents(0)).0 += cents.0;
        }
    }
    out
}

/// One line's parts. They always add up to the line's amount.
pub fn split(line: &Line) -> Vec<(Option<AccertamentoRef>, Cents)> {
    let weights: Vec<(AccertamentoRef, i64)> = line
        .quotas
        .iter()
        .filter(|(_, c)| c.0 > 0)
        .map(|(a, c)| (a.clone(), c.0))
        .collect();
    let total: i64 = weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return vec![(line.fallback.clone(), line.amount)];
    }
    if total == line.amount.0 {
        return weights
            .into_iter()
            .map(|(a, w)| (Some(a), Cents(w)))
            .collect();
    }
    // Scale to the line's amount: floor each part, then hand the cents
    // left over to the parts with the largest remainders (ties: first).
    let amount = i128::from(line.amount.0);
    let sign = amount.signum();
    let magnitude = amount.abs();
    let mut parts: Vec<(usize, i128, i128)> = weights
        .iter()
        .enumerate()
        .map(|(i, (_, w))| {
            let exact = magnitude * i128::from(*w);
            (i, exact / i128::from(total), exact % i128::from(total))
        })
        .collect();
    let assigned: i128 = parts.iter().map(|(_, floor, _)| floor).sum();
    let mut left = magnitude - assigned;
    let mut by_remainder: Vec<usize> = (0..parts.len()).collect();
    by_remainder.sort_by(|a, b| parts[*b].2.cmp(&parts[*a].2).then(a.cmp(b)));
    for i in by_remainder {
        if left == 0 {
            break;
        }
        parts[i].1 += 1;
        left -= 1;
    }
    parts
        .into_iter()
        .map(|(i, cents, _)| (Some(weights[i].0.clone()), Cents((sign * cents) as i64)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn acc(code: &str) -> AccertamentoRef {
        AccertamentoRef {
            year: 2026,
            code: code.into(),
        }
    }

    fn line(amount: i64, quotas: &[(&str, i64)], fallback: Option<&str>) -> Line {
        Line {
            iuv: "01000000000000001".into(),
            transfer_index: 1,
            amount: Cents(amount),
            quotas: quotas.iter().map(|(c, a)| (acc(c), Cents(*a))).collect(),
            fallback: fallback.map(acc),
        }
    }

    #[test]
    fn quotas_that_match_the_line_are_taken_as_they_are() {
        let parts = split(&line(10_000, &[("A", 7_000), ("B", 3_000)], None));
        assert_eq!(
            parts,
            vec![
                (Some(acc("A")), Cents(7_000)),
                (Some(acc("B")), Cents(3_000))
            ]
        );
    }

    #[test]
    fn a_partial_payment_is_split_in_proportion_to_the_cent() {
        // 100.00 over three equal quotas: 33.34 + 33.33 + 33.33.
        let parts = split(&line(10_000, &[("A", 1), ("B", 1), ("C", 1)], None));
        assert_eq!(
            parts,
            vec![
                (Some(acc("A")), Cents(3_334)),
                (Some(acc("B")), Cents(3_333)),
                (Some(acc("C")), Cents(3_333)),
            ]
        );
    }

    #[test]
    fn without_quotas_the_default_or_nothing() {
        assert_eq!(
            split(&line(500, &[], Some("D"))),
            vec![(Some(acc("D")), Cents(500))]
        );
        assert_eq!(split(&line(500, &[], None)), vec![(None, Cents(500))]);
    }

    #[test]
    fn lines_add_up_by_accertamento() {
        let b = breakdown(&[
            line(10_000, &[("A", 7_000), ("B", 3_000)], None),
            line(2_000, &[("A", 2_000)], None),
            line(-1_000, &[("B", 1_000)], None),
            line(50, &[], None),
        ]);
        assert_eq!(b[&Some(acc("A"))], Cents(9_000));
        assert_eq!(b[&Some(acc("B"))], Cents(2_000));
        assert_eq!(b[&None], Cents(50));
    }

    proptest! {
        #[test]
        fn parts_always_add_up_to_the_line(
            amount in -10_000_000i64..10_000_000,
            quotas in prop::collection::vec(0i64..1_000_000, 0..5),
        ) {
            let q: Vec<(String, i64)> = quotas.iter().enumerate().map(|(i, c)| (format!("Q{i}"), *c)).collect();
            let q: Vec<(&str, i64)> = q.iter().map(|(c, a)| (c.as_str(), *a)).collect();
            let l = line(amount, &q, None);
            let parts = split(&l);
            prop_assert_eq!(parts.iter().map(|(_, c)| c.0).sum::<i64>(), amount);
            // No part has the opposite sign of the line.
            prop_assert!(parts.iter().all(|(_, c)| c.0 == 0 || c.0.signum() == amount.signum()));
        }
    }
}
