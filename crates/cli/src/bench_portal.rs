//! `incasso bench portal`: citizens on the portal at once. Each simulated
//! citizen visits as a person does, following the pages' own links and
//! forms: the portal's home, the notice search, the notice found by its
//! number, its PDF, the notice put in the cart, the cart, and the cart
//! sent to pagoPA Checkout (the simulator's, run in this process with
//! incasso, so that opening a cart is a real HTTP call to it).
//!
//! Every visit comes from an address of its own, as many people do: the
//! bench's incasso trusts its loopback peer as a proxy and reads the
//! visitor's address from `X-Forwarded-For`, so the portal's per-client
//! limits run at their production settings and are measured with the
//! rest, instead of being switched off.
//!
//! The demo's two Enti are seeded (stations connected to the simulator),
//! plus bench positions at the first, one notice per visit.

use crate::bench::{ENTE, peak_rss_mb, round2, spec, tempdir};
use anyhow::{Context, Result, bail, ensure};
use chrono::Utc;
use incasso_app::App;
use incasso_server::portal::limit::LimitSettings;
use incasso_store::Store;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Positions per store call while seeding.
const SEED_BATCH: usize = 500;

/// The kinds of page view, in a visit's order.
const KINDS: [&str; 7] = [
    "home",
    "notice search",
    "notice found",
    "notice PDF",
    "add to cart",
    "cart",
    "checkout",
];

pub struct Args {
    /// Citizens browsing at once.
    pub concurrency: u64,
    /// Visits in each phase (each a new citizen, with a notice of their own).
    pub visits: u64,
    /// Page views a second the citizens make in the first phase.
    pub rate: u64,
    pub database_url: Option<String>,
}

