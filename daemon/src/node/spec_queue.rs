//! The fair queue of gossip specs waiting to be verified.
//!
//! Verifying and storing a spec is the costly part of gossip, so only a few
//! run at once (twice the cores) and the rest wait here, bounded. A plain
//! first-come queue lets a flood of valid junk specs put every honest spec
//! behind it: the honest spec is then verified seconds late, after gossipsub
//! has dropped it from its message cache, so it is never forwarded and
//! reaches the other nodes only through anti-entropy (seen in the testnet's
//! `attacks` scenario: honest propagation p95 from ~50 ms to 2–12 s).
//!
//! Who goes next when a slot frees up:
//!
//! 1. a spec whose publisher is **established** here (this node, a trusted
//!    publisher, or one with a spec already stored) before any other: a
//!    flood from fresh keys, which cost nothing to make, waits behind every
//!    publisher this node already knows;
//! 2. within a class, the waiting publisher **served least** recently (specs
//!    that arrived in the last [`SERVED_WINDOW`] or so) first: a publisher
//!    sending hundreds of specs cannot delay one sending a few, however many
//!    keys the flood uses, as long as each key is busier than the honest one.
//!
//! The publisher is read from the unverified spec. Claiming an established
//! publisher's key only wins a place in line: the signature check then fails
//! and the sender is penalized as for any forged object.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atr_protocol::PublicKey;
use tokio::sync::oneshot;

/// How long a publisher's service count lasts: counts are halved this often.
pub const SERVED_WINDOW: Duration = Duration::from_secs(10);

/// Most publishers whose service counts are remembered; past it the counts
/// are forgotten (all publishers equal again), so the map stays bounded.
pub const MAX_REMEMBERED_PUBLISHERS: usize = 4096;

/// The queue was full: the spec is not verified now (ignored on gossip).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} gossip specs are already waiting to be verified")]
pub struct QueueFull(pub usize);

/// Bounded, fair admission of gossip specs to verification.
#[derive(Clone)]
pub struct SpecQueue {
    inner: Arc<Mutex<State>>,
}

struct State {
    slots: usize,
    cap: usize,
    running: usize,
    waiting: usize,
    /// Waiters per publisher, per class (0: established, 1: other).
    queues: [HashMap<PublicKey, VecDeque<oneshot::Sender<Slot>>>; 2],
    served: HashMap<PublicKey, u32>,
    decayed_at: Instant,
}

/// A verification slot: given back (to the next waiter) when dropped.
pub struct Slot {
    queue: Option<SpecQueue>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(q) = self.queue.take() {
            q.release();
        }
    }
}

