//! `ferry admin token`: the bearer token of the admin API and the web console.

use ferry::store::Store;
use ferry::store::StoreLocation;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Make the admin token and print it (once: the store keeps only its hash). With a token
    /// already made, --rotate replaces it and the old one stops working.
    Token {
        #[arg(long)]
        rotate: bool,
    },
}

pub fn run(at: &StoreLocation, cmd: Command) -> anyhow::Result<()> {
    let mut store = Store::open_or_create_at(at)?;
    match cmd {
        Command::Token { rotate } => {
            if store.has_admin_token()? && !rotate {
                anyhow::bail!(
                    "an admin token exists already and is not stored in readable form; `ferry admin token --rotate` makes a new one \
                     (the old one stops working)"
                );
            }
            let token = store.new_admin_token()?;
            println!("{token}");
            eprintln!(
                "keep it safe: it opens /api/v1 (Authorization: Bearer <token>) and the console at /admin"
            );
            Ok(())
        }
    }
}
