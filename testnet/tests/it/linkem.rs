//! The user-space link emulator against the real kernel: two network
//! namespaces joined by a veth pair, TCP across them, the emulator on one
//! side. Needs root, iproute2 and iptables (as docker mode does), so the test is
//! ignored by default and run with `--include-ignored` (as CI does), where a
//! missing capability fails it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use atr_testnet::linkem::{Emulator, LinkParams, iptables_rule};

use crate::TestResult;

/// Two namespaces `a` (10.251.0.1) and `b` (10.251.0.2), removed on drop.
struct Pair {
    a: String,
    b: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Pair {
    fn new() -> Result<Pair, String> {
        let tag = std::process::id();
        let pair = Pair {
            a: format!("atr-lk-a-{tag}"),
            b: format!("atr-lk-b-{tag}"),
        };
        let (va, vb) = (format!("lka{tag}"), format!("lkb{tag}"));
        let (va, vb) = (&va[..va.len().min(15)], &vb[..vb.len().min(15)]);
        ip(&["netns", "add", &pair.a])?;
        ip(&["netns", "add", &pair.b])?;
        ip(&["link", "add", va, "type", "veth", "peer", "name", vb])?;
        ip(&["link", "set", va, "netns", &pair.a])?;
        ip(&["link", "set", vb, "netns", &pair.b])?;
        for (ns, dev, addr) in [(&pair.a, va, "10.251.0.1/24"), (&pair.b, vb, "10.251.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    fn path(ns: &str) -> PathBuf {
        Path::new("/run/netns").join(ns)
    }

    fn iface_a(&self) -> String {
        let tag = std::process::id().to_string();
        let v = format!("lka{tag}");
        v[..v.len().min(15)].to_owned()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and so the pair.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

/// Runs `f` on a thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::thread::JoinHandle<std::io::Result<T>> {
    let path = Pair::path(ns);
    std::thread::spawn(move || {
        let file = std::fs::File::open(path)?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        f()
    })
}

/// An echo server in `a` answering `n` one-byte messages on one connection.
fn echo_server(pair: &Pair, n: usize) -> Result<std::thread::JoinHandle<std::io::Result<()>>, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let h = in_ns(&pair.a, move || {
        let l = TcpListener::bind("10.251.0.1:7000")?;
        let _ = tx.send(());
        let (mut c, _) = l.accept()?;
        let mut b = [0u8; 1];
        for _ in 0..n {
            c.read_exact(&mut b)?;
            c.write_all(&b)?;
        }
        Ok(())
    });
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|e| format!("server: {e}"))?;
    Ok(h)
}

/// Round trip times of `n` one-byte echoes from `b` to `a`.
fn round_trips(pair: &Pair, n: usize) -> std::io::Result<Vec<Duration>> {
    in_ns(&pair.b, move || {
        let addr: SocketAddr = ([10, 251, 0, 1], 7000).into();
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        c.set_nodelay(true)?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut rtts = Vec::new();
        let mut b = [7u8; 1];
        for _ in 0..n {
            let t = Instant::now();
            c.write_all(&b)?;
            c.read_exact(&mut b)?;
            rtts.push(t.elapsed());
        }
        Ok(rtts)
    })
    .join()
    .map_err(|_| std::io::Error::other("client thread panicked"))?
}

fn setup() -> Result<Pair, Box<dyn std::error::Error>> {
    Pair::new().map_err(|e| {
        format!("this test needs root, iproute2 and iptables to make network namespaces: {e}").into()
    })
}

fn add_rule(pair: &Pair) -> TestResult {
    let rule = iptables_rule(&pair.iface_a());
    let out = Command::new("ip")
        .args(["netns", "exec", &pair.a])
        .args(&rule)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[test]
#[ignore = "needs root for network namespaces"]
fn delay_is_added_to_every_packet_and_loss_drops_them() -> TestResult {
    let pair = setup()?;
    let delay = Duration::from_millis(40);
    let em = Emulator::start(
        &Pair::path(&pair.a),
        LinkParams {
            delay,
            jitter: Duration::ZERO,
            loss: 0.0,
        },
        1,
    )?;
    add_rule(&pair)?;
    let server = echo_server(&pair, 5)?;
    let rtts = round_trips(&pair, 5)?;
    server.join().map_err(|_| "server panicked")??;
    // Each answer leaves `a` through the emulator: no round trip can be
    // shorter than the delay (a lower bound: holds however loaded the machine).
    for r in &rtts {
        assert!(
            *r >= delay,
            "round trip {r:?} is shorter than the added delay: {rtts:?}"
        );
    }
    let s = em.stats();
    assert!(
        s.released >= 5 + 2,
        "handshake and answers went through it: {s:?}"
    );
    assert!(s.min_held_us >= 40_000, "{s:?}");
    assert_eq!((s.dropped, s.overflow), (0, 0), "{s:?}");
    let s = em.stop();
    assert_eq!(s.packets, s.released, "every packet was released at stop: {s:?}");

    // With the emulator gone, --queue-bypass keeps the link working.
    let server = echo_server(&pair, 1)?;
    assert_eq!(round_trips(&pair, 1)?.len(), 1);
    server.join().map_err(|_| "server panicked")??;

    // Loss 100 %: the SYN-ACK never leaves `a`, so nothing connects.
    let em = Emulator::start(
        &Pair::path(&pair.a),
        LinkParams {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 1.0,
        },
        2,
    )?;
    let _server = echo_server(&pair, 1)?;
    let r = round_trips(&pair, 1);
    assert!(
        r.is_err(),
        "a link dropping everything carried a round trip: {r:?}"
    );
    let s = em.stop();
    assert!(s.dropped >= 1 && s.released == 0, "{s:?}");
    Ok(())
}
