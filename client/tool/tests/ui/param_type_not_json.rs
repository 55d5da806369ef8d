use std::time::Instant;

/// Wait until a moment.
#[atr_tool::tool]
fn wait_until(label: String, when: Option<Vec<Instant>>) -> bool {
    let _ = (label, when);
    true
}

fn main() {}
