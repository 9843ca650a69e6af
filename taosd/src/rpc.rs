//! The boundary between the coordinator and the dnodes that host vnodes: [`DnodeCall`] /
//! [`DnodeReply`] are the messages, [`Transport`] carries them. [`LocalTransport`] calls the
//! dnodes of this process directly (single node: nothing is encoded, batches move as they are,
//! as GreptimeDB's standalone mode calls its region server in process); [`SimTransport`]
//! encodes every message both ways and can cut a dnode off, so tests prove that nothing but the
//! messages crosses. The TCP transport on serverPort implements the same trait (cluster issue).
//! [`VnodeClient`] is the typed face the coordinator uses.

use crate::dnode::Dnode;
use async_trait::async_trait;
use common::{Code, TaosError, TaosResult, Value};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use taos_vnode::read::AggSpecColumn;
use taos_vnode::{
    SerBatch, StableSchema, TableMeta, VnodeConfig, VnodeControl, VnodeRead, VnodeReadReply,
    VnodeRequest, VnodeResponse,
};
use tsdb::{AggReport, TableAgg};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DnodeCall {
    /// Propose a change to a vgroup (through its raft log).
    Propose { vgid: u32, req: VnodeRequest },
    Read { vgid: u32, read: VnodeRead },
    Control { vgid: u32, op: VnodeControl },
    /// TMQ: the versions a consumer can read, and the entries of a range.
    WalRange { vgid: u32 },
    ReadWal { vgid: u32, start: u64, end: u64 },
    /// Create (or open) a vnode of `db` here, knowing its super tables.
    OpenVnode {
        vgid: u32,
        db: String,
        config: VnodeConfig,
        stables: Vec<StableSchema>,
    },
    DropVnode { vgid: u32 },
    Status,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DnodeReply {
    Written(VnodeResponse),
    Read(VnodeReadReply),
    WalRange(u64, u64),
    Wal(Vec<(u64, Option<VnodeRequest>)>),
    Status { vnodes: u32 },
    Done,
}

#[async_trait]
pub trait Transport: Send + Sync {
    async fn call(&self, dnode: u32, call: DnodeCall) -> TaosResult<DnodeReply>;
}

/// The dnodes of this process, by id.
#[derive(Default)]
pub struct LocalTransport {
    dnodes: RwLock<HashMap<u32, Arc<Dnode>>>,
}

impl LocalTransport {
    pub fn new(dnodes: impl IntoIterator<Item = Arc<Dnode>>) -> LocalTransport {
        LocalTransport {
            dnodes: RwLock::new(dnodes.into_iter().map(|d| (d.id, d)).collect()),
        }
    }

    fn dnode(&self, id: u32) -> TaosResult<Arc<Dnode>> {
        self.dnodes.read().get(&id).cloned().ok_or_else(|| unreachable(id))
    }
}

fn unreachable(id: u32) -> TaosError {
    TaosError::new(
        Code::RPC_NETWORK_UNAVAIL,
        format!("Unable to establish connection: dnode {id}"),
    )
}

#[async_trait]
impl Transport for LocalTransport {
    async fn call(&self, dnode: u32, call: DnodeCall) -> TaosResult<DnodeReply> {
        self.dnode(dnode)?.handle(call).await
    }
}

/// In-process dnodes reached only through encoded messages (bincode, batches as Arrow IPC),
/// with dnodes that can be cut off (TiKV's transport_simulate, in small).
#[derive(Default)]
pub struct SimTransport {
    local: LocalTransport,
    cut: RwLock<HashSet<u32>>,
}

impl SimTransport {
    pub fn new(dnodes: impl IntoIterator<Item = Arc<Dnode>>) -> SimTransport {
        SimTransport {
            local: LocalTransport::new(dnodes),
            cut: RwLock::new(HashSet::new()),
        }
    }

    /// Calls to `dnode` fail as a network partition would, until [`SimTransport::heal`].
    pub fn isolate(&self, dnode: u32) {
        self.cut.write().insert(dnode);
    }

    pub fn heal(&self, dnode: u32) {
        self.cut.write().remove(&dnode);
    }
}

fn encode<T: Serialize>(v: &T) -> TaosResult<Vec<u8>> {
    bincode::serialize(v).map_err(|e| TaosError::internal(format!("rpc encode: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> TaosResult<T> {
    bincode::deserialize(b).map_err(|e| TaosError::internal(format!("rpc decode: {e}")))
}

#[async_trait]
impl Transport for SimTransport {
    async fn call(&self, dnode: u32, call: DnodeCall) -> TaosResult<DnodeReply> {
        if self.cut.read().contains(&dnode) {
            return Err(unreachable(dnode));
        }
        let call: DnodeCall = decode(&encode(&call)?)?;
        let reply: Result<DnodeReply, TaosError> = self.local.call(dnode, call).await;
        decode(&encode(&reply)?)?
    }
}

/// A vgroup as the coordinator sees it: typed calls, each one [`DnodeCall`] to its dnode.
#[derive(Clone)]
pub struct VnodeClient {
    pub vgid: u32,
    pub dnode: u32,
    transport: Arc<dyn Transport>,
}

fn unexpected(what: &str) -> TaosError {
    TaosError::internal(format!("unexpected reply to {what}"))
}

impl VnodeClient {
    pub fn new(vgid: u32, dnode: u32, transport: Arc<dyn Transport>) -> VnodeClient {
        VnodeClient {
            vgid,
            dnode,
            transport,
        }
    }

    async fn read(&self, read: VnodeRead) -> TaosResult<VnodeReadReply> {
        let call = DnodeCall::Read {
            vgid: self.vgid,
            read,
        };
        match self.transport.call(self.dnode, call).await? {
            DnodeReply::Read(r) => Ok(r),
            _ => Err(unexpected("read")),
        }
    }

    pub async fn propose(&self, req: VnodeRequest) -> TaosResult<VnodeResponse> {
        let call = DnodeCall::Propose {
            vgid: self.vgid,
            req,
        };
        match self.transport.call(self.dnode, call).await? {
            DnodeReply::Written(r) => Ok(r),
            _ => Err(unexpected("propose")),
        }
    }

    pub async fn control(&self, op: VnodeControl) -> TaosResult<()> {
        let call = DnodeCall::Control {
            vgid: self.vgid,
            op,
        };
        self.transport.call(self.dnode, call).await.map(|_| ())
    }

    pub async fn table(&self, name: &str) -> TaosResult<Option<TableMeta>> {
        match self.read(VnodeRead::Table { name: name.into() }).await? {
            VnodeReadReply::Table(t) => Ok(t),
            _ => Err(unexpected("table")),
        }
    }

    /// Children of a super table, or every table (`None`), sorted by name.
    pub async fn tables(&self, suid: Option<u64>) -> TaosResult<Vec<TableMeta>> {
        match self.read(VnodeRead::Tables { suid }).await? {
            VnodeReadReply::Tables(t) => Ok(t),
            _ => Err(unexpected("tables")),
        }
    }

    pub async fn table_count(&self) -> TaosResult<u64> {
        match self.read(VnodeRead::TableCount).await? {
            VnodeReadReply::TableCount(n) => Ok(n),
            _ => Err(unexpected("table count")),
        }
    }

    pub async fn stable(&self, suid: u64) -> TaosResult<Option<StableSchema>> {
        match self.read(VnodeRead::Stable { suid }).await? {
            VnodeReadReply::Stable(s) => Ok(s),
            _ => Err(unexpected("stable")),
        }
    }

    pub async fn scan(
        &self,
        tables: Vec<String>,
        start: i64,
        end: i64,
        columns: Vec<String>,
    ) -> TaosResult<Vec<(usize, SerBatch)>> {
        let read = VnodeRead::Scan {
            tables,
            start,
            end,
            columns,
        };
        match self.read(read).await? {
            VnodeReadReply::Scan(b) => Ok(b),
            _ => Err(unexpected("scan")),
        }
    }

    pub async fn aggregate(
        &self,
        tables: Vec<String>,
        start: i64,
        end: i64,
        columns: Vec<AggSpecColumn>,
    ) -> TaosResult<Option<(Vec<(usize, TableAgg)>, AggReport)>> {
        let read = VnodeRead::Aggregate {
            tables,
            start,
            end,
            columns,
        };
        match self.read(read).await? {
            VnodeReadReply::Aggregate(a) => Ok(a),
            _ => Err(unexpected("aggregate")),
        }
    }

    pub async fn last_rows(&self, tables: Vec<String>) -> TaosResult<Vec<(usize, Vec<Value>)>> {
        match self.read(VnodeRead::LastRows { tables }).await? {
            VnodeReadReply::LastRows(r) => Ok(r),
            _ => Err(unexpected("last rows")),
        }
    }

    pub async fn wal_range(&self) -> TaosResult<(u64, u64)> {
        let call = DnodeCall::WalRange { vgid: self.vgid };
        match self.transport.call(self.dnode, call).await? {
            DnodeReply::WalRange(b, e) => Ok((b, e)),
            _ => Err(unexpected("wal range")),
        }
    }

    pub async fn read_wal(&self, start: u64, end: u64) -> TaosResult<Vec<(u64, Option<VnodeRequest>)>> {
        let call = DnodeCall::ReadWal {
            vgid: self.vgid,
            start,
            end,
        };
        match self.transport.call(self.dnode, call).await? {
            DnodeReply::Wal(w) => Ok(w),
            _ => Err(unexpected("read wal")),
        }
    }
}
