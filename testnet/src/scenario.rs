//! Scenario files: what an experiment does, in TOML, in the spirit of
//! Testground's composition files.
//!
//! A [`Scenario`] names groups of nodes ([`Group`]: a count or fraction of the
//! network, a [`Role`], optional network [`Conditions`]) and a list of
//! [`Step`]s run in order (publish, wait, find, invoke, revoke, kill, restart,
//! partition, heal, join). The built-in scenarios are such files, compiled
//! into the binary ([`builtin`], [`BUILTINS`]); `docs/testnet.md` documents
//! every field.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

/// The built-in scenarios: name and TOML text (`testnet/scenarios/*.toml`).
pub const BUILTINS: &[(&str, &str)] = &[
    ("propagation", include_str!("../scenarios/propagation.toml")),
    ("discovery", include_str!("../scenarios/discovery.toml")),
    ("revocation", include_str!("../scenarios/revocation.toml")),
    ("churn", include_str!("../scenarios/churn.toml")),
    ("invoke", include_str!("../scenarios/invoke.toml")),
    ("partition", include_str!("../scenarios/partition.toml")),
    ("attacks", include_str!("../scenarios/attacks.toml")),
    ("attacks-ci", include_str!("../scenarios/attacks-ci.toml")),
    (
        "propagation-wan",
        include_str!("../scenarios/propagation-wan.toml"),
    ),
];

/// Most nodes a scenario may ask for: far beyond what one machine runs (see
/// `docs/testnet.md`), low enough that a typo cannot fork ten thousand processes.
pub const MAX_NODES: usize = 1000;
/// Most operations (publishes, lookups, invocations) one step may do, so every
/// load loop is bounded in count as well as in time.
pub const MAX_STEP_OPS: usize = 100_000;
/// Longest a single step may last (waits, timeouts, find loops). 10 min.
pub const MAX_STEP_DURATION: Duration = Duration::from_secs(600);

/// What a group of nodes does in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Publishes (and revokes) tools; discovery-only node.
    Publisher,
    /// Looks tools up and invokes them; discovery-only node.
    Caller,
    /// Only relays gossip and answers the DHT; discovery-only node.
    Bystander,
    /// Publishes runnable tools and runs them: its Docker sandbox is on.
    Provider,
}

impl Role {
    /// Whether nodes of this role run tools (sandbox on).
    pub fn runs_tools(self) -> bool {
        self == Role::Provider
    }
}

/// Link conditions of a group (applied with `tc netem` where the nodes have
/// their own network interface: docker mode only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Added one-way delay.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// Jitter around the delay.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Duration>,
    /// Packet loss, percent (0–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_percent: Option<f64>,
    /// Rate limit, in `tc` syntax (e.g. `"10mbit"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
}

/// A group of nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Name used by steps (`all` is reserved: every node).
    pub id: String,
    /// What its nodes do.
    pub role: Role,
    /// Exactly this many nodes …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// … or this fraction of the network (rounded, at least 1) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    // … or neither: the nodes no other group takes (one such group at most).
    /// Link conditions of its nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
}

/// `[network]`: settings written into every node's `atrd.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// Gossipsub heartbeat. Defaults to 200 ms (atrd's own default is 700 ms).
    #[serde(default = "default_heartbeat", with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Anti-entropy interval. Defaults to atrd's (30 s).
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub sync_interval: Option<Duration>,
    /// Gossipsub mesh degree D (atrd's `network.gossip_mesh_n`; default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gossip_mesh_n: Option<usize>,
    /// Whether publishers flood their own messages to every peer (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_publish: Option<bool>,
    /// IDONTWANT size threshold, bytes (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idontwant_threshold: Option<usize>,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            heartbeat: default_heartbeat(),
            sync_interval: None,
            gossip_mesh_n: None,
            flood_publish: None,
            idontwant_threshold: None,
        }
    }
}

fn default_heartbeat() -> Duration {
    Duration::from_millis(200)
}

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (used in reports).
    pub name: String,
    /// What it measures.
    #[serde(default)]
    pub description: String,
    /// Seed of keys, topology and every random choice. Default 1.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Network size when `--nodes` is not given. Default 10.
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    /// Bytes of filler added to each published tool's description, to vary
    /// the spec size. Default 0.
    #[serde(default)]
    pub payload_bytes: usize,
    /// Time between "every node has a peer" and the first step. Default 2 s.
    #[serde(default = "default_settle", with = "humantime_serde")]
    pub settle: Duration,
    /// Node settings.
    #[serde(default)]
    pub network: NetworkSettings,
    /// Groups, in the order nodes are assigned to them.
    #[serde(default, rename = "group")]
    pub groups: Vec<Group>,
    /// Steps, run in order.
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
}

