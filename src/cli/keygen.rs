//! `ferry keygen --out PREFIX [--password-file F]`: an Ed25519 key pair in minisign's formats.

use super::output;
use anyhow::Context;
use ferry::bundle::minisign;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Writes PREFIX.key (secret) and PREFIX.pub (public).
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
    /// Encrypt the secret key with the password in this file (first line), as minisign does.
    #[arg(long, value_name = "F")]
    password_file: Option<PathBuf>,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn read_password(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let password = text.lines().next().unwrap_or("").to_string();
    anyhow::ensure!(!password.is_empty(), "{}: the password file is empty", path.display());
    Ok(password)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let key_path = PathBuf::from(format!("{}.key", args.out.display()));
    let pub_path = PathBuf::from(format!("{}.pub", args.out.display()));
    for p in [&key_path, &pub_path] {
        anyhow::ensure!(
            args.force || !p.exists(),
            "{} exists already: choose another --out, or pass --force to replace the key",
            p.display()
        );
    }
    let password = args.password_file.as_deref().map(read_password).transpose()?;
    let pair = minisign::generate();
    let secret = pair.secret.to_file_text(password.as_deref())?;
    if let Some(parent) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f =
        options.open(&key_path).with_context(|| format!("writing {}", key_path.display()))?;
    f.write_all(secret.as_bytes())?;
    std::fs::write(&pub_path, pair.public.to_file_text())
        .with_context(|| format!("writing {}", pub_path.display()))?;
    if args.json {
        return output::json(&serde_json::json!({
            "key_id": pair.public.key_id.to_string(), "secret_key": key_path, "public_key": pub_path, "encrypted": password.is_some()
        }));
    }
    println!("key id {}", pair.public.key_id);
    println!("secret key {} (keep it on the export host only)", key_path.display());
    println!(
        "public key {} (give it to the isolated side: ferry trust add {})",
        pub_path.display(),
        pub_path.display()
    );
    if password.is_none() {
        eprintln!(
            "warning: the secret key is NOT password-protected; anyone who copies it can sign bundles. Use --password-file to encrypt it."
        );
    }
    Ok(())
}
