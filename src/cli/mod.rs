//! The command line: one file per command. Commands print; the library never does.

mod admin;
mod categories;
mod check;
mod cleanup;
mod computers;
mod demo;
mod dev;
mod export;
mod groups;
mod import;
mod input;
mod inspect;
mod keygen;
mod loadgen;
mod output;
mod publish;
mod report;
mod rules;
mod serve;
mod status;
mod store;
mod trust;
mod updates;
mod verify;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use ferry::store::StoreLocation;
use ferry::store::postgres::DatabaseUrl;
use std::path::PathBuf;
use std::process::ExitCode;

/// Ferry carries Windows updates across an air gap: signed, incremental, hash-verified bundles
/// out of a connected host, and a WSUS-compatible server on the isolated network.
#[derive(Parser, Debug)]
#[command(name = "ferry", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    /// Store directory: the content tree, and the SQLite database unless --database names one.
    #[arg(
        long,
        global = true,
        env = "FERRY_DATA",
        default_value = "ferry-data",
        value_name = "DIR"
    )]
    pub data: PathBuf,

    /// A PostgreSQL database for the store (postgres://user:password@host:port/database), for
    /// several servers on one state; --data then holds only the content tree.
    #[arg(
        long,
        global = true,
        env = "FERRY_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        value_parser = DatabaseUrlParser
    )]
    pub database: Option<DatabaseUrl>,

    #[command(subcommand)]
    pub command: Command,
}

/// Parses `--database`/`--to`: clap's own error for a bad value quotes the value, and with it
/// the password; this one says only what `DatabaseUrl` says, which never shows it.
#[derive(Clone)]
pub struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = DatabaseUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<DatabaseUrl, clap::Error> {
        let name = arg.map_or_else(|| "the database URL".into(), ToString::to_string);
        let message = match value.to_str().map(str::parse::<DatabaseUrl>) {
            Some(Ok(url)) => return Ok(url),
            Some(Err(e)) => format!("invalid value for '{name}': {e}\n"),
            None => format!("invalid value for '{name}': the database URL is not UTF-8\n"),
        };
        Err(clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd))
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an Ed25519 key pair in minisign's formats (PREFIX.key, PREFIX.pub).
    Keygen(keygen::Args),
    /// Make the next bundle of a channel: sync (unless --no-sync), select, package, sign.
    Export(export::Args),
    /// Check a bundle offline (signature, trust, expiry, every volume and member); change nothing.
    Verify(verify::Args),
    /// What a bundle holds: channel, sequence, signer, updates, sizes.
    Inspect(inspect::Args),
    /// Verify a bundle, then load it into the store (idempotent, resumable).
    Import(import::Args),
    /// The public keys whose bundles this store imports.
    #[command(subcommand)]
    Trust(trust::Command),
    /// Local publishing: your own and third-party installers as updates, signed with the site's
    /// publishing certificate.
    Publish(Box<publish::Args>),
    /// The WSUS-compatible server: Windows Update Agents scan, download and report against it.
    Serve(serve::Args),
    /// Store summary: updates, files, content.
    Status(status::Args),
    /// The catalog: list and show updates.
    #[command(subcommand)]
    Updates(updates::Command),
    /// Compliance per computer or per update, from what clients reported.
    Report(report::Args),
    /// Automatic approval rules, applied after every import.
    #[command(subcommand)]
    Rules(rules::Command),
    /// Update classifications in the store (Get-WsusClassification).
    #[command(subcommand)]
    Classifications(categories::Command),
    /// Products in the store (Get-WsusProduct).
    #[command(subcommand)]
    Products(categories::Command),
    /// Computer groups and targeting.
    #[command(subcommand)]
    Groups(groups::Command),
    /// The computers that report to this server.
    #[command(subcommand)]
    Computers(computers::Command),
    /// Decline superseded and expired updates, delete unneeded content, forget old computers
    /// (Invoke-WsusServerCleanup).
    Cleanup(cleanup::Args),
    /// The admin API's and web console's bearer token.
    #[command(subcommand)]
    Admin(admin::Command),
    /// Store integrity: database consistency and, with --deep, every content file re-hashed.
    Check(check::Args),
    /// The store itself: move a SQLite store into PostgreSQL.
    #[command(subcommand)]
    Store(store::Command),
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