fn default_seed() -> u64 {
    1
}
fn default_nodes() -> usize {
    10
}
fn default_settle() -> Duration {
    Duration::from_secs(2)
}
fn default_all() -> String {
    "all".into()
}
fn default_tag() -> String {
    "testnet".into()
}
fn default_one() -> usize {
    1
}
fn default_hundred() -> usize {
    100
}
fn default_ten_s() -> Duration {
    Duration::from_secs(10)
}
fn default_five_s() -> Duration {
    Duration::from_secs(5)
}
fn default_thirty_s() -> Duration {
    Duration::from_secs(30)
}
fn default_true() -> bool {
    true
}
fn default_input() -> serde_json::Value {
    serde_json::json!({ "a": 1, "b": 2 })
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Step {
    /// Publish tools and time their arrival on every live node.
    Publish(PublishStep),
    /// Sleep.
    Wait(WaitStep),
    /// Look a tag up from nodes of a group.
    Find(FindStep),
    /// Revoke published tools and time the revocation's arrival everywhere.
    Revoke(RevokeStep),
    /// Invoke published runnable tools from callers.
    Invoke(InvokeStep),
    /// Kill nodes (SIGKILL by default).
    Kill(KillStep),
    /// Restart the stopped nodes of a group.
    Restart(RestartStep),
    /// Cut the network between groups (docker mode).
    Partition(PartitionStep),
    /// Undo every partition (docker mode).
    Heal(EmptyStep),
    /// Wait for every background step to end.
    Join(EmptyStep),
    /// Hostile peers (`atr-attacker`) against nodes of a group (process mode).
    Attack(AttackStep),
}

/// What an [`AttackStep`]'s hostile peers do (the behaviours of `atr-attacker`).
pub const ATTACK_BEHAVIOURS: [&str; 8] = [
    "connections",
    "requests",
    "fetch",
    "slow-sync",
    "providers",
    "specs",
    "revocations",
    "replay",
];

/// `action = "attack"`: one `atr-attacker` process per victim, each running
/// one behaviour for `duration`; the victims' RSS and CPU are recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackStep {
    /// One of [`ATTACK_BEHAVIOURS`].
    pub behaviour: String,
    /// Group whose nodes are attacked. Default `all`.
    #[serde(default = "default_all")]
    pub group: String,
    /// How many of the group's live nodes (chosen at random). Default 1.
    #[serde(default = "default_one")]
    pub victims: usize,
    /// Identities, requests at once, keys, specs or revocations (see
    /// `atr-attacker --help`). Default 100.
    #[serde(default = "default_hundred")]
    pub count: usize,
    /// How long each attacker runs. Default 30 s.
    #[serde(default = "default_thirty_s", with = "humantime_serde")]
    pub duration: Duration,
    /// Tag asked for by `requests` and `fetch`. Default `testnet`.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Run alongside the next steps.
    #[serde(default)]
    pub background: bool,
    /// Scheduling niceness of the attacker processes (0..=19, default 0).
    /// A real attacker brings its own machine: with 19 the attackers use
    /// only the CPU the nodes leave idle, so the honest latency measured is
    /// the victims' own cost of the attack, not a share of this host's CPU
    /// taken by the attacker. Their achieved volume is in their report.
    #[serde(default)]
    pub nice: u8,
}

/// `action = "publish"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishStep {
    /// Group whose nodes publish. Default `all`.
    #[serde(default = "default_all")]
    pub group: String,
    /// Tools published: in total (round-robin over the group's live nodes in
    /// random order), or per node with `per_node`. Default 1.
    #[serde(default = "default_one")]
    pub count: usize,
    /// `count` is per publishing node.
    #[serde(default)]
    pub per_node: bool,
    /// Tag of every tool (the tool also gets a tag unique to it).
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Pause between two publishes (0: as fast as the API answers).
    #[serde(default, with = "humantime_serde")]
    pub interval: Duration,
    /// Wait at most this long after the last publish for every live node to
    /// store every tool. Default 10 s.
    #[serde(default = "default_ten_s", with = "humantime_serde")]
    pub timeout: Duration,
    /// Publish a tool that really runs (`atr-example-tools:latest`, `/bin/add`);
    /// the publisher must be a provider and the image must exist
    /// (`atr-testnet tools-image`). Default false: a made-up image digest.
    #[serde(default)]
    pub runnable: bool,
    /// Series name in the report. Default `propagation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `action = "wait"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    /// How long.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
}

