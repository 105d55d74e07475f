//! `/healthz` without waiting: a thread of its own reads the store a few times a second on a
//! connection of its own (on PostgreSQL too: not one of the pool the requests share, so a busy
//! pool does not make the server look down), and the answer is what it last found. Scans,
//! parsing and imports may keep every other thread busy; the health answer does not queue behind
//! them. A database that cannot be reached is named (host and database, never the password).
//!
//! Invariant: `/healthz` never waits for the blocking pool or the store.

use crate::store::{Store, StoreLocation};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_millis(250);
/// A probe older than this means the store stopped answering (a hung disk, a lost mount).
const STALE: Duration = Duration::from_secs(5);

pub struct Health {
    last: Mutex<(Instant, Result<(), String>)>,
    /// Where the store is, as it may be shown.
    location: String,
}

pub enum Verdict {
    Ok,
    Unavailable(String),
}

impl Health {
    /// Starts the probing thread; it ends when the server drops its `Health`.
    pub fn start(location: &StoreLocation) -> Arc<Health> {
        let health = Arc::new(Health {
            last: Mutex::new((Instant::now(), Ok(()))),
            location: location.to_string(),
        });
        let probe = Arc::downgrade(&health);
        let location = location.clone();
        let _ = std::thread::Builder::new().name("ferry-health".into()).spawn(move || {
            let mut store: Option<Store> = None;
            while let Some(health) = probe.upgrade() {
                let result = match store.as_mut() {
                    Some(s) => s.catalog_stamp().map(|_| ()).map_err(|e| e.to_string()),
                    None => {
                        open_alone(&location).map(|s| store = Some(s)).map_err(|e| e.to_string())
                    }
                };
                // A SQLite store is opened again; a PostgreSQL pool reconnects by itself.
                if result.is_err() && location.database().is_none() {
                    store = None;
                }
                *health.last.lock().expect("health lock") = (Instant::now(), result);
                drop(health);
                std::thread::sleep(EVERY);
            }
        });
        health
    }

    pub fn verdict(&self) -> Verdict {
        let (at, result) = &*self.last.lock().expect("health lock");
        match result {
            Err(e) => Verdict::Unavailable(format!("store unavailable: {e}")),
            Ok(()) if at.elapsed() > STALE => Verdict::Unavailable(format!(
                "the store {} has not answered for {} s",
                self.location,
                at.elapsed().as_secs()
            )),
            Ok(()) => Verdict::Ok,
        }
    }
}

/// The store on a connection of the probe's own: on PostgreSQL a pool of its own, not the one
/// the process shares.
fn open_alone(location: &StoreLocation) -> crate::store::StoreResult<Store> {
    match location.database() {
        Some(url) => Store::on_postgres(url, location.data()),
        None => Store::open_at(location),
    }
}
