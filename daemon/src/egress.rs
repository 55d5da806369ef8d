//! The egress proxy: the only way out for a tool that declares network egress.
//!
//! A tool with egress runs on the node's internal Docker network ([`network`]), which has no
//! route out and, by the node's host firewall chain ([`firewall`]), no way to the host but
//! this proxy's port; its `HTTP(S)_PROXY` names this proxy with a per-invocation token
//! (`http://atr:<token>@<gateway>:<port>`). The proxy:
//!
//! 1. reads one request head (capped at [`MAX_HEAD_BYTES`], under [`HEAD_TIMEOUT`]): `CONNECT
//!    host:port` (HTTPS and any tunnelled protocol) or an absolute-form `http://` request;
//! 2. finds the invocation by its `Proxy-Authorization` token ([`EgressProxy::grant`]): no
//!    token, no way out (407);
//! 3. checks `host:port` against the spec's allowlist with
//!    [`atr_protocol::policy::Permissions::allows`], the protocol's one rule (403);
//! 4. resolves the name itself (operator overrides first, then the system resolver; the
//!    container has no DNS), at most [`EgressLimits::max_lookups`] per invocation;
//! 5. refuses loopback, private, link-local, CGNAT, multicast and unspecified addresses, the
//!    egress network's own gateway and this proxy, unless the address is in the operator's
//!    `allow_networks` (SSRF into the provider's network);
//! 6. connects (under [`CONNECT_TIMEOUT`]) and relays bytes both ways, counting them into the
//!    invocation's usage and cutting the connection at its byte budget or when idle.
//!
//! Budgets: connections at once in all (a semaphore, [`EgressLimits::max_connections`]) and
//! per invocation; bytes per invocation; lookups per invocation; head size and time.
//! Every refusal answers a short HTTP status and is counted in the invocation's grant.

pub mod firewall;
pub mod network;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atr_protocol::policy::Permissions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

/// Largest request head read from a tool, bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Time a tool has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to connect to an allowed destination.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for one name lookup.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// A relayed connection with no byte in either direction for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Relay buffer per direction, bytes.
const RELAY_BUF: usize = 16 * 1024;
/// User name in proxy URLs (the password is the token).
pub const PROXY_USER: &str = "atr";

/// The operator's egress budgets.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressLimits {
    /// Relayed connections at once, all invocations together.
    pub max_connections: usize,
    /// Connections one invocation may open in all.
    pub max_connections_per_run: u32,
    /// Bytes (in + out) one invocation may move.
    pub max_bytes_per_run: u64,
    /// Name lookups one invocation may cause.
    pub max_lookups: u32,
}

impl Default for EgressLimits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_connections_per_run: 16,
            max_bytes_per_run: 16 * 1024 * 1024,
            max_lookups: 16,
        }
    }
}

/// An IP network, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.parse().map_err(|_| format!("`{s}` is not an IP network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has a bad prefix length"))?
        };
        Ok(Self { addr, prefix })
    }
}

/// Settings of the proxy.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// Budgets.
    pub limits: EgressLimits,
    /// Non-public networks the operator lets tools reach (e.g. a test server's address).
    pub allow_networks: Vec<IpNet>,
    /// Names the proxy resolves to fixed addresses before asking the system resolver.
    pub hosts: HashMap<String, IpAddr>,
    /// Addresses always refused, whatever `allow_networks` says (the egress gateway).
    pub deny: Vec<IpAddr>,
}

/// Bytes through the proxy for one invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressUsage {
    /// Bytes from the tool to destinations (request heads included).
    pub out_bytes: u64,
    /// Bytes from destinations to the tool.
    pub in_bytes: u64,
    /// Requests refused (not allowed, budget, private address…).
    pub refused: u32,
}

/// One invocation's right to use the proxy.
#[derive(Debug)]
struct Grant {
    permissions: Permissions,
    out_bytes: AtomicU64,
    in_bytes: AtomicU64,
    connections: AtomicU32,
    lookups: AtomicU32,
    refused: AtomicU32,
}

impl Grant {
    fn moved(&self) -> u64 {
        self.out_bytes
            .load(Ordering::Relaxed)
            .saturating_add(self.in_bytes.load(Ordering::Relaxed))
    }
}

