//! `ferry store migrate --from DIR --to URL`: a SQLite store's database copied into an empty
//! PostgreSQL database in one transaction, then checked there as `ferry check` does.

use super::{check, output};
use anyhow::bail;
use ferry::store::Store;
use ferry::store::migrate::{self, MigrationReport, Progress};
use ferry::store::postgres::DatabaseUrl;
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Copy a SQLite store into an empty PostgreSQL database: catalog, channels and their
    /// sequences, trust, approvals, groups, rules, computers, events, the server's identity,
    /// cookie key and admin token. One transaction: on failure the database is left empty.
    /// Then the store is checked there.
    ///
    /// Stop every ferry that uses the store first: what it writes after the copy began is not
    /// copied. The content tree is not copied: the PostgreSQL store's --data must hold it, the
    /// same DIR or a copy of DIR/content (give that copy as --data here, so the check looks
    /// there).
    Migrate(MigrateArgs),
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The SQLite store to copy: its data directory (the one holding ferry.db). It must have the
    /// schema this ferry writes (run any command on it once, e.g. `ferry --data DIR status`).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The PostgreSQL database to copy into (postgres://user:password@host:port/database); it
    /// must hold no rows (an empty schema, as a ferry that connected to it made, is fine).
    #[arg(long, value_name = "URL", value_parser = super::DatabaseUrlParser)]
    to: DatabaseUrl,
    /// Check deeply afterwards: re-parse every document and re-hash every content file.
    #[arg(long)]
    deep: bool,
}

/// `data` is `--data` when it was given (the content tree the PostgreSQL store will use), and
/// `database` is `--database`, which may only name the target again.
pub fn run(
    data: Option<&Path>,
    database: Option<&DatabaseUrl>,
    cmd: Command,
) -> anyhow::Result<()> {
    match cmd {
        Command::Migrate(args) => migrate(data, database, args),
    }
}

fn migrate(
    data: Option<&Path>,
    database: Option<&DatabaseUrl>,
    args: MigrateArgs,
) -> anyhow::Result<()> {
    if let Some(other) = database.filter(|d| d.to_string() != args.to.to_string()) {
        bail!(
            "store migrate writes the database --to names ({}); --database (or FERRY_DATABASE_URL) names another ({other})",
            args.to
        );
    }
    let content = data.unwrap_or(&args.from).to_path_buf();
    println!("copying {} into {}", args.from.display(), args.to);
    let mut shown = TableLines::default();
    let report = migrate::sqlite_to_postgres(&args.from, &args.to, &mut |p| shown.update(p));
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            shown.abandon();
            return Err(e.into());
        }
    };
    print_summary(&report);
    println!("checking {} with the content tree in {}", args.to, content.display());
    let store = Store::on_postgres(&args.to, &content)?;
    let checked = check::check(&store, args.deep, false);
    println!(
        "serve it with: ferry serve --database {} --data {}   (the content tree stays in {}; a copy of it serves as well)",
        args.to,
        content.display(),
        content.display()
    );
    if !args.deep {
        println!(
            "check it deeply (every document re-parsed, every payload re-hashed): ferry check --deep --database {} --data {}",
            args.to,
            content.display()
        );
    }
    checked
}

fn print_summary(report: &MigrationReport) {
    let seconds = report.elapsed.as_secs_f64();
    let rows = report.rows();
    println!(
        "committed: {rows} rows of {} tables in {seconds:.1} s ({:.0} rows/s)",
        report.tables.len(),
        rows as f64 / seconds.max(0.001)
    );
}

/// A line per table as it is copied: a progress bar while it runs (on a terminal), then the
/// rows copied.
#[derive(Default)]
struct TableLines {
    /// The table being copied, its bar, the rows copied so far and when it began.
    current: Option<(String, ProgressBar, u64, Instant)>,
}

impl TableLines {
    fn update(&mut self, progress: Progress<'_>) {
        match progress {
            Progress::Table { table, rows } => {
                self.end();
                let bar = output::progress(rows, table, false);
                self.current = Some((table.to_string(), bar, 0, Instant::now()));
            }
            Progress::Rows { done } => {
                if let Some((_, bar, copied, _)) = &mut self.current {
                    bar.set_position(done);
                    *copied = done;
                }
            }
            Progress::Committing => {
                self.end();
                println!("committing");
            }
        }
    }

    /// Clears the current table's bar: its rows were not copied after all.
    fn abandon(&mut self) {
        if let Some((_, bar, _, _)) = self.current.take() {
            bar.finish_and_clear();
        }
    }

    /// Ends the current table's line.
    fn end(&mut self) {
        if let Some((table, bar, copied, began)) = self.current.take() {
            bar.finish_and_clear();
            let seconds = began.elapsed().as_secs_f64();
            println!("  {table:<22} {copied:>10} rows {seconds:>7.1} s");
        }
    }
}
