//! `ferry status`: what the store holds.

use super::output;
use ferry::store::Store;
use ferry::units::format_size;
use std::path::Path;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(data: &Path, args: Args) -> anyhow::Result<()> {
    let store = Store::open(data)?;
    let s = store.catalog_status()?;
    if args.json {
        return output::json(&serde_json::json!({ "store": data, "catalog": s }));
    }
    println!("store     {}", data.display());
    println!("updates   {} (revisions stored: {})", s.updates, s.revisions);
    for (kind, n) in &s.by_type {
        println!("  {kind:<10} {n}");
    }
    let cats: Vec<String> = s.categories_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if !cats.is_empty() {
        println!("categories {}", cats.join(", "));
    }
    println!("bundles   {}   expired {}", s.bundles, s.expired);
    println!("metadata  {} of update documents", format_size(s.document_bytes));
    println!(
        "files     {} ({}), {} present in content ({})",
        s.files,
        format_size(s.file_bytes),
        s.files_present,
        format_size(s.present_bytes)
    );
    Ok(())
}
