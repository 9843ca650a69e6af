//! openraft's storage conformance suite on our WAL-backed log store and the vnode state
//! machine, each test on a fresh vnode dir. Left out, because vnodes do not build snapshots yet
//! (a snapshot ships the Parquet file sets plus meta; that comes with replication): the two
//! snapshot tests and the three initial-state tests that build one (`get_initial_state_log_ids`,
//! `get_initial_state_last_log_lt_sm`, `get_initial_state_membership_from_log_and_sm`).

use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::{open_storage, TypeConfig, VnodeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use std::sync::Arc;

struct Builder;

pub(crate) fn test_config() -> VnodeConfig {
    VnodeConfig {
        precision: common::Precision::Ms,
        duration: 10 * 86_400_000,
        keep: 3650 * 86_400_000,
        buffer_bytes: 16 << 20,
        max_rows_per_block: 4096,
        stt_trigger: 2,
        cache_last: true,
        wal_level: 1,
        wal_fsync_period_ms: 3000,
        wal_retention_period: 3600,
        wal_retention_size: 0,
    }
}

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (shared, log) = open_storage(
            dir.path(),
            2,
            test_config(),
            Vec::new(),
            Arc::new(tokio::sync::Notify::new()),
        )
        .expect("open vnode storage");
        Ok((dir, LogStore { inner: log }, StateMachine { shared }))
    }
}

type S = Suite<TypeConfig, LogStore, StateMachine, Builder, tempfile::TempDir>;

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let b = Builder;
                let rt = tokio::runtime::Runtime::new().expect("runtime");
                rt.block_on(async move {
                    let (_dir, ls, sm) = b.build().await?;
                    S::$name(ls, sm).await
                })
                .expect(stringify!($name));
            }
        )*
    };
}

suite_tests!(
    last_membership_in_log_initial,
    last_membership_in_log,
    last_membership_in_log_multi_step,
    get_membership_initial,
    get_membership_from_log_and_empty_sm,
    get_membership_from_empty_log_and_sm,
    get_membership_from_log_le_sm_last_applied,
    get_membership_from_log_gt_sm_last_applied_1,
    get_membership_from_log_gt_sm_last_applied_2,
    get_initial_state_without_init,
    get_initial_state_with_state,
    get_initial_state_last_log_gt_sm,
    get_initial_state_re_apply_committed,
    save_vote,
    get_log_entries,
    limited_get_log_entries,
    try_get_log_entry,
    initial_logs,
    get_log_state,
    get_log_id,
    last_id_in_log,
    last_applied_state,
    purge_logs_upto_0,
    purge_logs_upto_5,
    purge_logs_upto_20,
    delete_logs_since_11,
    delete_logs_since_0,
    append_to_log,
    apply_single,
    apply_multiple,
);
