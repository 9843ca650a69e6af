//! Query results as they travel from taosd to clients: field metadata plus column-major values.

use crate::types::DataType;
use crate::value::Value;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub ty: DataType,
}

impl Field {
    pub fn new(name: impl Into<String>, ty: DataType) -> Field {
        Field {
            name: name.into(),
            ty,
        }
    }
}

/// One column of a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Column {
    pub values: Vec<Value>,
}

/// A batch of rows, column-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Block {
    pub columns: Vec<Column>,
    pub rows: usize,
}

impl Block {
    pub fn with_columns(n: usize) -> Block {
        Block {
            columns: vec![Column::default(); n],
            rows: 0,
        }
    }

    pub fn from_rows(ncols: usize, rows: Vec<Vec<Value>>) -> Block {
        let mut b = Block::with_columns(ncols);
        for r in rows {
            b.push_row(r);
        }
        b
    }

    pub fn push_row(&mut self, row: Vec<Value>) {
        for (c, v) in self.columns.iter_mut().zip(row) {
            c.values.push(v);
        }
        self.rows += 1;
    }

    pub fn row(&self, i: usize) -> Vec<&Value> {
        self.columns.iter().map(|c| &c.values[i]).collect()
    }
}
