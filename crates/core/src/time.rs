//! Time as people see it. Instants are UTC everywhere inside incasso; a
//! clerk or citizen reads and types them in Italy's time zone.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Rome;

/// Interprets a wall-clock time typed in Italy. In the hour that repeats when
/// summer time ends, the earlier instant is taken; a time skipped when summer
/// time starts is moved forward by the gap (it names no real instant).
pub fn from_rome(naive: NaiveDateTime) -> DateTime<Utc> {
    match Rome.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let later = naive + chrono::Duration::hours(1);
            Rome.from_local_datetime(&later)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&naive))
        }
    }
}

pub fn to_rome(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&Rome).naive_local()
}

/// The date a person in Italy would write for this instant, `dd/mm/yyyy`.
pub fn rome_date_string(t: DateTime<Utc>) -> String {
    to_rome(t).format("%d/%m/%Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn winter_and_summer_offsets() {
        let winter = NaiveDate::from_ymd_opt(2026, 1, 15)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(from_rome(winter).to_rfc3339(), "2026-01-15T11:00:00+00:00");
        let summer = NaiveDate::from_ymd_opt(2026, 7, 15)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(from_rome(summer).to_rfc3339(), "2026-07-15T10:00:00+00:00");
        assert_eq!(to_rome(from_rome(summer)), summer);
    }

    #[test]
    fn end_of_day_is_still_that_day_in_italy() {
        let t = "2026-12-31T23:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(rome_date_string(t), "01/01/2027");
    }
}
