//! Client-side composition of tools: [`Pipeline`] (each output feeds the next
//! tool's input through a [`Mapping`]), [`Fallback`] (try tools in order until
//! one succeeds) and [`Parallel`] (fan out one input, gather per-branch results
//! within a deadline).
//!
//! Every step is one invocation through an [`Invoke`] backend — a [`Client`],
//! whose [`Client::invoke_verified`] checks each receipt before anything is
//! returned — and every result keeps the verified receipts of all the runs it
//! made ([`PipelineOutput::receipts`], …), failed runs included. Each step has
//! a timeout ([`DEFAULT_STEP_TIMEOUT`] unless set); a timed-out call is
//! dropped, which closes its HTTP request.
//!
//! A step *fails* when the call fails ([`StepError::Invoke`]), when the tool
//! ran but did not succeed (status other than `ok`: [`StepError::Failed`],
//! which still carries the signed receipt), when it times out
//! ([`StepError::Timeout`]) or when its input cannot be built
//! ([`StepError::Mapping`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use atr_client::compose::{Mapping, Pipeline, ToolRef};
//! use serde_json::json;
//!
//! let client = atr_client::Client::from_env()?;
//! // add → echo: the sum (a bare integer) becomes the field `sum` of echo's input.
//! let out = Pipeline::new()
//!     .then(ToolRef::name("add"), Mapping::whole())
//!     .then(ToolRef::name("echo"), Mapping::new().field("sum", ""))
//!     .run(&client, json!({"a": 2, "b": 3}))
//!     .await?;
//! assert_eq!(out.output, json!({"sum": 5}));
//! assert_eq!(out.receipts().count(), 2);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atr_protocol::api::InvokeRequest;
use atr_protocol::receipt::InvocationStatus;
use atr_protocol::{PublicKey, SignedReceipt, ToolId};
use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::client::{Client, DEFAULT_INVOKE_TIMEOUT, Invocation};
use crate::error::ClientError;

/// Timeout of a step that sets none: the node's own invocation deadline.
pub const DEFAULT_STEP_TIMEOUT: Duration = DEFAULT_INVOKE_TIMEOUT;

/// What runs the steps: one verified invocation per call. [`Client`] is the real one; tests
/// may fake it.
pub trait Invoke: Send + Sync {
    /// Runs one invocation and returns it with its verified receipt.
    fn invoke_tool(&self, req: InvokeRequest) -> BoxFuture<'_, Result<Invocation, ClientError>>;
}

impl Invoke for Client {
    fn invoke_tool(&self, req: InvokeRequest) -> BoxFuture<'_, Result<Invocation, ClientError>> {
        Box::pin(async move { self.invoke_verified(&req).await })
    }
}

impl<T: Invoke + ?Sized> Invoke for Arc<T> {
    fn invoke_tool(&self, req: InvokeRequest) -> BoxFuture<'_, Result<Invocation, ClientError>> {
        (**self).invoke_tool(req)
    }
}

/// Which tool a step runs: an exact spec, or a name resolved by the node (with an optional
/// semver requirement and publisher).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolRef {
    /// This exact spec.
    Id(ToolId),
    /// The newest version of `name` matching `version`, from `publisher` (or the node's
    /// trusted publishers).
    Name {
        /// Tool name.
        name: String,
        /// Semver requirement, e.g. `^1.2`.
        version: Option<String>,
        /// Publisher.
        publisher: Option<PublicKey>,
    },
}

impl ToolRef {
    /// A tool by name.
    pub fn name(name: impl Into<String>) -> Self {
        Self::Name {
            name: name.into(),
            version: None,
            publisher: None,
        }
    }

    /// With a semver requirement (no effect on an id).
    pub fn version(mut self, req: impl Into<String>) -> Self {
        if let Self::Name { version, .. } = &mut self {
            *version = Some(req.into());
        }
        self
    }

    /// From this publisher (no effect on an id).
    pub fn publisher(mut self, key: PublicKey) -> Self {
        if let Self::Name { publisher, .. } = &mut self {
            *publisher = Some(key);
        }
        self
    }

