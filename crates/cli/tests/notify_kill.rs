//! Notifications across `kill -9` and across processes (issue 19).
//!
//! - On each database, `serve --demo` runs as a process told to use App
//!   IO and SMTP of a simulator run by this test (so that both outlive
//!   incasso); a burst of positions is published through the GPD API with
//!   automatic invitations, some debtors on IO and some not (told by
//!   e-mail), while incasso is killed with SIGKILL at random moments and
//!   started again on the same database. At the end every invitation is in
//!   the simulated IO or in the SMTP server's mailbox, per citizen, none
//!   lost; the messages IO counts twice are at most those in flight at the
//!   kills (the IO rows SENDING when the process died: the documented
//!   window), and e-mails twice at most one per kill (the e-mail worker
//!   holds one SMTP conversation at a time).
//! - On PostgreSQL, two `incasso serve` processes on one database: a burst
//!   published through both, the work shared (each process's log names
//!   the messages it sent), nothing sent twice (IO's duplicate counter is
//!   0) and nothing lost; the reminder job, run by both, writes each
//!   reminder once.

use crate::common::process;

use incasso_simulator::Simulator;
use incasso_simulator::io::{IoCitizen, IoSettings};
use incasso_store::Store;
use incasso_testkit::{Backend, backends};
use process::{Running, free_port, incasso, temp_dir, wait_for_health};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The demo Comune, whose services `serve --demo` has tell their citizens
/// (invitations on publication, reminders three days before).
const ENTE: &str = "80000130585";

/// The two tests each run incasso processes: one at a time, so that the
/// timings of one do not starve the other on a small machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The simulator of this test: App IO and SMTP, outliving incasso.
struct Outside {
    sim: Simulator,
    io_url: String,
    smtp_url: String,
}

async fn outside(citizens: BTreeMap<String, IoCitizen>, rate: u32) -> Outside {
    let sim = Simulator::new(Default::default());
    sim.io().configure(IoSettings {
        citizens,
        rate_per_second: rate,
        ..IoSettings::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let io_url = format!("http://{}/io/api/v1", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener, std::future::pending()));
    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_url = format!("smtp://{}", smtp.local_addr().unwrap());
    tokio::spawn(sim.clone().serve_smtp(smtp));
    Outside {
        sim,
        io_url,
        smtp_url,
    }
}

/// `incasso serve` (with the demo when `demo`) on `db`, told of the
/// outside IO and SMTP; its log goes to `log` when given.
fn start(
    dir: &Path,
    port: u16,
    db: &str,
    out: &Outside,
    demo: bool,
    log: Option<&Path>,
) -> Running {
    let mut cmd = incasso();
    cmd.arg("serve");
    if demo {
        cmd.arg("--demo");
    }
    cmd.args(["--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env("INCASSO_DATABASE_URL", db)
        .env("INCASSO_IO_URL", &out.io_url)
        .env("INCASSO_SMTP_URL", &out.smtp_url)
        .env("RUST_LOG", "warn,incasso_app::notify=debug")
        .stdout(Stdio::null());
    match log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            cmd.stderr(file);
        }
        None => {
            cmd.stderr(Stdio::null());
        }
    }
    let running = Running(cmd.spawn().unwrap());
    assert!(wait_for_health(port), "incasso did not start");
    running
}

/// Debtor `i` of a burst: a fiscal code of its own (far from the demo's
/// debtors), an address, and whether they are on IO.
struct Debtor {
    fiscal_code: String,
    email: String,
    on_io: bool,
}

fn debtor(i: usize, base: u64) -> Debtor {
    Debtor {
        fiscal_code: incasso_core::sample::personal_fiscal_code(base + i as u64),
        email: format!("burst{}@example.org", base + i as u64),
        // Two in three on IO; the rest are not (404), told by e-mail.
        on_io: i % 3 != 2,
    }
}

fn citizens(n: usize, base: u64) -> BTreeMap<String, IoCitizen> {
    (0..n)
        .map(|i| debtor(i, base))
        .filter(|d| d.on_io)
        .map(|d| {
            (
                d.fiscal_code,
                IoCitizen {
                    sender_allowed: true,
                    preferred_languages: vec!["it_IT".into()],
                },
            )
        })
        .collect()
}

/// A TARI position of the demo Comune in GPD's JSON.
fn position(iupd: &str, d: &Debtor, amount: i64, due_in_days: i64) -> Value {
    let due = chrono::Utc::now() + chrono::Duration::days(due_in_days);
    json!({
        "iupd": iupd, "type": "F", "fiscalCode": d.fiscal_code, "fullName": "Contribuente Prova",
        "email": d.email, "switchToExpired": false, "companyName": "Comune di Borgo Esempio",
        "paymentOption": [{
            "amount": amount, "description": format!("TARI 2026 {iupd}"), "isPartialPayment": false,
            "dueDate": due.to_rfc3339(), "paymentOptionMetadata": [],
            "transfer": [{
                "idTransfer": "1", "amount": amount, "remittanceInformation": format!("TARI {iupd}"),
                "category": "9/0101101IM/", "iban": "IT65B0200805364000104567891",
                "transferMetadata": [],
                "accountingQuotas": [{"accertamento": "2026/ACC-TARI", "amount": amount}]
            }]
        }]
    })
}

/// Publishes positions `0..n` through the GPD API at `bases` (in turn),
/// four at a time, each waiting `pace` after its last, each until incasso
/// answers 201, or 409 when an earlier try was stored before incasso
/// died.
async fn publish(
    bases: Vec<String>,
    key: String,
    run: String,
    n: usize,
    base: u64,
    due_in_days: i64,
    pace: Duration,
) -> usize {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, next, bases, key, run) = (
            http.clone(),
            next.clone(),
            bases.clone(),
            key.clone(),
            run.clone(),
        );
        tasks.spawn(async move {
            let mut tries = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return tries;
                }
                tokio::time::sleep(pace).await;
                let body = position(
                    &format!("{run}-{i:04}"),
                    &debtor(i, base),
                    1_000 + i as i64,
                    due_in_days,
                );
                let url = format!(
                    "{}/gpd/v1/organizations/{ENTE}/debtpositions?toPublish=true",
                    bases[i % bases.len()]
                );
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    tries += 1;
                    let answer = http
                        .post(&url)
                        .header("Ocp-Apim-Subscription-Key", &key)
                        .json(&body)
                        .send()
                        .await;
                    match answer.map(|r| r.status().as_u16()) {
                        Ok(201) | Ok(409) => break,
                        Ok(s) if s < 500 => panic!("publishing {i}: HTTP {s}"),
                        _ => {
                            assert!(Instant::now() < deadline, "position {i} never published");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        });
    }
    let mut tries = 0;
    while let Some(t) = tasks.join_next().await {
        tries += t.unwrap();
    }
    tries
}

