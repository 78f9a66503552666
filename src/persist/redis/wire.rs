//! What the Redis store writes and reads: a binding as a hash value (`encode`/`decode`, the
//! expiry first so the write script can read it), the field that names it, the version field
//! of a hash, and `Diff`, what `update` changed in one address-of-record since the last
//! flush. No I/O here.

use crate::net::{Peer, Transport};
use crate::persist::sqlite::wall_of;
use crate::registrar::Binding;
use crate::{FastMap, FastSet};
use std::time::{Duration, Instant};

/// A hash as read: its version and its `(field, value)` pairs (`#v` left out).
pub(super) type Snapshot = (u64, Vec<(String, String)>);

/// What `update` changed in one address-of-record since the last flush.
#[derive(Default, Debug)]
pub(super) struct Diff {
    pub(super) set: FastMap<String, Binding>,
    pub(super) del: FastSet<String>,
}

impl Diff {
    /// Notes the change from `before` to `after` (later changes win over earlier ones).
    pub(super) fn record(&mut self, before: &[Binding], after: &[Binding]) {
        for b in before {
            let key = field(b);
            if !after.iter().any(|a| field(a) == key) {
                self.set.remove(&key);
                self.del.insert(key);
            }
        }
        for a in after {
            let key = field(a);
            if before.iter().find(|b| field(b) == key) != Some(a) {
                self.del.remove(&key);
                self.set.insert(key, a.clone());
            }
        }
    }

    /// Puts back an older diff that could not be written, under what was noted since.
    pub(super) fn merge_older(&mut self, older: Diff) {
        for (k, b) in older.set {
            if !self.del.contains(&k) {
                self.set.entry(k).or_insert(b);
            }
        }
        for k in older.del {
            if !self.set.contains_key(&k) {
                self.del.insert(k);
            }
        }
    }

    /// Lays this diff over a list read from Redis.
    pub(super) fn overlay(&self, list: &mut Vec<Binding>) {
        list.retain(|b| {
            let k = field(b);
            !self.del.contains(&k) && !self.set.contains_key(&k)
        });
        list.extend(self.set.values().cloned());
    }
}

/// The field of a binding in its address-of-record's hash: the device (RFC 5626 instance)
/// when known, else the Contact, compared case-insensitively as the registrar does.
pub(super) fn field(b: &Binding) -> String {
    match &b.instance {
        Some(i) => i.clone(),
        None => b.contact.to_ascii_lowercase(),
    }
}

/// The one pair of functions that turn a binding into a hash value and back: a field added
/// to `Binding` is one line in each. The expiry (wall clock, ms) comes first, for the script.
pub(super) fn encode(b: &Binding, now: Instant, wall_ms: i64) -> String {
    let body = serde_json::json!({
        "c": b.contact,
        "p": b.contact_params,
        "i": b.instance,
        "id": b.call_id,
        "n": b.cseq,
        "t": b.source.transport.as_str(),
        "s": b.source.addr.to_string(),
        "l": b.local.to_string(),
        "nat": b.nat,
        "ua": b.user_agent,
        "a": b.advertised,
        "path": b.path,
    });
    format!("{} {body}", wall_of(b.expires_at, now, wall_ms))
}

/// `encode` backwards; `Ok(None)` for a binding already expired at `wall_ms`.
pub(super) fn decode(value: &str, now: Instant, wall_ms: i64) -> Result<Option<Binding>, String> {
    let (at, body) = value.split_once(' ').ok_or("no expiry")?;
    let at: i64 = at.parse().map_err(|_| format!("bad expiry {at:?}"))?;
    if at <= wall_ms {
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let need = |k: &str| text(k).ok_or_else(|| format!("no {k:?}"));
    let transport = need("t")?;
    let source = need("s")?;
    let local = need("l")?;
    Ok(Some(Binding {
        contact: need("c")?,
        contact_params: text("p").unwrap_or_default(),
        instance: text("i"),
        call_id: need("id")?,
        cseq: v
            .get("n")
            .and_then(|n| n.as_u64())
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("bad cseq")?,
        expires_at: now + Duration::from_millis((at - wall_ms) as u64),
        source: Peer::new(
            Transport::from_token(&transport)
                .ok_or_else(|| format!("bad transport {transport:?}"))?,
            source
                .parse()
                .map_err(|_| format!("bad source {source:?}"))?,
        ),
        local: local.parse().map_err(|_| format!("bad local {local:?}"))?,
        connection: None,
        nat: v.get("nat").and_then(|x| x.as_bool()).unwrap_or(false),
        user_agent: text("ua"),
        advertised: need("a")?,
        path: v
            .get("path")
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }))
}

/// Takes the `#v` field out of a hash as read.
pub(super) fn split_version(fields: Vec<(String, String)>) -> Snapshot {
    let mut version = 0;
    let fields = fields
        .into_iter()
        .filter(|(f, v)| {
            if f == "#v" {
                version = v.parse().unwrap_or(0);
                false
            } else {
                true
            }
        })
        .collect();
    (version, fields)
}
