//! Receipts: the provider's signed statement of what ran, on what, with what result.
//!
//! A receipt binds the answer to the question: the caller checks that the
//! invocation id, tool id, input hash and output hash are the ones it sent and
//! received, and that the provider it asked signed it.
//!
//! [`verify_receipt`] (and [`verify_receipt_bytes`] for an envelope off the wire) is the one
//! statement of those checks, used by the calling node and by `atr-client`: what a caller
//! knows goes in an [`Expected`], what fails comes out as a [`ReceiptMismatch`] or
//! [`ReceiptError`]. What a receipt cannot prove: that the provider ran the image honestly
//! (it signs what it claims), or that the output is right.

use serde::{Deserialize, Serialize};

use crate::id::{ContentHash, InvocationId, ToolId};
use crate::key::PublicKey;
use crate::limits::MAX_RECEIPT_BYTES;
use crate::policy::Policy;
use crate::signed::{Signed, SignedBody, VerifyError};
use crate::spec::{Limits, SignedSpec};
use crate::validate::{self, ValidationError};

/// The receipt format this crate writes and reads.
pub const RECEIPT_FORMAT: u64 = 1;
/// Domain separation prefix of receipt signatures.
pub const RECEIPT_SIGNING_PREFIX: &[u8] = b"atr-receipt-v1";

/// A signed, verified receipt.
pub type SignedReceipt = Signed<Receipt>;

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InvocationStatus {
    /// The tool wrote one valid JSON value and exited 0.
    Ok,
    /// The tool exited non-zero or wrote invalid output.
    ToolError,
    /// The wall-clock limit was hit; the container was killed.
    Timeout,
    /// The memory limit was hit (OOM kill).
    OutOfMemory,
    /// The output exceeded the spec's cap.
    OutputTooLarge,
    /// The output did not match the output schema.
    OutputInvalid,
}

impl InvocationStatus {
    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::Timeout => "timeout",
            Self::OutOfMemory => "out_of_memory",
            Self::OutputTooLarge => "output_too_large",
            Self::OutputInvalid => "output_invalid",
        }
    }
}

/// What a provider signs after an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Format version, [`RECEIPT_FORMAT`].
    pub v: u64,
    /// The caller's invocation id.
    pub invocation: InvocationId,
    /// The tool that ran.
    pub tool: ToolId,
    /// The image id that ran (the spec's pinned digest).
    pub image_digest: String,
    /// blake3 of the exact input bytes.
    pub input_hash: ContentHash,
    /// blake3 of the exact output bytes returned.
    pub output_hash: ContentHash,
    /// Length of the output, bytes.
    pub output_bytes: u64,
    /// How it ended.
    pub status: InvocationStatus,
    /// Container exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Start, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// End, milliseconds since the Unix epoch.
    pub finished_at_ms: u64,
    /// The limits that were applied.
    pub limits: Limits,
    /// The provider that ran it and signs this receipt.
    pub provider: PublicKey,
    /// [`crate::policy::Policy::hash`] of the policy the provider enforced. Always written
    /// by current providers; absent only in receipts from before policies, which a caller
    /// checking against a spec refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<ContentHash>,
    /// What the run cost, as measured by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// What one run cost, as the provider measured it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Wall time from container start to exit (or kill), milliseconds.
    pub wall_ms: u64,
    /// CPU time of the container's processes, milliseconds; absent when the engine did not
    /// report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Peak memory of the container, bytes; absent when the engine did not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// Bytes the tool sent through the egress proxy (request bytes, tunnel payload).
    pub egress_out_bytes: u64,
    /// Bytes the tool received through the egress proxy.
    pub egress_in_bytes: u64,
}

impl SignedBody for Receipt {
    const KIND: &'static str = "receipt";
    const SIGNING_PREFIX: &'static [u8] = RECEIPT_SIGNING_PREFIX;
    const MAX_BODY_BYTES: usize = MAX_RECEIPT_BYTES;
    const FORMAT: u64 = RECEIPT_FORMAT;

    fn format(&self) -> u64 {
        self.v
    }
    fn signer(&self) -> &PublicKey {
        &self.provider
    }

    fn check(&self) -> Result<(), ValidationError> {
        validate::check_image_digest(&self.image_digest)?;
        if self.finished_at_ms < self.started_at_ms {
            return Err(ValidationError::Inconsistent(
                "a receipt cannot finish before it starts",
            ));
        }
        if self.started_at_ms == 0 {
            return Err(ValidationError::CreatedAtMissing);
        }
        validate::check_limits(&self.limits)
    }
}

