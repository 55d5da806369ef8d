//! Publisher identity claims: a publisher binds its key to a domain name
//! with a DNS TXT record in the MCP Registry's own format,
//! `v=MCPv1; k=ed25519; p=<base64 of the 32-byte key>`, published at the
//! domain of its specs' `homepage`. Nodes verify the claim on demand and
//! show the verified domain next to the publisher key.
//!
//! This module is the format (pure); resolving and caching are the node's.

use data_encoding::BASE64;
use serde::{Deserialize, Serialize};

use crate::key::PublicKey;

/// Longest domain name looked up.
pub const MAX_DOMAIN_LEN: usize = 253;

/// The TXT record text that binds `key` to a domain.
pub fn txt_record(key: &PublicKey) -> String {
    format!("v=MCPv1; k=ed25519; p={}", BASE64.encode(&key.0))
}

/// The ed25519 key a TXT record in the MCP Registry's format carries, if
/// it is one (`v=MCPv1`, `k=ed25519`, `p=` 32 bytes of base64; fields in
/// any order, spaces around `;` and `=` allowed).
pub fn key_in_txt(txt: &str) -> Option<PublicKey> {
    let (mut v, mut k, mut p) = (None, None, None);
    for field in txt.split(';') {
        let (name, value) = field.split_once('=')?;
        let value = value.trim();
        match name.trim() {
            "v" => v = Some(value),
            "k" => k = Some(value),
            "p" => p = Some(value),
            _ => {}
        }
    }
    if v? != "MCPv1" || !k?.eq_ignore_ascii_case("ed25519") {
        return None;
    }
    let bytes = BASE64.decode(p?.as_bytes()).ok()?;
    Some(PublicKey(bytes.try_into().ok()?))
}

/// The domain a spec's `homepage` claims: the host of an `https://` URL,
/// lower case, when it is a DNS name (not an IP literal, at least two
/// labels of letters, digits and hyphens).
pub fn domain_of_homepage(homepage: &str) -> Option<String> {
    let rest = homepage.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let valid = host.len() <= MAX_DOMAIN_LEN
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && !labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    valid.then_some(host)
}

/// What a node knows of a spec's domain claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainClaim {
    /// The domain claimed (the homepage's host).
    pub domain: String,
    /// Where the claim stands.
    pub status: ClaimStatus,
}

/// Where a domain claim stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum ClaimStatus {
    /// The domain's TXT record carries the publisher's key.
    Verified {
        /// Until when the node trusts this answer, ms since the Unix epoch.
        until_ms: u64,
    },
    /// Checked, and the domain does not carry the publisher's key.
    Refused {
        /// Why.
        reason: String,
    },
    /// Not checked yet (listings show only what is cached).
    Unchecked,
}

impl ClaimStatus {
    /// Whether the claim is verified.
    pub fn is_verified(&self) -> bool {
        matches!(self, Self::Verified { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records_round_trip_and_hostile_ones_are_refused() {
        let key = PublicKey([7; 32]);
        let txt = txt_record(&key);
        assert_eq!(key_in_txt(&txt), Some(key));
        assert_eq!(
            key_in_txt(&format!(" p = {} ; k=Ed25519;v=MCPv1", BASE64.encode(&[7; 32]))),
            Some(key)
        );
        for bad in [
            "",
            "v=MCPv2; k=ed25519; p=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            "v=MCPv1; k=rsa; p=BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
            "v=MCPv1; k=ed25519; p=BwcH",
            "v=MCPv1; k=ed25519",
            "v=MCPv1; k=ed25519; p=not base64!",
            "google-site-verification=abc",
        ] {
            assert_eq!(key_in_txt(bad), None, "{bad}");
        }
    }

    #[test]
    fn homepage_domains() {
        assert_eq!(
            domain_of_homepage("https://Tools.Example.com/calc?x=1").as_deref(),
            Some("tools.example.com")
        );
        assert_eq!(
            domain_of_homepage("https://example.com:8443").as_deref(),
            Some("example.com")
        );
        for bad in [
            "http://example.com",
            "https://localhost/",
            "https://127.0.0.1/",
            "https://exa_mple.com/",
            "https://-bad.com/",
            "https://",
            "ftp://example.com",
        ] {
            assert_eq!(domain_of_homepage(bad), None, "{bad}");
        }
    }
}
