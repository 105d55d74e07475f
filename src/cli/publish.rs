//! `ferry publish`: local publishing. `ferry publish cert new --out PREFIX` makes the site's
//! publishing certificate (a self-signed code-signing certificate and its key).

use super::output;
use anyhow::Context;
use ferry::publish::signing::{self, NewCertificate};
use std::path::{Path, PathBuf};

/// `ferry publish`: its subcommands (publishing an installer itself will take its flags here,
/// beside them: hence `args_conflicts_with_subcommands`).
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_required = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The publishing certificate, which signs every published CAB.
    #[command(subcommand)]
    Cert(CertCommand),
}

#[derive(clap::Subcommand, Debug)]
pub enum CertCommand {
    /// Make a self-signed code-signing certificate (PREFIX.crt) and its private key
    /// (PREFIX.key), and say how to deploy the certificate to the clients.
    New(NewArgs),
}

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// Writes PREFIX.crt (the certificate, for the clients) and PREFIX.key (the private key,
    /// mode 0600, for this host only); neither may exist.
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
    /// The certificate's subject: a name (it becomes the common name, CN=...) or a whole
    /// distinguished name (CN=...,O=...).
    #[arg(long, value_name = "TEXT", default_value = "Ferry local publishing")]
    subject: String,
    /// How many years the certificate is valid (1 to 30). Published content is not
    /// timestamped, so clients refuse it once the certificate has expired: choose a long one.
    #[arg(long, value_name = "N", default_value_t = 5)]
    years: u32,
    /// The RSA key's size in bits (2048 or more).
    #[arg(long, value_name = "N", default_value_t = 3072)]
    bits: usize,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Some(Command::Cert(CertCommand::New(args))) => cert_new(args),
        None => anyhow::bail!("ferry publish: name a subcommand (see ferry publish --help)"),
    }
}

fn cert_new(args: NewArgs) -> anyhow::Result<()> {
    let request = NewCertificate { subject: args.subject, years: args.years, bits: args.bits };
    let created = signing::new_self_signed(&args.out, &request)
        .context("making the publishing certificate")?;
    let (from, until) =
        (signing::show_time(created.not_before), signing::show_time(created.not_after));
    if args.json {
        return output::json(&serde_json::json!({
            "certificate": created.certificate,
            "key": created.key,
            "subject": created.subject,
            "not_before": from,
            "not_after": until,
            "bits": request.bits,
            "thumbprint": created.thumbprint,
        }));
    }
    println!("certificate {} (for the clients)", created.certificate.display());
    println!(
        "private key {} (mode 0600: keep it on this host; it never goes into a bundle or the isolated store)",
        created.key.display()
    );
    println!("subject     {}", created.subject);
    println!("valid       {from} to {until} (RSA {}, SHA-256)", request.bits);
    println!("thumbprint  {} (SHA-1, as Windows shows it)", created.thumbprint);
    println!();
    print_deployment(&created.certificate);
    Ok(())
}

/// How Windows clients come to trust what the certificate signs.
fn print_deployment(certificate: &Path) {
    let file = certificate
        .file_name()
        .map_or_else(|| certificate.display().to_string(), |n| n.to_string_lossy().into_owned());
    println!("Windows clients install published updates only when they trust this certificate.");
    println!(
        "Deploy it by Group Policy, in a GPO linked to the clients (Computer Configuration > Policies):"
    );
    println!(
        "  1. Trusted Root Certification Authorities: import {file} (it is self-signed: its own root)."
    );
    println!(
        "     Windows Settings > Security Settings > Public Key Policies > Trusted Root Certification Authorities"
    );
    println!("  2. Trusted Publishers: import {file}.");
    println!(
        "     Windows Settings > Security Settings > Public Key Policies > Trusted Publishers"
    );
    println!(
        "  3. \"Allow signed updates from an intranet Microsoft update service location\": Enabled"
    );
    println!(
        "     (AcceptTrustedPublisherCerts = 1 in HKLM\\Software\\Policies\\Microsoft\\Windows\\WindowsUpdate)."
    );
    println!(
        "     Administrative Templates > Windows Components > Windows Update (on Windows 11, under"
    );
    println!("     Manage updates offered from Windows Server Update Service)");
    println!("Then gpupdate /force on a client. To try one client by hand, as administrator:");
    println!("  certutil -addstore Root {file}");
    println!("  certutil -addstore TrustedPublisher {file}");
    println!(
        "  reg add HKLM\\Software\\Policies\\Microsoft\\Windows\\WindowsUpdate /v AcceptTrustedPublisherCerts /t REG_DWORD /d 1 /f"
    );
    println!(
        "Nothing published is timestamped: once the certificate expires, clients refuse what it signed and"
    );
    println!(
        "not yet installed. Make the next certificate, deploy it and publish again before then."
    );
}
