//! Database options: TDengine's defaults and ranges (SQL.md §2.1), parsed from `CREATE/ALTER
//! DATABASE` option lists, and rendered for `SHOW CREATE DATABASE` / `ins_databases`.

use common::time::DurationLit;
use common::{Code, Precision, TaosError, TaosResult};
use serde::{Deserialize, Serialize};
use taos_sql::ast::{DbOption, OptValue};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbOptions {
    pub vgroups: u32,
    pub replica: u32,
    pub precision: Precision,
    /// MB of memtable per vnode.
    pub buffer: u32,
    pub pages: u32,
    pub pagesize: u32,
    pub tsdb_pagesize: u32,
    pub cachemodel: String,
    pub cachesize: u32,
    pub comp: u32,
    /// Minutes.
    pub duration: i64,
    /// Minutes, up to three tiers.
    pub keep: Vec<i64>,
    pub keep_time_offset: i64,
    pub minrows: u32,
    pub maxrows: u32,
    pub stt_trigger: u32,
    pub single_stable: u32,
    pub table_prefix: i64,
    pub table_suffix: i64,
    pub wal_level: u32,
    pub wal_fsync_period: u32,
    pub wal_retention_period: i64,
    pub wal_retention_size: i64,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            vgroups: 2,
            replica: 1,
            precision: Precision::Ms,
            buffer: 256,
            pages: 256,
            pagesize: 4,
            tsdb_pagesize: 4,
            cachemodel: "none".into(),
            cachesize: 1,
            comp: 2,
            duration: 10 * 1440,
            keep: vec![3650 * 1440; 3],
            keep_time_offset: 0,
            minrows: 100,
            maxrows: 4096,
            stt_trigger: 2,
            single_stable: 0,
            table_prefix: 0,
            table_suffix: 0,
            wal_level: 1,
            wal_fsync_period: 3000,
            wal_retention_period: 3600,
            wal_retention_size: 0,
        }
    }
}

fn bad(name: &str, msg: impl std::fmt::Display) -> TaosError {
    TaosError::new(
        Code::PAR_INVALID_DB_OPTION,
        format!("Invalid option {name}: {msg}"),
    )
}

fn int(name: &str, v: &OptValue, min: i64, max: i64) -> TaosResult<i64> {
    let i = match v {
        OptValue::Int(i) => *i,
        OptValue::Str(s) | OptValue::Ident(s) => s
            .parse()
            .map_err(|_| bad(name, format!("'{s}' is not a number")))?,
        _ => return Err(bad(name, "expects an integer")),
    };
    if i < min || i > max {
        return Err(bad(name, format!("{i} valid range: [{min}, {max}]")));
    }
    Ok(i)
}

/// A duration in minutes; a bare number means days (TDengine's rule for DURATION/KEEP).
fn minutes(name: &str, v: &OptValue) -> TaosResult<i64> {
    let d = match v {
        OptValue::Int(i) => DurationLit {
            value: *i,
            unit: 'd',
        },
        OptValue::Duration(d) => *d,
        OptValue::Str(s) | OptValue::Ident(s) => {
            DurationLit::parse(s, Some('d')).ok_or_else(|| bad(name, format!("'{s}'")))?
        }
        _ => return Err(bad(name, "expects a duration such as 10d")),
    };
    if !matches!(d.unit, 'm' | 'h' | 'd') {
        return Err(bad(name, "the unit must be m, h or d"));
    }
    d.minutes().ok_or_else(|| bad(name, "out of range"))
}

fn text(name: &str, v: &OptValue) -> TaosResult<String> {
    match v {
        OptValue::Str(s) | OptValue::Ident(s) => Ok(s.to_ascii_lowercase()),
        _ => Err(bad(name, "expects a string")),
    }
}

