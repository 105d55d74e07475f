//! What every request handler shares.

use super::cookies::CookieJar;
use super::pool::Pool;
use super::snapshot::{Deployments, Snapshot};
use super::writer::ClientWriter;
use crate::catalog::Guid;
use crate::store::{ComputerRecord, ServerIdentity, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, Clone, Default)]
pub struct ComputerState {
    pub registered: bool,
    pub groups: Vec<Guid>,
}

/// Computers as the hot path needs them (registration, groups), kept beside the database.
#[derive(Debug, Default)]
pub struct ComputerCache {
    map: HashMap<String, ComputerState>,
}

impl ComputerCache {
    pub fn insert(&mut self, c: ComputerRecord) {
        let groups = c.groups.iter().map(|g| g.guid()).collect();
        self.map.insert(
            c.computer_id.to_ascii_lowercase(),
            ComputerState { registered: c.registered, groups },
        );
    }
    /// Takes group memberships (and registrations) from the store after an administrator
    /// changed them. A computer removed from the store is forgotten: its next call gets
    /// RegistrationRequired and it registers again, as with WSUS.
    pub fn reload(&mut self, records: Vec<ComputerRecord>) {
        let mut map = HashMap::with_capacity(records.len());
        for c in records {
            let id = c.computer_id.to_ascii_lowercase();
            let registered = c.registered || self.map.get(&id).is_some_and(|old| old.registered);
            let groups = c.groups.iter().map(|g| g.guid()).collect();
            map.insert(id, ComputerState { registered, groups });
        }
        self.map = map;
    }
    pub fn get(&self, id: &str) -> Option<&ComputerState> {
        self.map.get(&id.to_ascii_lowercase())
    }
    pub fn set_registered(&mut self, id: &str) {
        self.map.entry(id.to_ascii_lowercase()).or_default().registered = true;
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Large Core fragments read on demand, kept while they fit in a byte budget.
#[derive(Default)]
pub struct CoreCache {
    entries: HashMap<i32, Arc<str>>,
    order: std::collections::VecDeque<i32>,
    bytes: usize,
}

/// Room for the largest real Core fragment (46 MB) and a working set of CBS manifests.
const CORE_CACHE_BYTES: usize = 128 << 20;

impl CoreCache {
    pub fn get(&self, id: i32) -> Option<Arc<str>> {
        self.entries.get(&id).cloned()
    }
    pub fn put(&mut self, id: i32, core: Arc<str>) {
        if core.len() > CORE_CACHE_BYTES / 2 || self.entries.contains_key(&id) {
            return;
        }
        self.bytes += core.len();
        self.entries.insert(id, core);
        self.order.push_back(id);
        while self.bytes > CORE_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(c) = self.entries.remove(&old) {
                self.bytes -= c.len();
            }
        }
    }
}

pub struct AppState {
    /// Where the store is: its database and the data directory (content, self-update files).
    pub location: crate::store::StoreLocation,
    /// The store's content tree, which `/Content/` serves.
    pub content: crate::store::ContentStore,
    pub pool: Pool,
    pub catalog: RwLock<Arc<Snapshot>>,
    pub deployments: RwLock<Arc<Deployments>>,
    pub computers: Arc<RwLock<ComputerCache>>,
    pub writer: ClientWriter,
    pub cookies: CookieJar,
    pub identity: ServerIdentity,
    /// Base of content URLs (`http://wsus.example:8530`); from the request's Host when absent.
    pub public_url: Option<String>,
    pub big_cores: Mutex<CoreCache>,
    pub offers: super::offers::OffersCache,
    /// Rendered answers shared by clients in the same state (`answers.rs`).
    pub answers: super::answers::AnswerCache,
    /// Parsed client requests kept by their shape (`shapes.rs`).
    pub shapes: super::shapes::Shapes,
    pub mapped: super::mapped::MappedFiles,
    pub metrics: super::metrics::Metrics,
    /// The bytes held for clients: request bodies and unsent answers (`budget.rs`).
    pub budget: super::budget::MemoryBudget,
    /// What `/healthz` answers (`health.rs`).
    pub health: Arc<super::health::Health>,
    /// What wakes the snapshot refresh: the store's announcements of changes (`refresh.rs`).
    pub changes: Arc<super::refresh::Changes>,
    /// CPU work on the blocking pool, one per core at a time: parsing large SOAP bodies and
    /// compressing large answers (`routes.rs`).
    pub parsers: tokio::sync::Semaphore,
    pub console: super::console::Sessions,
}

impl AppState {
    /// Names this front end in its `/metrics` series (`ferry serve --name`); unnamed, it is
    /// `hostname:port` once it listens.
    pub fn name_front_end(&self, name: &str) {
        self.metrics.name_front_end(name);
    }

    pub fn catalog(&self) -> Arc<Snapshot> {
        self.catalog.read().expect("catalog lock").clone()
    }
    pub fn deployments(&self) -> Arc<Deployments> {
        self.deployments.read().expect("deployments lock").clone()
    }

    /// The escaped Core fragment of a catalog revision (memory, cache, or the store).
    pub fn core(&self, catalog: &Snapshot, idx: u32) -> StoreResult<Arc<str>> {
        let rev = &catalog.revs[idx as usize];
        if let Some(c) = &rev.core {
            return Ok(c.clone());
        }
        if let Some(c) = self.big_cores.lock().expect("core cache lock").get(rev.revision_id) {
            return Ok(c);
        }
        let fragment = self
            .pool
            .with(|s| s.fragment(rev.revision_id, &crate::store::FragmentKind::Core))?
            .unwrap_or_default();
        let escaped: Arc<str> = Arc::from(crate::wsus::client::escape_fragment(&fragment));
        self.big_cores.lock().expect("core cache lock").put(rev.revision_id, escaped.clone());
        Ok(escaped)
    }
}
