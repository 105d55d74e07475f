//! `ferry trust add|list|remove`: the public keys whose bundles this store imports.

use super::output;
use anyhow::Context;
use ferry::bundle::minisign::PublicKey;
use ferry::store::Store;
use ferry::store::StoreLocation;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Trust the key in a .pub file (minisign format).
    Add {
        key: PathBuf,
        /// A note for people (who holds the key, for which channel).
        #[arg(long)]
        comment: Option<String>,
    },
    /// The trusted keys.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a key (by key id).
    Remove { key_id: String },
}

pub fn load_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the public key {}", path.display()))?;
    PublicKey::parse(&text).with_context(|| path.display().to_string())
}

pub fn run(at: &StoreLocation, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Add { key, comment } => {
            let public = load_public_key(&key)?;
            let store = Store::open_or_create_at(at)?;
            let added = store.add_trusted_key(
                &public.key_id.to_string(),
                &public.to_base64(),
                comment.as_deref(),
            )?;
            if added {
                println!("trusting key {} from {}", public.key_id, key.display());
            } else {
                println!("key {} was already trusted", public.key_id);
            }
        }
        Command::List { json } => {
            let store = Store::open_at(at)?;
            let keys = store.trusted_keys()?;
            if json {
                return output::json(&keys);
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.key_id.clone(),
                        k.added_at.clone(),
                        k.comment.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["KEY ID", "ADDED", "COMMENT"], &rows);
        }
        Command::Remove { key_id } => {
            let store = Store::open_at(at)?;
            anyhow::ensure!(
                store.remove_trusted_key(&key_id)?,
                "key {key_id} is not trusted here (see `ferry trust list`)"
            );
            println!("key {key_id} is no longer trusted");
        }
    }
    Ok(())
}
