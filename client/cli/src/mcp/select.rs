//! Which specs a selection serves and under which names: the trust rule of `atr mcp` and
//! `atr export`, written once ([`pick`]).
//!
//! - A tag or name selection serves this node's own specs and its trusted publishers'
//!   ([`TrustList::standing`]), plus explicit ids. Specs of other publishers are *hidden*
//!   ([`Picked::hidden`]) unless the caller opted in with "any publisher".
//! - An untrusted spec never takes a name a trusted one uses: with the opt-in it is served
//!   as `NAME_<publisher short key>` ([`untrusted_name`]), and its description starts with
//!   [`untrusted_mark`]. Own, trusted and pinned specs are named first, so they keep the
//!   plain names (`_2`, `_3`, … among themselves, newest version first).
//! - Each served spec carries its provenance ([`Chosen::standing`], [`Chosen::pinned`]),
//!   which MCP `_meta` repeats ([`provenance_meta`]).

use std::collections::{BTreeMap, BTreeSet};

use atr_protocol::api::SpecView;
use atr_protocol::export::unique_names;
use atr_protocol::limits::MAX_NAME_LEN;
use atr_protocol::trust::{Standing, TrustList};
use atr_protocol::{PublicKey, ToolId, ToolSpec};
use serde_json::{Map, Value};

use super::catalog::{META_ID_KEY, newest_per_tool, stable_order};

/// `_meta` key: the publisher's key (peer id).
pub const META_PUBLISHER_KEY: &str = "dev.atr/publisher";
/// `_meta` key: `own`, `trusted` or `untrusted` ([`Standing`]), as this node sees the publisher.
pub const META_TRUST_KEY: &str = "dev.atr/trust";
/// `_meta` key: the publisher's domain, when its claim is verified (as the node has it cached:
/// `atr show` checks it).
pub const META_DOMAIN_KEY: &str = "dev.atr/domain";
/// `_meta` key: the label this node's operator gave a trusted publisher, when it has one.
pub const META_PUBLISHER_LABEL_KEY: &str = "dev.atr/publisher_label";
/// `_meta` key: `true` when the tool was selected by its exact id (`--id`), not by tag or name.
pub const META_PINNED_KEY: &str = "dev.atr/pinned";

/// One spec a selection serves.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The spec as the node returned it.
    pub view: SpecView,
    /// The name it is served or exported under (unique in the selection).
    pub name: String,
    /// Own, trusted or not, as this node sees its publisher.
    pub standing: Standing,
    /// The operator's label of its publisher, when trusted with one.
    pub label: Option<String>,
    /// Selected by its exact id.
    pub pinned: bool,
}

impl Chosen {
    /// The spec to export: the node's, with [`untrusted_mark`] before the description when
    /// its publisher is not trusted.
    pub fn spec(&self) -> ToolSpec {
        let mut spec = self.view.spec.clone();
        if !self.standing.is_trusted() {
            spec.description = format!("{}{}", untrusted_mark(&spec.publisher), spec.description);
        }
        spec
    }
}

/// What a selection serves, and what it left out.
#[derive(Debug, Default)]
pub struct Picked {
    /// Served, in the order tool lists show them.
    pub tools: Vec<Chosen>,
    /// Specs the tags or names matched whose publisher is not trusted, left out because
    /// "any publisher" was not asked for.
    pub hidden: Vec<SpecView>,
}

impl Picked {
    /// The served spec named `name`.
    pub fn named(&self, name: &str) -> Option<&Chosen> {
        self.tools.iter().find(|c| c.name == name)
    }

    /// What to tell a person when specs were hidden: how many, of which publishers, and the
    /// commands that trust one or opt in. `None` when nothing was hidden.
    pub fn hidden_note(&self) -> Option<String> {
        if self.hidden.is_empty() {
            return None;
        }
        let publishers: BTreeSet<PublicKey> = self.hidden.iter().map(|v| v.spec.publisher).collect();
        let shown: Vec<String> = self
            .hidden
            .iter()
            .take(MAX_HIDDEN_SHOWN)
            .map(|v| format!("{} from {}", v.spec.label(), v.spec.publisher.fmt_short()))
            .collect();
        let more = if self.hidden.len() > MAX_HIDDEN_SHOWN {
            format!(", and {} more", self.hidden.len() - MAX_HIDDEN_SHOWN)
        } else {
            String::new()
        };
        let trust = match publishers.iter().next() {
            Some(p) if publishers.len() == 1 => format!("`atr trust add {p}`"),
            _ => "`atr trust add PEER_ID` (peer ids: `atr find --json`)".to_owned(),
        };
        Some(format!(
            "{} tool(s) of {} untrusted publisher(s) hidden ({}{more}). Trust a publisher with {trust}, \
             or serve every publisher's tools (marked untrusted, under other names) with --any-publisher",
            self.hidden.len(),
            publishers.len(),
            shown.join(", ")
        ))
    }
}