    /// The API request that runs this tool on `input`.
    pub fn request(&self, input: Value) -> InvokeRequest {
        match self {
            Self::Id(id) => InvokeRequest {
                id: Some(*id),
                name: None,
                version: None,
                publisher: None,
                input,
            },
            Self::Name {
                name,
                version,
                publisher,
            } => InvokeRequest {
                id: None,
                name: Some(name.clone()),
                version: version.clone(),
                publisher: *publisher,
                input,
            },
        }
    }
}

impl From<ToolId> for ToolRef {
    fn from(id: ToolId) -> Self {
        Self::Id(id)
    }
}

impl From<&str> for ToolRef {
    /// A full tool id (`atr_…`) is an id; anything else is a name.
    fn from(s: &str) -> Self {
        s.parse::<ToolId>().map_or_else(|_| Self::name(s), Self::Id)
    }
}

impl fmt::Display for ToolRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => f.write_str(&id.fmt_short()),
            Self::Name { name, version, .. } => match version {
                Some(v) => write!(f, "{name}@{v}"),
                None => f.write_str(name),
            },
        }
    }
}

type MapFn = Arc<dyn Fn(&Value) -> Result<Value, String> + Send + Sync>;

#[derive(Clone)]
enum Base {
    /// An empty object.
    Empty,
    /// The previous output itself.
    Whole,
    /// A function of the previous output.
    Func(MapFn),
}

#[derive(Debug, Clone)]
enum Entry {
    Pointer { field: String, pointer: String },
    Const { field: String, value: Value },
}

/// How a step's input is built from the previous output (or, for the first step of a
/// pipeline and for fallback and parallel branches, from the input given to `run`).
///
/// It starts from a base — an empty object ([`Mapping::new`]), the previous output itself
/// ([`Mapping::whole`], the default) or what a closure makes of it ([`Mapping::with`]) — then
/// sets fields: [`Mapping::field`] copies the value at a JSON pointer of the previous output
/// (`""` is the whole output), [`Mapping::constant`] sets a fixed value. A pointer with
/// nothing behind it is a [`StepError::Mapping`]. A tool's input must be a JSON object; the
/// node refuses anything else.
#[derive(Clone)]
pub struct Mapping {
    base: Base,
    entries: Vec<Entry>,
}

impl Default for Mapping {
    fn default() -> Self {
        Self::whole()
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match self.base {
            Base::Empty => "empty",
            Base::Whole => "whole",
            Base::Func(_) => "closure",
        };
        f.debug_struct("Mapping")
            .field("base", &base)
            .field("entries", &self.entries)
            .finish()
    }
}

impl Mapping {
    /// Starts from an empty object.
    pub fn new() -> Self {
        Self {
            base: Base::Empty,
            entries: Vec::new(),
        }
    }

    /// Starts from the previous output as it is.
    pub fn whole() -> Self {
        Self {
            base: Base::Whole,
            entries: Vec::new(),
        }
    }

    /// Starts from what `f` makes of the previous output (`Err` is a [`StepError::Mapping`]).
    pub fn with(f: impl Fn(&Value) -> Result<Value, String> + Send + Sync + 'static) -> Self {
        Self {
            base: Base::Func(Arc::new(f)),
            entries: Vec::new(),
        }
    }

    /// Sets `field` to the value at JSON `pointer` of the previous output (`""`: all of it).
    pub fn field(mut self, field: impl Into<String>, pointer: impl Into<String>) -> Self {
        self.entries.push(Entry::Pointer {
            field: field.into(),
            pointer: pointer.into(),
        });
        self
    }

    /// Sets `field` to `value`.
    pub fn constant(mut self, field: impl Into<String>, value: Value) -> Self {
        self.entries.push(Entry::Const {
            field: field.into(),
            value,
        });
        self
    }

