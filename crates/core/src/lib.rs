//! incasso's domain core.
//!
//! Everything here is pure: no I/O, no async, no SQL, no HTTP, no XML. The
//! rules of pagoPA (notice numbers, fiscal codes, IBANs, the debt position
//! life cycle) live here so that every edge (HTTP, SOAP, files, database)
//! enforces exactly the same rules, and so that they can be tested with
//! property tests in milliseconds.

pub mod accertamento;
pub mod access;
pub mod catalogue;
pub mod codes;
pub mod ente;
pub mod error;
pub mod fdr;
pub mod fingerprint;
pub mod form;
pub mod money;
pub mod position;
pub mod redact;
pub mod taxonomy;
pub mod text;
pub mod treasury;

pub use error::{FieldError, Invalid};
pub use money::Cents;
pub mod sample;
pub mod time;
