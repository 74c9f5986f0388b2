//! The station connector on the wire: a pagoPA Node stand-in that speaks
//! TLS with certificates made here (a CA, the Node's certificate for
//! 127.0.0.1 and localhost, stations' client certificates) and checks what
//! incasso sends, as the Node's gateway would: the subscription key, HTTP
//! basic credentials, the client certificate. Each check refuses a request
//! that lacks what it demands, so a connector that sends the wrong thing
//! fails here.

use base64::Engine as _;
use incasso_pagopa::connector::{
    self, Auth, Cart, CartNotice, ConnectionSettings, ConnectorError, NodeConnector, ReturnUrls,
    StationIdentity,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where Checkout sends the citizen; the stand-in answers a cart with it.
const CHECKOUT_PAGE: &str = "https://checkout.test/c/0001";

/// A certificate authority made for the tests.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, as DER and as the PEM a station's
/// settings hold.
struct Leaf {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Authority {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn sign(&self, names: &[&str], common_name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The Node's certificate: both names a station may be configured with.
    fn node(&self) -> Leaf {
        self.sign(
            &["127.0.0.1", "localhost"],
            "nodo di prova",
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A station's client certificate.
    fn station(&self, station_id: &str) -> Leaf {
        self.sign(&[], station_id, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// The trusted CA, and one nobody trusts.
struct Pki {
    trusted: Authority,
    rogue: Authority,
}

/// The connector trusts what the machine trusts (reqwest's platform
/// verifier, which on Linux reads `SSL_CERT_FILE` when it is set), as it
/// must for the real Node: the test CA becomes the machine's only one
/// through that variable, set once before any test does anything else.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let pki = Pki {
            trusted: Authority::new("incasso test CA"),
            rogue: Authority::new("rogue CA"),
        };
        let dir =
            std::env::temp_dir().join(format!("incasso-connector-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, pki.trusted.issuer.pem()).unwrap();
        // SAFETY: every test calls pki() first, and OnceLock makes the others
        // wait here, so no thread of this process reads the environment
        // while it is written.
        unsafe { std::env::set_var("SSL_CERT_FILE", &file) };
        pki
    })
}

/// What the Node stand-in demands beyond TLS.
#[derive(Clone, Default)]
struct Demands {
    basic: Option<(String, String)>,
    subscription_key: Option<String>,
}

/// One request as the Node saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    peer_certificate: Option<Vec<u8>>,
}

impl Seen {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Log {
    /// TCP connections that began a handshake.
    connections: usize,
    /// Handshakes the Node refused, with rustls's reason.
    refused: Vec<String>,
    seen: Vec<Seen>,
}

struct Node {
    host_url: String,
    log: Arc<Mutex<Log>>,
}

impl Node {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    fn settings(&self, auth: Auth) -> ConnectionSettings {
        ConnectionSettings {
            rest_url: Some(self.host_url.clone()),
            soap_url: Some(format!("{}/nodo/nodeForPa", self.host_url)),
            auth,
            station_password: Some("pwd-stazione".into()),
            timeout_ms: 5_000,
            // Retries are on, so a failure that is retried shows up as more
            // than one connection.
            retries: 2,
            backoff_ms: 10,
            ..ConnectionSettings::default()
        }
    }
}

/// Starts a Node stand-in on 127.0.0.1 with `leaf` as its certificate.
/// With `client_ca`, a client certificate signed by that CA is required.
async fn start_node(leaf: &Leaf, client_ca: Option<&Authority>, demands: Demands) -> Node {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.issuer.der().clone()).unwrap();
            // Required, not optional: a client without a certificate must
            // not get through.
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(
            vec![leaf.cert_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = log.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_connection(
                acceptor.clone(),
                tcp,
                shared.clone(),
                demands.clone(),
            ));
        }
    });
    Node {
        host_url: format!("https://127.0.0.1:{port}"),
        log,
    }
}

async fn serve_connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    log: Arc<Mutex<Log>>,
    demands: Demands,
) {
    log.lock().unwrap().connections += 1;
    let mut tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(e) => {
            // rustls's own reason, inside the io::Error tokio-rustls gives.
            let reason = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(tls) => format!("{tls:?}"),
                None => e.to_string(),
            };
            log.lock().unwrap().refused.push(reason);
            return;
        }
    };
    let peer_certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.to_vec());
    // The request head, then its body (Content-Length), so the answer
    // goes out after the whole request is read.
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
        assert!(data.len() < 1 << 20, "request head too long");
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let seen = Seen {
        request_line,
        headers,
        peer_certificate,
    };
    let length: usize = seen
        .all("content-length")
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + 4 + length {
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = match check(&demands, &seen) {
        Err(why) => format!(
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{why}",
            why.len()
        ),
        Ok(()) if seen.request_line.starts_with("POST /checkout/ec/v1/carts ") => format!(
            "HTTP/1.1 302 Found\r\nLocation: {CHECKOUT_PAGE}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        Ok(()) if seen.request_line.starts_with("POST /nodo/nodeForPa ") => {
            let body = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ws="http://ws.pagamenti.telematici.gov/"><soapenv:Body><ws:nodoChiediElencoFlussiRendicontazioneRisposta><elencoFlussiRendicontazione><totRestituiti>0</totRestituiti></elencoFlussiRendicontazione></ws:nodoChiediElencoFlussiRendicontazioneRisposta></soapenv:Body></soapenv:Envelope>"#;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        Ok(()) => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    log.lock().unwrap().seen.push(seen);
    let _ = tls.write_all(answer.as_bytes()).await;
    let _ = tls.shutdown().await;
}

/// The gateway's checks: each credential demanded must be there once,
/// exactly as configured.
fn check(demands: &Demands, seen: &Seen) -> Result<(), String> {
    if let Some((user, password)) = &demands.basic {
        let values = seen.all("authorization");
        let [value] = values.as_slice() else {
            return Err(format!("{} Authorization headers", values.len()));
        };
        let encoded = value
            .strip_prefix("Basic ")
            .ok_or_else(|| format!("not basic: {value}"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("base64: {e}"))?;
        if decoded != format!("{user}:{password}").as_bytes() {
            return Err(format!(
                "wrong credentials: {}",
                String::from_utf8_lossy(&decoded)
            ));
        }
    }
    if let Some(key) = &demands.subscription_key {
        let values = seen.all("ocp-apim-subscription-key");
        if values != [key.as_str()] {
            return Err(format!("wrong subscription key: {values:?}"));
        }
    }
    Ok(())
}

fn station() -> StationIdentity {
    StationIdentity {
        broker_id: "15376371009".into(),
        station_id: "15376371009_01".into(),
    }
}

fn cart() -> Cart {
    Cart {
        payment_notices: vec![CartNotice {
            notice_number: "301000000000000017".into(),
            fiscal_code: "80000130585".into(),
            amount: 4_200,
            company_name: "Comune di prova".into(),
            description: "Refezione scolastica".into(),
        }],
        return_urls: ReturnUrls {
            return_ok_url: "https://incasso.test/ok".into(),
            return_cancel_url: "https://incasso.test/cancel".into(),
            return_error_url: "https://incasso.test/error".into(),
        },
        email_notice: None,
        id_cart: None,
    }
}

fn connect(settings: &ConnectionSettings) -> Box<dyn NodeConnector> {
    connector::build(settings, station()).unwrap()
}

/// (a) Basic auth: the Authorization header carries exactly the configured
/// user and password (a colon and non-ASCII letters in the password), on
/// the REST and the SOAP interface, and nothing else authenticates.
#[tokio::test]
async fn basic_auth_sends_exactly_the_configured_user_and_password() {
    let pki = pki();
    let (user, password) = ("stazione-01", "pässwörd:con due punti");
    let node = start_node(
        &pki.trusted.node(),
        None,
        Demands {
            basic: Some((user.into(), password.into())),
            ..Demands::default()
        },
    )
    .await;
    let basic = |password: &str| Auth::Basic {
        username: user.into(),
        password: password.into(),
    };
    let c = connect(&node.settings(basic(password)));
    assert_eq!(c.create_cart(&cart()).await.unwrap(), CHECKOUT_PAGE);
    assert!(
        c.list_reporting_flows("80000130585")
            .await
            .unwrap()
            .is_empty()
    );
    {
        let log = node.log();
        assert_eq!(log.seen.len(), 2, "{log:?}");
        for seen in &log.seen {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            assert_eq!(seen.all("authorization"), [expected.as_str()], "{seen:?}");
            assert!(seen.all("ocp-apim-subscription-key").is_empty(), "{seen:?}");
            assert_eq!(seen.peer_certificate, None);
        }
    }
    // The Node really checks: one character off is refused, and not retried.
    let wrong = connect(&node.settings(basic("pässwörd:con due punt")));
    match wrong.create_cart(&cart()).await {
        Err(ConnectorError::Rejected { status: 401, body }) => {
            assert!(body.contains("wrong credentials"), "{body}")
        }
        other => panic!("a wrong password must be refused: {other:?}"),
    }
    assert_eq!(node.log().seen.len(), 3);
}

/// (c) The subscription key travels in `Ocp-Apim-Subscription-Key`,
/// exactly, once, with no other credential; the host name (localhost)
/// is checked against the Node's certificate too.
#[tokio::test]
async fn subscription_key_header_is_sent() {
    let pki = pki();
    let key = "0123456789abcdef0123456789abcdef";
    let node = start_node(
        &pki.trusted.node(),
        None,
        Demands {
            subscription_key: Some(key.into()),
            ..Demands::default()
        },
    )
    .await;
    let mut settings = node.settings(Auth::SubscriptionKey { key: key.into() });
    settings.rest_url = Some(node.host_url.replace("127.0.0.1", "localhost"));
    assert_eq!(
        connect(&settings).create_cart(&cart()).await.unwrap(),
        CHECKOUT_PAGE
    );
    {
        let log = node.log();
        let [seen] = log.seen.as_slice() else {
            panic!("{log:?}")
        };
        assert!(seen.request_line.starts_with("POST /checkout/ec/v1/carts "));
        assert_eq!(seen.all("ocp-apim-subscription-key"), [key]);
        assert!(seen.all("authorization").is_empty(), "{seen:?}");
    }
    // Without the key, or with another, the Node refuses.
    for auth in [
        Auth::None,
        Auth::SubscriptionKey {
            key: key.replace('0', "1"),
        },
    ] {
        match connect(&node.settings(auth)).create_cart(&cart()).await {
            Err(ConnectorError::Rejected { status: 401, body }) => {
                assert!(body.contains("wrong subscription key"), "{body}")
            }
            other => panic!("must be refused: {other:?}"),
        }
    }
}

/// (b) Mutual TLS against a Node that requires a client certificate of its
/// CA: the station's certificate is presented and is the one the Node
/// sees; without one, or with one of another CA, the handshake fails with
/// a typed TLS error, at once (retrying cannot help).
#[tokio::test]
async fn client_certificate_is_presented_and_required() {
    let pki = pki();
    let node = start_node(&pki.trusted.node(), Some(&pki.trusted), Demands::default()).await;
    let own = pki.trusted.station("15376371009_01");
    let with_cert = |leaf: &Leaf| {
        node.settings(Auth::ClientCertificate {
            certificate_pem: leaf.cert_pem.clone(),
            key_pem: leaf.key_pem.clone(),
        })
    };
    let c = connect(&with_cert(&own));
    assert_eq!(c.create_cart(&cart()).await.unwrap(), CHECKOUT_PAGE);
    assert!(
        c.list_reporting_flows("80000130585")
            .await
            .unwrap()
            .is_empty()
    );
    {
        let log = node.log();
        assert!(log.refused.is_empty(), "{log:?}");
        assert_eq!(log.seen.len(), 2, "{log:?}");
        for seen in &log.seen {
            assert_eq!(
                seen.peer_certificate.as_deref(),
                Some(own.cert_der.as_ref()),
                "the Node must see the station's own certificate"
            );
            // A certificate is the credential: no other is sent with it.
            assert!(seen.all("authorization").is_empty(), "{seen:?}");
            assert!(seen.all("ocp-apim-subscription-key").is_empty(), "{seen:?}");
        }
    }

    // No certificate, then one signed by a CA the Node does not trust.
    let foreign = pki.rogue.station("15376371009_01");
    for (settings, server_reason) in [
        (node.settings(Auth::None), "NoCertificatesPresented"),
        (with_cert(&foreign), "UnknownIssuer"),
    ] {
        let before = node.log().connections;
        match connect(&settings).create_cart(&cart()).await {
            Err(e @ ConnectorError::Tls(_)) => {
                assert!(!e.is_transient(), "{e}");
                assert!(e.to_string().contains("TLS"), "{e}");
            }
            other => panic!("the handshake must fail with a TLS error: {other:?}"),
        }
        let log = node.log();
        assert_eq!(log.connections - before, 1, "not retried: {log:?}");
        assert!(
            log.refused
                .last()
                .is_some_and(|r| r.contains(server_reason)),
            "{log:?}"
        );
        assert_eq!(log.seen.len(), 2, "no request got through: {log:?}");
    }
}

/// The other way round: a Node whose certificate no trusted CA signed is
/// refused before anything is sent to it, credentials included.
#[tokio::test]
async fn a_node_with_an_untrusted_certificate_is_refused() {
    let pki = pki();
    let node = start_node(&pki.rogue.node(), None, Demands::default()).await;
    let settings = node.settings(Auth::SubscriptionKey {
        key: "not-for-strangers".into(),
    });
    match connect(&settings).create_cart(&cart()).await {
        Err(e @ ConnectorError::Tls(_)) => {
            assert!(!e.is_transient(), "{e}");
            assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        }
        other => panic!("an untrusted Node must be refused: {other:?}"),
    }
    let log = node.log();
    assert_eq!(log.connections, 1, "not retried: {log:?}");
    assert!(log.seen.is_empty(), "{log:?}");
}
