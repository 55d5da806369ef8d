//! What the MCP server serves: a [`Selection`] of tools, looked up through the
//! node ([`Selection::load`]) and exported as an MCP tool list ([`ToolSet`]).
//!
//! Which specs and under which names is [`super::select::pick`]'s rule: this
//! node's own and trusted publishers' specs (and explicit ids) keep plain names,
//! unique and stable (by name, then newest version first, then id; `_2`, `_3`,
//! … for the others); other publishers' only with "any publisher", marked and
//! under `NAME_<publisher>`. A tag or name selection serves only the newest
//! active version of each publisher's tool; an explicit id is served as long as
//! it is not revoked.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use atr_protocol::api::{SpecStatus, SpecView};
use atr_protocol::export::{ExportOptions, to_mcp};
use atr_protocol::input::CompiledSchema;
use atr_protocol::query::FindQuery;
use atr_protocol::trust::Standing;
use atr_protocol::{PublicKey, ToolId};
use serde_json::{Map, Value};
use tracing::warn;

use atr_client::Client;
use atr_client::ClientError;

use super::lock::Lock;
use super::select::{Chosen, Picked, pick, provenance_meta};

/// `_meta` key under which each served tool carries its atr id.
pub const META_ID_KEY: &str = "dev.atr/id";
/// `_meta` key under which a tool result carries the provider's signed receipt (hex of its
/// envelope, which anyone can verify with the provider's key).
pub const META_RECEIPT_KEY: &str = "dev.atr/receipt";
/// `_meta` key under which a tool result carries its receipt's id (hex blake3 of its body).
pub const META_RECEIPT_ID_KEY: &str = "dev.atr/receipt_id";
/// `_meta` key under which a tool result names the provider that ran it (peer id, or `local`).
pub const META_PROVIDER_KEY: &str = "dev.atr/provider";
/// `_meta` key under which a tool result carries how the run ended (`ok`, `tool_error`, …).
pub const META_STATUS_KEY: &str = "dev.atr/status";
/// `_meta` key a served tool carries when its output is wrapped (see [`OutputShape::Wrapped`]);
/// the value is the field holding it, [`RESULT_FIELD`].
pub const META_WRAPPED_KEY: &str = "dev.atr/wrapped_output";
/// The field of the structured content that holds a non-object output.
pub const RESULT_FIELD: &str = "result";

/// How a tool's output becomes MCP structured content. MCP before 2026-07-28 only takes an
/// object there; this server sends the same shape on every protocol version, so a client sees
/// one shape whatever it negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputShape {
    /// The output schema is an object schema: the output is the structured content, and the
    /// tool's `outputSchema` is the spec's.
    Object,
    /// The output schema is not an object schema (e.g. `add` returns an integer): the output
    /// goes under [`RESULT_FIELD`], and the served `outputSchema` is
    /// `{"type": "object", "properties": {"result": <the spec's>}, "required": ["result"]}`.
    Wrapped,
    /// No output schema: an object output is the structured content as it is, anything else
    /// goes under [`RESULT_FIELD`]. No `outputSchema` is served.
    Free,
}

impl OutputShape {
    /// Of a spec's output schema.
    pub fn of(output_schema: Option<&Value>) -> Self {
        match output_schema {
            None => Self::Free,
            Some(s) if s.get("type").and_then(Value::as_str) == Some("object") => Self::Object,
            Some(_) => Self::Wrapped,
        }
    }

    /// The structured content of `output`.
    pub fn structured(self, output: Value) -> Value {
        match (self, output) {
            (Self::Object | Self::Free, Value::Object(o)) => Value::Object(o),
            (_, other) => {
                let mut m = Map::new();
                m.insert(RESULT_FIELD.into(), other);
                Value::Object(m)
            }
        }
    }
}

/// The served `outputSchema` of a [`OutputShape::Wrapped`] tool. `$defs`, `definitions`,
/// `$schema` and `$id` move to the root, so `#/$defs/…` references still resolve.
pub fn wrapped_output_schema(inner: &Value) -> Value {
    let mut inner = inner.clone();
    let mut root = Map::new();
    root.insert("type".into(), "object".into());
    if let Value::Object(o) = &mut inner {
        for k in ["$schema", "$id", "$defs", "definitions"] {
            if let Some(v) = o.remove(k) {
                root.insert(k.into(), v);
            }
        }
    }
    let mut props = Map::new();
    props.insert(RESULT_FIELD.into(), inner);
    root.insert("properties".into(), Value::Object(props));
    root.insert("required".into(), Value::Array(vec![RESULT_FIELD.into()]));
    root.insert("additionalProperties".into(), false.into());
    root.insert(
        "description".into(),
        format!("The tool's output is under `{RESULT_FIELD}` (MCP structured content is an object).").into(),
    );
    Value::Object(root)
}

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
    /// Also serve tags' and names' tools of publishers this node does not trust (marked, under
    /// other names; see [`super::select`]).
    pub any_publisher: bool,
    /// The lock file every load is checked against ([`Lock::check`]).
    pub lock: Option<Lock>,
}