pub async fn run(args: Args) -> Result<()> {
    let Args {
        concurrency,
        visits,
        rate,
        database_url,
    } = args;
    let concurrency = concurrency.max(1);
    let dir = tempdir()?;
    let db_url =
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("portal.db").display()));
    let store = Store::connect(&db_url)
        .await
        .context("opening the bench database")?;
    let backend = store.dialect().name();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim_url = format!("http://{}", sim_listener.local_addr()?);
    let app = App::new(store.clone(), incasso_app::Settings::new(&base));
    let seeded = Instant::now();
    let demo_json = incasso_app::demo::seed(&app.system("bench"), &dir, &sim_url)
        .await
        .context("seeding the demo Enti")?;
    let navs = Arc::new(seed(&store, 2 * visits + 1).await?);
    let seed_secs = seeded.elapsed().as_secs_f64();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (mut sim_settings, _) =
        crate::simulator::settings_from_demo(&demo_json, Some(base.clone()))?;
    sim_settings.public_url = Some(sim_url.clone());
    let sim = incasso_simulator::Simulator::new(sim_settings);
    let simulator = tokio::spawn(sim.serve(sim_listener, stopped(stop_rx.clone())));
    let mut limits = LimitSettings::default();
    // This process's clients reach incasso through loopback, and say who
    // they are in X-Forwarded-For: a proxy in front of incasso does so.
    limits
        .set_trusted_proxies("127.0.0.1")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let state = incasso_server::AppState::new(app).with_limits(limits);
    let server = tokio::spawn(incasso_server::serve_state(
        listener,
        state,
        stopped(stop_rx.clone()),
    ));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency as usize)
        .build()?;
    // One visit first, not measured: the caches a person's visit finds
    // warm (templates, statements, the station's connection).
    Visit::new(&client, &base, u64::MAX)
        .run(&navs[0])
        .await
        .context("the first visit")?;

    // The citizens at the target rate: each page view at its time, the
    // latency counted from that time (a server behind schedule is not
    // excused by the citizens waiting for it).
    let paced = phase(&client, &base, &navs, concurrency, visits, 0, Some(rate)).await?;
    // The same citizens as fast as the machine serves them.
    let flat_out = phase(&client, &base, &navs, concurrency, visits, visits, None).await?;
    let _ = stop_tx.send(true);
    server.await??;
    simulator.await??;
    store.close().await;

    let views = paced.samples.len() as u64;
    // The citizens start over the length of one visit and finish likewise
    // (see `phase`): the rate they kept is the page views over the run
    // less that one visit's length; over the whole run it reads lower by
    // the ramps at both ends.
    let overall_per_s = views as f64 / paced.secs;
    let visit_secs = concurrency as f64 / rate.max(1) as f64 * KINDS.len() as f64;
    let per_s = views as f64 / (paced.secs - visit_secs).max(f64::EPSILON);
    let max_per_s = flat_out.samples.len() as f64 / flat_out.secs;
    let mut by_kind: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut all: Vec<f64> = Vec::with_capacity(paced.samples.len());
    for (kind, ms) in paced.samples {
        by_kind.entry(kind).or_default().push(ms);
        all.push(ms);
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&all, 50.0), percentile(&all, 99.0));
    let mut flat: Vec<f64> = flat_out.samples.iter().map(|(_, ms)| *ms).collect();
    flat.sort_by(|a, b| a.total_cmp(b));
    let rss = peak_rss_mb();

    println!(
        "bench portal ({backend}; {concurrency} citizens at once, {visits} visits a phase; seeded in {seed_secs:.1} s)"
    );
    println!("  at {rate} page views/s offered:");
    println!(
        "  {:<20} {:>8} {:>9} {:>9} {:>9}",
        "page view", "count", "p50 ms", "p99 ms", "max ms"
    );
    let mut per_kind = serde_json::Map::new();
    for (kind, mut ms) in by_kind {
        ms.sort_by(|a, b| a.total_cmp(b));
        let (k50, k99) = (percentile(&ms, 50.0), percentile(&ms, 99.0));
        println!(
            "  {:<20} {:>8} {:>9.2} {:>9.2} {:>9.2}",
            KINDS[kind],
            ms.len(),
            k50,
            k99,
            ms.last().copied().unwrap_or(0.0)
        );
        per_kind.insert(
            KINDS[kind].to_lowercase().replace(" ", "_"),
            json!({"p50_ms": round2(k50), "p99_ms": round2(k99)}),
        );
    }
    println!(
        "  all: {views} page views in {:.2} s, {per_s:.0} page views/s once every citizen had started ({overall_per_s:.0}/s with the ramps of {visit_secs:.1} s), p50 {p50:.2} ms, p99 {p99:.2} ms",
        paced.secs
    );
    println!(
        "  as fast as served: {} page views in {:.2} s, {max_per_s:.0} page views/s, p50 {:.2} ms, p99 {:.2} ms; peak RSS {rss:.0} MiB",
        flat.len(),
        flat_out.secs,
        percentile(&flat, 50.0),
        percentile(&flat, 99.0)
    );
    println!(
        "{}",
        json!({
            "bench": "portal",
            "backend": backend,
            "citizens": concurrency,
            "visits": visits,
            "items": views,
            "seconds": round2(paced.secs),
            "offered_per_s": rate,
            "per_s": per_s.round(),
            "overall_per_s": overall_per_s.round(),
            "p50_ms": round2(p50),
            "p99_ms": round2(p99),
            "max_per_s": max_per_s.round(),
            "max_p99_ms": round2(percentile(&flat, 99.0)),
            "kinds": per_kind,
            "peak_rss_mb": rss.round(),
        })
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// What one phase measured: each page view's kind and milliseconds.
struct Measured {
    samples: Vec<(usize, f64)>,
    secs: f64,
}

/// `visits` visits by `concurrency` citizens, visit `first` onwards; at
/// `rate` page views a second in all (each citizen one every
/// `concurrency / rate` seconds), or as fast as they are served.
async fn phase(
    client: &reqwest::Client,
    base: &str,
    navs: &Arc<Vec<String>>,
    concurrency: u64,
    visits: u64,
    first: u64,
    rate: Option<u64>,
) -> Result<Measured> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let (client, base, navs, next) =
            (client.clone(), base.to_string(), navs.clone(), next.clone());
        // The citizens' first pages are spread over the length of a whole
        // visit, not over one page's interval: else every citizen would be
        // on the same page at the same moment (all on the PDF for a fifth
        // of a second, then all on the cart), a herd that marches in step
        // as no population of people does, and what the bench measured
        // would be the herd. Spread, each moment sees every kind of page
        // in the visit's proportions, at `rate` once all have started.
        let mut pace = rate.map(|r| {
            let every = concurrency as f64 / r.max(1) as f64;
            let visit = every * KINDS.len() as f64;
            Pace {
                next: started
                    + std::time::Duration::from_secs_f64(visit * c as f64 / concurrency as f64),
                every: std::time::Duration::from_secs_f64(every),
            }
        });
        tasks.push(tokio::spawn(async move {
            let mut samples: Vec<(usize, f64)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= visits {
                    return Ok::<_, anyhow::Error>(samples);
                }
                let i = first + i;
                let mut visit = Visit::new(&client, &base, i);
                visit.pace = pace.take();
                visit
                    .run(&navs[(i as usize + 1) % navs.len()])
                    .await
                    .with_context(|| format!("visit {i}"))?;
                pace = visit.pace.take();
                samples.extend(visit.samples);
            }
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await??);
    }
    Ok(Measured {
        samples,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// A citizen's schedule: a page view every `every`.
struct Pace {
    next: Instant,
    every: std::time::Duration,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Payable positions at the demo's first Ente, one per visit, fresh for
/// this run (a reused PostgreSQL database keeps earlier runs' ones, paid
/// or in carts); answers their notice numbers.
async fn seed(store: &Store, n: u64) -> Result<Vec<String>> {
    let prefix = format!("P{}", Utc::now().timestamp_millis());
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (store, next, prefix) = (store.clone(), next.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            let mut navs = Vec::new();
            loop {
                let from = next.fetch_add(SEED_BATCH as u64, Ordering::Relaxed);
                if from >= n {
                    return Ok::<_, anyhow::Error>(navs);
                }
                let to = (from + SEED_BATCH as u64).min(n);
                let batch = (from..to).map(|i| spec(i, &prefix)).collect();
                let stored = store
                    .create_positions(ENTE, batch, Utc::now(), true, None)
                    .await?;
                navs.extend(stored.iter().filter_map(|s| {
                    s.position.options[0]
                        .notice_number
                        .as_ref()
                        .map(|n| n.as_str().to_string())
                }));
            }
        }));
    }
    let mut navs = Vec::new();
    for t in tasks {
        navs.extend(t.await??);
    }
    ensure!(!navs.is_empty(), "no notices seeded");
    Ok(navs)
}

/// One citizen's visit: a browser of its own (cookies), from an address
/// of its own.
struct Visit<'a> {
    client: &'a reqwest::Client,
    base: &'a str,
    address: String,
    cookies: BTreeMap<String, String>,
    samples: Vec<(usize, f64)>,
    pace: Option<Pace>,
}

