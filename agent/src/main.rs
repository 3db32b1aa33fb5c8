//! `gatehouse-execd` binary entry point: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let config = gatehouse_execd::config::Config::parse();
    gatehouse_execd::run(config)
}
