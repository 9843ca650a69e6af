//! TDengine error codes. Clients branch on these numbers, so they are kept exactly: the low 16 bits
//! are the code TDengine documents (0x2600 ...); on the wire and in `TaosError` we keep the full
//! int32 form with the high bit set (0x8000_2600), as taosc does.

use serde::{Deserialize, Serialize};

/// A TDengine error code (low 16 bits) with its canonical message prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(pub u16);

impl Code {
    pub const SUCCESS: Code = Code(0x0000);
    pub const AUTH_FAILURE_RPC: Code = Code(0x0003);
    pub const RPC_NETWORK_UNAVAIL: Code = Code(0x000B);
    pub const APP_ERROR: Code = Code(0x0100);
    pub const OUT_OF_MEMORY: Code = Code(0x0102);
    pub const INVALID_PARA: Code = Code(0x0118);
    pub const FILE_CORRUPTED: Code = Code(0x0104);
    pub const INTERNAL: Code = Code(0x0101);
    pub const TSC_SQL_SYNTAX_ERROR: Code = Code(0x0216);
    pub const TSC_VALUE_OUT_OF_RANGE: Code = Code(0x0224);
    pub const TSC_QUERY_KILLED: Code = Code(0x022D);
    pub const TSC_INVALID_OPERATION: Code = Code(0x0200);
    pub const NO_RIGHTS: Code = Code(0x0303);
    pub const MND_INVALID_QUERY_ID: Code = Code(0x030C);
    pub const MND_INVALID_CONN_ID: Code = Code(0x030E);
    pub const USER_ALREADY_EXIST: Code = Code(0x0350);
    pub const INVALID_USER: Code = Code(0x0351);
    pub const INVALID_PASS: Code = Code(0x0354);
    pub const AUTH_FAILURE: Code = Code(0x0357);
    pub const STB_ALREADY_EXIST: Code = Code(0x0360);
    pub const STB_NOT_EXIST: Code = Code(0x0361);
    pub const INVALID_TABLE_NAME: Code = Code(0x0362);
    pub const TAG_ALREADY_EXIST: Code = Code(0x0369);
    pub const TAG_NOT_EXIST: Code = Code(0x036A);
    pub const COLUMN_ALREADY_EXIST: Code = Code(0x036B);
    pub const COLUMN_NOT_EXIST: Code = Code(0x036C);
    pub const DB_NOT_SELECTED: Code = Code(0x0380);
    pub const DB_ALREADY_EXIST: Code = Code(0x0381);
    pub const INVALID_DB_OPTION: Code = Code(0x0382);
    pub const INVALID_DB: Code = Code(0x0383);
    pub const DB_NOT_EXIST: Code = Code(0x0388);
    pub const TOO_MANY_DATABASES: Code = Code(0x0385);
    /// Another catalog change got there first (TDengine: a conflicting transaction).
    pub const MND_TRANS_CONFLICT: Code = Code(0x03D3);
    // ---- subscriptions (mnode-mq, tmq)
    pub const TOPIC_ALREADY_EXIST: Code = Code(0x03E0);
    pub const TOPIC_NOT_EXIST: Code = Code(0x03E1);
    pub const TOO_MANY_TOPICS: Code = Code(0x03E2);
    pub const INVALID_TOPIC: Code = Code(0x03E3);
    pub const INVALID_TOPIC_QUERY: Code = Code(0x03E4);
    pub const CONSUMER_NOT_EXIST: Code = Code(0x03E6);
    pub const SUBSCRIBE_NOT_EXIST: Code = Code(0x03E8);
    pub const OFFSET_NOT_EXIST: Code = Code(0x03E9);
    pub const TOPIC_SUBSCRIBED: Code = Code(0x03EB);
    pub const CGROUP_USED: Code = Code(0x03EC);
    pub const TOPIC_MUST_BE_DELETED: Code = Code(0x03ED);
    pub const TMQ_INVALID_MSG: Code = Code(0x4000);
    pub const TMQ_CONSUMER_CLOSED: Code = Code(0x4002);
    pub const TMQ_VERSION_OUT_OF_RANGE: Code = Code(0x4007);
    pub const TMQ_INVALID_VGID: Code = Code(0x4008);
    pub const TMQ_INVALID_TOPIC: Code = Code(0x4009);
    pub const TMQ_NO_COMMITTED: Code = Code(0x4011);
    pub const TABLE_ALREADY_EXIST: Code = Code(0x0603);
    pub const TIMESTAMP_OUT_OF_RANGE: Code = Code(0x060B);
    pub const TDB_TABLE_NOT_EXIST: Code = Code(0x0618);
    pub const INVALID_MSG: Code = Code(0x0604);
    pub const SYN_NOT_LEADER: Code = Code(0x090C);
    pub const SYN_RESTORING: Code = Code(0x0914);
    pub const WAL_FILE_CORRUPTED: Code = Code(0x1003);
    pub const PAR_SYNTAX_ERROR: Code = Code(0x2600);
    pub const PAR_INCOMPLETE_SQL: Code = Code(0x2601);
    pub const PAR_INVALID_COLUMN: Code = Code(0x2602);
    pub const PAR_TABLE_NOT_EXIST: Code = Code(0x2603);
    pub const PAR_AMBIGUOUS_COLUMN: Code = Code(0x2604);
    pub const PAR_WRONG_VALUE_TYPE: Code = Code(0x2605);
    pub const PAR_ILLEGAL_USE_AGG_FUNC: Code = Code(0x2608);
    pub const PAR_WRONG_NUMBER_OF_SELECT: Code = Code(0x2609);
    pub const PAR_GROUPBY_LACK_EXPRESSION: Code = Code(0x260A);
    pub const PAR_NOT_SINGLE_GROUP: Code = Code(0x260C);
    pub const PAR_TAGS_NOT_MATCHED: Code = Code(0x260D);
    pub const PAR_INVALID_TAG_NAME: Code = Code(0x260E);
    pub const PAR_NAME_OR_PASSWD_TOO_LONG: Code = Code(0x2610);
    pub const PAR_PASSWD_EMPTY: Code = Code(0x2611);
    pub const PAR_INVALID_PORT: Code = Code(0x2612);
    pub const PAR_DB_NOT_SPECIFIED: Code = Code(0x2616);
    pub const PAR_INVALID_IDENTIFIER_NAME: Code = Code(0x2617);
    pub const PAR_CORRESPONDING_STABLE_ERR: Code = Code(0x2618);
    pub const PAR_INVALID_DB_OPTION: Code = Code(0x2619);
    pub const PAR_INVALID_TABLE_OPTION: Code = Code(0x261A);
    pub const PAR_GROUPBY_WINDOW_COEXIST: Code = Code(0x2624);
    pub const PAR_INVALID_FIRST_COLUMN: Code = Code(0x2641);
    pub const PAR_INVALID_VAR_COLUMN_LEN: Code = Code(0x2642);
    pub const PAR_INVALID_TAGS_NUM: Code = Code(0x2643);
    pub const PAR_INVALID_TAGS_LENGTH: Code = Code(0x263D);
    pub const PAR_INVALID_COLUMNS_NUM: Code = Code(0x263F);
    pub const PAR_AGG_FUNC_NESTING: Code = Code(0x2627);
    pub const PAR_ONLY_ONE_JSON_TAG: Code = Code(0x2633);
    pub const PAR_CANNOT_DROP_STABLE_IN_BATCH: Code = Code(0x263A);
    pub const PAR_DUPLICATED_COLUMN: Code = Code(0x263C);
    pub const PAR_INVALID_ALTER_TABLE: Code = Code(0x2649);
    pub const PAR_CANNOT_DROP_PRIMARY_KEY: Code = Code(0x264A);
    pub const PAR_INVALID_MODIFY_COL: Code = Code(0x264B);
    pub const PAR_INVALID_FUNCTION_NAME: Code = Code(0x264D);
    pub const PAR_ONLY_TAG_JSON: Code = Code(0x2652);
    pub const PAR_INVALID_ROW_LENGTH: Code = Code(0x263E);
    pub const PAR_INVALID_COLUMNS_NUM_TOO_MANY: Code = Code(0x2640);
    pub const PAR_ONLY_SUPPORT_SINGLE_TABLE: Code = Code(0x2643);
    pub const PAR_VALUE_TOO_LONG: Code = Code(0x2653);
    pub const PAR_INVALID_DELETE_WHERE: Code = Code(0x2655);
    pub const PAR_GET_META_ERROR: Code = Code(0x2662);
    pub const PAR_NOT_SUPPORTED: Code = Code(0x2664);
    pub const PAR_INTER_SLIDING_UNIT: Code = Code(0x2630);
    pub const PAR_INTER_SLIDING_TOO_BIG: Code = Code(0x2631);
    pub const PAR_INTER_SLIDING_TOO_SMALL: Code = Code(0x2632);
    pub const PAR_OFFSET_LESS_ZERO: Code = Code(0x2637);
    pub const PAR_SLIMIT_LEAK_PARTITION_GROUP_BY: Code = Code(0x2638);
    pub const PAR_INVALID_FILL_TIME_RANGE: Code = Code(0x263B);
    pub const PAR_NOT_ALLOWED_FUNC: Code = Code(0x264F);
    pub const PAR_WINDOW_NOT_ALLOWED_FUNC: Code = Code(0x2659);
    pub const PAR_INVALID_INTERP_CLAUSE: Code = Code(0x265D);
    pub const FUNC_FUNTION_ERROR: Code = Code(0x2800);
    pub const FUNC_FUNTION_PARA_NUM: Code = Code(0x2801);
    pub const FUNC_FUNTION_PARA_TYPE: Code = Code(0x2802);
    pub const FUNC_FUNTION_PARA_VALUE: Code = Code(0x2803);

