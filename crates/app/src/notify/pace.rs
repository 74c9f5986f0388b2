//! Pacing the calls to App IO under each service's key, so that the
//! outbox drains at the rate IO allows rather than bursting into 429s.
//!
//! IO (Azure API Management) limits each key to a rate it does not
//! publish, with a bucket of about a second's worth. Sent as fast as the
//! outbox goes, a round empties the bucket, the rest of the round gets 429
//! (a message refused after its profile check has spent two calls for
//! nothing) and the service pauses for `Retry-After`, whole seconds: the
//! rate-limited drain was 80 % of IO's rate (`bench notify`).
//!
//! So each key's rate is learned: unknown until IO first answers 429 (no
//! pacing at all for a key IO never limits). Then IO's bucket has just
//! run dry: it held a second's worth when the busy stretch began (after a
//! second without calls it is full) and has refilled at the rate since,
//! so the N calls it took over the stretch's T seconds were the rate times
//! 1 + T. From there the rate follows IO as TCP follows a link: each later
//! 429 cuts it by a tenth (once a second at most: the 429s of one burst
//! are one signal), and each second without one raises it by 2 %, so a
//! key whose limit is raised is found again. Calls are
//! spaced evenly at that rate (a virtual schedule: each call takes the
//! next free instant). A call whose instant is further than a bound is
//! not waited for: the caller puts its row back for then, so that a
//! round's rows never wait past their lease.
//!
//! Pure: the caller passes the instants. One pacer per process; several
//! processes sharing a key each learn their share the same way.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Each 429 (once a second at most) keeps this much of the rate.
const CUT: f64 = 0.9;
/// Each second without a 429 raises the rate by this much.
const RAISE: f64 = 1.02;
/// Below this many calls a second the rate is not cut further.
const FLOOR: f64 = 1.0;
/// The first rate is learned from a stretch of at least this many calls.
const LEARN_FROM: u64 = 10;

#[derive(Debug, Default)]
struct Key {
    /// Calls a second; `None` until IO first limits the key.
    rate: Option<f64>,
    /// When the next call may go.
    next_free: Option<Instant>,
    last_cut: Option<Instant>,
    last_raise: Option<Instant>,
    /// The busy stretch, to learn the first rate: when it began, when its
    /// last call was taken, and how many IO took.
    stretch: Option<(Instant, Instant, u64)>,
}

/// A second without calls: IO's bucket is full again.
const REFILLED: Duration = Duration::from_secs(1);

/// The learned rates of the keys, and their schedules.
#[derive(Debug, Default)]
pub struct Pacer {
    keys: HashMap<String, Key>,
}

/// Keys remembered at most: past it, the least recently limited are
/// forgotten (they start unpaced again, and learn again if IO limits).
const KEYS: usize = 10_000;

impl Pacer {
    /// A call on `key` at `now`: how long to wait before making it
    /// (`Ok`, its instant taken), or, when that is more than `max_wait`,
    /// how long until it could go (`Err`, nothing taken).
    pub fn reserve(
        &mut self,
        key: &str,
        now: Instant,
        max_wait: Duration,
    ) -> Result<Duration, Duration> {
        let Some(k) = self.keys.get_mut(key) else {
            return Ok(Duration::ZERO);
        };
        let Some(rate) = k.rate else {
            return Ok(Duration::ZERO);
        };
        let at = k.next_free.map_or(now, |t| t.max(now));
        let wait = at - now;
        if wait > max_wait {
            return Err(wait);
        }
        k.next_free = Some(at + Duration::from_secs_f64(1.0 / rate));
        Ok(wait)
    }

    /// IO took a call on `key` at `now`.
    pub fn taken(&mut self, key: &str, now: Instant) {
        let k = self.keys.entry(key.to_string()).or_default();
        match k.rate {
            None => {
                k.stretch = Some(match k.stretch {
                    Some((start, last, n)) if now.saturating_duration_since(last) < REFILLED => {
                        (start, now, n + 1)
                    }
                    _ => (now, now, 1),
                });
            }
            Some(rate) => {
                let since = k.last_raise.or(k.last_cut).unwrap_or(now);
                if now.duration_since(since) >= Duration::from_secs(1) {
                    k.rate = Some(rate * RAISE);
                    k.last_raise = Some(now);
                }
            }
        }
        if self.keys.len() > KEYS {
            self.forget();
        }
    }

    /// IO answered 429 on `key` at `now`. (Its `Retry-After` is kept by
    /// the store, as the service's pause that every process reads.)
    pub fn limited(&mut self, key: &str, now: Instant) {
        let k = self.keys.entry(key.to_string()).or_default();
        let recent = k
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        if recent {
            return;
        }
        let rate = match (k.rate, k.stretch) {
            (Some(r), _) => Some(r * CUT),
            (None, Some((start, _, n))) if n >= LEARN_FROM => {
                Some(n as f64 / (1.0 + now.saturating_duration_since(start).as_secs_f64()))
            }
            // Too few calls to tell (another process spent the key's
            // bucket, say): unpaced still, until a stretch says more.
            (None, _) => None,
        };
        k.rate = rate.map(|r| r.max(FLOOR));
        k.stretch = None;
        k.last_cut = Some(now);
        k.last_raise = Some(now);
    }

