//! Column definitions shared by the catalog (mnode) and the vnodes' meta stores: both hold the
//! schema of a super table (the mnode as the source of truth, each vnode a copy in its own log),
//! so neither reads the other's to apply a change.

use crate::DataType;
use serde::{Deserialize, Serialize};

/// A data column or tag. `id` survives renames; new columns get new ids (the storage engine
/// maps file columns by id, so ALTER keeps old files readable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub id: u16,
    pub name: String,
    pub ty: DataType,
    #[serde(default)]
    pub primary_key: bool,
}
