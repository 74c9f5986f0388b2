//! Instants are stored as epoch microseconds (BIGINT): portable across both
//! databases and the `Any` driver, and precise enough for receipts.

use chrono::{DateTime, Utc};

pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(v).unwrap_or_default()
}

pub(crate) fn opt_to_micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_micros)
}

pub(crate) fn opt_from_micros(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_micros)
}
