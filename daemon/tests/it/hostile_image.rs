//! Hostile images against a real Docker Engine: an image's `VOLUME` gets a size-capped tmpfs
//! instead of a disk-backed anonymous volume, its `HEALTHCHECK` never runs, and an image
//! asking for more volumes than the sandbox covers is refused at publish, at provide and at
//! run.
//!
//! The images are `FROM scratch` with one static test binary, compiled here with `rustc`
//! (nothing is pulled): `writer DIR MAX_MB SLEEP_MS` writes 4 MiB files into `DIR` until a
//! write fails or `MAX_MB` are written and reports `{"written", "error"}`.

use std::time::Duration;

use atr_protocol::api::InvokeRequest;
use atr_protocol::receipt::InvocationStatus;
use atr_protocol::{Manifest, SecretKey, SignedSpec};
use atr_sandbox::image::{self, ImageFile, ScratchImageOptions};
use atrd::node::provide::ProvideError;
use atrd::node::publish::PublishError;
use atrd::sandbox::{RunRequest, SandboxError};
use bollard::Docker;
use serde_json::json;

use crate::harness::*;

const WRITER_SRC: &str = r#"
use std::io::{Read, Write};
unsafe extern "C" {
    fn signal(sig: i32, handler: usize) -> usize;
}
fn main() {
    // SIGXFSZ ignored: a write past RLIMIT_FSIZE fails with EFBIG instead of killing us.
    unsafe { signal(25, 1) };
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).cloned().unwrap_or_else(|| "/tmp".into());
    let max: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64) << 20;
    let sleep_ms: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut input = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut input);
    std::thread::sleep(std::time::Duration::from_millis(sleep_ms));
    let block = vec![0xA5u8; 1 << 20];
    let mut written = 0u64;
    let mut error = String::new();
    'files: for i in 0.. {
        let mut f = match std::fs::File::create(format!("{dir}/fill{i}")) {
            Ok(f) => f,
            Err(e) => { error = e.to_string(); break; }
        };
        for _ in 0..4 {
            if written >= max { break 'files; }
            match f.write(&block) {
                Ok(0) => { error = "wrote nothing".into(); break 'files; }
                Ok(n) => written += n as u64,
                Err(e) => { error = e.to_string(); break 'files; }
            }
        }
    }
    println!("{{\"written\":{written},\"error\":{error:?}}}");
}
"#;

/// Compiles the writer as a static binary (the way `atr tool build` links tools).
fn writer_binary() -> Vec<u8> {
    static_binary("writer", WRITER_SRC)
}

/// Compiles the one-file program `src` as a static binary.
pub(crate) fn static_binary(name: &str, src: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join(format!("{name}.rs"));
    let out = dir.path().join(name);
    std::fs::write(&src_path, src).unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = std::process::Command::new(rustc)
        .args(["--edition", "2024", "-O", "-C", "target-feature=+crt-static"])
        .args(["--target", atr_sandbox::image::STATIC_TARGET, "-o"])
        .arg(&out)
        .arg(&src_path)
        .status()
        .expect("run rustc");
    assert!(status.success(), "compiling {name} failed");
    std::fs::read(&out).unwrap()
}

/// A `FROM scratch` image holding `binary` as `/{name}`; its id.
pub(crate) async fn scratch_image(
    docker: &Docker,
    tag: &str,
    name: &str,
    binary: &[u8],
    opts: ScratchImageOptions,
) -> String {
    image::build_scratch_image(
        docker,
        tag,
        &[ImageFile::executable(format!("/{name}"), binary.to_vec())],
        &opts,
    )
    .await
    .unwrap_or_else(|e| panic!("build {tag}: {e}"))
    .to_string()
}

async fn build(docker: &Docker, tag: &str, writer: &[u8], opts: ScratchImageOptions) -> String {
    scratch_image(docker, tag, "writer", writer, opts).await
}

fn writer_manifest(name: &str, image: &str, command: &[&str]) -> Manifest {
    let command = command
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let src = format!(
        r#"
name = "{name}"
version = "1.0.0"
description = "Hostile test tool: fills a directory with files."
tags = ["hostile"]
input_schema = {{ type = "object" }}
output_schema = {{ type = "object" }}
[runtime]
image = "{image}"
command = [{command}]
[limits]
timeout_ms = 30000
memory_mb = 64
pids = 4
"#
    );
    Manifest::from_toml(&src, "writer.toml").unwrap()
}

async fn volume_count(docker: &Docker) -> usize {
    docker
        .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
        .await
        .unwrap()
        .volumes
        .map_or(0, |v| v.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn image_volumes_become_capped_tmpfs_and_healthchecks_never_run() {
    init_tracing();
    let docker = image::connect().await.unwrap();
    let writer = writer_binary();
    let hostile = build(
        &docker,
        "atr-test-hostile:volume",
        &writer,
        ScratchImageOptions::default()
            .with_volume("/data")
            .with_healthcheck(["/writer", "/tmp", "1", "0"]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let t = start_node_with(160, vec![], dir, |c| c.sandbox.enabled = true).await;
    let n = &t.node;
    let sb = n.sandbox().expect("a Docker Engine is required").clone();

    // Publish accepts it: the volume is neutralised, not refused.
    let spec = n
        .services()
        .publisher
        .publish(
            writer_manifest(
                "volume_writer",
                "atr-test-hostile:volume",
                &["/writer", "/data", "64", "6000"],
            ),
            "writer.toml".into(),
        )
        .await
        .unwrap()
        .spec;
    assert_eq!(spec.value().runtime.image_digest, hostile);

    let volumes_before = volume_count(&docker).await;
    let caller = n.services().caller.clone();
    let id = spec.id();
    let run = tokio::spawn(async move {
        caller
            .invoke(InvokeRequest {
                id: Some(id),
                name: None,
                version: None,
                publisher: None,
                input: json!({}),
            })
            .await
    });

    // While the tool sleeps (6 s) before writing: look at its container. On a loaded host the
    // Engine's answers are slow, hence the long sleep.
    let found_by = std::time::Instant::now() + Duration::from_secs(5);
    let mut container = None;
    while std::time::Instant::now() < found_by {
        // The running container of this image (not one of an earlier run being removed).
        let filters = std::collections::HashMap::from([
            ("ancestor".to_owned(), vec![hostile.clone()]),
            ("status".to_owned(), vec!["running".to_owned()]),
        ]);
        let running = docker
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .unwrap();
        if let Some(c) = running.into_iter().find_map(|c| c.id) {
            container = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let container = container.expect("the tool's container never appeared");
    let info = match docker
        .inspect_container(
            &container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        Ok(info) => info,
        Err(e) => panic!(
            "inspect {container}: {e}; the invocation gave {:?}",
            run.await.unwrap().map(|r| (r.output, r.attempts))
        ),
    };
    let mounts = info.mounts.unwrap_or_default();
    assert!(
        mounts.iter().all(|m| m.typ.as_deref() != Some("volume")),
        "an anonymous volume was mounted: {mounts:?}"
    );
    let tmpfs = info
        .host_config
        .as_ref()
        .and_then(|h| h.tmpfs.clone())
        .unwrap_or_default();
    let half = atr_sandbox::runner::TMPFS_BYTES / 2;
    assert_eq!(
        tmpfs.get("/data").map(String::as_str),
        Some(format!("rw,noexec,nosuid,nodev,size={half}").as_str()),
        "{tmpfs:?}"
    );
    let health = info
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.clone());
    assert_eq!(health, Some(vec!["NONE".to_owned()]));
    assert_eq!(
        volume_count(&docker).await,
        volumes_before,
        "a volume was created"
    );
    // The image's healthcheck runs every second; give it a chance to have run.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let info = docker
        .inspect_container(
            &container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await;
    if let Ok(info) = info {
        assert!(
            info.state.and_then(|s| s.health).is_none(),
            "the image's healthcheck ran"
        );
    }

    // The tool asked for 64 MiB in /data; the tmpfs (half the 16 MiB scratch budget) stops it.
    let r = run.await.unwrap().unwrap();
    assert_eq!(r.status, InvocationStatus::Ok, "{}", r.output);
    assert_eq!(r.attempts.len(), 1, "{:?}", r.attempts);
    let written = r.output["written"].as_u64().unwrap();
    assert!(
        written <= half,
        "wrote {written} bytes into the volume: {}",
        r.output
    );
    assert!(written >= half / 2, "the tmpfs was not writable: {}", r.output);
    assert!(
        r.output["error"].as_str().unwrap().contains("No space left"),
        "{}",
        r.output
    );
    sb.settle().await;
    assert!(sb.list_own().await.unwrap().is_empty());
    assert_eq!(
        volume_count(&docker).await,
        volumes_before,
        "a volume was left behind"
    );
    t.node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker Engine"]
async fn an_image_with_too_many_volumes_is_refused_at_publish_provide_and_run() {
    init_tracing();
    let docker = image::connect().await.unwrap();
    let writer = writer_binary();
    let mut opts = ScratchImageOptions::default();
    for v in ["/a", "/b", "/c", "/d", "/e"] {
        opts = opts.with_volume(v);
    }
    let refused = build(&docker, "atr-test-hostile:volumes5", &writer, opts).await;
    let dir = tempfile::tempdir().unwrap();
    let t = start_node_with(161, vec![], dir, |c| c.sandbox.enabled = true).await;
    let n = &t.node;
    let sb = n.sandbox().expect("a Docker Engine is required").clone();

    // Publish.
    let e = n
        .services()
        .publisher
        .publish(
            writer_manifest("many_volumes", "atr-test-hostile:volumes5", &["/writer", "/a"]),
            "writer.toml".into(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, PublishError::ImageRefused(_)), "{e}");
    assert!(e.to_string().contains("5 VOLUMEs"), "{e}");

    // Provide: a foreign spec pinning that image.
    let key = SecretKey::from_seed(&[162; 32]);
    let mut m = writer_manifest("many_volumes", "atr-test-hostile:volumes5", &["/writer", "/a"]);
    m.runtime.digest = Some(refused.clone());
    let spec = SignedSpec::sign(
        m.to_spec("x.toml", key.public(), 1_764_000_000_000, None)
            .unwrap(),
        &key,
    )
    .unwrap();
    n.services().ingest.store_spec(spec.clone()).unwrap();
    let e = n.services().consent.provide(&spec.id()).await.unwrap_err();
    assert!(matches!(e, ProvideError::ImageRefused { .. }), "{e}");

    // Run (defensive: a spec that slipped past the first two checks).
    let limits = spec.value().limits;
    let e = sb
        .run(RunRequest {
            image: &refused,
            command: &["/writer".to_owned()],
            workdir: None,
            limits: &limits,
            input: b"{}",
            invocation: "refused-image",
            permissions: &atr_protocol::policy::Permissions::EMPTY,
            egress: None,
            secrets: Default::default(),
        })
        .await
        .unwrap_err();
    assert!(matches!(e, SandboxError::ImageRefused { .. }), "{e}");
    sb.settle().await;
    assert!(sb.list_own().await.unwrap().is_empty());
    t.node.shutdown().await.unwrap();
}
