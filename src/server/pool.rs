//! Store connections for request handlers: one per blocking task, reused.

use crate::store::{Store, StoreLocation, StoreResult};
use std::sync::Mutex;

pub struct Pool {
    location: StoreLocation,
    idle: Mutex<Vec<Store>>,
}

impl Pool {
    pub fn new(location: StoreLocation) -> Pool {
        Pool { location, idle: Mutex::new(Vec::new()) }
    }

    /// Runs `f` with a connection (call from a blocking context).
    pub fn with<T>(&self, f: impl FnOnce(&mut Store) -> StoreResult<T>) -> StoreResult<T> {
        let taken = self.idle.lock().expect("pool lock").pop();
        let mut store = match taken {
            Some(s) => s,
            None => Store::open_at(&self.location)?,
        };
        let result = f(&mut store);
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < 16 {
            idle.push(store);
        }
        result
    }
}
