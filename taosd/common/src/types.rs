//! TDengine data types with their wire ids (TSDB_DATA_TYPE_*) and declared lengths.

use serde::{Deserialize, Serialize};

/// A column or tag type. Variable-length types carry their declared length n
/// (bytes for VARCHAR/VARBINARY/GEOMETRY, characters for NCHAR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    Null,
    Bool,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    VarChar(u32),
    Timestamp,
    NChar(u32),
    UTinyInt,
    USmallInt,
    UInt,
    UBigInt,
    Json,
    VarBinary(u32),
    Geometry(u32),
}

/// Largest declared length of a data column's VARCHAR/VARBINARY/GEOMETRY (bytes).
pub const MAX_VAR_COLUMN_LEN: u32 = 65_517;
/// Largest declared length of a tag's variable type (bytes).
pub const MAX_VAR_TAG_LEN: u32 = 16_382;
/// Largest size of a JSON tag value.
pub const MAX_JSON_TAG_LEN: u32 = 4_095 * 4;

impl DataType {
    /// TSDB_DATA_TYPE_* id, as every connector knows it.
    pub fn id(self) -> u8 {
        match self {
            DataType::Null => 0,
            DataType::Bool => 1,
            DataType::TinyInt => 2,
            DataType::SmallInt => 3,
            DataType::Int => 4,
            DataType::BigInt => 5,
            DataType::Float => 6,
            DataType::Double => 7,
            DataType::VarChar(_) => 8,
            DataType::Timestamp => 9,
            DataType::NChar(_) => 10,
            DataType::UTinyInt => 11,
            DataType::USmallInt => 12,
            DataType::UInt => 13,
            DataType::UBigInt => 14,
            DataType::Json => 15,
            DataType::VarBinary(_) => 16,
            DataType::Geometry(_) => 20,
        }
    }

    /// The name TDengine prints in DESCRIBE and result metadata.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Null => "NULL",
            DataType::Bool => "BOOL",
            DataType::TinyInt => "TINYINT",
            DataType::SmallInt => "SMALLINT",
            DataType::Int => "INT",
            DataType::BigInt => "BIGINT",
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::VarChar(_) => "VARCHAR",
            DataType::Timestamp => "TIMESTAMP",
            DataType::NChar(_) => "NCHAR",
            DataType::UTinyInt => "TINYINT UNSIGNED",
            DataType::USmallInt => "SMALLINT UNSIGNED",
            DataType::UInt => "INT UNSIGNED",
            DataType::UBigInt => "BIGINT UNSIGNED",
            DataType::Json => "JSON",
            DataType::VarBinary(_) => "VARBINARY",
            DataType::Geometry(_) => "GEOMETRY",
        }
    }

    /// The length DESCRIBE shows: fixed size, or the declared length for variable types.
    pub fn bytes(self) -> u32 {
        match self {
            DataType::Null => 1,
            DataType::Bool | DataType::TinyInt | DataType::UTinyInt => 1,
            DataType::SmallInt | DataType::USmallInt => 2,
            DataType::Int | DataType::UInt | DataType::Float => 4,
            DataType::BigInt | DataType::UBigInt | DataType::Double | DataType::Timestamp => 8,
            DataType::VarChar(n)
            | DataType::NChar(n)
            | DataType::VarBinary(n)
            | DataType::Geometry(n) => n,
            DataType::Json => MAX_JSON_TAG_LEN,
        }
    }

    /// Bytes a value of this type may take in a row (NCHAR is 4 bytes a char, var types +2).
    pub fn row_bytes(self) -> u32 {
        match self {
            DataType::NChar(n) => n * 4 + 2,
            DataType::VarChar(n) | DataType::VarBinary(n) | DataType::Geometry(n) => n + 2,
            t => t.bytes(),
        }
    }

    pub fn is_var(self) -> bool {
        matches!(
            self,
            DataType::VarChar(_)
                | DataType::NChar(_)
                | DataType::VarBinary(_)
                | DataType::Geometry(_)
                | DataType::Json
        )
    }

    pub fn is_integer(self) -> bool {
        matches!(
            self,
            DataType::TinyInt
                | DataType::SmallInt
                | DataType::Int
                | DataType::BigInt
                | DataType::UTinyInt
                | DataType::USmallInt
                | DataType::UInt
                | DataType::UBigInt
        )
    }

    pub fn is_numeric(self) -> bool {
        self.is_integer() || matches!(self, DataType::Float | DataType::Double)
    }

    /// Type text as it appears in `SHOW CREATE TABLE`: `VARCHAR(16)`, `INT UNSIGNED`, ...
    pub fn sql(self) -> String {
        match self {
            DataType::VarChar(n)
            | DataType::NChar(n)
            | DataType::VarBinary(n)
            | DataType::Geometry(n) => {
                format!("{}({n})", self.name())
            }
            _ => self.name().to_string(),
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sql())
    }
}
