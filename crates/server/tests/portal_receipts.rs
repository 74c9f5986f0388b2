//! Receipts on the citizen portal (issue 17), on both databases, through
//! real interfaces: a payment made through the simulated Checkout (with
//! the address typed in the portal's cart) or at a PSP's desk reaches
//! incasso as paSendRTV2; the quietanza goes out once, by a real SMTP
//! conversation, to the simulator's SMTP server, with its PDF attached; a
//! receipt sent again mails nothing more; a temporary refusal (451) is
//! tried again and a permanent one (554) fails at once with its reason
//! kept. The portal finds a receipt by IUV and fiscal code whatever the
//! channel, answers a wrong fiscal code exactly as an unknown IUV, and
//! puts the reason for a malformed field next to it.

use crate::common::app;
use crate::common::portal;
use crate::common::portal_receipts_world as world;

use app::gpd::{ENTE, OTHER_ENTE};
use incasso_app::identity::CitizenIdentity;
use incasso_app::{Caller, Kind};
use incasso_simulator::Faults;
use incasso_testkit::backends;
use portal::{Page, Visitor};
use reqwest::StatusCode;
use world::world;

/// The PDF's text, or `None` (with a note) without pdftotext, unless
/// INCASSO_REQUIRE_TOOLS=1.
fn pdf_text(pdf: &[u8]) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("incasso-receipts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("r-{}.pdf", pdf.len()));
    std::fs::write(&path, pdf).unwrap();
    match std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
    {
        Ok(out) if out.status.success() => Some(String::from_utf8(out.stdout).unwrap()),
        _ if std::env::var("INCASSO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") => {
            panic!("pdftotext is required (poppler-utils; scripts/test.sh installs it)")
        }
        _ => {
            eprintln!("pdftotext missing: the PDF's text is not checked");
            None
        }
    }
}

