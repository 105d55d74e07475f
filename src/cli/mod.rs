//! The command line: one file per command. Commands print; the library never does.

mod check;
mod demo;
mod dev;
mod output;
mod status;
mod updates;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Ferry carries Windows updates across an air gap: signed, incremental, hash-verified bundles
/// out of a connected host, and a WSUS-compatible server on the isolated network.
#[derive(Parser, Debug)]
#[command(name = "ferry", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    /// Store directory (database and content).
    #[arg(long, global = true, env = "FERRY_DATA", default_value = "ferry-data", value_name = "DIR")]
    pub data: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Store summary: updates, files, content.
    Status(status::Args),
    /// The catalog: list and show updates.
    #[command(subcommand)]
    Updates(updates::Command),
    /// Store integrity: database consistency and, with --deep, every content file re-hashed.
    Check(check::Args),
    /// The whole pipeline on a generated catalog, explained step by step.
    Demo(demo::Args),
    /// Tools for development, tests and benchmarks.
    #[command(subcommand)]
    Dev(dev::Command),
}

/// A failure with a specific exit code (DESIGN.md §1), already explained to the user.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

pub fn main() -> ExitCode {
    // Output piped into `head` should end quietly, as with other Unix tools.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing();
    let result = match cli.command {
        Command::Status(args) => status::run(&cli.data, args),
        Command::Updates(cmd) => updates::run(&cli.data, cmd),
        Command::Check(args) => check::run(&cli.data, args),
        Command::Dev(cmd) => dev::run(&cli.data, cmd),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
