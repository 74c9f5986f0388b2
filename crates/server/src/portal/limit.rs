//! Anti-abuse limits of the citizen portal, per client and in memory.
//!
//! Two buckets: [`Bucket::Lookup`] (a notice or receipt looked up, a PDF
//! downloaded) and [`Bucket::Create`] (a spontaneous payment created, a cart
//! sent to Checkout). Each is a GCRA (generic cell rate algorithm, the
//! token bucket written as one timestamp per client): a client may make
//! `burst` requests at once, then one every `60 s / per_minute`. A refused
//! request is answered 429 with `Retry-After` and an Italian page.
//!
//! The client is the peer's address, an IPv6 address by its /64 (what one
//! household or host is given). `X-Forwarded-For` is read only when the
//! peer is one of the configured trusted proxies (`--trusted-proxy`):
//! otherwise anyone could claim a fresh address per request.
//!
//! Memory is bounded: a client whose timestamp has passed is the same as
//! one never seen, so those entries are dropped once a minute; and when a
//! bucket holds [`LimitSettings::max_clients`] entries, the half nearest to
//! expiry is dropped (those clients get back at most their full burst).
//! The state is per process: several incasso processes behind a balancer
//! each allow a client its rate.

use super::ui::Lang;
use crate::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// A notice or receipt looked up, a notice or receipt PDF downloaded.
    Lookup,
    /// A spontaneous payment created, a cart sent to Checkout.
    Create,
}

/// A rate: `per_minute` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    /// The time one request costs, in nanoseconds.
    fn interval(&self) -> u64 {
        60_000_000_000 / u64::from(self.per_minute.max(1))
    }
}

/// The limits of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    pub lookup: Rate,
    pub create: Rate,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDR ranges).
    pub trusted_proxies: Vec<Cidr>,
    /// Clients remembered per bucket at most.
    pub max_clients: usize,
}

impl Default for LimitSettings {
    /// A person paying a family's notices looks up and prints a handful at
    /// once; a script trying IUVs and fiscal codes is held to one try every
    /// two seconds. Creating a position is rarer still.
    fn default() -> LimitSettings {
        LimitSettings {
            lookup: Rate {
                per_minute: 30,
                burst: 20,
            },
            create: Rate {
                per_minute: 5,
                burst: 3,
            },
            trusted_proxies: Vec::new(),
            max_clients: 100_000,
        }
    }
}

/// A setting that could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct SettingError(String);

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SettingError {}

impl LimitSettings {
    /// Changes the rates from `lookup=30/20,create=5/3` (per minute /
    /// burst; either part may be left out).
    pub fn set_rates(&mut self, text: &str) -> Result<(), SettingError> {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || {
                SettingError(format!(
                    "limiti del portale: '{part}' non è nella forma lookup=30/20 o create=5/3 \
                     (richieste al minuto / a raffica, almeno 1)"
                ))
            };
            let (name, rate) = part.split_once('=').ok_or_else(bad)?;
            let (per_minute, burst) = rate.split_once('/').ok_or_else(bad)?;
            let rate = Rate {
                per_minute: per_minute.trim().parse().map_err(|_| bad())?,
                burst: burst.trim().parse().map_err(|_| bad())?,
            };
            if rate.per_minute == 0 || rate.burst == 0 {
                return Err(bad());
            }
            match name.trim() {
                "lookup" => self.lookup = rate,
                "create" => self.create = rate,
                _ => return Err(bad()),
            }
        }
        Ok(())
    }

    /// Sets the trusted proxies from `127.0.0.1, 10.0.0.0/8, ::1`.
    pub fn set_trusted_proxies(&mut self, text: &str) -> Result<(), SettingError> {
        self.trusted_proxies = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Cidr::parse)
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn rate(&self, bucket: Bucket) -> Rate {
        match bucket {
            Bucket::Lookup => self.lookup,
            Bucket::Create => self.create,
        }
    }

    fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(peer))
    }
}

