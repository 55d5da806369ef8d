//! Table definitions of the store and the byte order of their keys.
//!
//! Key order is chosen for the scans the store makes:
//!
//! - 32-byte hashes compare bytewise, so the objects of one anti-entropy
//!   bucket (first hash byte) are one contiguous range.
//! - `u64` keys compare numerically (redb encodes them little-endian but
//!   compares them as numbers), so the receipt log and the peer recency index
//!   iterate oldest to newest.
//!
//! Table names carry a `_v1` suffix: a layout change gets new tables and a
//! migration rather than a silent reinterpretation of old bytes.

use redb::TableDefinition;

/// Spec id → signed spec envelope ([`atr_protocol::Signed::to_bytes`]).
pub(super) const SPECS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("specs_v1");

/// Revocation hash → signed revocation envelope.
pub(super) const REVOCATIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("revocations_v1");

/// Delegation hash → signed delegation envelope.
pub(super) const DELEGATIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("delegations_v1");

/// Invocation id → signed receipt envelope.
pub(super) const RECEIPTS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("receipts_v1");

/// Local insertion sequence number → invocation id: the order receipts were
/// stored in, so the newest can be listed first without a scan.
pub(super) const RECEIPT_LOG: TableDefinition<u64, &[u8; 16]> = TableDefinition::new("receipt_log_v1");

/// Peer id text → JSON [`super::PeerRecord`].
pub(super) const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers_v1");

/// `(last_seen_ms, peer id)` → nothing: finds the stalest peer in O(log n)
/// when the peer table is full, and lists peers newest first.
pub(super) const PEERS_BY_SEEN: TableDefinition<(u64, &str), ()> = TableDefinition::new("peers_by_seen_v1");

/// Index tables earlier builds wrote (`(tag, id)`, `(name, id)`,
/// `(publisher, id)`) and nothing read; deleted when a store is opened.
pub(super) const LEGACY_INDEXES: [TableDefinition<&[u8], ()>; 3] = [
    TableDefinition::new("tag_index_v1"),
    TableDefinition::new("name_index_v1"),
    TableDefinition::new("publisher_index_v1"),
];

/// Anti-entropy bucket (first hash byte) → blake3 of the sorted hashes of
/// every spec and revocation in it. Updated in the transaction that adds or
/// removes an object, so a digest never disagrees with the tables.
pub(super) const DIGESTS: TableDefinition<u8, &[u8; 32]> = TableDefinition::new("sync_digests_v2");

/// Spec id → nothing: other publishers' specs this node agreed to run
/// (operator consent, `POST /v1/provide`).
pub(super) const PROVIDED: TableDefinition<&[u8; 32], ()> = TableDefinition::new("provided_v1");

/// Publisher key → label (empty: none): the publishers this node's operator trusted through
/// the API (`atr trust add`), at most [`atr_protocol::trust::MAX_TRUSTED`] rows. The config
/// file's `trusted_publishers` are not stored: they are read at every start.
pub(super) const TRUSTED: TableDefinition<&[u8; 32], &str> = TableDefinition::new("trusted_v1");

/// Small named counters and markers.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");

/// [`META`] key: the layout version of the store.
pub(super) const META_SCHEMA: &str = "schema_version";
/// [`META`] key: the last receipt sequence number handed out.
pub(super) const META_RECEIPT_SEQ: &str = "receipt_seq";

/// The layout version this build writes and reads.
pub(super) const SCHEMA_VERSION: u64 = 1;
