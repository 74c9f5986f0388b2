//! Outbound calls to the pagoPA Node, one trait for every intermediary and
//! station (*pluri-intermediazione*).
//!
//! Like hyperswitch's connectors: [`NodeConnector`] has a couple of required
//! methods and defaults for the rest that answer [`ConnectorError::Unsupported`],
//! so a new intermediary is one file that implements what it offers.
//! [`PagoPaConnector`] is the standard one: pagoPA's REST APIs (Checkout
//! carts, FdR 3) and the SOAP `nodeForPa` interface, reached with the
//! station's own credentials, timeouts and retries.

use crate::xml::{self, Limits, Writer};
use incasso_core::Cents;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("operazione non supportata dal connettore {0}")]
    Unsupported(&'static str),
    #[error("configurazione del connettore non valida: {0}")]
    Config(String),
    #[error("il nodo non risponde: {0}")]
    Unreachable(String),
    /// The TLS handshake failed: the Node's certificate is not trusted, or
    /// the Node refused the station's client certificate (or its absence).
    /// Only a change of configuration or certificates mends it.
    #[error("connessione TLS con il nodo non riuscita (certificati): {0}")]
    Tls(String),
    #[error("il nodo ha risposto {status}: {body}")]
    Rejected { status: u16, body: String },
    #[error("risposta del nodo non valida: {0}")]
    BadResponse(String),
}

impl ConnectorError {
    /// Worth trying again later (the Node was down or overloaded), as
    /// opposed to a request the Node will always refuse.
    pub fn is_transient(&self) -> bool {
        match self {
            ConnectorError::Unreachable(_) => true,
            ConnectorError::Rejected { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// How a station authenticates to the Node. Its `Debug` never shows a
/// secret, so neither can a log line.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    #[default]
    None,
    /// pagoPA's API gateway key, in `Ocp-Apim-Subscription-Key`.
    SubscriptionKey {
        key: String,
    },
    Basic {
        username: String,
        password: String,
    },
    /// Mutual TLS: the station's certificate and key, PEM.
    ClientCertificate {
        certificate_pem: String,
        key_pem: String,
    },
}

/// The Node's two interfaces for reporting flows. SOAP is being retired;
/// FdR 3 is REST under `rest_url` (`fdr_organization.json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportingInterface {
    /// `nodoChiediElencoFlussiRendicontazione` and
    /// `nodoChiediFlussoRendicontazione` on `soap_url`.
    #[default]
    Soap,
    /// FdR 3's organization service on `rest_url`.
    Fdr3,
}

/// Where and how one station reaches the Node. Stored per station, its
/// secrets sealed at rest (`incasso_store::secrets`); `Debug` shows them
/// redacted. A name it does not have is refused rather than dropped: a
/// misspelled (or camelCase) key would otherwise store its default.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Which connector implementation: `pagopa` (the standard one).
    pub connector: String,
    /// Base URL of pagoPA's REST APIs (Checkout, FdR 3).
    pub rest_url: Option<String>,
    /// URL of the SOAP `nodeForPa` endpoint.
    pub soap_url: Option<String>,
    pub auth: Auth,
    /// The station's password for SOAP primitives that carry one.
    pub station_password: Option<String>,
    /// Which of the Node's interfaces gives the reporting flows.
    pub reporting: ReportingInterface,
    /// Items per page asked of FdR 3 (1 to 1000, its maximum).
    pub fdr3_page_size: u32,
    pub timeout_ms: u64,
    /// Attempts after the first, for transient failures only.
    pub retries: u32,
    pub backoff_ms: u64,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => write!(f, "None"),
            Auth::SubscriptionKey { .. } => write!(f, "SubscriptionKey {{ key: *** }}"),
            Auth::Basic { username, .. } => {
                write!(f, "Basic {{ username: {username:?}, password: *** }}")
            }
            Auth::ClientCertificate { .. } => {
                write!(
                    f,
                    "ClientCertificate {{ certificate_pem: .., key_pem: *** }}"
                )
            }
        }
    }
}

impl std::fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("connector", &self.connector)
            .field("rest_url", &self.rest_url)
            .field("soap_url", &self.soap_url)
            .field("auth", &self.auth)
            .field(
                "station_password",
                &self.station_password.as_ref().map(|_| "***"),
            )
            .field("reporting", &self.reporting)
            .field("fdr3_page_size", &self.fdr3_page_size)
            .field("timeout_ms", &self.timeout_ms)
            .field("retries", &self.retries)
            .field("backoff_ms", &self.backoff_ms)
            .finish()
    }
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            connector: "pagopa".into(),
            rest_url: None,
            soap_url: None,
            auth: Auth::None,
            station_password: None,
            reporting: ReportingInterface::default(),
            fdr3_page_size: 1000,
            timeout_ms: 10_000,
            retries: 3,
            backoff_ms: 200,
        }
    }
}

