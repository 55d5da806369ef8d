//! Link emulation in user space, for kernels without `sch_netem`.
//!
//! The machines this harness runs on may lack the `netem` queueing discipline
//! (this one does), yet the scenarios need per-group delay, jitter and loss.
//! So the harness does what netem does from user space: an `iptables` rule in
//! the node's network namespace (`mangle POSTROUTING -o IFACE -j NFQUEUE
//! --queue-bypass`) hands each outgoing packet's *metadata* to a netlink
//! socket the harness opened inside that namespace; a thread holds the packet
//! id for `delay ± jitter` and then tells the kernel to send it (or to drop
//! it, with the loss probability). Payloads never leave the kernel
//! (copy mode "meta"), so the cost is two small netlink messages per packet.
//!
//! `--queue-bypass` means a node whose emulator stopped (or crashed) keeps
//! its network, undelayed, rather than losing it. The netlink protocol
//! (`nfnetlink_queue`) is spoken directly over a safe socket API: no C
//! library, no `unsafe`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send, setsockopt,
    socket, sockopt,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What a link does to each outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// Added one-way delay.
    pub delay: Duration,
    /// Uniform jitter around the delay (the delay never goes below zero).
    pub jitter: Duration,
    /// Probability of dropping a packet, 0.0–1.0.
    pub loss: f64,
}

impl LinkParams {
    /// Whether the link changes anything.
    pub fn is_noop(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.loss <= 0.0
    }
}

/// Errors of the emulator.
#[derive(Debug, thiserror::Error)]
pub enum LinkemError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error number.
        source: Errno,
    },
    /// The namespace file could not be opened.
    #[error("cannot open the network namespace {path}: {source}")]
    Namespace {
        /// The namespace file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The kernel refused a configuration message.
    #[error("the kernel refused `{what}` (errno {errno}); is nfnetlink_queue available?")]
    Refused {
        /// The message.
        what: &'static str,
        /// The kernel's error number.
        errno: i32,
    },
    /// The kernel did not answer a configuration message.
    #[error("no answer from the kernel to `{0}`")]
    NoAnswer(&'static str),
    /// The worker thread could not be started or died during setup.
    #[error("the emulator thread failed to start: {0}")]
    Thread(String),
    /// The parameters are out of range.
    #[error("invalid link parameters: {0}")]
    Invalid(String),
}

/// Counters of one emulated link (shared with its thread).
#[derive(Debug, Default)]
struct Counters {
    packets: AtomicU64,
    dropped: AtomicU64,
    released: AtomicU64,
    /// Released before their time because too many were held.
    overflow: AtomicU64,
    /// Largest delay past the planned release time, microseconds.
    max_late_us: AtomicU64,
    /// Releases more than [`LATE`] past their planned time.
    late: AtomicU64,
    /// Smallest time a delayed packet was held, microseconds.
    min_held_us: AtomicU64,
}

/// A snapshot of an emulated link's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Packets handed to the emulator.
    pub packets: u64,
    /// Packets dropped (loss).
    pub dropped: u64,
    /// Packets sent on: after their delay, or early when the emulator stopped.
    pub released: u64,
    /// Packets released early because the hold limit was reached.
    pub overflow: u64,
    /// Worst lateness of a release past its planned time, microseconds.
    pub max_late_us: u64,
    /// Releases more than 5 ms past their planned time (the emulator was
    /// short of CPU): the fidelity of the emulated delay.
    #[serde(default)]
    pub late: u64,
    /// Shortest hold of a released packet, microseconds (0 when none).
    pub min_held_us: u64,
}

impl LinkStats {
    /// Sums the counters of several links (maxima and minima where those fit).
    pub fn merge(all: &[LinkStats]) -> LinkStats {
        let mut t = LinkStats::default();
        for s in all {
            t.packets += s.packets;
            t.dropped += s.dropped;
            t.released += s.released;
            t.overflow += s.overflow;
            t.late += s.late;
            t.max_late_us = t.max_late_us.max(s.max_late_us);
            if s.released > 0 {
                t.min_held_us = if t.min_held_us == 0 {
                    s.min_held_us
                } else {
                    t.min_held_us.min(s.min_held_us)
                };
            }
        }
        t
    }
}

