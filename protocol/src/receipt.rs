//! Receipts: the provider's signed statement of what ran, on what, with what result.
//!
//! A receipt binds the answer to the question: the caller checks that the
//! invocation id, tool id, input hash and output hash are the ones it sent and
//! received, and that the provider it asked signed it.

use serde::{Deserialize, Serialize};

use crate::id::{ContentHash, InvocationId, ToolId};
use crate::key::PublicKey;
use crate::limits::MAX_RECEIPT_BYTES;
use crate::signed::{Signed, SignedBody};
use crate::spec::Limits;
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
}

impl SignedBody for Receipt {
    const KIND: &'static str = "receipt";
    const SIGNING_PREFIX: &'static [u8] = RECEIPT_SIGNING_PREFIX;
    const MAX_BODY_BYTES: usize = MAX_RECEIPT_BYTES;
    const FORMAT: u64 = RECEIPT_FORMAT;

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