/// Why a receipt does not answer the question that was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptMismatch {
    /// Different invocation id.
    #[error("receipt is for invocation {found}, not {expected}")]
    Invocation {
        /// Expected.
        expected: InvocationId,
        /// Found.
        found: InvocationId,
    },
    /// Different tool.
    #[error("receipt is for tool {found}, not {expected}")]
    Tool {
        /// Expected.
        expected: ToolId,
        /// Found.
        found: ToolId,
    },
    /// The input hash is not that of the input sent.
    #[error("receipt input hash does not match the input sent")]
    Input,
    /// The output hash is not that of the output received.
    #[error("receipt output hash does not match the output received")]
    Output,
    /// Signed by another key than the provider asked.
    #[error("receipt signed by {found}, not the provider {expected}")]
    Provider {
        /// Expected.
        expected: PublicKey,
        /// Found.
        found: PublicKey,
    },
    /// The receipt's output length is not that of the output received.
    #[error("receipt says {receipt} output bytes, the output has {actual}")]
    OutputLength {
        /// What the receipt says.
        receipt: u64,
        /// The output's length.
        actual: u64,
    },
    /// The receipt's status is not the one the answer reports.
    #[error("receipt says {}, the answer {}", .receipt.as_str(), .answer.as_str())]
    Status {
        /// What the receipt says.
        receipt: InvocationStatus,
        /// What the answer says.
        answer: InvocationStatus,
    },
    /// The spec given to check against is not the receipt's tool.
    #[error("spec {spec} is not tool {tool}")]
    Spec {
        /// The spec's id.
        spec: ToolId,
        /// The receipt's tool.
        tool: ToolId,
    },
    /// The receipt names another image than the spec pins.
    #[error("receipt names image {receipt}, the spec pins {spec}")]
    Image {
        /// What the receipt names.
        receipt: String,
        /// What the spec pins.
        spec: String,
    },
    /// The receipt's limits are not the spec's.
    #[error("receipt limits are not the spec's limits")]
    Limits,
    /// The receipt binds no policy hash, so it does not say which policy ran.
    #[error("receipt binds no policy hash (a provider from before policies, or one hiding what it enforced)")]
    PolicyMissing,
    /// The provider enforced another policy than the spec declares.
    #[error(
        "receipt policy hash {receipt} is not the spec's policy {spec}: the provider enforced a different policy"
    )]
    Policy {
        /// What the receipt binds.
        receipt: ContentHash,
        /// The spec's [`crate::policy::Policy::hash`].
        spec: ContentHash,
    },
}

/// Why a receipt envelope does not prove an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The envelope does not decode, or its signature does not verify.
    #[error("receipt does not verify: {0}")]
    Envelope(#[source] VerifyError),
    /// It verifies but answers another question.
    #[error(transparent)]
    Mismatch(#[from] ReceiptMismatch),
}

/// What a caller knows about the invocation a receipt should answer.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The invocation id the caller chose; `None` when another party chose it (an API client:
    /// the node picks the id), then any id is accepted.
    pub invocation: Option<&'a InvocationId>,
    /// The tool asked for.
    pub tool: &'a ToolId,
    /// The provider asked, who must have signed.
    pub provider: &'a PublicKey,
    /// The exact input bytes sent.
    pub input: &'a [u8],
    /// The exact output bytes received.
    pub output: &'a [u8],
    /// The status the answer reports, when it reports one apart from the receipt.
    pub status: Option<InvocationStatus>,
    /// The tool's signed spec: when given, its id must be [`Self::tool`] and the receipt's
    /// image digest, limits and policy hash must be the ones it pins.
    pub spec: Option<&'a SignedSpec>,
}

/// Checks that `receipt` (whose signature [`Signed`] has verified) answers `expected`: the
/// invocation, tool and provider, the input and output hashes, the output length, the status
/// and, with a spec, the image, limits and policy hash. The first difference found is returned.
pub fn verify_receipt(receipt: &SignedReceipt, expected: &Expected<'_>) -> Result<(), ReceiptMismatch> {
    let r = receipt.value();
    let invocation = expected.invocation.unwrap_or(&r.invocation);
    r.check_answers(
        invocation,
        expected.tool,
        expected.input,
        expected.output,
        expected.provider,
    )?;
    let actual = expected.output.len() as u64;
    if r.output_bytes != actual {
        return Err(ReceiptMismatch::OutputLength {
            receipt: r.output_bytes,
            actual,
        });
    }
    if let Some(answer) = expected.status
        && r.status != answer
    {
        return Err(ReceiptMismatch::Status {
            receipt: r.status,
            answer,
        });
    }
    if let Some(spec) = expected.spec {
        let id = spec.id();
        if id != r.tool {
            return Err(ReceiptMismatch::Spec {
                spec: id,
                tool: r.tool,
            });
        }
        let s = spec.value();
        if r.image_digest != s.runtime.image_digest {
            return Err(ReceiptMismatch::Image {
                receipt: r.image_digest.clone(),
                spec: s.runtime.image_digest.clone(),
            });
        }
        if r.limits != s.limits {
            return Err(ReceiptMismatch::Limits);
        }
        let policy = Policy::of(s).hash();
        match r.policy_hash {
            None => return Err(ReceiptMismatch::PolicyMissing),
            Some(h) if h != policy => {
                return Err(ReceiptMismatch::Policy {
                    receipt: h,
                    spec: policy,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Decodes a receipt envelope received from anyone, verifies its signature, then checks it
/// with [`verify_receipt`].
pub fn verify_receipt_bytes(envelope: &[u8], expected: &Expected<'_>) -> Result<SignedReceipt, ReceiptError> {
    let signed = SignedReceipt::from_bytes(envelope).map_err(ReceiptError::Envelope)?;
    verify_receipt(&signed, expected)?;
    Ok(signed)
}

impl Receipt {
    /// Checks that this receipt answers `invocation` of `tool` with `input`
    /// and `output` bytes, from `provider`.
    pub fn check_answers(
        &self,
        invocation: &InvocationId,
        tool: &ToolId,
        input: &[u8],
        output: &[u8],
        provider: &PublicKey,
    ) -> Result<(), ReceiptMismatch> {
        if self.invocation != *invocation {
            return Err(ReceiptMismatch::Invocation {
                expected: *invocation,
                found: self.invocation,
            });
        }
        if self.tool != *tool {
            return Err(ReceiptMismatch::Tool {
                expected: *tool,
                found: self.tool,
            });
        }
        if self.provider != *provider {
            return Err(ReceiptMismatch::Provider {
                expected: *provider,
                found: self.provider,
            });
        }
        if self.input_hash != ContentHash::of(input) {
            return Err(ReceiptMismatch::Input);
        }
        if self.output_hash != ContentHash::of(output) {
            return Err(ReceiptMismatch::Output);
        }
        Ok(())
    }
}