impl DbOptions {
    /// Apply an option list. `alter` restricts to the options ALTER DATABASE may change.
    pub fn apply(&mut self, opts: &[DbOption], alter: bool) -> TaosResult<()> {
        for o in opts {
            let n = o.name.as_str();
            let v = &o.value;
            let fixed = [
                "vgroups",
                "precision",
                "pagesize",
                "tsdb_pagesize",
                "comp",
                "single_stable",
                "table_prefix",
                "table_suffix",
                "maxrows",
            ];
            if alter && fixed.contains(&n) {
                return Err(bad(n, "cannot be altered"));
            }
            match n {
                "vgroups" => self.vgroups = int(n, v, 1, 1024)? as u32,
                "replica" => {
                    let r = int(n, v, 1, 3)?;
                    if r != 1 {
                        return Err(TaosError::new(
                            Code::PAR_INVALID_DB_OPTION,
                            format!("Invalid option replica: {r}; this single dnode supports replica 1 (the cluster adds 3)"),
                        ));
                    }
                    self.replica = 1;
                }
                "precision" => {
                    let s = text(n, v)?;
                    self.precision = Precision::parse(&s)
                        .ok_or_else(|| bad(n, format!("'{s}', expects 'ms', 'us' or 'ns'")))?;
                }
                "buffer" => self.buffer = int(n, v, 3, 16384)? as u32,
                "pages" => self.pages = int(n, v, 64, i32::MAX as i64)? as u32,
                "pagesize" => self.pagesize = int(n, v, 1, 16384)? as u32,
                "tsdb_pagesize" => self.tsdb_pagesize = int(n, v, 1, 16384)? as u32,
                "cachemodel" => {
                    let s = text(n, v)?;
                    if !["none", "last_row", "last_value", "both"].contains(&s.as_str()) {
                        return Err(bad(
                            n,
                            format!("'{s}', expects 'none', 'last_row', 'last_value' or 'both'"),
                        ));
                    }
                    self.cachemodel = s;
                }
                "cachesize" => self.cachesize = int(n, v, 1, 65536)? as u32,
                "comp" => self.comp = int(n, v, 0, 2)? as u32,
                "duration" | "days" => {
                    let m = minutes(n, v)?;
                    if !(60..=3650 * 1440).contains(&m) {
                        return Err(bad(n, format!("{m}m valid range: [60m, {}m]", 3650 * 1440)));
                    }
                    self.duration = m;
                }
                "keep" => {
                    let list: Vec<&OptValue> = match v {
                        OptValue::List(l) => l.iter().collect(),
                        other => vec![other],
                    };
                    if list.is_empty() || list.len() > 3 {
                        return Err(bad(n, "expects one to three values"));
                    }
                    let mut keep = Vec::new();
                    for x in list {
                        let m = minutes(n, x)?;
                        if !(1440..=365000 * 1440).contains(&m) {
                            return Err(bad(
                                n,
                                format!("{m}m valid range: [1440m, {}m]", 365000i64 * 1440),
                            ));
                        }
                        keep.push(m);
                    }
                    while keep.len() < 3 {
                        keep.push(*keep.last().unwrap_or(&(3650 * 1440)));
                    }
                    if keep.windows(2).any(|w| w[0] > w[1]) {
                        return Err(bad(n, "values must be in ascending order"));
                    }
                    self.keep = keep;
                }
                "keep_time_offset" => self.keep_time_offset = int(n, v, 0, 23)?,
                "minrows" => self.minrows = int(n, v, 10, 1_000_000)? as u32,
                "maxrows" => self.maxrows = int(n, v, 200, 10_000_000)? as u32,
                "stt_trigger" => self.stt_trigger = int(n, v, 1, 16)? as u32,
                "single_stable" => self.single_stable = int(n, v, 0, 1)? as u32,
                "table_prefix" => self.table_prefix = int(n, v, -191, 191)?,
                "table_suffix" => self.table_suffix = int(n, v, -191, 191)?,
                "wal_level" => self.wal_level = int(n, v, 0, 2)? as u32,
                "wal_fsync_period" => self.wal_fsync_period = int(n, v, 0, 180_000)? as u32,
                "wal_retention_period" => {
                    self.wal_retention_period = int(n, v, -1, i32::MAX as i64)?
                }
                "wal_retention_size" => self.wal_retention_size = int(n, v, -1, i32::MAX as i64)?,
                "strict"
                | "wal_roll_period"
                | "wal_segment_size"
                | "s3_keeplocal"
                | "s3_chunksize"
                | "s3_compact"
                | "ss_keeplocal"
                | "ss_chunkpages"
                | "ss_compact"
                | "encrypt_algorithm"
                | "compact_interval"
                | "compact_time_range"
                | "compact_time_offset"
                | "dnodes" => {}
                other => {
                    return Err(TaosError::new(
                        Code::PAR_SYNTAX_ERROR,
                        format!("syntax error near \"{other}\": unknown database option"),
                    ))
                }
            }
        }
        let keep_max = *self.keep.iter().max().unwrap_or(&0);
        if keep_max < 3 * self.duration {
            return Err(TaosError::new(
                Code::PAR_INVALID_DB_OPTION,
                format!(
                    "Invalid option keep: keep {}m must be at least 3 times of duration {}m",
                    keep_max, self.duration
                ),
            ));
        }
        if self.minrows > self.maxrows {
            return Err(bad("minrows", "must not exceed maxrows"));
        }
        Ok(())
    }

    /// KEEP in the database precision.
    pub fn keep_units(&self) -> i64 {
        let m = *self.keep.iter().max().unwrap_or(&(3650 * 1440));
        m.saturating_mul(60)
            .saturating_mul(self.precision.per_second())
    }

    pub fn duration_units(&self) -> i64 {
        self.duration
            .saturating_mul(60)
            .saturating_mul(self.precision.per_second())
    }

    pub fn keep_text(&self) -> String {
        self.keep
            .iter()
            .map(|k| format!("{k}m"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The option text of `SHOW CREATE DATABASE`.
    pub fn create_sql(&self, name: &str) -> String {
        format!(
            "CREATE DATABASE `{name}` BUFFER {} CACHESIZE {} CACHEMODEL '{}' COMP {} DURATION {}m WAL_FSYNC_PERIOD {} MAXROWS {} MINROWS {} STT_TRIGGER {} KEEP {} PAGES {} PAGESIZE {} PRECISION '{}' REPLICA {} WAL_LEVEL {} VGROUPS {} SINGLE_STABLE {} TABLE_PREFIX {} TABLE_SUFFIX {} TSDB_PAGESIZE {} WAL_RETENTION_PERIOD {} WAL_RETENTION_SIZE {} KEEP_TIME_OFFSET {}",
            self.buffer,
            self.cachesize,
            self.cachemodel,
            self.comp,
            self.duration,
            self.wal_fsync_period,
            self.maxrows,
            self.minrows,
            self.stt_trigger,
            self.keep_text(),
            self.pages,
            self.pagesize,
            self.precision.as_str(),
            self.replica,
            self.wal_level,
            self.vgroups,
            self.single_stable,
            self.table_prefix,
            self.table_suffix,
            self.tsdb_pagesize,
            self.wal_retention_period,
            self.wal_retention_size,
            self.keep_time_offset
        )
    }
}
