//! Digit BUS: management applications keep their own file layouts.
//!
//! - [`layout`]: a layout (*tracciato*) is a TOML document: format,
//!   encoding, field rules, grouping, operations, outcome and export. Data,
//!   never code.
//! - [`read`]: streaming readers for delimited, fixed-width and JSON files in
//!   UTF-8, Windows-1252, ISO-8859-1 and ISO-8859-15.
//! - [`normalize`]: records to rows to debt positions, with row-level errors
//!   (line, field, value, reason).
//! - [`builtin`]: the layouts incasso ships.
//! - [`accertamenti`]: a year's budget of accertamenti, as a clerk's CSV.
//!
//! This crate does no I/O of its own beyond reading what it is handed: the
//! server loads supplies into the store.

pub mod accertamenti;
pub mod builtin;
pub mod layout;
pub mod normalize;
pub mod read;
pub mod treasury;

pub use layout::Layout;
