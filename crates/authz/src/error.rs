//! The error of loading a role table.

use std::path::PathBuf;

/// Why a role table could not be loaded. The message names the file or the bad entry.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read the role table {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown or mistyped key.
    #[error("invalid role table: {0}")]
    Parse(#[from] toml::de::Error),
    /// The table parsed but an entry is wrong, e.g.
    /// `routes[12]: unknown action 'sandbox:explode'`.
    #[error("invalid role table: {0}")]
    Invalid(String),
}
