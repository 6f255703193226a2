//! What can go wrong with the journal: the database, or a record it cannot read.

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("journal record is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, JournalError>;
