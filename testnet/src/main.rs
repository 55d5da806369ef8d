//! `atr-testnet`: multi-node experiments (work in progress: see issue 7).

fn main() {
    eprintln!("atr-testnet: not built yet");
    std::process::exit(2);
}
