//! Docker runtime (in progress).
