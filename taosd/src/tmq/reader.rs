//! Reading a vnode's WAL for a topic: the WAL is the queue and an offset is a version. Each
//! Submit entry is filtered by the topic (tables, tag filter, row filter), projected, and grouped
//! into one block per table, in the order the rows were written.

use crate::exec::eval::{self, EvalCtx};
use taos_mnode::catalog::ColumnDef;
use crate::tmq::topic::{infer_type, CompiledTopic, QueryFrom, Source};
use taos_vnode::meta::{TableKind, TableMeta};
use taos_vnode::{Vnode, VnodeRequest};
use common::tmq::TmqBlock;
use common::{Block, DataType, Field, SessionTz, TaosResult, Value};
use std::collections::HashMap;
use std::sync::Arc;
use taos_sql::ast::Expr;

/// WAL records decoded per lock acquisition.
const CHUNK: u64 = 64;

/// What one read produced: blocks, and the position after the last version looked at.
pub struct ReadBatch {
    pub blocks: Vec<TmqBlock>,
    /// JSON meta of table changes (topics WITH META).
    pub meta: Vec<String>,
    pub next: u64,
    pub rows: usize,
}

/// The versions a consumer can read in a vnode: `begin` is the oldest retained, `end` one past
/// the last applied (a position equal to `end` has nothing to read).
pub fn wal_range(shared: &Vnode) -> (u64, u64) {
    shared.wal_range()
}

/// Read from version `from` until `max_rows` rows are gathered or the applied end is reached.
pub fn read(
    shared: &Vnode,
    topic: &CompiledTopic,
    from: u64,
    with_table_name: bool,
    max_rows: usize,
    tz: SessionTz,
) -> TaosResult<ReadBatch> {
    let (begin, end) = wal_range(shared);
    // Versions purged by retention are gone: continue from the oldest one kept.
    let mut pos = from.max(begin);
    let mut out = Assembler::new(shared, topic, with_table_name, tz);
    let mut meta: Vec<String> = Vec::new();
    'read: while pos < end && out.rows < max_rows {
        let last = (pos + CHUNK - 1).min(end - 1);
        let records = shared.read_wal(pos, last)?;
        if records.is_empty() {
            break;
        }
        for (index, req) in records {
            if let Some(req) = req {
                let changes = if topic.info.with_meta {
                    meta_of(shared, topic, &req)
                } else {
                    Vec::new()
                };
                // Table changes start a message of their own (with the rows of the same entry),
                // so a consumer sees them before the rows that follow them.
                if !changes.is_empty() && (out.rows > 0 || !meta.is_empty()) {
                    break 'read;
                }
                meta.extend(changes);
                if let VnodeRequest::Submit(sub) = req {
                    for t in &sub.tables {
                        out.add(&t.name, &t.col_ids, &t.rows)?;
                    }
                }
            }
            pos = index + 1;
            if out.rows >= max_rows || !meta.is_empty() {
                break 'read;
            }
        }
    }
    Ok(ReadBatch {
        rows: out.rows,
        blocks: out.finish(),
        meta,
        next: pos,
    })
}

/// TDengine's JSON meta for the table changes of an entry that the topic covers.
fn meta_of(shared: &Vnode, topic: &CompiledTopic, req: &VnodeRequest) -> Vec<String> {
    use serde_json::json;
    let wanted_suid = match &topic.source {
        Source::Database => None,
        Source::Stable { suid, .. } => Some(*suid),
        Source::Query { .. } => return Vec::new(),
    };
    let creates: &[taos_vnode::NewTable] = match req {
        VnodeRequest::CreateTables(t) => t,
        VnodeRequest::Submit(s) => &s.creates,
        VnodeRequest::DropTables(names) if wanted_suid.is_none() => {
            return vec![json!({"type": "drop", "tableNameList": names}).to_string()];
        }
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for t in creates {
        match &t.kind {
            TableKind::Child { suid, tags } => {
                if wanted_suid.is_some_and(|w| w != *suid) {
                    continue;
                }
                let Some(stb) = shared.stable(*suid) else {
                    continue;
                };
                let tags: Vec<_> = stb
                    .tags
                    .iter()
                    .zip(tags)
                    .map(
                        |(d, v)| json!({"name": d.name, "type": d.ty.id(), "value": meta_value(v)}),
                    )
                    .collect();
                out.push(
                    json!({
                        "type": "create", "tableType": "child", "tableName": t.name,
                        "using": stb.name, "tagNum": stb.tags.len(), "tags": tags,
                        "createList": []
                    })
                    .to_string(),
                );
            }
            TableKind::Normal { columns, .. } if wanted_suid.is_none() => {
                let cols: Vec<_> = columns
                    .iter()
                    .map(|c| json!({"name": c.name, "type": c.ty.id(), "length": c.ty.bytes()}))
                    .collect();
                out.push(
                    json!({
                        "type": "create", "tableType": "normal", "tableName": t.name,
                        "columns": cols, "tags": []
                    })
                    .to_string(),
                );
            }
            TableKind::Normal { .. } => {}
        }
    }
    out
}

fn meta_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::VarChar(s) | Value::NChar(s) | Value::Json(s) => s.clone().into(),
        other => match other.as_i64() {
            Some(i) if !matches!(other, Value::Float(_) | Value::Double(_)) => i.into(),
            _ => other
                .as_f64()
                .map(Into::into)
                .unwrap_or(serde_json::Value::Null),
        },
    }
}

