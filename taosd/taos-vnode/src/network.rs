//! The raft network of a single-voter vgroup: nobody to call. The dnode RPC supplies a real
//! one for replicated vgroups (the replication issue).

use crate::TypeConfig;
use openraft::BasicNode;

/// With one voter there is nobody to call; the cluster issue replaces this with RPC on serverPort.
pub struct Network;
pub struct NoPeer;

impl openraft::network::RaftNetworkFactory<TypeConfig> for Network {
    type Network = NoPeer;
    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> NoPeer {
        NoPeer
    }
}

fn unreachable<E: std::error::Error>() -> openraft::error::RPCError<u64, BasicNode, E> {
    openraft::error::RPCError::Unreachable(openraft::error::Unreachable::new(
        &std::io::Error::other("no peers: single-replica vgroup"),
    ))
}

impl openraft::network::RaftNetwork<TypeConfig> for NoPeer {
    async fn append_entries(
        &mut self,
        _rpc: openraft::raft::AppendEntriesRequest<TypeConfig>,
        _option: openraft::network::RPCOption,
    ) -> Result<
        openraft::raft::AppendEntriesResponse<u64>,
        openraft::error::RPCError<u64, BasicNode, openraft::error::RaftError<u64>>,
    > {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: openraft::raft::InstallSnapshotRequest<TypeConfig>,
        _option: openraft::network::RPCOption,
    ) -> Result<
        openraft::raft::InstallSnapshotResponse<u64>,
        openraft::error::RPCError<
            u64,
            BasicNode,
            openraft::error::RaftError<u64, openraft::error::InstallSnapshotError>,
        >,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: openraft::raft::VoteRequest<u64>,
        _option: openraft::network::RPCOption,
    ) -> Result<
        openraft::raft::VoteResponse<u64>,
        openraft::error::RPCError<u64, BasicNode, openraft::error::RaftError<u64>>,
    > {
        Err(unreachable())
    }
}
