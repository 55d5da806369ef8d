//! atr's own seccomp profile (`atr_sandbox::seccomp`) is what confines a tool, not the
//! engine's default: against a real Docker Engine, a probe makes calls that the default
//! profile of some engines allows (`ptrace`, `io_uring`; Docker 20.10 allows both) and that a
//! tool has no business making, and every one is refused; ordinary tools still run under it.
//!
//! The probe is a static binary compiled here with `rustc` in a `FROM scratch` image (nothing
//! is pulled). Each call is harmless when it succeeds: a user namespace for the short-lived
//! probe itself, marking itself traceable, reading a keyring id, creating and closing an
//! io_uring or a userfaultfd, a `clone3` child that exits at once.

use atr_protocol::Manifest;
use atr_protocol::api::InvokeRequest;
use atr_protocol::receipt::InvocationStatus;
use atr_sandbox::image::{self, ScratchImageOptions};
use serde_json::json;

use crate::harness::*;
use crate::hostile_image::{scratch_image, static_binary};

const PROBE_SRC: &str = r#"
use std::io::Read;
unsafe extern "C" {
    fn syscall(number: i64, ...) -> i64;
    fn close(fd: i32) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(status: i32) -> !;
}
fn attempt(call: &str) -> Result<(), i32> {
    let r = unsafe {
        match call {
            "unshare_user" => syscall(272, 0x1000_0000i64),
            "ptrace_traceme" => syscall(101, 0i64, 0i64, 0i64, 0i64),
            "keyctl" => syscall(250, 0i64, -2i64, 0i64),
            "io_uring_setup" => {
                let mut params = [0u8; 120];
                let fd = syscall(425, 1i64, params.as_mut_ptr());
                if fd >= 0 { close(fd as i32); }
                fd
            }
            "userfaultfd" => {
                let fd = syscall(323, 0o2_000_000i64);
                if fd >= 0 { close(fd as i32); }
                fd
            }
            "clone3" => {
                let mut args = [0u64; 11];
                args[4] = 17; // exit_signal: SIGCHLD
                let pid = syscall(435, args.as_mut_ptr(), std::mem::size_of_val(&args));
                if pid == 0 { _exit(0); }
                if pid > 0 { let mut st = 0; waitpid(pid as i32, &mut st, 0); }
                pid
            }
            _ => return Err(22),
        }
    };
    if r < 0 { Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)) } else { Ok(()) }
}
fn main() {
    let mut input = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut input);
    let calls = ["unshare_user", "ptrace_traceme", "keyctl", "io_uring_setup", "userfaultfd", "clone3"];
    let results: Vec<String> = calls.iter().map(|c| match attempt(c) {
        Ok(()) => format!("{{\"call\":\"{c}\",\"allowed\":true}}"),
        Err(e) => format!("{{\"call\":\"{c}\",\"allowed\":false,\"errno\":{e}}}"),
    }).collect();
    println!("{{\"results\":[{}]}}", results.join(","));
}
"#;

fn probe_manifest(image: &str) -> Manifest {
    let src = format!(
        r#"
name = "syscall_probe"
version = "1.0.0"
description = "Hostile test tool: attempts system calls a tool has no business making."
tags = ["hostile"]
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}
[runtime]
image = "{image}"
command = ["/probe"]
[limits]
timeout_ms = 20000
memory_mb = 32
pids = 4
"#
    );
    Manifest::from_toml(&src, "probe.toml").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn seccomp_refuses_namespaces_ptrace_keyrings_and_io_uring() {
    init_tracing();
    let docker = image::connect().await.unwrap();
    let probe = static_binary("probe", PROBE_SRC);
    scratch_image(
        &docker,
        "atr-test-hostile:syscalls",
        "probe",
        &probe,
        ScratchImageOptions::default(),
    )
    .await;
    let t = start_provider(142, vec![], 2).await;
    let n = &t.node;
    let publish = |m: Manifest| async move {
        n.services()
            .publisher
            .publish(m, "tool.toml".into())
            .await
            .unwrap()
            .spec
            .id()
    };
    let probe = publish(probe_manifest("atr-test-hostile:syscalls")).await;
    let echo = publish(tool_manifest("echo")).await;
    let invoke = |id, input| async move {
        n.services()
            .caller
            .invoke(InvokeRequest {
                id: Some(id),
                name: None,
                version: None,
                publisher: None,
                input,
            })
            .await
            .unwrap()
    };

    let r = invoke(probe, json!({})).await;
    assert_eq!(r.status, InvocationStatus::Ok, "{}", r.output);
    let seen: Vec<(String, bool, i64)> = r.output["results"]
        .as_array()
        .expect("probe results")
        .iter()
        .map(|x| {
            (
                x["call"].as_str().unwrap().to_owned(),
                x["allowed"].as_bool().unwrap(),
                x["errno"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let expected: Vec<(String, bool, i64)> = [
        ("unshare_user", 1),
        ("ptrace_traceme", 1),
        ("keyctl", 1),
        ("io_uring_setup", 1),
        ("userfaultfd", 1),
        ("clone3", 38),
    ]
    .into_iter()
    .map(|(c, errno)| (c.to_owned(), false, errno))
    .collect();
    assert_eq!(seen, expected, "{}", r.output);

    // The ordinary tool (threads, files, pipes of a static Rust binary) runs under the profile.
    let r = invoke(echo, json!({"still": "alive"})).await;
    assert_eq!(r.status, InvocationStatus::Ok, "{}", r.output);
    assert_eq!(r.output, json!({"still": "alive"}));
}
