//! `ferry publish`: local publishing. `ferry publish --msi FILE ...` (or `--msp`, `--exe`)
//! publishes an installer into the store, signed with the site's certificate; `ferry publish
//! list` shows what was published, `revise` and `expire` write its next revision; `ferry publish cert new --out PREFIX` makes the site's
//! publishing certificate (a self-signed code-signing certificate and its key).

use super::output;
use anyhow::Context;
use ferry::catalog::Guid;
use ferry::publish::detect::parse_detect;
use ferry::publish::document::{
    Classification, DetectRule, KbArticle, MsrcSeverity, PrerequisiteGroup, ReturnCode,
};
use ferry::publish::publisher::{
    self, Clearable, InstallerSource, PublishRequest, RevisionRequest,
};
use ferry::publish::signing::{self, NewCertificate, PublishingIdentity};
use ferry::store::{Store, StoreLocation};
use std::path::{Path, PathBuf};

/// `ferry publish`: its subcommands (publishing an installer itself will take its flags here,
/// beside them: hence `args_conflicts_with_subcommands`).
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    publish: PublishArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The publishing certificate, which signs every published CAB.
    #[command(subcommand)]
    Cert(CertCommand),
    /// The updates published here, oldest first.
    List(ListArgs),
    /// Write the next revision of an update published here: its title, description,
    /// classification, supersedence, prerequisites or (an EXE's) detection rules. The installer
    /// stays: a new installer is a new update (publish it; it supersedes this one).
    Revise(ReviseArgs),
    /// Expire an update published here: clients are no longer offered it (a new revision,
    /// Expired; it stays in the catalog).
    Expire(ExpireArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReviseArgs {
    /// The published update's id.
    id: ferry::ids::UpdateId,
    /// A new title (one line).
    #[arg(long)]
    title: Option<String>,
    /// A new description.
    #[arg(long)]
    description: Option<String>,
    /// A new more-info URL (http or https).
    #[arg(long, value_name = "URL")]
    more_info_url: Option<String>,
    /// A new KB article number.
    #[arg(long, value_name = "KB")]
    kb: Option<KbArticle>,
    /// A new MSRC severity: Critical, Important, Moderate or Low.
    #[arg(long)]
    severity: Option<MsrcSeverity>,
    /// A new classification, by title or GUID (as for publishing).
    #[arg(long)]
    classification: Option<Classification>,
    /// Remove a field, repeatable: description, more-info-url, kb or severity.
    #[arg(long, value_name = "FIELD")]
    clear: Vec<Clearable>,
    /// The EXE's detection rules, replacing the earlier ones (syntax as for publishing),
    /// repeatable.
    #[arg(long, value_name = "RULE", value_parser = detect_rule)]
    detect: Vec<DetectRule>,
    /// Replaces the prerequisites, repeatable (GUID[,GUID...] each).
    #[arg(long, value_name = "GUID[,GUID...]", value_parser = prerequisite, conflicts_with = "no_prerequisites")]
    prerequisite: Vec<PrerequisiteGroup>,
    /// Remove every prerequisite.
    #[arg(long)]
    no_prerequisites: bool,
    /// Replaces the updates this one supersedes, repeatable.
    #[arg(long, value_name = "GUID", conflicts_with = "supersedes_nothing")]
    supersedes: Vec<Guid>,
    /// Supersede no update.
    #[arg(long)]
    supersedes_nothing: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ExpireArgs {
    /// The published update's id.
    id: ferry::ids::UpdateId,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

/// `ferry publish --msi FILE | --msp FILE | --exe FILE ...`.
#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// An MSI: product code, version, language, vendor and product are read from it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["msp", "exe"])]
    msi: Option<PathBuf>,
    /// An MSP: patch code and target products are read from it (--vendor, --product and
    /// --title are needed).
    #[arg(long, value_name = "FILE", conflicts_with = "exe")]
    msp: Option<PathBuf>,
    /// An EXE: --install-args, --return-code and at least one --detect rule say how to run it
    /// and how to tell it is installed (--vendor, --product and --title are needed).
    #[arg(long, value_name = "FILE")]
    exe: Option<PathBuf>,
    /// The EXE's command-line arguments for a silent install.
    #[arg(long, value_name = "ARGS", requires = "exe")]
    install_args: Option<String>,
    /// What an EXE's exit code means: CODE=success, CODE=reboot (success, restart needed) or
    /// CODE=failure; repeatable. Default: 0 success, 3010 and 1641 reboot.
    #[arg(long, value_name = "CODE=MEANING", requires = "exe", value_parser = parse_return_code)]
    return_code: Vec<ReturnCode>,
    /// How to tell the EXE's software is installed, repeatable (all must hold): file:PATH,
    /// file:PATH>=VERSION, registry:HKLM\KEY, registry:HKLM\KEY@VALUE,
    /// registry:HKLM\KEY@VALUE>=VERSION (registry32: for the 32-bit view), msi:{PRODUCT-CODE}
    /// [>=MIN][<=MAX]. PATH may start with %ProgramFiles%, %ProgramFilesX86%, %Windows%,
    /// %System%, %CommonProgramFiles%.
    #[arg(long, value_name = "RULE", requires = "exe", value_parser = detect_rule)]
    detect: Vec<DetectRule>,
    /// Properties for msiexec (an MSI), e.g. "ALLUSERS=1 REBOOT=ReallySuppress".
    #[arg(long, value_name = "TEXT", requires = "msi")]
    msi_properties: Option<String>,
    /// The update's title (default for an MSI: its product name and version).
    #[arg(long)]
    title: Option<String>,
    /// The vendor (default for an MSI: its Manufacturer).
    #[arg(long)]
    vendor: Option<String>,
    /// The product (default for an MSI: its ProductName).
    #[arg(long)]
    product: Option<String>,
    /// The classification, by title (Security Updates, Critical Updates, Definition Updates,
    /// Updates, Update Rollups, Service Packs, Feature Packs, Tools, Applications; "security"
    /// and the like will do) or GUID.
    #[arg(long, default_value = "updates")]
    classification: Classification,
    #[arg(long, value_name = "KB")]
    kb: Option<KbArticle>,
    /// The update's id (default: a new GUID); an id already in the store is refused.
    #[arg(long, value_name = "GUID")]
    id: Option<Guid>,
    /// Critical, Important, Moderate or Low.
    #[arg(long)]
    severity: Option<MsrcSeverity>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long, value_name = "URL")]
    more_info_url: Option<String>,
    /// Updates the client must have first, repeatable; each value is one GUID or several
    /// separated by commas (any of them), e.g. the Windows product's category.
    #[arg(long, value_name = "GUID[,GUID...]", value_parser = prerequisite)]
    prerequisite: Vec<PrerequisiteGroup>,
    /// Earlier published updates this one replaces, repeatable. Default: the same product's
    /// published updates of a lower version that are not expired.
    #[arg(long, value_name = "GUID", conflicts_with = "supersedes_nothing")]
    supersedes: Vec<Guid>,
    /// Replace no earlier update.
    #[arg(long)]
    supersedes_nothing: bool,
    /// The publishing certificate (PEM), with --key.
    #[arg(long, value_name = "CRT", requires = "key", conflicts_with = "pfx")]
    cert: Option<PathBuf>,
    /// Its private key (PEM, PKCS#8 or PKCS#1, unencrypted).
    #[arg(long, value_name = "KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// The publishing certificate and key as PKCS#12.
    #[arg(long, value_name = "FILE")]
    pfx: Option<PathBuf>,
    /// A file holding the PFX's password.
    #[arg(long, value_name = "FILE", requires = "pfx")]
    password_file: Option<PathBuf>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

fn parse_return_code(text: &str) -> Result<ReturnCode, String> {
    let (code, meaning) = text.split_once('=').ok_or("write CODE=success|reboot|failure")?;
    let code: i32 = code.trim().parse().map_err(|_| format!("{code:?} is not an exit code"))?;
    match meaning.trim() {
        "success" => Ok(ReturnCode::success(code)),
        "reboot" => Ok(ReturnCode::success_with_reboot(code)),
        "failure" => Ok(ReturnCode::failure(code)),
        other => Err(format!("{other:?}: the meaning is success, reboot or failure")),
    }
}

fn detect_rule(text: &str) -> Result<DetectRule, String> {
    parse_detect(text).map_err(|e| e.to_string())
}

fn prerequisite(text: &str) -> Result<PrerequisiteGroup, String> {
    let ids = text
        .split(',')
        .map(|g| Guid::parse(g.trim()).map_err(|_| format!("{g:?} is not a GUID")))
        .collect::<Result<Vec<_>, _>>()?;
    PrerequisiteGroup::any_of(ids).map_err(|e| e.to_string())
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

pub fn run(at: &StoreLocation, args: Args) -> anyhow::Result<()> {
    match args.command {
        Some(Command::Cert(CertCommand::New(args))) => cert_new(args),
        Some(Command::List(list_args)) => list(at, list_args),
        Some(Command::Revise(revise_args)) => revise(at, revise_args),
        Some(Command::Expire(expire_args)) => expire(at, expire_args),
        None => publish(at, args.publish),
    }
}

fn publish(at: &StoreLocation, a: PublishArgs) -> anyhow::Result<()> {
    let installer = match (a.msi, a.msp, a.exe) {
        (Some(path), _, _) => InstallerSource::Msi { path, properties: a.msi_properties },
        (_, Some(path), _) => InstallerSource::Msp { path },
        (_, _, Some(path)) => InstallerSource::Exe {
            path,
            arguments: a.install_args,
            return_codes: a.return_code,
            detect: a.detect,
        },
        _ => anyhow::bail!(
            "ferry publish: name an installer (--msi, --msp or --exe) or a subcommand (see ferry publish --help)"
        ),
    };
    let identity = match (&a.cert, &a.key, &a.pfx) {
        (Some(cert), Some(key), _) => PublishingIdentity::from_pem_files(cert, key)?,
        (_, _, Some(pfx)) => PublishingIdentity::from_pfx_file(pfx, a.password_file.as_deref())?,
        _ => anyhow::bail!(
            "ferry publish: the publishing certificate signs what is published: give --cert CRT --key KEY or --pfx FILE (make one with `ferry publish cert new`)"
        ),
    };
    let supersedes = replaced(a.supersedes, a.supersedes_nothing);
    let request = PublishRequest {
        installer,
        title: a.title,
        vendor: a.vendor,
        product: a.product,
        classification: a.classification,
        kb_article: a.kb,
        id: a.id,
        severity: a.severity,
        description: a.description,
        more_info_url: a.more_info_url,
        supersedes,
        prerequisites: a.prerequisite,
    };
    let mut store = Store::open_or_create_at(at)?;
    let published = publisher::publish(&mut store, &request, &identity, chrono::Utc::now())
        .context("nothing was published")?;
    if a.json {
        return output::json(&published);
    }
    println!(
        "published {} revision {}: {} ({} / {})",
        published.update_id,
        published.revision_number,
        published.title,
        published.vendor,
        published.product
    );
    println!("  content {} ({} bytes, SHA-1 {})", published.cab, published.size, published.sha1);
    if !published.supersedes.is_empty() {
        println!("  supersedes {}", published.supersedes.join(", "));
    }
    for rule in &published.approved_by_rules {
        println!("  approved by rule {rule}");
    }
    Ok(())
}

/// A list an option replaces: the values given, or empty when told "nothing", or as it was.
fn replaced<T>(given: Vec<T>, nothing: bool) -> Option<Vec<T>> {
    match (nothing, given.is_empty()) {
        (true, _) => Some(Vec::new()),
        (false, false) => Some(given),
        (false, true) => None,
    }
}

fn revise(at: &StoreLocation, a: ReviseArgs) -> anyhow::Result<()> {
    let request = RevisionRequest {
        title: a.title,
        description: a.description,
        more_info_url: a.more_info_url,
        kb_article: a.kb,
        severity: a.severity,
        classification: a.classification,
        supersedes: replaced(a.supersedes, a.supersedes_nothing),
        prerequisites: replaced(a.prerequisite, a.no_prerequisites),
        detect: (!a.detect.is_empty()).then_some(a.detect),
        clear: a.clear,
    };
    let mut store = Store::open_at(at)?;
    let revised = publisher::revise(&mut store, &a.id, &request, chrono::Utc::now())
        .context("nothing was changed")?;
    if a.json {
        return output::json(&revised);
    }
    println!(
        "revised {} ({}): revision {}; clients read it at their next scan",
        revised.update_id, revised.title, revised.revision_number
    );
    if !revised.supersedes.is_empty() {
        println!("  supersedes {}", revised.supersedes.join(", "));
    }
    for rule in &revised.approved_by_rules {
        println!("  approved by rule {rule}");
    }
    Ok(())
}

fn expire(at: &StoreLocation, a: ExpireArgs) -> anyhow::Result<()> {
    let mut store = Store::open_at(at)?;
    let expired = publisher::expire(&mut store, &a.id).context("nothing was changed")?;
    if a.json {
        return output::json(&expired);
    }
    println!(
        "expired {} ({}): revision {} is Expired; clients are no longer offered it",
        expired.update_id, expired.title, expired.revision_number
    );
    Ok(())
}

fn list(at: &StoreLocation, a: ListArgs) -> anyhow::Result<()> {
    let store = Store::open_at(at)?;
    let listed = publisher::list(&store)?;
    if a.json {
        return output::json(&listed);
    }
    for p in &listed {
        println!(
            "{}  rev {}  {}  {} / {}  {}{}",
            p.update_id,
            p.revision_number,
            p.title,
            p.vendor,
            p.product,
            p.version.as_deref().unwrap_or("-"),
            if p.state == "Published" { String::new() } else { format!("  ({})", p.state) }
        );
    }
    Ok(())
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
