//! The signed envelope shared by specs, revocations and receipts.
//!
//! On the wire a signed object is the canonical CBOR array
//! `[body: bytes, signature: bytes(64)]`, where `body` is the canonical CBOR
//! of the object and the signature is ed25519 over `SIGNING_PREFIX || body`
//! by the object's own signer key. The object's hash (for a spec, its
//! [`crate::ToolId`]) is blake3 of `body`.
//!
//! [`Signed::from_bytes`] is the only way to get a [`Signed`] from untrusted
//! bytes, and it checks everything, cheapest first: sizes, strict decoding,
//! format version, canonical re-encoding, validation rules, then the signature.

use ciborium::value::Value;
use serde::{Serialize, de::DeserializeOwned};

use crate::cbor::{self, DecodeError, EncodeError};
use crate::id::{ByteBuf, ToolId};
use crate::key::{PublicKey, SecretKey, Signature};
use crate::limits::MAX_ENVELOPE_BYTES;
use crate::validate::ValidationError;

/// An object that travels signed.
pub trait SignedBody: Serialize + DeserializeOwned + Clone {
    /// Human name of the kind, for errors.
    const KIND: &'static str;
    /// Domain separation prefix of its signatures.
    const SIGNING_PREFIX: &'static [u8];
    /// Cap on its canonical encoding.
    const MAX_BODY_BYTES: usize;
    /// The format version this crate understands (the body's `v` field).
    const FORMAT: u64;
    /// The key that must have signed it.
    fn signer(&self) -> &PublicKey;
    /// Its format version (the `v` field).
    fn format(&self) -> u64;
    /// Its validation rules.
    fn check(&self) -> Result<(), ValidationError>;
}

/// Why an object could not be signed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The object breaks a validation rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The key is not the object's declared signer.
    #[error("the signing key {key} is not the object's signer {signer}")]
    WrongKey {
        /// Key used.
        key: PublicKey,
        /// Signer named in the object.
        signer: PublicKey,
    },
    /// The object has no canonical encoding (e.g. a NaN in a schema).
    #[error("cannot encode canonically: {0}")]
    Encode(#[from] EncodeError),
    /// The encoding is larger than the kind's cap.
    #[error("encoded size {len} is over the {max}-byte limit")]
    TooLarge {
        /// Encoded size.
        len: usize,
        /// The cap.
        max: usize,
    },
}

/// Why bytes from outside are not a valid signed object. Variants are
/// ordered by the check that finds them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The envelope is larger than [`MAX_ENVELOPE_BYTES`].
    #[error("envelope is {len} bytes, over the {max}-byte limit")]
    EnvelopeTooLarge {
        /// Its size.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The envelope is not canonical `[bytes, bytes(64)]`.
    #[error("malformed envelope: {0}")]
    Envelope(String),
    /// The body is larger than its kind's cap.
    #[error("{kind} body is {len} bytes, over the {max}-byte limit")]
    BodyTooLarge {
        /// Object kind.
        kind: &'static str,
        /// Its size.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The body is not strict canonical CBOR.
    #[error("{kind} body: {source}")]
    Decode {
        /// Object kind.
        kind: &'static str,
        /// What the decoder found.
        #[source]
        source: DecodeError,
    },
    /// The body's format version is not one this node understands.
    #[error("{kind} format version {found} is not supported (this node reads {supported})")]
    UnknownVersion {
        /// Object kind.
        kind: &'static str,
        /// Version found.
        found: u64,
        /// Version supported.
        supported: u64,
    },
    /// The body decodes but re-encodes differently (e.g. an explicit default).
    #[error("{kind} body is not in canonical form")]
    NonCanonical {
        /// Object kind.
        kind: &'static str,
    },
    /// The object breaks a validation rule.
    #[error("invalid {kind}: {source}")]
    Invalid {
        /// Object kind.
        kind: &'static str,
        /// The rule.
        #[source]
        source: ValidationError,
    },
    /// The signature does not verify under the object's signer key.
    #[error("{kind} signature does not verify for signer {signer}")]
    BadSignature {
        /// Object kind.
        kind: &'static str,
        /// The declared signer.
        signer: PublicKey,
    },
    /// The object's hash is not the id it was fetched or announced under.
    #[error("expected id {expected}, got {actual}")]
    IdMismatch {
        /// The id asked for.
        expected: ToolId,
        /// The id of the bytes received.
        actual: ToolId,
    },
}

/// A verified signed object: its value, its exact body bytes and signature.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed<T> {
    value: T,
    body: Vec<u8>,
    signature: Signature,
    hash: [u8; 32],
}

impl<T: SignedBody> Signed<T> {
    /// Validates `value`, encodes it canonically and signs it with `key`,
    /// which must be the value's signer.
    pub fn sign(value: T, key: &SecretKey) -> Result<Self, SignError> {
        value.check()?;
        let signer = *value.signer();
        if key.public() != signer {
            return Err(SignError::WrongKey {
                key: key.public(),
                signer,
            });
        }
        let body = cbor::to_canonical(&value)?;
        if body.len() > T::MAX_BODY_BYTES {
            return Err(SignError::TooLarge {
                len: body.len(),
                max: T::MAX_BODY_BYTES,
            });
        }
        let signature = key.sign(&signing_message(T::SIGNING_PREFIX, &body));
        let hash = *blake3::hash(&body).as_bytes();
        Ok(Self {
            value,
            body,
            signature,
            hash,
        })
    }

    /// Decodes and fully verifies an envelope received from anyone.
    pub fn from_bytes(envelope: &[u8]) -> Result<Self, VerifyError> {
        let (body, signature) = split_envelope(envelope)?;
        Self::from_parts(body, signature)
    }

