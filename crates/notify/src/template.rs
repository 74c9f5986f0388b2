//! Message templates: `{{placeholder}}` text per kind and language.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateKind {
    Invitation,
    Reminder,
    Withdrawal,
    Paid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub markdown: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub markdown: String,
}

pub const PLACEHOLDERS: &[&str] = &[
    "ente",
    "service",
    "debtor_name",
    "amount",
    "notice_number",
    "due_date",
    "iuv",
    "payment_url",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    map: BTreeMap<String, String>,
}

/// Which part of a template an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Subject,
    Markdown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{field:?}: {len} characters, at least {min}")]
    TooShort {
        field: Field,
        len: usize,
        min: usize,
    },
    #[error("{field:?}: {len} characters, at most {max}")]
    TooLong {
        field: Field,
        len: usize,
        max: usize,
    },
    #[error("{field:?}: unknown placeholder {{{{{name}}}}}")]
    UnknownPlaceholder { field: Field, name: String },
    #[error("{field:?}: '{{{{' not closed at character {at}")]
    Unclosed { field: Field, at: usize },
    #[error("{field:?}: no value for {{{{{name}}}}}")]
    MissingValue { field: Field, name: String },
}

impl Values {
    pub fn new() -> Values {
        Values::default()
    }

    /// Builder form: `Values::new().with("ente", "Comune di Prova")`.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Values {
        self.set(name, value);
        self
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.map.insert(name.to_owned(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }
}

impl Template {
    pub fn validate(&self) -> Result<(), TemplateError> {
        todo!()
    }

    pub fn render(&self, values: &Values) -> Result<Rendered, TemplateError> {
        let _ = &values.map;
        todo!()
    }
}

pub fn default_template(kind: TemplateKind, language: &str) -> Template {
    let _ = (kind, language);
    todo!()
}
