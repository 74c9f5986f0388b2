//! What the fault tests (`faults_kill`, `faults_postgres`, `faults_disk`,
//! `faults_supply`) share: a database seeded with the GPD tests' Ente and
//! a TARI service, and a client of one `incasso serve` that creates
//! positions through the GPD API and plays the Node's part of a payment
//! (verify, getPayment, the receipt) through `paForNode`, telling a lost
//! answer (the process gone, a timeout) from an answer; and what a test
//! needs around its processes: SIGKILL, their CPU time, a folder and a
//! database removed at the end, the database read directly.

use crate::common::gpd::{self, ENTE};
use crate::common::process::{Running, temp_dir};
use incasso_core::Cents;
use incasso_pagopa::wire::{self, QrCode};
use incasso_store::Store;
use incasso_testkit::{Backend, fresh_database_url};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// The GPD tests' Enti on the database at `url` (migrated here), with a
/// TARI service for supplies; the store and [`ENTE`]'s key.
pub async fn seed(url: &str) -> (Store, String) {
    let (store, keys) = gpd::enti_at(url, &[ENTE]).await;
    store
        .put_service(
            ENTE,
            &incasso_core::catalogue::Service {
                code: "TARI".into(),
                name: "TARI".into(),
                office_code: None,
                taxonomy_code: gpd::CATEGORY.into(),
                default_accertamento: None,
                iban: None,
                fixed_amount: None,
                spontaneous: false,
                pagopa_service_id: None,
                active: true,
            },
        )
        .await
        .unwrap();
    (store, keys[0].clone())
}

/// An HTTP answer, whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

/// A client of one incasso, as [`ENTE`]'s application and as the Node.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(port: u16, key: &str) -> Client {
        incasso_pagopa::connector::install_crypto_provider();
        Client {
            base: format!("http://127.0.0.1:{port}"),
            key: key.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// The same client talking to incasso on another port (a restart).
    pub fn at(&self, port: u16) -> Client {
        Client {
            base: format!("http://127.0.0.1:{port}"),
            ..self.clone()
        }
    }

    async fn answer(request: reqwest::RequestBuilder) -> Result<Answer, String> {
        let r = request.send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let text = r.text().await.map_err(|e| e.to_string())?;
        Ok(Answer {
            status,
            retry_after,
            text,
        })
    }

    /// `POST /gpd/v1/.../debtpositions?toPublish=true` of one notice of
    /// 100.00 euro whose IUV the Ente's coordinator gives; `Err` when no
    /// answer came.
    pub async fn create(&self, iupd: &str) -> Result<Answer, String> {
        let mut body = gpd::position(iupd, &[String::new()]);
        body["paymentOption"][0]
            .as_object_mut()
            .unwrap()
            .remove("iuv");
        Self::answer(
            self.http
                .post(format!(
                    "{}/gpd/v1/organizations/{ENTE}/debtpositions?toPublish=true",
                    self.base
                ))
                .header("Ocp-Apim-Subscription-Key", &self.key)
                .json(&body),
        )
        .await
    }

    pub async fn get_position(&self, iupd: &str) -> Result<Answer, String> {
        Self::answer(
            self.http
                .get(format!(
                    "{}/gpd/v1/organizations/{ENTE}/debtpositions/{iupd}",
                    self.base
                ))
                .header("Ocp-Apim-Subscription-Key", &self.key),
        )
        .await
    }

    /// A GET or POST of the incasso API under `/api/v1/enti/{ENTE}`.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Answer, String> {
        let mut r = self
            .http
            .request(method, format!("{}/api/v1/enti/{ENTE}{path}", self.base))
            .header("Ocp-Apim-Subscription-Key", &self.key);
        if let Some((content_type, bytes)) = body {
            r = r.header("Content-Type", content_type).body(bytes);
        }
        Self::answer(r).await
    }

    /// A `paForNode` call; `Err` when no SOAP answer came (the process
    /// gone, a timeout, not HTTP 200).
    pub async fn soap(&self, body: &str) -> Result<wire::node::Response, String> {
        let a = Self::answer(
            self.http
                .post(format!("{}/pagopa/paForNode", self.base))
                .header("Content-Type", "text/xml; charset=utf-8")
                .body(body.to_string()),
        )
        .await?;
        if a.status != 200 {
            return Err(format!("HTTP {}: {}", a.status, a.text));
        }
        wire::node::parse_response(a.text.as_bytes())
    }

    pub async fn verify(&self, nav: &str) -> Result<wire::node::Response, String> {
        self.soap(&wire::node::verify_request(&gpd::node_header(), &qr(nav)))
            .await
    }

    /// paGetPaymentV2: the Node about to take the payment.
    pub async fn get_payment(&self, nav: &str) -> Result<wire::node::Response, String> {
        self.soap(&wire::node::get_payment_request(
            &gpd::node_header(),
            &qr(nav),
            Cents(10_000),
            true,
        ))
        .await
    }

    /// paSendRTV2 of receipt `receipt_id` paying notice `nav`.
    pub async fn send_receipt(
        &self,
        receipt_id: &str,
        nav: &str,
    ) -> Result<wire::node::Response, String> {
        self.soap(&wire::node::send_rt_request(
            &gpd::node_header(),
            &gpd::receipt(receipt_id, nav, "OK"),
            true,
        ))
        .await
    }
}

