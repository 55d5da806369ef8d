//! Specs as the API sends them, rendered once: [`SpecJson`] keeps the JSON text of recently
//! listed specs, so a find or search answer copies prepared bytes instead of decoding CBOR and
//! serializing JSON again for every spec of every answer.
//!
//! The cache is bounded by bytes ([`DEFAULT_SPEC_JSON_BYTES`]), not by the catalog's size:
//! a node holding a million specs keeps the JSON of the most recently rendered ones only
//! (oldest rendered first out), and renders the others when asked. A spec's JSON never
//! changes (the id is the hash of its body), so an entry is never stale; its lifecycle
//! status and domain claim change, and are added per answer, not cached.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use atr_protocol::PublicKey;
use atr_protocol::api::SpecStatus;
use atr_protocol::claim::DomainClaim;
use atr_protocol::{ToolId, ToolSpec};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::catalog::{Entry, Status};
use crate::claims::DomainClaims;
use crate::lock;

/// Default bound of [`SpecJson`]: 32 MiB of JSON text (the JSON of ~20 000 typical specs).
pub const DEFAULT_SPEC_JSON_BYTES: usize = 32 * 1024 * 1024;
/// What one cached spec costs besides its text (map slot, queue slot, allocation headers).
const ENTRY_OVERHEAD: usize = 96;

/// One spec's JSON, and its homepage (for the domain claim of each answer).
#[derive(Debug)]
pub struct Rendered {
    /// `ToolSpec` as JSON.
    json: Box<RawValue>,
    /// The spec's homepage.
    homepage: Option<Box<str>>,
}

impl Rendered {
    /// Renders a catalog entry's spec: decodes its kept body and serializes it. `None` when
    /// the kept body no longer decodes (logged by the catalog's reader).
    fn of(e: &Entry) -> Option<Self> {
        let spec: ToolSpec = e.spec.tool_spec().ok()?;
        let json = serde_json::value::to_raw_value(&spec).ok()?;
        Some(Self {
            json,
            homepage: spec.homepage.map(String::into_boxed_str),
        })
    }

    fn cost(&self) -> usize {
        self.json.get().len() + self.homepage.as_ref().map_or(0, |h| h.len()) + ENTRY_OVERHEAD
    }
}

/// The bounded cache of rendered specs. See the module docs.
#[derive(Debug)]
pub struct SpecJson {
    budget: usize,
    inner: Mutex<Inner>,
    /// Publisher keys as text (base58 costs microseconds a key, and a compact listing
    /// writes one per spec); at most [`MAX_PUBLISHER_TEXTS`], emptied when full.
    publishers: Mutex<HashMap<PublicKey, Arc<str>>>,
}

/// Most publisher texts [`SpecJson`] keeps (~150 bytes each).
const MAX_PUBLISHER_TEXTS: usize = 65_536;

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<ToolId, Arc<Rendered>>,
    /// Insertion order, oldest first.
    order: VecDeque<ToolId>,
    bytes: usize,
}

impl Default for SpecJson {
    fn default() -> Self {
        Self::new(DEFAULT_SPEC_JSON_BYTES)
    }
}

impl SpecJson {
    /// A cache holding at most `budget` bytes of rendered specs.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner::default()),
            publishers: Mutex::new(HashMap::new()),
        }
    }

    /// Bytes held now (at most the budget).
    pub fn bytes(&self) -> usize {
        lock::lock(&self.inner).bytes
    }

    /// The rendered form of every entry, in order, each with its tag `T`: cached ones are
    /// shared, the others are rendered now and cached. Entries whose body no longer decodes
    /// are left out.
    pub fn render_all<'a, T>(&self, items: Vec<(T, &'a Entry)>) -> Vec<(T, &'a Entry, Arc<Rendered>)> {
        let cached: Vec<Option<Arc<Rendered>>> = {
            let inner = lock::lock(&self.inner);
            items
                .iter()
                .map(|(_, e)| inner.map.get(&e.spec.id()).cloned())
                .collect()
        };
        let mut fresh: Vec<(ToolId, Arc<Rendered>)> = Vec::new();
        let out = items
            .into_iter()
            .zip(cached)
            .filter_map(|((t, e), c)| match c {
                Some(r) => Some((t, e, r)),
                None => {
                    let r = Arc::new(Rendered::of(e)?);
                    fresh.push((e.spec.id(), r.clone()));
                    Some((t, e, r))
                }
            })
            .collect();
        if !fresh.is_empty() {
            self.insert(fresh);
        }
        out
    }

    /// The compact views of `entries`, from the catalog's summary fields (nothing is decoded).
    pub fn compact_all<T>(&self, entries: Vec<(T, &Entry)>) -> Vec<(T, CompactOut)> {
        let mut texts = lock::lock(&self.publishers);
        if texts.len() > MAX_PUBLISHER_TEXTS {
            texts.clear();
        }
        entries
            .into_iter()
            .map(|(t, e)| {
                let s = e.spec.value();
                let publisher = texts
                    .entry(s.publisher)
                    .or_insert_with(|| s.publisher.to_string().into())
                    .clone();
                let view = CompactOut {
                    id: e.spec.id(),
                    name: s.name.clone(),
                    version: s.version.clone(),
                    publisher,
                    description: s.description.clone(),
                    tags: s.tags.clone(),
                    status: status(&e.status),
                };
                (t, view)
            })
            .collect()
    }

    fn insert(&self, fresh: Vec<(ToolId, Arc<Rendered>)>) {
        let mut inner = lock::lock(&self.inner);
        for (id, r) in fresh {
            let cost = r.cost();
            if cost > self.budget || inner.map.contains_key(&id) {
                continue;
            }
            while inner.bytes + cost > self.budget {
                let Some(old) = inner.order.pop_front() else {
                    break;
                };
                if let Some(gone) = inner.map.remove(&old) {
                    inner.bytes -= gone.cost();
                }
            }
            inner.bytes += cost;
            inner.map.insert(id, r);
            inner.order.push_back(id);
        }
    }
}

