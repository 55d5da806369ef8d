//! What one peer may make this node spend, beyond connections (those are
//! libp2p's `connection_limits`, see [`super::behaviour`]):
//!
//! - [`RequestRates`]: a token bucket per peer and protocol; a request over
//!   the rate is dropped unanswered before it is decoded; likewise a bucket
//!   per peer for the gossip messages it delivers: one over the rate is
//!   ignored (not decoded, verified or forwarded; the sender is not
//!   penalized, since an honest peer may be relaying someone's flood, and
//!   anti-entropy repairs what an honest object missed);
//! - [`ResponseBudget`]: bytes of responses being built or waiting to be
//!   sent, all peers together and per peer; a request that does not fit is
//!   dropped unanswered;
//! - [`PeerLedger`]: bad messages per peer, as a score that decays (half-life
//!   [`BAD_SCORE_HALF_LIFE`]); at [`BAN_SCORE`] the peer is disconnected and
//!   banned for [`BAN_DURATION`]. Both maps are capped ([`MAX_TRACKED_PEERS`]).
//!
//! Every refusal is counted in `atr_budget_exceeded_total{budget=…}`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use libp2p::PeerId;

use super::proto::Proto;
use crate::config::Budgets;
use crate::lock;

/// Bad-message score at which a peer is disconnected and banned.
pub const BAN_SCORE: f64 = 16.0;
/// Half-life of a peer's bad-message score.
pub const BAD_SCORE_HALF_LIFE: Duration = Duration::from_secs(600);
/// How long a banned peer stays banned.
pub const BAN_DURATION: Duration = Duration::from_secs(3600);
/// Peers tracked by the ledger and by the rate limiters; beyond, the least
/// suspicious (ledger) or idle (limiters) entries are dropped.
pub const MAX_TRACKED_PEERS: usize = 10_000;

/// Token buckets per (peer, protocol).
pub struct RequestRates {
    fetch: DefaultKeyedRateLimiter<PeerId>,
    sync: DefaultKeyedRateLimiter<PeerId>,
    invoke: DefaultKeyedRateLimiter<PeerId>,
    index: DefaultKeyedRateLimiter<PeerId>,
    /// Gossip messages a peer delivers (its own and those it relays).
    gossip: DefaultKeyedRateLimiter<PeerId>,
}

