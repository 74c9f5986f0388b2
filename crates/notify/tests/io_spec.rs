//! Every request the App IO client sends is valid against IO's own spec
//! (`shared/spec/io/io-functions-services.index.yaml`, which wins over the
//! commons definitions for the Services API, see SOURCES.md).
//!
//! The workspace has no YAML parser, so this test reads the definitions it
//! needs with a small indentation walker, enough for the block style of
//! that file, and checks the JSON the client really put on the wire
//! (caught by a bare HTTP listener) against them: `$ref`, `allOf`,
//! `properties` (no property outside them), `required`, `type`,
//! `minLength`/`maxLength`, `minimum`/`maximum`, `pattern`, `enum`, and the
//! `format`s of `@pagopa/ts-commons` the definitions use: `FiscalCode`
//! (the spec's own `FiscalCode` parameter pattern), `OrganizationFiscalCode`
//! (11 digits) and `UTCISODateFromString` (ISO 8601 in UTC).
//! The walker itself is tested on spoiled bodies, so it can fail.

use chrono::{TimeZone, Utc};
use incasso_notify::io::{IoClient, MessageContent, NewMessage, PaymentData};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The copy in `crates/testkit/spec/io/` (a clean checkout tests on its
/// own); [`the_copy_is_the_shared_spec`] compares it with the original.
const SPEC: &str = include_str!("../../testkit/spec/io/io-functions-services.index.yaml");

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// The lines of a mapping (its keys at the smallest indentation).
#[derive(Clone, Debug)]
struct Block(Vec<String>);

impl Block {
    fn base(&self) -> usize {
        self.0
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| indent(l))
            .min()
            .unwrap_or(0)
    }

    /// The line index of a direct key.
    fn key_line(&self, key: &str) -> Option<usize> {
        let base = self.base();
        self.0.iter().position(|l| {
            indent(l) == base
                && (l.trim() == format!("{key}:") || l.trim().starts_with(&format!("{key}: ")))
        })
    }

    /// A direct key's scalar value, unquoted.
    fn scalar(&self, key: &str) -> Option<String> {
        let l = &self.0[self.key_line(key)?];
        let v = l.trim()[key.len() + 1..].trim();
        if v.starts_with('>') || v.starts_with('|') {
            // A block scalar (`pattern: >-` and its lines below).
            let lines = self.child(key)?;
            let sep = if v.starts_with('>') { " " } else { "\n" };
            return Some(
                lines
                    .0
                    .iter()
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(sep),
            );
        }
        if v.is_empty() {
            return None;
        }
        Some(v.trim_matches('\'').trim_matches('"').to_string())
    }

    /// A direct key's nested block.
    fn child(&self, key: &str) -> Option<Block> {
        let i = self.key_line(key)?;
        let base = indent(&self.0[i]);
        let lines: Vec<String> = self.0[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || indent(l) > base)
            .cloned()
            .collect();
        (!lines.is_empty()).then_some(Block(lines))
    }

    fn keys(&self) -> Vec<String> {
        let base = self.base();
        self.0
            .iter()
            .filter(|l| indent(l) == base && !l.trim_start().starts_with("- "))
            .filter_map(|l| l.trim().split(':').next().map(str::to_string))
            .collect()
    }

    /// A list's items, each as a block (`- a: 1` becomes `  a: 1`).
    fn items(&self) -> Vec<Block> {
        let base = self.base();
        let mut items: Vec<Block> = Vec::new();
        for l in &self.0 {
            if indent(l) == base && l.trim_start().starts_with("- ") {
                items.push(Block(vec![format!(
                    "{}  {}",
                    " ".repeat(base),
                    &l.trim_start()[2..]
                )]));
            } else if let Some(last) = items.last_mut() {
                last.0.push(l.clone());
            }
        }
        items
    }

    /// A list of scalars (`required`, `enum`).
    fn strings(&self) -> Vec<String> {
        self.items()
            .iter()
            .map(|b| b.0[0].trim().trim_matches('\'').to_string())
            .collect()
    }
}

struct Spec {
    definitions: Block,
    parameters: Block,
}

impl Spec {
    fn load() -> Spec {
        let root = Block(SPEC.lines().map(str::to_string).collect());
        Spec {
            definitions: root.child("definitions").expect("definitions"),
            parameters: root.child("parameters").expect("parameters"),
        }
    }

    fn definition(&self, name: &str) -> Block {
        self.definitions
            .child(name)
            .unwrap_or_else(|| panic!("no definition {name}"))
    }

