//! The `ferry` binary: parse the command line, run the command, map failures to exit codes.
//! Everything else lives in the library; `cli/` is the only place that prints.

mod cli;

/// Measured under `wrk` on cached answers: glibc's malloc spent a fifth of the server's time in
/// arena locks and consolidation, shared between the runtime's threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