    /// Builds the next input from `prev`.
    pub fn apply(&self, prev: &Value) -> Result<Value, String> {
        let base = match &self.base {
            Base::Empty => Value::Object(Map::new()),
            Base::Whole => prev.clone(),
            Base::Func(f) => f(prev)?,
        };
        if self.entries.is_empty() {
            return Ok(base);
        }
        let Value::Object(mut obj) = base else {
            return Err(format!(
                "cannot set fields on {}: the base of the mapping is not an object",
                kind(&base)
            ));
        };
        for e in &self.entries {
            match e {
                Entry::Pointer { field, pointer } => {
                    let v = prev.pointer(pointer).ok_or_else(|| {
                        format!("the previous output has nothing at `{pointer}` (for `{field}`)")
                    })?;
                    obj.insert(field.clone(), v.clone());
                }
                Entry::Const { field, value } => {
                    obj.insert(field.clone(), value.clone());
                }
            }
        }
        Ok(Value::Object(obj))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One step: a tool, how its input is built, and its timeout.
#[derive(Debug, Clone)]
pub struct Step {
    /// The tool.
    pub tool: ToolRef,
    /// How its input is built.
    pub mapping: Mapping,
    /// Its timeout (else the composition's).
    pub timeout: Option<Duration>,
}

impl Step {
    /// A step running `tool` on the mapped input, with the composition's timeout.
    pub fn new(tool: impl Into<ToolRef>, mapping: Mapping) -> Self {
        Self {
            tool: tool.into(),
            mapping,
            timeout: None,
        }
    }

    /// With its own timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
}

/// A completed run of one step.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepRun {
    /// The tool as the step named it.
    pub tool: ToolRef,
    /// The input it was given.
    pub input: Value,
    /// The invocation, with its verified receipt.
    pub invocation: Invocation,
    /// How long the call took.
    pub elapsed: Duration,
}

/// Why a step did not produce an output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The call failed (the node refused, no provider, a receipt that does not verify, …).
    #[error(transparent)]
    Invoke(#[from] ClientError),
    /// The tool ran but did not succeed. Its signed receipt is in `invocation`.
    #[error("the tool failed: {message}")]
    Failed {
        /// How it ended.
        status: InvocationStatus,
        /// The error the provider reported.
        message: String,
        /// The run, with its verified receipt.
        invocation: Box<Invocation>,
    },
    /// No answer within the step's timeout (or the parallel deadline).
    #[error("no answer within {} s", after.as_secs_f32())]
    Timeout {
        /// The limit that passed.
        after: Duration,
    },
    /// The step's input could not be built from the previous output.
    #[error("cannot build the input: {0}")]
    Mapping(String),
}

impl StepError {
    /// The run of a tool that failed after running (it has a receipt).
    pub fn invocation(&self) -> Option<&Invocation> {
        match self {
            Self::Failed { invocation, .. } => Some(invocation),
            _ => None,
        }
    }
}

/// Runs one step on `prev` within `timeout`.
async fn run_step<I: Invoke + ?Sized>(
    invoker: &I,
    tool: &ToolRef,
    mapping: &Mapping,
    prev: &Value,
    timeout: Duration,
) -> Result<StepRun, StepError> {
    let input = mapping.apply(prev).map_err(StepError::Mapping)?;
    let started = Instant::now();
    let call = invoker.invoke_tool(tool.request(input.clone()));
    let invocation = match tokio::time::timeout(timeout, call).await {
        Ok(r) => r?,
        Err(_) => return Err(StepError::Timeout { after: timeout }),
    };
    if let Some(message) = invocation.error_message() {
        return Err(StepError::Failed {
            status: invocation.response.status,
            message,
            invocation: Box::new(invocation),
        });
    }
    Ok(StepRun {
        tool: tool.clone(),
        input,
        invocation,
        elapsed: started.elapsed(),
    })
}

/// Tools in sequence, each output mapped into the next input. Stops at the first failure.
#[derive(Debug, Clone)]
pub struct Pipeline {
    steps: Vec<Step>,
    timeout: Duration,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

/// What a pipeline produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PipelineOutput {
    /// The last step's output.
    pub output: Value,
    /// Every step's run, in order.
    pub steps: Vec<StepRun>,
}

impl PipelineOutput {
    /// The verified receipts of every step, in order.
    pub fn receipts(&self) -> impl Iterator<Item = &SignedReceipt> {
        self.steps.iter().map(|s| &s.invocation.receipt)
    }
}

/// A pipeline stopped at a failed step.
#[derive(Debug, thiserror::Error)]
#[error("pipeline step {} of {total} ({tool}): {error}", step + 1)]
#[non_exhaustive]
pub struct PipelineError {
    /// Index of the failed step (0-based).
    pub step: usize,
    /// How many steps the pipeline has.
    pub total: usize,
    /// Its tool.
    pub tool: ToolRef,
    /// Why it failed.
    #[source]
    pub error: StepError,
    /// The steps that completed before it (their receipts are valid).
    pub completed: Vec<StepRun>,
}

impl PipelineError {
    /// The verified receipts of every run made: the completed steps, then the failed one if
    /// its tool ran.
    pub fn receipts(&self) -> impl Iterator<Item = &SignedReceipt> {
        self.completed
            .iter()
            .map(|s| &s.invocation.receipt)
            .chain(self.error.invocation().map(|i| &i.receipt))
    }
}

impl Pipeline {
    /// An empty pipeline (it returns its input unchanged) with [`DEFAULT_STEP_TIMEOUT`].
    pub fn new() -> Self {
        Self {
            steps: Vec::new(),
            timeout: DEFAULT_STEP_TIMEOUT,
        }
    }

