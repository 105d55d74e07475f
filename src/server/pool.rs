//! Store connections for request handlers: one per blocking task, reused.

use crate::store::{Store, StoreResult};
use std::path::PathBuf;
use std::sync::Mutex;

pub struct Pool {
    dir: PathBuf,
    idle: Mutex<Vec<Store>>,
}

impl Pool {
    pub fn new(dir: PathBuf) -> Pool {
        Pool { dir, idle: Mutex::new(Vec::new()) }
    }

    /// Runs `f` with a connection (call from a blocking context).
    pub fn with<T>(&self, f: impl FnOnce(&mut Store) -> StoreResult<T>) -> StoreResult<T> {
        let taken = self.idle.lock().expect("pool lock").pop();
        let mut store = match taken {
            Some(s) => s,
            None => Store::open(&self.dir)?,
        };
        let result = f(&mut store);
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < 16 {
            idle.push(store);
        }
        result
    }
}