/// The API's status of an entry.
pub fn status(s: &Status) -> SpecStatus {
    match s {
        Status::Active => SpecStatus::Active,
        Status::Deprecated { successor, .. } => SpecStatus::Deprecated {
            successor: *successor,
        },
        Status::Revoked { .. } => SpecStatus::Revoked,
    }
}

/// [`atr_protocol::api::SpecView`] as the node writes it: the same JSON, with the spec's
/// prepared text copied in.
#[derive(Debug, Serialize)]
pub struct SpecViewOut {
    id: ToolId,
    status: SpecStatus,
    #[serde(serialize_with = "prepared")]
    spec: Arc<Rendered>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<DomainClaim>,
}

/// Writes a shared string.
fn shared_str<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

/// Writes a rendered spec's JSON text as it is.
fn prepared<S: serde::Serializer>(r: &Arc<Rendered>, s: S) -> Result<S::Ok, S::Error> {
    r.json.serialize(s)
}

impl SpecViewOut {
    /// The full view of `e`, rendered as `r`; its domain claim as cached.
    pub fn new(e: &Entry, r: Arc<Rendered>, claims: &DomainClaims) -> Self {
        let publisher = e.spec.value().publisher;
        Self {
            id: e.spec.id(),
            status: status(&e.status),
            domain: claims.cached(r.homepage.as_deref(), &publisher),
            spec: r,
        }
    }
}

/// [`CompactView`] as the node writes it (the same JSON), with the publisher's text shared.
#[derive(Debug, Serialize)]
pub struct CompactOut {
    id: ToolId,
    name: String,
    version: semver::Version,
    #[serde(serialize_with = "shared_str")]
    publisher: Arc<str>,
    description: String,
    tags: Vec<String>,
    status: SpecStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SpecRef;
    use crate::catalog::test_support::spec;

    fn entry(seed: u8, name: &str) -> Entry {
        Entry {
            spec: SpecRef::from_signed(&spec(seed, name, "1.0.0", &["t"])),
            status: Status::Active,
        }
    }

    #[test]
    fn rendered_json_is_the_spec_and_the_cache_stays_in_its_budget() -> Result<(), Box<dyn std::error::Error>>
    {
        let entries: Vec<Entry> = (0..50u8).map(|i| entry(i % 5 + 1, &format!("tool{i}"))).collect();
        let one = Rendered::of(&entries[0]).ok_or("render")?;
        let back: ToolSpec = serde_json::from_str(one.json.get())?;
        assert_eq!(back, entries[0].spec.tool_spec()?);
        // Room for ten of them.
        let cache = SpecJson::new(one.cost() * 10);
        let all = cache.render_all(entries.iter().map(|e| ((), e)).collect());
        assert_eq!(all.len(), 50);
        assert!(cache.bytes() <= one.cost() * 10, "{}", cache.bytes());
        // The last rendered are cached and shared, not rendered again.
        let compact = cache.compact_all(vec![((), &entries[0])]);
        let back: atr_protocol::api::CompactView =
            serde_json::from_value(serde_json::to_value(&compact[0].1)?)?;
        assert_eq!(back.publisher, entries[0].spec.value().publisher);
        assert_eq!(back.label(), entries[0].spec.value().label());
        let again = cache.render_all(entries[45..].iter().map(|e| ((), e)).collect());
        for ((_, _, a), (_, _, b)) in again.iter().zip(&all[45..]) {
            assert!(Arc::ptr_eq(a, b));
        }
        Ok(())
    }
}