fn qr(nav: &str) -> QrCode {
    QrCode {
        fiscal_code: ENTE.into(),
        notice_number: nav.into(),
    }
}

/// The notice number and IUV of the position a 201 or a GET answered.
pub fn nav_and_iuv(position: &Value) -> (String, String) {
    let option = &position["paymentOption"][0];
    (
        option["nav"].as_str().unwrap().to_string(),
        option["iuv"].as_str().unwrap().to_string(),
    )
}

/// Counts of one SQL query per Ente, run on the database itself: what no
/// API says (half-written states).
pub async fn count(url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(ENTE)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    n
}

/// A column of strings of one SQL query per Ente (`$1`), run on the
/// database itself, in the order the query gives.
pub async fn strings(url: &str, sql: &str) -> Vec<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let v: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(ENTE)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    v
}

/// The runtime of a fault test: two workers, as the machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// SIGKILL, and the process reaped.
pub fn kill_9(server: &mut Running) {
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The CPU time a running process has used so far, all its threads
/// (`/proc/<pid>/stat`: user and system time, in the kernel's fixed
/// 100 ticks a second).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's name, which may hold spaces, in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |n: usize| -> u64 {
        rest.split_whitespace()
            .nth(n)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // utime and stime are the 14th and 15th fields; `rest` starts at the 3rd.
    Duration::from_millis((field(11) + field(12)) * 10)
}

/// A fault test's folder and database, removed when it ends however it
/// ends (declare it before the servers: they are dropped, so killed,
/// first). The database is a file in the folder on SQLite (the file a
/// later process opens again), a fresh database on PostgreSQL, dropped.
pub struct Scratch {
    pub dir: PathBuf,
    pub url: String,
    backend: Backend,
}

impl Scratch {
    pub async fn new(backend: Backend, name: &str) -> Scratch {
        let dir = temp_dir(name);
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.join("incasso.db").display()),
            Backend::Postgres => fresh_database_url(backend).await,
        };
        Scratch { dir, url, backend }
    }

    /// A data folder of its own for one process, inside the test's.
    pub fn data_dir(&self, process: &str) -> PathBuf {
        let dir = self.dir.join(process);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.backend != Backend::Postgres {
            return;
        }
        let (Ok(admin), Some(name)) = (
            std::env::var("INCASSO_TEST_PG_URL"),
            self.url
                .rsplit('/')
                .next()
                .and_then(|n| n.split('?').next())
                .map(str::to_string),
        ) else {
            return;
        };
        // Dropping may run inside the test's runtime: a thread of its own.
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}
