//! Receipts a page at a time, newest first, from a position in the receipt log.

use super::tables::{RECEIPT_LOG, RECEIPTS};
use super::{Store, StoreError, decode_receipt};
use atr_protocol::SignedReceipt;

impl Store {
    /// Up to `limit` receipts stored before sequence number `before` (all when `None`),
    /// newest first, each with its sequence number, and whether older ones remain. Corrupt
    /// rows are skipped with a warning. The log's keys never change, so a page starting
    /// where the last one ended misses and repeats nothing while receipts are added.
    pub fn receipts_page(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<(u64, SignedReceipt)>, bool), StoreError> {
        let txn = self.read()?;
        let log = txn.open_table(RECEIPT_LOG)?;
        let receipts = txn.open_table(RECEIPTS)?;
        let mut out = Vec::new();
        let rows = log.range::<u64>(..before.unwrap_or(u64::MAX))?;
        for row in rows.rev() {
            let (seq, invocation) = row?;
            if out.len() >= limit {
                return Ok((out, true));
            }
            let invocation = *invocation.value();
            let Some(bytes) = receipts.get(&invocation)? else {
                continue;
            };
            match decode_receipt(&invocation, bytes.value()) {
                Ok(r) => out.push((seq.value(), r)),
                Err(e) => self.skip(&e),
            }
        }
        Ok((out, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::test_support::{receipt, spec};
    use crate::store::StoreOptions;

    #[test]
    fn receipt_pages_go_back_in_time_without_gaps() -> Result<(), StoreError> {
        let store = Store::open_in_memory(StoreOptions::default())?;
        let tool = spec(1, "t", "1.0.0", &[]).id();
        for n in 1..=10u8 {
            store.put_receipt(&receipt(2, n, tool))?;
        }
        let (first, more) = store.receipts_page(None, 4)?;
        assert!(more);
        let mut all: Vec<(u64, SignedReceipt)> = first;
        while let Some(&(last, _)) = all.last() {
            // One arrives between pages: it is newer, so not on a later page.
            store.put_receipt(&receipt(2, 100 + all.len() as u8, tool))?;
            let (page, more) = store.receipts_page(Some(last), 4)?;
            all.extend(page);
            if !more {
                break;
            }
        }
        let invocations: Vec<u8> = all.iter().map(|(_, r)| r.value().invocation.0[0]).collect();
        assert_eq!(invocations, (1..=10u8).rev().collect::<Vec<_>>());
        Ok(())
    }
}
