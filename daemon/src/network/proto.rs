//! [`Proto`]: atr's request-response protocols, as the loop, the handle and
//! the budgets name them.

use serde::Serialize;

/// Which request-response protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Proto {
    /// `/atr/fetch/1`.
    Fetch,
    /// `/atr/sync/1`.
    Sync,
    /// `/atr/invoke/1`.
    Invoke,
    /// `/atr/index/1`.
    Index,
}
