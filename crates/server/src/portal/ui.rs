//! The frame of every portal page: the Ente whose portal it is (from the
//! path), the language, the breadcrumbs, the steps of a procedure, the
//! anonymous form token and the signed-in citizen.

use crate::AppState;
use crate::backoffice::{cookie, same};
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use incasso_app::identity::CitizenIdentity;
use incasso_app::portal::style::{self, ExtraLanguage};
use incasso_app::{Caller, Ctx, Kind};

/// The cookie that holds the anonymous visitor's form token (double
/// submit: every POST form carries the same value in a hidden field).
pub const FORM_COOKIE: &str = "incasso_portale";
/// The language the visitor chose, among those the Ente offers.
pub const LANGUAGE_COOKIE: &str = "incasso_lingua";

/// A language of the portal. Italian is always complete; German and
/// English are offered where the Ente enables them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    It,
    De,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::It => "it",
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "it" => Some(Lang::It),
            "de" => Some(Lang::De),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language's own name, as the switch shows it.
    pub fn name(self) -> &'static str {
        match self {
            Lang::It => "Italiano",
            Lang::De => "Deutsch",
            Lang::En => "English",
        }
    }

    /// The text in this language: each page holds its three versions
    /// side by side, so a missing translation shows in review.
    pub fn t<'a>(self, it: &'a str, de: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::It => it,
            Lang::De => de,
            Lang::En => en,
        }
    }

    fn of(extra: ExtraLanguage) -> Lang {
        match extra {
            ExtraLanguage::German => Lang::De,
            ExtraLanguage::English => Lang::En,
        }
    }
}

/// A step of a procedure (Designers Italia: visible steps, the done ones
/// linked so the citizen can go back).
#[derive(Debug, Clone)]
pub struct Step {
    pub label: String,
    /// Where to go back to it; only for steps already done.
    pub href: Option<String>,
    pub current: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Steps {
    pub steps: Vec<Step>,
}

impl Steps {
    /// Steps `labels`, the `current` one (from 0) highlighted, the ones
    /// before it linked to `back[i]` where given.
    pub fn new(labels: &[&str], current: usize, back: &[Option<String>]) -> Steps {
        Steps {
            steps: labels
                .iter()
                .enumerate()
                .map(|(i, l)| Step {
                    label: l.to_string(),
                    href: if i < current {
                        back.get(i).cloned().flatten()
                    } else {
                        None
                    },
                    current: i == current,
                })
                .collect(),
        }
    }

    pub fn current_number(&self) -> usize {
        self.steps.iter().position(|s| s.current).unwrap_or(0) + 1
    }
}

#[derive(Debug, Clone)]
pub struct Crumb {
    pub label: String,
    pub href: Option<String>,
}

/// What the frame of a portal page shows.
#[derive(Debug, Clone)]
pub struct PortalChrome {
    pub ente: String,
    pub ente_name: String,
    pub has_logo: bool,
    pub lang: Lang,
    /// Every language the portal offers, Italian first.
    pub languages: Vec<Lang>,
    pub csrf: String,
    pub citizen: Option<CitizenIdentity>,
    pub crumbs: Vec<Crumb>,
    /// The path of this page, for the language switch.
    pub path: String,
}

impl PortalChrome {
    pub fn t<'a>(&self, it: &'a str, de: &'a str, en: &'a str) -> &'a str {
        self.lang.t(it, de, en)
    }

    /// The portal's home, `/portale/{fc}/`.
    pub fn home(&self) -> String {
        format!("/portale/{}/", self.ente)
    }

    /// Breadcrumbs: the portal's home, then `trail` (label, link); the
    /// last one is the page itself and carries no link.
    pub fn crumbs(mut self, trail: &[(&str, &str)]) -> PortalChrome {
        let mut crumbs = vec![Crumb {
            label: self.t("Pagamenti", "Zahlungen", "Payments").to_string(),
            href: Some(self.home()),
        }];
        for (i, (label, href)) in trail.iter().enumerate() {
            crumbs.push(Crumb {
                label: label.to_string(),
                href: (i + 1 < trail.len() && !href.is_empty()).then(|| href.to_string()),
            });
        }
        self.crumbs = crumbs;
        self
    }

    /// Whether to draw the language switch.
    pub fn multilingual(&self) -> bool {
        self.languages.len() > 1
    }

    /// `Some` when `l` is the language of the page (askama compares
    /// plainly).
    pub fn is_lang(&self, l: &Lang) -> bool {
        self.lang == *l
    }
}