    /// Appends a step running `tool` on the previous output mapped by `mapping`.
    pub fn then(self, tool: impl Into<ToolRef>, mapping: Mapping) -> Self {
        self.step(Step::new(tool, mapping))
    }

    /// Appends a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// The timeout of steps that set none.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Runs the steps in order: the first step's mapping is applied to `input`, each next
    /// one's to the previous output.
    pub async fn run<I: Invoke + ?Sized>(
        &self,
        invoker: &I,
        input: Value,
    ) -> Result<PipelineOutput, PipelineError> {
        let mut prev = input;
        let mut done: Vec<StepRun> = Vec::with_capacity(self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            let timeout = s.timeout.unwrap_or(self.timeout);
            match run_step(invoker, &s.tool, &s.mapping, &prev, timeout).await {
                Ok(run) => {
                    prev = run.invocation.response.output.clone();
                    done.push(run);
                }
                Err(error) => {
                    return Err(PipelineError {
                        step: i,
                        total: self.steps.len(),
                        tool: s.tool.clone(),
                        error,
                        completed: done,
                    });
                }
            }
        }
        Ok(PipelineOutput {
            output: prev,
            steps: done,
        })
    }
}

/// Alternatives tried in order on the same input until one succeeds.
#[derive(Debug, Clone)]
pub struct Fallback {
    alternatives: Vec<Step>,
    timeout: Duration,
}

impl Default for Fallback {
    fn default() -> Self {
        Self::new()
    }
}

/// One alternative that did not succeed.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    /// Its tool.
    pub tool: ToolRef,
    /// Why.
    pub error: StepError,
}

/// What a fallback produced.
#[derive(Debug)]
#[non_exhaustive]
pub struct FallbackOutput {
    /// The output of the alternative that succeeded.
    pub output: Value,
    /// Its index among the alternatives.
    pub chosen: usize,
    /// Its run.
    pub run: StepRun,
    /// The alternatives tried before it, in order.
    pub failures: Vec<Failure>,
}

impl FallbackOutput {
    /// The verified receipts of every run made: failed runs first, then the one that
    /// succeeded.
    pub fn receipts(&self) -> impl Iterator<Item = &SignedReceipt> {
        self.failures
            .iter()
            .filter_map(|f| f.error.invocation().map(|i| &i.receipt))
            .chain(std::iter::once(&self.run.invocation.receipt))
    }
}

/// Every alternative failed (or there was none).
#[derive(Debug, thiserror::Error)]
#[error("every alternative failed: {}", summary(failures))]
#[non_exhaustive]
pub struct FallbackError {
    /// Each alternative's failure, in order.
    pub failures: Vec<Failure>,
}

fn summary(failures: &[Failure]) -> String {
    if failures.is_empty() {
        return "there were none".into();
    }
    failures
        .iter()
        .map(|f| format!("{}: {}", f.tool, f.error))
        .collect::<Vec<_>>()
        .join("; ")
}

impl FallbackError {
    /// The verified receipts of the alternatives that ran and failed.
    pub fn receipts(&self) -> impl Iterator<Item = &SignedReceipt> {
        self.failures
            .iter()
            .filter_map(|f| f.error.invocation().map(|i| &i.receipt))
    }
}

impl Fallback {
    /// No alternatives yet, [`DEFAULT_STEP_TIMEOUT`] each.
    pub fn new() -> Self {
        Self {
            alternatives: Vec::new(),
            timeout: DEFAULT_STEP_TIMEOUT,
        }
    }