    /// Canonical message for a code, used when no more specific text is given.
    pub fn message(self) -> &'static str {
        match self.0 {
            0x0000 => "success",
            0x03D3 => "Conflict transaction not completed",
            0x0003 => "Authentication failure",
            0x000B => "Unable to establish connection",
            0x0100 => "Unexpected generic error",
            0x0101 => "Internal error",
            0x0102 => "Out of memory",
            0x0104 => "Data file corrupted",
            0x0118 => "Invalid parameters",
            0x0200 => "Invalid operation",
            0x0216 => "Syntax error in SQL",
            0x0224 => "Value out of range",
            0x022D => "Query killed",
            0x0303 => "Insufficient privilege for operation",
            0x030C => "Invalid query id",
            0x030E => "Invalid connection id",
            0x0350 => "User already exists",
            0x0351 => "Invalid user",
            0x0354 => "Invalid password format",
            0x0357 => "Authentication failure",
            0x0360 => "STable already exists",
            0x0361 => "STable not exist",
            0x0362 => "Invalid table name",
            0x0369 => "Tag already exists",
            0x036A => "Tag does not exist",
            0x036B => "Column already exists",
            0x036C => "Column does not exist",
            0x03E0 => "Topic already exists",
            0x03E1 => "Topic not exist",
            0x03E2 => "Too many Topics",
            0x03E3 => "Invalid topic",
            0x03E4 => "Topic with invalid query",
            0x03E6 => "Consumer not exist",
            0x03E8 => "Subcribe not exist",
            0x03E9 => "Offset not exist",
            0x03EB => "Topic subscribed cannot be dropped",
            0x03EC => "Consumer group being used by some consumer",
            0x03ED => "Topic must be dropped first",
            0x4000 => "Invalid message",
            0x4002 => "Consumer closed",
            0x4007 => "Offset out of range",
            0x4008 => "VgId does not belong to this consumer",
            0x4009 => "Topic does not belong to this consumer",
            0x4011 => "No committed info",
            0x0380 => "Database not specified or available",
            0x0381 => "Database already exists",
            0x0382 => "Invalid database options",
            0x0383 => "Invalid database name",
            0x0385 => "Too many databases for account",
            0x0388 => "Database not exist",
            0x0603 => "Table already exists",
            0x0604 => "Invalid message",
            0x060B => "Timestamp data out of range",
            0x0618 => "Table does not exist",
            0x090C => "Sync leader is unreachable",
            0x0914 => "Sync leader is restoring",
            0x1003 => "WAL file is corrupted",
            0x2600 => "syntax error",
            0x2601 => "Incomplete SQL statement",
            0x2602 => "Invalid column name",
            0x2603 => "Table does not exist",
            0x2604 => "Column ambiguously defined",
            0x2605 => "Invalid value type",
            0x2608 => "There mustn't be aggregation",
            0x2609 => "ORDER BY item must be the number of a SELECT-list expression",
            0x260A => "Not a GROUP BY expression",
            0x260C => "Not a single-group group function",
            0x260D => "Tags number not matched",
            0x260E => "Invalid tag name",
            0x2610 => "Value is too long",
            0x2611 => "Password too short or empty",
            0x2616 => "Database not specified",
            0x2617 => "Invalid identifier name",
            0x2618 => "Corresponding super table not in this db",
            0x2619 => "Invalid database option",
            0x261A => "Invalid table option",
            0x2627 => "Aggregate functions do not support nesting",
            0x2630 => "Does not support sliding when interval is natural month/year",
            0x2631 => "sliding value no larger than the interval value",
            0x2632 => "sliding value can not less than 1% of interval value",
            0x2633 => "Only one tag if there is a json tag",
            0x2637 => "soffset/offset can not be less than 0",
            0x2638 => "slimit/soffset only available for PARTITION/GROUP BY query",
            0x263B => "Start(end) time of query range required or time range too large",
            0x263A => "Cannot drop supertable in batch",
            0x263C => "Duplicated column names",
            0x263D => "Tags length exceeds max length",
            0x263E => "Row length exceeds max length",
            0x263F => "Illegal number of columns",
            0x2640 => "Too many columns",
            0x2641 => "First column must be timestamp",
            0x2642 => "Invalid binary/nchar column/tag length",
            0x2643 => "Invalid number of tag columns",
            0x2649 => "Invalid alter table statement",
            0x264A => "Primary timestamp column cannot be dropped",
            0x264B => "Only binary/nchar column length could be modified, and the length can only be increased, not decreased",
            0x264D => "Invalid function name",
            0x264F => "Function(s) only allowed in SELECT list, cannot mixed with non scalar functions or columns",
            0x2652 => "Only tag can be json type",
            0x2653 => "Value too long for column/tag",
            0x2655 => "Delete filter must have a definite time window range",
            0x2662 => "Fail to get table info",
            0x2659 => "Window not allowed",
            0x265D => "Invalid usage of RANGE clause, EVERY clause or FILL clause",
            0x2664 => "Operation not supported",
            0x2800 => "Function error",
            0x2801 => "Invalid function para number",
            0x2802 => "Invalid function para type",
            0x2803 => "Invalid function para value",
            _ => "Unknown error",
        }
    }

    /// The int32 form taosc reports (high bit set).
    pub fn full(self) -> u32 {
        if self.0 == 0 {
            0
        } else {
            0x8000_0000 | self.0 as u32
        }
    }
}

