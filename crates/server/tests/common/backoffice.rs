//! A person in the back office, over HTTP: an operator created with the
//! rights a test needs, signed in through the form (and past the
//! provisional password's change), then browsing with their session
//! cookie and sending forms with their CSRF token.

use incasso_app::operators::{self, NewOperatorInput};
use incasso_app::{App, Caller, Settings};
use incasso_core::access::{Access, Area, Rights, Role};
use incasso_store::Store;
use reqwest::StatusCode;

/// The password every operator of the tests ends up with.
pub const PASSWORD: &str = "Tributi-2026-Roma!";
const FIRST_PASSWORD: &str = "Provvisoria-2026-Xy";

/// A signed-in operator's browser, without redirects followed (so tests
/// see each answer).
#[derive(Clone)]
pub struct Clerk {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
    pub username: String,
}

/// A page as answered.
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `fields` as `application/x-www-form-urlencoded`.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The hidden CSRF field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Rights of `role` on `ente`; an office operator gets `grants` on
/// `offices`.
pub fn rights(
    role: Role,
    ente: Option<&str>,
    grants: &[(Area, Access)],
    offices: &[&str],
) -> Rights {
    Rights {
        role,
        ente: ente.map(str::to_string),
        grants: grants.to_vec(),
        offices: offices.iter().map(|o| o.to_string()).collect(),
    }
}

/// Creates operator `username` with `rights` (a provisional password) as
/// incasso itself would.
pub async fn create_operator(store: &Store, username: &str, rights: Rights) {
    let system = App::new(store.clone(), Settings::new("http://127.0.0.1"));
    operators::create(
        &system.ctx(Caller::System("test")),
        NewOperatorInput {
            username: username.into(),
            full_name: format!("Operatore {username}"),
            fiscal_code: None,
            email: None,
            rights,
            password: Some(FIRST_PASSWORD.into()),
        },
    )
    .await
    .unwrap();
}

/// Creates `username` with `rights` and signs them in at `base`.
pub async fn clerk(store: &Store, base: &str, username: &str, rights: Rights) -> Clerk {
    create_operator(store, username, rights).await;
    let c = sign_in(base, username, FIRST_PASSWORD).await;
    // The provisional password is changed before anything else.
    let home = c.get("/backoffice/").await;
    assert_eq!(home.location.as_deref(), Some("/backoffice/password"));
    let changed = c
        .post(
            "/backoffice/password",
            &[
                ("current_password", FIRST_PASSWORD),
                ("new_password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.text());
    c
}

/// Signs `username` in through the form.
pub async fn sign_in(base: &str, username: &str, password: &str) -> Clerk {
    let client = client();
    let resp = client
        .get(format!("{base}/backoffice/login"))
        .send()
        .await
        .unwrap();
    let form_cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next()?.strip_prefix("incasso_form="))
        .unwrap()
        .to_string();
    let csrf = csrf_of(&resp.text().await.unwrap());
    let resp = client
        .post(format!("{base}/backoffice/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("incasso_form={form_cookie}"))
        .body(form(&[
            ("username", username),
            ("password", password),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "sign-in of {username}"
    );
    let session = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next()?.strip_prefix("incasso_session="))
        .unwrap()
        .to_string();
    let mut c = Clerk {
        base: base.to_string(),
        client,
        cookie: format!("incasso_session={session}"),
        csrf: String::new(),
        username: username.to_string(),
    };
    let page = c.get("/backoffice/password").await;
    c.csrf = csrf_of(&page.text());
    c
}

impl Clerk {
    async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string());
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = resp.bytes().await.unwrap().to_vec();
        Answer {
            status,
            location,
            content_type,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        Self::answer(resp).await
    }

    /// A form, with the session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = fields.to_vec();
        all.push(("csrf", &self.csrf));
        self.post_raw(path, &all).await
    }

    /// A form exactly as given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
            .await
            .unwrap();
        Self::answer(resp).await
    }

    /// A multipart form (an upload), with the CSRF token as its first part.
    pub async fn post_file(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file_field: &str,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Answer {
        let boundary = "----incassotestboundary7f3a";
        let mut body = Vec::new();
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        for (k, v) in all {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        Self::answer(resp).await
    }
}