#[tokio::test]
async fn a_checkout_payment_mails_the_receipt_once_with_its_pdf() {
    for backend in backends() {
        let w = world(backend).await;
        let n = w.notice(ENTE, "MAIL-1", 123_456).await;
        // The citizen's cart, with the address for the receipt, opened as
        // a Checkout cart and paid on the simulated Checkout page.
        let public = w.app.ctx(Caller::Public);
        let cart = incasso_app::portal::cart::add(&public, None, ENTE, ENTE, &n.nav)
            .await
            .unwrap();
        let checkout =
            incasso_app::portal::cart::open_checkout(&public, &cart, Some("pagatore@example.it"))
                .await
                .unwrap();
        let paid = w.http.post(format!("{checkout}/pay")).send().await.unwrap();
        assert!(paid.status().is_redirection(), "{}", paid.status());

        let m = w.mail_to("pagatore@example.it").await;
        assert_eq!(m.from, "pagamenti@comune.example.it");
        assert_eq!(
            m.subject,
            "Ricevuta di pagamento pagoPA – Comune di prova 1"
        );
        assert!(m.text.contains("1.234,56 €"), "{}", m.text);
        assert!(m.text.contains(&n.iuv), "{}", m.text);
        assert!(m.raw.contains("Subject:"), "the raw RFC 5322 text");
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        assert_eq!(a.filename, format!("ricevuta-{}.pdf", n.iuv));
        assert_eq!(a.content_type, "application/pdf");
        let pdf = a.bytes();
        assert!(pdf.starts_with(b"%PDF"));
        if let Some(text) = pdf_text(&pdf) {
            for wanted in [
                "1.234,56 €",
                n.iuv.as_str(),
                "Comune di prova 1",
                "Banca Simulata",
            ] {
                assert!(
                    text.contains(wanted),
                    "{wanted} missing from the PDF:\n{text}"
                );
            }
        }
        // The same through the simulator's JSON.
        let listed = w.mail().await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["to"][0], "pagatore@example.it");
        assert_eq!(
            listed[0]["attachments"][0]["filename"],
            format!("ricevuta-{}.pdf", n.iuv)
        );

        // The Node sends the same receipt again: refused as a duplicate,
        // and nothing more is mailed, now or later.
        let receipt_id = w.receipt_id(ENTE, &n.nav).await;
        let key = incasso_app::mail::receipt_key(ENTE, &receipt_id);
        let sent = w.outbox_until(&key, |r| r.status == "SENT").await;
        assert_eq!(sent.attempts, 1);
        assert_eq!(sent.recipient, "pagatore@example.it");
        let raw = w.store.receipt_xml(ENTE, &receipt_id).await.unwrap();
        let again = w
            .http
            .post(format!("{}/pagopa/paForNode", w.base))
            .header("content-type", "text/xml")
            .body(raw)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(again.contains("PAA_RECEIPT_DUPLICATA"), "{again}");
        let later = chrono::Utc::now() + chrono::Duration::hours(3);
        let round = incasso_app::mail::send_due(&w.app, later).await.unwrap();
        assert_eq!(round, incasso_app::mail::Round::default());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(w.sim.mail().len(), 1, "mailed once");
        assert_eq!(w.store.list_mail(ENTE, 10).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_and_a_permanent_one_fails_with_its_reason() {
    for backend in backends() {
        let w = world(backend).await;
        // Two 451s: the first attempt is the worker's, at once; the next
        // ones come due later (1 and 2 minutes), so the test moves time.
        w.sim.set_faults(Faults {
            smtp_transient_next: 2,
            ..Faults::default()
        });
        let n = w.notice(ENTE, "RETRY-1", 5_000).await;
        let payment = w.sim.pay(ENTE, &n.nav).await.unwrap();
        let receipt_id = payment.receipt_ids[0].clone();
        let key = incasso_app::mail::receipt_key(ENTE, &receipt_id);
        let first = w
            .outbox_until(&key, |r| r.status == "PENDING" && r.attempts == 1)
            .await;
        assert!(
            first
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("451")),
            "{first:?}"
        );
        let retry_at = first.next_attempt_at;
        assert!(retry_at > chrono::Utc::now(), "waits before trying again");
        // Not due yet: nothing happens.
        assert_eq!(
            incasso_app::mail::send_due(&w.app, chrono::Utc::now())
                .await
                .unwrap(),
            incasso_app::mail::Round::default()
        );
        let second = incasso_app::mail::send_due(&w.app, retry_at).await.unwrap();
        assert_eq!(second.retried, 1, "{second:?}");
        let row = w.store.mail_by_key(&key).await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("PENDING", 2));
        let third = incasso_app::mail::send_due(&w.app, row.next_attempt_at)
            .await
            .unwrap();
        assert_eq!(third.sent, 1, "{third:?}");
        let row = w.store.mail_by_key(&key).await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("SENT", 3));
        let to = row.recipient.clone();
        assert_eq!(w.mail_to(&to).await.attachments.len(), 1);

        // No SMTP server at all (a port nobody listens on): a connection
        // failure is temporary, tried again later.
        let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut settings = incasso_app::Settings::new(&w.base);
        settings.smtp_url = Some(format!("smtp://127.0.0.1:{dead_port}"));
        let unreachable = incasso_app::App::new(w.store.clone(), settings);
        let probe = incasso_store::mail::NewMail {
            natural_key: format!("probe:{receipt_id}"),
            kind: incasso_app::mail::RECEIPT.into(),
            ente: ENTE.into(),
            reference: receipt_id.clone(),
            recipient: "sonda@example.it".into(),
        };
        // Due in the future, so that the running worker leaves it alone.
        let at = chrono::Utc::now() + chrono::Duration::days(2);
        assert!(w.store.enqueue_mail(&probe, at).await.unwrap());
        let round = incasso_app::mail::send_due(&unreachable, at).await.unwrap();
        assert_eq!(round.retried, 1, "{round:?}");
        let row = w
            .store
            .mail_by_key(&probe.natural_key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("PENDING", 1));
        assert!(row.next_attempt_at > at);
        assert!(row.last_error.is_some());

        // 554: given up at the first attempt, the server's words kept.
        w.sim.set_faults(Faults {
            smtp_permanent: true,
            ..Faults::default()
        });
        let refused = w.notice(ENTE, "PERM-1", 7_000).await;
        let payment = w.sim.pay(ENTE, &refused.nav).await.unwrap();
        let key = incasso_app::mail::receipt_key(ENTE, &payment.receipt_ids[0]);
        let failed = w.outbox_until(&key, |r| r.status == "FAILED").await;
        assert_eq!(failed.attempts, 1);
        let reason = failed.last_error.clone().unwrap_or_default();
        assert!(reason.contains("554"), "{reason}");
        let much_later = chrono::Utc::now() + chrono::Duration::days(1);
        assert_eq!(
            incasso_app::mail::send_due(&w.app, much_later)
                .await
                .unwrap(),
            incasso_app::mail::Round::default(),
            "a failed message is never tried again"
        );
        assert_eq!(w.sim.mail().len(), 1, "only the retried message arrived");
        // The back office's list shows both, with the reason.
        let listed = incasso_app::mail::list(&w.app.system("test"), ENTE, 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().any(|m| m.status == "FAILED"));
    }
}

