//! Declared permissions: what a tool may reach, hold and use, as part of its signed spec.
//!
//! A spec's [`Permissions`] (egress allowlist, secrets by name, scratch size, writable output
//! dir) together with its [`Limits`] (wall time, memory, CPU, pids, output) make its
//! [`Policy`]: the one description a provider enforces. [`Policy::hash`] names it; receipts
//! bind that hash (`policy_hash`) so a caller can tell which policy ran.
//!
//! The egress rule is written once here: [`Permissions::allows`] says whether a `host:port`
//! is on the allowlist. Exact host names match themselves; `*.domain` matches every name below
//! `domain` (not `domain` itself); an IP literal matches only an entry that is that literal (a
//! wildcard never matches an address), so no raw IP is reachable unless declared.
//!
//! Specs published before permissions existed have none: the field is skipped when empty,
//! so their encoding, and so their id, is unchanged.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::id::ContentHash;
use crate::limits::{
    MAX_EGRESS_RULES, MAX_HOST_LEN, MAX_SCRATCH_BYTES, MAX_SECRET_NAME_LEN, MAX_SECRETS, MAX_SHORT_TEXT,
    MIN_SCRATCH_BYTES,
};
use crate::sandbox::TMPFS_BYTES;
use crate::spec::{Limits, SideEffect, ToolSpec};
use crate::validate::ValidationError;

/// Domain separation prefix of [`Policy::hash`].
pub const POLICY_HASH_PREFIX: &[u8] = b"atr-policy-v1";

/// One allowed destination: a host (exact name, `*.domain` or IP literal) and a port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressRule {
    /// Lowercase DNS name, `*.` + a DNS name, or an IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port, 1-65535.
    pub port: u16,
}

impl EgressRule {
    /// Parses `host:port` (`[v6]:port` for IPv6), lowercasing the host.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::EgressInvalid { rule: truncate(s) };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            (h, p)
        } else {
            s.rsplit_once(':').ok_or_else(bad)?
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        let rule = Self {
            host: host.to_ascii_lowercase(),
            port,
        };
        rule.check()?;
        Ok(rule)
    }

    /// Checks the host's shape and the port.
    pub fn check(&self) -> Result<(), ValidationError> {
        let bad = || ValidationError::EgressInvalid {
            rule: truncate(&self.to_string()),
        };
        if self.port == 0 || self.host.len() > MAX_HOST_LEN {
            return Err(bad());
        }
        if self.host.parse::<IpAddr>().is_ok() {
            return Ok(());
        }
        let name = self.host.strip_prefix("*.").unwrap_or(&self.host);
        if !is_dns_name(name) || (self.host.starts_with("*.") && !name.contains('.')) {
            return Err(bad());
        }
        Ok(())
    }

    /// Whether this rule allows `host:port` (`host` lowercase, without brackets).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        if port != self.port {
            return false;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.host.parse::<IpAddr>().is_ok_and(|r| r == ip);
        }
        match self.host.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => self.host == host,
        }
    }
}

impl std::fmt::Display for EgressRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `a-z0-9-` labels of 1-63, dot separated, no leading or trailing `-`, not all digits at the
/// top level (that would be an IPv4-looking name).
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_HOST_LEN
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|top| top.bytes().all(|b| b.is_ascii_digit()))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// What a tool may do beyond pure computation, as signed in its spec. Empty by default: no
/// network, no secrets, the default scratch space, no output dir.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Sorted, unique allowlist of destinations reachable through the node's egress proxy.
    /// Non-empty iff the spec's side effects include `network`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
    /// Sorted, unique names of the secrets the tool needs (never values):
    /// `^[A-Z][A-Z0-9_]{0,63}$`. A provider runs the tool only when it holds all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Size of the writable scratch space (`/tmp`, the output dir and image volumes share
    /// it), bytes; `None`: [`TMPFS_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_bytes: Option<u64>,
    /// An extra writable directory (absolute path, a tmpfs from the scratch budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dir: Option<String>,
}

impl Permissions {
    /// No permissions: what a spec without the field has.
    pub const EMPTY: Self = Self {
        egress: Vec::new(),
        secrets: Vec::new(),
        scratch_bytes: None,
        output_dir: None,
    };

