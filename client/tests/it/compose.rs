//! Composition against a real node: the `add` and `echo` example tools run in the node's
//! sandbox, chained by a pipeline, with a fallback and a parallel fan-out; every receipt is
//! verified by the client.

use std::time::Duration;

use atr_client::compose::{Fallback, Mapping, Parallel, Pipeline, Step, StepError, ToolRef};
use atr_client::endpoint::{Endpoint, TokenSource};
use atr_client::{Client, ClientError};
use atr_protocol::receipt::InvocationStatus;
use serde_json::json;

use crate::harness::*;

#[test]
fn a_pipeline_of_two_example_tools_on_a_real_node() {
    let Some(node) = Node::start_sandboxed() else {
        return;
    };
    let add = node.publish_example("add");
    let echo = node.publish_example("echo");
    let token = std::fs::read_to_string(node.dir.path().join("api.token")).unwrap();
    let client = Client::new(Endpoint {
        api: node.api(),
        token: Some(token.trim().to_owned()),
        token_source: TokenSource::Explicit,
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let me = client.node_key().await.unwrap();

        // add → echo: the integer sum becomes a field of echo's input.
        let out = Pipeline::new()
            .then(ToolRef::name("add"), Mapping::whole())
            .then(
                ToolRef::from(echo.as_str()),
                Mapping::new().field("sum", "").constant("note", json!("from add")),
            )
            .run(&client, json!({"a": 2, "b": 3}))
            .await
            .unwrap();
        assert_eq!(out.output, json!({"sum": 5, "note": "from add"}));
        let receipts: Vec<_> = out.receipts().collect();
        assert_eq!(receipts.len(), 2);
        assert_eq!(receipts[0].value().tool.to_string(), add);
        assert_eq!(receipts[1].value().tool.to_string(), echo);
        for r in &receipts {
            assert_eq!(r.value().status, InvocationStatus::Ok);
            assert_eq!(r.value().provider, me);
        }
        assert_eq!(out.steps[1].input, json!({"sum": 5, "note": "from add"}));

        // A failing step stops the pipeline; the receipt of the failed run is kept.
        let e = Pipeline::new()
            .then(ToolRef::name("add"), Mapping::whole())
            .then(ToolRef::name("add"), Mapping::new().field("a", "").constant("b", json!(i64::MAX)))
            .then(ToolRef::name("echo"), Mapping::new().field("never", ""))
            .run(&client, json!({"a": 1, "b": 1}))
            .await
            .unwrap_err();
        assert_eq!(e.step, 1);
        assert!(matches!(e.error, StepError::Failed { status: InvocationStatus::ToolError, .. }), "{e}");
        assert_eq!(e.receipts().count(), 2);

        // Fallback: an unknown tool, then one whose input does not fit, then add.
        let f = Fallback::new()
            .or(ToolRef::name("nosuchtool"))
            .or_step(Step::new(ToolRef::name("add"), Mapping::new().constant("a", json!("x"))))
            .or(ToolRef::name("add"))
            .run(&client, json!({"a": 20, "b": 22}))
            .await
            .unwrap();
        assert_eq!(f.output, json!(42));
        assert_eq!(f.chosen, 2);
        assert!(matches!(f.failures[0].error, StepError::Invoke(ClientError::NotFound { .. })));
        assert!(matches!(
            &f.failures[1].error,
            StepError::Invoke(ClientError::InvalidInput { violations, .. }) if violations.iter().any(|v| v.pointer == "/a")
        ));

        // Parallel: both tools on the same input, gathered within a deadline.
        let p = Parallel::new(Duration::from_secs(60))
            .branch(ToolRef::name("add"))
            .branch(ToolRef::name("echo"))
            .run(&client, json!({"a": 1, "b": 2}))
            .await;
        assert_eq!(p.outputs(), [Some(&json!(3)), Some(&json!({"a": 1, "b": 2}))]);
        assert_eq!(p.receipts().count(), 2);
    });
}
