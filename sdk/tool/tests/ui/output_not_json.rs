struct Handle;

/// Open something.
#[atr_tool::tool]
fn open(path: String) -> Result<Handle, String> {
    let _ = path;
    Ok(Handle)
}

fn main() {}
