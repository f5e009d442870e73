//! Comparing secrets (signatures, tokens) in constant time.

/// Whether two byte strings are equal, in time independent of where they differ.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