    /// Decodes an envelope's value **without verifying anything** but its
    /// size and shape: no canonical-form, rule or signature check. Only for
    /// deciding cheaply that an object is not worth verifying (e.g. a
    /// revocation of nothing this node holds); never store or act on it.
    pub fn peek(envelope: &[u8]) -> Result<T, VerifyError> {
        let (body, _) = split_envelope(envelope)?;
        Self::decode_body(&body)
    }

    /// Size, CBOR, format version and shape of a body: read straight into
    /// `T`; when that fails, the body is decoded again through a value tree
    /// only to name the error (unknown version, shape).
    fn decode_body(body: &[u8]) -> Result<T, VerifyError> {
        if let Ok(v) = cbor::from_canonical::<T>(body, T::MAX_BODY_BYTES)
            && v.format() == T::FORMAT
        {
            return Ok(v);
        }
        let kind = T::KIND;
        if body.len() > T::MAX_BODY_BYTES {
            return Err(VerifyError::BodyTooLarge {
                kind,
                len: body.len(),
                max: T::MAX_BODY_BYTES,
            });
        }
        let raw =
            cbor::decode(body, T::MAX_BODY_BYTES).map_err(|source| VerifyError::Decode { kind, source })?;
        let found = format_version(&raw).ok_or_else(|| VerifyError::Decode {
            kind,
            source: DecodeError::Shape("the body has no format version field `v`".into()),
        })?;
        if found != T::FORMAT {
            return Err(VerifyError::UnknownVersion {
                kind,
                found,
                supported: T::FORMAT,
            });
        }
        raw.deserialized().map_err(|e| VerifyError::Decode {
            kind,
            source: DecodeError::Shape(e.to_string()),
        })
    }

    /// Verifies a body and signature held apart (e.g. in the store).
    pub fn from_parts(body: Vec<u8>, signature: Signature) -> Result<Self, VerifyError> {
        let kind = T::KIND;
        let value = Self::decode_body(&body)?;
        let again = cbor::to_canonical(&value).map_err(|_| VerifyError::NonCanonical { kind })?;
        if again != body {
            return Err(VerifyError::NonCanonical { kind });
        }
        value
            .check()
            .map_err(|source| VerifyError::Invalid { kind, source })?;
        let signer = *value.signer();
        signer
            .verify(&signing_message(T::SIGNING_PREFIX, &body), &signature)
            .map_err(|_| VerifyError::BadSignature { kind, signer })?;
        let hash = *blake3::hash(&body).as_bytes();
        Ok(Self {
            value,
            body,
            signature,
            hash,
        })
    }

    /// The canonical envelope `[body, signature]`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 72);
        // Array of 2, then two byte strings; written directly, canonical by construction.
        out.push(0x82);
        write_bytes_head(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        write_bytes_head(&mut out, 64);
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// The verified value.
    pub fn value(&self) -> &T {
        &self.value
    }
    /// The exact canonical body bytes that were signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
    /// blake3 of the body.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
    /// The object's id as a [`ToolId`] (for specs, *the* tool id).
    pub fn id(&self) -> ToolId {
        ToolId(self.hash)
    }
    /// Checks that this object is the one asked for.
    pub fn expect_id(&self, expected: &ToolId) -> Result<(), VerifyError> {
        if self.id() != *expected {
            return Err(VerifyError::IdMismatch {
                expected: *expected,
                actual: self.id(),
            });
        }
        Ok(())
    }
}

/// The exact message an object's signature covers: `prefix || body`.
pub fn signing_message(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(prefix.len() + body.len());
    m.extend_from_slice(prefix);
    m.extend_from_slice(body);
    m
}

fn write_bytes_head(out: &mut Vec<u8>, len: usize) {
    // Same shortest-form rule as the canonical encoder.
    let v = cbor::encode(&Value::Integer((len as u64).into())).unwrap_or_default();
    out.push(0x40 | (v[0] & 0x1f));
    out.extend_from_slice(&v[1..]);
}

/// The body and signature of an envelope of at most [`MAX_ENVELOPE_BYTES`].
fn split_envelope(envelope: &[u8]) -> Result<(Vec<u8>, Signature), VerifyError> {
    if envelope.len() > MAX_ENVELOPE_BYTES {
        return Err(VerifyError::EnvelopeTooLarge {
            len: envelope.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    // The common case straight from the bytes; anything else is decoded
    // again through a value tree only to name the error.
    if let Ok((body, sig)) = cbor::from_canonical::<(ByteBuf, ByteBuf)>(envelope, MAX_ENVELOPE_BYTES)
        && let Ok(sig) = <[u8; 64]>::try_from(sig.0)
    {
        return Ok((body.0, Signature(sig)));
    }
    let v = cbor::decode(envelope, MAX_ENVELOPE_BYTES).map_err(|e| VerifyError::Envelope(e.to_string()))?;
    let Value::Array(items) = v else {
        return Err(VerifyError::Envelope(
            "expected an array [body, signature]".into(),
        ));
    };
    let mut it = items.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(Value::Bytes(body)), Some(Value::Bytes(sig)), None) => {
            let sig: [u8; 64] = sig.try_into().map_err(|s: Vec<u8>| {
                VerifyError::Envelope(format!("signature is {} bytes, expected 64", s.len()))
            })?;
            Ok((body, Signature(sig)))
        }
        _ => Err(VerifyError::Envelope(
            "expected an array [body, signature]".into(),
        )),
    }
}

fn format_version(v: &Value) -> Option<u64> {
    let Value::Map(entries) = v else { return None };
    entries.iter().find_map(|(k, v)| match (k, v) {
        (Value::Text(k), Value::Integer(i)) if k == "v" => u64::try_from(i128::from(*i)).ok(),
        _ => None,
    })
}
