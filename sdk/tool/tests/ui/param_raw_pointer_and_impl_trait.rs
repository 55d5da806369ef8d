/// Peek at memory.
#[atr_tool::tool]
fn peek(ptr: *const u8) -> u8 {
    let _ = ptr;
    0
}

/// Call back.
#[atr_tool::tool]
fn call_back(f: impl Fn() -> u8) -> u8 {
    f()
}

fn main() {}