/// The queue number used in every namespace (queues are per namespace).
const QUEUE: u16 = 0;
/// Packets the kernel keeps waiting for a verdict (netem's default limit is 1000).
const KERNEL_QUEUE_LEN: u32 = 8192;
/// Most packets held here at once; beyond it packets go out at once.
const MAX_HELD: usize = 8192;
/// Receive buffer of the netlink socket.
const SOCKET_BUFFER: usize = 8 << 20;
/// Datagrams read before the due packets are released again.
const RECV_BATCH: usize = 32;
/// A release this much past its planned time counts as late.
const LATE: Duration = Duration::from_millis(5);
/// How often the thread checks whether it should stop.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Delay, jitter and loss on one interface of one network namespace, for as
/// long as this value lives.
pub struct Emulator {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("stats", &self.stats()).finish()
    }
}

impl Emulator {
    /// Starts emulating `params` in the network namespace at `ns`
    /// (`/proc/PID/ns/net`, `/run/netns/NAME`). The caller then adds the
    /// `NFQUEUE` rule ([`iptables_rule`]); until then nothing is queued.
    pub fn start(ns: &Path, params: LinkParams, seed: u64) -> Result<Emulator, LinkemError> {
        if !(0.0..=1.0).contains(&params.loss) || params.loss.is_nan() {
            return Err(LinkemError::Invalid(format!(
                "loss {} is not within 0..=1",
                params.loss
            )));
        }
        if params.delay + params.jitter > Duration::from_secs(10) {
            return Err(LinkemError::Invalid("delay + jitter above 10 s".into()));
        }
        let name = ns.display().to_string();
        let ns = File::open(ns).map_err(|source| LinkemError::Namespace {
            path: name.clone(),
            source,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (s, c) = (stop.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name(format!("linkem {name}"))
            .spawn(move || {
                // setns only moves this thread; the socket stays in the
                // namespace it was opened in.
                let setup = setns(&ns, CloneFlags::CLONE_NEWNET)
                    .map_err(|source| LinkemError::Sys {
                        what: "setns",
                        source,
                    })
                    .and_then(|()| Queue::open());
                match setup {
                    Ok(q) => {
                        let _ = ready_tx.send(Ok(nix::unistd::gettid().as_raw()));
                        q.run(params, &s, &c, seed);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| LinkemError::Thread(e.to_string()))?;
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(tid)) => {
                raise_priority(tid);
                Ok(Emulator {
                    stop,
                    counters,
                    thread: Some(thread),
                })
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                Err(LinkemError::Thread(e.to_string()))
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> LinkStats {
        let c = &self.counters;
        LinkStats {
            packets: c.packets.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            released: c.released.load(Ordering::Relaxed),
            overflow: c.overflow.load(Ordering::Relaxed),
            max_late_us: c.max_late_us.load(Ordering::Relaxed),
            late: c.late.load(Ordering::Relaxed),
            min_held_us: c.min_held_us.load(Ordering::Relaxed),
        }
    }

    /// Sends every held packet on, closes the queue and returns the counters.
    pub fn stop(mut self) -> LinkStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The `iptables` arguments that hand the interface's outgoing packets to
/// the emulator (run inside the namespace). `mangle` keeps it clear of the
/// `filter` rules that partitions add and flush.
pub fn iptables_rule(iface: &str) -> Vec<String> {
    [
        "iptables",
        "-t",
        "mangle",
        "-A",
        "POSTROUTING",
        "-o",
        iface,
        "-j",
        "NFQUEUE",
        "--queue-num",
        &QUEUE.to_string(),
        "--queue-bypass",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// A bound `nfnetlink_queue` socket.
struct Queue {
    fd: OwnedFd,
    seq: u32,
}

impl Queue {
    /// Opens the socket in the current thread's namespace and binds [`QUEUE`]
    /// in metadata-only copy mode.
    fn open() -> Result<Queue, LinkemError> {
        let sys = |what| move |source| LinkemError::Sys { what, source };
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(sys("netlink socket"))?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(sys("netlink bind"))?;
        // Root may exceed rmem_max; fall back to the ordinary limit.
        if setsockopt(&fd, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
            setsockopt(&fd, sockopt::RcvBuf, &SOCKET_BUFFER).map_err(sys("SO_RCVBUF"))?;
        }
        let mut q = Queue { fd, seq: 0 };
        q.configure("bind", &config_cmd(CFG_CMD_BIND))?;
        q.configure("copy mode", &config_params())?;
        q.configure(
            "queue length",
            &attr(CFG_QUEUE_MAXLEN, &KERNEL_QUEUE_LEN.to_be_bytes()),
        )?;
        // Hand over GSO packets whole: the payload is never looked at.
        let gso = CFG_F_GSO.to_be_bytes();
        let mut flags = attr(CFG_MASK, &gso);
        flags.extend(attr(CFG_FLAGS, &gso));
        q.configure("flags", &flags)?;
        Ok(q)
    }

    /// Sends a config message and waits for the kernel's acknowledgement.
    fn configure(&mut self, what: &'static str, attrs: &[u8]) -> Result<(), LinkemError> {
        self.seq += 1;
        let msg = message(MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, self.seq, attrs);
        send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())
            .map_err(|source| LinkemError::Sys { what, source })?;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut buf = vec![0u8; 64 * 1024];
        while Instant::now() < deadline {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(100u16)).map_err(|source| LinkemError::Sys { what, source })?;
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(source) => return Err(LinkemError::Sys { what, source }),
            };
            for m in parse(&buf[..n]) {
                if let Parsed::Ack { seq, errno } = m
                    && seq == self.seq
                {
                    return if errno == 0 {
                        Ok(())
                    } else {
                        Err(LinkemError::Refused { what, errno })
                    };
                }
            }
        }
        Err(LinkemError::NoAnswer(what))
    }

    /// Holds and releases packets until `stop` is set.
    fn run(mut self, p: LinkParams, stop: &AtomicBool, c: &Counters, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut held: BinaryHeap<Reverse<(Instant, Instant, u32)>> = BinaryHeap::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
        c.min_held_us.store(u64::MAX, Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let wait = held.peek().map_or(STOP_CHECK, |Reverse((at, _, _))| {
                at.saturating_duration_since(now).min(STOP_CHECK)
            });
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::from(50u16));
            if let Err(e) = poll(&mut fds, timeout)
                && e != Errno::EINTR
            {
                tracing::warn!(error = %e, "link emulator: poll failed; stopping");
                break;
            }
            // Take in what arrived, a bounded batch at a time, so a busy
            // link cannot keep due packets from being released.
            for _ in 0..RECV_BATCH {
                let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                    Ok(n) => n,
                    Err(Errno::EAGAIN | Errno::EINTR) => break,
                    // The socket overflowed: the ids lost are dropped by the
                    // kernel when the queue is closed; go on.
                    Err(Errno::ENOBUFS) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "link emulator: recv failed");
                        break;
                    }
                };
                let arrived = Instant::now();
                for m in parse(&buf[..n]) {
                    let Parsed::Packet { id } = m else { continue };
                    c.packets.fetch_add(1, Ordering::Relaxed);
                    if p.loss > 0.0 && rng.random_bool(p.loss) {
                        c.dropped.fetch_add(1, Ordering::Relaxed);
                        push_verdict(&mut out, id, NF_DROP);
                    } else if held.len() >= MAX_HELD {
                        c.overflow.fetch_add(1, Ordering::Relaxed);
                        push_verdict(&mut out, id, NF_ACCEPT);
                    } else {
                        held.push(Reverse((arrived + sample_delay(&p, &mut rng), arrived, id)));
                    }
                }
            }
            // Release what is due.
            let now = Instant::now();
            while let Some(Reverse((at, arrived, id))) = held.peek().copied() {
                if at > now {
                    break;
                }
                held.pop();
                record(c, now, at, arrived);
                push_verdict(&mut out, id, NF_ACCEPT);
            }
            self.flush(&mut out);
        }
        // Stopping: nothing is held back.
        while let Some(Reverse((_, _, id))) = held.pop() {
            c.released.fetch_add(1, Ordering::Relaxed);
            push_verdict(&mut out, id, NF_ACCEPT);
        }
        self.flush(&mut out);
        if c.min_held_us.load(Ordering::Relaxed) == u64::MAX {
            c.min_held_us.store(0, Ordering::Relaxed);
        }
        self.seq += 1;
        let unbind = message(MSG_CONFIG, NLM_F_REQUEST, self.seq, &config_cmd(CFG_CMD_UNBIND));
        let _ = send(self.fd.as_raw_fd(), &unbind, MsgFlags::empty());
    }

    /// Sends the queued verdicts (several netlink messages in one datagram).
    fn flush(&self, out: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        loop {
            match send(self.fd.as_raw_fd(), out, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    // The kernel takes verdicts synchronously; a full socket
                    // buffer clears quickly.
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "link emulator: verdicts not sent"),
                Ok(_) => {}
            }
            break;
        }
        out.clear();
    }
}

/// Gives the emulator thread `tid` a higher CPU weight (nice -10) than the
/// nodes it serves, so that on a machine full of nodes the packets it holds
/// are still released on time. Best effort: without the privilege the
/// lateness counters show what that costs.
fn raise_priority(tid: i32) {
    let out = std::process::Command::new("renice")
        .args(["-n", "-10", "-p", &tid.to_string()])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            tracing::debug!(stderr = %String::from_utf8_lossy(&o.stderr), "link emulator: renice refused")
        }
        Err(e) => tracing::debug!(error = %e, "link emulator: renice not run"),
    }
}