impl ConnectionSettings {
    /// A copy safe to show or log: secrets replaced by `***`.
    pub fn redacted(&self) -> ConnectionSettings {
        let mut c = self.clone();
        c.station_password = c.station_password.map(|_| REDACTED.into());
        c.auth = match c.auth {
            Auth::None => Auth::None,
            Auth::SubscriptionKey { .. } => Auth::SubscriptionKey {
                key: REDACTED.into(),
            },
            Auth::Basic { username, .. } => Auth::Basic {
                username,
                password: REDACTED.into(),
            },
            Auth::ClientCertificate {
                certificate_pem, ..
            } => Auth::ClientCertificate {
                certificate_pem,
                key_pem: REDACTED.into(),
            },
        };
        c
    }
}

/// What [`redacted`](ConnectionSettings::redacted) writes for a secret.
pub const REDACTED: &str = "***";

impl ConnectionSettings {
    /// A client that read the settings, changed something and wrote them
    /// back sends the secrets as [`REDACTED`]: those are kept from
    /// `stored` (same kind of authentication), never stored as `***`.
    /// Answers the name of a redacted secret that has nothing to keep.
    pub fn keep_redacted_secrets(
        &mut self,
        stored: Option<&ConnectionSettings>,
    ) -> Result<(), &'static str> {
        if self.station_password.as_deref() == Some(REDACTED) {
            let kept = stored.and_then(|s| s.station_password.clone());
            self.station_password = Some(kept.ok_or("station_password")?);
        }
        let stored_auth = stored.map(|s| &s.auth);
        match (&mut self.auth, stored_auth) {
            (Auth::SubscriptionKey { key }, kept) if key == REDACTED => match kept {
                Some(Auth::SubscriptionKey { key: old }) => *key = old.clone(),
                _ => return Err("auth.key"),
            },
            (Auth::Basic { password, .. }, kept) if password == REDACTED => match kept {
                Some(Auth::Basic { password: old, .. }) => *password = old.clone(),
                _ => return Err("auth.password"),
            },
            (Auth::ClientCertificate { key_pem, .. }, kept) if key_pem == REDACTED => match kept {
                Some(Auth::ClientCertificate { key_pem: old, .. }) => *key_pem = old.clone(),
                _ => return Err("auth.key_pem"),
            },
            _ => {}
        }
        Ok(())
    }
}

/// The station a call is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationIdentity {
    pub broker_id: String,
    pub station_id: String,
}

/// A Checkout cart: what the citizen is about to pay (pagoPA's
/// `POST /checkout/ec/v1/carts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    pub payment_notices: Vec<CartNotice>,
    pub return_urls: ReturnUrls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_notice: Option<String>,
    /// The Ente's own id of the cart; pagoPA gives it back as the
    /// `paymentNote` of `paGetPayment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_cart: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartNotice {
    pub notice_number: String,
    pub fiscal_code: String,
    pub amount: i64,
    pub company_name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReturnUrls {
    pub return_ok_url: String,
    pub return_cancel_url: String,
    pub return_error_url: String,
}

/// One entry of the Node's list of reporting flows for an Ente.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRef {
    pub flow_id: String,
    /// SOAP's `dataOraFlusso`; FdR 3 lists the publication instant.
    pub flow_date_time: String,
    /// FdR 3's revision and sending PSP, which fetching it needs.
    pub revision: Option<u64>,
    pub psp_id: Option<String>,
}

/// A reporting flow as the Node gave it, for `incasso_recon` to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchedFlow {
    /// A `FlussoRiversamento` document (SOAP).
    Xml(Vec<u8>),
    /// FdR 3: the flow's header and every page of its payments (JSON).
    Fdr3 {
        header: Vec<u8>,
        payment_pages: Vec<Vec<u8>>,
    },
}

pub trait NodeConnector: Send + Sync {
    /// The connector's name, as configured (`pagopa`).
    fn id(&self) -> &'static str;

