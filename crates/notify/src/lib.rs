//! Telling citizens about their positions: the App IO services API client
//! ([`io`]) and the message templates ([`template`]). No database here: the
//! outbox that decides when and to whom lives in the store and the app.

pub mod email;
pub mod io;
pub mod template;