/// Updates the counters for a release at `now` planned for `at`.
fn record(c: &Counters, now: Instant, at: Instant, arrived: Instant) {
    c.released.fetch_add(1, Ordering::Relaxed);
    let late = now.saturating_duration_since(at);
    if late > LATE {
        c.late.fetch_add(1, Ordering::Relaxed);
    }
    let late = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
    c.max_late_us.fetch_max(late, Ordering::Relaxed);
    let held = u64::try_from(now.saturating_duration_since(arrived).as_micros()).unwrap_or(u64::MAX);
    c.min_held_us.fetch_min(held, Ordering::Relaxed);
}

/// Delay of one packet: `delay` plus uniform jitter in `[-jitter, +jitter]`.
fn sample_delay(p: &LinkParams, rng: &mut StdRng) -> Duration {
    if p.jitter.is_zero() {
        return p.delay;
    }
    let j = p.jitter.as_secs_f64();
    let d = p.delay.as_secs_f64() + rng.random_range(-j..=j);
    Duration::from_secs_f64(d.max(0.0))
}

// --- nfnetlink_queue wire format (linux/netfilter/nfnetlink_queue.h) ---

const NFNL_SUBSYS_QUEUE: u16 = 3;
const MSG_PACKET: u16 = NFNL_SUBSYS_QUEUE << 8;
const MSG_VERDICT: u16 = (NFNL_SUBSYS_QUEUE << 8) | 1;
const MSG_CONFIG: u16 = (NFNL_SUBSYS_QUEUE << 8) | 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const CFG_CMD: u16 = 1;
const CFG_PARAMS: u16 = 2;
const CFG_QUEUE_MAXLEN: u16 = 3;
const CFG_MASK: u16 = 4;
const CFG_FLAGS: u16 = 5;
const CFG_CMD_BIND: u8 = 1;
const CFG_CMD_UNBIND: u8 = 2;
const CFG_F_GSO: u32 = 4;
const COPY_META: u8 = 1;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NLMSG_HDR: usize = 16;
const NFGENMSG: usize = 4;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink attribute, padded to 4 bytes.
fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let len = 4 + payload.len();
    let mut v = Vec::with_capacity(align4(len));
    v.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize(align4(len), 0);
    v
}

