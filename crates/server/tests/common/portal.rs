//! A citizen on the portal, as the tests see one: a browser-like visitor
//! that keeps the cookies it is given (the form token, the language, the
//! cart, the session), follows no redirects, and posts forms with the
//! form token of the last page it read.

use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct Visitor {
    pub base: String,
    http: reqwest::Client,
    cookies: Arc<Mutex<Vec<(String, String)>>>,
    csrf: Arc<Mutex<String>>,
}

/// An answer: status, headers and body, read once.
pub struct Page {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }
}

impl Visitor {
    pub fn new(base: &str) -> Visitor {
        Visitor {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Arc::default(),
            csrf: Arc::default(),
        }
    }

    pub fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The value of cookie `name`, if the visitor was given one.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let jar = self.cookies.lock().unwrap();
        jar.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    async fn read(&self, resp: reqwest::Response) -> Page {
        {
            let mut jar = self.cookies.lock().unwrap();
            for c in resp.headers().get_all("set-cookie") {
                let c = c.to_str().unwrap();
                let pair = c.split(';').next().unwrap();
                let (k, v) = pair.split_once('=').unwrap();
                jar.retain(|(name, _)| name != k);
                let expired = c.contains("Max-Age=0") || v.is_empty();
                if !expired {
                    jar.push((k.to_string(), v.to_string()));
                }
            }
        }
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        if let Some(t) = body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            *self.csrf.lock().unwrap() = t.to_string();
        }
        Page {
            status,
            headers,
            body,
        }
    }

    /// GET `path` (under the base URL, or a full URL).
    pub async fn get(&self, path: &str) -> Page {
        let url = self.url(path);
        let resp = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(resp).await
    }

    /// POSTs a form with the form token of the last page read.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.lock().unwrap().clone();
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        self.post_raw(path, &all).await
    }

    /// POSTs a form exactly as given (no token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let url = self.url(path);
        let resp = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
            .await
            .unwrap();
        self.read(resp).await
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }
}

pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
