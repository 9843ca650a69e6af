//! Changes to the catalog, as data: one [`MnodeRequest`] is one future raft entry of the mnode
//! group. Everything an apply needs is in the request (names, times, placements, password
//! hashes), and every check that depends on the catalog runs in apply, so applying the same
//! requests in the same order gives every mnode the same catalog.

use crate::catalog::{DbInfo, StableInfo, TopicInfo, UserInfo};
use crate::dboptions::DbOptions;
use serde::{Deserialize, Serialize};

/// The vgroups a new database gets: hash ranges and the dnode each replica goes to; ids are
/// assigned by the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VgroupPlacement {
    pub hash_begin: u32,
    pub hash_end: u32,
    pub dnode_id: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MnodeRequest {
    CreateDb {
        name: String,
        options: DbOptions,
        create_time: i64,
        vgroups: Vec<VgroupPlacement>,
        if_not_exists: bool,
        /// Vnodes the cluster can host in all (supportVnodes summed over dnodes).
        vnode_capacity: u32,
    },
    DropDb {
        name: String,
        if_exists: bool,
    },
    AlterDb {
        name: String,
        options: DbOptions,
    },
    /// `info.uid` is assigned by the catalog.
    CreateStable {
        info: StableInfo,
        if_not_exists: bool,
    },
    DropStable {
        db: String,
        name: String,
        if_exists: bool,
    },
    /// Replace a super table, provided it is still `before` (another ALTER in between fails
    /// the request instead of being overwritten).
    AlterStable {
        before: StableInfo,
        after: StableInfo,
    },
    CreateUser(UserInfo),
    AlterUser {
        name: String,
        change: UserChange,
    },
    DropUser {
        name: String,
    },
    /// GRANT (`grant`) or REVOKE read / write on `db` (`*` for all).
    Grant {
        user: String,
        db: String,
        read: bool,
        write: bool,
        grant: bool,
    },
    CreateTopic {
        info: TopicInfo,
        max_topics: usize,
    },
    DropTopic {
        name: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum UserChange {
    /// The new password, hashed with the user's salt by the proposer.
    PassHash(String),
    Enable(bool),
    Sysinfo(bool),
    Createdb(bool),
}

/// What a request produced, where the proposer needs it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub enum MnodeReply {
    #[default]
    Done,
    /// The database created / dropped (None: IF [NOT] EXISTS made it a no-op).
    Db(Option<DbInfo>),
    Stable(Option<StableInfo>),
}
