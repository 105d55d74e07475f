//! Randomness from the operating system (keys, ids, cookies), kept out of the pure modules.

use crate::catalog::Guid;

pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system random generator is unavailable");
    b
}

/// A fresh random (version 4) GUID.
pub fn guid() -> Guid {
    let mut b = bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Guid::from_bytes(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_guids_are_version_4_and_differ() {
        let g = super::guid();
        assert_eq!(g.as_bytes()[6] >> 4, 4);
        assert_ne!(g, super::guid());
    }
}
