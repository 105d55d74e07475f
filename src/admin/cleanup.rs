//! Cleanup as administrators run it: a plan first (a dry run shows it), then the store carries
//! it out in small transactions.

use super::{AdminResult, AdminService};
use crate::store::{CleanupOptions, CleanupPlan};

impl AdminService<'_> {
    /// What cleanup would do with `options`; done as well when `run`.
    pub fn cleanup(&mut self, options: &CleanupOptions, run: bool) -> AdminResult<CleanupPlan> {
        let plan = self.store.plan_cleanup(options, chrono::Utc::now())?;
        if run {
            self.store.run_cleanup(&plan)?;
        }
        Ok(plan)
    }
}