/// Waits until both outboxes are at rest and every position of the burst
/// has its invitation told (SENT to IO, or SKIPPED with its e-mail sent).
async fn wait_told(store: &Store, run: &str, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut told = 0;
        for i in 0..n {
            let rows = store
                .position_notifications(ENTE, &format!("{run}-{i:04}"))
                .await
                .unwrap();
            let invitation = |channel: &str| {
                rows.iter()
                    .find(|r| r.kind == "INVITATION" && r.channel == channel)
            };
            let done = match invitation("IO") {
                Some(r) if r.status == "SENT" => true,
                Some(r) if r.status == "SKIPPED" => {
                    invitation("EMAIL").is_some_and(|e| e.mail_status.as_deref() == Some("SENT"))
                }
                _ => false,
            };
            told += usize::from(done);
        }
        let progress = store.outbox_progress().await.unwrap();
        if told == n && progress.unsettled() == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{told} of {n} invitations told; outbox {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every debtor of the burst got their invitation on their channel, with
/// the payment data of their notice; answers the e-mails repeated.
async fn check_delivered(store: &Store, sim: &Simulator, run: &str, n: usize, base: u64) -> usize {
    let mail = sim.mail();
    for i in 0..n {
        let d = debtor(i, base);
        let iupd = format!("{run}-{i:04}");
        let stored = store.get_position(ENTE, &iupd).await.unwrap();
        let option = &stored.position.options[0];
        let nav = option.notice_number.as_ref().unwrap().as_str().to_string();
        if d.on_io {
            let got = sim.io().messages(Some(&d.fiscal_code));
            assert!(
                got.iter().any(|m| {
                    m.content["payment_data"]["notice_number"] == nav.as_str()
                        && m.content["payment_data"]["amount"] == option.amount.0
                }),
                "{iupd}: no IO message for notice {nav}: {got:?}"
            );
        } else {
            assert!(
                mail.iter().any(|m| m.to == [d.email.clone()]),
                "{iupd}: no e-mail to {}",
                d.email
            );
            assert!(
                sim.io().messages(Some(&d.fiscal_code)).is_empty(),
                "{iupd}: a citizen not on IO got an IO message"
            );
        }
    }
    // The same message twice: one recipient, subject and text (which
    // names the notice).
    let mut seen: HashMap<(&[String], &str, &str), usize> = HashMap::new();
    for m in &mail {
        *seen
            .entry((m.to.as_slice(), m.subject.as_str(), m.text.as_str()))
            .or_default() += 1;
    }
    seen.values().map(|c| c - 1).sum()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A small random number (no crate for it: the clock's nanoseconds).
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos ^ (nanos >> 7)).wrapping_mul(0x9E37_79B9_7F4A_7C15) % n.max(1)
}

#[test]
fn notifications_survive_kill_9_none_lost_duplicates_only_in_the_window() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for backend in backends() {
        runtime().block_on(kill_burst(backend));
    }
}

/// Positions in the kill test's burst.
const BURST: usize = 240;
/// Times incasso is killed during it.
const KILLS: usize = 4;

async fn kill_burst(backend: Backend) {
    eprintln!("notifications across kill -9 on {backend:?}");
    let base = 700_000;
    // IO at 100 calls a second (a profile check and a send per message):
    // the burst takes seconds to drain, so the kills find messages on
    // their way, and IO's 429s come into play too.
    let out = outside(citizens(BURST, base), 100).await;
    let dir = temp_dir(&format!("notify-kill-{backend:?}"));
    let db = incasso_testkit::fresh_database_url(backend).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start(&dir, port, &db, &out, true, None);
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let key = demo["enti"][0]["api_key"].as_str().unwrap().to_string();
    assert_eq!(demo["enti"][0]["fiscal_code"], ENTE);
    let store = Store::connect(&db).await.unwrap();
    let run = format!("K{}", chrono::Utc::now().timestamp_millis() % 1_000_000);

    let publisher = tokio::spawn(publish(
        vec![url.clone()],
        key,
        run.clone(),
        BURST,
        base,
        30,
        // Spread over a few seconds, so that kills fall while positions
        // are published too.
        Duration::from_millis(50),
    ));
    // Killed at random moments while the burst is published and sent;
    // what was in flight at each kill bounds the repeats.
    let mut io_in_flight = 0;
    let mut mail_in_flight = 0;
    let mut kills = 0;
    // A row still SENDING from an earlier kill (its lease not lapsed) was
    // not in flight at this one: counted by its attempt once.
    let mut claims = std::collections::HashSet::new();
    for k in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + random_below(1_200))).await;
        server.kill().unwrap();
        server.wait().unwrap();
        kills += 1;
        let at_kill = store.outbox_progress().await.unwrap();
        let mut io = 0;
        for ente in [ENTE, "97000000022"] {
            for r in store
                .notifications_with_status(ente, "SENDING", 1000)
                .await
                .unwrap()
            {
                io += i64::from(r.channel == "IO" && claims.insert((r.id, r.attempts)));
            }
        }
        let mail = at_kill.mail_of("SENDING");
        // E-mails: one SMTP conversation at a time, so at most one
        // repeated per kill of a process that had claimed some (their ids
        // negated in `claims`: another table).
        let mut claimed_mail = false;
        for ente in [ENTE, "97000000022"] {
            for m in store.list_mail(ente, 1000).await.unwrap() {
                claimed_mail |= m.status == "SENDING" && claims.insert((-m.id, m.attempts));
            }
        }
        io_in_flight += io;
        mail_in_flight += i64::from(claimed_mail);
        eprintln!(
            "kill {} on {backend:?}: {io} IO messages and {mail} e-mails claimed; outbox {:?}",
            k + 1,
            at_kill.notifications
        );
        server = start(&dir, port, &db, &out, true, None);
    }
    let tries = publisher.await.unwrap();
    eprintln!("{BURST} positions published in {tries} tries");

    // The killed processes' claims lapse (60 s for IO, 120 s for e-mail),
    // then their messages go again.
    wait_told(&store, &run, BURST, Duration::from_secs(300)).await;
    let progress = store.outbox_progress().await.unwrap();
    assert_eq!(progress.of("IO", "FAILED"), 0, "{progress:?}");
    assert_eq!(progress.mail_of("FAILED"), 0, "{progress:?}");
    let mail_repeats = check_delivered(&store, &out.sim, &run, BURST, base).await;
    let stats = out.sim.io().stats();
    eprintln!(
        "notify kill -9 on {backend:?}: {kills} kills; IO took {} messages, {} twice \
         (at most {io_in_flight} in flight at the kills), {} 429s; e-mails repeated \
         {mail_repeats} (at most {mail_in_flight})",
        stats.messages, stats.duplicates, stats.rate_limited
    );
    assert!(
        stats.duplicates <= io_in_flight as u64,
        "{backend:?}: IO counted {} duplicates, more than the {io_in_flight} messages in flight at the kills",
        stats.duplicates
    );
    assert!(
        mail_repeats <= mail_in_flight as usize,
        "{backend:?}: {mail_repeats} e-mails repeated, more than one per kill in an SMTP conversation ({mail_in_flight})"
    );
    drop(server);
    store.close().await;
}

