//! The storage engine's error type and its mapping to TDengine codes.

use common::{Code, TaosError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A WAL record in the middle of the log failed its CRC or framing check (0x1003).
    #[error("WAL file is corrupted: {0}")]
    WalCorrupted(String),
    /// A data file, the manifest or the meta blob could not be decoded (0x0104).
    #[error("data file corrupted: {0}")]
    FileCorrupted(String),
    /// The caller passed something the engine cannot accept (0x0118).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Anything else: encoder failures, broken invariants (0x0101).
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl StorageError {
    pub fn to_taos(&self) -> TaosError {
        let code = match self {
            StorageError::WalCorrupted(_) => Code::WAL_FILE_CORRUPTED,
            StorageError::FileCorrupted(_) => Code::FILE_CORRUPTED,
            StorageError::InvalidArgument(_) => Code::INVALID_PARA,
            StorageError::Io { .. } | StorageError::Internal(_) => Code::INTERNAL,
        };
        TaosError::new(code, self.to_string())
    }

    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
        move |source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<StorageError> for TaosError {
    fn from(e: StorageError) -> Self {
        e.to_taos()
    }
}

impl From<parquet::errors::ParquetError> for StorageError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        StorageError::Internal(format!("parquet: {e}"))
    }
}

impl From<arrow_schema::ArrowError> for StorageError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        StorageError::Internal(format!("arrow: {e}"))
    }
}

/// fsync a directory so that a create/rename/unlink inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(StorageError::io(dir))
}
