//! `authed_fetch`: like `http_fetch`, with `Authorization: Bearer <API_TOKEN>`, where
//! `API_TOKEN` is a secret the operator bound on the provider (`atr secret set API_TOKEN`).
//! The token is sent only to the allowed host and never appears in the output.
//!
//! Input `{"url": "http://host:port/path"}`, output `{"status", "body", "truncated", "bytes"}`.

use std::process::ExitCode;

use atr_example_tools::{ToolError, http, parse, run};
use serde::Deserialize;
use serde_json::Value;

fn main() -> ExitCode {
    run(authed_fetch)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: String,
}

fn authed_fetch(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    let token = std::env::var("API_TOKEN").map_err(|_| {
        ToolError::failed(
            "no_secret",
            "the secret API_TOKEN was not provided (the provider must hold it)",
        )
    })?;
    let mut out = http::get(&input.url, &[("Authorization", format!("Bearer {token}"))])?;
    // Never hand the secret back, even if the server echoes it.
    if let Some(body) = out.get_mut("body")
        && let Some(text) = body.as_str()
        && text.contains(&token)
    {
        *body = Value::from(text.replace(&token, "[redacted]"));
    }
    Ok(out)
}
