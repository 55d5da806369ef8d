//! Verifying publishers' domain claims ([`atr_protocol::claim`]): a TXT
//! lookup of the spec's homepage domain, on demand, cached.
//!
//! Budget: lookups run only for `GET /v1/specs/{id}` (token-free but
//! local), at most [`MAX_IN_FLIGHT`] at once, each within
//! [`LOOKUP_TIMEOUT`]; answers are cached per (domain, key) for the
//! record's TTL clamped to `[min_ttl, MAX_TTL]` (failures for `min_ttl`),
//! at most [`MAX_CACHED`] entries. Listings show only what is cached.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atr_protocol::PublicKey;
use atr_protocol::claim::{self, ClaimStatus, DomainClaim};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use tokio::sync::Semaphore;
use tracing::debug;

use crate::lock;
use crate::time::now_ms;

/// How long one lookup may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest an answer is trusted.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// Most (domain, key) answers kept.
pub const MAX_CACHED: usize = 10_000;
/// Most lookups at once.
pub const MAX_IN_FLIGHT: usize = 8;

/// Where claims are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimOptions {
    /// Name servers to ask; empty: the system's (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    /// Shortest time an answer is kept (also how long a failure is).
    pub min_ttl: Duration,
}

/// See the module docs.
pub struct DomainClaims {
    resolver: Option<TokioResolver>,
    min_ttl: Duration,
    cache: Mutex<HashMap<(String, PublicKey), (ClaimStatus, Instant)>>,
    in_flight: Semaphore,
}

impl DomainClaims {
    /// A verifier asking `opts.nameservers` (or the system's). Without a
    /// usable resolver configuration every check is refused with the reason.
    pub fn new(opts: &ClaimOptions) -> Arc<Self> {
        let resolver = if opts.nameservers.is_empty() {
            TokioResolver::builder_tokio().and_then(|b| b.build())
        } else {
            let servers = opts
                .nameservers
                .iter()
                .map(|a| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = a.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = a.port();
                    NameServerConfig::new(a.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
            .build()
        };
        let resolver = resolver
            .inspect_err(
                |e| tracing::warn!(error = %e, "no DNS resolver: publisher domain claims cannot be checked"),
            )
            .ok();
        Arc::new(Self {
            resolver,
            min_ttl: opts.min_ttl,
            cache: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    /// The cached state of `homepage`'s claim for `publisher` (no lookup).
    pub fn cached(&self, homepage: Option<&str>, publisher: &PublicKey) -> Option<DomainClaim> {
        let domain = claim::domain_of_homepage(homepage?)?;
        let status = lock::lock(&self.cache)
            .get(&(domain.clone(), *publisher))
            .filter(|(_, until)| *until > Instant::now())
            .map_or(ClaimStatus::Unchecked, |(s, _)| s.clone());
        Some(DomainClaim { domain, status })
    }

    /// Checks `homepage`'s claim for `publisher`, from the cache when fresh.
    pub async fn verify(&self, homepage: Option<&str>, publisher: &PublicKey) -> Option<DomainClaim> {
        let cached = self.cached(homepage, publisher)?;
        if cached.status != ClaimStatus::Unchecked {
            return Some(cached);
        }
        let domain = cached.domain;
        let (status, ttl) = self.lookup(&domain, publisher).await;
        let mut cache = lock::lock(&self.cache);
        if cache.len() >= MAX_CACHED {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            (domain.clone(), *publisher),
            (status.clone(), Instant::now() + ttl),
        );
        Some(DomainClaim { domain, status })
    }

    async fn lookup(&self, domain: &str, publisher: &PublicKey) -> (ClaimStatus, Duration) {
        let refused = |reason: String| (ClaimStatus::Refused { reason }, self.min_ttl);
        let Some(resolver) = &self.resolver else {
            return refused("no DNS resolver is configured on this node".into());
        };
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return (ClaimStatus::Unchecked, Duration::ZERO);
        };
        let fqdn = format!("{domain}.");
        let answer = tokio::time::timeout(LOOKUP_TIMEOUT, resolver.txt_lookup(fqdn)).await;
        let lookup = match answer {
            Err(_) => return refused(format!("the TXT lookup of {domain} timed out")),
            Ok(Err(e)) => {
                debug!(%domain, error = %e, "TXT lookup failed");
                return refused(format!("no TXT record at {domain}"));
            }
            Ok(Ok(l)) => l,
        };
        let ttl = lookup
            .valid_until()
            .saturating_duration_since(Instant::now())
            .clamp(self.min_ttl, MAX_TTL.max(self.min_ttl));
        let keys: Vec<PublicKey> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => {
                    let text: String = txt
                        .txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect();
                    claim::key_in_txt(&text)
                }
                _ => None,
            })
            .collect();
        if keys.contains(publisher) {
            let until_ms = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
            (ClaimStatus::Verified { until_ms }, ttl)
        } else if keys.is_empty() {
            refused(format!("{domain} has no `v=MCPv1; k=ed25519; p=…` TXT record"))
        } else {
            (
                ClaimStatus::Refused {
                    reason: format!("{domain}'s TXT record names another key"),
                },
                ttl,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicKey {
        atr_protocol::SecretKey::from_seed(&[5; 32]).public()
    }

    /// More lookups at once than [`MAX_IN_FLIGHT`] (against a name server
    /// that never answers): the extra ones are not looked up (`Unchecked`,
    /// not cached), the others end at [`LOOKUP_TIMEOUT`].
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_past_the_in_flight_budget_are_not_made() {
        // Silent over UDP and over TCP (connections accepted by the backlog, never answered).
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let _silent_tcp = std::net::TcpListener::bind(addr).unwrap();
        let claims = DomainClaims::new(&ClaimOptions {
            nameservers: vec![addr],
            min_ttl: Duration::ZERO,
        });
        let k = key();
        let tasks: Vec<_> = (0..MAX_IN_FLIGHT + 4)
            .map(|i| {
                let c = claims.clone();
                tokio::spawn(async move { c.verify(Some(&format!("https://d{i}.example.test/")), &k).await })
            })
            .collect();
        let mut unchecked = 0;
        for t in tasks {
            let c = t.await.unwrap().unwrap();
            match c.status {
                ClaimStatus::Unchecked => unchecked += 1,
                ClaimStatus::Refused { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(unchecked, 4, "exactly the lookups over the budget were skipped");
        assert!(lock::lock(&claims.cache).len() <= MAX_IN_FLIGHT + 4);
    }

    /// The answer cache never holds more than [`MAX_CACHED`] entries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_answer_cache_is_bounded() {
        // No resolver: every check is answered at once (refused) and cached.
        let claims = Arc::new(DomainClaims {
            resolver: None,
            min_ttl: Duration::from_secs(60),
            cache: Mutex::new(HashMap::new()),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
        });
        let k = key();
        for i in 0..MAX_CACHED + 10 {
            let c = claims
                .verify(Some(&format!("https://d{i}.example.test/")), &k)
                .await
                .unwrap();
            assert!(matches!(c.status, ClaimStatus::Refused { .. }));
            assert!(lock::lock(&claims.cache).len() <= MAX_CACHED);
        }
    }
}