/// How one table's rows map into its output block.
struct TablePlan {
    /// Output index of each engine column id (`None` = not delivered).
    by_col_id: HashMap<u16, usize>,
    fields: Vec<Field>,
    /// For query topics: names visible to expressions (columns, tags, tbname) and tag values.
    tags: Vec<(String, Value)>,
    columns: Vec<(u16, String)>,
    block: usize,
}

struct Assembler<'a> {
    shared: &'a Vnode,
    topic: &'a CompiledTopic,
    with_table_name: bool,
    tz: SessionTz,
    precision: common::Precision,
    /// Table name -> plan, or `None` when the topic does not want the table.
    plans: HashMap<String, Option<Arc<TablePlan>>>,
    blocks: Vec<TmqBlock>,
    /// For query topics, computed values are buffered per block to infer their types.
    pending: Vec<Vec<Vec<Value>>>,
    /// Declared types of the names each block's table has (plain column references keep them).
    declared: Vec<HashMap<String, DataType>>,
    rows: usize,
}

impl<'a> Assembler<'a> {
    fn new(
        shared: &'a Vnode,
        topic: &'a CompiledTopic,
        with_table_name: bool,
        tz: SessionTz,
    ) -> Self {
        Assembler {
            shared,
            topic,
            with_table_name,
            tz,
            precision: shared.config().precision,
            plans: HashMap::new(),
            blocks: Vec::new(),
            pending: Vec::new(),
            declared: Vec::new(),
            rows: 0,
        }
    }

    fn stable_tags(&self, suid: u64) -> Vec<ColumnDef> {
        self.shared
            .stable(suid)
            .map(|s| s.tags)
            .unwrap_or_default()
    }

