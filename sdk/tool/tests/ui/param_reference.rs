/// Shout a text.
#[atr_tool::tool]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

fn main() {}
