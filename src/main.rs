//! The `ferry` binary: parse the command line, run the command, map failures to exit codes.
//! Everything else lives in the library; `cli/` is the only place that prints.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
