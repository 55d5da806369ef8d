//! Issue 17: declared permissions are validated wherever a spec is made or received.

use atr_protocol::policy::{EgressRule, Permissions};
use atr_protocol::signed::{SignError, VerifyError, signing_message};
use atr_protocol::spec::SideEffect;
use atr_protocol::{Manifest, SignedSpec, ValidationError};

use crate::fixtures;

/// Signs `s` without the checks `SignedSpec::sign` applies: what a hostile publisher sends.
fn forged(s: &atr_protocol::ToolSpec) -> Result<SignedSpec, VerifyError> {
    let body = atr_protocol::cbor::to_canonical(s).unwrap();
    let sig = fixtures::key(2).sign(&signing_message(b"atr-spec-v1", &body));
    SignedSpec::from_parts(body, sig)
}

/// `network` without egress hosts, and egress hosts without `network`, are refused when
/// signing (publish) and when verifying a received envelope (ingest: gossip, fetch, sync).
#[test]
fn issue_17_network_and_egress_must_pair_at_publish_and_ingest() {
    let mut no_hosts = fixtures::spec(2);
    no_hosts.side_effects = vec![SideEffect::Network];
    let mut undeclared = fixtures::spec(2);
    undeclared.permissions = Permissions {
        egress: vec![EgressRule::parse("api.example.com:443").unwrap()],
        ..Default::default()
    };
    for (s, want) in [
        (no_hosts, ValidationError::NetworkWithoutEgress),
        (undeclared, ValidationError::EgressWithoutNetwork),
    ] {
        assert_eq!(
            SignedSpec::sign(s.clone(), &fixtures::key(2)).unwrap_err(),
            SignError::Invalid(want.clone())
        );
        match forged(&s) {
            Err(VerifyError::Invalid { source, .. }) => assert_eq!(source, want),
            other => panic!("{other:?}"),
        }
    }
}

/// The manifest names the field at fault.
#[test]
fn issue_17_manifest_permissions_are_parsed_and_checked() {
    let base = r#"
name = "f"
version = "1.0.0"
description = "d"
input_schema = { type = "object" }
[runtime]
image = "x"
digest = "sha256:3f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"
"#;
    let ok = Manifest::from_toml(
        &format!(
            "side_effects = [\"network\"]\n{base}\n[permissions]\negress = [\"B.example:80\", \"a.example:443\", \"a.example:443\"]\nsecrets = [\"TOKEN\"]\nscratch_mb = 4\noutput_dir = \"/out\""
        ),
        "m.toml",
    )
    .and_then(|m| m.to_spec("m.toml", fixtures::key(1).public(), fixtures::CREATED, None));
    let s = ok.unwrap();
    let hosts: Vec<String> = s.permissions.egress.iter().map(ToString::to_string).collect();
    assert_eq!(hosts, ["a.example:443", "b.example:80"]);
    assert_eq!(s.permissions.secrets, ["TOKEN"]);
    assert_eq!(s.permissions.scratch_bytes, Some(4 << 20));
    let with = |side: &str, perms: &str| {
        Manifest::from_toml(
            &format!("side_effects = {side}\n{base}\n[permissions]\n{perms}"),
            "m.toml",
        )
        .unwrap()
        .to_spec("m.toml", fixtures::key(1).public(), fixtures::CREATED, None)
        .unwrap_err()
    };
    for (side, perms, field) in [
        ("[\"network\"]", "", "side_effects"),
        ("[\"reads\"]", "egress = [\"a.example:80\"]", "side_effects"),
        ("[\"network\"]", "egress = [\"a.example\"]", "permissions.egress"),
        ("[\"network\"]", "egress = [\"*.com:80\"]", "permissions.egress"),
        ("[\"none\"]", "secrets = [\"lower\"]", "permissions.secrets"),
        ("[\"none\"]", "scratch_mb = 100000", "permissions.scratch_mb"),
        ("[\"none\"]", "output_dir = \"/proc/x\"", "permissions.output_dir"),
    ] {
        let e = with(side, perms);
        assert_eq!(e.field(), Some(field), "{side} {perms}: {e}");
    }
}