/// The running proxy; cloning shares it.
#[derive(Clone)]
pub struct EgressProxy {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    config: ProxyConfig,
    grants: Mutex<HashMap<String, Arc<Grant>>>,
    slots: Arc<Semaphore>,
}

/// A live grant: its proxy URL goes into the container; dropping it revokes the token.
pub struct GrantGuard {
    proxy: EgressProxy,
    token: String,
    grant: Arc<Grant>,
}

impl std::fmt::Debug for GrantGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantGuard").finish_non_exhaustive()
    }
}

impl GrantGuard {
    /// `http://atr:<token>@<addr>`: the value of the container's `HTTP(S)_PROXY`.
    pub fn proxy_url(&self) -> String {
        format!("http://{PROXY_USER}:{}@{}", self.token, self.proxy.inner.addr)
    }

    /// Bytes moved so far.
    pub fn usage(&self) -> EgressUsage {
        EgressUsage {
            out_bytes: self.grant.out_bytes.load(Ordering::Relaxed),
            in_bytes: self.grant.in_bytes.load(Ordering::Relaxed),
            refused: self.grant.refused.load(Ordering::Relaxed),
        }
    }
}

impl Drop for GrantGuard {
    fn drop(&mut self) {
        if let Ok(mut g) = self.proxy.inner.grants.lock() {
            g.remove(&self.token);
        }
    }
}

/// Why a request was refused: the status sent to the tool and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    BadRequest,
    NoToken,
    NotAllowed,
    Budget,
    PrivateAddress,
    Unresolved,
    Unreachable,
}

impl Refused {
    fn status(self) -> &'static str {
        match self {
            Self::BadRequest => "400 Bad Request",
            Self::NoToken => "407 Proxy Authentication Required",
            Self::NotAllowed | Self::PrivateAddress => "403 Forbidden",
            Self::Budget => "429 Too Many Requests",
            Self::Unresolved | Self::Unreachable => "502 Bad Gateway",
        }
    }
    fn reason(self) -> &'static str {
        match self {
            Self::BadRequest => "malformed proxy request",
            Self::NoToken => "no valid invocation token",
            Self::NotAllowed => "destination not in the tool's signed egress allowlist",
            Self::Budget => "egress budget spent",
            Self::PrivateAddress => "destination address is private, loopback or the node's own",
            Self::Unresolved => "name did not resolve",
            Self::Unreachable => "destination unreachable",
        }
    }
}

/// A parsed request head.
struct Head {
    connect: bool,
    host: String,
    port: u16,
    token: Option<String>,
    /// For absolute-form requests: the head to send on, in origin form, without proxy
    /// headers.
    forward: Option<Vec<u8>>,
}

