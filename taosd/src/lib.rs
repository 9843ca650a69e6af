//! taosd as a library: the dnode host ([`dnode`]), the coordinator that executes statements
//! ([`coordinator`], [`exec`], [`tmq`]), the boundary between them ([`rpc`]) and the client
//! endpoint ([`server`]). The binary wires one of each; tests wire several dnodes in one
//! process over [`rpc::SimTransport`].

pub mod config;
pub mod conns;
pub mod coordinator;
pub mod dnode;
pub mod exec;
pub mod rpc;
pub mod server;
pub mod tmq;

use std::sync::Arc;

/// A single-node taosd: dnode 1 hosting the mnode and every vnode, its coordinator calling it
/// in process.
pub async fn start_single(
    config: config::DnodeConfig,
) -> common::TaosResult<(Arc<dnode::Dnode>, Arc<coordinator::Coordinator>)> {
    let dnode = dnode::Dnode::open(1, config.clone(), true).await?;
    let mnode = dnode
        .mnode
        .clone()
        .ok_or_else(|| common::TaosError::internal("dnode 1 has no mnode"))?;
    let rpc = Arc::new(rpc::LocalTransport::new([dnode.clone()]));
    let me = coordinator::DnodeInfo {
        id: 1,
        endpoint: config.endpoint(),
        support_vnodes: config.support_vnodes,
    };
    let c = coordinator::Coordinator::open(config, mnode, rpc, vec![me], dnode.clone()).await?;
    Ok((dnode, c))
}
