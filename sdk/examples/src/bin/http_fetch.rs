//! `http_fetch`: GETs an `http://` URL among the hosts its signed spec allows, through the
//! node's egress proxy, and returns the status and a capped body.
//!
//! Input `{"url": "http://host:port/path"}`, output `{"status", "body", "truncated", "bytes"}`.
//! Two probe inputs exist for the sandbox's own tests: `{"lookup": "name"}` (resolve with the
//! container's resolver, which should fail) and `{"direct": "IP:port"}` (connect without the
//! proxy, which should fail: the egress network has no route out).

use std::process::ExitCode;

use atr_example_tools::{ToolError, http, parse, run};
use serde::Deserialize;
use serde_json::Value;

fn main() -> ExitCode {
    run(http_fetch)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    url: Option<String>,
    lookup: Option<String>,
    direct: Option<String>,
}

fn http_fetch(input: Value) -> Result<Value, ToolError> {
    let input: Input = parse(input)?;
    match (input.url, input.lookup, input.direct) {
        (Some(url), None, None) => http::get(&url, &[]),
        (None, Some(name), None) => Ok(http::lookup(&name)),
        (None, None, Some(addr)) => http::direct(&addr),
        _ => Err(ToolError::bad_input(
            "invalid_input",
            "give exactly one of `url`, `lookup` or `direct`",
        )),
    }
}
