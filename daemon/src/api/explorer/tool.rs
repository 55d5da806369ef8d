//! The tool page (`GET /explorer/tool/{id}`) and its invoke form
//! (`POST /explorer/tool/{id}/invoke`).

use atr_protocol::export::{ExportFormat, ExportOptions, export};
use atr_protocol::{PublicKey, SignedSpec, ToolId, ToolSpec};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::html::{Tab, copyable, json, query, text, token_field, when};
use super::{AppState, error_page, form_error, limits, ok_page, status_words};
use crate::api::ApiError;
use crate::catalog::Status;

/// Properties listed in a rendered schema table (the raw schema below shows the rest).
const MAX_SCHEMA_ROWS: usize = 100;
/// Bytes of the invoke form's input text accepted (the API's body limit bounds the form too).
const MAX_INPUT_BYTES: usize = 256 * 1024;

/// What the tool page shows of one held spec.
struct Held {
    signed: SignedSpec,
    envelope: Vec<u8>,
    spec: ToolSpec,
    status: Status,
    delegated: Vec<PublicKey>,
}

fn held(state: &AppState, id: &ToolId) -> Result<Held, ApiError> {
    let now = crate::time::now_ms();
    let (signed, envelope, status, delegated) = state
        .repo
        .read(|cat| {
            cat.get(id).map(|e| {
                (
                    e.spec.signed(),
                    e.spec.envelope().to_vec(),
                    e.status,
                    cat.delegated_providers(id, now),
                )
            })
        })
        .ok_or_else(|| ApiError::not_found(format!("no spec {id} on this node")))?;
    let signed = signed.map_err(|e| ApiError::internal(e.to_string()))?;
    let spec = signed.value().clone();
    Ok(Held {
        signed,
        envelope,
        spec,
        status,
        delegated,
    })
}

fn parse_id(id: &str) -> Result<ToolId, ApiError> {
    crate::api::parse_id(id)
}

pub(super) async fn tool_page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let res = async {
        let id = parse_id(&id)?;
        let h = held(&state, &id)?;
        let domain = state
            .claims
            .verify(h.spec.homepage.as_deref(), &h.spec.publisher)
            .await;
        Ok::<_, ApiError>((id, h, domain))
    }
    .await;
    match res {
        Ok((id, h, domain)) => {
            let provides_here = h.spec.publisher != state.repo.me() && state.repo.provides(&h.signed);
            let body = render(&state, id, &h, domain.as_ref(), provides_here, None);
            ok_page(&state, &h.spec.label(), Tab::Catalog, body)
        }
        Err(e) => error_page(&state, e),
    }
}

/// The invoke form's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InvokeForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    input: String,
}

pub(super) async fn invoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: Result<Form<InvokeForm>, FormRejection>,
) -> Response {
    if !state.explorer.invoke {
        return error_page(
            &state,
            ApiError::new(
                StatusCode::FORBIDDEN,
                atr_protocol::api::ErrorCode::Denied,
                "the explorer is read-only on this node: its operator has not set `[explorer] invoke = true`",
            ),
        );
    }
    let res = async {
        let id = parse_id(&id)?;
        let Form(f) = form.map_err(form_error)?;
        super::check_token(&state, &f.token)?;
        if f.input.len() > MAX_INPUT_BYTES {
            return Err(
                ApiError::bad_request(format!("input over {MAX_INPUT_BYTES} bytes")).with_field("input"),
            );
        }
        let input: Value = serde_json::from_str(&f.input)
            .map_err(|e| ApiError::bad_request(format!("the input is not JSON: {e}")).with_field("input"))?;
        let req = atr_protocol::api::InvokeRequest {
            id: Some(id),
            name: None,
            version: None,
            publisher: None,
            input,
        };
        let resp = state.caller.invoke(req).await?;
        Ok::<_, ApiError>((id, resp))
    }
    .await;
    let (id, resp) = match res {
        Ok(v) => v,
        Err(e) => return error_page(&state, e),
    };
    let h = match held(&state, &id) {
        Ok(h) => h,
        Err(e) => return error_page(&state, e),
    };
    let provides_here = h.spec.publisher != state.repo.me() && state.repo.provides(&h.signed);
    let body = render(&state, id, &h, None, provides_here, Some(&resp));
    ok_page(&state, &format!("Ran {}", h.spec.label()), Tab::Catalog, body)
}

