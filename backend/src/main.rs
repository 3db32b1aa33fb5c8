//! gatehouse-backend (in progress).
fn main() {}
