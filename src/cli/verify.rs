//! `ferry verify BUNDLE --trust PUB...`: check everything offline, change nothing.

use super::{Exit, output};
use ferry::bundle::minisign::PublicKey;
use ferry::bundle::verify::verify;
use ferry::store::Store;
use ferry::store::StoreLocation;
use ferry::units::format_size;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    bundle: PathBuf,
    /// Public key(s) to trust (minisign .pub); the store's trusted keys count too.
    #[arg(long, value_name = "PUB")]
    trust: Vec<PathBuf>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn trusted(at: &StoreLocation, extra: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys: Vec<PublicKey> =
        extra.iter().map(|p| super::trust::load_public_key(p)).collect::<anyhow::Result<_>>()?;
    if let Ok(store) = Store::open_at(at) {
        keys = ferry::bundle::import::trusted_keys(&store, &keys)?;
    }
    Ok(keys)
}

pub fn run(at: &StoreLocation, args: Args) -> anyhow::Result<()> {
    let keys = trusted(at, &args.trust)?;
    let bar = output::progress(0, "verifying", true);
    let report = verify(&args.bundle, &keys, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if args.json {
        output::json(&report)?;
    } else {
        if let (Some(channel), Some(seq)) = (&report.channel, report.sequence) {
            println!(
                "bundle {channel} #{seq}{} ({}), signed by key {}",
                report.base_sequence.map(|b| format!(" (delta on {b})")).unwrap_or_default(),
                report.bundle_id.as_deref().unwrap_or(""),
                report.signer_key_id.as_deref().unwrap_or("?")
            );
        }
        for p in &report.problems {
            println!("PROBLEM [exit {}] {}", p.exit_code, p.message);
        }
        if report.problems.is_empty() {
            println!(
                "OK: signature, trust, expiry, {} volume(s) and {} member(s) check out ({} read)",
                report.volumes,
                report.members,
                format_size(report.bytes_read)
            );
        }
    }
    match report.exit_code() {
        0 => Ok(()),
        code => Err(Exit(code).into()),
    }
}