#[test]
fn two_processes_on_one_postgresql_share_the_work_and_send_nothing_twice() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !backends().contains(&Backend::Postgres) {
        eprintln!("two processes: PostgreSQL only (INCASSO_TEST_PG_URL not set)");
        return;
    }
    runtime().block_on(two_processes());
}

async fn two_processes() {
    const N: usize = 300;
    let base = 800_000;
    // IO not the limit: the two processes race for the same rows.
    let out = outside(citizens(N, base), 0).await;
    let dir = temp_dir("notify-two");
    let db = incasso_testkit::fresh_database_url(Backend::Postgres).await;
    let (port_a, port_b) = (free_port(), free_port());
    let (log_a, log_b) = (dir.join("a.log"), dir.join("b.log"));
    // The first seeds the demo (and its services' IO settings); the
    // second shares its database and data directory (the secret key
    // that opens the IO keys).
    let a = start(&dir, port_a, &db, &out, true, Some(&log_a));
    let b = start(&dir, port_b, &db, &out, false, Some(&log_b));
    let started = Instant::now();
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.json")).unwrap()).unwrap();
    let key = demo["enti"][0]["api_key"].as_str().unwrap().to_string();
    let store = Store::connect(&db).await.unwrap();
    let run = format!("T{}", chrono::Utc::now().timestamp_millis() % 1_000_000);
    // Due in three days: the demo's services remind then, so the reminder
    // job of each process finds every one of them.
    publish(
        vec![
            format!("http://127.0.0.1:{port_a}"),
            format!("http://127.0.0.1:{port_b}"),
        ],
        key,
        run.clone(),
        N,
        base,
        3,
        Duration::ZERO,
    )
    .await;
    wait_told(&store, &run, N, Duration::from_secs(120)).await;
    check_delivered(&store, &out.sim, &run, N, base).await;

    // Both reminder jobs run a minute after their start.
    let reminders_due = started + Duration::from_secs(75);
    tokio::time::sleep_until(reminders_due.into()).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut reminded = 0;
        for i in 0..N {
            let rows = store
                .position_notifications(ENTE, &format!("{run}-{i:04}"))
                .await
                .unwrap();
            let io: Vec<_> = rows
                .iter()
                .filter(|r| r.kind == "REMINDER" && r.channel == "IO")
                .collect();
            assert!(io.len() <= 1, "{run}-{i:04}: {} reminders", io.len());
            let done = io.first().is_some_and(|r| match r.status.as_str() {
                "SENT" => true,
                "SKIPPED" => rows.iter().any(|e| {
                    e.kind == "REMINDER"
                        && e.channel == "EMAIL"
                        && e.mail_status.as_deref() == Some("SENT")
                }),
                _ => false,
            });
            reminded += usize::from(done);
        }
        let progress = store.outbox_progress().await.unwrap();
        if reminded == N && progress.unsettled() == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{reminded} of {N} reminders told; {progress:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(a);
    drop(b);

    let stats = out.sim.io().stats();
    let on_io = (0..N).filter(|i| debtor(*i, base).on_io).count() as u64;
    assert_eq!(stats.duplicates, 0, "IO took a message twice: {stats:?}");
    // Each citizen on IO: an invitation and a reminder; no more.
    let mine = (0..N)
        .map(|i| {
            out.sim
                .io()
                .messages(Some(&debtor(i, base).fiscal_code))
                .len() as u64
        })
        .sum::<u64>();
    assert_eq!(mine, 2 * on_io, "{stats:?}");
    let mail = out.sim.mail();
    for i in (0..N).filter(|i| !debtor(*i, base).on_io) {
        let to = [debtor(i, base).email];
        let got = mail.iter().filter(|m| m.to == to).count();
        assert_eq!(got, 2, "{}: an invitation and a reminder by e-mail", to[0]);
    }
    // The work was shared: each process's log names messages it sent.
    let sent_by = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("App IO message sent"))
            .count()
    };
    let (by_a, by_b) = (sent_by(&log_a), sent_by(&log_b));
    eprintln!(
        "two processes: {} IO messages ({on_io} citizens on IO), {by_a} sent by the first, {by_b} by the second; 0 twice",
        stats.messages
    );
    assert!(by_a > 0 && by_b > 0, "one process did all: {by_a} / {by_b}");
    assert!(
        by_a + by_b >= (2 * on_io) as usize,
        "the logs name {by_a} + {by_b} sends"
    );
    store.close().await;
}
