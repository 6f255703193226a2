//! What can go wrong with the journal: the database, or a record it cannot read.

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("journal record is corrupt: {0}")]
    Corrupt(String),
    #[error("journal {journal} is in use by another controller (it holds {lock}); one controller per journal: stop the other first")]
    InUse { journal: String, lock: String },
    #[error("journal lock {lock}: {error}")]
    Lock { lock: String, error: std::io::Error },
}

pub type Result<T> = std::result::Result<T, JournalError>;
