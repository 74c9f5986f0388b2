//! Reconciliation, the pure part: what a PSP reported and what the treasury
//! received, read and checked, and matched to each other.
//!
//! - [`causale`]: the bank transfer's causale, read the way banks write it
//!   (spaces inside markers, text around them), into the flow it pays or
//!   the single payment of the old forms.
//! - [`fdr`]: reporting flows (`FlussoRiversamento` 1.0.4 and 1.0.5),
//!   read with the schema's rules, and written for the simulator.
//!
//! Nothing here touches the database or the network.

pub mod causale;
pub mod fdr;
