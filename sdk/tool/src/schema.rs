//! Building the input and output schemas from `schemars`, and checking values against them.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use atr_protocol::input::{CompiledSchema, SchemaCheckError};

/// A generator for draft 2020-12 with every subschema inlined (recursive types still get
/// `$defs`) and no `$schema`: `for_output` describes what the type serializes to, else what it
/// deserializes from.
pub(crate) fn generator(for_output: bool) -> SchemaGenerator {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.meta_schema = None;
        s.inline_subschemas = true;
    });
    let settings = if for_output {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    settings.into_generator()
}

/// The schema of `T` as it deserializes, inlined, normalized: what a parameter of type `T`
/// gets (without its description, default or required-ness).
pub(crate) fn subschema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// The input schema of a tool, built one parameter at a time by the `#[tool]` expansion.
pub struct InputSchema {
    generator: SchemaGenerator,
    properties: Map<String, Value>,
    required: Vec<Value>,
}

impl InputSchema {
    /// An empty object schema.
    pub fn with_capacity(n: usize) -> Self {
        let _ = n;
        Self {
            generator: generator(false),
            properties: Map::new(),
            required: Vec::new(),
        }
    }

    /// Adds a property: the schema `schema` makes, then `description` and `default` on it.
    pub fn param(
        &mut self,
        name: &str,
        schema: fn(&mut SchemaGenerator) -> Schema,
        description: Option<&str>,
        required: bool,
        default: Option<Value>,
    ) {
        let mut s = schema(&mut self.generator).to_value();
        if s == Value::Bool(true) {
            s = json!({});
        }
        if let Value::Object(obj) = &mut s {
            if let Some(d) = description {
                obj.insert("description".into(), d.into());
            }
            if let Some(d) = default.filter(|d| !d.is_null()) {
                obj.insert("default".into(), d);
            }
        }
        if required {
            self.required.push(name.into());
        }
        self.properties.insert(name.to_owned(), s);
    }

    /// `{"type": "object", "properties", "required", "additionalProperties": false, "$defs"?}`,
    /// normalized (see [`normalize`]).
    pub fn finish(mut self) -> Value {
        let mut root = Map::new();
        root.insert("type".into(), "object".into());
        if !self.properties.is_empty() {
            root.insert("properties".into(), Value::Object(self.properties));
        }
        if !self.required.is_empty() {
            root.insert("required".into(), Value::Array(self.required));
        }
        root.insert("additionalProperties".into(), false.into());
        let defs = self.generator.take_definitions(true);
        if !defs.is_empty() {
            root.insert("$defs".into(), Value::Object(defs));
        }
        let mut root = Value::Object(root);
        normalize(&mut root);
        root
    }
}

/// The output schema of `T` (as it serializes), normalized; `None` when it admits any value
/// (e.g. `serde_json::Value`).
pub(crate) fn output_schema(schema: fn(&mut SchemaGenerator) -> Schema) -> Option<Value> {
    let mut g = generator(true);
    let mut s = schema(&mut g).to_value();
    if let Value::Object(obj) = &mut s {
        let defs = g.take_definitions(true);
        if !defs.is_empty() {
            obj.insert("$defs".into(), Value::Object(defs));
        }
    }
    if s == Value::Bool(true) || s == json!({}) {
        return None;
    }
    normalize(&mut s);
    Some(s)
}

/// Rewrites what schemars emits into what every agent format accepts, meaning unchanged:
///
/// - a `oneOf` whose branches are all constants (`const`, or `enum` with one value; how
///   schemars writes an enum with documented unit variants) becomes one `enum`, the variants'
///   docs appended to the description as a list (`` - `x`: doc ``);
/// - any other `oneOf` becomes `anyOf`: serde takes the first variant that matches, which is
///   `anyOf`'s meaning, and OpenAI's strict mode refuses `oneOf`;
/// - a `true` subschema becomes `{}`;
/// - the OpenAPI-style `format`s schemars puts on numbers (`int64`, `uint8`, `double`, ...),
///   which are no JSON Schema formats, are dropped; an integer's range goes into `minimum` and
///   `maximum` instead when they fit in an `i64` (a TOML manifest holds no larger integer);
/// - `title`s are dropped from subschemas (schemars names inlined types by their Rust name,
///   which tells an agent nothing).
pub fn normalize(schema: &mut Value) {
    visit(schema, true);
}

