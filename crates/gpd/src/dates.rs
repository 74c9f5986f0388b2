//! GPD's instants. Clients send `2026-12-31T23:59:59Z`, `...+01:00`, or a
//! zone-less `2026-12-31T23:59:59(.sss)`; a zone-less time is Italian
//! wall-clock time, the way a clerk of a Comune means it. Answers write
//! UTC with milliseconds and `Z`.

use chrono::{DateTime, NaiveDateTime, Utc};
use incasso_core::time;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant as GPD writes one in its answers: UTC, milliseconds, `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub DateTime<Utc>);

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ser_instant(&self.0, s)
    }
}

/// [`Instant`] of an optional time.
pub(crate) fn instant(t: Option<DateTime<Utc>>) -> Option<Instant> {
    t.map(Instant)
}

/// An instant as a GPD client writes one (see the module's note); the
/// error is Italian, for the caller.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(n) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(time::from_rome(n));
    }
    Err(format!(
        "data-ora non valida '{s}': usare il formato ISO 8601, es. 2026-12-31T23:59:59Z"
    ))
}

pub(crate) fn de_instant<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_instant(&s).map_err(serde::de::Error::custom)
}

pub(crate) fn de_opt_instant<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => parse_instant(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

pub(crate) fn ser_opt_instant<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        None => s.serialize_none(),
    }
}

pub(crate) fn ser_instant<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn instants_are_read_in_every_form_gpd_clients_send() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 22, 59, 59).unwrap();
        assert_eq!(parse_instant("2026-12-31T22:59:59Z"), Ok(t));
        assert_eq!(parse_instant("2026-12-31T23:59:59+01:00"), Ok(t));
        assert_eq!(parse_instant("2026-12-31T23:59:59"), Ok(t));
        assert!(parse_instant("2026-12-31").is_err());
        let written = serde_json::to_string(&Instant(t)).unwrap();
        assert_eq!(written, "\"2026-12-31T22:59:59.000Z\"");
    }
}