    fn ctx<'r>(&self, row: &'r (dyn Fn(&str) -> Option<Value> + Sync)) -> EvalCtx<'r> {
        EvalCtx {
            precision: self.precision,
            tz: self.tz,
            db: None,
            user: "",
            row: Some(row),
        }
    }

    /// Decide once per table whether and how it is delivered.
    fn plan(&mut self, table: &str) -> TaosResult<Option<Arc<TablePlan>>> {
        if let Some(p) = self.plans.get(table) {
            return Ok(p.clone());
        }
        let meta: Option<TableMeta> = self.shared.table_meta(table);
        let plan = match meta {
            // Dropped since the write: nothing to deliver.
            None => None,
            Some(meta) => self.build_plan(table, &meta)?,
        };
        let plan = plan.map(Arc::new);
        self.plans.insert(table.to_string(), plan.clone());
        Ok(plan)
    }

    fn build_plan(&mut self, table: &str, meta: &TableMeta) -> TaosResult<Option<TablePlan>> {
        let (suid, tag_values) = match &meta.kind {
            TableKind::Child { suid, tags } => (Some(*suid), tags.clone()),
            TableKind::Normal { .. } => (None, Vec::new()),
        };
        let tag_defs = suid.map(|s| self.stable_tags(s)).unwrap_or_default();
        let mut tags: Vec<(String, Value)> = tag_defs
            .iter()
            .zip(tag_values.into_iter().chain(std::iter::repeat(Value::Null)))
            .map(|(d, v)| (d.name.clone(), v))
            .collect();
        tags.push(("tbname".into(), Value::VarChar(table.to_string())));
        let wanted = match &self.topic.source {
            Source::Database => true,
            Source::Stable {
                suid: want,
                tag_filter,
            } => {
                suid == Some(*want)
                    && match tag_filter {
                        None => true,
                        Some(f) => {
                            let lookup = |n: &str| {
                                tags.iter()
                                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                                    .map(|(_, v)| v.clone())
                            };
                            eval::truth(&eval::eval(f, &self.ctx(&lookup))?).unwrap_or(false)
                        }
                    }
            }
            Source::Query { from, .. } => match from {
                QueryFrom::Stable(want) => suid == Some(*want),
                QueryFrom::Table(name) => name == table,
            },
        };
        if !wanted {
            return Ok(None);
        }
        let schema = self.shared.schema_of(meta)?;
        let columns: Vec<(u16, String)> = schema
            .columns
            .iter()
            .map(|c| (c.id, c.name.clone()))
            .collect();
        let (fields, by_col_id) = match &self.topic.source {
            Source::Query {
                projection: Some(_),
                ..
            } => (Vec::new(), HashMap::new()),
            _ => (
                schema
                    .columns
                    .iter()
                    .map(|c| Field::new(c.name.clone(), c.ty))
                    .collect(),
                schema
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.id, i))
                    .collect(),
            ),
        };
        let block = self.blocks.len();
        self.blocks.push(TmqBlock {
            table_name: if self.with_table_name {
                table.to_string()
            } else {
                String::new()
            },
            fields: fields.clone(),
            block: Block::with_columns(fields.len()),
        });
        self.pending.push(Vec::new());
        let mut declared: HashMap<String, DataType> = schema
            .columns
            .iter()
            .map(|c| (c.name.to_ascii_lowercase(), c.ty))
            .chain(tag_defs.iter().map(|t| (t.name.to_ascii_lowercase(), t.ty)))
            .collect();
        declared.insert("tbname".into(), DataType::VarChar(192));
        self.declared.push(declared);
        Ok(Some(TablePlan {
            by_col_id,
            fields,
            tags,
            columns,
            block,
        }))
    }

    fn add(&mut self, table: &str, col_ids: &[u16], rows: &[Vec<Value>]) -> TaosResult<()> {
        let Some(plan) = self.plan(table)? else {
            return Ok(());
        };
        match &self.topic.source {
            Source::Query {
                projection, where_, ..
            } => {
                for row in rows {
                    // Full-width row in schema order: absent columns are NULL.
                    let mut full = vec![Value::Null; plan.columns.len()];
                    for (id, v) in col_ids.iter().zip(row) {
                        if let Some(i) = plan.columns.iter().position(|(c, _)| c == id) {
                            full[i] = v.clone();
                        }
                    }
                    let lookup = |n: &str| {
                        plan.columns
                            .iter()
                            .position(|(_, name)| name.eq_ignore_ascii_case(n))
                            .map(|i| full[i].clone())
                            .or_else(|| {
                                plan.tags
                                    .iter()
                                    .find(|(k, _)| k.eq_ignore_ascii_case(n))
                                    .map(|(_, v)| v.clone())
                            })
                    };
                    let ctx = self.ctx(&lookup);
                    if let Some(w) = where_ {
                        if !eval::truth(&eval::eval(w, &ctx)?).unwrap_or(false) {
                            continue;
                        }
                    }
                    let out = match projection {
                        None => full.clone(),
                        Some(items) => items
                            .iter()
                            .map(|(_, e)| eval::eval(e, &ctx))
                            .collect::<TaosResult<Vec<_>>>()?,
                    };
                    match projection {
                        None => self.blocks[plan.block].block.push_row(out),
                        Some(_) => self.pending[plan.block].push(out),
                    }
                    self.rows += 1;
                }
            }
            _ => {
                let map: Vec<Option<usize>> = col_ids
                    .iter()
                    .map(|id| plan.by_col_id.get(id).copied())
                    .collect();
                let ncols = plan.fields.len();
                let b = &mut self.blocks[plan.block].block;
                for row in rows {
                    let mut full = vec![Value::Null; ncols];
                    for (slot, v) in map.iter().zip(row) {
                        if let Some(i) = slot {
                            full[*i] = v.clone();
                        }
                    }
                    b.push_row(full);
                }
                self.rows += rows.len();
            }
        }
        Ok(())
    }

    /// Typed schemas for projected blocks; empty blocks dropped.
    fn finish(mut self) -> Vec<TmqBlock> {
        if let Source::Query {
            projection: Some(items),
            ..
        } = &self.topic.source
        {
            for ((b, rows), declared) in self
                .blocks
                .iter_mut()
                .zip(self.pending.drain(..))
                .zip(&self.declared)
            {
                let mut block = Block::with_columns(items.len());
                for r in rows {
                    block.push_row(r);
                }
                b.fields = items
                    .iter()
                    .zip(&block.columns)
                    .map(|((title, e), col)| {
                        let ty = match e {
                            Expr::Column { name, .. } => {
                                declared.get(&name.to_ascii_lowercase()).copied()
                            }
                            _ => None,
                        };
                        Field::new(title.clone(), ty.unwrap_or_else(|| infer_type(&col.values)))
                    })
                    .collect();
                b.block = block;
            }
        }
        self.blocks.retain(|b| b.block.rows > 0);
        self.blocks
    }
}
