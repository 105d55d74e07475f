//! Prerequisites as a scan evaluates them: revision ids in a bitmap, and prerequisite sets
//! interned and flattened, so that a page evaluates each distinct set once, from one cache line.

/// A set of revision ids, as a bitmap (ids are dense).
pub struct IdSet {
    bits: Vec<u64>,
}

impl IdSet {
    pub fn new(max_id: i32) -> IdSet {
        IdSet { bits: vec![0; (max_id.max(0) as usize >> 6) + 1] }
    }
    pub fn insert(&mut self, id: i32) {
        if id >= 0 && ((id as usize) >> 6) < self.bits.len() {
            self.bits[id as usize >> 6] |= 1 << (id & 63);
        }
    }
    pub fn contains(&self, id: i32) -> bool {
        id >= 0 && self.bits.get(id as usize >> 6).is_some_and(|w| w & (1 << (id & 63)) != 0)
    }
}

/// Distinct prerequisite sets. Each is stored as `[clauses, len, ids.., len, ids..]`: a set is
/// satisfied when every clause has an installed member (-1 stands for an update the catalog
/// lacks, never installed).
#[derive(Debug, Default)]
pub struct Signatures {
    offsets: Vec<u32>,
    data: Vec<i32>,
    index: std::collections::HashMap<Vec<Vec<i32>>, u32>,
}

impl Signatures {
    /// The signature of a prerequisite set; clauses should come most selective first.
    pub fn intern(&mut self, clauses: Vec<Vec<i32>>) -> u32 {
        if let Some(&s) = self.index.get(&clauses) {
            return s;
        }
        let s = self.offsets.len() as u32;
        self.offsets.push(self.data.len() as u32);
        self.data.push(clauses.len() as i32);
        for c in &clauses {
            self.data.push(c.len() as i32);
            self.data.extend_from_slice(c);
        }
        self.index.insert(clauses, s);
        s
    }

    /// Drops the interning index once every set is known.
    pub fn freeze(&mut self) {
        self.index = Default::default();
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    pub fn satisfied(&self, sig: u32, installed: &IdSet) -> bool {
        let mut at = self.offsets[sig as usize] as usize;
        let clauses = self.data[at];
        at += 1;
        for _ in 0..clauses {
            let len = self.data[at] as usize;
            let members = &self.data[at + 1..at + 1 + len];
            if !members.iter().any(|&id| installed.contains(id)) {
                return false;
            }
            at += 1 + len;
        }
        true
    }
}

/// Per-request answers for signatures: each evaluated at most once.
pub struct Memo<'a> {
    signatures: &'a Signatures,
    installed: &'a IdSet,
    state: Vec<u8>,
}

impl<'a> Memo<'a> {
    pub fn new(signatures: &'a Signatures, installed: &'a IdSet) -> Memo<'a> {
        Memo { signatures, installed, state: vec![0; signatures.len()] }
    }

    pub fn satisfied(&mut self, sig: u32) -> bool {
        match self.state[sig as usize] {
            1 => true,
            2 => false,
            _ => {
                let ok = self.signatures.satisfied(sig, self.installed);
                self.state[sig as usize] = if ok { 1 } else { 2 };
                ok
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_needs_an_installed_member_in_every_clause() {
        let mut s = Signatures::default();
        let a = s.intern(vec![vec![1, 2], vec![3]]);
        let none = s.intern(vec![]);
        let missing = s.intern(vec![vec![-1]]);
        assert_eq!(s.intern(vec![vec![1, 2], vec![3]]), a);
        let mut installed = IdSet::new(10);
        installed.insert(2);
        assert!(!s.satisfied(a, &installed));
        installed.insert(3);
        assert!(s.satisfied(a, &installed));
        assert!(s.satisfied(none, &installed));
        assert!(!s.satisfied(missing, &installed));
    }
}