/// An address range: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, SettingError> {
        let bad = || {
            SettingError(format!(
                "proxy fidato: '{text}' non è un indirizzo IP né un intervallo come 10.0.0.0/8"
            ))
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:1.2.3.4`, as a dual-stack
/// listener reports it) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Who a client counts as: its IPv4 address, or its IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

/// The client of a request: the peer (axum's `ConnectInfo`, set by
/// [`crate::serve`]), or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy. A
/// request served without a peer (a test calling the router directly) is
/// `0.0.0.0`.
pub fn client_ip(parts: &axum::http::request::Parts, settings: &LimitSettings) -> IpAddr {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| canonical(c.0.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    forwarded_client(peer, &parts.headers, settings)
}

fn forwarded_client(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    settings: &LimitSettings,
) -> IpAddr {
    if !settings.trusts(peer) {
        return peer;
    }
    // Each proxy appends the address it was reached from: read from the
    // right, the first hop no trusted proxy vouches for is the client.
    // What lies left of it was written by the client and proves nothing.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !settings.trusts(ip) {
                    break;
                }
            }
            // Garbage where a proxy's entry should be: the last address a
            // trusted party gave is the best we know.
            None => break,
        }
    }
    client
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    let v4 = hop.split_once(':')?.0;
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Each bucket's clients and their theoretical arrival time (nanoseconds
/// since the limiter's epoch): the time at which the client's burst is
/// whole again, plus one interval per request it has made since.
#[derive(Default)]
struct Clients {
    tat: HashMap<IpAddr, u64>,
    next_sweep: u64,
}

/// The limits of one process (in [`crate::AppState`]).
pub struct Limiter {
    settings: LimitSettings,
    epoch: Instant,
    lookup: Mutex<Clients>,
    create: Mutex<Clients>,
}

/// How often clients that have nothing left to pay back are forgotten.
const SWEEP_EVERY: u64 = 60_000_000_000;

impl Limiter {
    pub fn new(settings: LimitSettings) -> Limiter {
        Limiter {
            settings,
            epoch: Instant::now(),
            lookup: Mutex::default(),
            create: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Spends one request of `client` in `bucket`; `Err` says how long
    /// until it may try again.
    pub fn check(&self, bucket: Bucket, client: IpAddr) -> Result<(), Duration> {
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.check_at(bucket, client, now)
    }

    /// [`Limiter::check`] at `now` nanoseconds since the epoch (tests set
    /// the time instead of sleeping).
    pub fn check_at(&self, bucket: Bucket, client: IpAddr, now: u64) -> Result<(), Duration> {
        let rate = self.settings.rate(bucket);
        let interval = rate.interval();
        let tolerance = interval * u64::from(rate.burst.max(1) - 1);
        let key = client_key(client);
        let mut clients = match bucket {
            Bucket::Lookup => &self.lookup,
            Bucket::Create => &self.create,
        }
        .lock()
        // A panic mid-update leaves at worst one client's time stale.
        .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tat = clients.tat.get(&key).copied().unwrap_or(now).max(now);
        if tat - now > tolerance {
            return Err(Duration::from_nanos(tat - now - tolerance));
        }
        if !clients.tat.contains_key(&key) {
            clients.make_room(now, self.settings.max_clients);
        }
        clients.tat.insert(key, tat + interval);
        Ok(())
    }

    /// Clients remembered in `bucket` (for tests and metrics).
    pub fn clients(&self, bucket: Bucket) -> usize {
        match bucket {
            Bucket::Lookup => &self.lookup,
            Bucket::Create => &self.create,
        }
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .tat
        .len()
    }
}

impl Clients {
    /// Before a new client is added: forgets the idle ones once a minute,
    /// and, at the cap, the half nearest to being idle.
    fn make_room(&mut self, now: u64, max: usize) {
        let max = max.max(2);
        if now >= self.next_sweep || self.tat.len() >= max {
            self.tat.retain(|_, tat| *tat > now);
            self.next_sweep = now + SWEEP_EVERY;
        }
        if self.tat.len() >= max {
            let mut times: Vec<u64> = self.tat.values().copied().collect();
            let (_, median, _) = times.select_nth_unstable(max / 2);
            let median = *median;
            self.tat.retain(|_, tat| *tat > median);
            // Many equal times: drop arbitrary ones down to half.
            if self.tat.len() >= max {
                let keep: Vec<IpAddr> = self.tat.keys().take(max / 2).copied().collect();
                self.tat.retain(|k, _| keep.contains(k));
            }
        }
    }
}

impl super::ui::Portal {
    /// A form posted to a handler that looks something up or creates it:
    /// from this portal's page (its token), and within the client's rate.
    // The error is the page answered, as `check_csrf`'s.
    #[allow(clippy::result_large_err)]
    pub async fn admit(
        &self,
        state: &AppState,
        csrf: &str,
        bucket: Bucket,
    ) -> Result<(), Response> {
        self.check_csrf(csrf)?;
        self.limit(state, bucket).await
    }

    /// Spends one request of this client in `bucket`. A client over its
    /// rate is answered 429 with `Retry-After` and a page that says when
    /// to try again; the handler returns that answer as it is.
    pub async fn limit(&self, state: &AppState, bucket: Bucket) -> Result<(), Response> {
        let Err(wait) = state.limits.check(bucket, self.client) else {
            return Ok(());
        };
        let secs = retry_after_secs(wait);
        // The address is personal data: the log says only that it happened.
        tracing::info!(
            ?bucket,
            retry_after = secs,
            "portal: a client over its rate"
        );
        let c = &self.chrome;
        let text = match (c.lang, secs) {
            (Lang::It, 1) => "Troppe richieste: riprovare tra 1 secondo.".to_string(),
            (Lang::It, n) => format!("Troppe richieste: riprovare tra {n} secondi."),
            (Lang::De, 1) => "Zu viele Anfragen: bitte in 1 Sekunde erneut versuchen.".to_string(),
            (Lang::De, n) => format!("Zu viele Anfragen: bitte in {n} Sekunden erneut versuchen."),
            (Lang::En, 1) => "Too many requests: try again in 1 second.".to_string(),
            (Lang::En, n) => format!("Too many requests: try again in {n} seconds."),
        };
        let title = c.t("Troppe richieste", "Zu viele Anfragen", "Too many requests");
        let mut resp = super::message_page(c, StatusCode::TOO_MANY_REQUESTS, title, &text);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Err(resp)
    }
}

/// `Retry-After` in whole seconds, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(lookup: (u32, u32)) -> Limiter {
        Limiter::new(LimitSettings {
            lookup: Rate {
                per_minute: lookup.0,
                burst: lookup.1,
            },
            ..LimitSettings::default()
        })
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let l = limiter((30, 10));
        let a = ip("203.0.113.7");
        let t0 = 5 * SEC;
        for i in 0..10 {
            assert!(l.check_at(Bucket::Lookup, a, t0).is_ok(), "request {i}");
        }
        // The eleventh waits one interval (2 s at 30 a minute).
        let wait = l.check_at(Bucket::Lookup, a, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(2));
        assert_eq!(retry_after_secs(wait), 2);
        // Half-way it still waits the rest.
        let wait = l.check_at(Bucket::Lookup, a, t0 + SEC).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        // After it, one more, and no second one.
        assert!(l.check_at(Bucket::Lookup, a, t0 + 2 * SEC).is_ok());
        assert!(l.check_at(Bucket::Lookup, a, t0 + 2 * SEC).is_err());
        // A refused request costs nothing: after a full minute idle the
        // whole burst is back.
        let later = t0 + 2 * SEC + 60 * SEC;
        for _ in 0..10 {
            assert!(l.check_at(Bucket::Lookup, a, later).is_ok());
        }
        assert!(l.check_at(Bucket::Lookup, a, later).is_err());
    }

    #[test]
    fn clients_and_buckets_are_apart() {
        let l = limiter((30, 2));
        let (a, b) = (ip("203.0.113.7"), ip("203.0.113.8"));
        assert!(l.check_at(Bucket::Lookup, a, 0).is_ok());
        assert!(l.check_at(Bucket::Lookup, a, 0).is_ok());
        assert!(l.check_at(Bucket::Lookup, a, 0).is_err());
        assert!(l.check_at(Bucket::Lookup, b, 0).is_ok());
        // Create has its own default rate: 3 at once, then one per 12 s.
        for _ in 0..3 {
            assert!(l.check_at(Bucket::Create, a, 0).is_ok());
        }
        let wait = l.check_at(Bucket::Create, a, 0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(12));
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64() {
        let l = limiter((30, 1));
        assert!(l.check_at(Bucket::Lookup, ip("2001:db8:1:2::1"), 0).is_ok());
        // Another address of the same /64 is the same client...
        assert!(
            l.check_at(Bucket::Lookup, ip("2001:db8:1:2:ffff::9"), 0)
                .is_err()
        );
        // ...another /64 is not; an IPv4-mapped address is its IPv4.
        assert!(l.check_at(Bucket::Lookup, ip("2001:db8:1:3::1"), 0).is_ok());
        assert!(l.check_at(Bucket::Lookup, ip("198.51.100.1"), 0).is_ok());
        assert!(
            l.check_at(Bucket::Lookup, ip("::ffff:198.51.100.1"), 0)
                .is_err()
        );
    }

    #[test]
    fn idle_clients_are_forgotten_and_the_cap_holds() {
        let l = Limiter::new(LimitSettings {
            max_clients: 1000,
            ..LimitSettings::default()
        });
        for i in 0..500u32 {
            let c = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            l.check_at(Bucket::Lookup, c, 0).unwrap();
        }
        assert_eq!(l.clients(Bucket::Lookup), 500);
        // Two minutes on, all of them are idle: the next new client's
        // sweep forgets them.
        l.check_at(Bucket::Lookup, ip("192.0.2.1"), 120 * SEC)
            .unwrap();
        assert_eq!(l.clients(Bucket::Lookup), 1);
        // Many clients at once never pass the cap.
        for i in 0..5000u32 {
            let c = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
            l.check_at(Bucket::Lookup, c, 121 * SEC + u64::from(i))
                .unwrap();
            assert!(l.clients(Bucket::Lookup) <= 1000);
        }
        // The ones kept are the latest (farthest from idle).
        let last = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + 4999));
        for _ in 0..19 {
            l.check_at(Bucket::Lookup, last, 121 * SEC + 5000).unwrap();
        }
        assert!(l.check_at(Bucket::Lookup, last, 121 * SEC + 5000).is_err());
    }

    fn headers(xff: &[&str]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_only_from_a_trusted_proxy() {
        let mut s = LimitSettings::default();
        let h = headers(&["198.51.100.9"]);
        // No trusted proxy: the header is the client's word, ignored.
        assert_eq!(forwarded_client(ip("127.0.0.1"), &h, &s), ip("127.0.0.1"));
        s.set_trusted_proxies("127.0.0.1, 10.0.0.0/8").unwrap();
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), &h, &s),
            ip("198.51.100.9")
        );
        // An untrusted peer's header is still ignored.
        assert_eq!(
            forwarded_client(ip("203.0.113.5"), &h, &s),
            ip("203.0.113.5")
        );
        // A forged entry left of the real one proves nothing; proxies in
        // the chain are skipped; two header lines are one list.
        let h = headers(&["6.6.6.6, 198.51.100.9", "10.1.2.3"]);
        assert_eq!(
            forwarded_client(ip("127.0.0.1"), &h, &s),
            ip("198.51.100.9")
        );
        // Garbage where a proxy's entry should be: the last trusted hop.
        let h = headers(&["198.51.100.9, nonsense"]);
        assert_eq!(forwarded_client(ip("127.0.0.1"), &h, &s), ip("127.0.0.1"));
        // Ports and brackets are accepted.
        let h = headers(&["[2001:db8::1]:4711"]);
        assert_eq!(forwarded_client(ip("127.0.0.1"), &h, &s), ip("2001:db8::1"));
        let h = headers(&["198.51.100.9:4711"]);
        assert_eq!(
            forwarded_client(ip("::ffff:127.0.0.1"), &h, &s),
            ip("198.51.100.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            forwarded_client(ip("10.9.9.9"), &headers(&[]), &s),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn settings_are_read_or_refused() {
        let mut s = LimitSettings::default();
        s.set_rates("lookup=600/100").unwrap();
        assert_eq!(
            s.lookup,
            Rate {
                per_minute: 600,
                burst: 100
            }
        );
        assert_eq!(s.create, LimitSettings::default().create);
        s.set_rates(" create = 10/5 , lookup=1/1").unwrap();
        assert_eq!(s.create.per_minute, 10);
        assert_eq!(s.lookup.burst, 1);
        for bad in [
            "lookup=0/1",
            "lookup=5",
            "other=1/1",
            "lookup=a/b",
            "create=1/0",
        ] {
            assert!(s.set_rates(bad).is_err(), "{bad}");
        }
        assert!(s.set_trusted_proxies("10.0.0.0/33").is_err());
        assert!(s.set_trusted_proxies("proxy.local").is_err());
        s.set_trusted_proxies("fd00::/8,192.168.1.1").unwrap();
        assert!(s.trusts(ip("fd12::1")));
        assert!(s.trusts(ip("::ffff:192.168.1.1")));
        assert!(!s.trusts(ip("192.168.1.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }
}