/// An error a user can see: TDengine's code and a message that says what and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("[0x{:04X}] {message}", code & 0xFFFF)]
pub struct TaosError {
    /// Full int32 form, e.g. 0x8000_2600.
    pub code: u32,
    pub message: String,
}

impl TaosError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        TaosError {
            code: code.full(),
            message: message.into(),
        }
    }

    /// An error with the code's canonical message.
    pub fn of(code: Code) -> Self {
        Self::new(code, code.message())
    }

    /// The documented 16-bit code (what REST reports).
    pub fn short_code(&self) -> u16 {
        (self.code & 0xFFFF) as u16
    }

    pub fn is(&self, code: Code) -> bool {
        self.short_code() == code.0
    }

    /// Does the error say the written data itself is wrong (a value, name or timestamp the
    /// server refuses), so that sending the same rows again cannot succeed?
    pub fn is_refused_data(&self) -> bool {
        (0x2600..=0x26FF).contains(&self.short_code())
            || [
                Code::TSC_VALUE_OUT_OF_RANGE,
                Code::TIMESTAMP_OUT_OF_RANGE,
                Code::INVALID_TABLE_NAME,
                Code::TAG_NOT_EXIST,
                Code::COLUMN_NOT_EXIST,
            ]
            .iter()
            .any(|c| self.is(*c))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::INTERNAL, message)
    }
}