    fn resolve(&self, schema: &Block) -> Option<Block> {
        schema
            .scalar("$ref")
            .map(|r| self.definition(r.strip_prefix("#/definitions/").expect("a local $ref")))
    }

    /// Every property a schema allows, through `$ref` and `allOf`.
    fn properties(&self, schema: &Block) -> Vec<String> {
        if let Some(target) = self.resolve(schema) {
            return self.properties(&target);
        }
        let mut out = schema
            .child("properties")
            .map(|p| p.keys())
            .unwrap_or_default();
        for branch in schema.child("allOf").map(|a| a.items()).unwrap_or_default() {
            out.extend(self.properties(&branch));
        }
        out
    }

    /// Checks `v` at `at` against `schema`; `whole` also refuses
    /// properties the schema does not define (not for one `allOf` branch).
    fn check(&self, schema: &Block, v: &Value, at: &str, whole: bool, errors: &mut Vec<String>) {
        if let Some(target) = self.resolve(schema) {
            return self.check(&target, v, at, whole, errors);
        }
        for branch in schema.child("allOf").map(|a| a.items()).unwrap_or_default() {
            self.check(&branch, v, at, false, errors);
        }
        let mut fail = |what: String| errors.push(format!("{at}: {what} (got {v})"));
        match schema.scalar("type").as_deref() {
            Some("object") if !v.is_object() => return fail("not an object".into()),
            Some("string") if !v.is_string() => return fail("not a string".into()),
            Some("integer") if !(v.is_i64() || v.is_u64()) => return fail("not an integer".into()),
            Some("boolean") if !v.is_boolean() => return fail("not a boolean".into()),
            _ => {}
        }
        if let Some(s) = v.as_str() {
            let len = s.chars().count();
            if let Some(min) = schema.scalar("minLength")
                && len < min.parse().unwrap()
            {
                fail(format!("shorter than minLength {min}"));
            }
            if let Some(max) = schema.scalar("maxLength")
                && len > max.parse().unwrap()
            {
                fail(format!("longer than maxLength {max}"));
            }
            if let Some(p) = schema.scalar("pattern")
                && !matches_pattern(&p, s)
            {
                fail(format!("does not match {p}"));
            }
            if let Some(values) = schema.child("enum")
                && !values.strings().iter().any(|x| x == s)
            {
                fail("not in enum".into());
            }
            match schema.scalar("format").as_deref() {
                Some("FiscalCode") => {
                    let p = self
                        .parameters
                        .child("FiscalCode")
                        .and_then(|f| f.scalar("pattern"))
                        .expect("the FiscalCode parameter's pattern");
                    if !matches_pattern(&p, s) {
                        fail(format!("not a FiscalCode ({p})"));
                    }
                }
                Some("OrganizationFiscalCode") if !matches_pattern("^[0-9]{11}$", s) => {
                    fail("not an OrganizationFiscalCode".into())
                }
                Some("UTCISODateFromString")
                    if chrono::DateTime::parse_from_rfc3339(s)
                        .map(|d| d.offset().local_minus_utc())
                        != Ok(0) =>
                {
                    fail("not an ISO 8601 UTC timestamp".into())
                }
                _ => {}
            }
        }
        if let Some(n) = v.as_i64() {
            if let Some(min) = schema.scalar("minimum")
                && n < min.parse().unwrap()
            {
                fail(format!("below minimum {min}"));
            }
            if let Some(max) = schema.scalar("maximum")
                && n > max.parse().unwrap()
            {
                fail(format!("above maximum {max}"));
            }
        }
        if let Some(obj) = v.as_object() {
            for name in schema
                .child("required")
                .map(|r| r.strings())
                .unwrap_or_default()
            {
                if !obj.contains_key(&name) {
                    errors.push(format!("{at}: required {name} missing"));
                }
            }
            let props = schema.child("properties");
            for (k, x) in obj {
                if let Some(p) = props.as_ref().and_then(|p| p.child(k)) {
                    self.check(&p, x, &format!("{at}.{k}"), true, errors);
                }
            }
            if whole {
                let known = self.properties(schema);
                for k in obj.keys() {
                    if !known.contains(k) {
                        errors.push(format!("{at}: {k} is not a property of the definition"));
                    }
                }
            }
        }
    }

    fn validate(&self, definition: &str, v: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(&self.definition(definition), v, "root", true, &mut errors);
        errors
    }
}

