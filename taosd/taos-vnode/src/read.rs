//! Reads a coordinator makes of a vnode, and the maintenance it asks for. Tables are named, not
//! given by uid: uids are this vnode's own business. Batches cross the boundary as Arrow IPC
//! ([`SerBatch`]) when the call goes over the network; in process they are moved as they are.

use crate::meta::{TableKind, TableMeta};
use crate::request::StableSchema;
use crate::{Vnode, VnodeConfig};
use arrow_array::RecordBatch;
use common::{Code, TaosError, TaosResult, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tsdb::{AggColumn, AggReport, TableAgg};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VnodeRead {
    /// One child or normal table.
    Table { name: String },
    /// The children of a super table (`Some(suid)`) or every table, sorted by name.
    Tables { suid: Option<u64> },
    /// How many tables this vnode holds.
    TableCount,
    /// A super table as this vnode knows it.
    Stable { suid: u64 },
    /// Rows of `tables` in [start, end]: per table one batch, timestamp then `columns`.
    Scan {
        tables: Vec<String>,
        start: i64,
        end: i64,
        columns: Vec<String>,
    },
    /// COUNT / MIN / MAX / SUM per table over [start, end].
    Aggregate {
        tables: Vec<String>,
        start: i64,
        end: i64,
        columns: Vec<AggSpecColumn>,
    },
    /// The newest row of each table (all data columns, ts first).
    LastRows { tables: Vec<String> },
}

/// A column an aggregate reads, by name, and what is wanted of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AggSpecColumn {
    pub name: String,
    pub min_max: bool,
    pub sum: bool,
}

/// Answers, one variant per [`VnodeRead`]; `usize`s index the request's `tables`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VnodeReadReply {
    Table(Option<TableMeta>),
    Tables(Vec<TableMeta>),
    TableCount(u64),
    Stable(Option<StableSchema>),
    Scan(Vec<(usize, SerBatch)>),
    /// `None`: a column is unknown here; the caller plans the query another way.
    Aggregate(Option<(Vec<(usize, TableAgg)>, AggReport)>),
    LastRows(Vec<(usize, Vec<Value>)>),
}

/// Maintenance that each replica does on its own (not through raft).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum VnodeControl {
    Flush,
    /// FLUSH, then merge file sets.
    Compact,
    /// Drop file sets that fell out of KEEP as of `now` (precision units).
    Expire { now: i64 },
    /// ALTER DATABASE changed options.
    SetConfig(VnodeConfig),
}

/// A record batch that serialises as an Arrow IPC stream.
#[derive(Debug, Clone)]
pub struct SerBatch(pub RecordBatch);

impl Serialize for SerBatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        {
            let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut buf, &self.0.schema())
                .map_err(serde::ser::Error::custom)?;
            w.write(&self.0).map_err(serde::ser::Error::custom)?;
            w.finish().map_err(serde::ser::Error::custom)?;
        }
        s.serialize_bytes(&buf)
    }
}

impl<'de> Deserialize<'de> for SerBatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: serde_bytes_like::Bytes = Deserialize::deserialize(d)?;
        let mut r = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.0), None)
            .map_err(serde::de::Error::custom)?;
        match r.next() {
            Some(Ok(b)) => Ok(SerBatch(b)),
            Some(Err(e)) => Err(serde::de::Error::custom(e)),
            None => Err(serde::de::Error::custom("empty Arrow IPC stream")),
        }
    }
}

/// `Vec<u8>` read from `serialize_bytes` without a serde_bytes dependency.
mod serde_bytes_like {
    pub struct Bytes(pub Vec<u8>);
    impl<'de> serde::Deserialize<'de> for Bytes {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Bytes, A::Error> {
                    let mut out = Vec::new();
                    while let Some(b) = a.next_element::<u8>()? {
                        out.push(b);
                    }
                    Ok(Bytes(out))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }
}

impl Vnode {
    pub async fn read(&self, req: VnodeRead) -> TaosResult<VnodeReadReply> {
        let shared = &self.shared;
        Ok(match req {
            VnodeRead::Table { name } => VnodeReadReply::Table(shared.meta.read().get(&name).cloned()),
            VnodeRead::Tables { suid } => {
                let m = shared.meta.read();
                let mut out: Vec<TableMeta> = match suid {
                    Some(s) => m.children_of(s).cloned().collect(),
                    None => m.tables.values().cloned().collect(),
                };
                out.sort_by(|a, b| a.name.cmp(&b.name));
                VnodeReadReply::Tables(out)
            }
            VnodeRead::TableCount => VnodeReadReply::TableCount(shared.meta.read().tables.len() as u64),
            VnodeRead::Stable { suid } => {
                VnodeReadReply::Stable(shared.meta.read().stables.get(&suid).cloned())
            }
            VnodeRead::Scan {
                tables,
                start,
                end,
                columns,
            } => VnodeReadReply::Scan(self.scan(&tables, start, end, &columns).await?),
            VnodeRead::Aggregate {
                tables,
                start,
                end,
                columns,
            } => VnodeReadReply::Aggregate(self.aggregate(&tables, start, end, &columns).await?),
            VnodeRead::LastRows { tables } => VnodeReadReply::LastRows(self.last_rows(&tables).await?),
        })
    }

