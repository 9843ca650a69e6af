//! The replicated state machine of a vgroup: the meta store plus the storage engine. Applying
//! reads nothing but this vnode's own state and the entry, so every replica ends the same.

use crate::apply;
use crate::{TypeConfig, VnodeResponse, VnodeShared};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use std::io::Cursor;
use std::sync::Arc;

type SErr = StorageError<u64>;

/// The replicated state machine: meta store + storage engine of one vnode.
pub struct StateMachine {
    pub(crate) shared: Arc<VnodeShared>,
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        // Snapshots ship whole vnodes to new replicas: that belongs to the cluster issue.
        Err(StorageIOError::write_snapshot(
            None,
            AnyError::error("vnode snapshots are not supported yet"),
        )
        .into())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), SErr> {
        let m = self.shared.meta.read();
        Ok((m.applied, m.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<VnodeResponse>, SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let shared = self.shared.clone();
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        tokio::task::block_in_place(move || {
            let mut out = Vec::with_capacity(entries.len());
            let mut last = None;
            for e in entries {
                last = Some(e.log_id.index);
                let resp = match e.payload {
                    EntryPayload::Blank => VnodeResponse::default(),
                    EntryPayload::Normal(req) => apply::apply(&shared, e.log_id.index, req),
                    EntryPayload::Membership(m) => {
                        shared.meta.write().membership = StoredMembership::new(Some(e.log_id), m);
                        VnodeResponse::default()
                    }
                };
                shared.meta.write().applied = Some(e.log_id);
                out.push(resp);
            }
            if let Some(i) = last {
                shared.log.lock().applied(i);
            }
            shared.wake.notify_waiters();
            shared.maybe_flush();
            Ok(out)
        })
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        StateMachine {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, SErr> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<u64, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), SErr> {
        Err(StorageIOError::write_snapshot(
            None,
            AnyError::error("vnode snapshots are not supported yet"),
        )
        .into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        Ok(None)
    }
}

