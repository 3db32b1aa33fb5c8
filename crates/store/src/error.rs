//! [`StoreError`]: why a store operation failed.

/// Why a governance store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("governance store: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("governance store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back (e.g. an unknown outcome).
    #[error("governance store: corrupt row: {0}")]
    Corrupt(String),
    /// The request was malformed (e.g. a bad cursor); the message names the bad input.
    #[error("{0}")]
    Invalid(String),
    /// The spool file could not be written or read.
    #[error("audit spool {path}: {source}")]
    Spool {
        /// The spool file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