impl EgressProxy {
    /// Binds `listen` and serves until `cancel`.
    pub async fn start(
        listen: SocketAddr,
        config: ProxyConfig,
        cancel: CancellationToken,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            addr,
            slots: Arc::new(Semaphore::new(config.limits.max_connections)),
            config,
            grants: Mutex::new(HashMap::new()),
        });
        let proxy = Self { inner };
        let p = proxy.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    a = listener.accept() => a,
                };
                let Ok((stream, peer)) = accepted else { continue };
                let Ok(permit) = p.inner.slots.clone().try_acquire_owned() else {
                    debug!(%peer, "egress proxy at its connection cap; refusing");
                    tokio::spawn(refuse(stream, Refused::Budget));
                    continue;
                };
                let p2 = p.clone();
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = p2.serve(stream) => {}
                    }
                    drop(permit);
                });
            }
        });
        info!(%addr, "egress proxy listening");
        Ok(proxy)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Registers an invocation allowed `permissions`' egress; the returned guard's URL is its
    /// way out until the guard is dropped.
    pub fn grant(&self, permissions: &Permissions) -> GrantGuard {
        let mut b = [0u8; 16];
        rand::fill(&mut b);
        let token = hex::encode(b);
        let grant = Arc::new(Grant {
            permissions: permissions.clone(),
            out_bytes: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            connections: AtomicU32::new(0),
            lookups: AtomicU32::new(0),
            refused: AtomicU32::new(0),
        });
        if let Ok(mut g) = self.inner.grants.lock() {
            g.insert(token.clone(), grant.clone());
        }
        GrantGuard {
            proxy: self.clone(),
            token,
            grant,
        }
    }

    async fn serve(&self, mut tool: TcpStream) {
        let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut tool)).await {
            Ok(Ok(h)) => h,
            _ => return refuse(tool, Refused::BadRequest).await,
        };
        let Some(head) = parse_head(&head) else {
            return refuse(tool, Refused::BadRequest).await;
        };
        let grant = head
            .token
            .as_ref()
            .and_then(|t| self.inner.grants.lock().ok()?.get(t).cloned());
        let Some(grant) = grant else {
            return refuse(tool, Refused::NoToken).await;
        };
        match self.open(&grant, &head).await {
            Ok(dest) => {
                debug!(host = %head.host, port = head.port, "egress allowed");
                relay(
                    tool,
                    dest,
                    &grant,
                    &head,
                    rest,
                    self.inner.config.limits.max_bytes_per_run,
                )
                .await;
            }
            Err(r) => {
                grant.refused.fetch_add(1, Ordering::Relaxed);
                info!(host = %head.host, port = head.port, reason = r.reason(), "egress refused");
                refuse(tool, r).await;
            }
        }
    }

    /// Checks, resolves and connects.
    async fn open(&self, grant: &Grant, head: &Head) -> Result<TcpStream, Refused> {
        let limits = &self.inner.config.limits;
        if !grant.permissions.allows(&head.host, head.port) {
            return Err(Refused::NotAllowed);
        }
        if grant.connections.fetch_add(1, Ordering::Relaxed) >= limits.max_connections_per_run
            || grant.moved() >= limits.max_bytes_per_run
        {
            return Err(Refused::Budget);
        }
        let addrs: Vec<IpAddr> = if let Ok(ip) = head.host.parse::<IpAddr>() {
            vec![ip]
        } else if let Some(ip) = self.inner.config.hosts.get(&head.host) {
            vec![*ip]
        } else {
            if grant.lookups.fetch_add(1, Ordering::Relaxed) >= limits.max_lookups {
                return Err(Refused::Budget);
            }
            match tokio::time::timeout(
                LOOKUP_TIMEOUT,
                tokio::net::lookup_host((head.host.as_str(), head.port)),
            )
            .await
            {
                Ok(Ok(a)) => a.map(|s| s.ip()).take(8).collect(),
                _ => return Err(Refused::Unresolved),
            }
        };
        // Every address must be acceptable: a name that resolves to one public and one private
        // address is refused rather than raced.
        if addrs.is_empty() {
            return Err(Refused::Unresolved);
        }
        if let Some(bad) = addrs.iter().find(|a| !self.permitted(**a)) {
            debug!(addr = %bad, "egress destination refused");
            return Err(Refused::PrivateAddress);
        }
        for ip in addrs {
            if let Ok(Ok(s)) =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((ip, head.port))).await
            {
                return Ok(s);
            }
        }
        Err(Refused::Unreachable)
    }

    /// Whether the proxy may connect to `ip`.
    fn permitted(&self, ip: IpAddr) -> bool {
        let c = &self.inner.config;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if ip == self.inner.addr.ip() || c.deny.contains(&ip) {
            return false;
        }
        if c.allow_networks.iter().any(|n| n.contains(ip)) {
            return true;
        }
        is_public(ip)
    }
}

/// Whether `ip` is a public unicast address (not loopback, private, link-local, CGNAT,
/// documentation, multicast, broadcast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 240
                || (o[0] == 192 && o[1] == 0 && o[2] == 0))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0xdb8))
        }
    }
}