/// The patterns of this spec: `^`, `$`, character classes with ranges and
/// literal characters, each with an optional `{n}`; matched whole.
fn matches_pattern(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern
        .trim_start_matches('^')
        .trim_end_matches('$')
        .chars()
        .collect();
    let mut atoms: Vec<(Vec<(char, char)>, usize)> = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let mut class = Vec::new();
        if p[i] == '[' {
            i += 1;
            while p[i] != ']' {
                if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                    class.push((p[i], p[i + 2]));
                    i += 3;
                } else {
                    class.push((p[i], p[i]));
                    i += 1;
                }
            }
        } else {
            class.push((p[i], p[i]));
        }
        i += 1;
        let mut count = 1;
        if i < p.len() && p[i] == '{' {
            let end = i + p[i..].iter().position(|c| *c == '}').unwrap();
            count = p[i + 1..end].iter().collect::<String>().parse().unwrap();
            i = end + 1;
        }
        atoms.push((class, count));
    }
    let mut chars = s.chars();
    for (class, count) in atoms {
        for _ in 0..count {
            match chars.next() {
                Some(c) if class.iter().any(|(a, b)| (*a..=*b).contains(&c)) => {}
                _ => return false,
            }
        }
    }
    chars.next().is_none()
}

struct Captured {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

/// A bare HTTP/1.1 listener that records each request and answers as IO
/// would a good one.
fn capture() -> (String, Arc<Mutex<Vec<Captured>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .map(|(_, v)| v.parse().unwrap())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let (status, answer) = if path.ends_with("/profiles") {
                        (
                            "200 OK",
                            r#"{"sender_allowed":true,"preferred_languages":["it_IT"]}"#,
                        )
                    } else {
                        ("201 Created", r#"{"id":"01BX9NSMKVXXS5PSP2FATZMYYY"}"#)
                    };
                    seen.lock().unwrap().push(Captured {
                        method,
                        path,
                        headers,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    let _ = write!(
                        writer,
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                }
            });
        }
    });
    (url, out)
}

fn messages() -> Vec<NewMessage> {
    let full = NewMessage {
        fiscal_code: "RSSMRA80A01H501U".into(),
        time_to_live: Some(604_800),
        content: MessageContent {
            subject: "Avviso di pagamento: TARI".into(),
            markdown: "Gentile Mario Rossi,\n\nil Comune le comunica che è disponibile l'avviso di pagamento per **TARI 2026**.".into(),
            payment_data: Some(PaymentData {
                amount: 9_999_999_999,
                notice_number: "001000000000000017".into(),
                invalid_after_due_date: true,
                payee_fiscal_code: Some("80000130585".into()),
            }),
            due_date: Some(Utc.with_ymd_and_hms(2026, 12, 31, 22, 59, 59).unwrap()),
        },
    };
    let mut bare = full.clone();
    bare.fiscal_code = "RSSMRA80A01H50MU".into(); // omocodic
    bare.time_to_live = None;
    bare.content.payment_data = None;
    bare.content.due_date = None;
    let mut no_payee = full.clone();
    no_payee
        .content
        .payment_data
        .as_mut()
        .unwrap()
        .payee_fiscal_code = None;
    vec![full, bare, no_payee]
}

#[tokio::test]
async fn what_the_client_sends_is_valid_by_the_spec() {
    let spec = Spec::load();
    let (url, seen) = capture();
    let client = IoClient::new(&url, Duration::from_secs(5)).unwrap();
    client.profile("the-key", "RSSMRA80A01H501U").await.unwrap();
    for m in messages() {
        assert_eq!(
            client.send("the-key", &m).await.unwrap(),
            "01BX9NSMKVXXS5PSP2FATZMYYY"
        );
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    for c in seen.iter() {
        // `securityDefinitions.SubscriptionKey`: the key in its header.
        assert!(
            c.headers
                .contains(&("ocp-apim-subscription-key".into(), "the-key".into()))
        );
        assert!(
            c.headers
                .iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("application/json"))
        );
        assert_eq!(c.method, "POST");
    }
    // getProfileByPOST: body FiscalCodePayload.
    assert_eq!(seen[0].path, "/api/v1/profiles");
    assert_eq!(
        spec.validate("FiscalCodePayload", &seen[0].body),
        Vec::<String>::new()
    );
    // submitMessageforUserWithFiscalCodeInBody: body NewMessage, with the
    // fiscal code in it (the operation needs it, though the definition
    // does not require it).
    for c in &seen[1..] {
        assert_eq!(c.path, "/api/v1/messages");
        assert_eq!(
            spec.validate("NewMessage", &c.body),
            Vec::<String>::new(),
            "{}",
            c.body
        );
        assert!(c.body["fiscal_code"].is_string());
    }
    assert_eq!(
        seen[1].body["content"]["payment_data"]["payee"]["fiscal_code"],
        "80000130585"
    );
    assert!(
        seen[3].body["content"]["payment_data"]
            .get("payee")
            .is_none()
    );
}

