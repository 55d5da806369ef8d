//! Publisher domain claims (issue 14) against a real DNS server this test
//! runs on loopback (a minimal UDP responder; never an outside address):
//! a valid claim is shown as verified, a wrong key or a missing record is
//! refused, and a cached answer expires with its TTL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atr_protocol::api::{FindResponse, SpecView};
use atr_protocol::claim::{self, ClaimStatus};
use tokio::net::UdpSocket;

use crate::harness::*;

/// TTL of the claim the test verifies, seconds (long enough that the
/// "still cached" check right after it cannot race it on a busy machine).
const TTL: u32 = 3;

/// Domain (lower case, no trailing dot) → TXT strings and TTL seconds.
type Zone = Arc<Mutex<HashMap<String, (Vec<String>, u32)>>>;

/// Answers TXT queries from `zone` (NXDOMAIN for anything else) until dropped.
async fn dns_server(zone: Zone) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            if let Some(reply) = answer(&buf[..n], &zone) {
                let _ = sock.send_to(&reply, from).await;
            }
        }
    });
    (addr, task)
}

fn answer(q: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    // Header, then one question: labels, 0, type, class.
    let mut i = 12;
    let mut labels = Vec::new();
    while *q.get(i)? != 0 {
        let len = usize::from(q[i]);
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + len)?).to_ascii_lowercase());
        i += 1 + len;
    }
    let qend = i + 5;
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    let name = labels.join(".");
    let found = (qtype == 16)
        .then(|| zone.lock().unwrap().get(&name).cloned())
        .flatten();
    let mut r = Vec::new();
    r.extend_from_slice(&q[0..2]);
    let rd = q[2] & 0x01;
    let rcode = if found.is_some() { 0 } else { 3 };
    r.extend_from_slice(&[0x80 | rd, 0x80 | rcode]);
    let ancount = found.as_ref().map_or(0u16, |(t, _)| t.len() as u16);
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&ancount.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(q.get(12..qend)?);
    for txt in found.iter().flat_map(|(t, ttl)| t.iter().map(move |s| (s, *ttl))) {
        let (s, ttl) = txt;
        r.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1]);
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(s.len() as u16 + 1).to_be_bytes());
        r.push(s.len() as u8);
        r.extend_from_slice(s.as_bytes());
    }
    Some(r)
}

async fn show(api: &Api, id: &atr_protocol::ToolId) -> SpecView {
    api.http
        .get(format!("{}/v1/specs/{id}", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_claims_are_verified_refused_and_expire() {
    init_tracing();
    let zone: Zone = Arc::default();
    let (dns, _server) = dns_server(zone.clone()).await;
    let node = start_node_with(196, vec![], tempfile::tempdir().unwrap(), move |c| {
        c.claims.nameservers = vec![dns];
        c.claims.min_ttl = Duration::ZERO;
    })
    .await;
    let me = node.node.public_key();
    let stranger = atr_protocol::SecretKey::from_seed(&[197; 32]).public();
    {
        let mut z = zone.lock().unwrap();
        z.insert(
            "tools.example.test".into(),
            (vec!["other=1".into(), claim::txt_record(&me)], TTL),
        );
        z.insert(
            "other.example.test".into(),
            (vec![claim::txt_record(&stranger)], 300),
        );
    }
    let publish = |name: &str, homepage: &str| {
        let mut m = manifest(name, "1.0.0", &["claims"]);
        m.homepage = Some(homepage.into());
        m
    };
    let p = &node.node.services().publisher;
    let mine = p
        .publish(
            publish("mine", "https://tools.example.test/mine"),
            "m.toml".into(),
        )
        .await
        .unwrap()
        .spec;
    let wrong = p
        .publish(publish("wrong", "https://other.example.test/"), "w.toml".into())
        .await
        .unwrap()
        .spec;
    let none = p
        .publish(publish("none", "https://none.example.test/"), "n.toml".into())
        .await
        .unwrap()
        .spec;
    let api = Api::new(&node);

    // Listings show only what is cached: nothing checked yet.
    let found: FindResponse = api
        .http
        .get(format!("{}/v1/find?tag=claims", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found.results.len(), 3);
    assert!(found.results.iter().all(|v| {
        v.domain
            .as_ref()
            .is_some_and(|d| d.status == ClaimStatus::Unchecked)
    }));

    let v = show(&api, &mine.id()).await;
    // The answer was cached before this instant, so it expires before `verified_at + TTL`.
    let verified_at = std::time::Instant::now();
    let d = v.domain.unwrap();
    assert_eq!(d.domain, "tools.example.test");
    assert!(d.status.is_verified(), "{d:?}");
    // The record now names another key; the verified answer stays cached for its TTL.
    zone.lock().unwrap().insert(
        "tools.example.test".into(),
        (vec![claim::txt_record(&stranger)], TTL),
    );
    assert!(
        show(&api, &mine.id()).await.domain.unwrap().status.is_verified(),
        "still cached"
    );
    let v = show(&api, &wrong.id()).await;
    assert!(
        matches!(&v.domain.as_ref().unwrap().status, ClaimStatus::Refused { reason } if reason.contains("another key")),
        "{v:?}"
    );
    let v = show(&api, &none.id()).await;
    assert!(
        matches!(&v.domain.as_ref().unwrap().status, ClaimStatus::Refused { reason } if reason.contains("no TXT record")),
        "{v:?}"
    );

    // Once the answer expires, the claim is checked again and refused.
    let expiry = verified_at + Duration::from_secs(u64::from(TTL)) + Duration::from_millis(300);
    tokio::time::sleep_until(expiry.into()).await;
    let d = show(&api, &mine.id()).await.domain.unwrap();
    assert!(matches!(d.status, ClaimStatus::Refused { .. }), "{d:?}");
    node.node.shutdown().await.unwrap();
}
