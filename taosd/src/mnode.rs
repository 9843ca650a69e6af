//! The mnode: the cluster catalog (users, databases and their vgroups, super tables).
//!
//! On disk: `<dataDir>/mnode/catalog.json`, rewritten atomically (temp file, fsync, rename,
//! fsync dir) on every change. A single dnode keeps one copy; the cluster issue moves these
//! changes onto an openraft group of 1-3 mnodes, which is why every mutation goes through
//! [`Mnode::mutate`] as one closure over the whole catalog (that closure becomes the raft entry).
//! Child and normal tables are not here: they live in their vnode's meta store, as in TDengine.

pub mod catalog;
pub mod dboptions;

use crate::mnode::catalog::Catalog;
use common::{Code, TaosError, TaosResult};
use parking_lot::RwLock;
use std::path::{Path, PathBuf};

pub struct Mnode {
    path: PathBuf,
    catalog: RwLock<Catalog>,
}

impl Mnode {
    pub fn open(data_dir: &Path) -> TaosResult<Mnode> {
        let dir = data_dir.join("mnode");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("catalog.json");
        let catalog = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                TaosError::new(Code::FILE_CORRUPTED, format!("{}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let c = Catalog::bootstrap();
                write_atomic(
                    &path,
                    &serde_json::to_vec_pretty(&c)
                        .map_err(|e| TaosError::internal(e.to_string()))?,
                )?;
                c
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Mnode {
            path,
            catalog: RwLock::new(catalog),
        })
    }

    pub fn read<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        f(&self.catalog.read())
    }

    /// Apply a change to a copy of the catalog; persist it; only then make it visible.
    pub fn mutate<T>(&self, f: impl FnOnce(&mut Catalog) -> TaosResult<T>) -> TaosResult<T> {
        let mut guard = self.catalog.write();
        let mut next = guard.clone();
        let out = f(&mut next)?;
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| TaosError::internal(e.to_string()))?;
        write_atomic(&self.path, &bytes)?;
        *guard = next;
        Ok(out)
    }
}

/// Write a file so that a crash leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
