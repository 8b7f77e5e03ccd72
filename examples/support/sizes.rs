//! The domain counts a benchmark example runs at: its arguments, or the defaults.

/// The numbers among the program's arguments, or `defaults` when there are none.
pub fn sizes(defaults: &[usize]) -> Vec<usize> {
    let given: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if given.is_empty() {
        defaults.to_vec()
    } else {
        given
    }
}