fn render(
    state: &AppState,
    id: ToolId,
    h: &Held,
    domain: Option<&atr_protocol::claim::DomainClaim>,
    provides_here: bool,
    result: Option<&atr_protocol::api::InvokeResponse>,
) -> Markup {
    let s = &h.spec;
    let me = state.repo.me();
    let (status, successor) = status_words(&h.status);
    let first_example = s
        .examples
        .first()
        .map(|e| json(&e.input))
        .unwrap_or_else(|| "{}".into());
    html! {
        nav aria-label="Breadcrumb" { a href="/explorer" { "Catalog" } " / " (text(&s.name)) }
        h1 { (text(&s.name)) " " span class="muted" { (s.version.to_string()) } }
        @if let Some(r) = result { (invocation_result(r, &me)) }
        p { (text(&s.description)) }
        dl class="facts" {
            dt { "Status" }
            dd {
                span class={ "status-" (status) } { (status) }
                @match status {
                    "revoked" => { " — revoked by its publisher: no honest node runs it." }
                    "deprecated" => { " — deprecated by its publisher." @if let Some(n) = successor { " Successor: " a class="mono" href={ "/explorer/tool/" (n) } { (n.fmt_short()) } } }
                    _ => { " — not revoked." }
                }
            }
            dt { "Id" } dd class="mono" { (id.to_string()) }
            dt { "Publisher" } dd class="mono" {
                a href={ "/explorer?" (query(&[("publisher", &s.publisher.to_string())])) } { (s.publisher.to_string()) }
                @if s.publisher == me { " (this node)" }
            }
            @if let Some(d) = domain { dt { "Domain claim" } dd { (text(&d.domain)) " — " (claim_words(&d.status)) } }
            dt { "Tags" } dd { @for t in &s.tags { a class="tag" href={ "/explorer?" (query(&[("tag", t)])) } { (text(t)) } } }
            dt { "Side effects" } dd { @for (i, e) in s.side_effects.iter().enumerate() { @if i > 0 { ", " } (e.as_str()) } }
            dt { "Cost" } dd { (s.cost.as_str()) }
            dt { "Limits" } dd { (limits(&s.limits)) }
            dt { "Image" } dd class="mono" { (text(&s.runtime.image)) br; (text(&s.runtime.image_digest)) }
            @if !s.runtime.command.is_empty() { dt { "Command" } dd class="mono" { (text(&s.runtime.command.join(" "))) } }
            @if let Some(hp) = &s.homepage { dt { "Homepage" } dd class="mono" {
                // Validated as an http(s) URL when the spec was verified; still only such a URL becomes a link.
                @if hp.starts_with("https://") || hp.starts_with("http://") {
                    a href=(text(hp)) rel="nofollow noopener noreferrer" { (text(hp)) }
                } @else { (text(hp)) }
            } }
            @if let Some(l) = &s.license { dt { "License" } dd { (text(l)) } }
            dt { "Created" } dd { (when(s.created_at_ms)) }
        }

        h2 id="providers" { "Providers" }
        p class="muted" { "Who may answer an invocation of this id: its publisher, providers it delegated (signed, expiring), and this node when its operator agreed to run it." }
        ul {
            li class="mono" { (s.publisher.to_string()) " — publisher" @if s.publisher == me { " (this node)" } }
            @for p in &h.delegated { li class="mono" { (p.to_string()) " — delegated" @if *p == me { " (this node)" } } }
            @if provides_here { li class="mono" { (me.to_string()) " — this node provides it" } }
        }

        h2 id="input" { "Input" }
        (schema_table("input", &s.input_schema))
        (copyable("input-schema", "Input schema (JSON Schema)", &json(&s.input_schema)))
        h2 id="output" { "Output" }
        @if let Some(o) = &s.output_schema {
            (schema_table("output", o))
            (copyable("output-schema", "Output schema (JSON Schema)", &json(o)))
        } @else { p { "No output schema declared." } }

        @if !s.examples.is_empty() {
            h2 id="examples" { "Examples" }
            @for (i, e) in s.examples.iter().enumerate() {
                h3 { "Example " (i + 1) }
                div class="facts" {
                    (copyable(&format!("example-{i}-input"), "Input", &json(&e.input)))
                    (copyable(&format!("example-{i}-output"), "Output", &json(&e.output)))
                }
            }
        }

        h2 id="exports" { "Exports" }
        p class="muted" { "The tool definition in the formats agents consume." }
        @for f in ExportFormat::ALL {
            @match export(s, f, &ExportOptions::default()) {
                Ok(v) => { (copyable(&format!("export-{}", f.as_str()), f.as_str(), &json(&v))) }
                Err(e) => { h3 { (f.as_str()) } p class="error" { (text(&e.to_string())) } }
            }
        }

        h2 id="invoke" { "Invoke" }
        @if !state.explorer.invoke {
            p { "The explorer is read-only on this node (its operator can enable this form with " code { "[explorer] invoke = true" } "). Use " code { "atr invoke" } " instead." }
        } @else if status == "revoked" {
            p { "A revoked tool is never invoked." }
        } @else {
            form class="stack" method="post" action={ "/explorer/tool/" (id) "/invoke" } {
                div {
                    label for="invoke-input" { "Input (JSON)" }
                    textarea id="invoke-input" name="input" rows="8" spellcheck="false" aria-describedby="input-help" { (first_example) }
                    small id="input-help" class="muted" { "Checked against the input schema above before anything runs." }
                }
                (token_field())
                div { button type="submit" { "Invoke" } }
            }
        }

        h2 id="signed" { "Signed spec" }
        p class="muted" { "The envelope as stored: canonical CBOR of the spec, signed by the publisher's key; the id is its blake3 hash." }
        details {
            summary { "Envelope (hex, " (h.envelope.len()) " bytes)" }
            (copyable("envelope", "Envelope", &hex::encode(&h.envelope)))
        }
        details {
            summary { "Spec as JSON" }
            (copyable("spec-json", "Spec", &json(&serde_json::to_value(s).unwrap_or(Value::Null))))
        }
    }
}

