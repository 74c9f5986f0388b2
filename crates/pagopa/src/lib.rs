//! incasso's side of the pagoPA interfaces.
//!
//! - [`wire`]: the `paForNode` SOAP messages (SANP 3.x): requests from the
//!   Node parsed with XSD-level checks, responses written in the XSD's order
//!   and lengths, and the Node's own side of the same messages for the
//!   simulator.
//! - [`xml`]: the hardened reader behind them (no DTD, no entities, limits).
//! - [`fault`]: the fault codes of the KO answers.
//! - [`connector`]: outbound calls to the Node, one trait for every
//!   intermediary and station, with SOAP and REST transports.
//! - [`pos`]: the POS gateway's creditor side (physical card terminals).
//!
//! Nothing here touches the database: the server crate decides what to
//! answer, this crate only says it in pagoPA's words.

pub mod connector;
pub mod fault;
pub mod pos;
pub mod wire;
pub use incasso_xml as xml;