/// The portal a request is about, with everything its page needs.
pub struct Portal {
    /// The Ente's fiscal code.
    pub ente: String,
    pub lang: Lang,
    pub chrome: PortalChrome,
    /// Who is asking: the connection's peer, or the client a trusted proxy
    /// names (see `limit`).
    pub client: std::net::IpAddr,
    form_token: String,
}

impl Portal {
    /// The use-case context: the signed-in citizen, or nobody.
    pub fn ctx(&self, state: &AppState) -> Ctx {
        match &self.chrome.citizen {
            Some(c) => state.app.ctx(Caller::Citizen(c.clone())),
            None => state.app.ctx(Caller::Public),
        }
    }

    /// The form came from a page of this portal in this browser.
    // The error is the page answered, as the back office's `check_csrf`.
    #[allow(clippy::result_large_err)]
    pub fn check_csrf(&self, sent: &str) -> Result<(), Response> {
        if !self.form_token.is_empty() && same(&self.form_token, sent) {
            Ok(())
        } else {
            Err(super::message_page(
                &self.chrome,
                StatusCode::FORBIDDEN,
                self.chrome.t(
                    "Modulo scaduto",
                    "Formular abgelaufen",
                    "Form expired",
                ),
                self.chrome.t(
                    "Il modulo è scaduto o non è stato inviato da questa pagina: tornare indietro, ricaricare la pagina e riprovare.",
                    "Das Formular ist abgelaufen oder wurde nicht von dieser Seite gesendet: zurückgehen, die Seite neu laden und erneut versuchen.",
                    "The form has expired or was not sent from this page: go back, reload the page and try again.",
                ),
            ))
        }
    }
}

/// The form token of this request: the cookie's, or the one the
/// middleware just made (and sets on the answer).
#[derive(Clone)]
pub struct FormToken(pub String);

impl FromRequestParts<AppState> for Portal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let path = parts.uri.path().to_string();
        let fc = path
            .strip_prefix("/portale/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        let form_token = parts
            .extensions
            .get::<FormToken>()
            .map(|t| t.0.clone())
            .or_else(|| cookie(&parts.headers, FORM_COOKIE))
            .unwrap_or_default();
        let client = super::client_of(parts, state);
        let citizen = super::citizen::current(state, &parts.headers).await;
        let ctx = state.app.ctx(Caller::Public);
        let style = match style::get(&ctx, &fc).await {
            Ok(s) => s,
            Err(e) => {
                let status = if e.kind == Kind::NotFound || e.kind == Kind::Invalid {
                    StatusCode::NOT_FOUND
                } else {
                    crate::error::status_of(e.kind)
                };
                let chrome = PortalChrome {
                    ente: fc.clone(),
                    ente_name: String::new(),
                    has_logo: false,
                    lang: Lang::It,
                    languages: vec![Lang::It],
                    csrf: form_token,
                    citizen,
                    crumbs: Vec::new(),
                    path,
                };
                let text = if status == StatusCode::NOT_FOUND {
                    "Non esiste un portale dei pagamenti a questo indirizzo: controllare il collegamento ricevuto dall'ente.".to_string()
                } else {
                    e.detail.clone()
                };
                return Err(super::message_page(
                    &chrome,
                    status,
                    "Portale non trovato",
                    &text,
                ));
            }
        };
        let mut languages = vec![Lang::It];
        languages.extend(style.languages.iter().map(|l| Lang::of(*l)));
        let asked = parts
            .uri
            .query()
            .and_then(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == "lingua")
                    .map(|(_, v)| v.to_string())
            })
            .or_else(|| cookie(&parts.headers, LANGUAGE_COOKIE))
            .or_else(|| {
                parts
                    .headers
                    .get(axum::http::header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().chars().take(2).collect())
            });
        let lang = asked
            .as_deref()
            .and_then(Lang::from_code)
            .filter(|l| languages.contains(l))
            .unwrap_or(Lang::It);
        let chrome = PortalChrome {
            ente: style.ente.clone(),
            ente_name: style.ente_name,
            has_logo: style.has_logo,
            lang,
            languages,
            csrf: form_token.clone(),
            citizen,
            crumbs: Vec::new(),
            path,
        };
        Ok(Portal {
            ente: style.ente,
            lang,
            chrome,
            client,
            form_token,
        })
    }
}