/// The answer of an invocation: output and the verified receipt.
fn invocation_result(r: &atr_protocol::api::InvokeResponse, me: &PublicKey) -> Markup {
    let rc = &r.receipt;
    let ok = r.status == atr_protocol::receipt::InvocationStatus::Ok;
    html! {
        section class=(if ok { "ok" } else { "error" }) role="status" aria-labelledby="result-h" {
            h2 id="result-h" { "Result: " (r.status.as_str()) }
            p { "The receipt below was verified by this node: signed by the provider, and bound to this invocation, this tool, its image, the exact input and the exact output." }
            (copyable("result-output", "Output", &json(&r.output)))
            h3 { "Verified receipt" }
            dl class="facts" {
                dt { "Invocation" } dd class="mono" { (rc.invocation.to_string()) }
                dt { "Tool" } dd class="mono" { (rc.tool.to_string()) }
                dt { "Provider" } dd class="mono" { (rc.provider.to_string()) @if rc.provider == *me { " (this node)" } }
                @if let Some(k) = &r.provider_kind { dt { "Provider allowed as" } dd { (text(&format!("{k:?}").to_lowercase())) } }
                dt { "Image" } dd class="mono" { (text(&rc.image_digest)) }
                dt { "Input hash" } dd class="mono" { (rc.input_hash.to_string()) }
                dt { "Output hash" } dd class="mono" { (rc.output_hash.to_string()) }
                dt { "Output" } dd { (rc.output_bytes) " bytes" }
                dt { "Status" } dd { (rc.status.as_str()) @if let Some(c) = rc.exit_code { " (exit " (c) ")" } }
                dt { "Run time" } dd { (rc.finished_at_ms.saturating_sub(rc.started_at_ms)) " ms (started " (when(rc.started_at_ms)) ")" }
                dt { "Limits applied" } dd { (limits(&rc.limits)) }
            }
            @if r.attempts.len() > 1 {
                h3 { "Providers tried" }
                ol { @for a in &r.attempts { li { span class="mono" { (text(&a.provider)) } ": " (text(&atr_protocol::text::cap(&a.outcome, 400))) } } }
            }
            details {
                summary { "Signed receipt (hex)" }
                (copyable("receipt-hex", "Receipt", &text(&r.receipt_hex)))
            }
        }
    }
}

/// The properties of an object schema as a table: name, type, required, description.
fn schema_table(which: &str, schema: &Value) -> Markup {
    let props = schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let ty = |v: &Value| match v.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
        _ if v.get("enum").is_some() => "enum".into(),
        _ => "any".into(),
    };
    html! {
        @match props {
            Some(p) if !p.is_empty() => {
                table aria-label={ (which) " fields" } {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Type" } th scope="col" { "Required" } th scope="col" { "Description and constraints" } } }
                    tbody {
                        @for (name, v) in p.iter().take(MAX_SCHEMA_ROWS) {
                            tr {
                                td class="mono" { (text(name)) }
                                td { (text(&ty(v))) }
                                td { @if required.contains(&name.as_str()) { "yes" } @else { "no" } }
                                td { (constraints(v)) }
                            }
                        }
                    }
                }
                @if p.len() > MAX_SCHEMA_ROWS { p class="muted" { (p.len() - MAX_SCHEMA_ROWS) " more fields in the schema below." } }
            }
            _ => { p { "Type: " strong { (text(&ty(schema))) } } (constraints(schema)) }
        }
    }
}

/// A property's description and the common constraints, as text.
fn constraints(v: &Value) -> Markup {
    let mut parts: Vec<String> = Vec::new();
    for key in [
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "default",
        "enum",
    ] {
        if let Some(x) = v.get(key) {
            parts.push(format!("{key}: {x}"));
        }
    }
    html! {
        @if let Some(d) = v.get("description").and_then(Value::as_str) { (text(d)) @if !parts.is_empty() { br; } }
        @if !parts.is_empty() { span class="muted" { (text(&atr_protocol::text::cap(&parts.join("; "), 600))) } }
    }
}

/// A domain claim's standing in words.
fn claim_words(s: &atr_protocol::claim::ClaimStatus) -> String {
    use atr_protocol::claim::ClaimStatus;
    match s {
        ClaimStatus::Verified { until_ms } => {
            format!("verified (DNS TXT record, checked until {})", when(*until_ms))
        }
        ClaimStatus::Refused { reason } => {
            format!("not verified: {}", text(&atr_protocol::text::cap(reason, 300)))
        }
        ClaimStatus::Unchecked => "not checked yet".into(),
        _ => "unknown".into(),
    }
}