/// The text of the element with `id` (up to its first tag).
fn text_of(p: &Page, id: &str) -> String {
    let after = p
        .body
        .split(&format!("id=\"{id}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no #{id} in {}", p.body));
    after.split("</div>").next().unwrap().trim().to_string()
}

async fn search(v: &Visitor, ente: &str, iuv: &str, fc: &str) -> Page {
    v.get(&format!("/portale/{ente}/ricevuta")).await;
    v.post(
        &format!("/portale/{ente}/ricevuta"),
        &[("iuv", iuv), ("codice_fiscale", fc)],
    )
    .await
}

#[tokio::test]
async fn a_receipt_is_found_by_iuv_and_fiscal_code_whatever_the_channel() {
    for backend in backends() {
        let w = world(backend).await;
        // Paid at a PSP's desk: no cart, no portal.
        let n = w.notice(ENTE, "DESK-1", 98_765).await;
        w.sim.pay(ENTE, &n.nav).await.unwrap();
        w.receipt_id(ENTE, &n.nav).await;
        let v = Visitor::new(&w.base);

        let form = v.get(&format!("/portale/{ENTE}/ricevuta")).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("id=\"iuv\"") && form.body.contains("id=\"codice_fiscale\""));
        assert!(form.body.contains("data-element=\"breadcrumb\""));

        // Found with the debtor's fiscal code, typed in lower case.
        let found = search(&v, ENTE, &n.iuv, &n.debtor_fc.to_lowercase()).await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.body);
        for wanted in [
            "987,65 €",
            "Comune di prova 1",
            "Banca Simulata",
            n.iuv.as_str(),
        ] {
            assert!(found.body.contains(wanted), "{wanted} missing");
        }
        let today = incasso_core::time::to_rome(chrono::Utc::now())
            .format("%d/%m/%Y")
            .to_string();
        assert!(found.body.contains(&today), "the payment's date");
        assert!(
            !found.body.contains(&n.debtor_name),
            "the debtor's name is not shown"
        );
        assert!(
            found.body.contains("data-element=\"feedback\""),
            "the rating"
        );
        // Its PDF, by POST with both fields.
        let pdf = v.http_pdf(ENTE, &n.iuv, &n.debtor_fc).await;
        assert_eq!(pdf.0, StatusCode::OK);
        assert_eq!(pdf.1, "application/pdf");
        if let Some(text) = pdf_text(&pdf.2) {
            assert!(text.contains("987,65 €") && text.contains(&n.iuv), "{text}");
        }

        // A wrong fiscal code and an unknown IUV: the same answer.
        let other = "RSSMRA80A01H501U";
        assert_ne!(other, n.debtor_fc);
        let not_yours = search(&v, ENTE, &n.iuv, other).await;
        assert_eq!(not_yours.status, StatusCode::NOT_FOUND);
        let unknown_iuv = format!("{}9", &n.iuv[..n.iuv.len() - 1]);
        let unknown = search(&v, ENTE, &unknown_iuv, &n.debtor_fc).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(
            text_of(&not_yours, "non-trovata"),
            text_of(&unknown, "non-trovata")
        );
        assert!(text_of(&unknown, "non-trovata").contains("Nessuna ricevuta"));
        // Another Ente's portal does not know it either.
        let elsewhere = search(&v, OTHER_ENTE, &n.iuv, &n.debtor_fc).await;
        assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
        // Nor does the PDF with a wrong fiscal code.
        let refused = v.http_pdf(ENTE, &n.iuv, other).await;
        assert_eq!(refused.0, StatusCode::NOT_FOUND);

        // Malformed: each message by its field, the summary linking to it.
        let bad = search(&v, ENTE, "12345", "RSSMRA80A01H501X").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(text_of(&bad, "iuv-errore").contains("15, 17 o 25"));
        assert!(text_of(&bad, "cf-errore").contains("codice fiscale non è valido"));
        assert!(
            bad.body.contains("href=\"#iuv\"") && bad.body.contains("href=\"#codice_fiscale\"")
        );
        assert!(
            bad.body
                .contains("aria-describedby=\"iuv-errore iuv-aiuto\"")
        );
        assert!(
            bad.body.contains("value=\"12345\""),
            "the typed value shown back"
        );
        let half = search(&v, ENTE, &n.iuv, "").await;
        assert_eq!(half.status, StatusCode::BAD_REQUEST);
        assert!(!half.body.contains("id=\"iuv-errore\""));
        assert!(half.body.contains("id=\"cf-errore\""));
        // Without the form's token, nothing.
        let forged = v
            .post_raw(
                &format!("/portale/{ENTE}/ricevuta"),
                &[
                    ("iuv", &n.iuv),
                    ("codice_fiscale", &n.debtor_fc),
                    ("csrf", &"0".repeat(64)),
                ],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        // The fiscal code never travels in a URL: GET with it finds nothing.
        let by_get = v
            .get(&format!(
                "/portale/{ENTE}/ricevuta?iuv={}&codice_fiscale={}",
                n.iuv, n.debtor_fc
            ))
            .await;
        assert!(!by_get.body.contains("987,65"));

        // quietanza_pdf: the Ente's staff and the debtor as a citizen may;
        // another citizen and an anonymous visitor get 'not found'.
        use incasso_app::portal::receipts::quietanza_pdf;
        let system = w.app.system("test");
        assert!(
            quietanza_pdf(&system, ENTE, &n.iuv)
                .await
                .unwrap()
                .starts_with(b"%PDF")
        );
        let citizen = |fc: &str| {
            w.app.ctx(Caller::Citizen(CitizenIdentity {
                fiscal_code: fc.into(),
                name: "Qualcuno".into(),
            }))
        };
        assert!(
            quietanza_pdf(&citizen(&n.debtor_fc), ENTE, &n.iuv)
                .await
                .is_ok()
        );
        for ctx in [citizen(other), w.app.ctx(Caller::Public)] {
            let e = quietanza_pdf(&ctx, ENTE, &n.iuv).await.unwrap_err();
            assert_eq!(e.kind, Kind::NotFound);
            assert_eq!(e.code, "RECEIPT_NOT_FOUND");
        }
    }
}

