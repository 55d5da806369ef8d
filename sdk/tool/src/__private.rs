//! What the `#[tool]` expansion uses. Not a public API: it changes with the macro.
#![allow(missing_docs)]

use std::cell::Cell;
use std::fmt;
use std::future::Future;

use schemars::generate::SchemaGenerator;
use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use crate::schema::InputSchema;
pub use serde_json;

use crate::ToolError;

/// A type a parameter `P` (a marker type named after the parameter) can have.
#[diagnostic::on_unimplemented(
    message = "parameter `{P}` has type `{Self}`, which cannot be a tool parameter",
    label = "this type does not implement `schemars::JsonSchema` and `serde::de::DeserializeOwned`",
    note = "a tool parameter's type must implement `schemars::JsonSchema` (its input schema) and \
            `serde::de::DeserializeOwned` (to read it from the JSON input): derive both, \
            `#[derive(serde::Deserialize, schemars::JsonSchema)]`, or use a type that has them \
            (numbers, `bool`, `String`, `Vec<T>`, `Option<T>`, maps with string keys, ...)"
)]
pub trait ToolParam<P>: Sized {
    fn schema(g: &mut SchemaGenerator) -> Schema;
    fn parse(v: Value) -> Result<Self, serde_json::Error>;
}

impl<P, T: JsonSchema + DeserializeOwned> ToolParam<P> for T {
    fn schema(g: &mut SchemaGenerator) -> Schema {
        crate::schema::subschema::<T>(g)
    }

    fn parse(v: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(v)
    }
}

/// A parameter's schema and parser, checked once per parameter.
pub struct Param<T> {
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    parse: fn(Value) -> Result<T, serde_json::Error>,
}

impl<T> Param<T> {
    pub const fn of<P>() -> Self
    where
        T: ToolParam<P>,
    {
        Self {
            schema: <T as ToolParam<P>>::schema,
            parse: <T as ToolParam<P>>::parse,
        }
    }
}

/// A type a tool can return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a tool's output type",
    label = "this type does not implement `schemars::JsonSchema` and `serde::Serialize`",
    note = "a tool's output type (the `T` of `Result<T, E>`) must implement `schemars::JsonSchema` \
            (its output schema) and `serde::Serialize`: derive both, \
            `#[derive(serde::Serialize, schemars::JsonSchema)]`"
)]
pub trait ToolOutput: Sized {
    fn schema(g: &mut SchemaGenerator) -> Schema;
    fn to_value(v: &Self) -> Result<Value, serde_json::Error>;
}

impl<T: JsonSchema + Serialize> ToolOutput for T {
    fn schema(g: &mut SchemaGenerator) -> Schema {
        g.subschema_for::<T>()
    }

    fn to_value(v: &Self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(v)
    }
}

/// The output type's schema and serializer.
pub struct Output<T> {
    schema: fn(&mut SchemaGenerator) -> Schema,
    to_value: fn(&T) -> Result<Value, serde_json::Error>,
}

impl<T> Output<T> {
    pub const fn of() -> Self
    where
        T: ToolOutput,
    {
        Self {
            schema: <T as ToolOutput>::schema,
            to_value: <T as ToolOutput>::to_value,
        }
    }

    pub fn schema(&self) -> Option<Value> {
        crate::schema::output_schema(self.schema)
    }

    pub fn to_value(&self, v: &T) -> Result<Value, ToolError> {
        (self.to_value)(v).map_err(|e| {
            ToolError::failed(
                "invalid_output",
                format!("the output could not be written as JSON: {e}"),
            )
        })
    }
}

/// A parameter with a default: its type must serialize, for the schema's `default`.
#[diagnostic::on_unimplemented(
    message = "parameter `{P}` has a default, so its type `{Self}` must implement `serde::Serialize`",
    label = "the default is written into the input schema",
    note = "derive it: `#[derive(serde::Serialize)]`"
)]
pub trait ParamDefault<P> {
    fn to_json(&self) -> Value;
}

impl<P, T: Serialize> ParamDefault<P> for T {
    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

pub fn default_value<P, T: ParamDefault<P>>(v: &T) -> Value {
    v.to_json()
}

/// The input object, taken apart parameter by parameter.
pub struct Args(Map<String, Value>);

impl Args {
    pub fn new(input: Value) -> Result<Self, ToolError> {
        match input {
            Value::Object(m) => Ok(Self(m)),
            other => Err(ToolError::bad_input(
                "invalid_input",
                format!("the input must be a JSON object, not {}", kind(&other)),
            )),
        }
    }

    fn parse<T>(p: &Param<T>, name: &str, v: Value) -> Result<T, ToolError> {
        (p.parse)(v).map_err(|e| ToolError::bad_input("invalid_input", format!("parameter `{name}`: {e}")))
    }

    pub fn required<T>(&mut self, p: &Param<T>, name: &str) -> Result<T, ToolError> {
        match self.0.remove(name) {
            Some(v) => Self::parse(p, name, v),
            None => Err(ToolError::bad_input(
                "invalid_input",
                format!("missing required parameter `{name}`"),
            )),
        }
    }

    pub fn optional<T>(&mut self, p: &Param<T>, name: &str) -> Result<Option<T>, ToolError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Self::parse(p, name, v).map(Some),
        }
    }

    pub fn or_else<T>(
        &mut self,
        p: &Param<T>,
        name: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T, ToolError> {
        match self.0.remove(name) {
            None => Ok(default()),
            Some(v) => Self::parse(p, name, v),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Runs an `async fn` tool to completion on the current thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// Holds a tool's `Err` for the conversion below: [`ViaInto`] (a `ToolError`, or anything
/// `Into<ToolError>` such as every `std::error::Error`) is preferred by method resolution over
/// [`ViaDisplay`] (anything else that is `Display`, e.g. `String` or `anyhow::Error`).
pub struct ErrorHolder<E>(Cell<Option<E>>);

impl<E> ErrorHolder<E> {
    pub fn new(e: E) -> Self {
        Self(Cell::new(Some(e)))
    }
}

fn taken() -> ToolError {
    ToolError::failed("tool_error", "the tool failed")
}

pub trait ViaInto {
    fn take_tool_error(&self) -> ToolError;
}

impl<E: Into<ToolError>> ViaInto for ErrorHolder<E> {
    fn take_tool_error(&self) -> ToolError {
        self.0.take().map_or_else(taken, Into::into)
    }
}

pub trait ViaDisplay {
    fn take_tool_error(&self) -> ToolError;
}

impl<E: fmt::Display> ViaDisplay for &ErrorHolder<E> {
    fn take_tool_error(&self) -> ToolError {
        self.0
            .take()
            .map_or_else(taken, |e| ToolError::failed("tool_error", format!("{e:#}")))
    }
}