    /// Opens a Checkout cart; returns the URL to send the citizen to.
    fn create_cart<'a>(&'a self, _cart: &'a Cart) -> BoxFuture<'a, Result<String, ConnectorError>> {
        Box::pin(async { Err(ConnectorError::Unsupported("create_cart")) })
    }

    /// The reporting flows the Node holds for an Ente.
    fn list_reporting_flows<'a>(
        &'a self,
        _ente: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FlowRef>, ConnectorError>> {
        Box::pin(async { Err(ConnectorError::Unsupported("list_reporting_flows")) })
    }

    /// One reporting flow of the list.
    fn fetch_reporting_flow<'a>(
        &'a self,
        _ente: &'a str,
        _flow: &'a FlowRef,
    ) -> BoxFuture<'a, Result<FetchedFlow, ConnectorError>> {
        Box::pin(async { Err(ConnectorError::Unsupported("fetch_reporting_flow")) })
    }
}

/// Builds the connector a station's settings name.
pub fn build(
    settings: &ConnectionSettings,
    station: StationIdentity,
) -> Result<Box<dyn NodeConnector>, ConnectorError> {
    // A URL that could never be called fails now, not at the first
    // payment or flow fetch.
    for (name, url) in [
        ("rest_url", &settings.rest_url),
        ("soap_url", &settings.soap_url),
    ] {
        if let Some(url) = url
            && !reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        {
            return Err(ConnectorError::Config(format!(
                "{name} '{url}' non è un URL http o https"
            )));
        }
    }
    match settings.connector.as_str() {
        "pagopa" => Ok(Box::new(PagoPaConnector::new(settings.clone(), station)?)),
        other => Err(ConnectorError::Config(format!(
            "connettore sconosciuto '{other}'"
        ))),
    }
}

/// The transport under a connector: one HTTP client per station (its TLS
/// identity lives in the client), its credentials on every request,
/// timeouts, and retries with exponential backoff for transient failures.
pub struct Transport {
    client: reqwest::Client,
    settings: ConnectionSettings,
}