    /// Whether nothing is declared (the encoding skips the field).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the allowlist allows `host:port` (`host` lowercase, no brackets).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.egress.iter().any(|r| r.allows(host, port))
    }

    /// The scratch size this policy gives.
    pub fn scratch(&self) -> u64 {
        self.scratch_bytes.unwrap_or(TMPFS_BYTES)
    }

    /// Every rule of permissions, including the pairing with `side_effects`.
    pub fn check(&self, side_effects: &[SideEffect]) -> Result<(), ValidationError> {
        if self.egress.len() > MAX_EGRESS_RULES {
            return Err(ValidationError::TooManyEgressRules {
                count: self.egress.len(),
                max: MAX_EGRESS_RULES,
            });
        }
        for r in &self.egress {
            r.check()?;
        }
        if !self.egress.is_sorted() || self.egress.windows(2).any(|w| w[0] == w[1]) {
            return Err(ValidationError::NotASet {
                field: "permissions.egress",
            });
        }
        let network = side_effects.contains(&SideEffect::Network);
        if network && self.egress.is_empty() {
            return Err(ValidationError::NetworkWithoutEgress);
        }
        if !network && !self.egress.is_empty() {
            return Err(ValidationError::EgressWithoutNetwork);
        }
        if self.secrets.len() > MAX_SECRETS {
            return Err(ValidationError::TooManySecrets {
                count: self.secrets.len(),
                max: MAX_SECRETS,
            });
        }
        for s in &self.secrets {
            check_secret_name(s)?;
        }
        if !self.secrets.is_sorted() || self.secrets.windows(2).any(|w| w[0] == w[1]) {
            return Err(ValidationError::NotASet {
                field: "permissions.secrets",
            });
        }
        if let Some(b) = self.scratch_bytes
            && !(MIN_SCRATCH_BYTES..=MAX_SCRATCH_BYTES).contains(&b)
        {
            return Err(ValidationError::LimitOutOfRange {
                field: "scratch_bytes",
                value: b,
                min: MIN_SCRATCH_BYTES,
                max: MAX_SCRATCH_BYTES,
            });
        }
        if let Some(d) = &self.output_dir {
            check_output_dir(d)?;
        }
        Ok(())
    }
}

/// `^[A-Z][A-Z0-9_]{0,63}$`: usable as an environment variable and a file name.
pub fn check_secret_name(s: &str) -> Result<(), ValidationError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_SECRET_NAME_LEN
        && s.as_bytes()[0].is_ascii_uppercase()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::SecretNameInvalid { name: truncate(s) })
    }
}

/// An absolute, normal path (no `.`/`..`/empty segments) outside the system dirs.
fn check_output_dir(d: &str) -> Result<(), ValidationError> {
    let bad = || ValidationError::OutputDirInvalid { dir: truncate(d) };
    if d.len() > MAX_SHORT_TEXT || !d.starts_with('/') || d == "/" {
        return Err(bad());
    }
    let segments: Vec<&str> = d[1..].split('/').collect();
    if segments.iter().any(|s| {
        s.is_empty()
            || *s == "."
            || *s == ".."
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }) {
        return Err(bad());
    }
    if ["proc", "sys", "dev", "etc", "tmp"].contains(&segments[0]) && segments.len() == 1
        || ["proc", "sys", "dev"].contains(&segments[0])
    {
        return Err(bad());
    }
    Ok(())
}

/// The policy a provider enforces for one tool: the spec's limits and permissions. Its
/// canonical CBOR, hashed, is the receipt's `policy_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Wall time, memory, CPU, pids and output limits.
    pub limits: Limits,
    /// Egress, secrets, scratch and output dir.
    pub permissions: Permissions,
}

impl Policy {
    /// The policy `spec` declares.
    pub fn of(spec: &ToolSpec) -> Self {
        Self {
            limits: spec.limits,
            permissions: spec.permissions.clone(),
        }
    }