    /// Adds an alternative running `tool` on the input as it is.
    pub fn or(self, tool: impl Into<ToolRef>) -> Self {
        self.or_step(Step::new(tool, Mapping::whole()))
    }

    /// Adds an alternative with its own mapping of the input and timeout.
    pub fn or_step(mut self, step: Step) -> Self {
        self.alternatives.push(step);
        self
    }

    /// The timeout of alternatives that set none.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Tries each alternative in order on `input`; the first success wins.
    pub async fn run<I: Invoke + ?Sized>(
        &self,
        invoker: &I,
        input: Value,
    ) -> Result<FallbackOutput, FallbackError> {
        let mut failures = Vec::new();
        for (i, s) in self.alternatives.iter().enumerate() {
            let timeout = s.timeout.unwrap_or(self.timeout);
            match run_step(invoker, &s.tool, &s.mapping, &input, timeout).await {
                Ok(run) => {
                    return Ok(FallbackOutput {
                        output: run.invocation.response.output.clone(),
                        chosen: i,
                        run,
                        failures,
                    });
                }
                Err(error) => failures.push(Failure {
                    tool: s.tool.clone(),
                    error,
                }),
            }
        }
        Err(FallbackError { failures })
    }
}

/// Branches run at once on the same input, gathered within a deadline.
#[derive(Debug, Clone)]
pub struct Parallel {
    branches: Vec<Step>,
    deadline: Duration,
}

/// What each branch of a [`Parallel`] produced, in the order the branches were added.
#[derive(Debug)]
#[non_exhaustive]
pub struct ParallelOutput {
    /// Each branch's run or failure (a branch past the deadline is [`StepError::Timeout`]).
    pub branches: Vec<Result<StepRun, Failure>>,
}

impl ParallelOutput {
    /// Each branch's output, `None` where it failed.
    pub fn outputs(&self) -> Vec<Option<&Value>> {
        self.branches
            .iter()
            .map(|b| b.as_ref().ok().map(|r| &r.invocation.response.output))
            .collect()
    }

    /// How many branches succeeded.
    pub fn succeeded(&self) -> usize {
        self.branches.iter().filter(|b| b.is_ok()).count()
    }

    /// The verified receipts of every run made, in branch order (failed runs included).
    pub fn receipts(&self) -> impl Iterator<Item = &SignedReceipt> {
        self.branches.iter().filter_map(|b| match b {
            Ok(r) => Some(&r.invocation.receipt),
            Err(f) => f.error.invocation().map(|i| &i.receipt),
        })
    }
}

impl Parallel {
    /// No branches yet; gathers for at most `deadline` (each branch also stops at its own
    /// timeout, when it sets a shorter one).
    pub fn new(deadline: Duration) -> Self {
        Self {
            branches: Vec::new(),
            deadline,
        }
    }

    /// Adds a branch running `tool` on the input as it is.
    pub fn branch(self, tool: impl Into<ToolRef>) -> Self {
        self.branch_step(Step::new(tool, Mapping::whole()))
    }

    /// Adds a branch with its own mapping of the input and timeout.
    pub fn branch_step(mut self, step: Step) -> Self {
        self.branches.push(step);
        self
    }

