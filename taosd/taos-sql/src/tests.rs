//! Parser tests, one group per statement family, then errors and a no-panic fuzz loop.

use crate::ast::*;
use crate::{parse, parse_one};
use common::time::DurationLit;
use common::{Code, DataType};

fn one(sql: &str) -> Statement {
    match parse_one(sql) {
        Ok(s) => s,
        Err(e) => panic!("{sql}: {e}"),
    }
}

fn select(sql: &str) -> Select {
    match one(sql) {
        Statement::Select(Query::Select(s)) => *s,
        other => panic!("{sql}: not a simple select: {other:?}"),
    }
}

fn expr(e: &str) -> Expr {
    let s = select(&format!("select {e}"));
    match s.projection.into_iter().next() {
        Some(SelectItem::Expr { expr, alias: None }) => expr,
        other => panic!("{e}: {other:?}"),
    }
}

fn err(sql: &str) -> common::TaosError {
    match parse(sql) {
        Ok(s) => panic!("{sql}: expected an error, got {s:?}"),
        Err(e) => e,
    }
}

fn dur(value: i64, unit: char) -> DurationLit {
    DurationLit { value, unit }
}

fn int(v: i64) -> Expr {
    Expr::Literal(Literal::Int(v))
}

fn s(v: &str) -> Expr {
    Expr::Literal(Literal::Str(v.to_string()))
}

fn bin(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    Expr::Binary {
        op,
        left: Box::new(l),
        right: Box::new(r),
    }
}

fn obj(db: Option<&str>, name: &str) -> ObjName {
    ObjName {
        db: db.map(str::to_string),
        name: name.to_string(),
    }
}

// ---------------------------------------------------------------- databases

#[test]
fn create_database_with_options() {
    let st = one(
        "CREATE DATABASE IF NOT EXISTS Power VGROUPS 4 PRECISION 'us' KEEP 10d,20d,30d DURATION 10d BUFFER 256 \
         WAL_LEVEL 2 CACHEMODEL 'last_row' COMP 2 REPLICA 1 WAL_RETENTION_PERIOD -1 STRICT 'off' KEEP_TIME_OFFSET 0",
    );
    let Statement::CreateDatabase {
        if_not_exists,
        name,
        options,
    } = st
    else {
        panic!()
    };
    assert!(if_not_exists);
    assert_eq!(name, "power");
    let get = |n: &str| {
        options
            .iter()
            .find(|o| o.name == n)
            .map(|o| o.value.clone())
            .unwrap()
    };
    assert_eq!(get("vgroups"), OptValue::Int(4));
    assert_eq!(get("precision"), OptValue::Str("us".into()));
    assert_eq!(
        get("keep"),
        OptValue::List(vec![
            OptValue::Duration(dur(10, 'd')),
            OptValue::Duration(dur(20, 'd')),
            OptValue::Duration(dur(30, 'd'))
        ])
    );
    assert_eq!(get("duration"), OptValue::Duration(dur(10, 'd')));
    assert_eq!(get("wal_retention_period"), OptValue::Int(-1));
    assert_eq!(get("cachemodel"), OptValue::Str("last_row".into()));
    assert_eq!(options.len(), 12);
    assert!(err("create database d vgroupz 4").is(Code::PAR_SYNTAX_ERROR));
}

#[test]
fn database_statements() {
    assert_eq!(
        one("drop database if exists d"),
        Statement::DropDatabase {
            if_exists: true,
            name: "d".into()
        }
    );
    assert_eq!(one("USE `Db1`;"), Statement::UseDatabase("Db1".into()));
    assert_eq!(
        one("flush database d"),
        Statement::FlushDatabase("d".into())
    );
    assert_eq!(
        one("trim database d wal"),
        Statement::TrimDatabase {
            name: "d".into(),
            wal: true
        }
    );
    let Statement::CompactDatabase { start, end, .. } =
        one("compact database d start with '2024-01-01' end with now - 1d")
    else {
        panic!()
    };
    assert_eq!(start, Some(s("2024-01-01")));
    assert!(matches!(
        end,
        Some(Expr::Binary {
            op: BinaryOp::Sub,
            ..
        })
    ));
    let Statement::AlterDatabase { name, options } =
        one("alter database d keep 3650 cachemodel 'both'")
    else {
        panic!()
    };
    assert_eq!(name, "d");
    assert_eq!(
        options[0],
        DbOption {
            name: "keep".into(),
            value: OptValue::Int(3650)
        }
    );
}

// ---------------------------------------------------------------- tables