impl Selection {
    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.names.is_empty() && self.ids.is_empty()
    }

    /// Adds the names of the lock's tools to the names looked up, so a new definition of a
    /// locked name is found (and refused). A locked spec's own name is used when the node
    /// has it, else the locked name.
    pub async fn add_lock_names(&mut self, client: &Client) -> Result<(), ClientError> {
        let Some(lock) = &self.lock else {
            return Ok(());
        };
        let mut names: BTreeSet<String> = self.names.iter().cloned().collect();
        for (name, id) in &lock.tools {
            match client.spec(id).await {
                Ok(v) => names.insert(v.spec.name),
                Err(ClientError::NotFound { .. }) => names.insert(name.clone()),
                Err(e) => return Err(e),
            };
        }
        self.names = names.into_iter().collect();
        Ok(())
    }

    /// Looks the selection up through the node and applies its trust list ([`pick`]).
    /// `network` asks the node's peers too.
    pub async fn load(&self, client: &Client, network: bool) -> Result<Picked, ClientError> {
        let trust = client.trust_list().await?;
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
        let mut found = Vec::new();
        for q in queries {
            // Every page: a tag selection serves all its tools, not the first hundred.
            match client.find_all(&q).await {
                Ok(r) => found.extend(r.results),
                // A locked name that is not a valid tool name any more finds nothing.
                Err(ClientError::BadRequest { .. }) if q.name.is_some() => {}
                Err(e) => return Err(e),
            }
        }
        let mut pinned = Vec::new();
        for id in &self.ids {
            match client.spec(id).await {
                Ok(v) if v.status != SpecStatus::Revoked => pinned.push(v),
                Ok(_) => warn!(tool = %id.fmt_short(), "selected tool is revoked; not serving it"),
                Err(ClientError::NotFound { .. }) => {
                    warn!(tool = %id.fmt_short(), "selected tool is not on this node")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(pick(found, pinned, &trust, self.any_publisher, false))
    }
}

/// Keeps, of each publisher's tool name, only the newest version (then the newest spec): what a
/// tag or name selects, for `atr mcp` and `atr export` alike.
pub fn newest_per_tool(views: Vec<SpecView>) -> Vec<SpecView> {
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
    /// How its output becomes structured content.
    pub output: OutputShape,
    /// Own, trusted or untrusted publisher.
    pub standing: Standing,
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
    /// Exports the chosen specs as MCP tools under their chosen names, with their id and
    /// provenance in `_meta`. A spec that cannot be exported is left out with a warning.
    pub fn build(chosen: Vec<Chosen>) -> Self {
        let mut set = Self::default();
        for c in chosen {
            if set.by_name.contains_key(&c.name) {
                warn!(tool = %c.view.id.fmt_short(), name = %c.name, "name already served; leaving this tool out");
                continue;
            }
            match served(&c) {
                Ok(t) => {
                    set.by_name.insert(t.tool.name.to_string(), set.tools.len());
                    set.tools.push(t);
                }
                Err(e) => warn!(tool = %c.view.id.fmt_short(), error = %e, "cannot serve this tool over MCP"),
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

fn served(c: &Chosen) -> Result<ServedTool, String> {
    let view = &c.view;
    let output = OutputShape::of(view.spec.output_schema.as_ref());
    let mut meta = provenance_meta(c);
    if output == OutputShape::Wrapped {
        meta.insert(META_WRAPPED_KEY.into(), RESULT_FIELD.into());
    }
    let opts = ExportOptions {
        name: Some(c.name.clone()),
        meta: Some(meta),
        ..ExportOptions::default()
    };
    let mut value = to_mcp(&c.spec(), &opts).map_err(|e| e.to_string())?;
    if let (OutputShape::Wrapped, Some(schema), Value::Object(tool)) =
        (output, &view.spec.output_schema, &mut value)
    {
        tool.insert("outputSchema".into(), wrapped_output_schema(schema));
    }
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
        output,
        standing: c.standing,
        schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_become_objects() {
        assert_eq!(OutputShape::of(None), OutputShape::Free);
        assert_eq!(
            OutputShape::of(Some(&json!({"type": "object"}))),
            OutputShape::Object
        );
        assert_eq!(
            OutputShape::of(Some(&json!({"type": "integer"}))),
            OutputShape::Wrapped
        );
        assert_eq!(OutputShape::Wrapped.structured(json!(5)), json!({"result": 5}));
        assert_eq!(
            OutputShape::Wrapped.structured(json!({"a": 1})),
            json!({"result": {"a": 1}})
        );
        assert_eq!(OutputShape::Free.structured(json!({"a": 1})), json!({"a": 1}));
        assert_eq!(OutputShape::Free.structured(json!([1])), json!({"result": [1]}));
        assert_eq!(OutputShape::Object.structured(json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn wrapped_schemas_keep_their_definitions_resolvable() {
        let inner = json!({
            "$defs": {"n": {"type": "integer"}},
            "$ref": "#/$defs/n",
            "description": "a + b."
        });
        let w = wrapped_output_schema(&inner);
        assert_eq!(w["type"], "object");
        assert_eq!(w["required"], json!(["result"]));
        assert_eq!(w["$defs"]["n"]["type"], "integer");
        assert!(w["properties"]["result"].get("$defs").is_none());
        let compiled = CompiledSchema::new(&w).unwrap();
        assert!(compiled.check(&json!({"result": 5})).is_ok());
        assert!(compiled.check(&json!({"result": "5"})).is_err());
        assert!(compiled.check(&json!(5)).is_err());
    }
}