    /// Runs every branch at once on `input` and waits for all of them, or the deadline:
    /// branches still running then are dropped and reported as [`StepError::Timeout`].
    pub async fn run<I: Invoke + ?Sized>(&self, invoker: &I, input: Value) -> ParallelOutput {
        let calls = self.branches.iter().map(|s| {
            let timeout = s.timeout.map_or(self.deadline, |t| t.min(self.deadline));
            let input = &input;
            async move {
                run_step(invoker, &s.tool, &s.mapping, input, timeout)
                    .await
                    .map_err(|error| Failure {
                        tool: s.tool.clone(),
                        error,
                    })
            }
        });
        ParallelOutput {
            branches: futures::future::join_all(calls).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use atr_protocol::{SecretKey, SignedSpec};
    use serde_json::json;

    use super::*;
    use crate::client::testing;

    type Behaviour = Box<dyn Fn(&Value) -> Result<(Value, InvocationStatus), ClientError> + Send + Sync>;

    /// A node with a few tools by name: each answers with a really signed receipt, after an
    /// optional delay.
    struct FakeNode {
        provider: SecretKey,
        tools: HashMap<String, (SignedSpec, Behaviour, Duration)>,
        calls: Mutex<Vec<String>>,
    }

    impl FakeNode {
        fn new() -> Self {
            Self {
                provider: testing::key(9),
                tools: HashMap::new(),
                calls: Mutex::new(Vec::new()),
            }
        }

        fn tool(
            mut self,
            name: &str,
            delay: Duration,
            f: impl Fn(&Value) -> Result<(Value, InvocationStatus), ClientError> + Send + Sync + 'static,
        ) -> Self {
            let spec = testing::spec(name, "1.0.0", &testing::key(1));
            self.tools.insert(name.into(), (spec, Box::new(f), delay));
            self
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Invoke for FakeNode {
        fn invoke_tool(&self, req: InvokeRequest) -> BoxFuture<'_, Result<Invocation, ClientError>> {
            Box::pin(async move {
                let name = req.name.clone().unwrap_or_default();
                self.calls.lock().unwrap().push(name.clone());
                let Some((spec, f, delay)) = self.tools.get(&name) else {
                    return Err(ClientError::NotFound {
                        message: format!("no tool {name}"),
                    });
                };
                tokio::time::sleep(*delay).await;
                let (output, status) = f(&req.input)?;
                let (resp, _) = testing::answer(spec, &self.provider, &req.input, output, status);
                // Verified as the real client would.
                let receipt =
                    crate::client::verify_invocation(&req, &resp, &self.provider.public(), Some(spec))?;
                Ok(Invocation {
                    response: resp,
                    receipt,
                    local: false,
                })
            })
        }
    }

    fn node() -> FakeNode {
        FakeNode::new()
            .tool("add", Duration::ZERO, |v| {
                let a = v["a"].as_i64().ok_or_else(|| ClientError::InvalidInput {
                    message: "input does not match the tool's input schema: /a".into(),
                    violations: Vec::new(),
                    total: 1,
                })?;
                Ok((json!(a + v["b"].as_i64().unwrap_or(0)), InvocationStatus::Ok))
            })
            .tool("echo", Duration::ZERO, |v| Ok((v.clone(), InvocationStatus::Ok)))
            .tool("broken", Duration::ZERO, |_| {
                Ok((
                    json!({"error": {"status": "tool_error", "message": "the tool exited with code 3"}}),
                    InvocationStatus::ToolError,
                ))
            })
            .tool("slow", Duration::from_secs(60), |v| {
                Ok((v.clone(), InvocationStatus::Ok))
            })
    }

    #[test]
    fn mappings_build_inputs() {
        let prev = json!({"sum": 5, "deep": {"list": [1, 2]}});
        assert_eq!(Mapping::whole().apply(&prev).unwrap(), prev);
        let m = Mapping::new()
            .field("a", "/sum")
            .field("b", "/deep/list/1")
            .constant("mode", json!("x"));
        assert_eq!(m.apply(&prev).unwrap(), json!({"a": 5, "b": 2, "mode": "x"}));
        assert_eq!(
            Mapping::whole()
                .constant("extra", json!(true))
                .apply(&prev)
                .unwrap()["extra"],
            true
        );
        assert_eq!(
            Mapping::new().field("v", "").apply(&json!(7)).unwrap(),
            json!({"v": 7})
        );
        let e = Mapping::new().field("a", "/nope").apply(&prev).unwrap_err();
        assert!(e.contains("`/nope`"), "{e}");
        let f = Mapping::with(|v| Ok(json!({"text": v.to_string()})));
        assert_eq!(f.apply(&json!(3)).unwrap(), json!({"text": "3"}));
        assert!(Mapping::whole().field("x", "").apply(&json!(3)).is_err());
        assert_eq!(ToolRef::from("add"), ToolRef::name("add"));
        assert_eq!(ToolRef::name("add").version("^1").to_string(), "add@^1");
    }

    #[tokio::test]
    async fn a_pipeline_feeds_each_output_into_the_next_step() {
        let node = node();
        let p = Pipeline::new()
            .then("add", Mapping::whole())
            .then("add", Mapping::new().field("a", "").constant("b", json!(10)))
            .then("echo", Mapping::new().field("total", ""));
        let out = p.run(&node, json!({"a": 2, "b": 3})).await.unwrap();
        assert_eq!(out.output, json!({"total": 15}));
        assert_eq!(out.steps.len(), 3);
        assert_eq!(out.steps[1].input, json!({"a": 5, "b": 10}));
        let receipts: Vec<_> = out.receipts().collect();
        assert_eq!(receipts.len(), 3);
        assert_eq!(receipts[2].value().tool, out.steps[2].invocation.response.id);
    }

    #[tokio::test]
    async fn a_pipeline_stops_at_the_failed_step_and_keeps_the_receipts() {
        let node = node();
        let p = Pipeline::new()
            .then("add", Mapping::whole())
            .then("broken", Mapping::new().field("n", ""))
            .then("echo", Mapping::whole());
        let e = p.run(&node, json!({"a": 1, "b": 1})).await.unwrap_err();
        assert_eq!(e.step, 1);
        assert!(matches!(
            e.error,
            StepError::Failed {
                status: InvocationStatus::ToolError,
                ..
            }
        ));
        assert!(e.to_string().contains("step 2 of 3 (broken)"), "{e}");
        assert!(e.to_string().contains("exited with code 3"), "{e}");
        assert_eq!(e.completed.len(), 1);
        assert_eq!(e.receipts().count(), 2, "the failed run has a receipt too");
        assert_eq!(node.calls(), ["add", "broken"]);

        let e = Pipeline::new()
            .then("add", Mapping::whole())
            .then("echo", Mapping::new().field("x", "/missing"))
            .run(&node, json!({"a": 1, "b": 1}))
            .await
            .unwrap_err();
        assert!(matches!(e.error, StepError::Mapping(_)), "{e}");
    }

    #[tokio::test]
    async fn steps_time_out() {
        let node = node();
        let e = Pipeline::new()
            .step(Step::new("slow", Mapping::whole()).timeout(Duration::from_millis(100)))
            .run(&node, json!({}))
            .await
            .unwrap_err();
        assert!(
            matches!(e.error, StepError::Timeout { after } if after == Duration::from_millis(100)),
            "{e}"
        );
        let e = Pipeline::new()
            .timeout(Duration::from_millis(300))
            .then("slow", Mapping::whole())
            .run(&node, json!({}))
            .await
            .unwrap_err();
        assert!(matches!(e.error, StepError::Timeout { .. }), "{e}");
    }

    #[tokio::test]
    async fn a_fallback_tries_in_order_until_one_succeeds() {
        let node = node();
        let f = Fallback::new().or("missing").or("broken").or("add").or("echo");
        let out = f.run(&node, json!({"a": 4, "b": 5})).await.unwrap();
        assert_eq!(out.output, json!(9));
        assert_eq!(out.chosen, 2);
        assert_eq!(out.failures.len(), 2);
        assert!(matches!(
            out.failures[0].error,
            StepError::Invoke(ClientError::NotFound { .. })
        ));
        assert_eq!(out.receipts().count(), 2, "broken's receipt and add's");
        assert_eq!(node.calls(), ["missing", "broken", "add"]);

        let e = Fallback::new()
            .or("broken")
            .or("missing")
            .run(&node, json!({}))
            .await
            .unwrap_err();
        assert_eq!(e.failures.len(), 2);
        assert_eq!(e.receipts().count(), 1);
        assert!(
            e.to_string().starts_with("every alternative failed: broken: "),
            "{e}"
        );
        assert!(Fallback::new().run(&node, json!({})).await.is_err());
    }

    #[tokio::test]
    async fn parallel_gathers_within_the_deadline() {
        let node = node();
        let started = Instant::now();
        let out = Parallel::new(Duration::from_millis(500))
            .branch("add")
            .branch("slow")
            .branch("broken")
            .branch_step(Step::new("echo", Mapping::new().field("copy", "/a")))
            .run(&node, json!({"a": 1, "b": 2}))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited for the deadline only"
        );
        assert_eq!(out.branches.len(), 4);
        assert_eq!(out.succeeded(), 2);
        assert_eq!(
            out.outputs(),
            [Some(&json!(3)), None, None, Some(&json!({"copy": 1}))]
        );
        let slow = out.branches[1].as_ref().unwrap_err();
        assert!(matches!(slow.error, StepError::Timeout { .. }));
        assert_eq!(out.receipts().count(), 3, "add, broken (failed) and echo");
    }
}
