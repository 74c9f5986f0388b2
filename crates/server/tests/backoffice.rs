//! The back office's door for people (issue 16): the sign-in form and its
//! CSRF check, the session cookie's attributes, sign-out, and the security
//! headers of every page, over HTTP on both databases.

use crate::common::app;

use app::gpd::ENTE;
use app::spawn_app;
use incasso_app::operators::{self, NewOperatorInput};
use incasso_app::{App, Caller, Settings};
use incasso_core::access::{Rights, Role};
use incasso_testkit::backends;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};

const PASSWORD: &str = "Tributi-2026-Roma";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `name=value` of each Set-Cookie, and the whole headers.
fn cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn value_of(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// The hidden CSRF field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn sign_in_sign_out_cookies_csrf_and_headers() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let system = App::new(app.store.clone(), Settings::new("http://127.0.0.1"));
        operators::create(
            &system.ctx(Caller::System("test")),
            NewOperatorInput {
                username: "mario.rossi".into(),
                full_name: "Mario Rossi".into(),
                fiscal_code: None,
                email: None,
                rights: Rights {
                    role: Role::EnteAdmin,
                    ente: Some(ENTE.into()),
                    grants: vec![],
                    offices: vec![],
                },
                password: Some(PASSWORD.into()),
            },
        )
        .await
        .unwrap();
        let base = &app.server.base;
        let c = client();

        // Without a session, the pages lead to the sign-in form.
        let resp = c.get(format!("{base}/backoffice/")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()[LOCATION], "/backoffice/login");

        // The form: its security headers, a CSRF field and its cookie.
        let resp = c
            .get(format!("{base}/backoffice/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let csp = resp.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(resp.headers()["referrer-policy"], "same-origin");
        let set = cookies(&resp);
        let form_cookie = value_of(&set, "incasso_form").unwrap();
        let html = resp.text().await.unwrap();
        assert!(html.contains("<html lang=\"it\">"));
        assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
        let csrf = csrf_of(&html);
        assert_eq!(csrf, form_cookie);

        let post = |fields: Vec<(&'static str, String)>, cookie: Option<String>| {
            let c = c.clone();
            let url = format!("{base}/backoffice/login");
            async move {
                let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let mut req = c
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form(&f));
                if let Some(cookie) = cookie {
                    req = req.header("cookie", cookie);
                }
                req.send().await.unwrap()
            }
        };
        let with_form_cookie = Some(format!("incasso_form={form_cookie}"));
        // A form without its CSRF token, or from elsewhere: refused.
        let resp = post(
            vec![
                ("username", "mario.rossi".into()),
                ("password", PASSWORD.into()),
            ],
            with_form_cookie.clone(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = post(
            vec![
                ("username", "mario.rossi".into()),
                ("password", PASSWORD.into()),
                ("csrf", csrf.clone()),
            ],
            None,
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{backend:?}");
        // A wrong password: 401, the name kept, the reason not told.
        let resp = post(
            vec![
                ("username", "mario.rossi".into()),
                ("password", "Sbagliata-2026!".into()),
                ("csrf", csrf.clone()),
            ],
            with_form_cookie.clone(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let html = resp.text().await.unwrap();
        assert!(html.contains("nome utente o password errati"), "{html}");
        assert!(html.contains("value=\"mario.rossi\""));
        let unknown = post(
            vec![
                ("username", "nessuno".into()),
                ("password", "Sbagliata-2026!".into()),
                ("csrf", csrf.clone()),
            ],
            with_form_cookie.clone(),
        )
        .await;
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

        // The right one: a session cookie, HttpOnly, SameSite, Secure here.
        let resp = post(
            vec![
                ("username", "Mario.Rossi".into()),
                ("password", PASSWORD.into()),
                ("csrf", csrf.clone()),
            ],
            with_form_cookie.clone(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{backend:?}");
        assert_eq!(resp.headers()[LOCATION], "/backoffice/");
        let set = cookies(&resp);
        let session_cookie = set
            .iter()
            .find(|c| c.starts_with("incasso_session="))
            .unwrap();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/backoffice", "Secure"] {
            assert!(session_cookie.contains(attribute), "{session_cookie}");
        }
        let token = value_of(&set, "incasso_session").unwrap();
        let session = format!("incasso_session={token}");
        // A first password is provisional: the pages lead to changing it.
        let resp = c
            .get(format!("{base}/backoffice/"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()[LOCATION], "/backoffice/password");
        let html = c
            .get(format!("{base}/backoffice/password"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("provvisoria"), "{html}");
        let password_csrf = csrf_of(&html);
        let change = |fields: Vec<(&'static str, String)>| {
            let c = c.clone();
            let session = session.clone();
            let url = format!("{base}/backoffice/password");
            async move {
                let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                c.post(url)
                    .header("cookie", session)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form(&f))
                    .send()
                    .await
                    .unwrap()
            }
        };
        const NEW: &str = "Ragioneria-2027-Roma";
        for (current, new, confirm, status, says) in [
            (
                PASSWORD,
                NEW,
                "Altra-2027-Roma!",
                StatusCode::BAD_REQUEST,
                "non coincide",
            ),
            (
                "Sbagliata-2026!",
                NEW,
                NEW,
                StatusCode::BAD_REQUEST,
                "attuale non",
            ),
            (
                PASSWORD,
                "corta",
                "corta",
                StatusCode::BAD_REQUEST,
                "12 caratteri",
            ),
        ] {
            let resp = change(vec![
                ("csrf", password_csrf.clone()),
                ("current_password", current.into()),
                ("new_password", new.into()),
                ("confirm_password", confirm.into()),
            ])
            .await;
            assert_eq!(resp.status(), status);
            let html = resp.text().await.unwrap();
            assert!(html.contains(says), "{says}: {html}");
        }
        let resp = change(vec![
            ("csrf", "forged".into()),
            ("current_password", PASSWORD.into()),
            ("new_password", NEW.into()),
            ("confirm_password", NEW.into()),
        ])
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = change(vec![
            ("csrf", password_csrf.clone()),
            ("current_password", PASSWORD.into()),
            ("new_password", NEW.into()),
            ("confirm_password", NEW.into()),
        ])
        .await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{backend:?}");
        assert_eq!(resp.headers()[LOCATION], "/backoffice/");
        let resp = c
            .get(format!("{base}/backoffice/"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("Mario Rossi") && html.contains("Amministratore dell&#39;ente"),
            "{html}"
        );
        let session_csrf = csrf_of(&html);
        // The Ente's audit log: the sign-ins and the change, searchable;
        // another Ente's is refused.
        let log = |query: String| {
            let c = c.clone();
            let session = session.clone();
            let url = format!("{base}/backoffice/giornale{query}");
            async move {
                let resp = c.get(url).header("cookie", session).send().await.unwrap();
                (resp.status(), resp.text().await.unwrap())
            }
        };
        let (status, html) = log(String::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("operator.sign_in") && html.contains("WRONG_PASSWORD"),
            "{html}"
        );
        assert!(html.contains("operator.change_password"), "{html}");
        let (_, found) = log("?q=change_password".into()).await;
        assert!(
            found.contains("operator.change_password") && !found.contains("operator.sign_in"),
            "{found}"
        );
        let (status, _) = log(format!("?ente={}", app::gpd::OTHER_ENTE)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend:?}");

        // Sign-out wants the session's CSRF token, then ends the session.
        let logout = |csrf: String| {
            let c = c.clone();
            let session = session.clone();
            let url = format!("{base}/backoffice/logout");
            async move {
                c.post(url)
                    .header("cookie", session)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form(&[("csrf", &csrf)]))
                    .send()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(logout(csrf.clone()).await.status(), StatusCode::FORBIDDEN);
        let resp = logout(session_csrf).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()[LOCATION], "/backoffice/login?uscita=1");
        assert!(
            cookies(&resp)
                .iter()
                .any(|c| c.starts_with("incasso_session=;") && c.contains("Max-Age=0"))
        );
        let resp = c
            .get(format!("{base}/backoffice/"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "the session is over");

        // The static files the pages use are served from the binary.
        for path in [
            "/static/bootstrap-italia/css/bootstrap-italia.min.css",
            "/static/incasso/fonts.css",
            "/static/bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-regular.woff2",
        ] {
            let resp = c.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
        }
        let resp = c
            .get(format!("{base}/static/../Cargo.toml"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}
