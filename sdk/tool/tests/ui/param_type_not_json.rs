use std::time::Instant;

/// Wait until a moment.
#[atr_tool::tool]
fn wait_until(label: String, when: Instant) -> bool {
    let _ = (label, when);
    true
}

/// Wait until every moment: the error is about the innermost type, and a note names the
/// parameter.
#[atr_tool::tool]
fn wait_all(whens: Option<Vec<Instant>>) -> bool {
    let _ = whens;
    true
}

fn main() {}