/// `NFQA_CFG_CMD` for `cmd` (pf is unused by current kernels).
fn config_cmd(cmd: u8) -> Vec<u8> {
    attr(CFG_CMD, &[cmd, 0, 0, 0])
}

/// `NFQA_CFG_PARAMS`: copy metadata only.
fn config_params() -> Vec<u8> {
    let mut p = 0u32.to_be_bytes().to_vec();
    p.push(COPY_META);
    attr(CFG_PARAMS, &p)
}

/// A whole netlink message of the queue subsystem for [`QUEUE`].
fn message(kind: u16, flags: u16, seq: u32, attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDR + NFGENMSG + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: AF_UNSPEC, NFNETLINK_V0, queue number (big-endian).
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&QUEUE.to_be_bytes());
    m.extend_from_slice(attrs);
    m
}

/// Appends a verdict for packet `id` to `out`.
fn push_verdict(out: &mut Vec<u8>, id: u32, verdict: u32) {
    let mut hdr = verdict.to_be_bytes().to_vec();
    hdr.extend_from_slice(&id.to_be_bytes());
    out.extend(message(
        MSG_VERDICT,
        NLM_F_REQUEST,
        0,
        &attr(NFQA_VERDICT_HDR, &hdr),
    ));
}

/// What a received netlink message says.
#[derive(Debug, PartialEq)]
enum Parsed {
    /// A queued packet.
    Packet { id: u32 },
    /// An acknowledgement (`errno` 0) or error for request `seq`.
    Ack { seq: u32, errno: i32 },
    /// Anything else.
    Other,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Splits a datagram into its messages; truncated or malformed parts end it.
fn parse(buf: &[u8]) -> Vec<Parsed> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDR <= buf.len() {
        let Some(len) = u32_at(buf, at).and_then(|l| usize::try_from(l).ok()) else {
            break;
        };
        if len < NLMSG_HDR || at + len > buf.len() {
            break;
        }
        let msg = &buf[at..at + len];
        let kind = u16_at(msg, 4).unwrap_or(0);
        out.push(match kind {
            NLMSG_ERROR => {
                // nlmsgerr: int error, then the request's header.
                let errno = u32_at(msg, NLMSG_HDR).map_or(0, |e| e as i32);
                let seq = u32_at(msg, NLMSG_HDR + 4 + 8).unwrap_or(0);
                Parsed::Ack { seq, errno: -errno }
            }
            MSG_PACKET => packet_id(&msg[NLMSG_HDR..]).map_or(Parsed::Other, |id| Parsed::Packet { id }),
            _ => Parsed::Other,
        });
        at += align4(len);
    }
    out
}