    /// Resolve names to (uid, suid) and the engine schema of the first one found; `by_uid`
    /// maps back to the request's index.
    fn resolve(
        &self,
        tables: &[String],
    ) -> TaosResult<Option<(Vec<(u64, u64)>, HashMap<u64, usize>, std::sync::Arc<tsdb::Schema>)>>
    {
        let meta = self.shared.meta.read();
        let mut uids = Vec::with_capacity(tables.len());
        let mut by_uid = HashMap::with_capacity(tables.len());
        let mut schema = None;
        for (i, name) in tables.iter().enumerate() {
            if let Some(t) = meta.get(name) {
                if schema.is_none() {
                    schema = Some(self.shared.schema_for(&meta, t)?);
                }
                uids.push((t.uid, t.suid()));
                by_uid.insert(t.uid, i);
            }
        }
        Ok(schema.map(|s| (uids, by_uid, s)))
    }

    async fn scan(
        &self,
        tables: &[String],
        start: i64,
        end: i64,
        columns: &[String],
    ) -> TaosResult<Vec<(usize, SerBatch)>> {
        let Some((uids, by_uid, schema)) = self.resolve(tables)? else {
            return Ok(Vec::new());
        };
        let mut col_ids = vec![1u16];
        for name in columns {
            let c = schema
                .columns
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| {
                    TaosError::new(
                        Code::PAR_INVALID_COLUMN,
                        format!("Invalid column name: {name}"),
                    )
                })?;
            col_ids.push(c.id);
        }
        let req = tsdb::ScanRequest {
            uids,
            start,
            end,
            col_ids,
            schema,
            desc: false,
            limit: None,
        };
        let tsdb = self.shared.tsdb.clone();
        let batches = crate::blocking(move || tsdb.scan(&req).map_err(|e| e.to_taos())).await?;
        Ok(batches
            .into_iter()
            .filter_map(|(uid, b)| by_uid.get(&uid).map(|&i| (i, SerBatch(b))))
            .collect())
    }

    async fn aggregate(
        &self,
        tables: &[String],
        start: i64,
        end: i64,
        columns: &[AggSpecColumn],
    ) -> TaosResult<Option<(Vec<(usize, TableAgg)>, AggReport)>> {
        let Some((uids, by_uid, schema)) = self.resolve(tables)? else {
            return Ok(Some((Vec::new(), AggReport::default())));
        };
        let mut cols = Vec::with_capacity(columns.len());
        for c in columns {
            let Some(sc) = schema.columns.iter().find(|x| x.name == c.name) else {
                return Ok(None);
            };
            cols.push(AggColumn {
                id: sc.id,
                ty: sc.ty,
                min_max: c.min_max,
                sum: c.sum,
            });
        }
        let tsdb = self.shared.tsdb.clone();
        let (aggs, report) = crate::blocking(move || {
            tsdb.aggregate(&uids, start, end, &cols)
                .map_err(|e| e.to_taos())
        })
        .await?;
        let mut out: Vec<(usize, TableAgg)> = aggs
            .into_iter()
            .filter_map(|(uid, a)| by_uid.get(&uid).map(|&i| (i, a)))
            .collect();
        out.sort_by_key(|(i, _)| *i);
        Ok(Some((out, report)))
    }

    async fn last_rows(&self, tables: &[String]) -> TaosResult<Vec<(usize, Vec<Value>)>> {
        let mut wanted = Vec::with_capacity(tables.len());
        {
            let meta = self.shared.meta.read();
            for (i, name) in tables.iter().enumerate() {
                if let Some(t) = meta.get(name) {
                    wanted.push((i, t.uid, t.suid(), self.shared.schema_for(&meta, t)?));
                }
            }
        }
        let tsdb = self.shared.tsdb.clone();
        crate::blocking(move || {
            let mut out = Vec::with_capacity(wanted.len());
            for (i, uid, suid, schema) in wanted {
                if let Some(r) = tsdb.last_row(uid, suid, &schema).map_err(|e| e.to_taos())? {
                    out.push((i, r));
                }
            }
            Ok(out)
        })
        .await
    }
}

impl TableMeta {
    /// The tag values of a child table (empty for a normal table).
    pub fn tag_values(&self) -> &[Value] {
        match &self.kind {
            TableKind::Child { tags, .. } => tags,
            TableKind::Normal { .. } => &[],
        }
    }
}