#[test]
fn create_stable_and_tables() {
    let st = one(
        "create stable if not exists db.meters (ts timestamp, current float ENCODE 'delta-d' COMPRESS 'lz4' \
         LEVEL 'medium', voltage INT UNSIGNED, phase double, id varchar(16) primary key, v varbinary(8), \
         g geometry(64)) tags (groupid int, location binary(24), info json) comment 'm' keep 365d",
    );
    let Statement::CreateStable {
        if_not_exists,
        name,
        columns,
        tags,
        options,
    } = st
    else {
        panic!()
    };
    assert!(if_not_exists);
    assert_eq!(name, obj(Some("db"), "meters"));
    assert_eq!(columns.len(), 7);
    assert_eq!(columns[1].name, "current");
    assert_eq!(
        columns[1].options,
        vec![
            ("encode".into(), "delta-d".into()),
            ("compress".into(), "lz4".into()),
            ("level".into(), "medium".into())
        ]
    );
    assert_eq!(columns[2].ty, DataType::UInt);
    assert_eq!(
        columns[4].options,
        vec![("primary key".to_string(), String::new())]
    );
    assert_eq!(columns[5].ty, DataType::VarBinary(8));
    assert_eq!(columns[6].ty, DataType::Geometry(64));
    assert_eq!(tags[1].ty, DataType::VarChar(24));
    assert_eq!(tags[2].ty, DataType::Json);
    assert_eq!(
        options[0],
        TableOption {
            name: "comment".into(),
            value: OptValue::Str("m".into())
        }
    );
    assert_eq!(options[1].name, "keep");

    // CREATE TABLE ... TAGS is a super table too.
    assert!(matches!(
        one("create table st (ts timestamp, v int) tags (t nchar(8))"),
        Statement::CreateStable { .. }
    ));
    let Statement::CreateTable { columns, options, .. } =
        one("create table t (ts timestamp, b bool, ti tinyint unsigned, si smallint, bi bigint unsigned, f float, d double, n nchar(10)) ttl 7")
    else {
        panic!()
    };
    let types: Vec<DataType> = columns.iter().map(|c| c.ty).collect();
    assert_eq!(
        types,
        vec![
            DataType::Timestamp,
            DataType::Bool,
            DataType::UTinyInt,
            DataType::SmallInt,
            DataType::UBigInt,
            DataType::Float,
            DataType::Double,
            DataType::NChar(10)
        ]
    );
    assert_eq!(
        options,
        vec![TableOption {
            name: "ttl".into(),
            value: OptValue::Int(7)
        }]
    );
}

#[test]
fn create_child_tables_batch() {
    let st = one(
        "create table if not exists d1 using meters tags (2, 'sf') ttl 10 comment 'x' \
         if not exists db.d2 using db.meters (groupid) tags (-3) d3 using meters tags(1, null)",
    );
    let Statement::CreateSubTables(subs) = st else {
        panic!()
    };
    assert_eq!(subs.len(), 3);
    assert!(subs[0].if_not_exists);
    assert_eq!(subs[0].tags, vec![int(2), s("sf")]);
    assert_eq!(subs[0].options.len(), 2);
    assert_eq!(subs[1].name, obj(Some("db"), "d2"));
    assert_eq!(subs[1].tag_names, Some(vec!["groupid".to_string()]));
    assert_eq!(subs[1].tags, vec![int(-3)]);
    assert!(!subs[2].if_not_exists);
    assert_eq!(subs[2].tags[1], Expr::Literal(Literal::Null));
}

#[test]
fn drop_alter_describe() {
    assert_eq!(
        one("drop table if exists a, db.b, if exists c"),
        Statement::DropTables(vec![
            DropTarget {
                if_exists: true,
                name: obj(None, "a")
            },
            DropTarget {
                if_exists: false,
                name: obj(Some("db"), "b")
            },
            DropTarget {
                if_exists: true,
                name: obj(None, "c")
            },
        ])
    );
    assert_eq!(
        one("drop stable s"),
        Statement::DropStable {
            if_exists: false,
            name: obj(None, "s")
        }
    );
    assert_eq!(
        one("describe db.t"),
        Statement::Describe(obj(Some("db"), "t"))
    );
    assert_eq!(one("DESC t"), Statement::Describe(obj(None, "t")));

    let action = |sql: &str| match one(sql) {
        Statement::AlterTable { action, .. } => action,
        other => panic!("{other:?}"),
    };
    assert!(
        matches!(action("alter table t add column c2 varchar(10)"), AlterTableAction::AddColumn(c) if c.ty == DataType::VarChar(10))
    );
    assert_eq!(
        action("alter table t drop column c2"),
        AlterTableAction::DropColumn("c2".into())
    );
    assert!(matches!(
        action("alter stable s modify column c nchar(20)"),
        AlterTableAction::ModifyColumn(_)
    ));
    assert_eq!(
        action("alter table t rename column a b"),
        AlterTableAction::RenameColumn {
            from: "a".into(),
            to: "b".into()
        }
    );
    assert!(matches!(
        action("alter stable s add tag t2 int"),
        AlterTableAction::AddTag(_)
    ));
    assert_eq!(
        action("alter stable s drop tag t2"),
        AlterTableAction::DropTag("t2".into())
    );
    assert!(matches!(
        action("alter stable s modify tag t binary(30)"),
        AlterTableAction::ModifyTag(_)
    ));
    assert_eq!(
        action("alter stable s rename tag a b"),
        AlterTableAction::RenameTag {
            from: "a".into(),
            to: "b".into()
        }
    );
    assert_eq!(
        action("alter table d1 set tag groupid = 5, location = 'x'"),
        AlterTableAction::SetTags(vec![
            ("groupid".into(), int(5)),
            ("location".into(), s("x"))
        ])
    );
    assert_eq!(
        action("alter table t ttl 3 comment 'c'"),
        AlterTableAction::Options(vec![
            TableOption {
                name: "ttl".into(),
                value: OptValue::Int(3)
            },
            TableOption {
                name: "comment".into(),
                value: OptValue::Str("c".into())
            }
        ])
    );
    let Statement::AlterTable { stable, name, .. } = one("alter stable db.s keep 10d") else {
        panic!()
    };
    assert!(stable);
    assert_eq!(name, obj(Some("db"), "s"));
}

// ---------------------------------------------------------------- insert / delete

fn targets(sql: &str) -> Vec<InsertTarget> {
    match one(sql) {
        Statement::Insert(i) => i.targets,
        other => panic!("{other:?}"),
    }
}

