//! One-shot shell commands (`/command`): records, foreground streaming, background logs.

pub mod registry;
pub mod runner;

pub use registry::{CommandRecord, Registry};
pub use runner::{interrupt, run_background, run_foreground, RunCommandRequest};