impl RequestRates {
    /// Limiters with `per_sec` requests per second and `burst` above it per
    /// peer and protocol; sync, whose requests are the costliest to answer,
    /// gets a tenth of both.
    pub fn new(b: &Budgets) -> Self {
        let quota = |per_sec: u32, burst: u32| {
            let period = Duration::from_secs(1) / per_sec.max(1);
            Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
        };
        let normal = quota(b.peer_requests_per_sec, b.peer_request_burst);
        let sync = Quota::with_period(Duration::from_secs(10) / b.peer_requests_per_sec.max(1))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(b.peer_request_burst / 10).unwrap_or(NonZeroU32::MIN));
        Self {
            fetch: RateLimiter::keyed(normal),
            sync: RateLimiter::keyed(sync),
            invoke: RateLimiter::keyed(normal),
            index: RateLimiter::keyed(normal),
            gossip: RateLimiter::keyed(quota(b.peer_gossip_per_sec, b.peer_gossip_burst)),
        }
    }

    /// Takes one token of `peer` for `proto`; false when the bucket is empty.
    pub fn allow(&self, proto: Proto, peer: &PeerId) -> bool {
        self.limiter(proto).check_key(peer).is_ok()
    }

    /// Takes one gossip token of `peer` (the peer that delivered a message,
    /// not its author); false when the bucket is empty.
    pub fn allow_gossip(&self, peer: &PeerId) -> bool {
        self.gossip.check_key(peer).is_ok()
    }

    fn limiter(&self, proto: Proto) -> &DefaultKeyedRateLimiter<PeerId> {
        match proto {
            Proto::Fetch => &self.fetch,
            Proto::Sync => &self.sync,
            Proto::Invoke => &self.invoke,
            Proto::Index => &self.index,
        }
    }

    /// Forgets peers whose buckets are full again (they are indistinguishable
    /// from new peers); called periodically, so the maps hold only recently
    /// active peers (at most the connected ones times the refill time).
    pub fn forget_idle(&self) {
        for l in [&self.fetch, &self.sync, &self.invoke, &self.index, &self.gossip] {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Peers with a bucket, all protocols together (tests).
    pub fn tracked(&self) -> usize {
        [&self.fetch, &self.sync, &self.invoke, &self.index, &self.gossip]
            .iter()
            .map(|l| l.len())
            .sum()
    }
}

/// Bytes of responses in flight; see the module docs.
#[derive(Clone, Debug)]
pub struct ResponseBudget {
    inner: Arc<Mutex<InFlight>>,
    total_cap: usize,
    per_peer_cap: usize,
}

#[derive(Debug, Default)]
struct InFlight {
    total: usize,
    per_peer: HashMap<PeerId, usize>,
}

impl ResponseBudget {
    /// A budget of `total_cap` bytes; one peer may hold an eighth of it, and
    /// at least one full fetch response.
    pub fn new(total_cap: usize) -> Self {
        Self {
            inner: Arc::default(),
            total_cap,
            per_peer_cap: (total_cap / 8).max(atr_protocol::wire::MAX_FETCH_RESPONSE_BYTES),
        }
    }

    /// Reserves `bytes` for a response to `peer`, or `None` when that would
    /// exceed the total or the peer's share.
    pub fn try_reserve(&self, peer: PeerId, bytes: usize) -> Option<ResponsePermit> {
        let mut s = lock::lock(&self.inner);
        let mine = s.per_peer.get(&peer).copied().unwrap_or(0);
        if s.total + bytes > self.total_cap || mine + bytes > self.per_peer_cap {
            return None;
        }
        s.total += bytes;
        *s.per_peer.entry(peer).or_insert(0) += bytes;
        Some(ResponsePermit {
            budget: self.clone(),
            peer,
            bytes,
        })
    }

    /// Bytes reserved now, all peers together.
    pub fn in_flight(&self) -> usize {
        lock::lock(&self.inner).total
    }

    fn release(&self, peer: &PeerId, bytes: usize) {
        let mut s = lock::lock(&self.inner);
        s.total = s.total.saturating_sub(bytes);
        if let Some(n) = s.per_peer.get_mut(peer) {
            *n = n.saturating_sub(bytes);
            if *n == 0 {
                s.per_peer.remove(peer);
            }
        }
    }
}

/// Bytes of one response, given back when dropped (after the response was
/// sent, failed, or was never built).
#[derive(Debug)]
pub struct ResponsePermit {
    budget: ResponseBudget,
    peer: PeerId,
    bytes: usize,
}

impl ResponsePermit {
    /// Gives back everything above `bytes` (once the response is built).
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.budget.release(&self.peer, self.bytes - bytes);
            self.bytes = bytes;
        }
    }
}

impl Drop for ResponsePermit {
    fn drop(&mut self) {
        self.budget.release(&self.peer, self.bytes);
    }
}

/// Bad messages per peer and bans; see the module docs.
#[derive(Debug, Default)]
pub struct PeerLedger {
    scores: HashMap<PeerId, Score>,
    banned: HashMap<PeerId, Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Score {
    /// Decayed score at `at`.
    value: f64,
    at: Instant,
    /// Bad messages counted while the entry existed (for display).
    total: u64,
}

impl Score {
    fn now(&self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.value * 0.5f64.powf(dt / BAD_SCORE_HALF_LIFE.as_secs_f64())
    }
}

/// What [`PeerLedger::penalize`] decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Penalty {
    /// Bad messages counted for the peer so far.
    pub total: u64,
    /// The peer is banned from now on (first time only).
    pub banned: bool,
}

