//! The proxy against real sockets on loopback: the allow/deny rule, every budget exceeded.
//! The proxy listens on 127.0.0.2 and the destination server on 127.0.0.1 (both loopback), so
//! "the proxy's own address" and "an allowed network" can be told apart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use atr_protocol::policy::{EgressRule, Permissions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const BODY: &[u8] = b"hello from the allowed host";

/// A tiny HTTP server on 127.0.0.1 answering every request with [`BODY`] (or `big` bytes).
async fn server(big: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body: Vec<u8> = if big > 0 { vec![b'x'; big] } else { BODY.to_vec() };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

fn permissions(rules: &[&str]) -> Permissions {
    let mut egress: Vec<EgressRule> = rules.iter().map(|r| EgressRule::parse(r).unwrap()).collect();
    egress.sort();
    Permissions {
        egress,
        ..Default::default()
    }
}

async fn proxy(limits: EgressLimits, upstream: IpAddr) -> EgressProxy {
    let config = ProxyConfig {
        limits,
        allow_networks: vec![format!("{upstream}/32").parse().unwrap()],
        hosts: HashMap::from([("web.test".to_owned(), upstream)]),
        deny: vec![],
    };
    EgressProxy::start(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 0),
        config,
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

fn auth(g: &GrantGuard) -> String {
    let token = g.proxy_url();
    let token = token
        .strip_prefix("http://atr:")
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    data_encoding::BASE64.encode(format!("atr:{token}").as_bytes())
}

/// Sends a CONNECT then a GET through the tunnel; returns the proxy's status line and what
/// came back after it.
async fn connect_get(p: &EgressProxy, auth: Option<&str>, target: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(a) = auth {
        req.push_str(&format!("Proxy-Authorization: Basic {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    if status.contains(" 200 ") {
        s.write_all(b"GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            .await
            .unwrap();
    }
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    (status, rest)
}

#[tokio::test]
async fn an_allowed_host_is_reached_and_counted() {
    let up = server(0).await;
    let p = proxy(EgressLimits::default(), up.ip()).await;
    let g = p.grant(&permissions(&[&format!("web.test:{}", up.port())]));
    let (status, rest) = connect_get(&p, Some(&auth(&g)), &format!("web.test:{}", up.port())).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(rest.ends_with(BODY), "{}", String::from_utf8_lossy(&rest));
    let u = g.usage();
    assert_eq!(u.in_bytes, rest.len() as u64);
    assert!(u.out_bytes > 0 && u.refused == 0);
}

#[tokio::test]
async fn an_absolute_form_request_is_forwarded_without_proxy_headers() {
    let up = server(0).await;
    let p = proxy(EgressLimits::default(), up.ip()).await;
    let g = p.grant(&permissions(&[&format!("web.test:{}", up.port())]));
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    let req = format!(
        "GET http://web.test:{}/x HTTP/1.1\r\nHost: web.test\r\nProxy-Authorization: Basic {}\r\n\r\n",
        up.port(),
        auth(&g)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with(b"HTTP/1.1 200 OK") && out.ends_with(BODY));
    assert_eq!(g.usage().in_bytes, out.len() as u64);
}

#[tokio::test]
async fn everything_off_the_list_or_private_is_refused() {
    let up = server(0).await;
    let port = up.port();
    let p = proxy(EgressLimits::default(), up.ip()).await;
    let own = p.addr();
    let g = p.grant(&permissions(&[
        &format!("web.test:{port}"),
        "10.1.2.3:80",
        &format!("127.0.0.3:{port}"),
        &format!("127.0.0.2:{}", own.port()),
        "*.example.org:443",
    ]));
    let a = auth(&g);
    let cases = [
        // not on the list
        (format!("other.test:{port}"), "403"),
        // right host, wrong port
        (format!("web.test:{}", port.wrapping_add(1).max(1)), "403"),
        // a raw IP that is not declared (the allowed server's own address)
        (format!("127.0.0.1:{port}"), "403"),
        // declared, but private and not allowed by the operator
        ("10.1.2.3:80".to_owned(), "403"),
        // declared loopback outside the operator's allowed networks
        (format!("127.0.0.3:{port}"), "403"),
        // the proxy itself
        (format!("127.0.0.2:{}", own.port()), "403"),
        // a wildcard never matches the bare domain
        ("example.org:443".to_owned(), "403"),
    ];
    for (target, want) in cases {
        let (status, _) = connect_get(&p, Some(&a), &target).await;
        assert!(status.contains(want), "{target}: {status}");
    }
    assert_eq!(g.usage().refused, 7);
    assert_eq!(g.usage().in_bytes, 0);
}

#[tokio::test]
async fn no_token_or_a_revoked_one_gets_nowhere() {
    let up = server(0).await;
    let p = proxy(EgressLimits::default(), up.ip()).await;
    let target = format!("web.test:{}", up.port());
    let (status, _) = connect_get(&p, None, &target).await;
    assert!(status.contains("407"), "{status}");
    let g = p.grant(&permissions(&[&target]));
    let a = auth(&g);
    drop(g);
    let (status, _) = connect_get(&p, Some(&a), &target).await;
    assert!(status.contains("407"), "{status}");
}

#[tokio::test]
async fn the_per_run_connection_budget_is_enforced() {
    let up = server(0).await;
    let limits = EgressLimits {
        max_connections_per_run: 2,
        ..Default::default()
    };
    let p = proxy(limits, up.ip()).await;
    let target = format!("web.test:{}", up.port());
    let g = p.grant(&permissions(&[&target]));
    let a = auth(&g);
    for _ in 0..2 {
        assert!(connect_get(&p, Some(&a), &target).await.0.contains(" 200 "));
    }
    let (status, _) = connect_get(&p, Some(&a), &target).await;
    assert!(status.contains("429"), "{status}");
}

#[tokio::test]
async fn the_per_run_byte_budget_cuts_the_transfer() {
    let up = server(256 * 1024).await;
    let limits = EgressLimits {
        max_bytes_per_run: 64 * 1024,
        ..Default::default()
    };
    let p = proxy(limits, up.ip()).await;
    let target = format!("web.test:{}", up.port());
    let g = p.grant(&permissions(&[&target]));
    let a = auth(&g);
    let (status, rest) = connect_get(&p, Some(&a), &target).await;
    assert!(status.contains(" 200 "), "{status}");
    assert!(rest.len() < 64 * 1024, "{} bytes came through", rest.len());
    let u = g.usage();
    assert!(u.in_bytes + u.out_bytes <= 64 * 1024, "{u:?}");
    // Spent: the next connection is refused before it opens.
    assert!(connect_get(&p, Some(&a), &target).await.0.contains("429"));
}

#[tokio::test]
async fn the_lookup_budget_is_enforced() {
    let up = server(0).await;
    let limits = EgressLimits {
        max_lookups: 1,
        ..Default::default()
    };
    let p = proxy(limits, up.ip()).await;
    let g = p.grant(&permissions(&["nothing.invalid:80"]));
    let a = auth(&g);
    // The first lookup is spent (and fails: `.invalid` never resolves); the second is refused
    // without asking the resolver.
    let (first, _) = connect_get(&p, Some(&a), "nothing.invalid:80").await;
    assert!(first.contains("502") || first.contains("403"), "{first}");
    let (second, _) = connect_get(&p, Some(&a), "nothing.invalid:80").await;
    assert!(second.contains("429"), "{second}");
}

#[tokio::test]
async fn the_global_connection_cap_is_enforced() {
    let up = server(0).await;
    let limits = EgressLimits {
        max_connections: 1,
        ..Default::default()
    };
    let p = proxy(limits, up.ip()).await;
    // One connection holds the only slot (it never sends a complete head).
    let mut holder = TcpStream::connect(p.addr()).await.unwrap();
    holder
        .write_all(b"CONNECT web.test:1 HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let target = format!("web.test:{}", up.port());
    let g = p.grant(&permissions(&[&target]));
    let (status, _) = connect_get(&p, Some(&auth(&g)), &target).await;
    assert!(status.contains("429"), "{status}");
    drop(holder);
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let up = server(0).await;
    let p = proxy(EgressLimits::default(), up.ip()).await;
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    let big = format!(
        "CONNECT web.test:80 HTTP/1.1\r\nX: {}\r\n",
        "a".repeat(MAX_HEAD_BYTES + 10)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(
        out.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn public_addresses_are_told_from_the_rest() {
    for a in [
        "127.0.0.1",
        "10.0.0.1",
        "172.17.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00::1",
        "224.0.0.1",
    ] {
        assert!(!is_public(a.parse().unwrap()), "{a}");
    }
    for a in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
        assert!(is_public(a.parse().unwrap()), "{a}");
    }
    let n: IpNet = "172.30.0.0/24".parse().unwrap();
    assert!(n.contains("172.30.0.9".parse().unwrap()) && !n.contains("172.30.1.9".parse().unwrap()));
    assert!("1.2.3.4/33".parse::<IpNet>().is_err());
}
