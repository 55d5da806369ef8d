//! `atr`: the command line of the local atr node. Parses the flags, sets up
//! logging and runs the command (`atr_cli::run`); exit codes are 0 ok, 1 the operation
//! failed, 2 usage error.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

fn main() -> ExitCode {
    let args = atr_cli::Args::parse();
    atr_cli::init_logging(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(atr_cli::run(args));
    // A stdio read cannot be cancelled; do not wait for it at exit.
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}
