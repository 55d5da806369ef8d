//! `atr`: the command line of the local atr node (work in progress: see issue 6).

fn main() {
    eprintln!("atr: the command line is not built yet; use the atrd API (see README.md)");
    std::process::exit(2);
}
