//! Who may call `paForNode`. pagoPA's Node reaches an Ente's station from
//! known addresses, through a TLS terminator that may ask for its client
//! certificate, and, where the station's configuration on pagoPA's side
//! has one, with a subscription key in `Ocp-Apim-Subscription-Key`. A
//! receipt posted by anyone else would mark a debt paid: incasso checks
//! the address and the key it is given (docs/DEPLOY.md says how to set
//! them and the certificate, which is the terminator's).

use crate::portal::limit::{Cidr, LimitSettings, SettingError, client_ip};
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

/// The Node's addresses and key; neither set lets every caller in (a
/// station on a private network behind a terminator that checks the
/// certificate, or a test).
#[derive(Debug, Clone, Default)]
pub struct NodeAccess {
    allowed: Vec<Cidr>,
    key_digest: Option<[u8; 32]>,
}

/// Why a call was refused (logged; the caller gets 403 and no detail).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Address(std::net::IpAddr),
    Key,
}

impl NodeAccess {
    /// From `10.0.0.0/8, 2001:db8::/32` (empty: any address) and the key
    /// (empty: none asked).
    pub fn new(allowed: &str, key: &str) -> Result<NodeAccess, SettingError> {
        Ok(NodeAccess {
            allowed: allowed
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(Cidr::parse)
                .collect::<Result<_, _>>()?,
            key_digest: Some(key.trim())
                .filter(|k| !k.is_empty())
                .map(|k| Sha256::digest(k.as_bytes()).into()),
        })
    }

    /// The request's client (through the trusted proxies of `proxies`)
    /// is among the Node's addresses and brings the key.
    pub fn admit(&self, parts: &Parts, proxies: &LimitSettings) -> Result<(), Refused> {
        if !self.allowed.is_empty() {
            let client = client_ip(parts, proxies);
            if !self.allowed.iter().any(|c| c.contains(client)) {
                return Err(Refused::Address(client));
            }
        }
        if let Some(want) = &self.key_digest {
            // Digests compared, not the keys: equal length, and no early
            // exit that times how much of the key was right.
            let given: [u8; 32] = Sha256::digest(
                parts
                    .headers
                    .get("ocp-apim-subscription-key")
                    .map(|v| v.as_bytes())
                    .unwrap_or_default(),
            )
            .into();
            if given.iter().zip(want).fold(0u8, |d, (a, b)| d | (a ^ b)) != 0 {
                return Err(Refused::Key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;

    fn parts(peer: &str, key: Option<&str>, forwarded: Option<&str>) -> Parts {
        let mut b = axum::http::Request::builder().uri("/pagopa/paForNode");
        if let Some(k) = key {
            b = b.header("Ocp-Apim-Subscription-Key", k);
        }
        if let Some(f) = forwarded {
            b = b.header("X-Forwarded-For", f);
        }
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        parts
    }

    #[test]
    fn nothing_set_admits_everyone() {
        let open = NodeAccess::new("", "").unwrap();
        assert_eq!(
            open.admit(
                &parts("203.0.113.9:4000", None, None),
                &LimitSettings::default()
            ),
            Ok(())
        );
    }

    #[test]
    fn addresses_and_key_are_both_required() {
        let a = NodeAccess::new("10.1.0.0/16, 192.0.2.7", "node-key").unwrap();
        let none = LimitSettings::default();
        assert_eq!(
            a.admit(&parts("10.1.2.3:1", Some("node-key"), None), &none),
            Ok(())
        );
        assert_eq!(
            a.admit(&parts("192.0.2.7:1", Some("node-key"), None), &none),
            Ok(())
        );
        assert_eq!(
            a.admit(&parts("10.2.0.1:1", Some("node-key"), None), &none),
            Err(Refused::Address("10.2.0.1".parse().unwrap()))
        );
        assert_eq!(
            a.admit(&parts("10.1.2.3:1", None, None), &none),
            Err(Refused::Key)
        );
        assert_eq!(
            a.admit(&parts("10.1.2.3:1", Some("node-kez"), None), &none),
            Err(Refused::Key)
        );
        // A forwarded address counts only through a trusted proxy.
        assert!(
            a.admit(
                &parts("127.0.0.1:1", Some("node-key"), Some("10.1.0.5")),
                &none
            )
            .is_err()
        );
        let mut proxied = LimitSettings::default();
        proxied.set_trusted_proxies("127.0.0.1").unwrap();
        assert_eq!(
            a.admit(
                &parts("127.0.0.1:1", Some("node-key"), Some("10.1.0.5")),
                &proxied
            ),
            Ok(())
        );
    }

    #[test]
    fn a_bad_range_is_refused() {
        assert!(NodeAccess::new("10.0.0.0/99", "").is_err());
    }
}
