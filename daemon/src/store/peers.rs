//! The known-peer table: addresses of peers the node has met, for
//! reconnecting after a restart without relying on bootstrap peers alone.
//!
//! At most [`MAX_PEERS`] rows are kept. A new peer arriving at the cap
//! replaces the peer seen longest ago (found in O(log n) through the
//! `(last_seen_ms, peer)` index): stale addresses are worth less than fresh
//! ones, and refusing newcomers would freeze the table on dead addresses.
//! The caller records only peers it actually connected to, which bounds how
//! fast anyone can push entries out.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::tables::{PEERS, PEERS_BY_SEEN};
use super::{Store, StoreError};

/// Most peers remembered: plenty to rejoin any network, small enough to
/// list at start (about 1 MB of JSON).
pub const MAX_PEERS: u64 = 10_000;
/// Most addresses kept per peer; further ones are dropped.
pub const MAX_PEER_ADDRS: usize = 16;
/// Longest address kept (a multiaddr in text form); longer ones are dropped.
pub const MAX_PEER_ADDR_LEN: usize = 256;
/// Longest peer id text accepted (an ed25519 peer id is 52 characters).
pub const MAX_PEER_ID_LEN: usize = 128;

/// What the node remembers about a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// Its listen addresses, multiaddrs in text form.
    pub addrs: Vec<String>,
    /// When it was last connected, milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
}

impl Store {
    /// Records or updates a peer. Addresses beyond [`MAX_PEER_ADDRS`] or
    /// longer than [`MAX_PEER_ADDR_LEN`] are dropped; a peer id that is
    /// empty or longer than [`MAX_PEER_ID_LEN`] is
    /// [`StoreError::InvalidPeer`]. At [`MAX_PEERS`] a new peer replaces the
    /// one seen longest ago.
    pub fn put_peer(&self, peer: &str, rec: &PeerRecord) -> Result<(), StoreError> {
        if peer.is_empty() || peer.len() > MAX_PEER_ID_LEN {
            return Err(StoreError::InvalidPeer(format!(
                "a peer id is 1 to {MAX_PEER_ID_LEN} bytes, got {}",
                peer.len()
            )));
        }
        let rec = PeerRecord {
            addrs: rec
                .addrs
                .iter()
                .filter(|a| a.len() <= MAX_PEER_ADDR_LEN)
                .take(MAX_PEER_ADDRS)
                .cloned()
                .collect(),
            last_seen_ms: rec.last_seen_ms,
        };
        let json = serde_json::to_vec(&rec).map_err(|e| StoreError::InvalidPeer(e.to_string()))?;
        self.write(|txn| {
            let mut peers = txn.open_table(PEERS)?;
            let mut by_seen = txn.open_table(PEERS_BY_SEEN)?;
            let old = peers
                .get(peer)?
                .map(|g| serde_json::from_slice::<PeerRecord>(g.value()));
            match old {
                Some(Ok(old)) => {
                    by_seen.remove((old.last_seen_ms, peer))?;
                }
                // A damaged row is simply overwritten below.
                Some(Err(_)) => {}
                None => {
                    while peers.len()? >= self.max_peers {
                        let Some(oldest) = by_seen.pop_first()?.map(|(k, _)| k.value().1.to_owned()) else {
                            break;
                        };
                        peers.remove(oldest.as_str())?;
                    }
                }
            }
            peers.insert(peer, json.as_slice())?;
            by_seen.insert((rec.last_seen_ms, peer), ())?;
            Ok((true, ()))
        })
    }

    /// Known peers, the most recently seen first. Damaged rows are skipped
    /// with a warning.
    pub fn peers(&self) -> Result<Vec<(String, PeerRecord)>, StoreError> {
        let txn = self.read()?;
        let peers = txn.open_table(PEERS)?;
        let by_seen = txn.open_table(PEERS_BY_SEEN)?;
        let mut out = Vec::new();
        for row in by_seen.iter()?.rev() {
            let (key, _) = row?;
            let (_, peer) = key.value();
            let Some(json) = peers.get(peer)? else {
                continue;
            };
            match serde_json::from_slice::<PeerRecord>(json.value()) {
                Ok(rec) => out.push((peer.to_owned(), rec)),
                Err(e) => self.skip(&StoreError::Corrupt {
                    table: "peers",
                    detail: format!("row {peer}: {e}"),
                }),
            }
        }
        Ok(out)
    }
}