/// `action = "find"`: lookups of one tag, each from a random live node of the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindStep {
    /// Group whose nodes look up. Default `all`.
    #[serde(default = "default_all")]
    pub group: String,
    /// Tag looked up. Default `testnet`.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Number of lookups (default 1 without `duration`) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// … or keep looking up for this long.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Pause between lookups.
    #[serde(default, with = "humantime_serde")]
    pub interval: Duration,
    /// Ask the network (DHT + fetch), not only the node's own index.
    #[serde(default)]
    pub network: bool,
    /// A lookup succeeds when it returns at least this many tools. Default:
    /// every tool of the tag published (and not revoked) by earlier steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<usize>,
    /// Deadline of one lookup. Default 5 s.
    #[serde(default = "default_five_s", with = "humantime_serde")]
    pub timeout: Duration,
    /// Run alongside the next steps (until `join` or the end).
    #[serde(default)]
    pub background: bool,
    /// Series name. Default `find` or `find_network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `action = "revoke"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeStep {
    /// Revoke tools published by nodes of this group. Default `all`.
    #[serde(default = "default_all")]
    pub group: String,
    /// How many (the oldest active ones first). Default 1.
    #[serde(default = "default_one")]
    pub count: usize,
    /// Only tools of this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Pause between two revocations.
    #[serde(default, with = "humantime_serde")]
    pub interval: Duration,
    /// Wait at most this long for every live node to store each revocation. Default 10 s.
    #[serde(default = "default_ten_s", with = "humantime_serde")]
    pub timeout: Duration,
    /// Series name. Default `revocation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `action = "invoke"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeStep {
    /// Group whose nodes call. Default `all`.
    #[serde(default = "default_all")]
    pub group: String,
    /// Tag of the runnable tools to call (published earlier). Default `testnet`.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Invocations. Default 1.
    #[serde(default = "default_one")]
    pub count: usize,
    /// Invocations in flight at once. Default 1.
    #[serde(default = "default_one")]
    pub concurrency: usize,
    /// Input object. Default `{ a = 1, b = 2 }` (the `add` tool).
    #[serde(default = "default_input")]
    pub input: serde_json::Value,
    /// Deadline of one call. Default 30 s.
    #[serde(default = "default_thirty_s", with = "humantime_serde")]
    pub timeout: Duration,
    /// Run alongside the next steps.
    #[serde(default)]
    pub background: bool,
    /// Series name. Default `invoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `action = "kill"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillStep {
    /// Kill nodes of this group. Default `all`.
    #[serde(default = "default_all")]
    pub group: String,
    /// This many …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// … or this fraction of the group (rounded, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// SIGKILL (default, a crash) or SIGTERM (`graceful = true`).
    #[serde(default)]
    pub graceful: bool,
}

/// `action = "restart"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartStep {
    /// Restart the stopped nodes of this group. Default `all`.
    #[serde(default = "default_all")]
    pub group: String,
    /// Then wait (at most 30 s) until each restarted node has stored every
    /// tool published so far, and record how long that took. Default true.
    #[serde(default = "default_true")]
    pub wait: bool,
}

/// `action = "partition"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionStep {
    /// The sides: each a list of group ids; nodes on different sides cannot
    /// reach each other.
    pub sides: Vec<Vec<String>>,
}

/// A step without settings (`heal`, `join`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyStep {}

impl Step {
    /// The action's name, as in the file.
    pub fn action(&self) -> &'static str {
        match self {
            Step::Publish(_) => "publish",
            Step::Wait(_) => "wait",
            Step::Find(_) => "find",
            Step::Revoke(_) => "revoke",
            Step::Invoke(_) => "invoke",
            Step::Kill(_) => "kill",
            Step::Restart(_) => "restart",
            Step::Partition(_) => "partition",
            Step::Heal(_) => "heal",
            Step::Join(_) => "join",
            Step::Attack(_) => "attack",
        }
    }

    /// Groups the step names.
    fn groups(&self) -> Vec<&str> {
        match self {
            Step::Publish(s) => vec![&s.group],
            Step::Find(s) => vec![&s.group],
            Step::Revoke(s) => vec![&s.group],
            Step::Invoke(s) => vec![&s.group],
            Step::Kill(s) => vec![&s.group],
            Step::Restart(s) => vec![&s.group],
            Step::Partition(s) => s.sides.iter().flatten().map(String::as_str).collect(),
            Step::Attack(s) => vec![&s.group],
            Step::Wait(_) | Step::Heal(_) | Step::Join(_) => vec![],
        }
    }
}