/// The HTTP client of a connection's settings, made once per process and
/// shared: building one reads the system's root certificates (a few
/// milliseconds: it was most of a portal checkout's time), and a shared
/// client keeps its connections to pagoPA open between calls. Clients
/// differ only by what is built into them: timeouts and the TLS identity.
fn shared_client(settings: &ConnectionSettings) -> Result<reqwest::Client, ConnectorError> {
    type Key = (u64, Option<(String, String)>);
    static CLIENTS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<Key, reqwest::Client>>,
    > = std::sync::OnceLock::new();
    let identity = match &settings.auth {
        Auth::ClientCertificate {
            certificate_pem,
            key_pem,
        } => Some((certificate_pem.clone(), key_pem.clone())),
        _ => None,
    };
    let key = (settings.timeout_ms, identity);
    let clients = CLIENTS.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked mid-insert.
    let lock = || {
        clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(client) = lock().get(&key) {
        return Ok(client.clone());
    }
    let client = Transport::build_client(settings)?;
    let mut map = lock();
    // Settings are few (one per station); a process that somehow sees
    // many starts over rather than grow.
    if map.len() >= 64 {
        map.clear();
    }
    Ok(map.entry(key).or_insert(client).clone())
}

/// reqwest is built without a default TLS backend (its default pulls in a
/// C toolchain-heavy one); every process that makes HTTP clients calls this
/// once first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Only fails if another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Transport {
    pub fn new(settings: ConnectionSettings) -> Result<Transport, ConnectorError> {
        let client = shared_client(&settings)?;
        Ok(Transport { client, settings })
    }

    fn build_client(settings: &ConnectionSettings) -> Result<reqwest::Client, ConnectorError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            // Checkout answers a cart with a redirect meant for the citizen.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
            .connect_timeout(Duration::from_millis(settings.timeout_ms.clamp(1, 5_000)));
        if let Auth::ClientCertificate {
            certificate_pem,
            key_pem,
        } = &settings.auth
        {
            let pem = format!("{certificate_pem}\n{key_pem}");
            let identity = reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| {
                ConnectorError::Config(format!("certificato client non valido: {e}"))
            })?;
            builder = builder.identity(identity);
        }
        builder
            .build()
            .map_err(|e| ConnectorError::Config(format!("client HTTP: {e}")))
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.settings.auth {
            Auth::SubscriptionKey { key } => req.header("Ocp-Apim-Subscription-Key", key),
            Auth::Basic { username, password } => req.basic_auth(username, Some(password)),
            Auth::None | Auth::ClientCertificate { .. } => req,
        }
    }

    /// Sends a request built by `make` (called again for each attempt) and
    /// returns the body of a 2xx answer.
    pub async fn send(
        &self,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, String, Option<String>), ConnectorError> {
        let mut attempt = 0u32;
        loop {
            let result = self.authorize(make(&self.client)).send().await;
            let outcome = match result {
                Err(e) => Err(transport_error(&e)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let location = resp
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let body = resp.text().await.unwrap_or_default();
                    if (200..400).contains(&status) {
                        Ok((status, body, location))
                    } else {
                        Err(ConnectorError::Rejected {
                            status,
                            body: body.chars().take(500).collect(),
                        })
                    }
                }
            };
            match outcome {
                Err(e) if e.is_transient() && attempt < self.settings.retries => {
                    let wait = self
                        .settings
                        .backoff_ms
                        .saturating_mul(1 << attempt.min(10));
                    tracing::warn!(attempt, error = %e, wait_ms = wait, "node call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// A request that got no answer. A failed TLS handshake (the Node's
/// certificate not trusted, the station's certificate refused or missing)
/// is told apart from a Node that does not answer: trying again cannot
/// mend it, and whoever configures the station must know it is theirs to
/// fix. reqwest's own text names only the URL, so the causes are kept.
fn transport_error(e: &reqwest::Error) -> ConnectorError {
    if let Some(tls) = tls_cause(e) {
        return ConnectorError::Tls(tls.to_string());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    ConnectorError::Unreachable(text)
}

/// The rustls error somewhere in a chain of causes.
fn tls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An io::Error's source() skips the error it wraps, which is where
        // the TLS stream puts rustls's.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(tls) = tls_cause(inner)
        {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

/// pagoPA's own Node, through one station.
pub struct PagoPaConnector {
    transport: Transport,
    station: StationIdentity,
}

impl PagoPaConnector {
    pub fn new(
        settings: ConnectionSettings,
        station: StationIdentity,
    ) -> Result<Self, ConnectorError> {
        Ok(PagoPaConnector {
            transport: Transport::new(settings)?,
            station,
        })
    }

    fn rest_url(&self, path: &str) -> Result<String, ConnectorError> {
        let base = self
            .transport
            .settings
            .rest_url
            .as_deref()
            .ok_or_else(|| ConnectorError::Config("rest_url mancante".into()))?;
        Ok(format!("{}{path}", base.trim_end_matches('/')))
    }
}

impl NodeConnector for PagoPaConnector {
    fn id(&self) -> &'static str {
        "pagopa"
    }

    fn create_cart<'a>(&'a self, cart: &'a Cart) -> BoxFuture<'a, Result<String, ConnectorError>> {
        Box::pin(async move {
            let url = self.rest_url("/checkout/ec/v1/carts")?;
            // Checkout answers 302 with the payment page in Location; the
            // client must not follow it, the citizen's browser will.
            let (_, _, location) = self.transport.send(|c| c.post(&url).json(cart)).await?;
            location.ok_or_else(|| ConnectorError::BadResponse("carrello senza Location".into()))
        })
    }

    fn list_reporting_flows<'a>(
        &'a self,
        ente: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FlowRef>, ConnectorError>> {
        Box::pin(async move {
            if self.transport.settings.reporting == ReportingInterface::Fdr3 {
                return self.fdr3_list(ente).await;
            }
            let root = self
                .node_for_pa(
                    "nodoChiediElencoFlussiRendicontazione",
                    &[("identificativoDominio", ente)],
                    Limits {
                        max_bytes: 16 << 20,
                        max_depth: 24,
                        max_elements: 500_000,
                    },
                )
                .await?;
            let mut flows = Vec::new();
            collect_flows(&root, &mut flows);
            Ok(flows)
        })
    }

    fn fetch_reporting_flow<'a>(
        &'a self,
        ente: &'a str,
        flow: &'a FlowRef,
    ) -> BoxFuture<'a, Result<FetchedFlow, ConnectorError>> {
        Box::pin(async move {
            use base64::Engine as _;
            if self.transport.settings.reporting == ReportingInterface::Fdr3 {
                return self.fdr3_fetch(ente, flow).await;
            }
            let flow_id = flow.flow_id.as_str();
            // A flow travels base64-encoded inside the SOAP answer.
            let root = self
                .node_for_pa(
                    "nodoChiediFlussoRendicontazione",
                    &[
                        ("identificativoDominio", ente),
                        ("identificativoFlusso", flow_id),
                    ],
                    Limits {
                        max_bytes: 96 << 20,
                        max_depth: 24,
                        max_elements: 1_000,
                    },
                )
                .await?;
            let encoded = find(&root, "xmlRendicontazione")
                .ok_or_else(|| ConnectorError::BadResponse("xmlRendicontazione mancante".into()))?;
            let compact: String = encoded.text.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(FetchedFlow::Xml)
                .map_err(|e| ConnectorError::BadResponse(format!("base64: {e}")))
        })
    }
}

/// Past this many pages an answer is not believed: a million flows or
/// payments.
const FDR3_MAX_PAGES: u32 = 1000;

impl PagoPaConnector {
    /// GETs an FdR 3 path under the organization service.
    async fn fdr3_get(&self, path: &str) -> Result<Vec<u8>, ConnectorError> {
        let url = self.rest_url(&format!("/fdr-org/service/v1{path}"))?;
        let (_, body, _) = self
            .transport
            .send(|c| c.get(&url).header("Accept", "application/json"))
            .await?;
        Ok(body.into_bytes())
    }

    fn fdr3_page_size(&self) -> u32 {
        self.transport.settings.fdr3_page_size.clamp(1, 1000)
    }

    /// Every page of `GET /organizations/{ente}/fdrs`.
    async fn fdr3_list(&self, ente: &str) -> Result<Vec<FlowRef>, ConnectorError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let body = self
                .fdr3_get(&format!(
                    "/organizations/{}/fdrs?page={page}&size={}",
                    path_segment(ente),
                    self.fdr3_page_size()
                ))
                .await?;
            let list: Fdr3List = serde_json::from_slice(&body)
                .map_err(|e| ConnectorError::BadResponse(format!("elenco FdR 3: {e}")))?;
            out.extend(list.data.into_iter().map(|f| FlowRef {
                flow_id: f.fdr,
                flow_date_time: f.published,
                revision: Some(f.revision),
                psp_id: f.psp_id,
            }));
            let pages = list.metadata.map(|m| m.tot_page).unwrap_or(1);
            if page >= pages || page >= FDR3_MAX_PAGES {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// A flow's header, then every page of its payments.
    async fn fdr3_fetch(&self, ente: &str, flow: &FlowRef) -> Result<FetchedFlow, ConnectorError> {
        let revision = flow
            .revision
            .ok_or_else(|| ConnectorError::BadResponse("flusso FdR 3 senza revisione".into()))?;
        // The list does not name the PSP; the flow id does.
        let psp = match &flow.psp_id {
            Some(p) => p.clone(),
            None => psp_of_flow_id(&flow.flow_id).ok_or_else(|| {
                ConnectorError::BadResponse(format!(
                    "dall'identificativo {} non si ricava il PSP",
                    flow.flow_id
                ))
            })?,
        };
        let base = format!(
            "/organizations/{}/fdrs/{}/revisions/{revision}/psps/{}",
            path_segment(ente),
            path_segment(&flow.flow_id),
            path_segment(&psp)
        );
        let header = self.fdr3_get(&base).await?;
        let mut payment_pages = Vec::new();
        let mut page = 1;
        loop {
            let body = self
                .fdr3_get(&format!(
                    "{base}/payments?page={page}&size={}",
                    self.fdr3_page_size()
                ))
                .await?;
            let pages = serde_json::from_slice::<Fdr3Paged>(&body)
                .map_err(|e| ConnectorError::BadResponse(format!("pagamenti FdR 3: {e}")))?
                .metadata
                .map(|m| m.tot_page)
                .unwrap_or(1);
            payment_pages.push(body);
            if page >= pages || page >= FDR3_MAX_PAGES {
                return Ok(FetchedFlow::Fdr3 {
                    header,
                    payment_pages,
                });
            }
            page += 1;
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fdr3Metadata {
    tot_page: u32,
}

#[derive(Deserialize)]
struct Fdr3Paged {
    metadata: Option<Fdr3Metadata>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fdr3List {
    metadata: Option<Fdr3Metadata>,
    #[serde(default)]
    data: Vec<Fdr3Listed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fdr3Listed {
    fdr: String,
    revision: u64,
    #[serde(default)]
    published: String,
    psp_id: Option<String>,
}

/// The PSP of a flow id `<yyyy-mm-dd><PSP id>-<progressive>`.
fn psp_of_flow_id(flow_id: &str) -> Option<String> {
    let rest = flow_id.get(10..)?;
    let psp = &rest[..rest.rfind('-')?];
    (!psp.is_empty()).then(|| psp.to_string())
}

/// A value as one URL path segment: flow ids are `[A-Za-z0-9-_]`, but
/// nothing from the Node is put in a URL unescaped.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl PagoPaConnector {
    /// One `nodeForPa` SOAP call: the station's credentials, then
    /// `fields`; the answer parsed under `limits`, a fault turned into an
    /// error.
    async fn node_for_pa(
        &self,
        primitive: &str,
        fields: &[(&str, &str)],
        limits: Limits,
    ) -> Result<xml::Element, ConnectorError> {
        let url = self
            .transport
            .settings
            .soap_url
            .clone()
            .ok_or_else(|| ConnectorError::Config("soap_url mancante".into()))?;
        let mut w = Writer::new();
        w.raw(r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ws="http://ws.pagamenti.telematici.gov/"><soapenv:Body>"#)
            .raw(&format!("<ws:{primitive}>"))
            .leaf("identificativoIntermediarioPA", &self.station.broker_id)
            .leaf(
                "identificativoStazioneIntermediarioPA",
                &self.station.station_id,
            )
            .leaf(
                "password",
                self.transport
                    .settings
                    .station_password
                    .as_deref()
                    .unwrap_or("--------"),
            );
        for (name, value) in fields {
            w.leaf(name, value);
        }
        w.raw(&format!(
            "</ws:{primitive}></soapenv:Body></soapenv:Envelope>"
        ));
        let body = w.out;
        let (_, text, _) = self
            .transport
            .send(|c| {
                c.post(&url)
                    .header("Content-Type", "text/xml; charset=utf-8")
                    .header("SOAPAction", primitive)
                    .body(body.clone())
            })
            .await?;
        let root = xml::parse(text.as_bytes(), limits)
            .map_err(|e| ConnectorError::BadResponse(e.to_string()))?;
        if let Some(fault) = find(&root, "fault") {
            return Err(ConnectorError::Rejected {
                status: 200,
                body: fault.text_of("faultCode").unwrap_or("?").to_string(),
            });
        }
        Ok(root)
    }
}

fn find<'a>(el: &'a xml::Element, name: &str) -> Option<&'a xml::Element> {
    if el.name == name {
        return Some(el);
    }
    el.children.iter().find_map(|c| find(c, name))
}

fn collect_flows(el: &xml::Element, out: &mut Vec<FlowRef>) {
    if el.name == "idRendicontazione" {
        if let (Some(id), Some(dt)) = (
            el.text_of("identificativoFlusso"),
            el.text_of("dataOraFlusso"),
        ) {
            out.push(FlowRef {
                flow_id: id.to_string(),
                flow_date_time: dt.to_string(),
                revision: None,
                psp_id: None,
            });
        }
        return;
    }
    for c in &el.children {
        collect_flows(c, out);
    }
}

/// The amount of a cart, for logs and checks.
pub fn cart_total(cart: &Cart) -> Cents {
    Cents(cart.payment_notices.iter().map(|n| n.amount).sum())
}

#[cfg(test)]
mod fdr3_tests {
    use super::*;

    #[test]
    fn the_psp_is_read_from_the_flow_id() {
        let psp = |id: &str| psp_of_flow_id(id);
        assert_eq!(
            psp("2025-01-0188888888888-0000001").as_deref(),
            Some("88888888888")
        );
        assert_eq!(
            psp("2025-01-01ABI03069-S01-0001").as_deref(),
            Some("ABI03069-S01")
        );
        assert_eq!(psp("2025-01-01-0001"), None);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("2025-01-01PSP_1-0001"), "2025-01-01PSP_1-0001");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Secrets never reach a log line through `Debug` (issue 14).
    #[test]
    fn debug_redacts_every_secret() {
        for auth in [
            Auth::SubscriptionKey {
                key: "S3GRETO".into(),
            },
            Auth::Basic {
                username: "u".into(),
                password: "S3GRETO".into(),
            },
            Auth::ClientCertificate {
                certificate_pem: "CERT".into(),
                key_pem: "S3GRETO".into(),
            },
        ] {
            let settings = ConnectionSettings {
                auth,
                station_password: Some("S3GRETO".into()),
                ..ConnectionSettings::default()
            };
            let shown = format!("{settings:?} {settings:#?}");
            assert!(!shown.contains("S3GRETO"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }
}