/// Reads up to the end of the head (`\r\n\r\n`); returns the head and any bytes after it.
async fn read_head(s: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

/// Parses a CONNECT or absolute-form request head.
fn parse_head(bytes: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    if !req.parse(bytes).ok()?.is_complete() {
        return None;
    }
    let method = req.method?;
    let target = req.path?;
    let token = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
        .and_then(|h| token_of(h.value));
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = split_host_port(target, None)?;
        return Some(Head {
            connect: true,
            host,
            port,
            token,
            forward: None,
        });
    }
    let rest = target.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = split_host_port(authority, Some(80))?;
    let mut fwd = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for h in req.headers.iter() {
        let n = h.name.to_ascii_lowercase();
        if n.starts_with("proxy-") || n == "connection" || n == "keep-alive" {
            continue;
        }
        fwd.extend_from_slice(h.name.as_bytes());
        fwd.extend_from_slice(b": ");
        fwd.extend_from_slice(h.value);
        fwd.extend_from_slice(b"\r\n");
    }
    fwd.extend_from_slice(b"Connection: close\r\n\r\n");
    Some(Head {
        connect: false,
        host,
        port,
        token,
        forward: Some(fwd),
    })
}

/// `host:port` or `[v6]:port` (port optional when `default` is given); host lowercased.
fn split_host_port(s: &str, default: Option<u16>) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once(']')?;
        (h, p.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => default?,
    };
    if host.is_empty() || host.len() > atr_protocol::limits::MAX_HOST_LEN {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// The token of a `Basic base64(atr:<token>)` header.
fn token_of(value: &[u8]) -> Option<String> {
    let v = std::str::from_utf8(value).ok()?.trim();
    let b64 = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let raw = data_encoding::BASE64.decode(b64.trim().as_bytes()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, token) = text.split_once(':')?;
    (user == PROXY_USER && token.len() == 32).then(|| token.to_owned())
}

async fn refuse(mut s: TcpStream, r: Refused) {
    let body = r.reason();
    let msg = format!(
        "HTTP/1.1 {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        r.status(),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), s.write_all(msg.as_bytes())).await;
    let _ = s.shutdown().await;
}

/// Relays both ways, counting into `grant`, until either side closes, the invocation's byte
/// budget is spent or the connection idles.
async fn relay(
    mut tool: TcpStream,
    mut dest: TcpStream,
    grant: &Grant,
    head: &Head,
    rest: Vec<u8>,
    budget: u64,
) {
    if head.connect {
        if tool
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    } else if let Some(fwd) = &head.forward {
        grant.out_bytes.fetch_add(fwd.len() as u64, Ordering::Relaxed);
        if dest.write_all(fwd).await.is_err() {
            return;
        }
    }
    if !rest.is_empty() {
        grant.out_bytes.fetch_add(rest.len() as u64, Ordering::Relaxed);
        if dest.write_all(&rest).await.is_err() {
            return;
        }
    }
    let (mut tr, mut tw) = tool.split();
    let (mut dr, mut dw) = dest.split();
    let mut up = vec![0u8; RELAY_BUF];
    let mut down = vec![0u8; RELAY_BUF];
    let (mut up_open, mut down_open) = (true, true);
    while up_open || down_open {
        if grant.moved() >= budget {
            debug!("egress byte budget spent; closing");
            break;
        }
        let step = tokio::time::timeout(IDLE_TIMEOUT, async {
            tokio::select! {
                r = tr.read(&mut up), if up_open => (true, r),
                r = dr.read(&mut down), if down_open => (false, r),
            }
        })
        .await;
        let Ok((is_up, read)) = step else { break };
        match (is_up, read) {
            (true, Ok(0)) | (true, Err(_)) => {
                up_open = false;
                let _ = dw.shutdown().await;
            }
            (false, Ok(0)) | (false, Err(_)) => {
                down_open = false;
                let _ = tw.shutdown().await;
            }
            (true, Ok(n)) => {
                let n = clip(n, grant, budget);
                grant.out_bytes.fetch_add(n as u64, Ordering::Relaxed);
                if dw.write_all(&up[..n]).await.is_err() {
                    break;
                }
            }
            (false, Ok(n)) => {
                let n = clip(n, grant, budget);
                grant.in_bytes.fetch_add(n as u64, Ordering::Relaxed);
                if tw.write_all(&down[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// `n` cut to what is left of the budget.
fn clip(n: usize, grant: &Grant, budget: u64) -> usize {
    let left = budget.saturating_sub(grant.moved());
    n.min(usize::try_from(left).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests;
