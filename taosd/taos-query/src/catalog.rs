//! What the query engine needs from the server: resolve a FROM name to its tables (a super
//! table's children with their tag values, or one table) and scan their rows. taosd implements
//! it over its mnode and vnodes; the cluster issue implements the same trait over RPC.

use async_trait::async_trait;
use common::{DataType, Field, Precision, TaosResult, Value};
use datafusion::arrow::record_batch::RecordBatch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Super,
    Child,
    Normal,
}

/// A FROM target: its schema and the physical tables it covers.
#[derive(Debug, Clone)]
pub struct TableSet {
    pub db: String,
    pub name: String,
    pub kind: TableKind,
    pub precision: Precision,
    /// Data columns, the primary timestamp first.
    pub columns: Vec<Field>,
    /// Tags (empty for normal tables).
    pub tags: Vec<Field>,
    /// The physical tables: one for a child or normal table, every child of a super table.
    pub members: Vec<Member>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// Tag values in `TableSet::tags` order.
    pub tags: Vec<Value>,
}

/// Rows to read: an inclusive time range and the data columns wanted (by name; the primary
/// timestamp is always returned first).
#[derive(Debug, Clone)]
pub struct ScanSpec {
    pub start: i64,
    pub end: i64,
    pub columns: Vec<String>,
}

/// One data column of a statistics aggregate and what is wanted beyond COUNT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggColumnSpec {
    pub name: String,
    pub min_max: bool,
    pub sum: bool,
}

/// COUNT / MIN / MAX / SUM to compute per member over an inclusive time range.
#[derive(Debug, Clone)]
pub struct AggSpec {
    pub start: i64,
    pub end: i64,
    pub columns: Vec<AggColumnSpec>,
}

/// A SUM: exact for integer columns, `f64` for FLOAT / DOUBLE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggSum {
    Int(i128),
    Float(f64),
}

/// One column's aggregates (MIN / MAX / SUM `None` when not wanted or no value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnAgg {
    pub count: u64,
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub sum: Option<AggSum>,
}

/// One member's aggregates: its row count and each `AggSpec` column's, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberAgg {
    pub rows: u64,
    pub cols: Vec<ColumnAgg>,
}

#[async_trait]
pub trait Catalog: Send + Sync {
    /// Resolve `db.name`; TDengine's errors (0x0388 database, 0x2603 table) when missing.
    fn table_set(&self, db: &str, name: &str) -> TaosResult<TableSet>;

    /// Scan some members of a table set. Each batch holds one member's rows sorted by time:
    /// the timestamp column then `spec.columns`, typed as `arrow_type` says.
    async fn scan(
        &self,
        set: &TableSet,
        members: &[usize],
        spec: &ScanSpec,
    ) -> TaosResult<Vec<(usize, RecordBatch)>>;

    /// The newest row of each member (all data columns, timestamp first), for LAST_ROW
    /// queries the engine can answer without scanning. `None`: not available, plan normally.
    async fn last_rows(
        &self,
        _set: &TableSet,
        _members: &[usize],
    ) -> TaosResult<Option<Vec<(usize, Vec<Value>)>>> {
        Ok(None)
    }

    /// COUNT / MIN / MAX / SUM per member, computed by the storage engine (from block
    /// statistics where it can), identical to aggregating a `scan`. Members without rows in
    /// the range are left out. `None`: not available, plan normally.
    async fn aggregate(
        &self,
        _set: &TableSet,
        _members: &[usize],
        _spec: &AggSpec,
    ) -> TaosResult<Option<Vec<(usize, MemberAgg)>>> {
        Ok(None)
    }

    /// information_schema / performance_schema tables as rows.
    fn system_table(&self, db: &str, name: &str) -> TaosResult<(Vec<Field>, Vec<Vec<Value>>)>;
}

/// The Arrow type a TDengine column is read as.
pub fn arrow_type(ty: DataType, p: Precision) -> datafusion::arrow::datatypes::DataType {
    use datafusion::arrow::datatypes::{DataType as A, TimeUnit};
    match ty {
        DataType::Null => A::Null,
        DataType::Bool => A::Boolean,
        DataType::TinyInt => A::Int8,
        DataType::SmallInt => A::Int16,
        DataType::Int => A::Int32,
        DataType::BigInt => A::Int64,
        DataType::UTinyInt => A::UInt8,
        DataType::USmallInt => A::UInt16,
        DataType::UInt => A::UInt32,
        DataType::UBigInt => A::UInt64,
        DataType::Float => A::Float32,
        DataType::Double => A::Float64,
        DataType::Timestamp => A::Timestamp(
            match p {
                Precision::Ms => TimeUnit::Millisecond,
                Precision::Us => TimeUnit::Microsecond,
                Precision::Ns => TimeUnit::Nanosecond,
            },
            None,
        ),
        DataType::VarChar(_) | DataType::NChar(_) | DataType::Json => A::Utf8,
        DataType::VarBinary(_) | DataType::Geometry(_) => A::Binary,
    }
}
