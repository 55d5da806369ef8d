//! The DHT keys atr announces and looks up: one per tag and one per name,
//! each sharded over [`TAG_SHARDS`] by the publisher's key (see
//! `docs/architecture.md` §6), and the check that a key has that shape.

/// Number of DHT shards of a tag or name key (see `docs/architecture.md`).
pub const TAG_SHARDS: u8 = 16;

/// The DHT key a publisher announces for a tag: one shard, chosen by the
/// publisher key so a tag's providers spread over [`TAG_SHARDS`] keys.
pub fn tag_key(tag: &str, publisher: &atr_protocol::PublicKey) -> Vec<u8> {
    shard_key("tag", tag, shard_of(publisher))
}

/// The DHT key a publisher announces for a tool name.
pub fn name_key(name: &str, publisher: &atr_protocol::PublicKey) -> Vec<u8> {
    shard_key("name", name, shard_of(publisher))
}

/// Every shard key of a tag or name (`kind` is `tag` or `name`), for lookups.
pub fn all_shard_keys(kind: &str, value: &str) -> Vec<Vec<u8>> {
    (0..TAG_SHARDS).map(|s| shard_key(kind, value, s)).collect()
}

fn shard_of(publisher: &atr_protocol::PublicKey) -> u8 {
    blake3::hash(publisher.as_bytes()).as_bytes()[0] % TAG_SHARDS
}

fn shard_key(kind: &str, value: &str, shard: u8) -> Vec<u8> {
    format!("/atr/{kind}/{value}/{shard}").into_bytes()
}

/// Whether `key` is one atr announces: `/atr/{tag|name}/<valid value>/<shard>`.
pub fn is_atr_key(key: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(key) else {
        return false;
    };
    let Some(rest) = s.strip_prefix("/atr/") else {
        return false;
    };
    let mut parts = rest.split('/');
    let (Some(kind), Some(value), Some(shard), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let shard_ok = shard
        .parse::<u8>()
        .is_ok_and(|n| n < TAG_SHARDS && shard == n.to_string());
    let value_ok = match kind {
        "tag" => atr_protocol::validate::check_tag(value).is_ok(),
        "name" => atr_protocol::validate::check_name(value).is_ok(),
        _ => false,
    };
    shard_ok && value_ok
}