/// The group and role of every node, in node order.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// `(group id, role)` per node.
    pub nodes: Vec<(String, Role)>,
}

impl Assignment {
    /// Indices of the nodes of `group` (`all`: every node).
    pub fn members(&self, group: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| group == "all" || self.nodes[*i].0 == group)
            .collect()
    }
}

impl Scenario {
    /// A built-in scenario by name, or a scenario file by path.
    pub fn load(name_or_path: &str) -> anyhow::Result<Self> {
        if let Some(text) = builtin(name_or_path) {
            return Self::parse(text, name_or_path);
        }
        let path = Path::new(name_or_path);
        ensure!(
            path.exists(),
            "`{name_or_path}` is neither a built-in scenario ({}) nor a file",
            BUILTINS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        );
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks scenario TOML; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let s: Scenario = toml::from_str(text).with_context(|| format!("scenario {origin}"))?;
        s.check().with_context(|| format!("scenario {origin}"))?;
        Ok(s)
    }

    /// Checks what parsing cannot: group references, counts and bounds.
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(!self.name.trim().is_empty(), "`name` is empty");
        ensure!(
            (1..=MAX_NODES).contains(&self.nodes),
            "`nodes` must be 1..={MAX_NODES}"
        );
        ensure!(
            self.network.heartbeat >= Duration::from_millis(50),
            "`network.heartbeat` must be at least 50ms (atrd refuses less)"
        );
        let mut rest = 0;
        for (i, g) in self.groups.iter().enumerate() {
            ensure!(g.id != "all", "group id `all` is reserved (it means every node)");
            ensure!(
                !self.groups[..i].iter().any(|o| o.id == g.id),
                "group `{}` is defined twice",
                g.id
            );
            ensure!(
                !(g.count.is_some() && g.fraction.is_some()),
                "group `{}`: give `count` or `fraction`, not both",
                g.id
            );
            if let Some(f) = g.fraction {
                ensure!(
                    f > 0.0 && f <= 1.0,
                    "group `{}`: `fraction` must be in (0, 1]",
                    g.id
                );
            }
            if g.count.is_none() && g.fraction.is_none() {
                rest += 1;
            }
            if let Some(c) = &g.conditions
                && let Some(l) = c.loss_percent
            {
                ensure!(
                    (0.0..=100.0).contains(&l),
                    "group `{}`: `loss_percent` must be 0..=100",
                    g.id
                );
            }
        }
        ensure!(
            rest <= 1,
            "at most one group may leave out `count` and `fraction`"
        );
        for (i, step) in self.steps.iter().enumerate() {
            let at = || format!("step {} ({})", i + 1, step.action());
            for g in step.groups() {
                ensure!(
                    g == "all" || self.groups.iter().any(|x| x.id == g),
                    "{}: no group `{g}`",
                    at()
                );
            }
            check_step(step).with_context(at)?;
        }
        Ok(())
    }

    /// Assigns `nodes` nodes to the groups, in file order: counted and
    /// fractional groups first, the rest to the group without either (or to
    /// an implicit `rest` group of bystanders).
    pub fn assign(&self, nodes: usize) -> anyhow::Result<Assignment> {
        let mut sizes = Vec::new();
        let mut taken = 0usize;
        for g in &self.groups {
            let n = match (g.count, g.fraction) {
                (Some(c), _) => Some(c),
                (None, Some(f)) => Some(((f * nodes as f64).round() as usize).max(1)),
                (None, None) => None,
            };
            taken += n.unwrap_or(0);
            sizes.push(n);
        }
        if taken > nodes {
            bail!("the groups need {taken} nodes but the network has {nodes}; use --nodes {taken} or more");
        }
        let left = nodes - taken;
        let mut out = Vec::with_capacity(nodes);
        let mut rest_used = false;
        for (g, n) in self.groups.iter().zip(&sizes) {
            let n = n.unwrap_or_else(|| {
                rest_used = true;
                left
            });
            out.extend(std::iter::repeat_n((g.id.clone(), g.role), n));
        }
        if !rest_used {
            out.extend(std::iter::repeat_n(("rest".to_owned(), Role::Bystander), left));
        }
        Ok(Assignment { nodes: out })
    }

    /// Whether any group asks for link conditions.
    pub fn has_conditions(&self) -> bool {
        self.groups.iter().any(|g| g.conditions.is_some())
    }

    /// Whether any step needs docker mode.
    pub fn needs_docker(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::Partition(_) | Step::Heal(_)))
    }
}

