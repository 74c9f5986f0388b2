//! Secrets at rest: the stations' credentials (subscription keys, basic
//! passwords, client-certificate private keys) are sealed with
//! ChaCha20-Poly1305 (ring's AEAD, already linked for TLS) before they are
//! written, and opened when read. A sealed value reads
//! `sealed:v1:<key id>:<nonce hex>:<ciphertext hex>`; the key id is the
//! first bytes of the key's SHA-256, so a value sealed with another key is
//! named, not mistaken.
//!
//! The key is 32 random bytes, from `INCASSO_SECRET_KEY` (64 hex digits)
//! or a file in the data directory created at first start with mode 0600.
//! Rotation: start with `INCASSO_SECRET_KEY_PREVIOUS` set to the old key
//! and the new key in place; every sealed value is opened with whichever
//! key sealed it and resealed with the new one at start
//! ([`crate::Store::reseal_secrets`]).

use crate::{Result, StoreError};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const PREFIX: &str = "sealed:v1:";

/// A key that seals and opens secrets.
pub struct SecretKey {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn bad_key(why: &str) -> StoreError {
    StoreError::Config(format!("chiave dei segreti: {why}"))
}

impl SecretKey {
    /// From 64 hex digits.
    pub fn from_hex(text: &str) -> Result<SecretKey> {
        let bytes = unhex(text.trim()).ok_or_else(|| bad_key("servono 64 cifre esadecimali"))?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKey> {
        if bytes.len() != 32 {
            return Err(bad_key("servono 32 byte (64 cifre esadecimali)"));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).map_err(|_| bad_key("non valida"))?;
        Ok(SecretKey {
            id: hex(&digest.as_ref()[..4]),
            key: LessSafeKey::new(key),
        })
    }

    /// A new random key, as 64 hex digits.
    pub fn generate_hex() -> Result<String> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| bad_key("nessuna sorgente casuale"))?;
        Ok(hex(&bytes))
    }

    /// The key named by `INCASSO_SECRET_KEY`, else the one in `file`,
    /// created (mode 0600) when missing.
    pub fn load_or_create(file: &std::path::Path) -> Result<SecretKey> {
        if let Ok(text) = std::env::var("INCASSO_SECRET_KEY")
            && !text.trim().is_empty()
        {
            return Self::from_hex(&text);
        }
        match std::fs::read_to_string(file) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = Self::generate_hex()?;
                write_private(file, &text)
                    .map_err(|e| bad_key(&format!("{}: {e}", file.display())))?;
                Self::from_hex(&text)
            }
            Err(e) => Err(bad_key(&format!("{}: {e}", file.display()))),
        }
    }

    /// How every value this key seals begins.
    pub fn sealed_prefix(&self) -> String {
        format!("{PREFIX}{}:", self.id)
    }

    /// Seals `plain`.
    pub fn seal(&self, plain: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| bad_key("nessuna sorgente casuale"))?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PREFIX.as_bytes()),
                &mut data,
            )
            .map_err(|_| bad_key("cifratura non riuscita"))?;
        Ok(format!(
            "{PREFIX}{}:{}:{}",
            self.id,
            hex(&nonce),
            hex(&data)
        ))
    }

    /// Opens a sealed value; `None` if it was sealed with another key.
    fn open(&self, sealed: &str) -> Result<Option<String>> {
        let rest = &sealed[PREFIX.len()..];
        let mut parts = rest.splitn(3, ':');
        let (Some(id), Some(nonce), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(StoreError::Corrupt("segreto sigillato illeggibile".into()));
        };
        if id != self.id {
            return Ok(None);
        }
        let nonce: [u8; 12] = unhex(nonce)
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| StoreError::Corrupt("nonce del segreto illeggibile".into()))?;
        let mut data =
            unhex(data).ok_or_else(|| StoreError::Corrupt("segreto illeggibile".into()))?;
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PREFIX.as_bytes()),
                &mut data,
            )
            .map_err(|_| StoreError::Corrupt("segreto alterato o di un'altra chiave".into()))?;
        String::from_utf8(plain.to_vec())
            .map(Some)
            .map_err(|_| StoreError::Corrupt("segreto non UTF-8".into()))
    }
}

/// The keys a store seals with (`current`) and opens with (also
/// `previous`, during a rotation).
#[derive(Debug, Default)]
pub struct Keyring {
    pub current: Option<SecretKey>,
    pub previous: Option<SecretKey>,
}

impl Keyring {
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    /// Seals with the current key; without one, the value stays plain (a
    /// store opened for tests or tools that hold no secrets).
    pub fn seal(&self, plain: &str) -> Result<String> {
        match &self.current {
            Some(k) => k.seal(plain),
            None => Ok(plain.to_string()),
        }
    }

    /// Opens a value, sealed or (written before sealing existed) plain.
    pub fn open(&self, value: &str) -> Result<String> {
        if !Self::is_sealed(value) {
            return Ok(value.to_string());
        }
        for key in [&self.current, &self.previous].into_iter().flatten() {
            if let Some(plain) = key.open(value)? {
                return Ok(plain);
            }
        }
        Err(StoreError::Config(
            "un segreto è sigillato con una chiave che non è configurata (INCASSO_SECRET_KEY, o il file secret.key della cartella dati; durante una rotazione INCASSO_SECRET_KEY_PREVIOUS)".into(),
        ))
    }
}

#[cfg(unix)]
fn write_private(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(file: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(file, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_with_their_key_only() {
        let a = SecretKey::from_hex(&SecretKey::generate_hex().unwrap()).unwrap();
        let b = SecretKey::from_hex(&SecretKey::generate_hex().unwrap()).unwrap();
        let sealed = a.seal("{\"key\":\"segreto\"}").unwrap();
        assert!(!sealed.contains("segreto"), "{sealed}");
        assert_ne!(
            sealed,
            a.seal("{\"key\":\"segreto\"}").unwrap(),
            "fresh nonce"
        );
        let ring_a = Keyring {
            current: Some(a),
            previous: None,
        };
        assert_eq!(ring_a.open(&sealed).unwrap(), "{\"key\":\"segreto\"}");
        // Another key: named as missing, not mistaken for garbage.
        let ring_b = Keyring {
            current: Some(b),
            previous: None,
        };
        assert!(ring_b.open(&sealed).is_err());
        // Tampered: refused.
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(ring_a.open(&tampered).is_err());
        // During a rotation the previous key still opens.
        let rotating = Keyring {
            current: ring_b.current,
            previous: ring_a.current,
        };
        assert_eq!(rotating.open(&sealed).unwrap(), "{\"key\":\"segreto\"}");
        assert!(SecretKey::from_hex("abcd").is_err());
        assert!(format!("{:?}", rotating.current).starts_with("Some(SecretKey("));
    }
}