/// The packet id in a `NFQNL_MSG_PACKET` body (after the netlink header).
fn packet_id(body: &[u8]) -> Option<u32> {
    let mut at = NFGENMSG;
    while at + 4 <= body.len() {
        let len = usize::from(u16_at(body, at)?);
        let kind = u16_at(body, at + 2)? & 0x3fff;
        if len < 4 || at + len > body.len() {
            return None;
        }
        if kind == NFQA_PACKET_HDR {
            let id = body.get(at + 4..at + 8)?;
            return Some(u32::from_be_bytes(id.try_into().ok()?));
        }
        at += align4(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet_message(id: u32) -> Vec<u8> {
        let mut hdr = id.to_be_bytes().to_vec();
        hdr.extend_from_slice(&[0x08, 0x00, 3]);
        let mut attrs = attr(9, &[1, 2, 3, 4]);
        attrs.extend(attr(NFQA_PACKET_HDR, &hdr));
        message(MSG_PACKET, 0, 0, &attrs)
    }

    #[test]
    fn attributes_are_padded_and_messages_sized() {
        let a = attr(CFG_PARAMS, &[1, 2, 3, 4, 5]);
        assert_eq!(a.len(), 12);
        assert_eq!(u16_at(&a, 0), Some(9));
        let m = message(MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, 7, &a);
        assert_eq!(u32_at(&m, 0), Some(32));
        assert_eq!(u16_at(&m, 4), Some(MSG_CONFIG));
        assert_eq!(u32_at(&m, 8), Some(7));
        let mut v = Vec::new();
        push_verdict(&mut v, 0x0102_0304, NF_ACCEPT);
        push_verdict(&mut v, 5, NF_DROP);
        assert_eq!(v.len(), 64);
        assert_eq!(&v[24..32], &[0, 0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(&v[56..64], &[0, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn packets_and_acks_parse_and_garbage_does_not() {
        let mut d = packet_message(42);
        d.extend(packet_message(43));
        // An ack for seq 9 with error -EPERM.
        let mut err = (-1i32).to_ne_bytes().to_vec();
        err.extend(message(MSG_CONFIG, 0, 9, &[])[..16].to_vec());
        let mut ack = Vec::new();
        ack.extend_from_slice(&u32::try_from(16 + err.len()).unwrap().to_ne_bytes());
        ack.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack.extend_from_slice(&[0; 10]);
        ack.extend(err);
        d.extend(ack);
        assert_eq!(
            parse(&d),
            vec![
                Parsed::Packet { id: 42 },
                Parsed::Packet { id: 43 },
                Parsed::Ack { seq: 9, errno: 1 }
            ]
        );
        // Truncated: the whole first message is needed.
        let p = packet_message(1);
        assert_eq!(parse(&p[..p.len() - 1]), vec![]);
        // A length field beyond the buffer, or below the header, ends parsing.
        let mut bad = p.clone();
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(parse(&bad), vec![]);
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(parse(&bad), vec![]);
        // A packet message whose attribute overruns is not a packet.
        let mut over = p;
        let at = NLMSG_HDR + NFGENMSG;
        over[at..at + 2].copy_from_slice(&200u16.to_ne_bytes());
        assert_eq!(parse(&over), vec![Parsed::Other]);
    }

    #[test]
    fn delays_stay_within_jitter_and_never_go_negative() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = LinkParams {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(10),
            loss: 0.0,
        };
        for _ in 0..1000 {
            assert!(sample_delay(&p, &mut rng) <= Duration::from_millis(15));
        }
        let fixed = LinkParams {
            jitter: Duration::ZERO,
            ..p
        };
        assert_eq!(sample_delay(&fixed, &mut rng), Duration::from_millis(5));
        assert!(
            Emulator::start(Path::new("/proc/self/ns/net"), LinkParams { loss: 1.5, ..p }, 0).is_err(),
            "loss above 1 is refused"
        );
    }

    #[test]
    fn merged_stats_add_counts_and_keep_extremes() {
        let a = LinkStats {
            packets: 3,
            released: 3,
            max_late_us: 10,
            min_held_us: 50_000,
            ..LinkStats::default()
        };
        let b = LinkStats {
            packets: 2,
            dropped: 1,
            released: 1,
            max_late_us: 30,
            min_held_us: 49_000,
            ..LinkStats::default()
        };
        let idle = LinkStats::default();
        let m = LinkStats::merge(&[a, idle, b]);
        assert_eq!((m.packets, m.dropped, m.released), (5, 1, 4));
        assert_eq!((m.max_late_us, m.min_held_us), (30, 49_000));
    }
}
