//! The syntax tree of TDengine's SQL dialect. Identifiers are already folded to lower case
//! unless they were quoted with backticks. Nothing here is resolved against the catalog.

use common::time::DurationLit;
use common::DataType;
use serde::{Deserialize, Serialize};

/// `[db.]name`
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjName {
    pub db: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Statement {
    // ---- databases
    CreateDatabase { if_not_exists: bool, name: String, options: Vec<DbOption> },
    AlterDatabase { name: String, options: Vec<DbOption> },
    DropDatabase { if_exists: bool, name: String },
    UseDatabase(String),
    FlushDatabase(String),
    /// `COMPACT DATABASE db [START WITH ts] [END WITH ts]`
    CompactDatabase { name: String, start: Option<Expr>, end: Option<Expr> },
    TrimDatabase { name: String, wal: bool },

    // ---- tables
    CreateStable { if_not_exists: bool, name: ObjName, columns: Vec<ColumnDef>, tags: Vec<ColumnDef>, options: Vec<TableOption> },
    /// A normal table.
    CreateTable { if_not_exists: bool, name: ObjName, columns: Vec<ColumnDef>, options: Vec<TableOption> },
    /// One or more child tables: `CREATE TABLE a USING s TAGS(..) b USING s TAGS(..)`.
    CreateSubTables(Vec<CreateSubTable>),
    /// `DROP TABLE [IF EXISTS] a, [IF EXISTS] b`
    DropTables(Vec<DropTarget>),
    DropStable { if_exists: bool, name: ObjName },
    AlterTable { stable: bool, name: ObjName, action: AlterTableAction },
    Describe(ObjName),

    // ---- data
    Insert(Insert),
    /// `DELETE FROM tb [WHERE ...]`
    Delete { table: ObjName, where_: Option<Expr> },
    Select(Query),

    // ---- users and privileges
    CreateUser { name: String, password: String, sysinfo: Option<i64>, createdb: Option<i64> },
    AlterUser { name: String, change: AlterUserAction },
    DropUser { name: String },
    Grant { privileges: Vec<Privilege>, on: PrivilegeTarget, user: String },
    Revoke { privileges: Vec<Privilege>, on: PrivilegeTarget, user: String },

    // ---- metadata
    Show(Show),
    /// `KILL QUERY 'id'` / `KILL CONNECTION id`
    KillQuery(String),
    KillConnection(i64),

    // ---- data subscription
    /// `sql` is the whole statement as written (what ins_topics shows).
    CreateTopic { if_not_exists: bool, name: String, with_meta: bool, source: TopicSource, sql: String },
    DropTopic { if_exists: bool, force: bool, name: String },
    /// `DROP CONSUMER GROUP [IF EXISTS] [FORCE] cg ON topic`
    DropConsumerGroup { if_exists: bool, force: bool, group: String, topic: String },
}

/// What a topic delivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TopicSource {
    Database(String),
    /// `AS STABLE stb [WHERE tag_cond]`
    Stable { name: ObjName, where_: Option<Expr> },
    /// `AS SELECT ...`, with its text (what SHOW TOPICS prints).
    Query { query: Box<Query>, sql: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Show {
    Databases,
    /// `SHOW [db.]STABLES [LIKE 'p']`
    Stables { db: Option<String>, like: Option<String> },
    /// `SHOW [NORMAL|CHILD] [db.]TABLES [LIKE 'p']`
    Tables { db: Option<String>, like: Option<String>, kind: Option<TableKind> },
    CreateDatabase(String),
    CreateStable(ObjName),
    CreateTable(ObjName),
    /// `SHOW TAGS FROM ctb [FROM db]`
    Tags(ObjName),
    /// `SHOW TABLE TAGS FROM stb [FROM db]`
    TableTags(ObjName),
    Users,
    Dnodes,
    Mnodes,
    /// `SHOW [db.]VGROUPS`
    Vgroups(Option<String>),
    Cluster,
    Connections,
    Queries,
    Variables,
    LocalVariables,
    Topics,
    Consumers,
    Subscriptions,
    Streams(Option<String>),
    Functions,
    Grants,
    Indexes(ObjName),
    UserPrivileges,
    /// Any other `SHOW <words>` not modelled yet: the executor answers "not supported".
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableKind {
    Normal,
    Child,
}

/// A database option `name value`; `name` is lower case (`vgroups`, `keep`, `precision`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbOption {
    pub name: String,
    pub value: OptValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OptValue {
    Int(i64),
    Float(f64),
    /// `10d`, `60m`
    Duration(DurationLit),
    /// `'ms'`, `'last_row'`
    Str(String),
    /// A bare word such as `both`
    Ident(String),
    /// `KEEP 10d,20d,30d`
    List(Vec<OptValue>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub ty: DataType,
    /// `PRIMARY KEY`, `ENCODE 'x'`, `COMPRESS 'y'`, `LEVEL 'z'` as (lower-case key, value);
    /// PRIMARY KEY is ("primary key", "").
    pub options: Vec<(String, String)>,
}

/// `COMMENT 'c'`, `TTL n`, `SMA(a,b)`, `KEEP v`, `MAX_DELAY`, `WATERMARK`, `ROLLUP(..)`, `DELETE_MARK`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableOption {
    pub name: String,
    pub value: OptValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateSubTable {
    pub if_not_exists: bool,
    pub name: ObjName,
    pub stable: ObjName,
    /// `USING stb (t1, t2) TAGS (...)`: the named subset of tags, in that order.
    pub tag_names: Option<Vec<String>>,
    pub tags: Vec<Expr>,
    pub options: Vec<TableOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropTarget {
    pub if_exists: bool,
    pub name: ObjName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlterTableAction {
    AddColumn(ColumnDef),
    DropColumn(String),
    ModifyColumn(ColumnDef),
    RenameColumn { from: String, to: String },
    AddTag(ColumnDef),
    DropTag(String),
    ModifyTag(ColumnDef),
    RenameTag { from: String, to: String },
    /// `SET TAG t1 = v1, t2 = v2`
    SetTags(Vec<(String, Expr)>),
    Options(Vec<TableOption>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlterUserAction {
    Pass(String),
    Enable(i64),
    Sysinfo(i64),
    Createdb(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Privilege {
    Read,
    Write,
    All,
}

/// `db.*`, `db.tb`, `*.*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegeTarget {
    pub db: Option<String>,
    pub table: Option<String>,
}

// ---------------------------------------------------------------- INSERT

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Insert {
    pub targets: Vec<InsertTarget>,
}

/// One `tb [USING stb TAGS(..)] [(cols)] VALUES (..)(..)` clause of an INSERT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsertTarget {
    /// The table written, or the super table in `INSERT INTO stb(tbname, ...) VALUES`.
    pub table: ObjName,
    pub using: Option<Using>,
    /// Explicit column list (may include `tbname` and tag names in the super-table form).
    pub columns: Option<Vec<String>>,
    pub source: InsertSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Using {
    pub stable: ObjName,
    pub tag_names: Option<Vec<String>>,
    pub tags: Vec<Expr>,
    pub options: Vec<TableOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InsertSource {
    /// Rows of value expressions (literals, NOW, `now - 1h`, ...).
    Values(Vec<Vec<Expr>>),
    Select(Box<Query>),
    /// `FILE 'path.csv'`
    File(String),
}

// ---------------------------------------------------------------- SELECT

/// A query: one SELECT or a UNION chain, with an outer ORDER BY / LIMIT for the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Query {
    Select(Box<Select>),
    Union { left: Box<Query>, right: Box<Query>, all: bool, order_by: Vec<OrderItem>, limit: Option<Limit> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Select {
    pub distinct: bool,
    /// `SELECT TAGS ...`
    pub tags: bool,
    pub projection: Vec<SelectItem>,
    pub from: Option<FromItem>,
    pub where_: Option<Expr>,
    pub partition_by: Vec<Expr>,
    pub window: Option<Window>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub order_by: Vec<OrderItem>,
    /// SLIMIT / SOFFSET
    pub slimit: Option<Limit>,
    pub limit: Option<Limit>,
    /// `RANGE(start, end)` of INTERP
    pub range: Option<(Expr, Expr)>,
    /// `EVERY(1s)` of INTERP
    pub every: Option<DurationLit>,
    /// FILL of INTERP (without a window) or of INTERVAL (then also in `Window::Interval`).
    pub fill: Option<Fill>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SelectItem {
    /// `*`
    Wildcard,
    /// `t.*`
    QualifiedWildcard(String),
    Expr { expr: Expr, alias: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromItem {
    Table { name: ObjName, alias: Option<String> },
    Subquery { query: Box<Query>, alias: Option<String> },
    /// `a [INNER|LEFT|...] JOIN b ON cond`, also the old `FROM a, b WHERE a.ts = b.ts` form.
    Join { left: Box<FromItem>, right: Box<FromItem>, kind: JoinKind, on: Option<Expr> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
    /// comma join
    Cross,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Window {
    /// `INTERVAL(i [, offset]) [SLIDING(s)] [FILL(..)]`
    Interval { interval: DurationLit, offset: Option<DurationLit>, sliding: Option<DurationLit>, fill: Option<Fill> },
    /// `STATE_WINDOW(expr)`
    State(Expr),
    /// `SESSION(ts_col, gap)`
    Session { column: Expr, gap: DurationLit },
    /// `EVENT_WINDOW START WITH cond END WITH cond`
    Event { start: Expr, end: Expr },
    /// `COUNT_WINDOW(n [, sliding])`
    Count { count: i64, sliding: Option<i64> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fill {
    None,
    Null,
    NullF,
    /// `FILL(VALUE, 1, 2)` / `VALUE_F`
    Value(Vec<Expr>),
    Prev,
    Next,
    Linear,
    Near,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub expr: Expr,
    pub asc: bool,
    /// `NULLS FIRST` (Some(true)) / `NULLS LAST` (Some(false))
    pub nulls_first: Option<bool>,
}

// ---------------------------------------------------------------- expressions

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    Null,
    Bool(bool),
    /// Integers that fit i64 (a leading minus sign folded in).
    Int(i64),
    /// Integers above i64::MAX.
    UInt(u64),
    Float(f64),
    /// `'...'` or `"..."`, escapes resolved.
    Str(String),
    /// `TIMESTAMP '...'`
    Timestamp(String),
    /// `1h`, `10d`, `5a` (in NOW arithmetic, INTERVAL ...)
    Duration(DurationLit),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Like,
    NotLike,
    Match,
    NMatch,
    /// JSON tag `CONTAINS 'key'`
    Contains,
    /// JSON tag access `tag->'key'`
    Arrow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    Literal(Literal),
    /// A column, tag or pseudo column (`tbname`, `_wstart`, `_rowts`, `_c0`, ...), optionally
    /// qualified by a table name or alias.
    Column { table: Option<String>, name: String },
    /// `*` inside a call such as `count(*)` or `last(*)`.
    Star,
    /// Function call; `name` is lower case. `NOW` and `TODAY` without parentheses are calls
    /// with no arguments.
    Function { name: String, args: Vec<Expr>, distinct: bool },
    Unary { op: UnaryOp, expr: Box<Expr> },
    Binary { op: BinaryOp, left: Box<Expr>, right: Box<Expr> },
    IsNull { expr: Box<Expr>, negated: bool },
    Between { expr: Box<Expr>, low: Box<Expr>, high: Box<Expr>, negated: bool },
    InList { expr: Box<Expr>, list: Vec<Expr>, negated: bool },
    Case { operand: Option<Box<Expr>>, whens: Vec<(Expr, Expr)>, else_: Option<Box<Expr>> },
    Cast { expr: Box<Expr>, ty: DataType },
    Subquery(Box<Query>),
}

impl Expr {
    pub fn col(name: &str) -> Expr {
        Expr::Column { table: None, name: name.to_string() }
    }
}