fn rows(t: &InsertTarget) -> &Vec<Vec<Expr>> {
    match &t.source {
        InsertSource::Values(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn insert_values_forms() {
    let t = targets(
        "INSERT INTO d1 VALUES (1700000000000, 10.3, 219, 0.31)(1700000000001, -1.5, -5, NULL)",
    );
    assert_eq!(t.len(), 1);
    let r = rows(&t[0]);
    assert_eq!(
        r[0],
        vec![
            int(1_700_000_000_000),
            Expr::Literal(Literal::Float(10.3)),
            int(219),
            Expr::Literal(Literal::Float(0.31))
        ]
    );
    assert_eq!(r[1][1], Expr::Literal(Literal::Float(-1.5)));
    assert_eq!(r[1][2], int(-5));
    assert_eq!(r[1][3], Expr::Literal(Literal::Null));

    let t = targets(
        "insert into db.t (ts, c1, c2) values (now, true, 18446744073709551615) (now(), false, -9223372036854775808), \
         (now - 1h, '2024-01-01 00:00:00.000', today()) (now + 10s, 'it''s', 0x1F)",
    );
    assert_eq!(t[0].table, obj(Some("db"), "t"));
    assert_eq!(
        t[0].columns,
        Some(vec!["ts".into(), "c1".into(), "c2".into()])
    );
    let r = rows(&t[0]);
    assert_eq!(r.len(), 4);
    let now = Expr::Function {
        name: "now".into(),
        args: vec![],
        distinct: false,
    };
    assert_eq!(
        r[0],
        vec![
            now.clone(),
            Expr::Literal(Literal::Bool(true)),
            Expr::Literal(Literal::UInt(u64::MAX))
        ]
    );
    assert_eq!(r[1][0], now);
    assert_eq!(r[1][2], int(i64::MIN));
    assert_eq!(
        r[2][0],
        bin(
            BinaryOp::Sub,
            now.clone(),
            Expr::Literal(Literal::Duration(dur(1, 'h')))
        )
    );
    assert_eq!(
        r[2][2],
        Expr::Function {
            name: "today".into(),
            args: vec![],
            distinct: false
        }
    );
    assert_eq!(
        r[3][0],
        bin(
            BinaryOp::Add,
            now,
            Expr::Literal(Literal::Duration(dur(10, 's')))
        )
    );
    assert_eq!(r[3][1], s("it's"));
    assert_eq!(r[3][2], int(31));
}

#[test]
fn insert_multi_table_using_stable_select_file() {
    let t = targets(
        "insert into d1 values (1, 2) d2 using meters (groupid, location) tags (3, 'x') (ts, v) values (1, 2) \
         d3 using db.meters tags (4) values (5, 6) d4 file '/tmp/x.csv'",
    );
    assert_eq!(t.len(), 4);
    let u = t[1].using.as_ref().unwrap();
    assert_eq!(u.stable, obj(None, "meters"));
    assert_eq!(u.tag_names, Some(vec!["groupid".into(), "location".into()]));
    assert_eq!(u.tags, vec![int(3), s("x")]);
    assert_eq!(t[1].columns, Some(vec!["ts".into(), "v".into()]));
    assert_eq!(
        t[2].using.as_ref().unwrap().stable,
        obj(Some("db"), "meters")
    );
    assert_eq!(t[3].source, InsertSource::File("/tmp/x.csv".into()));

    let t = targets("insert into meters (tbname, ts, current, groupid) values ('d1', 1, 2.5, 3)");
    assert_eq!(t[0].columns.as_ref().unwrap()[0], "tbname");
    assert_eq!(rows(&t[0])[0][0], s("d1"));

    let t = targets("insert into t (ts, v) select ts, v from s where v > 1");
    assert!(matches!(&t[0].source, InsertSource::Select(q) if matches!(**q, Query::Select(_))));
    let t = targets("insert into t values ('\\x0aff')");
    assert_eq!(rows(&t[0])[0][0], s("\\x0aff"));
}

#[test]
fn delete() {
    assert_eq!(
        one("delete from db.t"),
        Statement::Delete {
            table: obj(Some("db"), "t"),
            where_: None
        }
    );
    let Statement::Delete {
        where_: Some(w), ..
    } = one("delete from t where ts < now - 10d")
    else {
        panic!()
    };
    assert!(matches!(
        w,
        Expr::Binary {
            op: BinaryOp::Lt,
            ..
        }
    ));
}

// ---------------------------------------------------------------- select

#[test]
fn select_projection_and_from() {
    let q = select("SELECT DISTINCT t.*, *, `Avg V` AS a, b c, count(*), count(distinct x), last(*) FROM db.meters t");
    assert!(q.distinct);
    assert_eq!(q.projection[0], SelectItem::QualifiedWildcard("t".into()));
    assert_eq!(q.projection[1], SelectItem::Wildcard);
    assert_eq!(
        q.projection[2],
        SelectItem::Expr {
            expr: Expr::col("Avg V"),
            alias: Some("a".into())
        }
    );
    assert_eq!(
        q.projection[3],
        SelectItem::Expr {
            expr: Expr::col("b"),
            alias: Some("c".into())
        }
    );
    assert_eq!(
        q.projection[4],
        SelectItem::Expr {
            expr: Expr::Function {
                name: "count".into(),
                args: vec![Expr::Star],
                distinct: false
            },
            alias: None
        }
    );
    assert_eq!(
        q.projection[5],
        SelectItem::Expr {
            expr: Expr::Function {
                name: "count".into(),
                args: vec![Expr::col("x")],
                distinct: true
            },
            alias: None
        }
    );
    assert_eq!(
        q.from,
        Some(FromItem::Table {
            name: obj(Some("db"), "meters"),
            alias: Some("t".into())
        })
    );

    let q = select("select tags location, tbname from meters");
    assert!(q.tags);
    let q = select("select server_version()");
    assert!(q.from.is_none());
    let q = select("select 1+1");
    assert_eq!(
        q.projection[0],
        SelectItem::Expr {
            expr: bin(BinaryOp::Add, int(1), int(1)),
            alias: None
        }
    );
}

#[test]
fn select_non_reserved_keywords_as_columns() {
    let q = select(
        "select value, status, current, phase, location, groupid, level, comment, ts, _wstart, _c0, tbname from t",
    );
    let names: Vec<String> = q
        .projection
        .iter()
        .map(|p| match p {
            SelectItem::Expr {
                expr: Expr::Column { name, .. },
                alias: None,
            } => name.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names.len(), 12);
    assert_eq!(names[0], "value");
    assert_eq!(names[11], "tbname");
}

#[test]
fn select_joins_and_subqueries() {
    let q = select(
        "select a.ts from t1 a join t2 b on a.ts = b.ts left outer join t3 on a.ts = t3.ts, t4",
    );
    let Some(FromItem::Join {
        left,
        kind: JoinKind::Cross,
        on: None,
        ..
    }) = q.from
    else {
        panic!()
    };
    let FromItem::Join {
        left: inner,
        kind: JoinKind::Left,
        on: Some(_),
        ..
    } = *left
    else {
        panic!()
    };
    assert!(matches!(
        *inner,
        FromItem::Join {
            kind: JoinKind::Inner,
            ..
        }
    ));

    let q = select("select avg(v) from (select ts, v from t where v > 0) as sub");
    assert!(matches!(q.from, Some(FromItem::Subquery { alias: Some(ref a), .. }) if a == "sub"));
    let q = select("select * from t where v in (select v from s)");
    assert!(
        matches!(q.where_, Some(Expr::InList { ref list, .. }) if matches!(list[0], Expr::Subquery(_)))
    );
}

#[test]
fn select_clauses() {
    let q = select(
        "select _wstart, avg(current) from meters where ts >= '2024-01-01' and groupid = 2 partition by tbname \
         interval(1h, 10m) sliding(30m) fill(value, 1, 2) having avg(current) > 1 order by _wstart desc nulls last, 2 \
         slimit 2 soffset 1 limit 10 offset 5",
    );
    assert_eq!(q.partition_by, vec![Expr::col("tbname")]);
    let fill = Fill::Value(vec![int(1), int(2)]);
    assert_eq!(
        q.window,
        Some(Window::Interval {
            interval: dur(1, 'h'),
            offset: Some(dur(10, 'm')),
            sliding: Some(dur(30, 'm')),
            fill: Some(fill.clone())
        })
    );
    assert_eq!(q.fill, Some(fill));
    assert!(q.having.is_some());
    assert_eq!(
        q.order_by[0],
        OrderItem {
            expr: Expr::col("_wstart"),
            asc: false,
            nulls_first: Some(false)
        }
    );
    assert_eq!(
        q.order_by[1],
        OrderItem {
            expr: int(2),
            asc: true,
            nulls_first: None
        }
    );
    assert_eq!(
        q.slimit,
        Some(Limit {
            limit: 2,
            offset: 1
        })
    );
    assert_eq!(
        q.limit,
        Some(Limit {
            limit: 10,
            offset: 5
        })
    );

    let q = select("select * from t limit 20, 10");
    assert_eq!(
        q.limit,
        Some(Limit {
            limit: 10,
            offset: 20
        })
    );
    let q = select("select count(*) from t group by location having count(*) > 2");
    assert_eq!(q.group_by, vec![Expr::col("location")]);

    assert_eq!(
        select("select count(*) from t state_window(status)").window,
        Some(Window::State(Expr::col("status")))
    );
    assert_eq!(
        select("select count(*) from t session(ts, 10s)").window,
        Some(Window::Session {
            column: Expr::col("ts"),
            gap: dur(10, 's')
        })
    );
    assert!(matches!(
        select("select count(*) from t event_window start with v > 10 end with v < 5").window,
        Some(Window::Event { .. })
    ));
    assert_eq!(
        select("select count(*) from t count_window(10, 2)").window,
        Some(Window::Count {
            count: 10,
            sliding: Some(2)
        })
    );
    for (f, want) in [
        ("none", Fill::None),
        ("null", Fill::Null),
        ("NULL_F", Fill::NullF),
        ("prev", Fill::Prev),
        ("next", Fill::Next),
        ("linear", Fill::Linear),
        ("near", Fill::Near),
        ("value_f, 0", Fill::Value(vec![int(0)])),
    ] {
        let q = select(&format!("select _irowts, interp(v) from t range('2024-01-01', '2024-01-02') every(1s) fill({f})"));
        assert_eq!(q.fill, Some(want));
        assert_eq!(q.every, Some(dur(1, 's')));
        assert_eq!(q.range, Some((s("2024-01-01"), s("2024-01-02"))));
        assert!(q.window.is_none());
    }
}

#[test]
fn select_union() {
    let Statement::Select(Query::Union {
        left,
        right,
        all,
        order_by,
        limit,
    }) = one(
        "select a from t1 union all select a from t2 union select a from t3 order by a limit 5",
    )
    else {
        panic!()
    };
    assert!(!all);
    assert!(matches!(*left, Query::Union { all: true, .. }));
    assert!(matches!(*right, Query::Select(_)));
    assert_eq!(order_by.len(), 1);
    assert_eq!(
        limit,
        Some(Limit {
            limit: 5,
            offset: 0
        })
    );
    assert!(matches!(
        one("(select 1) union (select 2)"),
        Statement::Select(Query::Union { .. })
    ));
}

#[test]
fn expression_precedence() {
    // OR < AND < NOT < comparison
    let e = expr("a = 1 or not b = 2 and c");
    let Expr::Binary {
        op: BinaryOp::Or,
        right,
        ..
    } = e
    else {
        panic!()
    };
    let Expr::Binary {
        op: BinaryOp::And,
        left,
        ..
    } = *right
    else {
        panic!()
    };
    assert!(
        matches!(*left, Expr::Unary { op: UnaryOp::Not, expr } if matches!(*expr, Expr::Binary { op: BinaryOp::Eq, .. }))
    );
    // comparison < | < & < + < * < unary minus < ->
    assert_eq!(
        expr("1 + 2 * 3 | 4 & 5"),
        bin(
            BinaryOp::BitOr,
            bin(BinaryOp::Add, int(1), bin(BinaryOp::Mul, int(2), int(3))),
            bin(BinaryOp::BitAnd, int(4), int(5))
        )
    );
    assert_eq!(
        expr("10 - 2 - 3"),
        bin(BinaryOp::Sub, bin(BinaryOp::Sub, int(10), int(2)), int(3))
    );
    assert_eq!(
        expr("-a * -2"),
        bin(
            BinaryOp::Mul,
            Expr::Unary {
                op: UnaryOp::Neg,
                expr: Box::new(Expr::col("a"))
            },
            int(-2)
        )
    );
    assert_eq!(
        expr("info->'k' = 'v'"),
        bin(
            BinaryOp::Eq,
            bin(BinaryOp::Arrow, Expr::col("info"), s("k")),
            s("v")
        )
    );
    assert_eq!(
        expr("info contains 'k'"),
        bin(BinaryOp::Contains, Expr::col("info"), s("k"))
    );
    assert_eq!(
        expr("t.c % 2"),
        bin(
            BinaryOp::Mod,
            Expr::Column {
                table: Some("t".into()),
                name: "c".into()
            },
            int(2)
        )
    );
}

#[test]
fn expression_predicates() {
    assert_eq!(
        expr("n not like 'd%'"),
        bin(BinaryOp::NotLike, Expr::col("n"), s("d%"))
    );
    assert_eq!(
        expr("n match '^d'"),
        bin(BinaryOp::Match, Expr::col("n"), s("^d"))
    );
    assert_eq!(
        expr("n nmatch '^d'"),
        bin(BinaryOp::NMatch, Expr::col("n"), s("^d"))
    );
    assert_eq!(
        expr("v not in (1, 2)"),
        Expr::InList {
            expr: Box::new(Expr::col("v")),
            list: vec![int(1), int(2)],
            negated: true
        }
    );
    assert_eq!(
        expr("v between 1 and 2 and w"),
        bin(
            BinaryOp::And,
            Expr::Between {
                expr: Box::new(Expr::col("v")),
                low: Box::new(int(1)),
                high: Box::new(int(2)),
                negated: false
            },
            Expr::col("w")
        )
    );
    assert!(matches!(
        expr("v not between 1 and 2"),
        Expr::Between { negated: true, .. }
    ));
    assert_eq!(
        expr("v is not null"),
        Expr::IsNull {
            expr: Box::new(Expr::col("v")),
            negated: true
        }
    );
    assert_eq!(
        expr("cast(v as varchar(8))"),
        Expr::Cast {
            expr: Box::new(Expr::col("v")),
            ty: DataType::VarChar(8)
        }
    );
    assert_eq!(
        expr("case when v > 1 then 'hi' else 'lo' end"),
        Expr::Case {
            operand: None,
            whens: vec![(bin(BinaryOp::Gt, Expr::col("v"), int(1)), s("hi"))],
            else_: Some(Box::new(s("lo")))
        }
    );
    assert!(matches!(
        expr("case v when 1 then 2 end"),
        Expr::Case {
            operand: Some(_),
            else_: None,
            ..
        }
    ));
    assert_eq!(
        expr("timestamp '2024-01-01'"),
        Expr::Literal(Literal::Timestamp("2024-01-01".into()))
    );
    assert_eq!(expr("1e10"), Expr::Literal(Literal::Float(1e10)));
    assert_eq!(expr(".5"), Expr::Literal(Literal::Float(0.5)));
    assert_eq!(expr("0x1F"), int(31));
    assert_eq!(
        expr("500a"),
        Expr::Literal(Literal::Duration(dur(500, 'a')))
    );
    assert_eq!(expr("\"a\\tb\""), s("a\tb"));
    assert_eq!(
        expr("database()"),
        Expr::Function {
            name: "database".into(),
            args: vec![],
            distinct: false
        }
    );
    assert_eq!(
        expr("timetruncate(ts, 1d)"),
        Expr::Function {
            name: "timetruncate".into(),
            args: vec![
                Expr::col("ts"),
                Expr::Literal(Literal::Duration(dur(1, 'd')))
            ],
            distinct: false
        }
    );
}

// ---------------------------------------------------------------- users, show, kill

#[test]
fn users_and_privileges() {
    assert_eq!(
        one("create user u1 pass 'taosdata' sysinfo 0 createdb 1"),
        Statement::CreateUser {
            name: "u1".into(),
            password: "taosdata".into(),
            sysinfo: Some(0),
            createdb: Some(1)
        }
    );
    assert_eq!(
        one("alter user u1 pass 'x'"),
        Statement::AlterUser {
            name: "u1".into(),
            change: AlterUserAction::Pass("x".into())
        }
    );
    assert_eq!(
        one("alter user u1 enable 0"),
        Statement::AlterUser {
            name: "u1".into(),
            change: AlterUserAction::Enable(0)
        }
    );
    assert_eq!(
        one("alter user u1 sysinfo 1"),
        Statement::AlterUser {
            name: "u1".into(),
            change: AlterUserAction::Sysinfo(1)
        }
    );
    assert_eq!(
        one("alter user u1 createdb 1"),
        Statement::AlterUser {
            name: "u1".into(),
            change: AlterUserAction::Createdb(1)
        }
    );
    assert_eq!(
        one("drop user u1"),
        Statement::DropUser { name: "u1".into() }
    );
    assert_eq!(
        one("grant read, write on db.* to u1"),
        Statement::Grant {
            privileges: vec![Privilege::Read, Privilege::Write],
            on: PrivilegeTarget {
                db: Some("db".into()),
                table: None
            },
            user: "u1".into()
        }
    );
    assert_eq!(
        one("grant all privileges on *.* to u1"),
        Statement::Grant {
            privileges: vec![Privilege::All],
            on: PrivilegeTarget {
                db: None,
                table: None
            },
            user: "u1".into()
        }
    );
    assert_eq!(
        one("revoke write on db.tb from u1"),
        Statement::Revoke {
            privileges: vec![Privilege::Write],
            on: PrivilegeTarget {
                db: Some("db".into()),
                table: Some("tb".into())
            },
            user: "u1".into()
        }
    );
    assert_eq!(
        one("kill query '123:456'"),
        Statement::KillQuery("123:456".into())
    );
    assert_eq!(one("kill connection 42"), Statement::KillConnection(42));
    assert!(
        err("create user aaaaaaaaaaaaaaaaaaaaaaaaa pass 'x'").is(Code::PAR_NAME_OR_PASSWD_TOO_LONG)
    );
    assert!(err("create user u pass ''").is(Code::PAR_PASSWD_EMPTY));
}

#[test]
fn show_statements() {
    let show = |sql: &str| match one(sql) {
        Statement::Show(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(show("show databases"), Show::Databases);
    assert_eq!(
        show("show db.stables like 'm%'"),
        Show::Stables {
            db: Some("db".into()),
            like: Some("m%".into())
        }
    );
    assert_eq!(
        show("show stables"),
        Show::Stables {
            db: None,
            like: None
        }
    );
    assert_eq!(
        show("show child db.tables"),
        Show::Tables {
            db: Some("db".into()),
            like: None,
            kind: Some(TableKind::Child)
        }
    );
    assert_eq!(
        show("show normal tables like 'x'"),
        Show::Tables {
            db: None,
            like: Some("x".into()),
            kind: Some(TableKind::Normal)
        }
    );
    assert_eq!(
        show("show tables"),
        Show::Tables {
            db: None,
            like: None,
            kind: None
        }
    );
    assert_eq!(
        show("show create database d"),
        Show::CreateDatabase("d".into())
    );
    assert_eq!(
        show("show create stable db.s"),
        Show::CreateStable(obj(Some("db"), "s"))
    );
    assert_eq!(
        show("show create table t"),
        Show::CreateTable(obj(None, "t"))
    );
    assert_eq!(
        show("show tags from d1 from db"),
        Show::Tags(obj(Some("db"), "d1"))
    );
    assert_eq!(
        show("show table tags from db.st"),
        Show::TableTags(obj(Some("db"), "st"))
    );
    assert_eq!(
        show("show indexes from t from db"),
        Show::Indexes(obj(Some("db"), "t"))
    );
    assert_eq!(show("show db.vgroups"), Show::Vgroups(Some("db".into())));
    assert_eq!(show("show vgroups"), Show::Vgroups(None));
    assert_eq!(show("show db.streams"), Show::Streams(Some("db".into())));
    assert_eq!(show("show local variables"), Show::LocalVariables);
    assert_eq!(show("show user privileges"), Show::UserPrivileges);
    for (sql, want) in [
        ("users", Show::Users),
        ("dnodes", Show::Dnodes),
        ("mnodes", Show::Mnodes),
        ("cluster", Show::Cluster),
        ("connections", Show::Connections),
        ("queries", Show::Queries),
        ("variables", Show::Variables),
        ("topics", Show::Topics),
        ("consumers", Show::Consumers),
        ("subscriptions", Show::Subscriptions),
        ("functions", Show::Functions),
        ("grants", Show::Grants),
    ] {
        assert_eq!(show(&format!("SHOW {sql}")), want);
    }
    assert_eq!(show("show qnodes"), Show::Other("qnodes".into()));
    assert_eq!(
        show("show table distributed t;"),
        Show::Other("table distributed t".into())
    );
    assert_eq!(show("show grants full"), Show::Other("grants full".into()));
}

#[test]
fn multiple_statements() {
    let v = parse(";; use d; select 1 ;;show databases;").unwrap();
    assert_eq!(v.len(), 3);
    assert!(parse("").unwrap().is_empty());
    assert!(parse_one("select 1; select 2").is_err());
    assert!(parse("-- just a comment\n/* and this */")
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------- errors

#[test]
fn syntax_error_position() {
    let e = err("select a, b, c d xyz from t");
    assert!(e.is(Code::PAR_SYNTAX_ERROR));
    assert_eq!(
        e.message,
        "syntax error near \"xyz from t\" (at position 17)"
    );
    // `t whre` is a table alias, so the error is at `x`.
    assert_eq!(
        err("select * from t whre x").message,
        "syntax error near \"x\" (at position 21)"
    );
    let e = err("select * form t");
    assert_eq!(e.message, "syntax error near \"form t\" (at position 9)");
    let e = err("selec * from t");
    assert_eq!(
        e.message,
        "syntax error near \"selec * from t\" (at position 0)"
    );
    let e = err("insert into t values (1, 2) (3 4) (5, 6) (7, 8) (9, 10)");
    assert!(
        e.message
            .starts_with("syntax error near \"4) (5, 6) (7, 8) (9, 10)\""),
        "{}",
        e.message
    );
    // At most 30 characters of context.
    let e = err(&format!("select * from t where {}", "x ".repeat(50)));
    assert_eq!(
        e.message,
        format!(
            "syntax error near \"{}\" (at position 24)",
            &"x ".repeat(15)
        )
    );
    assert!(err("select 'unterminated").is(Code::PAR_SYNTAX_ERROR));
    assert!(err("select a ? b").is(Code::PAR_SYNTAX_ERROR));
    assert!(err("select from t").is(Code::PAR_SYNTAX_ERROR));
}

#[test]
fn incomplete_sql() {
    for sql in [
        "select",
        "select * from",
        "insert into t values (1,",
        "create table t (ts timestamp",
        "select * from t where",
        "show",
        "select * from t where a between 1",
    ] {
        let e = err(sql);
        assert!(e.is(Code::PAR_INCOMPLETE_SQL), "{sql}: {e}");
        assert_eq!(e.message, "Incomplete SQL statement");
    }
}

#[test]
fn identifier_and_length_limits() {
    let long = |n| "a".repeat(n);
    assert!(parse(&format!("create database {}", long(64))).is_ok());
    assert!(err(&format!("create database {}", long(65))).is(Code::PAR_INVALID_IDENTIFIER_NAME));
    assert!(parse(&format!("create table {} (ts timestamp, v int)", long(192))).is_ok());
    assert!(
        err(&format!("create table {} (ts timestamp, v int)", long(193)))
            .is(Code::PAR_INVALID_IDENTIFIER_NAME)
    );
    assert!(
        err(&format!("create table t (ts timestamp, {} int)", long(65)))
            .is(Code::PAR_INVALID_IDENTIFIER_NAME)
    );
    assert!(err("create table t (ts timestamp, `a.b` int)").is(Code::PAR_INVALID_IDENTIFIER_NAME));
    assert!(err("create table t (ts timestamp, v varchar(0))").is(Code::PAR_INVALID_VAR_COLUMN_LEN));
    assert!(
        err("create table t (ts timestamp, v varchar(70000))").is(Code::PAR_INVALID_VAR_COLUMN_LEN)
    );
    assert!(
        err("create table t (ts timestamp, v nchar(99999999999999999999999))")
            .is(Code::PAR_INVALID_VAR_COLUMN_LEN)
    );
    assert!(parse("create table t (ts timestamp, v varchar(65517))").is_ok());
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let nested = |n: usize| format!("select {}1{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&nested(100)).is_ok());
    assert!(err(&nested(100_000)).is(Code::PAR_SYNTAX_ERROR));
    assert!(err(&format!("select {}1", "- ".repeat(100_000))).is(Code::PAR_SYNTAX_ERROR));
    assert!(err(&format!("select {}1", "not ".repeat(100_000))).is(Code::PAR_SYNTAX_ERROR));
    // Long flat chains build left-deep trees; they are capped too so dropping them is safe.
    assert!(err(&format!("select 1{}", "+1".repeat(100_000))).is(Code::PAR_SYNTAX_ERROR));
    assert!(parse(&format!("select 1{}", "+1".repeat(300))).is_ok());
    let unions = format!("select 1{}", " union select 1".repeat(10_000));
    assert!(err(&unions).is(Code::PAR_SYNTAX_ERROR));
    let joins = format!("select * from t{}", ", t".repeat(10_000));
    assert!(err(&joins).is(Code::PAR_SYNTAX_ERROR));
    let subq = format!(
        "select * from {}t{}",
        "(select * from ".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(err(&subq).is(Code::PAR_SYNTAX_ERROR));
}

// ---------------------------------------------------------------- robustness and speed

/// Tiny xorshift PRNG so the fuzz loop is deterministic and needs no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const CORPUS: &[&str] = &[
    "create database if not exists d vgroups 4 precision 'us' keep 10d,20d,30d",
    "create stable s (ts timestamp, v float encode 'x', id varchar(8) primary key) tags (g int, j json)",
    "create table a using s (g) tags (1) ttl 3 b using s tags(2)",
    "insert into d1 values (1700000000000, 10.3, 219, 0.31)(now - 1h, -5, 'x''y', null)",
    "insert into d2 using s tags (1, 'a') (ts, v) values (now, 1) d3 file 'f.csv'",
    "select distinct t.*, count(*), avg(v) as a from db.s t join u on t.ts = u.ts where v between 1 and 2 partition by tbname interval(1h, 1m) sliding(1m) fill(value, 1) order by 1 desc nulls first slimit 1 limit 2, 3",
    "select case when a > 1 then 'x' else cast(b as nchar(4)) end, j->'k' from (select * from t) s where n not like 'a%' and x in (1,2) or y is not null union all select 1",
    "select _irowts, interp(v) from t range('2024-01-01', now) every(1s) fill(linear)",
    "select * from t event_window start with v > 1 end with v < 0; select count(*) from t count_window(3, 1)",
    "alter table t set tag a = 1, b = 'x'; alter stable s modify column v varchar(30); drop table if exists a, b",
    "grant read on db.* to u; revoke all on *.* from u; create user u pass 'p' sysinfo 0; kill query 'x'",
    "show db.stables like 'x%'; show table tags from s from db; show create table t; show whatever else",
    "delete from t where ts < now - 10d; compact database d start with 1 end with 2; trim database d wal",
];

const TOKENS: &[&str] = &[
    "(",
    ")",
    ",",
    ";",
    "'",
    "\"",
    "`",
    "select",
    "from",
    "where",
    "values",
    "using",
    "tags",
    "-",
    "+",
    "*",
    "->",
    "not",
    "between",
    "and",
    "in",
    "is",
    "null",
    "1h",
    "0x",
    "1e",
    ".",
    "--",
    "/*",
    "\\",
    "union",
    "case",
    "end",
    "é",
    "interval(",
    "fill(",
    "😀",
    "9999999999999999999999",
];

fn mutate(rng: &mut XorShift, base: &str) -> String {
    let mut b: Vec<u8> = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] = (rng.next() & 0x7f) as u8;
            }
            1 => b.truncate(rng.below(len + 1)),
            2 if len > 0 => {
                let i = rng.below(len);
                let j = (i + rng.below(32)).min(len);
                let piece = b[i..j].to_vec();
                let at = rng.below(len + 1);
                b.splice(at..at, piece);
            }
            3 => {
                let tok = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                b.splice(at..at, tok.bytes());
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let j = (i + rng.below(16)).min(len);
                b.drain(i..j);
            }
            _ => {
                let other = CORPUS[rng.below(CORPUS.len())];
                b.extend_from_slice(b" ");
                b.extend_from_slice(other.as_bytes());
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn corpus_parses() {
    for sql in CORPUS {
        if let Err(e) = parse(sql) {
            panic!("{sql}: {e}");
        }
    }
}

/// Mutated and generated inputs never panic (a stand-in for cargo-fuzz, which needs nightly).
#[test]
fn fuzz_never_panics() {
    let iterations: usize = std::env::var("TAOS_SQL_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut ok = 0usize;
    for _ in 0..iterations {
        let input = if rng.below(10) == 0 {
            (0..rng.below(40))
                .map(|_| TOKENS[rng.below(TOKENS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            let base = CORPUS[rng.below(CORPUS.len())];
            mutate(&mut rng, base)
        };
        if parse(&input).is_ok() {
            ok += 1;
        }
    }
    // Sanity: mutations are not all fatal, so the parser's deeper paths are exercised.
    assert!(
        ok > iterations / 50,
        "only {ok} of {iterations} inputs parsed"
    );
}

/// Throughput of the INSERT hot path; run with
/// `cargo test --release -p taos-sql insert_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn insert_throughput() {
    let mut sql = String::from("INSERT INTO d1 VALUES ");
    for i in 0..10_000i64 {
        sql.push_str(&format!(
            "({},{:.1},{},{:.2})",
            1_700_000_000_000 + i,
            10.0 + (i % 7) as f64 * 0.3,
            215 + i % 9,
            0.31
        ));
    }
    let rounds = 200;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let v = parse(&sql).unwrap();
        assert_eq!(v.len(), 1);
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = (sql.len() * rounds) as f64 / 1e6;
    println!(
        "INSERT parse: {} bytes/stmt, {:.1} MB/s",
        sql.len(),
        mb / secs
    );
}

#[test]
fn number_fast_paths_match_std() {
    use crate::parser::{parse_float, parse_int};
    for s in [
        "0",
        "7",
        "123456789012345678",
        "1234567890123456789",
        "9223372036854775807",
        "9223372036854775808",
    ] {
        assert_eq!(parse_int(s), s.parse::<i64>().ok(), "{s}");
    }
    let mut rng = XorShift(12345);
    for _ in 0..20_000 {
        let int_digits = rng.below(10);
        let frac_digits = rng.below(10);
        let mut s: String = (0..int_digits)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect();
        s.push('.');
        s.extend((0..frac_digits).map(|_| char::from(b'0' + rng.below(10) as u8)));
        if s == "." {
            continue;
        }
        assert_eq!(parse_float(&s), s.parse::<f64>().ok(), "{s}");
    }
    for s in [
        "10.3",
        "0.31",
        ".5",
        "1.",
        "1e10",
        "1.5E-3",
        "3.141592653589793",
        "0.1234567890123456789",
    ] {
        assert_eq!(parse_float(s), s.parse::<f64>().ok(), "{s}");
    }
}

#[test]
fn topics_and_consumer_groups() {
    match one("create topic if not exists tp with meta as database power") {
        Statement::CreateTopic {
            if_not_exists: true,
            name,
            with_meta: true,
            source: TopicSource::Database(db),
            sql,
        } => {
            assert_eq!((name.as_str(), db.as_str()), ("tp", "power"));
            assert_eq!(
                sql,
                "create topic if not exists tp with meta as database power"
            );
        }
        other => panic!("{other:?}"),
    }
    match one("CREATE TOPIC t2 AS STABLE power.meters WHERE groupid = 2") {
        Statement::CreateTopic {
            source: TopicSource::Stable { name, where_ },
            ..
        } => {
            assert_eq!(name.db.as_deref(), Some("power"));
            assert_eq!(name.name, "meters");
            assert!(where_.is_some());
        }
        other => panic!("{other:?}"),
    }
    match one("create topic t3 as select ts, current from meters where voltage > 200;") {
        Statement::CreateTopic {
            source: TopicSource::Query { sql, .. },
            with_meta: false,
            ..
        } => assert_eq!(sql, "select ts, current from meters where voltage > 200"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        one("drop topic if exists force t3"),
        Statement::DropTopic {
            if_exists: true,
            force: true,
            name: "t3".into()
        }
    );
    assert_eq!(
        one("drop topic force"),
        Statement::DropTopic {
            if_exists: false,
            force: false,
            name: "force".into()
        }
    );
    assert_eq!(
        one("drop consumer group if exists cg1 on t3"),
        Statement::DropConsumerGroup {
            if_exists: true,
            force: false,
            group: "cg1".into(),
            topic: "t3".into()
        }
    );
    assert!(parse("create topic t as").is_err());
    assert!(parse("create topic t with meta as select * from st").is_err());
    assert!(parse("drop consumer group cg").is_err());
}