impl Command {
    /// Whether the command only reads and prints, so that it may end quietly when the reader of
    /// its output goes away (`ferry updates list --ids | head`), as other Unix tools do.
    ///
    /// The others hold sockets: a peer that closes a connection (a client cancelling a download,
    /// an upstream dropping a sync) must be an error on that connection, never the silent end of
    /// the process by SIGPIPE. No wildcard: a new command must choose.
    fn ends_with_its_reader(&self) -> bool {
        match self {
            Command::Serve(_) | Command::Demo(_) | Command::Export(_) => false,
            // Its database connection is a socket: a server closing it must be an error.
            Command::Store(_) => false,
            Command::Dev(dev::Command::Loadgen(_)) => false,
            Command::Dev(dev::Command::Synth(_) | dev::Command::Ingest(_)) => true,
            Command::Keygen(_)
            | Command::Verify(_)
            | Command::Inspect(_)
            | Command::Import(_)
            | Command::Trust(_)
            | Command::Publish(_)
            | Command::Status(_)
            | Command::Updates(_)
            | Command::Report(_)
            | Command::Rules(_)
            | Command::Classifications(_)
            | Command::Products(_)
            | Command::Groups(_)
            | Command::Computers(_)
            | Command::Cleanup(_)
            | Command::Admin(_)
            | Command::Check(_) => true,
        }
    }
}

pub fn main() -> ExitCode {
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        // Whether --data was given (or FERRY_DATA set), not defaulted: `store migrate` then
        // checks the content tree there rather than beside the SQLite store.
        let data_given =
            matches.value_source("data").is_some_and(|s| s != ValueSource::DefaultValue);
        Cli::from_arg_matches(&matches).map(|cli| (cli, data_given))
    });
    let (cli, data_given) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if cli.command.ends_with_its_reader() {
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts (parsing
        // the command line starts none).
        #[cfg(unix)]
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    init_tracing();
    let at = StoreLocation::new(cli.data, cli.database);
    let result = match cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Export(args) => export::run(at.database().cloned(), args),
        Command::Verify(args) => verify::run(&at, args),
        Command::Inspect(args) => inspect::run(args),
        Command::Import(args) => import::run(&at, args),
        Command::Trust(cmd) => trust::run(&at, cmd),
        Command::Publish(args) => publish::run(&at, *args),
        Command::Serve(args) => serve::run(&at, args),
        Command::Status(args) => status::run(&at, args),
        Command::Updates(cmd) => updates::run(&at, cmd),
        Command::Report(args) => report::run(&at, args),
        Command::Rules(cmd) => rules::run(&at, cmd),
        Command::Classifications(cmd) => categories::run(&at, "UpdateClassification", cmd),
        Command::Products(cmd) => categories::run(&at, "Product", cmd),
        Command::Groups(cmd) => groups::run(&at, cmd),
        Command::Computers(cmd) => computers::run(&at, cmd),
        Command::Cleanup(args) => cleanup::run(&at, args),
        Command::Admin(cmd) => admin::run(&at, cmd),
        Command::Check(args) => check::run(&at, args),
        Command::Dev(cmd) => dev::run(&at, cmd),
        Command::Demo(_) if at.database().is_some() => Err(anyhow::anyhow!(
            "ferry demo makes stores of its own (SQLite, in --dir) and does not use --database or FERRY_DATABASE_URL ({}); run it without",
            at.database().expect("checked")
        )),
        Command::Demo(args) => demo::run(args),
        Command::Store(cmd) => store::run(data_given.then_some(at.data()), at.database(), cmd),
    };
    exit_code(result)
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            eprintln!("error: {}", describe(&e));
            match e.downcast_ref::<ferry::bundle::BundleError>() {
                Some(b) => ExitCode::from(b.exit_code()),
                None => ExitCode::from(1),
            }
        }
    }
}

/// The error and its causes, each said once. The library's errors put their cause in their own
/// text (so that `to_string` is complete) and also expose it as `source`; printing the chain as
/// it is would say every cause twice.
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