/// A form of a page: where it goes, and its fields with their values.
#[derive(Debug)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Types `value` into the field `name`.
    fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some(f) => f.1 = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }
}

impl<'a> Visit<'a> {
    fn new(client: &'a reqwest::Client, base: &'a str, i: u64) -> Visit<'a> {
        // 10.0.0.0/8 has room for every visit of a long run.
        let n = (i % 0x00ff_ffff) as u32 + 1;
        Visit {
            client,
            base,
            address: std::net::Ipv4Addr::from(0x0a00_0000 | n).to_string(),
            cookies: BTreeMap::new(),
            samples: Vec::new(),
            pace: None,
        }
    }

    async fn run(&mut self, nav: &str) -> Result<()> {
        let home_path = format!("/portale/{ENTE}/");
        let home = self.get(0, &home_path).await?;
        // The home page leads to the notice search.
        let search_path = link_to(&home, &["/avviso"])
            .with_context(|| format!("no link to the notice search on {home_path}"))?;
        let search = self.get(1, &search_path).await?;
        let mut form = forms(&search)
            .into_iter()
            .find(|f| f.fields.iter().any(|(k, _)| k == "codice"))
            .context("no notice search form")?;
        form.set("codice", nav);
        let found = self.submit(2, 2, &form).await?;
        let notice_forms = forms(&found);
        ensure!(
            notice_forms.iter().any(|f| f.value("codice") == Some(nav)),
            "the page found is not notice {nav}'s: {}",
            found.chars().take(300).collect::<String>()
        );
        let pdf = notice_forms
            .iter()
            .find(|f| f.action.contains("pdf"))
            .context("no form for the notice PDF")?;
        let bytes = self.submit_bytes(3, 3, pdf).await?;
        ensure!(bytes.starts_with(b"%PDF"), "{} gave no PDF", pdf.action);
        // "Pay now": the notice goes in the cart, the cart is shown.
        let add = notice_forms
            .iter()
            .find(|f| f.action.contains("aggiungi") && f.value("poi") == Some("paga"))
            .or_else(|| notice_forms.iter().find(|f| f.action.contains("aggiungi")))
            .context("no form that puts the notice in the cart")?;
        let cart = self.submit(4, 5, add).await?;
        let cart = if forms(&cart).iter().any(|f| f.action.ends_with("/paga")) {
            cart
        } else {
            let path = link_to(&cart, &["/carrello"]).context("no link to the cart")?;
            self.get(5, &path).await?
        };
        let checkout = forms(&cart)
            .into_iter()
            .find(|f| f.action.ends_with("/paga"))
            .context("no form that sends the cart to pagoPA")?;
        let t = self.start().await;
        let resp = self.send_form(&checkout).await?;
        let status = resp.status();
        let location = location(&resp).unwrap_or_default();
        let body = resp.text().await.unwrap_or_default();
        self.samples.push((6, t.elapsed().as_secs_f64() * 1000.0));
        ensure!(
            status.is_redirection() && location.contains("/checkout/carts/"),
            "checkout answered {status} to {location} (expected a redirect to Checkout): {}",
            body.chars().take(300).collect::<String>()
        );
        Ok(())
    }

    /// When the next page view starts: now, or at its time in the
    /// citizen's schedule (waited for).
    async fn start(&mut self) -> Instant {
        match &mut self.pace {
            None => Instant::now(),
            Some(p) => {
                let at = p.next;
                p.next += p.every;
                tokio::time::sleep_until(at.into()).await;
                at
            }
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut r = self
            .client
            .request(method, url)
            .header("x-forwarded-for", &self.address);
        if !cookie.is_empty() {
            r = r.header(reqwest::header::COOKIE, cookie);
        }
        r
    }

    fn keep_cookies(&mut self, resp: &reqwest::Response) {
        for c in resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            if let Some((k, v)) = c.split(';').next().and_then(|kv| kv.split_once('=')) {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
    }

    /// A page, following the portal's own redirects (each one a page view
    /// of the same kind).
    async fn get(&mut self, kind: usize, path: &str) -> Result<String> {
        let bytes = self.get_bytes(kind, path).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn get_bytes(&mut self, kind: usize, path: &str) -> Result<Vec<u8>> {
        let mut path = path.to_string();
        for _ in 0..5 {
            let t = self.start().await;
            let resp = self.request(reqwest::Method::GET, &path).send().await?;
            self.keep_cookies(&resp);
            let status = resp.status();
            let location = location(&resp);
            let body = resp.bytes().await?;
            self.samples
                .push((kind, t.elapsed().as_secs_f64() * 1000.0));
            if status.is_redirection() {
                path = location.context("a redirect without Location")?;
                continue;
            }
            ensure!(
                status.is_success(),
                "GET {path}: {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
            return Ok(body.to_vec());
        }
        bail!("GET {path}: too many redirects")
    }

    async fn send_form(&mut self, form: &Form) -> Result<reqwest::Response> {
        let resp = self
            .request(reqwest::Method::POST, &form.action)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&form.fields))
            .send()
            .await?;
        self.keep_cookies(&resp);
        Ok(resp)
    }

    /// Posts `form` and follows the answer's redirect to the page it
    /// names (as a browser does; that page a view of kind `then`).
    async fn submit(&mut self, kind: usize, then: usize, form: &Form) -> Result<String> {
        let bytes = self.submit_bytes(kind, then, form).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn submit_bytes(&mut self, kind: usize, then: usize, form: &Form) -> Result<Vec<u8>> {
        let t = self.start().await;
        let resp = self.send_form(form).await?;
        let status = resp.status();
        let location = location(&resp);
        let body = resp.bytes().await?;
        self.samples
            .push((kind, t.elapsed().as_secs_f64() * 1000.0));
        if status.is_redirection() {
            let to = location.context("a redirect without Location")?;
            return self.get_bytes(then, &to).await;
        }
        ensure!(
            status.is_success(),
            "POST {}: {status}: {}",
            form.action,
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
        Ok(body.to_vec())
    }
}

fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `href` values of the page's links, unescaped.
fn links(html: &str) -> Vec<String> {
    attribute_values(html, "href=\"")
}

/// The first link whose address names one of `words`.
fn link_to(html: &str, words: &[&str]) -> Option<String> {
    links(html)
        .into_iter()
        .filter(|h| h.starts_with('/') || h.starts_with("http"))
        .find(|h| {
            let lower = h.to_lowercase();
            words.iter().any(|w| lower.contains(w))
        })
}

fn attribute_values(html: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        if let Some(end) = rest.find('"') {
            out.push(unescape(&rest[..end]));
            rest = &rest[end..];
        }
    }
    out
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let at = tag.find(&needle)? + needle.len();
    let end = tag[at..].find('"')?;
    Some(unescape(&tag[at..at + end]))
}

/// The POST forms of a page, with their fields (inputs and buttons that
/// carry a name and value; a text input's value as given).
fn forms(html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    for part in html.split("<form").skip(1) {
        let body = part.split("</form>").next().unwrap_or(part);
        let open = &body[..body.find('>').unwrap_or(body.len())];
        let is_post = attribute(open, "method").is_some_and(|m| m.eq_ignore_ascii_case("post"));
        let Some(action) = attribute(open, "action").filter(|_| is_post) else {
            continue;
        };
        let mut fields = Vec::new();
        for input in body.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            let kind = attribute(tag, "type").unwrap_or_default();
            if (kind == "checkbox" || kind == "radio") && !tag.contains(" checked") {
                continue;
            }
            if let Some(name) = attribute(tag, "name") {
                fields.push((name, attribute(tag, "value").unwrap_or_default()));
            }
        }
        // A select sends its selected option, else its first.
        for select in body.split("<select").skip(1) {
            let tag = &select[..select.find('>').unwrap_or(select.len())];
            let Some(name) = attribute(tag, "name") else {
                continue;
            };
            let options = select.split("</select>").next().unwrap_or(select);
            let mut chosen = None;
            for option in options.split("<option").skip(1) {
                let tag = &option[..option.find('>').unwrap_or(option.len())];
                let value = attribute(tag, "value").unwrap_or_default();
                if chosen.is_none() || tag.contains(" selected") {
                    chosen = Some(value);
                }
                if tag.contains(" selected") {
                    break;
                }
            }
            fields.push((name, chosen.unwrap_or_default()));
        }
        out.push(Form { action, fields });
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x2F;", "/")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// `fields` as `application/x-www-form-urlencoded`.
fn encode(fields: &[(String, String)]) -> String {
    let enc = |v: &str| -> String {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_links_are_read_from_the_page() {
        let html = r#"<a href="/portale/1/avviso?x=1&amp;y=2">Cerca</a>
<form method="get" action="/cerca"><input name="q"></form>
<form method="post" action="/portale/1/carrello"><input type="hidden" name="csrf" value="abc">
<input type="checkbox" name="no"><input type="checkbox" name="yes" value="1" checked>
<input type="text" name="numero" value=""><select name="ente"><option value="1">Uno</option>
<option value="2" selected>Due</option></select><button>Aggiungi</button></form>"#;
        assert_eq!(
            link_to(html, &["avviso"]).as_deref(),
            Some("/portale/1/avviso?x=1&y=2")
        );
        let f = forms(html);
        assert_eq!(f.len(), 1, "the GET form is not posted");
        assert_eq!(f[0].action, "/portale/1/carrello");
        assert_eq!(
            f[0].fields,
            vec![
                ("csrf".to_string(), "abc".to_string()),
                ("yes".to_string(), "1".to_string()),
                ("numero".to_string(), String::new()),
                ("ente".to_string(), "2".to_string()),
            ]
        );
        assert_eq!(f[0].value("ente"), Some("2"));
        assert_eq!(encode(&[("a b".into(), "é/1".into())]), "a%20b=%C3%A9%2F1");
    }
}