    /// The rate learned for `key`, in calls a second.
    pub fn rate(&self, key: &str) -> Option<f64> {
        self.keys.get(key).and_then(|k| k.rate)
    }

    fn forget(&mut self) {
        let mut by_age: Vec<(Option<Instant>, String)> = self
            .keys
            .iter()
            .map(|(key, k)| (k.last_cut, key.clone()))
            .collect();
        by_age.sort();
        for (_, key) in by_age.into_iter().take(self.keys.len() / 2) {
            self.keys.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(5);

    #[test]
    fn a_key_io_never_limits_is_not_paced() {
        let mut p = Pacer::default();
        let now = Instant::now();
        for i in 0..1000 {
            assert_eq!(p.reserve("k", now, MAX), Ok(Duration::ZERO));
            p.taken("k", now + Duration::from_micros(i));
        }
        assert_eq!(p.rate("k"), None);
    }

    #[test]
    fn the_first_limit_learns_the_rate_from_the_busy_stretch() {
        let mut p = Pacer::default();
        let t0 = Instant::now();
        // An earlier stretch, then a second and more without calls.
        for i in 0..50u64 {
            p.taken("k", t0 + Duration::from_millis(i));
        }
        let t1 = t0 + Duration::from_secs(3);
        // IO allows 200 calls a second with a second's worth in its
        // bucket: sent at 500 a second, it takes 200 + 200 t until it runs
        // dry after 2/3 of a second, having taken 333.
        for i in 0..333u64 {
            p.taken("k", t1 + Duration::from_millis(i * 2));
        }
        let now = t1 + Duration::from_millis(666);
        p.limited("k", now);
        let rate = p.rate("k").unwrap();
        assert!((199.0..=201.0).contains(&rate), "{rate}");
        // Evenly spaced at the rate from then on.
        let first = p.reserve("k", now, MAX).unwrap();
        assert_eq!(first, Duration::ZERO);
        let second = p.reserve("k", now, MAX).unwrap();
        let gap = (second - first).as_secs_f64();
        assert!((gap - 1.0 / rate).abs() < 1e-6, "{gap}");
        // Other keys are not slowed.
        assert_eq!(p.reserve("other", now, MAX), Ok(Duration::ZERO));
    }

    #[test]
    fn a_burst_of_429s_cuts_once_and_quiet_seconds_raise_it() {
        let mut p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..200u64 {
            p.taken("k", t0 + Duration::from_millis(i * 5));
        }
        let now = t0 + Duration::from_secs(1);
        p.limited("k", now);
        let learned = p.rate("k").unwrap();
        // More 429s of the same burst: no further cut.
        for i in 0..50u64 {
            p.limited("k", now + Duration::from_millis(i));
        }
        assert_eq!(p.rate("k"), Some(learned));
        // A second later, another: cut by a tenth.
        p.limited("k", now + Duration::from_millis(1100));
        let cut = p.rate("k").unwrap();
        assert!((cut - learned * CUT).abs() < 1e-9, "{cut}");
        // Ten quiet seconds of calls taken: raised 2 % a second.
        let quiet = now + Duration::from_millis(1100);
        for s in 1..=10u64 {
            p.taken("k", quiet + Duration::from_secs(s));
        }
        let raised = p.rate("k").unwrap();
        assert!((raised - cut * RAISE.powi(10)).abs() < 1e-6, "{raised}");
    }

    #[test]
    fn a_call_too_far_ahead_is_not_taken() {
        let mut p = Pacer::default();
        let now = Instant::now();
        // Ten calls in nine seconds, then a 429: one call a second.
        for s in 0..10u64 {
            p.taken("k", now + Duration::from_millis(s * 900));
        }
        let now = now + Duration::from_secs(9);
        p.limited("k", now);
        assert_eq!(p.rate("k"), Some(1.0));
        for n in 0..=5u64 {
            assert_eq!(p.reserve("k", now, MAX), Ok(Duration::from_secs(n)));
        }
        assert_eq!(p.reserve("k", now, MAX), Err(Duration::from_secs(6)));
        assert_eq!(p.reserve("k", now, MAX), Err(Duration::from_secs(6)));
    }

    #[test]
    fn a_429_before_any_stretch_leaves_the_key_unpaced() {
        let mut p = Pacer::default();
        let now = Instant::now();
        p.taken("k", now);
        p.limited("k", now);
        assert_eq!(p.rate("k"), None);
        assert_eq!(p.reserve("k", now, MAX), Ok(Duration::ZERO));
    }
}
