//! Walks the back office as a signed-in operator: every page reachable by
//! links from the home page (within limits), and every form found on the
//! way, with the values it carries. Tests replay what one operator found
//! as another operator, to prove that rights and tenancy hold on every
//! page and action, including those added after the test was written.
//!
//! Include after `common/backoffice.rs` (as `backoffice`) with
//! `#[path = "common/crawl.rs"] mod crawl;`.

use super::backoffice::{Answer, Clerk};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A form as the page sends it.
#[derive(Debug, Clone)]
pub struct Form {
    /// The page it was found on.
    pub page: String,
    pub action: String,
    pub multipart: bool,
    /// Each named field with the value the page gives it (a select's
    /// selected or first option, a checkbox's value when checked).
    pub fields: Vec<(String, String)>,
    /// File inputs' names.
    pub files: Vec<String>,
}

/// What a walk found.
#[derive(Default)]
pub struct Walk {
    /// Each URL opened, with its status.
    pub pages: Vec<(String, u16)>,
    /// Each distinct form (by action and fields' names).
    pub forms: Vec<Form>,
}

/// Whether a link leads to a download rather than a page.
pub fn is_download(url: &str) -> bool {
    url.contains("formato=")
        || [
            ".pdf", ".zip", ".csv", ".xlsx", ".xml", ".txt", ".toml", ".json",
        ]
        .iter()
        .any(|ext| url.split('?').next().unwrap_or("").ends_with(ext))
}

/// Pages never opened by the walk: sign-out is a form, and the sign-in,
/// password and SPID pages are about the session, not the Ente's data.
fn skipped(path: &str) -> bool {
    [
        "/backoffice/logout",
        "/backoffice/login",
        "/backoffice/spid",
        "/backoffice/accessibilita",
    ]
    .iter()
    .any(|s| path.starts_with(s))
}

/// Walks from `/backoffice/` breadth first: at most `max_pages` pages, at
/// most `per_path` different queries of one path (sorting and paging
/// links multiply otherwise). Downloads are opened but not parsed.
pub async fn walk(clerk: &Clerk, max_pages: usize, per_path: usize) -> Walk {
    let mut queue = VecDeque::from(["/backoffice/".to_string()]);
    let mut seen = BTreeSet::new();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    let mut form_keys = BTreeSet::new();
    let mut out = Walk::default();
    while let Some(url) = queue.pop_front() {
        if out.pages.len() >= max_pages {
            break;
        }
        if !seen.insert(url.clone()) {
            continue;
        }
        let path = url.split('?').next().unwrap_or("").to_string();
        let n = per.entry(path.clone()).or_default();
        if *n >= per_path {
            continue;
        }
        *n += 1;
        let answer = clerk.get(&url).await;
        out.pages.push((url.clone(), answer.status.as_u16()));
        if is_download(&url) || !answer.content_type.starts_with("text/html") {
            continue;
        }
        let html = answer.text();
        for link in links(&html) {
            let link = absolute(&url, &link);
            if link.starts_with("/backoffice/") && !skipped(&link) && !seen.contains(&link) {
                queue.push_back(link);
            }
        }
        for form in forms(&url, &html) {
            // Signing out and one's own password end or change the session
            // the walk goes on with.
            if form.action.starts_with("/backoffice/logout")
                || form.action.starts_with("/backoffice/password")
            {
                continue;
            }
            let key = format!(
                "{} {:?}",
                form.action,
                form.fields.iter().map(|(k, _)| k).collect::<Vec<_>>()
            );
            if form_keys.insert(key) {
                out.forms.push(form);
            }
        }
    }
    out
}

/// `link` as a path from the site's root.
fn absolute(page: &str, link: &str) -> String {
    let link = link.split('#').next().unwrap_or("");
    if link.starts_with('/') {
        link.to_string()
    } else if link.starts_with('?') {
        format!("{}{link}", page.split('?').next().unwrap_or(""))
    } else if link.is_empty() || link.contains("://") {
        String::new()
    } else {
        let dir = page.split('?').next().unwrap_or("");
        let dir = &dir[..dir.rfind('/').map(|i| i + 1).unwrap_or(0)];
        format!("{dir}{link}")
    }
}

/// HTML's escapes in attribute values, undone.
pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let mut rest = tag;
    let needle = format!("{name}=\"");
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().last();
        if before.is_none_or(|c| c.is_whitespace()) {
            let v = &rest[at + needle.len()..];
            return Some(unescape(&v[..v.find('"')?]));
        }
        rest = &rest[at + needle.len()..];
    }
    None
}

fn has_flag(tag: &str, name: &str) -> bool {
    tag.split(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .any(|w| w == name)
}

/// The tags named `name` in `html`, as their text up to `>`.
fn tags<'a>(html: &'a str, name: &str) -> Vec<(usize, &'a str)> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = html[from..].find(&open) {
        let start = from + at;
        let after = html[start + open.len()..].chars().next();
        if after.is_some_and(|c| c.is_whitespace() || c == '>') {
            let end = html[start..]
                .find('>')
                .map(|e| start + e + 1)
                .unwrap_or(html.len());
            out.push((start, &html[start..end]));
            from = end;
        } else {
            from = start + open.len();
        }
    }
    out
}

