//! The query engine's view of the cluster: FROM names resolve through the catalog and the
//! vnodes' meta stores; scans, aggregates and last rows go to each vgroup of the members, one
//! request per vgroup, concurrently, through [`VnodeClient`](crate::rpc::VnodeClient)s.

use crate::coordinator::Coordinator;
use async_trait::async_trait;
use common::{Code, Field, TaosError, TaosResult, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use taos_query::catalog::{
    AggSpec, AggSum, Catalog, ColumnAgg, Member, MemberAgg, ScanSpec, TableKind, TableSet,
};
use taos_query::datafusion::arrow::record_batch::RecordBatch;
use taos_vnode::read::AggSpecColumn;
use taos_vnode::TableKind as VKind;

pub struct ScanRouter {
    pub coordinator: Weak<Coordinator>,
}

impl ScanRouter {
    fn coordinator(&self) -> TaosResult<Arc<Coordinator>> {
        self.coordinator
            .upgrade()
            .ok_or_else(|| TaosError::internal("taosd is shutting down"))
    }
}

/// Run an async vnode call from the query engine's synchronous name resolution. Planning runs
/// on the multi-threaded runtime, which lets this thread block; resolving FROM names before
/// planning would remove the need (left for when planning builds plans directly).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

#[async_trait]
impl Catalog for ScanRouter {
    fn table_set(&self, db: &str, name: &str) -> TaosResult<TableSet> {
        let c = self.coordinator()?;
        block_on(c.table_set(db, name))
    }

    async fn scan(
        &self,
        set: &TableSet,
        members: &[usize],
        spec: &ScanSpec,
    ) -> TaosResult<Vec<(usize, RecordBatch)>> {
        let c = self.coordinator()?;
        let calls = c.per_vgroup(set, members)?.into_iter().map(|(v, ms)| {
            let names = ms.iter().map(|&m| set.members[m].name.clone()).collect();
            async move {
                let r = v.scan(names, spec.start, spec.end, spec.columns.clone()).await?;
                Ok::<_, TaosError>(r.into_iter().map(|(i, b)| (ms[i], b.0)).collect::<Vec<_>>())
            }
        });
        let mut out = Vec::new();
        for r in futures_util::future::join_all(calls).await {
            out.extend(r?);
        }
        Ok(out)
    }

    /// Each vnode's storage engine aggregates its members, from block statistics where it
    /// can. A NaN met in a row makes the answer `None` (MIN / MAX order NaN differently there).
    async fn aggregate(
        &self,
        set: &TableSet,
        members: &[usize],
        spec: &AggSpec,
    ) -> TaosResult<Option<Vec<(usize, MemberAgg)>>> {
        let c = self.coordinator()?;
        let columns: Vec<AggSpecColumn> = spec
            .columns
            .iter()
            .map(|col| AggSpecColumn {
                name: col.name.clone(),
                min_max: col.min_max,
                sum: col.sum,
            })
            .collect();
        let calls = c.per_vgroup(set, members)?.into_iter().map(|(v, ms)| {
            let names = ms.iter().map(|&m| set.members[m].name.clone()).collect();
            let columns = columns.clone();
            async move {
                let r = v.aggregate(names, spec.start, spec.end, columns).await?;
                Ok::<_, TaosError>(r.map(|(aggs, report)| (aggs, report, ms)))
            }
        });
        let mut out = Vec::new();
        for r in futures_util::future::join_all(calls).await {
            let Some((aggs, report, ms)) = r? else {
                return Ok(None);
            };
            if report.saw_nan {
                return Ok(None);
            }
            tracing::debug!(
                blocks_from_stats = report.blocks_from_stats,
                rows_read = report.rows_read,
                "aggregate"
            );
            for (i, a) in aggs {
                out.push((ms[i], member_agg(a)));
            }
        }
        out.sort_by_key(|(m, _)| *m);
        Ok(Some(out))
    }

    /// Served by each vnode's last-row cache when the database's CACHEMODEL keeps one;
    /// otherwise the engine plans the query normally (a full scan is no faster here).
    async fn last_rows(
        &self,
        set: &TableSet,
        members: &[usize],
    ) -> TaosResult<Option<Vec<(usize, Vec<Value>)>>> {
        let c = self.coordinator()?;
        let info = c.mnode.read(|cat| cat.db(&set.db).cloned())?;
        if info.options.cachemodel == "none" {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(members.len());
        for (v, ms) in c.per_vgroup(set, members)? {
            let names = ms.iter().map(|&m| set.members[m].name.clone()).collect();
            for (i, row) in v.last_rows(names).await? {
                out.push((ms[i], row));
            }
        }
        out.sort_by_key(|(m, _)| *m);
        Ok(Some(out))
    }

    fn system_table(&self, db: &str, name: &str) -> TaosResult<(Vec<Field>, Vec<Vec<Value>>)> {
        let c = self.coordinator()?;
        let r = block_on(c.system_table(db, name))?;
        Ok((r.fields, r.rows))
    }
}

/// The engine's aggregate in the query engine's terms.
fn member_agg(a: tsdb::TableAgg) -> MemberAgg {
    MemberAgg {
        rows: a.rows,
        cols: a
            .cols
            .into_iter()
            .map(|c| ColumnAgg {
                count: c.count,
                min: c.min,
                max: c.max,
                sum: c.sum.map(|s| match s {
                    tsdb::AggSum::Int(i) => AggSum::Int(i),
                    tsdb::AggSum::Float(f) => AggSum::Float(f),
                }),
            })
            .collect(),
    }
}

impl Coordinator {
    /// Members of a table set grouped by the vgroup their names hash to.
    fn per_vgroup(
        &self,
        set: &TableSet,
        members: &[usize],
    ) -> TaosResult<Vec<(crate::rpc::VnodeClient, Vec<usize>)>> {
        let info = self.mnode.read(|c| c.db(&set.db).cloned())?;
        let mut per_vg: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for &m in members {
            per_vg
                .entry(info.vgroup_for(&set.members[m].name))
                .or_default()
                .push(m);
        }
        per_vg
            .into_iter()
            .map(|(vg, ms)| Ok((self.vnode(vg)?, ms)))
            .collect()
    }
}

impl Coordinator {
    /// A FROM name as the query engine sees it: a super table with its children (and their
    /// tags) from every vgroup, or one child or normal table.
    pub async fn table_set(&self, db: &str, name: &str) -> TaosResult<TableSet> {
        let info = self.mnode.read(|c| c.db(db).cloned())?;
        let precision = info.options.precision;
        let fields = |cols: &[common::ColumnDef]| {
            cols.iter()
                .map(|c| Field::new(&c.name, c.ty))
                .collect::<Vec<_>>()
        };
        if let Some(st) = self.mnode.read(|c| c.stable(db, name).cloned()) {
            let mut members = Vec::new();
            let calls = self.db_vnodes(&info).into_iter().map(|v| async move { v.tables(Some(st.uid)).await });
            for r in futures_util::future::join_all(calls).await {
                for t in r? {
                    let mut tags = t.tag_values().to_vec();
                    tags.resize(st.tags.len(), Value::Null);
                    members.push(Member { name: t.name, tags });
                }
            }
            members.sort_by(|a, b| a.name.cmp(&b.name));
            return Ok(TableSet {
                db: db.into(),
                name: name.into(),
                kind: TableKind::Super,
                precision,
                columns: fields(&st.columns),
                tags: fields(&st.tags),
                members,
            });
        }
        let (_, t) = self.find_table(&info, name).await?.ok_or_else(|| {
            TaosError::new(
                Code::PAR_TABLE_NOT_EXIST,
                format!("Table does not exist: {name}"),
            )
        })?;
        Ok(match &t.kind {
            VKind::Normal { columns, .. } => TableSet {
                db: db.into(),
                name: name.into(),
                kind: TableKind::Normal,
                precision,
                columns: fields(columns),
                tags: Vec::new(),
                members: vec![Member {
                    name: t.name.clone(),
                    tags: Vec::new(),
                }],
            },
            VKind::Child { suid, tags } => {
                let st = self
                    .mnode
                    .read(|c| c.stable_by_uid(db, *suid).cloned())
                    .ok_or_else(|| TaosError::of(Code::STB_NOT_EXIST))?;
                let mut tags = tags.clone();
                tags.resize(st.tags.len(), Value::Null);
                TableSet {
                    db: db.into(),
                    name: name.into(),
                    kind: TableKind::Child,
                    precision,
                    columns: fields(&st.columns),
                    tags: fields(&st.tags),
                    members: vec![Member {
                        name: t.name.clone(),
                        tags,
                    }],
                }
            }
        })
    }
}