fn visit(node: &mut Value, root: bool) {
    if *node == Value::Bool(true) {
        *node = json!({});
        return;
    }
    let Value::Object(obj) = node else { return };
    if !root {
        obj.remove("title");
    }
    number_format(obj);
    if let Some(Value::Array(branches)) = obj.get("oneOf") {
        if let Some((values, docs)) = constants(branches) {
            obj.remove("oneOf");
            if values.iter().all(Value::is_string) {
                obj.insert("type".into(), "string".into());
            }
            obj.insert("enum".into(), Value::Array(values));
            if !docs.is_empty() {
                let list = docs.join("\n");
                let text = match obj.get("description").and_then(Value::as_str) {
                    Some(d) => format!("{d}\n{list}"),
                    None => list,
                };
                obj.insert("description".into(), text.into());
            }
        } else if !obj.contains_key("anyOf")
            && let Some(branches) = obj.remove("oneOf")
        {
            obj.insert("anyOf".into(), branches);
        }
    }
    atr_protocol::export::for_each_child_subschema(obj, |s| visit(s, false));
}

/// Replaces schemars' OpenAPI number formats by bounds.
fn number_format(obj: &mut Map<String, Value>) {
    let Some(format) = obj.get("format").and_then(Value::as_str) else {
        return;
    };
    let (min, max): (Option<i64>, Option<i64>) = match format {
        "int8" => (Some(i8::MIN.into()), Some(i8::MAX.into())),
        "int16" => (Some(i16::MIN.into()), Some(i16::MAX.into())),
        "int32" => (Some(i32::MIN.into()), Some(i32::MAX.into())),
        "int64" => (Some(i64::MIN), Some(i64::MAX)),
        "uint8" => (Some(0), Some(u8::MAX.into())),
        "uint16" => (Some(0), Some(u16::MAX.into())),
        "uint32" => (Some(0), Some(u32::MAX.into())),
        "uint64" | "uint" | "uint128" => (Some(0), None),
        "int" | "int128" | "float" | "double" => (None, None),
        _ => return,
    };
    obj.remove("format");
    if let Some(m) = min {
        obj.entry("minimum").or_insert(m.into());
    }
    if let Some(m) = max {
        obj.entry("maximum").or_insert(m.into());
    }
}

/// The values of a `oneOf` whose every branch is one constant, and the "`value`: doc" of those
/// with a description.
fn constants(branches: &[Value]) -> Option<(Vec<Value>, Vec<String>)> {
    let mut values = Vec::with_capacity(branches.len());
    let mut docs = Vec::new();
    for b in branches {
        let obj = b.as_object()?;
        let value = match (obj.get("const"), obj.get("enum")) {
            (Some(c), None) => c.clone(),
            (None, Some(Value::Array(e))) if e.len() == 1 => e[0].clone(),
            _ => return None,
        };
        if !obj
            .keys()
            .all(|k| matches!(k.as_str(), "const" | "enum" | "type" | "description" | "title"))
        {
            return None;
        }
        if let Some(d) = obj.get("description").and_then(Value::as_str) {
            let shown = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            docs.push(format!("- `{shown}`: {d}"));
        }
        values.push(value);
    }
    Some((values, docs))
}

/// Checks `value` against `schema`.
pub(crate) fn check(schema: &Value, value: &Value) -> Result<(), SchemaCheckError> {
    CompiledSchema::new(schema)?.check(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_unit_variants_become_one_enum() {
        let mut s = json!({"oneOf": [
            {"type": "string", "const": "x", "description": "The x mode."},
            {"type": "string", "const": "y"}
        ]});
        normalize(&mut s);
        assert_eq!(
            s,
            json!({"type": "string", "enum": ["x", "y"], "description": "- `x`: The x mode."})
        );
    }

    #[test]
    fn other_one_ofs_become_any_of_and_true_becomes_empty() {
        let mut s = json!({"type": "object", "properties": {
            "v": {"oneOf": [{"type": "object", "properties": {"A": {"type": "integer"}}, "required": ["A"]}, {"const": "B"}]},
            "any": true,
            "n": {"title": "Inner", "type": "object"}
        }});
        normalize(&mut s);
        assert!(s["properties"]["v"].get("oneOf").is_none());
        assert_eq!(s["properties"]["v"]["anyOf"][1], json!({"const": "B"}));
        assert_eq!(s["properties"]["any"], json!({}));
        assert!(s["properties"]["n"].get("title").is_none());
    }
}
