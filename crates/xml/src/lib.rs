//! A small, hardened XML reader and a writer, for every XML incasso reads
//! or writes: pagoPA's SOAP messages, reporting flows (FdR), treasury
//! journals and collection orders.
//!
//! The reader builds a tree of namespace-resolved elements under hard limits
//! (bytes, depth, element count) and refuses what SOAP from the Node never
//! needs and attackers love: DTDs (so no entity expansion, billion laughs or
//! external entities), entity references other than XML's five and
//! character references, and processing instructions. A message that breaks
//! any rule is refused whole; nothing is half-read.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_elements: usize,
}

impl Default for Limits {
    /// A paSendRTV2 with five transfers and full metadata is about 10 KiB.
    fn default() -> Self {
        Limits {
            max_bytes: 512 * 1024,
            max_depth: 24,
            max_elements: 4_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("messaggio troppo grande ({0} byte)")]
    TooLarge(usize),
    #[error("annidamento troppo profondo")]
    TooDeep,
    #[error("troppi elementi")]
    TooManyElements,
    #[error("DTD non ammessa")]
    Dtd,
    #[error("entità non ammessa: &{0};")]
    Entity(String),
    #[error("XML malformato: {0}")]
    Malformed(String),
}

/// An element with its namespace URI (if bound), local name, attributes
/// (by local name), text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub namespace: Option<String>,
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The value of an attribute, by local name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed text of a direct child, if present.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

impl Element {
    /// The element as a document of its own: each element in a namespace
    /// gets a prefix declared where it is used (`ns0`, `ns1`, ... by depth),
    /// elements in none stay unprefixed, so that a payload taken out of a
    /// SOAP envelope keeps validating against its schema (pagoPA's elements
    /// are qualified, their children are not).
    pub fn to_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let name = match &self.namespace {
            Some(_) => format!("ns{depth}:{}", self.name),
            None => self.name.clone(),
        };
        out.push('<');
        out.push_str(&name);
        if let Some(ns) = &self.namespace {
            out.push_str(&format!(" xmlns:ns{depth}=\"{}\"", escape(ns)));
        }
        for (k, v) in &self.attributes {
            out.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        out.push('>');
        out.push_str(&escape(&self.text));
        for c in &self.children {
            c.write(out, depth + 1);
        }
        out.push_str("</");
        out.push_str(&name);
        out.push('>');
    }
}

pub fn parse(bytes: &[u8], limits: Limits) -> Result<Element, XmlError> {
    if bytes.len() > limits.max_bytes {
        return Err(XmlError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| XmlError::Malformed(format!("non è UTF-8 (al byte {})", e.valid_up_to())))?;
    // Files saved by Windows tools start with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let read = reader.read_resolved_event();
        let (ns, event) = match read {
            Ok(x) => x,
            Err(e) => {
                return Err(XmlError::Malformed(format!(
                    "{e} (al byte {})",
                    reader.error_position()
                )));
            }
        };
        // Only elements carry a namespace; resolved (and allocated) for
        // them alone.
        let namespace = || match &ns {
            ResolveResult::Bound(n) => Ok(Some(AsRef::<str>::as_ref(n).to_string())),
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(p) => Err(XmlError::Malformed(format!(
                "prefisso di namespace non dichiarato: {p}"
            ))),
        };
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err(XmlError::Malformed(
                    "contenuto dopo l'elemento radice".into(),
                ));
            }
            Event::Start(e) => {
                count += 1;
                if count > limits.max_elements {
                    return Err(XmlError::TooManyElements);
                }
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep);
                }
                stack.push(Element {
                    namespace: namespace()?,
                    name: AsRef::<str>::as_ref(&e.local_name()).to_string(),
                    attributes: attributes(&e)?,
                    ..Default::default()
                });
            }
            Event::Empty(e) => {
                count += 1;
                if count > limits.max_elements {
                    return Err(XmlError::TooManyElements);
                }
                let element = Element {
                    namespace: namespace()?,
                    name: AsRef::<str>::as_ref(&e.local_name()).to_string(),
                    attributes: attributes(&e)?,
                    ..Default::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("chiusura inattesa".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    // Indentation before an element's first child: readers
                    // trim text, and keeping it costs an allocation per
                    // element.
                    Some(top) if top.text.is_empty() && content.trim().is_empty() => {}
                    Some(top) => top.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => {
                        return Err(XmlError::Malformed(
                            "testo fuori dall'elemento radice".into(),
                        ));
                    }
                }
            }
            Event::CData(t) => match stack.last_mut() {
                Some(top) => top.text.push_str(&t.xml10_content()),
                None => {
                    return Err(XmlError::Malformed(
                        "CDATA fuori dall'elemento radice".into(),
                    ));
                }
            },
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| XmlError::Malformed(e.to_string()))?
                        .ok_or_else(|| {
                            XmlError::Malformed("riferimento a carattere non valido".into())
                        })?
                } else {
                    match r.xml10_content().as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(XmlError::Entity(other.to_string())),
                    }
                };
                match stack.last_mut() {
                    Some(top) => top.text.push(ch),
                    None => {
                        return Err(XmlError::Malformed(
                            "riferimento fuori dall'elemento radice".into(),
                        ));
                    }
                }
            }
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::PI(_) => {
                return Err(XmlError::Malformed(
                    "istruzioni di elaborazione non ammesse".into(),
                ));
            }
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed("documento troncato".into()));
    }
    root.ok_or_else(|| XmlError::Malformed("documento vuoto".into()))
}

