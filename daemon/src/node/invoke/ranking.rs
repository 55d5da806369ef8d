//! The caller's own record of how providers answered it: the order in
//! which it asks them. Never the peer id order (ids are free to grind), and
//! never anything a provider says about itself.
//!
//! Seeded at start from this node's stored receipts (each is a verified
//! answer: a success, with the provider's own run time), then updated by
//! every attempt. Bounded: at most [`MAX_TRACKED`] providers, the least
//! used forgotten first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use atr_protocol::PublicKey;
use atr_protocol::receipt::{InvocationStatus, SignedReceipt};

use crate::lock;

/// Most providers remembered.
pub const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Copy, Default)]
struct Record {
    ok: u32,
    failed: u32,
    /// Moving average of the answer time, milliseconds.
    latency_ms: f64,
}

impl Record {
    /// Laplace-smoothed success rate: a provider never tried scores ½.
    fn success(&self) -> f64 {
        (f64::from(self.ok) + 1.0) / (f64::from(self.ok) + f64::from(self.failed) + 2.0)
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Ranking {
    records: Mutex<HashMap<PublicKey, Record>>,
}

impl Ranking {
    /// A ranking seeded from receipts this node stored (newest first).
    pub fn from_receipts(receipts: &[SignedReceipt]) -> Self {
        let r = Self::default();
        for rc in receipts.iter().rev() {
            let v = rc.value();
            let took = Duration::from_millis(v.finished_at_ms.saturating_sub(v.started_at_ms));
            if v.status == InvocationStatus::Ok {
                r.succeeded(&v.provider, took);
            }
        }
        r
    }

    /// Notes a verified answer from `provider` after `took`.
    pub fn succeeded(&self, provider: &PublicKey, took: Duration) {
        self.update(provider, |rec| {
            let ms = took.as_secs_f64() * 1000.0;
            rec.latency_ms = if rec.ok == 0 {
                ms
            } else {
                0.7 * rec.latency_ms + 0.3 * ms
            };
            rec.ok = rec.ok.saturating_add(1);
        });
    }

    /// Notes an attempt that brought no acceptable answer.
    pub fn failed(&self, provider: &PublicKey) {
        self.update(provider, |rec| rec.failed = rec.failed.saturating_add(1));
    }

    fn update(&self, provider: &PublicKey, f: impl FnOnce(&mut Record)) {
        let mut m = lock::lock(&self.records);
        if !m.contains_key(provider) && m.len() >= MAX_TRACKED {
            let least = m
                .iter()
                .min_by_key(|(_, r)| r.ok.saturating_add(r.failed))
                .map(|(k, _)| *k);
            if let Some(k) = least {
                m.remove(&k);
            }
        }
        f(m.entry(*provider).or_default());
    }

    /// Sorts `items` (each naming a provider) best first: higher success
    /// rate, then lower latency; ties keep the order given (the caller's
    /// preference, e.g. the publisher first).
    pub fn order_by<T>(&self, items: &mut [T], provider: impl Fn(&T) -> PublicKey) {
        let m = lock::lock(&self.records);
        let key = |p: &PublicKey| {
            let r = m.get(p).copied().unwrap_or_default();
            (r.success(), if r.ok == 0 { f64::MAX } else { r.latency_ms })
        };
        items.sort_by(|a, b| {
            let (sa, la) = key(&provider(a));
            let (sb, lb) = key(&provider(b));
            sb.total_cmp(&sa).then(la.total_cmp(&lb))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> PublicKey {
        atr_protocol::SecretKey::from_seed(&[i; 32]).public()
    }

    #[test]
    fn order_follows_success_then_latency_and_keeps_ties() {
        let r = Ranking::default();
        let (a, b, c, d) = (key(1), key(2), key(3), key(4));
        for _ in 0..3 {
            r.failed(&a);
            r.succeeded(&b, Duration::from_millis(300));
            r.succeeded(&c, Duration::from_millis(20));
        }
        let mut v = vec![a, d, b, c];
        r.order_by(&mut v, |k| *k);
        // c and b always answered (c faster), d is unknown (½), a always failed.
        assert_eq!(v, vec![c, b, d, a]);
        let mut ties = vec![key(9), key(8)];
        r.order_by(&mut ties, |k| *k);
        assert_eq!(
            ties,
            vec![key(9), key(8)],
            "unknown providers keep the given order"
        );
    }

    #[test]
    fn tracking_is_bounded() {
        let r = Ranking::default();
        for i in 0..(MAX_TRACKED + 10) {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            r.failed(&atr_protocol::SecretKey::from_seed(&seed).public());
        }
        assert_eq!(lock::lock(&r.records).len(), MAX_TRACKED);
    }
}
