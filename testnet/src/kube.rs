//! `atr-testnet export --kubernetes FILE`: the scenario's network as
//! Kubernetes objects (not run here: no cluster; the rendering is tested for
//! shape and, where PyYAML is installed, parsed back).
//!
//! Four documents in one YAML stream:
//!
//! - a `ConfigMap` `atrd-config` with the scenario's `atrd.toml` (the same
//!   [`crate::process::node_config`] as every other mode);
//! - a `Secret` `atrd-keys`, one key per pod (`atrd-0` … `atrd-N`, the
//!   seeded identities, so peer ids are known before the pods exist);
//! - a headless `Service` `atrd` (`clusterIP: None`,
//!   `publishNotReadyAddresses`), so `atrd-I.atrd` resolves to pod I;
//! - a `StatefulSet` `atrd` of N pods (`podManagementPolicy: Parallel`): the
//!   locally built image [`crate::docker::IMAGE`] (`imagePullPolicy: Never`:
//!   load it into the cluster's nodes), a `PersistentVolumeClaim` per pod for
//!   the data dir, the pod's own key mounted over `/data/identity.key` with
//!   `subPathExpr: $(POD_NAME)`, bootstrap from pods 0 and 1 by name
//!   (`/dns4/atrd-J.atrd/tcp/4077/p2p/<peer id>`), non-root, read-only root
//!   filesystem, no capabilities, and a TCP readiness probe on the API.
//!
//! The YAML is emitted from `serde_json` values by [`to_yaml`] (block style,
//! every string double-quoted, so no value is ever reinterpreted).

use std::fmt::Write as _;

use anyhow::Context;
use atr_protocol::SecretKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::docker::{API_PORT, DATA_DIR, IMAGE, P2P_PORT};
use crate::scenario::NetworkSettings;

/// Name of the StatefulSet, its Service and its pods' prefix.
pub const NAME: &str = "atrd";

/// The Kubernetes objects for `nodes` pods with `network` settings and keys
/// from `seed`.
pub fn objects(nodes: usize, seed: u64, network: &NetworkSettings) -> anyhow::Result<Vec<Value>> {
    anyhow::ensure!((1..=10_000).contains(&nodes), "--nodes must be 1..=10000");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys = serde_json::Map::new();
    let mut peers = Vec::new();
    for i in 0..nodes {
        let mut s = [0u8; 32];
        rng.fill(&mut s);
        peers.push(SecretKey::from_seed(&s).public().to_string());
        keys.insert(
            format!("{NAME}-{i}"),
            Value::String(data_encoding::BASE64.encode(&s)),
        );
    }
    let labels = json!({ "app.kubernetes.io/name": NAME });
    let config = crate::process::node_config(network, false);
    let mut args = vec![
        "--data-dir".to_owned(),
        DATA_DIR.to_owned(),
        "--config".to_owned(),
        "/etc/atrd/atrd.toml".to_owned(),
        "--api".to_owned(),
        format!("0.0.0.0:{API_PORT}"),
        "--api-allow-remote".to_owned(),
        "--listen".to_owned(),
        format!("/ip4/0.0.0.0/tcp/{P2P_PORT}"),
        "--log-format".to_owned(),
        "json".to_owned(),
    ];
    for (j, peer) in peers.iter().enumerate().take(2) {
        args.push("--bootstrap".to_owned());
        args.push(format!("/dns4/{NAME}-{j}.{NAME}/tcp/{P2P_PORT}/p2p/{peer}"));
    }
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "atrd-config", "labels": labels },
        "data": { "atrd.toml": config },
    });
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "atrd-keys", "labels": labels },
        "type": "Opaque",
        "data": keys,
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": NAME, "labels": labels },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": labels,
            "ports": [
                { "name": "p2p", "port": P2P_PORT, "protocol": "TCP" },
                { "name": "api", "port": API_PORT, "protocol": "TCP" },
            ],
        },
    });
    let statefulset = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": NAME, "labels": labels },
        "spec": {
            "serviceName": NAME,
            "replicas": nodes,
            "podManagementPolicy": "Parallel",
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "securityContext": { "runAsNonRoot": true, "runAsUser": 10001, "fsGroup": 10001 },
                    "containers": [{
                        "name": NAME,
                        "image": IMAGE,
                        "imagePullPolicy": "Never",
                        "args": args,
                        "env": [
                            { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                            { "name": "RUST_LOG", "value": crate::logs::NODE_LOG_FILTER },
                        ],
                        "ports": [
                            { "name": "p2p", "containerPort": P2P_PORT },
                            { "name": "api", "containerPort": API_PORT },
                        ],
                        "readinessProbe": { "tcpSocket": { "port": "api" }, "periodSeconds": 2 },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                        "volumeMounts": [
                            { "name": "data", "mountPath": DATA_DIR },
                            { "name": "keys", "mountPath": format!("{DATA_DIR}/identity.key"), "subPathExpr": "$(POD_NAME)", "readOnly": true },
                            { "name": "config", "mountPath": "/etc/atrd", "readOnly": true },
                        ],
                    }],
                    "volumes": [
                        { "name": "keys", "secret": { "secretName": "atrd-keys", "defaultMode": 0o400 } },
                        { "name": "config", "configMap": { "name": "atrd-config" } },
                    ],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": { "name": "data" },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": { "requests": { "storage": "1Gi" } },
                },
            }],
        },
    });
    Ok(vec![config_map, secret, service, statefulset])
}

