#[atr_tool::tool]
fn undocumented(a: i64) -> i64 {
    a
}

/// Bad tag.
#[atr_tool::tool(tags = ["Math"])]
fn bad_tag(a: i64) -> i64 {
    a
}

/// Bad cost.
#[atr_tool::tool(cost = "cheap")]
fn bad_cost(a: i64) -> i64 {
    a
}

/// Bad side effect.
#[atr_tool::tool(side_effects = ["nuke"])]
fn bad_effect(a: i64) -> i64 {
    a
}

/// Bad name.
#[atr_tool::tool(name = "my tool; DROP TABLE")]
fn bad_name(a: i64) -> i64 {
    a
}

/// Misspelled option.
#[atr_tool::tool(nmae = "x")]
fn misspelled(a: i64) -> i64 {
    a
}

/// Documents a parameter it does not have, and defaults an `Option`.
///
/// # Arguments
///
/// * `b` - Not here.
#[atr_tool::tool(default(a = 1))]
fn wrong_docs(a: Option<i64>) -> i64 {
    a.unwrap_or(0)
}

/// Generic, with a receiver-like pattern.
#[atr_tool::tool]
fn generic<T>(a: T, (x, y): (i64, i64)) -> i64 {
    let _ = a;
    x + y
}

fn main() {}