/// Most hidden tools named in [`Picked::hidden_note`].
const MAX_HIDDEN_SHOWN: usize = 5;

/// The text put before an untrusted spec's description, so a model (and a person reading
/// the list) knows who wrote it.
pub fn untrusted_mark(publisher: &PublicKey) -> String {
    format!("[untrusted publisher {publisher}: not on this node's trust list] ")
}

/// The name an untrusted spec is served under: its name, `_`, its publisher's short key
/// (the base cut so the whole stays within the name limit).
pub fn untrusted_name(spec: &ToolSpec) -> String {
    let suffix = format!("_{}", spec.publisher.fmt_short());
    let mut cut = spec.name.len().min(MAX_NAME_LEN.saturating_sub(suffix.len()));
    while !spec.name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &spec.name[..cut])
}

/// Chooses what a selection serves: see the [module docs](self).
///
/// `found` are the specs its tags and names matched (any version: only the newest of each
/// publisher's tool is kept unless `all_versions`); `pinned` the specs of its explicit ids.
pub fn pick(
    found: Vec<SpecView>,
    pinned: Vec<SpecView>,
    trust: &TrustList,
    any_publisher: bool,
    all_versions: bool,
) -> Picked {
    let pinned_ids: BTreeSet<ToolId> = pinned.iter().map(|v| v.id).collect();
    let found: Vec<SpecView> = if all_versions {
        found
    } else {
        newest_per_tool(found)
    };
    let mut first: BTreeMap<ToolId, (SpecView, bool)> = BTreeMap::new();
    let mut strangers: Vec<SpecView> = Vec::new();
    let mut hidden: Vec<SpecView> = Vec::new();
    // Ids already placed among the strangers or the hidden (a selection of every page of a
    // large find holds many: a set, not a scan per spec).
    let mut placed: BTreeSet<ToolId> = BTreeSet::new();
    for v in pinned {
        first.insert(v.id, (v, true));
    }
    for v in found {
        if pinned_ids.contains(&v.id) || first.contains_key(&v.id) {
            continue;
        }
        if trust.standing(&v.spec.publisher).is_trusted() {
            first.insert(v.id, (v, false));
        } else if !placed.insert(v.id) {
            continue;
        } else if any_publisher {
            strangers.push(v);
        } else {
            hidden.push(v);
        }
    }
    // Own and trusted specs before pinned strangers' of the same name, then newest first.
    let mut first: Vec<(SpecView, bool)> = first.into_values().collect();
    stable_order_by_trust(&mut first, trust);
    stable_order(&mut strangers);
    stable_order(&mut hidden);
    let bases: Vec<String> = first
        .iter()
        .map(|(v, _)| v.spec.name.clone())
        .chain(strangers.iter().map(|v| untrusted_name(&v.spec)))
        .collect();
    let names = unique_names(bases.iter().map(String::as_str).collect());
    let tools = first
        .into_iter()
        .chain(strangers.into_iter().map(|v| (v, false)))
        .zip(names)
        .map(|((view, pinned), name)| {
            let standing = trust.standing(&view.spec.publisher);
            let label = trust.label(&view.spec.publisher).map(str::to_owned);
            Chosen {
                view,
                name,
                standing,
                label,
                pinned,
            }
        })
        .collect();
    Picked { tools, hidden }
}

/// [`stable_order`], except that among specs of one name the trusted ones come first.
fn stable_order_by_trust(views: &mut [(SpecView, bool)], trust: &TrustList) {
    views.sort_by(|(a, _), (b, _)| {
        let rank = |v: &SpecView| !trust.standing(&v.spec.publisher).is_trusted();
        (&a.spec.name, rank(a), &b.spec.version, b.spec.created_at_ms, a.id).cmp(&(
            &b.spec.name,
            rank(b),
            &a.spec.version,
            a.spec.created_at_ms,
            b.id,
        ))
    });
}

/// The MCP `_meta` of a served tool: its id and its provenance.
pub fn provenance_meta(c: &Chosen) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert(META_ID_KEY.into(), c.view.id.to_string().into());
    meta.insert(
        META_PUBLISHER_KEY.into(),
        c.view.spec.publisher.to_string().into(),
    );
    meta.insert(META_TRUST_KEY.into(), c.standing.as_str().into());
    if let Some(l) = &c.label {
        meta.insert(META_PUBLISHER_LABEL_KEY.into(), l.clone().into());
    }
    meta.insert(META_PINNED_KEY.into(), c.pinned.into());
    if let Some(d) = c.view.domain.as_ref().filter(|d| d.status.is_verified()) {
        meta.insert(META_DOMAIN_KEY.into(), d.domain.clone().into());
    }
    meta
}
