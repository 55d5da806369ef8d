//! Publisher identity: ed25519 keys and signatures.
//!
//! A node's libp2p identity *is* its publisher key, so [`PublicKey`]'s text
//! form is the libp2p peer id string (`12D3KooW…`): the base58btc identity
//! multihash of the protobuf-encoded ed25519 public key.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::bytes_serde;

/// Protobuf + identity multihash header of an ed25519 libp2p peer id:
/// multihash code 0x00, length 36, then `PublicKey { Type: Ed25519, Data: 32 bytes }`.
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// Why a key could not be parsed or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a peer id of an ed25519 key.
    #[error("not an ed25519 peer id (expected base58 `12D3KooW…`)")]
    MalformedPeerId,
    /// 32 bytes that are not a valid ed25519 point.
    #[error("bytes are not a valid ed25519 public key")]
    InvalidPoint,
    /// A secret key file of the wrong length.
    #[error("an ed25519 secret seed is 32 bytes, got {0}")]
    SeedLength(usize),
}

/// An ed25519 public key: a node's identity and publisher key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The libp2p peer id bytes (identity multihash) of this key.
    pub fn peer_id_bytes(&self) -> [u8; 38] {
        let mut out = [0u8; 38];
        out[..6].copy_from_slice(&PEER_ID_PREFIX);
        out[6..].copy_from_slice(&self.0);
        out
    }

    /// Parses libp2p peer id bytes of an ed25519 key.
    pub fn from_peer_id_bytes(b: &[u8]) -> Result<Self, KeyError> {
        if b.len() != 38 || b[..6] != PEER_ID_PREFIX {
            return Err(KeyError::MalformedPeerId);
        }
        let mut k = [0u8; 32];
        k.copy_from_slice(&b[6..]);
        Ok(Self(k))
    }

    /// Verifies `sig` over `msg`. Uses strict verification (no malleable or
    /// small-order keys).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), KeyError> {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidPoint)?;
        let s = ed25519_dalek::Signature::from_bytes(&sig.0);
        vk.verify_strict(msg, &s).map_err(|_| KeyError::InvalidPoint)
    }

    /// A short form for logs: the last 8 characters of the peer id.
    pub fn fmt_short(&self) -> String {
        let s = self.to_string();
        s[s.len().saturating_sub(8)..].to_owned()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.peer_id_bytes()).into_string())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fmt_short())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > 64 {
            return Err(KeyError::MalformedPeerId);
        }
        let b = bs58::decode(s)
            .into_vec()
            .map_err(|_| KeyError::MalformedPeerId)?;
        Self::from_peer_id_bytes(&b)
    }
}

bytes_serde!(PublicKey, 32);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..6]))
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl FromStr for Signature {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v = hex::decode(s).map_err(|_| KeyError::InvalidPoint)?;
        Ok(Self(v.try_into().map_err(|_| KeyError::InvalidPoint)?))
    }
}

bytes_serde!(Signature, 64);

/// An ed25519 secret key. Zeroized on drop; `Debug` never prints it.
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// The key whose secret seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// Parses a 32-byte seed.
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; 32] = seed.try_into().map_err(|_| KeyError::SeedLength(seed.len()))?;
        Ok(Self::from_seed(&arr))
    }

    /// The 32-byte secret seed (for writing the key file).
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_text_matches_libp2p_form() {
        let k = SecretKey::from_seed(&[1; 32]).public();
        let s = k.to_string();
        assert!(s.starts_with("12D3KooW"), "{s}");
        assert_eq!(s.parse::<PublicKey>().unwrap(), k);
        assert!("Qm123".parse::<PublicKey>().is_err());
    }

    #[test]
    fn sign_and_verify() {
        let sk = SecretKey::from_seed(&[2; 32]);
        let sig = sk.sign(b"m");
        assert!(sk.public().verify(b"m", &sig).is_ok());
        assert!(sk.public().verify(b"n", &sig).is_err());
        let other = SecretKey::from_seed(&[3; 32]).public();
        assert!(other.verify(b"m", &sig).is_err());
        assert_eq!(format!("{sk:?}"), "SecretKey(..)");
    }
}
