//! The daemon's one lock-poisoning policy: **recover**.
//!
//! A lock is poisoned when a thread panicked while holding it. Every critical
//! section in the daemon either only reads, or moves its data from one valid
//! state to the next without `.await` or fallible I/O in between, and panics
//! are bugs (no `unwrap` on input), so the data behind a poisoned lock is
//! still usable: take it with [`PoisonError::into_inner`] rather than fail
//! every later request, and let the panic (already logged by the runtime)
//! end only its own task. Every `std::sync` lock in the daemon goes through
//! these helpers.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, recovering from poisoning.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `l`, recovering from poisoning.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `l`, recovering from poisoning.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