pub type TaosResult<T> = Result<T, TaosError>;

impl From<std::io::Error> for TaosError {
    fn from(e: std::io::Error) -> Self {
        TaosError::new(Code::APP_ERROR, format!("I/O error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_data_is_told_from_passing_trouble() {
        assert!(TaosError::of(Code::TIMESTAMP_OUT_OF_RANGE).is_refused_data());
        assert!(TaosError::of(Code::PAR_WRONG_VALUE_TYPE).is_refused_data());
        assert!(!TaosError::of(Code::RPC_NETWORK_UNAVAIL).is_refused_data());
        assert!(!TaosError::of(Code::SYN_NOT_LEADER).is_refused_data());
        assert!(!TaosError::of(Code::DB_NOT_EXIST).is_refused_data());
    }

    #[test]
    fn codes_have_high_bit_and_display_short() {
        let e = TaosError::new(Code::PAR_SYNTAX_ERROR, "syntax error near \"x\"");
        assert_eq!(e.code, 0x8000_2600);
        assert_eq!(e.short_code(), 0x2600);
        assert_eq!(e.to_string(), "[0x2600] syntax error near \"x\"");
        assert!(e.is(Code::PAR_SYNTAX_ERROR));
        assert_eq!(
            TaosError::of(Code::DB_NOT_EXIST).message,
            "Database not exist"
        );
    }
}