/// The objects as one YAML stream (`---` between documents).
pub fn render(nodes: usize, seed: u64, network: &NetworkSettings) -> anyhow::Result<String> {
    let mut out = String::from("# Written by `atr-testnet export --kubernetes`: kubectl apply -f FILE\n");
    for doc in objects(nodes, seed, network)? {
        out += "---\n";
        to_yaml(&doc, 0, &mut out).context("rendering YAML")?;
    }
    Ok(out)
}

/// Block-style YAML of `v` at `indent`; strings are JSON-quoted (valid YAML
/// double-quoted scalars), maps and lists nest by two spaces.
pub fn to_yaml(v: &Value, indent: usize, out: &mut String) -> std::fmt::Result {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let key = Value::String(k.clone()).to_string();
                match x {
                    Value::Object(c) if !c.is_empty() => {
                        writeln!(out, "{pad}{key}:")?;
                        to_yaml(x, indent + 2, out)?;
                    }
                    Value::Array(c) if !c.is_empty() => {
                        writeln!(out, "{pad}{key}:")?;
                        to_yaml(x, indent, out)?;
                    }
                    _ => writeln!(out, "{pad}{key}: {}", scalar(x))?,
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for x in a {
                match x {
                    Value::Object(c) if !c.is_empty() => {
                        let mut inner = String::new();
                        to_yaml(x, indent + 2, &mut inner)?;
                        // The first line's indentation becomes "- ".
                        let rest = inner.get(indent + 2..).unwrap_or_default();
                        write!(out, "{pad}- {rest}")?;
                    }
                    Value::Array(c) if !c.is_empty() => {
                        writeln!(out, "{pad}-")?;
                        to_yaml(x, indent + 2, out)?;
                    }
                    _ => writeln!(out, "{pad}- {}", scalar(x))?,
                }
            }
        }
        other => writeln!(out, "{pad}{}", scalar(other))?,
    }
    Ok(())
}

/// A scalar (or an empty map or list) in flow style.
fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statefulset_and_its_headless_service_fit_together() {
        let docs = objects(5, 3, &NetworkSettings::default()).unwrap();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ConfigMap", "Secret", "Service", "StatefulSet"]);
        let (svc, sts) = (&docs[2], &docs[3]);
        assert_eq!(svc["spec"]["clusterIP"], "None");
        assert_eq!(sts["spec"]["serviceName"], svc["metadata"]["name"]);
        assert_eq!(sts["spec"]["replicas"], 5);
        let labels = &sts["spec"]["template"]["metadata"]["labels"];
        assert_eq!(&sts["spec"]["selector"]["matchLabels"], labels);
        assert_eq!(&svc["spec"]["selector"], labels);
        // One key per pod, 32 bytes each, and the pods 0 and 1 as bootstrap peers.
        let keys = docs[1]["data"].as_object().unwrap();
        assert_eq!(keys.len(), 5);
        for i in 0..5 {
            let k = keys[&format!("atrd-{i}")].as_str().unwrap();
            assert_eq!(data_encoding::BASE64.decode(k.as_bytes()).unwrap().len(), 32);
        }
        let args: Vec<&str> = sts["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args.iter().filter(|a| a.starts_with("/dns4/atrd-")).count(), 2);
        assert!(
            args.iter()
                .any(|a| a.starts_with("/dns4/atrd-1.atrd/tcp/4077/p2p/12D3"))
        );
        // The config is the one every mode writes.
        let toml_text = docs[0]["data"]["atrd.toml"].as_str().unwrap();
        let v: toml::Value = toml::from_str(toml_text).unwrap();
        assert_eq!(v["network"]["nat"]["mdns"].as_str(), Some("off"));
    }

    #[test]
    fn yaml_is_block_style_with_quoted_strings() {
        let mut out = String::new();
        to_yaml(
            &json!({ "a": { "b": [1, "x: y", { "c": true, "d": [] }] }, "e": {} }),
            0,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            "\"a\":\n  \"b\":\n  - 1\n  - \"x: y\"\n  - \"c\": true\n    \"d\": []\n\"e\": {}\n"
        );
    }

    /// The rendering parses back (PyYAML, a YAML 1.1 parser as strict as
    /// kubectl's) to exactly the objects.
    #[test]
    #[ignore = "needs python3 with PyYAML"]
    fn the_rendering_parses_back_to_the_objects() {
        use std::io::Write;
        let yaml = render(4, 1, &NetworkSettings::default()).unwrap();
        let mut child = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d is not None]))",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "PyYAML refused the rendering:\n{yaml}");
        let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            parsed,
            Value::Array(objects(4, 1, &NetworkSettings::default()).unwrap())
        );
    }
}