    /// blake3 of [`POLICY_HASH_PREFIX`] followed by the policy's canonical CBOR.
    pub fn hash(&self) -> ContentHash {
        // A policy holds only integers, short strings and arrays: always encodable.
        let body = cbor::to_canonical(self).unwrap_or_default();
        let mut bytes = POLICY_HASH_PREFIX.to_vec();
        bytes.extend_from_slice(&body);
        ContentHash::of(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> EgressRule {
        EgressRule::parse(s).unwrap()
    }

    #[test]
    fn rules_parse_and_match() {
        let exact = rule("API.Example.com:443");
        assert_eq!(exact.host, "api.example.com");
        assert!(exact.allows("api.example.com", 443));
        assert!(!exact.allows("api.example.com", 80));
        assert!(!exact.allows("x.api.example.com", 443));
        let wild = rule("*.example.com:443");
        assert!(wild.allows("a.example.com", 443) && wild.allows("a.b.example.com", 443));
        assert!(!wild.allows("example.com", 443) && !wild.allows("badexample.com", 443));
        assert!(!wild.allows("10.0.0.1", 443));
        let ip = rule("10.1.2.3:80");
        assert!(ip.allows("10.1.2.3", 80) && !ip.allows("10.1.2.4", 80));
        let v6 = rule("[::1]:8080");
        assert_eq!(v6.to_string(), "[::1]:8080");
        assert!(v6.allows("::1", 8080));
        for bad in [
            "example.com",
            "example.com:0",
            "example.com:70000",
            "*.com:443",
            "*:443",
            "ex ample.com:80",
            "-a.com:80",
            "a..b:80",
            "1.2.3:80",
            "[::1:80",
            "a.*.com:80",
        ] {
            assert!(EgressRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_pairs_with_egress() {
        let p = Permissions {
            egress: vec![rule("a.example:80")],
            ..Default::default()
        };
        assert_eq!(
            p.check(&[SideEffect::Reads]),
            Err(ValidationError::EgressWithoutNetwork)
        );
        assert!(p.check(&[SideEffect::Network]).is_ok());
        assert_eq!(
            Permissions::default().check(&[SideEffect::Network]),
            Err(ValidationError::NetworkWithoutEgress)
        );
        assert!(Permissions::default().check(&[SideEffect::None]).is_ok());
    }

    #[test]
    fn sets_names_and_sizes_are_checked() {
        let two = Permissions {
            egress: vec![rule("b.example:80"), rule("a.example:80")],
            ..Default::default()
        };
        assert!(matches!(
            two.check(&[SideEffect::Network]),
            Err(ValidationError::NotASet { .. })
        ));
        let too_many = Permissions {
            egress: (1..=MAX_EGRESS_RULES as u16 + 1)
                .map(|p| rule(&format!("a.example:{p}")))
                .collect(),
            ..Default::default()
        };
        assert!(matches!(
            too_many.check(&[SideEffect::Network]),
            Err(ValidationError::TooManyEgressRules { .. })
        ));
        for bad in ["", "lower", "9LIVES", "A-B", &"A".repeat(65)] {
            assert!(check_secret_name(bad).is_err(), "{bad}");
        }
        assert!(check_secret_name("API_TOKEN_2").is_ok());
        let scratch = Permissions {
            scratch_bytes: Some(MAX_SCRATCH_BYTES + 1),
            ..Default::default()
        };
        assert!(matches!(
            scratch.check(&[SideEffect::None]),
            Err(ValidationError::LimitOutOfRange { .. })
        ));
        for bad in ["out", "/", "/proc/x", "/a/../b", "/a//b", "/tmp", "/a b"] {
            let p = Permissions {
                output_dir: Some(bad.into()),
                ..Default::default()
            };
            assert!(p.check(&[SideEffect::None]).is_err(), "{bad}");
        }
        let ok = Permissions {
            output_dir: Some("/out".into()),
            ..Default::default()
        };
        assert!(ok.check(&[SideEffect::None]).is_ok());
    }

    #[test]
    fn the_hash_names_the_whole_policy() {
        let base = Policy {
            limits: Limits::default(),
            permissions: Permissions::default(),
        };
        let mut other = base.clone();
        other.permissions.egress.push(rule("a.example:80"));
        let mut tighter = base.clone();
        tighter.limits.pids -= 1;
        assert_eq!(base.hash(), base.clone().hash());
        assert_ne!(base.hash(), other.hash());
        assert_ne!(base.hash(), tighter.hash());
    }
}
