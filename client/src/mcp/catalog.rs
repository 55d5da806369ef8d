//! What the MCP server serves: a [`Selection`] of tools, looked up through the
//! node ([`Selection::load`]) and exported as an MCP tool list ([`ToolSet`]).
//!
//! Names are made unique and stable: specs are ordered by name, then newest
//! version first, then id, and [`export_many`] keeps the first spec's name and
//! suffixes the others (`_2`, `_3`, …). A tag or name selection serves only
//! the newest active version of each publisher's tool; an explicit id is
//! served as long as it is not revoked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use atr_protocol::api::{SpecStatus, SpecView};
use atr_protocol::export::{ExportFormat, ExportOptions, export_many, to_mcp};
use atr_protocol::input::CompiledSchema;
use atr_protocol::query::FindQuery;
use atr_protocol::{PublicKey, ToolId, ToolSpec};
use serde_json::{Map, Value};
use tracing::warn;

use crate::client::Client;
use crate::error::ClientError;

/// `_meta` key under which each served tool carries its atr id.
pub const META_ID_KEY: &str = "dev.atr/id";
/// `_meta` key under which a tool result carries its receipt id.
pub const META_RECEIPT_KEY: &str = "dev.atr/receipt";

/// Which tools to serve. An empty selection is refused by the server: it never serves the
/// whole network by accident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selection {
    /// Tools with any of these tags.
    pub tags: Vec<String>,
    /// Tools with any of these names.
    pub names: Vec<String>,
    /// These exact specs.
    pub ids: Vec<ToolId>,
    /// Ask the network (not only the node's store) when first loading.
    pub network: bool,
}

impl Selection {
    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.names.is_empty() && self.ids.is_empty()
    }

    /// Looks the selection up through the node. `network` asks the node's peers too.
    pub async fn load(&self, client: &Client, network: bool) -> Result<Vec<SpecView>, ClientError> {
        let mut picked: BTreeMap<ToolId, SpecView> = BTreeMap::new();
        let queries = self
            .tags
            .iter()
            .map(|t| FindQuery {
                tag: Some(t.clone()),
                network,
                ..FindQuery::default()
            })
            .chain(self.names.iter().map(|n| FindQuery {
                name: Some(n.clone()),
                network,
                ..FindQuery::default()
            }));
        let mut by_filter = Vec::new();
        for q in queries {
            by_filter.extend(client.find(&q).await?.results);
        }
        for v in newest_per_tool(by_filter) {
            picked.insert(v.id, v);
        }
        for id in &self.ids {
            match client.spec(id).await {
                Ok(v) if v.status != SpecStatus::Revoked => {
                    picked.insert(v.id, v);
                }
                Ok(_) => warn!(tool = %id.fmt_short(), "selected tool is revoked; not serving it"),
                Err(ClientError::NotFound { .. }) => {
                    warn!(tool = %id.fmt_short(), "selected tool is not on this node")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(picked.into_values().collect())
    }
}

/// Keeps, of each publisher's tool name, only the newest version (then the newest spec).
fn newest_per_tool(views: Vec<SpecView>) -> Vec<SpecView> {
    let mut best: HashMap<(PublicKey, String), SpecView> = HashMap::new();
    for v in views {
        let key = (v.spec.publisher, v.spec.name.clone());
        let newer = |old: &SpecView| {
            (&v.spec.version, v.spec.created_at_ms, v.id)
                > (&old.spec.version, old.spec.created_at_ms, old.id)
        };
        match best.get(&key) {
            Some(old) if !newer(old) => {}
            _ => {
                best.insert(key, v);
            }
        }
    }
    best.into_values().collect()
}

/// Sorts specs the way tool lists show them: by name, then newest version first (then newest
/// spec, then id), so that when names are made unique the newest version keeps the plain name
/// and the order does not depend on how the node answered.
pub fn stable_order(views: &mut [SpecView]) {
    views.sort_by(|a, b| {
        (&a.spec.name, &b.spec.version, b.spec.created_at_ms, a.id).cmp(&(
            &b.spec.name,
            &a.spec.version,
            a.spec.created_at_ms,
            b.id,
        ))
    });
}

/// One served tool.
pub struct ServedTool {
    /// The spec's id.
    pub id: ToolId,
    /// The tool as `tools/list` shows it.
    pub tool: rmcp::model::Tool,
    schema: Option<Arc<CompiledSchema>>,
}

impl ServedTool {
    /// Checks `input` against the tool's input schema: `Err` with every violation, one line.
    pub fn check_input(&self, input: &Value) -> Result<(), String> {
        match &self.schema {
            Some(s) => s.check(input).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for ServedTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedTool")
            .field("id", &self.id)
            .field("name", &self.tool.name)
            .finish_non_exhaustive()
    }
}

/// The tool list at one moment, in a stable order.
#[derive(Debug, Default)]
pub struct ToolSet {
    tools: Vec<ServedTool>,
    by_name: HashMap<String, usize>,
}

impl ToolSet {
    /// Exports `views` as MCP tools with unique, stable names and their id in `_meta`.
    /// A spec that cannot be exported is left out with a warning.
    pub fn build(mut views: Vec<SpecView>) -> Self {
        stable_order(&mut views);
        let specs: Vec<&ToolSpec> = views.iter().map(|v| &v.spec).collect();
        // The names alone: unique across the whole list.
        let names: Vec<String> = match export_many(&specs, ExportFormat::Mcp, &ExportOptions::default()) {
            Ok(Value::Array(tools)) => tools
                .iter()
                .map(|t| {
                    t.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect(),
            _ => views.iter().map(|v| v.spec.name.clone()).collect(),
        };
        let mut set = Self::default();
        for (view, name) in views.iter().zip(names) {
            if set.by_name.contains_key(&name) {
                warn!(tool = %view.id.fmt_short(), %name, "name already served; leaving this tool out");
                continue;
            }
            match served(view, name) {
                Ok(t) => {
                    set.by_name.insert(t.tool.name.to_string(), set.tools.len());
                    set.tools.push(t);
                }
                Err(e) => warn!(tool = %view.id.fmt_short(), error = %e, "cannot serve this tool over MCP"),
            }
        }
        set
    }

    /// The tools as `tools/list` returns them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tools.iter().map(|t| t.tool.clone()).collect()
    }

    /// The tool served under `name`.
    pub fn get(&self, name: &str) -> Option<&ServedTool> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// The ids served.
    pub fn ids(&self) -> BTreeSet<ToolId> {
        self.tools.iter().map(|t| t.id).collect()
    }

    /// How many tools are served.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether no tool is served.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

fn served(view: &SpecView, name: String) -> Result<ServedTool, String> {
    let mut meta = Map::new();
    meta.insert(META_ID_KEY.into(), view.id.to_string().into());
    let opts = ExportOptions {
        name: Some(name),
        meta: Some(meta),
        ..ExportOptions::default()
    };
    let value = to_mcp(&view.spec, &opts).map_err(|e| e.to_string())?;
    let tool: rmcp::model::Tool = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let schema = match CompiledSchema::new(&view.spec.input_schema) {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            warn!(tool = %view.id.fmt_short(), error = %e, "input schema does not compile; inputs go unchecked");
            None
        }
    };
    Ok(ServedTool {
        id: view.id,
        tool,
        schema,
    })
}