pub fn links(html: &str) -> Vec<String> {
    tags(html, "a")
        .into_iter()
        .filter_map(|(_, t)| attr(t, "href"))
        .collect()
}

/// The forms of a page, with their fields' values.
pub fn forms(page: &str, html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    for (start, tag) in tags(html, "form") {
        let method = attr(tag, "method").unwrap_or_default().to_ascii_lowercase();
        if method != "post" {
            continue;
        }
        let end = html[start..]
            .find("</form>")
            .map(|e| start + e)
            .unwrap_or(html.len());
        let body = &html[start..end];
        let action = attr(tag, "action")
            .map(|a| absolute(page, &a))
            .unwrap_or_else(|| page.to_string());
        let multipart = attr(tag, "enctype").is_some_and(|e| e.contains("multipart"));
        let mut fields = Vec::new();
        let mut files = Vec::new();
        for (_, input) in tags(body, "input") {
            let Some(name) = attr(input, "name") else {
                continue;
            };
            let kind = attr(input, "type").unwrap_or_else(|| "text".into());
            match kind.as_str() {
                "file" => files.push(name),
                "checkbox" | "radio" => {
                    if has_flag(input, "checked") {
                        fields.push((name, attr(input, "value").unwrap_or_else(|| "on".into())));
                    }
                }
                "submit" | "button" | "reset" | "image" => {}
                _ => fields.push((name, attr(input, "value").unwrap_or_default())),
            }
        }
        for (s, select) in tags(body, "select") {
            let Some(name) = attr(select, "name") else {
                continue;
            };
            let end = body[s..]
                .find("</select>")
                .map(|e| s + e)
                .unwrap_or(body.len());
            let options = tags(&body[s..end], "option");
            let chosen = options
                .iter()
                .find(|(_, o)| has_flag(o, "selected"))
                .or(options.first())
                .and_then(|(_, o)| attr(o, "value"))
                .unwrap_or_default();
            fields.push((name, chosen));
        }
        for (s, area) in tags(body, "textarea") {
            let Some(name) = attr(area, "name") else {
                continue;
            };
            let text_start = s + area.len();
            let text_end = body[text_start..]
                .find("</textarea>")
                .map(|e| text_start + e)
                .unwrap_or(text_start);
            fields.push((name, unescape(&body[text_start..text_end])));
        }
        out.push(Form {
            page: page.to_string(),
            action,
            multipart,
            fields,
            files,
        });
    }
    out
}

/// Sends `form` as `clerk` (their CSRF token in place of the one found):
/// an empty file for each file input.
pub async fn send(clerk: &Clerk, form: &Form) -> Answer {
    let fields: Vec<(&str, &str)> = form
        .fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if form.multipart || !form.files.is_empty() {
        let file = form.files.first().map(String::as_str).unwrap_or("file");
        clerk
            .post_file(&form.action, &fields, file, "vuoto.csv", Vec::new())
            .await
    } else {
        clerk.post(&form.action, &fields).await
    }
}

/// Whether an answer shows any of `markers`: a page's or a download's
/// text (an XLSX's strings are in its zip, stored uncompressed enough for
/// this only when small: XLSX bodies are unzipped).
pub fn shows_any(answer: &Answer, markers: &[String]) -> Option<String> {
    let text = if answer.content_type.contains("spreadsheetml") {
        xlsx_text(&answer.body)
    } else {
        answer.text()
    };
    markers.iter().find(|m| text.contains(m.as_str())).cloned()
}

fn xlsx_text(bytes: &[u8]) -> String {
    let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())) else {
        return String::new();
    };
    let mut all = String::new();
    for i in 0..zip.len() {
        if let Ok(mut f) = zip.by_index(i) {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut f, &mut s);
            all.push_str(&s);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_links_are_read_with_their_values() {
        let html = r#"<a href="/backoffice/posizioni?q=a&amp;b=c">x</a>
            <form method="post" action="/backoffice/posizioni/X1/annulla" enctype="multipart/form-data">
              <input type="hidden" name="csrf" value="t">
              <input type="text" name="nota" value="O&#39;Brien">
              <input type="checkbox" name="attivo" value="1" checked>
              <input type="checkbox" name="spento" value="1">
              <input type="file" name="file">
              <select name="anno"><option value="2025">2025</option><option value="2026" selected>2026</option></select>
              <textarea name="testo">riga &lt;1&gt;</textarea>
              <button type="submit">Invia</button>
            </form>
            <form method="get" action="/backoffice/posizioni"><input name="q"></form>"#;
        assert_eq!(links(html), ["/backoffice/posizioni?q=a&b=c"]);
        let f = forms("/backoffice/posizioni/X1", html);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].action, "/backoffice/posizioni/X1/annulla");
        assert!(f[0].multipart);
        assert_eq!(f[0].files, ["file"]);
        let v: Vec<(&str, &str)> = f[0]
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            v,
            [
                ("csrf", "t"),
                ("nota", "O'Brien"),
                ("attivo", "1"),
                ("anno", "2026"),
                ("testo", "riga <1>")
            ]
        );
        assert_eq!(
            absolute("/backoffice/a/b?x=1", "?y=2"),
            "/backoffice/a/b?y=2"
        );
        assert_eq!(absolute("/backoffice/a/b", "c"), "/backoffice/a/c");
    }
}
