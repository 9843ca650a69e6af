//! The mnode: the cluster catalog (users, databases and their vgroups, super tables, topics).
//!
//! Changes arrive as [`MnodeRequest`]s and are applied by [`state_machine::apply`], a pure
//! function of the catalog and the request: that is what lets the cluster issue put them on an
//! openraft group of 1-3 mnodes unchanged. Readers get a consistent snapshot
//! ([`Mnode::read`]); a change is applied to a copy, persisted, and only then made visible.
//!
//! On disk: `<dataDir>/mnode/catalog.json`, rewritten atomically (temp file, fsync, rename,
//! fsync dir) on every change. Child and normal tables are not here: they live in their vnode's
//! meta store, as in TDengine.

pub mod catalog;
pub mod dboptions;
pub mod request;
pub mod state_machine;

pub use catalog::{Catalog, DbInfo, StableInfo, TopicInfo, TopicKind, UserInfo, VgroupInfo};
pub use dboptions::DbOptions;
pub use request::{MnodeReply, MnodeRequest, UserChange, VgroupPlacement};

use common::fs::write_atomic;
use common::{Code, TaosError, TaosResult};
use parking_lot::{Mutex, RwLock};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Mnode {
    path: PathBuf,
    catalog: RwLock<Arc<Catalog>>,
    /// One change at a time: apply, persist, publish.
    writer: Mutex<()>,
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
                persist(&path, &c)?;
                c
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Mnode {
            path,
            catalog: RwLock::new(Arc::new(catalog)),
            writer: Mutex::new(()),
        })
    }

    pub fn read<T>(&self, f: impl FnOnce(&Catalog) -> T) -> T {
        f(&self.snapshot())
    }

    /// The catalog as of now; later changes do not show in it.
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    /// Apply one request; persist; only then make it visible.
    pub fn propose(&self, req: MnodeRequest) -> TaosResult<MnodeReply> {
        let _w = self.writer.lock();
        let mut next = (*self.snapshot()).clone();
        let reply = state_machine::apply(&mut next, req)?;
        persist(&self.path, &next)?;
        *self.catalog.write() = Arc::new(next);
        Ok(reply)
    }
}

fn persist(path: &Path, c: &Catalog) -> TaosResult<()> {
    let bytes = serde_json::to_vec_pretty(c).map_err(|e| TaosError::internal(e.to_string()))?;
    write_atomic(path, &bytes)?;
    Ok(())
}
