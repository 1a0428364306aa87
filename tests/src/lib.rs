//! Cross-crate integration suites (in `tests/`) and their helper programs (in `src/bin/`).

/// The value the crash child writes for key `i`, so the parent can check content, not only
/// presence. Sizes vary from a few bytes to several pages (overflow values).
pub fn crash_value(i: u64) -> Vec<u8> {
    let len = match i % 10 {
        0 => 9000,
        1..=3 => 8,
        _ => 300,
    };
    (0..len)
        .map(|j| (i as usize).wrapping_mul(31).wrapping_add(j) as u8)
        .collect()
}
