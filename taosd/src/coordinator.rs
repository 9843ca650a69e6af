//! The coordinator: executes statements for client connections. It reads the catalog, changes
//! it only by [`MnodeRequest`](taos_mnode::MnodeRequest)s, and reaches vnodes only through
//! [`VnodeClient`]s over a [`Transport`], so the same code runs whether a vgroup lives in this
//! process or on another dnode. Its behaviour is spread by statement family over `exec/*`
//! (DDL, insert, select, show, alter, user) and `tmq/*` (topics, consumer groups, polls).

use crate::config::DnodeConfig;
use crate::dnode::{stable_schema, stable_schemas, vnode_config};
use crate::rpc::{DnodeCall, Transport, VnodeClient};
use common::{Code, TaosError, TaosResult};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use taos_mnode::{DbInfo, Mnode};
use taos_vnode::{VnodeControl, VnodeRequest};

/// A dnode of the cluster as the coordinator places vgroups on it.
#[derive(Debug, Clone)]
pub struct DnodeInfo {
    pub id: u32,
    pub endpoint: String,
    pub support_vnodes: u32,
}

pub struct Coordinator {
    pub config: DnodeConfig,
    pub mnode: Arc<Mnode>,
    pub rpc: Arc<dyn Transport>,
    /// This process's dnode. TMQ reads WAL entries beside the vnode, so polls are served for
    /// the vgroups hosted here; the cluster issue routes a poll to the dnode of its vgroup.
    pub local: Arc<crate::dnode::Dnode>,
    /// Where new vgroups may go, in placement order.
    pub dnodes: Vec<DnodeInfo>,
    pub start_time: i64,
    pub next_conn_id: AtomicU64,
    /// Live connections and their running statements (SHOW CONNECTIONS / QUERIES, KILL).
    pub conns: crate::conns::Connections,
    /// Serialises DDL that spans mnode and vnodes (TDengine runs these as mnode transactions).
    pub ddl_lock: tokio::sync::Mutex<()>,
    /// Data subscription: consumer groups, offsets, polls.
    pub tmq: crate::tmq::Tmq,
    /// SELECT planning and execution; it reads this coordinator back through a weak handle.
    query: std::sync::OnceLock<taos_query::QueryEngine>,
}

impl Coordinator {
    /// Start over `mnode`, reaching the given dnodes through `rpc`, and open every vnode the
    /// catalog places on them. `wake` is signalled when vnodes apply entries (TMQ polls).
    pub async fn open(
        config: DnodeConfig,
        mnode: Arc<Mnode>,
        rpc: Arc<dyn Transport>,
        dnodes: Vec<DnodeInfo>,
        local: Arc<crate::dnode::Dnode>,
    ) -> TaosResult<Arc<Coordinator>> {
        let mut tmq = crate::tmq::Tmq::open(&config.data_dir)?;
        tmq.wake = local.wake.clone();
        let c = Arc::new(Coordinator {
            tmq,
            mnode,
            rpc,
            local,
            dnodes,
            start_time: common::Precision::Ms.now(),
            next_conn_id: AtomicU64::new(1),
            conns: Default::default(),
            ddl_lock: tokio::sync::Mutex::new(()),
            query: std::sync::OnceLock::new(),
            config,
        });
        let catalog = crate::exec::scan_router::ScanRouter {
            coordinator: Arc::downgrade(&c),
        };
        let _ = c.query.set(taos_query::QueryEngine::new(Arc::new(catalog)));
        let dbs: Vec<DbInfo> = c.mnode.read(|cat| cat.dbs.values().cloned().collect());
        for db in &dbs {
            c.open_vnodes(db).await?;
            c.reconcile_stables(db).await?;
        }
        Ok(c)
    }

    pub fn query_engine(&self) -> &taos_query::QueryEngine {
        self.query.get_or_init(|| {
            taos_query::QueryEngine::new(Arc::new(crate::exec::scan_router::ScanRouter {
                coordinator: std::sync::Weak::new(),
            }))
        })
    }

    /// The client of a vgroup, wherever the catalog places it.
    pub fn vnode(&self, vgid: u32) -> TaosResult<VnodeClient> {
        let dnode = self
            .mnode
            .read(|c| {
                c.dbs
                    .values()
                    .flat_map(|d| d.vgroups.iter())
                    .find(|v| v.id == vgid)
                    .map(|v| v.dnode_id)
            })
            .ok_or_else(|| {
                TaosError::new(Code::SYN_NOT_LEADER, format!("vgroup {vgid} is not known"))
            })?;
        Ok(VnodeClient::new(vgid, dnode, self.rpc.clone()))
    }