impl SpecQueue {
    /// `slots` specs verified at once, at most `cap` waiting.
    pub fn new(slots: usize, cap: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                slots: slots.max(1),
                cap,
                running: 0,
                waiting: 0,
                queues: [HashMap::new(), HashMap::new()],
                served: HashMap::new(),
                decayed_at: Instant::now(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot for a spec by `publisher` (`established`: see the
    /// module doc). Refused at once when `cap` specs are waiting already.
    pub async fn acquire(&self, publisher: PublicKey, established: bool) -> Result<Slot, QueueFull> {
        let rx = {
            let mut s = self.lock();
            s.note_served(publisher);
            if s.running < s.slots {
                s.running += 1;
                return Ok(Slot {
                    queue: Some(self.clone()),
                });
            }
            if s.waiting >= s.cap {
                return Err(QueueFull(s.cap));
            }
            let (tx, rx) = oneshot::channel();
            s.waiting += 1;
            s.queues[usize::from(!established)]
                .entry(publisher)
                .or_default()
                .push_back(tx);
            rx
        };
        // The sender is dropped only with the queue itself.
        rx.await.map_err(|_| QueueFull(0))
    }

    /// Hands a freed slot to the next waiter, or frees it.
    fn release(&self) {
        loop {
            let tx = {
                let mut s = self.lock();
                match s.next_waiter() {
                    Some(tx) => tx,
                    None => {
                        s.running = s.running.saturating_sub(1);
                        return;
                    }
                }
            };
            let slot = Slot {
                queue: Some(self.clone()),
            };
            match tx.send(slot) {
                Ok(()) => return,
                // The waiter is gone (its task ended): the slot came back
                // through `Drop`… which would recurse; defuse and try the next.
                Err(mut slot) => slot.queue = None,
            }
        }
    }

    /// How many specs wait now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }
}

impl State {
    /// Counts a spec of `publisher` as asked for (when it arrives, so a
    /// flood counts before any of it is verified), halving every count each
    /// [`SERVED_WINDOW`].
    fn note_served(&mut self, publisher: PublicKey) {
        if self.decayed_at.elapsed() >= SERVED_WINDOW {
            self.decayed_at = Instant::now();
            self.served.retain(|_, n| {
                *n /= 2;
                *n > 0
            });
        }
        if self.served.len() >= MAX_REMEMBERED_PUBLISHERS && !self.served.contains_key(&publisher) {
            self.served.clear();
        }
        let n = self.served.entry(publisher).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// The first waiter of the least-served publisher of the first class
    /// with any.
    fn next_waiter(&mut self) -> Option<oneshot::Sender<Slot>> {
        for class in 0..2 {
            let Some(publisher) = self.queues[class]
                .keys()
                .min_by_key(|p| self.served.get(*p).copied().unwrap_or(0))
                .copied()
            else {
                continue;
            };
            let waiters = self.queues[class].get_mut(&publisher)?;
            let tx = waiters.pop_front();
            if waiters.is_empty() {
                self.queues[class].remove(&publisher);
            }
            if let Some(tx) = tx {
                self.waiting = self.waiting.saturating_sub(1);
                return Some(tx);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atr_protocol::SecretKey;

    fn key(seed: u8) -> PublicKey {
        SecretKey::from_seed(&[seed; 32]).public()
    }

    /// Queues `n` waiters for `publisher`; each reports `label` when admitted.
    fn wait_many(
        q: &SpecQueue,
        publisher: PublicKey,
        established: bool,
        n: usize,
        label: &'static str,
        order: &Arc<Mutex<Vec<&'static str>>>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..n)
            .map(|_| {
                let (q, order) = (q.clone(), order.clone());
                tokio::spawn(async move {
                    let slot = q.acquire(publisher, established).await;
                    assert!(slot.is_ok());
                    order.lock().unwrap().push(label);
                    drop(slot);
                })
            })
            .collect()
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_quiet_established_publisher_goes_before_a_flood_of_junk_and_fresh_keys() {
        let q = SpecQueue::new(1, 100);
        let busy = q.acquire(key(9), true).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        // 40 junk specs from one established (busy) key, 20 from fresh
        // keys, queued first; then one honest spec.
        let mut tasks = wait_many(&q, key(1), true, 40, "junk", &order);
        for i in 0..20 {
            tasks.extend(wait_many(&q, key(100 + i), false, 1, "fresh", &order));
        }
        settle().await;
        tasks.extend(wait_many(&q, key(2), true, 1, "honest", &order));
        settle().await;
        assert_eq!(q.waiting(), 61);
        drop(busy);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], "honest", "{order:?}");
        // Every established publisher's spec before any fresh key's.
        let first_fresh = order.iter().position(|l| *l == "fresh").unwrap();
        assert!(order[..first_fresh].iter().all(|l| *l != "fresh"));
        assert_eq!(first_fresh, 41);
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test]
    async fn beyond_the_cap_a_spec_is_refused_and_freed_slots_are_reused() {
        let q = SpecQueue::new(2, 3);
        let a = q.acquire(key(1), true).await.unwrap();
        let b = q.acquire(key(1), true).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let tasks = wait_many(&q, key(3), false, 3, "w", &order);
        settle().await;
        assert_eq!(q.waiting(), 3);
        assert_eq!(q.acquire(key(4), true).await.err(), Some(QueueFull(3)));
        drop(a);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().unwrap().len(), 3);
        drop(b);
        // Both slots free again: two acquire at once.
        let both = async {
            let c = q.acquire(key(5), true).await;
            let d = q.acquire(key(5), true).await;
            (c.is_ok(), d.is_ok())
        };
        let got = tokio::time::timeout(Duration::from_secs(5), both).await;
        assert_eq!(got.ok(), Some((true, true)));
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_went_away_passes_its_slot_on() {
        let q = SpecQueue::new(1, 10);
        let held = q.acquire(key(1), true).await.unwrap();
        let gone = {
            let q = q.clone();
            tokio::spawn(async move { q.acquire(key(2), true).await.map(|_| ()) })
        };
        settle().await;
        gone.abort();
        let _ = gone.await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let next = wait_many(&q, key(3), true, 1, "next", &order);
        settle().await;
        drop(held);
        for t in next {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["next"]);
    }

    #[test]
    fn service_counts_stay_bounded() {
        let q = SpecQueue::new(1, 1);
        let mut s = q.lock();
        for i in 0..(MAX_REMEMBERED_PUBLISHERS as u32 + 10) {
            let k = SecretKey::from_seed(&{
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_le_bytes());
                b
            })
            .public();
            s.note_served(k);
        }
        assert!(s.served.len() <= MAX_REMEMBERED_PUBLISHERS);
    }
}
