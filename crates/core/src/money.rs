//! Money as integer euro cents. Floats never touch an amount: the decimal
//! form exists only at the edges (XML, CSV, the printed notice).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// The largest amount incasso takes from outside: 999.999.999,99 €, the
    /// largest pagoPA's `stAmount` can say. Far from `i64`'s limits, so no
    /// sum or sign change of accepted amounts can overflow by surprise.
    pub const MAX_AMOUNT: Cents = Cents(99_999_999_999);

    /// The amount if its magnitude is at most [`Cents::MAX_AMOUNT`].
    pub fn within_limit(self) -> Option<Cents> {
        (self.0.unsigned_abs() <= Self::MAX_AMOUNT.0.unsigned_abs()).then_some(self)
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    /// Sum that refuses to overflow instead of wrapping: an overflowing sum
    /// of amounts is bad input, never a valid total.
    pub fn sum<I: IntoIterator<Item = Cents>>(items: I) -> Option<Cents> {
        items.into_iter().try_fold(Cents::ZERO, Cents::checked_add)
    }

    /// `1234.56`, the form of pagoPA's XML (`stAmount`).
    pub fn to_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// `1.234,56`, the form an Italian reader expects.
    pub fn to_italian(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let units = (abs / 100).to_string();
        let mut grouped = String::with_capacity(units.len() + units.len() / 3);
        for (i, c) in units.chars().enumerate() {
            if i > 0 && (units.len() - i).is_multiple_of(3) {
                grouped.push('.');
            }
            grouped.push(c);
        }
        format!("{sign}{grouped},{:02}", abs % 100)
    }

    /// Parses `1234.56`, `1234.5` or `1234` (a dot as decimal separator, as in
    /// XML). Anything else, including more than two decimals, is refused:
    /// rounding a payment amount silently is never right.
    pub fn parse_decimal(s: &str) -> Option<Cents> {
        let s = s.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (units, decimals) = match s.split_once('.') {
            Some((u, d)) => (u, d),
            None => (s, ""),
        };
        if units.is_empty()
            || units.len() > 16
            || decimals.len() > 2
            || !units.bytes().all(|b| b.is_ascii_digit())
            || !decimals.bytes().all(|b| b.is_ascii_digit())
            || (s.contains('.') && decimals.is_empty())
        {
            return None;
        }
        let units: i64 = units.parse().ok()?;
        let mut dec: i64 = if decimals.is_empty() {
            0
        } else {
            decimals.parse().ok()?
        };
        if decimals.len() == 1 {
            dec *= 10;
        }
        let v = units.checked_mul(100)?.checked_add(dec)?;
        Cents(if neg { -v } else { v }).within_limit()
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats() {
        assert_eq!(Cents(123456).to_decimal(), "1234.56");
        assert_eq!(Cents(5).to_decimal(), "0.05");
        assert_eq!(Cents(-5).to_decimal(), "-0.05");
        assert_eq!(Cents(123456).to_italian(), "1.234,56");
        assert_eq!(Cents(100000000).to_italian(), "1.000.000,00");
        assert_eq!(Cents(99).to_italian(), "0,99");
    }

    #[test]
    fn parses_strictly() {
        assert_eq!(Cents::parse_decimal("12.3"), Some(Cents(1230)));
        assert_eq!(Cents::parse_decimal("12"), Some(Cents(1200)));
        assert_eq!(Cents::parse_decimal("12.345"), None);
        assert_eq!(Cents::parse_decimal("12."), None);
        assert_eq!(Cents::parse_decimal("1,2"), None);
        assert_eq!(Cents::parse_decimal(""), None);
    }

    #[test]
    fn sum_refuses_overflow() {
        assert_eq!(Cents::sum([Cents(i64::MAX), Cents(1)]), None);
        assert_eq!(
            Cents::parse_decimal("999999999.99"),
            Some(Cents::MAX_AMOUNT)
        );
        assert_eq!(Cents::parse_decimal("1000000000.00"), None);
        assert_eq!(Cents::parse_decimal("-1000000000"), None);
        assert_eq!(Cents::sum([Cents(1), Cents(2)]), Some(Cents(3)));
    }

    proptest! {
        #[test]
        fn decimal_round_trip(v in -99_999_999_999i64..=99_999_999_999) {
            prop_assert_eq!(Cents::parse_decimal(&Cents(v).to_decimal()), Some(Cents(v)));
        }
    }
}