fn check_step(step: &Step) -> anyhow::Result<()> {
    let dur = |d: Duration, what: &str| {
        ensure!(d <= MAX_STEP_DURATION, "`{what}` is over {MAX_STEP_DURATION:?}");
        Ok(())
    };
    let ops = |n: usize, what: &str| {
        ensure!(n <= MAX_STEP_OPS, "`{what}` is over {MAX_STEP_OPS}");
        Ok(())
    };
    match step {
        Step::Attack(s) => {
            ensure!(
                ATTACK_BEHAVIOURS.contains(&s.behaviour.as_str()),
                "`behaviour` must be one of {ATTACK_BEHAVIOURS:?}"
            );
            ensure!((1..=100).contains(&s.victims), "`victims` must be 1..=100");
            ensure!(s.nice <= 19, "`nice` must be 0..=19");
            ops(s.count, "count")?;
            ensure!(
                s.duration >= Duration::from_secs(1) && s.duration <= Duration::from_secs(3600),
                "`duration` must be 1s..=1h"
            );
        }
        Step::Publish(s) => {
            ops(s.count, "count")?;
            dur(s.timeout, "timeout")?;
            dur(s.interval, "interval")?;
        }
        Step::Wait(s) => dur(s.duration, "duration")?,
        Step::Find(s) => {
            ensure!(
                s.count.is_none() || s.duration.is_none(),
                "give `count` or `duration`, not both"
            );
            ops(s.count.unwrap_or(1), "count")?;
            dur(s.duration.unwrap_or_default(), "duration")?;
            dur(s.timeout, "timeout")?;
            dur(s.interval, "interval")?;
            if let Some(d) = s.duration {
                ensure!(
                    !s.interval.is_zero() || d <= Duration::from_secs(60),
                    "a find loop over a `duration` needs an `interval` (or lasts at most 60s)"
                );
            }
        }
        Step::Revoke(s) => {
            ops(s.count, "count")?;
            dur(s.timeout, "timeout")?;
            dur(s.interval, "interval")?;
        }
        Step::Invoke(s) => {
            ops(s.count, "count")?;
            ensure!((1..=64).contains(&s.concurrency), "`concurrency` must be 1..=64");
            dur(s.timeout, "timeout")?;
        }
        Step::Kill(s) => {
            ensure!(
                s.count.is_some() != s.fraction.is_some(),
                "give exactly one of `count` and `fraction`"
            );
            if let Some(f) = s.fraction {
                ensure!(f > 0.0 && f <= 1.0, "`fraction` must be in (0, 1]");
            }
        }
        Step::Partition(s) => ensure!(s.sides.len() >= 2, "a partition needs at least two `sides`"),
        Step::Restart(_) | Step::Heal(_) | Step::Join(_) => {}
    }
    Ok(())
}

/// The TOML of a built-in scenario.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses() {
        for (name, text) in BUILTINS {
            let s = Scenario::parse(text, name).unwrap();
            assert_eq!(&s.name, name);
            s.assign(s.nodes).unwrap();
        }
    }

    #[test]
    fn groups_are_assigned_in_order_with_a_rest_group() {
        let s = Scenario::parse(
            r#"
name = "t"
[[group]]
id = "pub"
role = "publisher"
count = 2
[[group]]
id = "others"
role = "bystander"
[[group]]
id = "callers"
role = "caller"
fraction = 0.3
"#,
            "t",
        )
        .unwrap();
        let a = s.assign(10).unwrap();
        assert_eq!(a.members("pub"), vec![0, 1]);
        assert_eq!(a.members("others").len(), 5);
        assert_eq!(a.members("callers"), vec![7, 8, 9]);
        assert_eq!(a.members("all").len(), 10);
        assert!(s.assign(2).is_err());
    }

    #[test]
    fn mistakes_are_named() {
        let bad = [
            ("name = \"t\"\nbogus = 1\n", "unknown field"),
            ("name = \"t\"\n[[step]]\naction = \"fly\"\n", "unknown variant"),
            (
                "name = \"t\"\n[[step]]\naction = \"publish\"\ngroup = \"nope\"\n",
                "no group `nope`",
            ),
            (
                "name = \"t\"\n[[step]]\naction = \"kill\"\n",
                "exactly one of `count` and `fraction`",
            ),
            (
                "name = \"t\"\n[[step]]\naction = \"wait\"\nduration = \"2h\"\n",
                "is over",
            ),
            (
                "name = \"t\"\n[[step]]\naction = \"find\"\ntypo = 1\n",
                "unknown field",
            ),
        ];
        for (text, want) in bad {
            let e = format!("{:#}", Scenario::parse(text, "t").unwrap_err());
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