impl PeerLedger {
    /// Counts one bad message of `peer`.
    pub fn penalize(&mut self, peer: PeerId, now: Instant) -> Penalty {
        if !self.scores.contains_key(&peer) && self.scores.len() >= MAX_TRACKED_PEERS {
            self.evict_lowest(now);
        }
        let s = self.scores.entry(peer).or_insert(Score {
            value: 0.0,
            at: now,
            total: 0,
        });
        s.value = s.now(now) + 1.0;
        s.at = now;
        s.total += 1;
        let (value, total) = (s.value, s.total);
        let banned = value >= BAN_SCORE && !self.is_banned(&peer, now);
        if banned {
            if self.banned.len() >= MAX_TRACKED_PEERS
                && let Some(oldest) = self
                    .banned
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(p, _)| *p)
            {
                self.banned.remove(&oldest);
            }
            self.banned.insert(peer, now + BAN_DURATION);
        }
        Penalty { total, banned }
    }

    /// Bad messages counted for `peer` (0 once its score has decayed away).
    pub fn bad_messages(&self, peer: &PeerId) -> u64 {
        self.scores.get(peer).map(|s| s.total).unwrap_or(0)
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.banned.get(peer).is_some_and(|until| *until > now)
    }

    /// Drops decayed scores and lifts expired bans; returns the peers whose
    /// ban was lifted (to remove from gossipsub's blacklist).
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        self.scores.retain(|_, s| s.now(now) >= 0.5);
        let lifted: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &lifted {
            self.banned.remove(p);
        }
        lifted
    }

    /// Peers with a score or a ban (tests).
    pub fn tracked(&self) -> (usize, usize) {
        (self.scores.len(), self.banned.len())
    }

    fn evict_lowest(&mut self, now: Instant) {
        if let Some(p) = self
            .scores
            .iter()
            .filter(|(p, _)| !self.banned.contains_key(p))
            .min_by(|a, b| a.1.now(now).total_cmp(&b.1.now(now)))
            .map(|(p, _)| *p)
        {
            self.scores.remove(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_over_its_rate_is_refused_and_others_are_not() {
        let b = Budgets {
            peer_requests_per_sec: 10,
            peer_request_burst: 20,
            ..Budgets::default()
        };
        let r = RequestRates::new(&b);
        let (flooder, other) = (PeerId::random(), PeerId::random());
        let allowed = (0..200).filter(|_| r.allow(Proto::Fetch, &flooder)).count();
        // The burst, plus at most a token or two refilled while looping.
        assert!((20..=22).contains(&allowed), "{allowed}");
        assert!(r.allow(Proto::Fetch, &other));
        assert!(r.allow(Proto::Index, &flooder), "buckets are per protocol");
        let syncs = (0..50).filter(|_| r.allow(Proto::Sync, &flooder)).count();
        assert_eq!(syncs, 2, "sync gets a tenth of the burst");
    }

    #[test]
    fn response_bytes_are_capped_in_total_and_per_peer_and_given_back() {
        let max = atr_protocol::wire::MAX_FETCH_RESPONSE_BYTES;
        let budget = ResponseBudget::new(4 * max);
        let a = PeerId::random();
        let first = budget.try_reserve(a, max).unwrap();
        assert!(
            budget.try_reserve(a, 1).is_none(),
            "one peer holds at most max(total/8, one fetch response)"
        );
        let others: Vec<_> = (0..3)
            .map(|_| budget.try_reserve(PeerId::random(), max).unwrap())
            .collect();
        assert!(budget.try_reserve(PeerId::random(), 1).is_none(), "total reached");
        drop(others);
        let mut p = budget.try_reserve(PeerId::random(), max).unwrap();
        p.shrink_to(100);
        assert_eq!(budget.in_flight(), max + 100);
        drop((p, first));
        assert_eq!(budget.in_flight(), 0);
    }

    #[test]
    fn scores_decay_bans_expire_and_the_ledger_is_capped() {
        let mut l = PeerLedger::default();
        let t0 = Instant::now();
        let p = PeerId::random();
        for i in 1..16 {
            assert_eq!(
                l.penalize(p, t0),
                Penalty {
                    total: i,
                    banned: false
                }
            );
        }
        // Two half-lives later the score is ~3.75: sixteen more-or-less slow
        // bad messages do not ban.
        let later = t0 + 2 * BAD_SCORE_HALF_LIFE;
        assert!(!l.penalize(p, later).banned);
        let now = later;
        let mut banned = false;
        for _ in 0..12 {
            banned |= l.penalize(p, now).banned;
        }
        assert!(banned && l.is_banned(&p, now));
        assert!(!l.penalize(p, now).banned, "banned once");
        let lifted = l.expire(now + BAN_DURATION + Duration::from_secs(1));
        assert_eq!(lifted, vec![p]);
        assert!(!l.is_banned(&p, now + BAN_DURATION + Duration::from_secs(1)));
        assert!(l.expire(now + 20 * BAD_SCORE_HALF_LIFE).is_empty());
        assert_eq!(l.tracked(), (0, 0), "decayed scores are dropped");

        for _ in 0..MAX_TRACKED_PEERS + 50 {
            l.penalize(PeerId::random(), now);
        }
        assert_eq!(l.tracked().0, MAX_TRACKED_PEERS);
    }
}