/// `raw` with `from` replaced by `to` inside its `<tag>` element only.
fn replace_in(raw: &str, tag: &str, from: &str, to: &str) -> String {
    let open = raw
        .find(&format!("<{tag}>"))
        .unwrap_or_else(|| panic!("no <{tag}>"));
    let close = raw[open..].find(&format!("</{tag}>")).unwrap() + open;
    assert!(raw[open..close].contains(from), "{from} not in <{tag}>");
    format!(
        "{}{}{}",
        &raw[..open],
        raw[open..close].replace(from, to),
        &raw[close..]
    )
}

#[tokio::test]
async fn the_payer_finds_the_receipt_with_their_own_fiscal_code() {
    for backend in backends() {
        let w = world(backend).await;
        // A receipt whose payer is not the debtor: the PSP's RT of another
        // notice of the same amount, made this notice's, with another payer
        // and a receipt id of its own, as the Node would send it.
        let template = w.notice(ENTE, "TPL-1", 3_300).await;
        w.sim.pay(ENTE, &template.nav).await.unwrap();
        let template_id = w.receipt_id(ENTE, &template.nav).await;
        let raw = w.store.receipt_xml(ENTE, &template_id).await.unwrap();
        let n = w.notice(ENTE, "PAYER-1", 3_300).await;
        let payer = "BNCGLI80A41H501C";
        let raw = replace_in(&raw, "payer", &template.debtor_fc, payer)
            .replace(&template.nav, &n.nav)
            .replace(&template.iuv, &n.iuv)
            .replace(&template_id, "a1b2c3d4e5f60718293a4b5c6d7e8f90");
        let answer = w
            .http
            .post(format!("{}/pagopa/paForNode", w.base))
            .header("content-type", "text/xml")
            .body(raw)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(answer.contains("<outcome>OK</outcome>"), "{answer}");
        let public = w.app.ctx(Caller::Public);
        let found = incasso_app::portal::receipts::find(&public, ENTE, &n.iuv, payer)
            .await
            .unwrap();
        assert_eq!(found.amount, incasso_core::Cents(3_300));
        assert_eq!(found.receipt_id, "a1b2c3d4e5f60718293a4b5c6d7e8f90");
        // The debtor named in the RT finds it too; a stranger does not.
        assert!(
            incasso_app::portal::receipts::find(&public, ENTE, &n.iuv, &template.debtor_fc)
                .await
                .is_ok()
        );
        let e = incasso_app::portal::receipts::find(&public, ENTE, &n.iuv, "RSSMRA80A01H501U")
            .await
            .unwrap_err();
        assert_eq!(e.code, "RECEIPT_NOT_FOUND");
        // The PDF names the payer beside the debtor.
        let pdf = incasso_app::portal::receipts::find_pdf(&public, ENTE, &n.iuv, payer)
            .await
            .unwrap();
        if let Some(text) = pdf_text(&pdf) {
            assert!(
                text.contains(payer) && text.contains(&template.debtor_fc),
                "{text}"
            );
            assert!(text.contains("Pagatore"), "{text}");
        }
    }
}

trait PdfDownload {
    async fn http_pdf(&self, ente: &str, iuv: &str, fc: &str) -> (StatusCode, String, Vec<u8>);
}

impl PdfDownload for Visitor {
    /// `POST /portale/{ente}/ricevuta/pdf` with the form's token (the
    /// double-submit cookie's value): status, content type, bytes.
    async fn http_pdf(&self, ente: &str, iuv: &str, fc: &str) -> (StatusCode, String, Vec<u8>) {
        self.get(&format!("/portale/{ente}/ricevuta")).await;
        let token = self.cookie("incasso_portale").expect("the form token");
        let resp = reqwest::Client::new()
            .post(format!("{}/portale/{ente}/ricevuta/pdf", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(portal::form(&[
                ("iuv", iuv),
                ("codice_fiscale", fc),
                ("csrf", &token),
            ]))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, content_type, resp.bytes().await.unwrap().to_vec())
    }
}