    /// A vnode of this process's dnode, for TMQ's WAL reader.
    pub fn local_vnode(&self, vgid: u32) -> TaosResult<Arc<taos_vnode::Vnode>> {
        self.local.vnode(vgid)
    }

    /// Every vgroup of a database, in order.
    pub fn db_vnodes(&self, db: &DbInfo) -> Vec<VnodeClient> {
        db.vgroups
            .iter()
            .map(|v| VnodeClient::new(v.id, v.dnode_id, self.rpc.clone()))
            .collect()
    }

    /// Where the vgroups of a new database go: round robin over the dnodes.
    pub fn place(&self, n: usize) -> Vec<u32> {
        let ids: Vec<u32> = if self.dnodes.is_empty() {
            vec![1]
        } else {
            self.dnodes.iter().map(|d| d.id).collect()
        };
        (0..n).map(|i| ids[i % ids.len()]).collect()
    }

    /// Vnodes the cluster can host in all.
    pub fn vnode_capacity(&self) -> u32 {
        if self.dnodes.is_empty() {
            self.config.support_vnodes
        } else {
            self.dnodes.iter().map(|d| d.support_vnodes).sum()
        }
    }

    /// Open (or create) a database's vnodes on their dnodes, concurrently: each waits for its
    /// raft election and WAL replay, which would otherwise add up.
    pub async fn open_vnodes(&self, db: &DbInfo) -> TaosResult<()> {
        let stables = stable_schemas(&self.mnode, &db.name);
        let calls = db.vgroups.iter().map(|vg| {
            let call = DnodeCall::OpenVnode {
                vgid: vg.id,
                db: db.name.clone(),
                config: vnode_config(&db.options),
                stables: stables.clone(),
            };
            self.rpc.call(vg.dnode_id, call)
        });
        let mut first_err = None;
        for r in futures_util::future::join_all(calls).await {
            if let Err(e) = r {
                first_err = first_err.or(Some(e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Close and delete the vnodes of a dropped database.
    pub async fn drop_vnodes(&self, db: &DbInfo) {
        for vg in &db.vgroups {
            let call = DnodeCall::DropVnode { vgid: vg.id };
            if let Err(e) = self.rpc.call(vg.dnode_id, call).await {
                tracing::warn!(vgid = vg.id, error = %e, "could not drop vnode");
            }
        }
    }

    /// Make every vnode of `db` know each super table at the catalog's version (a vnode that
    /// missed a change, or a data dir from before vnodes kept schemas, catches up here).
    pub async fn reconcile_stables(&self, db: &DbInfo) -> TaosResult<()> {
        let stables: Vec<taos_mnode::StableInfo> = self.mnode.read(|c| {
            c.stables
                .get(&db.name)
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default()
        });
        for v in self.db_vnodes(db) {
            for st in &stables {
                let want = stable_schema(st);
                if v.stable(st.uid).await?.as_ref() != Some(&want) {
                    v.propose(VnodeRequest::PutStable(want)).await?;
                }
            }
        }
        Ok(())
    }

    /// Send a super table's current schema to every vnode of its database.
    pub async fn publish_stable(&self, db: &DbInfo, st: &taos_mnode::StableInfo) -> TaosResult<()> {
        for v in self.db_vnodes(db) {
            v.propose(VnodeRequest::PutStable(stable_schema(st))).await?;
        }
        Ok(())
    }

    /// KEEP: drop whole file sets that fell out of every database's retention window.
    pub fn spawn_retention(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(c) = weak.upgrade() else { return };
                let dbs: Vec<DbInfo> = c.mnode.read(|cat| cat.dbs.values().cloned().collect());
                for db in dbs {
                    let now = db.options.precision.now();
                    for v in c.db_vnodes(&db) {
                        if let Err(e) = v.control(VnodeControl::Expire { now }).await {
                            tracing::warn!(vgid = v.vgid, error = %e, "KEEP expiry failed");
                        }
                    }
                }
                drop(c);
                tokio::time::sleep(std::time::Duration::from_secs(600)).await;
            }
        });
    }

    /// Drop consumers whose heartbeat stopped (TDengine checks every 2 s; we check every second).
    pub fn spawn_tmq_reaper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let Some(c) = weak.upgrade() else { return };
                c.tmq.reap(&c);
            }
        });
    }
}
