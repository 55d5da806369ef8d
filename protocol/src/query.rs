//! Find queries and version requirements, shared by the node and its clients.

use serde::{Deserialize, Serialize};

use crate::key::PublicKey;
use crate::spec::{Cost, SideEffect, ToolSpec};

/// Why a version requirement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a version requirement (e.g. `>=1.2, <2` or `^1.4`): {detail}")]
pub struct VersionReqError {
    /// What was given.
    pub input: String,
    /// The parser's message.
    pub detail: String,
}

/// Parses a semver requirement with cargo semantics: comma-separated
/// comparators all apply (`>=1.2, <2` keeps its upper bound, unlike the
/// ancestor), `^0.2` means `>=0.2.0, <0.3.0`, and pre-releases match only
/// when asked for.
pub fn parse_version_req(s: &str) -> Result<semver::VersionReq, VersionReqError> {
    if s.len() > 128 {
        return Err(VersionReqError {
            input: s.chars().take(32).collect(),
            detail: "too long".into(),
        });
    }
    semver::VersionReq::parse(s).map_err(|e| VersionReqError {
        input: s.into(),
        detail: e.to_string(),
    })
}

/// What to look for. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindQuery {
    /// Tools with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Tools with this exact name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Semver requirement on the version (with `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Only this publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<PublicKey>,
    /// Only tools whose side effects are all in this set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_side_effects: Option<Vec<SideEffect>>,
    /// Only tools at most this costly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<Cost>,
    /// Include revoked and deprecated specs.
    #[serde(default)]
    pub include_revoked: bool,
    /// Also ask the network (DHT providers, then fetch).
    #[serde(default)]
    pub network: bool,
    /// At most this many results (default 100, max 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// Default result count of a find.
pub const DEFAULT_FIND_LIMIT: usize = 100;
/// Largest result count of a find.
pub const MAX_FIND_LIMIT: usize = 1000;

impl FindQuery {
    /// The effective result limit.
    pub fn effective_limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_FIND_LIMIT).clamp(1, MAX_FIND_LIMIT)
    }

    /// Whether `spec` passes the non-index filters (version, publisher, side effects, cost).
    pub fn matches(&self, spec: &ToolSpec, req: Option<&semver::VersionReq>) -> bool {
        if let Some(t) = &self.tag
            && !spec.tags.iter().any(|x| x == t)
        {
            return false;
        }
        if let Some(n) = &self.name
            && &spec.name != n
        {
            return false;
        }
        if let Some(r) = req
            && !r.matches(&spec.version)
        {
            return false;
        }
        if let Some(p) = &self.publisher
            && &spec.publisher != p
        {
            return false;
        }
        if let Some(allowed) = &self.allowed_side_effects
            && !spec
                .side_effects
                .iter()
                .all(|s| *s == SideEffect::None || allowed.contains(s))
        {
            return false;
        }
        if let Some(c) = self.max_cost
            && spec.cost > c
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_keep_both_bounds() {
        let r = parse_version_req(">=1.2, <2").unwrap();
        assert!(r.matches(&"1.5.0".parse().unwrap()));
        assert!(
            !r.matches(&"3.0.0".parse().unwrap()),
            "the ancestor matched 3.0.0 here"
        );
        let caret = parse_version_req("^0.2.0").unwrap();
        assert!(!caret.matches(&"0.9.0".parse().unwrap()));
        assert!(
            !parse_version_req(">=1.0.0")
                .unwrap()
                .matches(&"1.1.0-beta".parse().unwrap())
        );
        assert!(parse_version_req("latest").is_err());
    }
}
