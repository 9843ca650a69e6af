//! The query engine's view of this dnode: FROM names resolve through the mnode catalog and the
//! vnodes' meta stores; scans go to each vnode's storage engine, one request per vnode.

use crate::dnode::Dnode;
use crate::vnode::meta::TableKind as VKind;
use async_trait::async_trait;
use common::{Code, Field, TaosError, TaosResult, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use taos_query::catalog::{
    AggSpec, AggSum, Catalog, ColumnAgg, Member, MemberAgg, ScanSpec, TableKind, TableSet,
};
use taos_query::datafusion::arrow::record_batch::RecordBatch;

pub struct DnodeCatalog {
    pub dnode: Weak<Dnode>,
}

impl DnodeCatalog {
    fn dnode(&self) -> TaosResult<Arc<Dnode>> {
        self.dnode
            .upgrade()
            .ok_or_else(|| TaosError::internal("dnode is shutting down"))
    }
}

#[async_trait]
impl Catalog for DnodeCatalog {
    fn table_set(&self, db: &str, name: &str) -> TaosResult<TableSet> {
        let d = self.dnode()?;
        let info = d.mnode.read(|c| c.db(db).cloned())?;
        let precision = info.options.precision;
        let fields = |cols: &[crate::mnode::catalog::ColumnDef]| {
            cols.iter()
                .map(|c| Field::new(&c.name, c.ty))
                .collect::<Vec<_>>()
        };
        if let Some(st) = d.mnode.read(|c| c.stable(db, name).cloned()) {
            let mut members = Vec::new();
            for vg in &info.vgroups {
                let v = d.vnode(vg.id)?;
                let m = v.shared.meta.read();
                for t in m.children_of(st.uid) {
                    let mut tags = match &t.kind {
                        VKind::Child { tags, .. } => tags.clone(),
                        VKind::Normal { .. } => Vec::new(),
                    };
                    tags.resize(st.tags.len(), Value::Null);
                    members.push(Member {
                        name: t.name.clone(),
                        tags,
                    });
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
        let (_, t) = d.find_table(&info, name).ok_or_else(|| {
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
                let st = d
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

    async fn scan(
        &self,
        set: &TableSet,
        members: &[usize],
        spec: &ScanSpec,
    ) -> TaosResult<Vec<(usize, RecordBatch)>> {
        let d = self.dnode()?;
        let info = d.mnode.read(|c| c.db(&set.db).cloned())?;
        let mut per_vg: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for &m in members {
            per_vg
                .entry(info.vgroup_for(&set.members[m].name))
                .or_default()
                .push(m);
        }
        let mut tasks = Vec::with_capacity(per_vg.len());
        for (vg, ms) in per_vg {
            let v = d.vnode(vg)?;
            // Resolve names to uids and the current engine schema in this vnode.
            let (uids, schema) = {
                let meta = v.shared.meta.read();
                let mut uids = Vec::with_capacity(ms.len());
                let mut by_uid = HashMap::new();
                let mut schema = None;
                for m in ms {
                    if let Some(t) = meta.get(&set.members[m].name) {
                        if schema.is_none() {
                            schema = Some(v.shared.schema_for(t)?);
                        }
                        uids.push((t.uid, t.suid()));
                        by_uid.insert(t.uid, m);
                    }
                }
                (by_uid, schema.map(|s| (uids, s)))
            };
            let Some((uid_list, schema)) = schema else {
                continue;
            };
            let mut col_ids = vec![1u16];
            for name in &spec.columns {
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
                uids: uid_list,
                start: spec.start,
                end: spec.end,
                col_ids,
                schema,
                desc: false,
                limit: None,
            };
            let shared = v.shared.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                shared.tsdb.scan(&req).map(|r| (r, uids))
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            let (batches, uids) = t
                .await
                .map_err(|e| TaosError::internal(e.to_string()))?
                .map_err(|e| e.to_taos())?;
            for (uid, b) in batches {
                if let Some(&m) = uids.get(&uid) {
                    out.push((m, b));
                }
            }
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
        let d = self.dnode()?;
        let info = d.mnode.read(|c| c.db(&set.db).cloned())?;
        let mut per_vg: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for &m in members {
            per_vg
                .entry(info.vgroup_for(&set.members[m].name))
                .or_default()
                .push(m);
        }
        let mut tasks = Vec::with_capacity(per_vg.len());
        for (vg, ms) in per_vg {
            let v = d.vnode(vg)?;
            let mut uids = Vec::with_capacity(ms.len());
            let mut by_uid = HashMap::new();
            let mut schema = None;
            {
                let meta = v.shared.meta.read();
                for m in ms {
                    if let Some(t) = meta.get(&set.members[m].name) {
                        if schema.is_none() {
                            schema = Some(v.shared.schema_for(t)?);
                        }
                        uids.push((t.uid, t.suid()));
                        by_uid.insert(t.uid, m);
                    }
                }
            }
            let Some(schema) = schema else { continue };
            let mut cols = Vec::with_capacity(spec.columns.len());
            for c in &spec.columns {
                let Some(sc) = schema.columns.iter().find(|x| x.name == c.name) else {
                    return Ok(None);
                };
                cols.push(tsdb::AggColumn {
                    id: sc.id,
                    ty: sc.ty,
                    min_max: c.min_max,
                    sum: c.sum,
                });
            }
            let (start, end) = (spec.start, spec.end);
            let shared = v.shared.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                shared
                    .tsdb
                    .aggregate(&uids, start, end, &cols)
                    .map(|r| (r, by_uid))
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            let ((aggs, report), by_uid) = t
                .await
                .map_err(|e| TaosError::internal(e.to_string()))?
                .map_err(|e| e.to_taos())?;
            if report.saw_nan {
                return Ok(None);
            }
            tracing::debug!(
                blocks_from_stats = report.blocks_from_stats,
                rows_read = report.rows_read,
                "aggregate"
            );
            for (uid, a) in aggs {
                if let Some(&m) = by_uid.get(&uid) {
                    out.push((
                        m,
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
                        },
                    ));
                }
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
        let d = self.dnode()?;
        let info = d.mnode.read(|c| c.db(&set.db).cloned())?;
        if info.options.cachemodel == "none" {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(members.len());
        for &m in members {
            let v = d.vnode(info.vgroup_for(&set.members[m].name))?;
            let meta = v.shared.meta.read().get(&set.members[m].name).cloned();
            let Some(t) = meta else { continue };
            let schema = v.shared.schema_for(&t)?;
            let shared = v.shared.clone();
            let row =
                tokio::task::spawn_blocking(move || shared.tsdb.last_row(t.uid, t.suid(), &schema))
                    .await
                    .map_err(|e| TaosError::internal(e.to_string()))?
                    .map_err(|e| e.to_taos())?;
            if let Some(r) = row {
                out.push((m, r));
            }
        }
        Ok(Some(out))
    }

    fn system_table(&self, db: &str, name: &str) -> TaosResult<(Vec<Field>, Vec<Vec<Value>>)> {
        let r = self.dnode()?.system_table(db, name)?;
        Ok((r.fields, r.rows))
    }
}