/// An element's attributes by local name, namespace declarations left out.
/// Their values may hold only XML's five entities and character
/// references, like text.
fn attributes(e: &quick_xml::events::BytesStart<'_>) -> Result<Vec<(String, String)>, XmlError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = a.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        out.push((
            AsRef::<str>::as_ref(&key.local_name()).to_string(),
            value.into_owned(),
        ));
    }
    Ok(out)
}

/// Escapes text for element content.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Writes elements into a string. Element names are the caller's constants;
/// text is always escaped.
#[derive(Default)]
pub struct Writer {
    pub out: String,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            out: String::with_capacity(2048),
        }
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.out.push_str(&escape(text));
        self.close(name)
    }

    pub fn leaf_opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            self.leaf(name, t);
        }
        self
    }

    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.out.push_str(s);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_text_and_predefined_entities() {
        let doc = br#"<?xml version="1.0"?><a:root xmlns:a="urn:x"><child>Rossi &amp; figli &#233;</child><empty/></a:root>"#;
        let root = parse(doc, Limits::default()).unwrap();
        assert_eq!(root.namespace.as_deref(), Some("urn:x"));
        assert_eq!(root.name, "root");
        assert_eq!(root.text_of("child"), Some("Rossi & figli é"));
        assert!(root.child("empty").is_some());
        assert_eq!(root.child("child").unwrap().namespace, None);
    }

    #[test]
    fn refuses_dtds_entities_and_abuse() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><r>&lol2;</r>"#;
        assert_eq!(parse(bomb, Limits::default()), Err(XmlError::Dtd));
        let xxe = br#"<r>&xxe;</r>"#;
        assert_eq!(
            parse(xxe, Limits::default()),
            Err(XmlError::Entity("xxe".into()))
        );
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert_eq!(
            parse(deep.as_bytes(), Limits::default()),
            Err(XmlError::TooDeep)
        );
        let many = format!("<r>{}</r>", "<a/>".repeat(10_000));
        assert_eq!(
            parse(many.as_bytes(), Limits::default()),
            Err(XmlError::TooManyElements)
        );
        let big = vec![b' '; 600 * 1024];
        assert!(matches!(
            parse(&big, Limits::default()),
            Err(XmlError::TooLarge(_))
        ));
        assert!(matches!(
            parse(b"<a><b></a>", Limits::default()),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"<a>", Limits::default()),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"<p:a/>", Limits::default()),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"<a/><b/>", Limits::default()),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"", Limits::default()),
            Err(XmlError::Malformed(_))
        ));
    }

    #[test]
    fn writer_escapes() {
        let mut w = Writer::new();
        w.open("a")
            .leaf("b", "<Rossi & 'figli'>")
            .leaf_opt("c", None)
            .close("a");
        assert_eq!(w.out, "<a><b>&lt;Rossi &amp; &apos;figli&apos;&gt;</b></a>");
    }
}