#[test]
fn the_copy_is_the_shared_spec() {
    let original = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/spec/io/io-functions-services.index.yaml"
    );
    if let Ok(text) = std::fs::read_to_string(original) {
        assert_eq!(text, SPEC, "crates/testkit/spec/io differs from {original}");
    }
}

#[test]
fn the_walker_reads_the_spec_and_refuses_spoiled_bodies() {
    let spec = Spec::load();
    assert_eq!(
        spec.properties(&spec.definition("NewMessage")),
        [
            "time_to_live",
            "content",
            "default_addresses",
            "fiscal_code",
            "feature_level_type"
        ]
    );
    assert!(
        spec.properties(&spec.definition("MessageContent"))
            .contains(&"payment_data".to_string())
    );
    let good = messages()[0].to_json();
    assert_eq!(spec.validate("NewMessage", &good), Vec::<String>::new());
    type Spoil = Box<dyn Fn(&mut Value)>;
    let spoiled: Vec<(&str, Spoil)> = vec![
        (
            "root: required content missing",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("content");
            }),
        ),
        (
            "root.content.subject: shorter than minLength 10",
            Box::new(|v| v["content"]["subject"] = json!("Breve")),
        ),
        (
            "root.content.subject: longer than maxLength 120",
            Box::new(|v| v["content"]["subject"] = json!("x".repeat(121))),
        ),
        (
            "root.content.markdown: shorter than minLength 80",
            Box::new(|v| v["content"]["markdown"] = json!("x".repeat(79))),
        ),
        (
            "root.content: required markdown missing",
            Box::new(|v| {
                v["content"].as_object_mut().unwrap().remove("markdown");
            }),
        ),
        (
            "root.time_to_live: below minimum 3600",
            Box::new(|v| v["time_to_live"] = json!(60)),
        ),
        (
            "root.time_to_live: above maximum 604800",
            Box::new(|v| v["time_to_live"] = json!(604_801)),
        ),
        (
            "root.fiscal_code: not a FiscalCode",
            Box::new(|v| v["fiscal_code"] = json!("RSSMRA80A01H501")),
        ),
        (
            "root.content.payment_data.amount: below minimum 1",
            Box::new(|v| v["content"]["payment_data"]["amount"] = json!(0)),
        ),
        (
            "root.content.payment_data.amount: not an integer",
            Box::new(|v| v["content"]["payment_data"]["amount"] = json!("246")),
        ),
        (
            "root.content.payment_data.notice_number: does not match",
            Box::new(|v| {
                v["content"]["payment_data"]["notice_number"] = json!("401000000000000017")
            }),
        ),
        (
            "root.content.payment_data: required notice_number missing",
            Box::new(|v| {
                v["content"]["payment_data"]
                    .as_object_mut()
                    .unwrap()
                    .remove("notice_number");
            }),
        ),
        (
            "root.content.payment_data.payee.fiscal_code: not an OrganizationFiscalCode",
            Box::new(|v| {
                v["content"]["payment_data"]["payee"]["fiscal_code"] = json!("IT80000130585")
            }),
        ),
        (
            "root.content.payment_data.payee: required fiscal_code missing",
            Box::new(|v| v["content"]["payment_data"]["payee"] = json!({})),
        ),
        (
            "root.content.payment_data.invalid_after_due_date: not a boolean",
            Box::new(|v| v["content"]["payment_data"]["invalid_after_due_date"] = json!("no")),
        ),
        (
            "root.content.due_date: not an ISO 8601 UTC timestamp",
            Box::new(|v| v["content"]["due_date"] = json!("2026-12-31T23:59:00+01:00")),
        ),
        (
            "root.content: amount_cents is not a property",
            Box::new(|v| v["content"]["amount_cents"] = json!(1)),
        ),
        (
            "root.content.payment_data: payee_fiscal_code is not a property",
            Box::new(|v| v["content"]["payment_data"]["payee_fiscal_code"] = json!("80000130585")),
        ),
    ];
    for (expected, spoil) in spoiled {
        let mut v = good.clone();
        spoil(&mut v);
        let errors = spec.validate("NewMessage", &v);
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{expected}: {errors:?}"
        );
    }
    assert!(matches_pattern("^[0123][0-9]{17}$", "301000000000000017"));
    assert!(!matches_pattern("^[0123][0-9]{17}$", "3010000000000000171"));
}
