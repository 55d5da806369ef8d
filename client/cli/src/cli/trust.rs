//! `atr trust add|remove|list`: the node's one trust list.

use atr_protocol::PublicKey;
use atr_protocol::trust::{Standing, TrustList, TrustSource};

use super::Usage;
use super::args::TrustCommand;
use super::commands::Ctx;
use super::output::{Table, out, outln, print_json, with_spinner};

fn parse_key(text: &str) -> anyhow::Result<PublicKey> {
    text.trim().parse::<PublicKey>().map_err(|e| {
        let shown: String = text.chars().take(80).flat_map(char::escape_default).collect();
        Usage(format!(
            "`{shown}` is not a publisher's peer id ({e}); `atr show TOOL` prints its publisher's"
        ))
        .into()
    })
}

pub(crate) async fn trust(ctx: &Ctx, cmd: TrustCommand) -> anyhow::Result<()> {
    match cmd {
        TrustCommand::Add { publisher, label } => {
            let key = parse_key(&publisher)?;
            let r = with_spinner("trusting", ctx.client.trust_add(&key, label.as_deref())).await?;
            if ctx.json {
                return print_json(&r);
            }
            if r.changed {
                outln!("trusted {key}")?;
            } else {
                outln!("already trusted {key}")?;
            }
        }
        TrustCommand::Remove { publisher } => {
            let key = parse_key(&publisher)?;
            let r = with_spinner("removing", ctx.client.trust_remove(&key)).await?;
            if ctx.json {
                return print_json(&r);
            }
            if r.changed {
                outln!("no longer trusted {key}")?;
            } else {
                outln!("{key} was not trusted")?;
            }
        }
        TrustCommand::List => {
            let list = with_spinner("asking the node", ctx.client.trust_list()).await?;
            if ctx.json {
                return print_json(&list);
            }
            outln!("this node: {} (its own tools are always trusted)", list.node)?;
            if list.entries.is_empty() {
                outln!(
                    "no other publisher is trusted: `atr trust add PEER_ID` trusts one (`atr mcp` and \
                     `atr export` serve only own and trusted publishers' tools unless --any-publisher)"
                )?;
                return Ok(());
            }
            let mut t = Table::new(&["PUBLISHER", "LABEL", "SOURCE"]);
            for e in &list.entries {
                t.row(vec![
                    e.publisher.to_string(),
                    e.label.clone().unwrap_or_default(),
                    match e.source {
                        TrustSource::Config => "config".into(),
                        _ => "atr trust".into(),
                    },
                ]);
            }
            out!("{}", t.render())?;
        }
    }
    Ok(())
}

/// The PUBLISHER cell of find and search tables: `own`, `trusted LABEL|KEY`, or
/// `untrusted KEY` (short keys).
pub(crate) fn publisher_cell(trust: Option<&TrustList>, publisher: &PublicKey) -> String {
    let Some(t) = trust else {
        return publisher.fmt_short();
    };
    match t.standing(publisher) {
        Standing::Own => "own".into(),
        Standing::Trusted => match t.label(publisher) {
            Some(l) => format!("trusted {}", super::output::cut(l, 20)),
            None => format!("trusted {}", publisher.fmt_short()),
        },
        _ => format!("untrusted {}", publisher.fmt_short()),
    }
}
