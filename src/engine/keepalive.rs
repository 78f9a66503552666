//! NAT keep-alive for registered phones (`[registrar] nat_keepalive`), as FreeSWITCH's
//! `nat-options-ping` and Kamailio's nathelper do: an out-of-dialog OPTIONS goes to every UDP
//! binding flagged NAT'd, to the address its REGISTER came from, every interval, so the
//! router's mapping stays open and incoming calls reach the phone. Any response, whatever its
//! status (404, 405, 501 included), proves the phone is alive; a binding that leaves
//! `MAX_MISSES` pings in a row unanswered (Timer F or a transport error such as ICMP port
//! unreachable) is removed.
//!
//! Timers are data: one deadline per binding, kept in an ordered set, the earliest of which
//! the engine's `poll_timeout` reports. A binding's first ping is one interval after its
//! REGISTER (so pings spread as registrations do); the next one an interval after the last
//! ping was sent, or at once when that ping ended later (after Timer F). While a ping is in
//! flight its transaction is the timer. At most `MAX_PINGS_PER_CALL` pings leave per
//! `handle_timeout`; the rest stay due and `poll_timeout` asks to be called again at once.
//!
//! Never pings a binding that is not NAT'd (third-party registrations, SIPp on loopback) nor
//! one over TCP: a TCP phone is reached over its own connection, which it keeps open (the
//! RFC 5626 CRLF ping is out of scope), nor one registered through an edge proxy (RFC 3327
//! Path: the proxy keeps the phone's pinhole open and is the one to ping it). Tables are bounded by the live bindings: an entry
//! whose binding is gone is dropped when its deadline comes.

use super::Engine;
use crate::b2bua::identity;
use crate::dialog::ids::{new_call_id_with, new_tag_with};
use crate::dialog::ViaSpec;
use crate::net::Transport;
use crate::registrar::Binding;
use crate::sip::{HeaderName, Method, Request};
use crate::transaction::TransactionKey;
use crate::FastMap;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Consecutive unanswered pings after which a binding is removed.
pub(super) const MAX_MISSES: u32 = 3;
/// Pings sent by one `handle_timeout` call at most.
const MAX_PINGS_PER_CALL: usize = 64;

/// A binding: its address-of-record and Contact URI.
type BindingKey = (String, String);

#[derive(Debug)]
struct Entry {
    /// When the next ping is due; `None` while one is in flight.
    due: Option<Instant>,
    /// When the last ping left.
    sent: Option<Instant>,
    misses: u32,
}

/// Keep-alive state of every NAT'd UDP binding.
#[derive(Debug, Default)]
pub(super) struct KeepAlives {
    entries: FastMap<BindingKey, Entry>,
    schedule: BTreeSet<(Instant, BindingKey)>,
    /// OPTIONS in flight → the binding it pings.
    in_flight: FastMap<TransactionKey, BindingKey>,
}

impl KeepAlives {
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.schedule.first().map(|(at, _)| *at)
    }

    /// Entries tracked (bindings pinged), for tests.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    fn schedule(&mut self, key: BindingKey, at: Instant) {
        let entry = self.entries.entry(key.clone()).or_insert(Entry {
            due: None,
            sent: None,
            misses: 0,
        });
        if let Some(old) = entry.due.take() {
            self.schedule.remove(&(old, key.clone()));
        }
        entry.due = Some(at);
        self.schedule.insert((at, key));
    }

    fn forget(&mut self, key: &BindingKey) {
        if let Some(e) = self.entries.remove(key) {
            if let Some(at) = e.due {
                self.schedule.remove(&(at, key.clone()));
            }
        }
    }
}

/// Whether `b` gets keep-alives: NAT'd and over UDP, and not registered through an edge
/// proxy (RFC 3327 Path): then the proxy holds the phone's pinhole, and the REGISTER's
/// source is the proxy, not the phone's NAT mapping.
fn wants_pings(b: &Binding) -> bool {
    b.nat && b.source.transport == Transport::Udp && !b.has_path()
}

impl Engine {
    fn keepalive_interval(&self) -> Option<Duration> {
        Some(self.cfg.registrar.nat_keepalive).filter(|d| !d.is_zero())
    }

    /// A REGISTER of `aor` succeeded with `bindings`: each NAT'd UDP one is pinged one
    /// interval from now and its miss count starts again.
    pub(super) fn keepalive_registered(&mut self, aor: &str, bindings: &[Binding], now: Instant) {
        let Some(interval) = self.keepalive_interval() else {
            return;
        };
        for b in bindings.iter().filter(|b| wants_pings(b)) {
            let key = (aor.to_string(), b.contact.clone());
            let in_flight = self
                .keepalives
                .entries
                .get(&key)
                .is_some_and(|e| e.due.is_none());
            // A ping in flight is rescheduled when it ends; either way the misses start again.
            if !in_flight {
                self.keepalives.schedule(key.clone(), now + interval);
            }
            if let Some(e) = self.keepalives.entries.get_mut(&key) {
                e.misses = 0;
            }
        }
    }

    /// The bindings a persistent store brought back at start (`[registrar] store`): their
    /// NAT keep-alives start again as if each had just registered, so a phone whose router
    /// forgets idle mappings stays reachable across a restart without waiting for its next
    /// REGISTER. The driver calls this once, before serving.
    pub fn resume_keepalives(&mut self, now: Instant) {
        let mut by_aor: std::collections::BTreeMap<String, Vec<Binding>> = Default::default();
        for (aor, b) in self.store.list(now) {
            by_aor.entry(aor).or_default().push(b);
        }
        for (aor, bindings) in by_aor {
            self.keepalive_registered(&aor, &bindings, now);
        }
    }

    /// Sends the pings that are due (at most `MAX_PINGS_PER_CALL`).
    pub(super) fn handle_keepalive_timers(&mut self, now: Instant) {
        let Some(interval) = self.keepalive_interval() else {
            return;
        };
        for _ in 0..MAX_PINGS_PER_CALL {
            let key = match self.keepalives.schedule.first() {
                Some((at, _)) if *at <= now => match self.keepalives.schedule.pop_first() {
                    Some((_, key)) => key,
                    None => return,
                },
                _ => return,
            };
            if let Some(e) = self.keepalives.entries.get_mut(&key) {
                e.due = None;
            }
            let binding = self
                .store
                .lookup(&key.0, now)
                .into_iter()
                .find(|b| b.contact == key.1)
                .filter(wants_pings);
            let Some(b) = binding else {
                // Unregistered, expired or no longer NAT'd: nothing to keep open.
                self.keepalives.forget(&key);
                continue;
            };
            if self.txl.len() >= self.cfg.transactions.max_transactions {
                self.keepalives.schedule(key, now + interval);
                continue;
            }
            let req = self.keepalive_request(&key.0, &b);
            match self.txl.send_request(now, req, b.source) {
                Ok(tkey) => {
                    if let Some(e) = self.keepalives.entries.get_mut(&key) {
                        e.sent = Some(now);
                    }
                    self.keepalives.in_flight.insert(tkey, key);
                }
                Err(e) => {
                    tracing::debug!(target: "ferroswitch::registrar", e = %crate::security::log_escape(&e), "keep-alive not sent");
                    self.keepalives.schedule(key, now + interval);
                }
            }
        }
    }

    /// The OPTIONS to `b`: out of dialog, to its Contact, sent to its NAT source address.
    fn keepalive_request(&mut self, aor: &str, b: &Binding) -> Request {
        let realm = aor.rsplit_once('@').map_or(aor, |(_, d)| d).to_string();
        let via = ViaSpec::new(
            b.source.transport,
            b.advertised.clone(),
            self.b2bua.our_branch(),
        );
        let mut r = Request::new(Method::Options, b.contact.clone());
        let h = &mut r.headers;
        h.push(HeaderName::Via, via.to_value());
        h.push(HeaderName::MaxForwards, "70");
        let tag = new_tag_with(&mut self.rng);
        let me = crate::cdr::Party {
            user: "ferroswitch".into(),
            display_name: None,
        };
        h.push(
            HeaderName::From,
            format!("{};tag={tag}", identity(&me, &realm)),
        );
        h.push(HeaderName::To, format!("<sip:{aor}>"));
        h.push(
            HeaderName::CallId,
            new_call_id_with(&mut self.rng, self.cfg.node_id.as_deref()),
        );
        h.push(HeaderName::CSeq, "1 OPTIONS");
        crate::b2bua::respond::push_user_agent(h, HeaderName::UserAgent, &self.cfg.user_agent);
        r
    }

    /// The end of one of our pings: `answered` when any response came, false on Timer F or
    /// a transport error. Returns false when `key` is not a ping.
    pub(super) fn on_keepalive_end(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        answered: bool,
    ) -> bool {
        let Some(bkey) = self.keepalives.in_flight.remove(key) else {
            return false;
        };
        let Some(interval) = self.keepalive_interval() else {
            self.keepalives.forget(&bkey);
            return true;
        };
        let Some(entry) = self.keepalives.entries.get_mut(&bkey) else {
            return true;
        };
        if answered {
            entry.misses = 0;
        } else {
            entry.misses += 1;
        }
        if entry.misses >= MAX_MISSES {
            self.keepalives.forget(&bkey);
            let (aor, contact) = bkey;
            let mut gone = false;
            self.store.update(&aor, now, &mut |list| {
                let before = list.len();
                list.retain(|b| b.contact != contact);
                gone = list.len() != before;
            });
            if gone {
                self.stats.keepalive_removed += 1;
                tracing::info!(
                    target: "ferroswitch::registrar",
                    "binding removed: no answer to keep-alive aor={} contact={}",
                    crate::security::log_escape(&aor),
                    crate::security::log_escape(&contact)
                );
            }
            return true;
        }
        let next = entry.sent.map_or(now, |s| s + interval).max(now);
        self.keepalives.schedule(bkey, next);
        true
    }

    /// A provisional response to a ping: the phone is alive, the transaction goes on.
    pub(super) fn is_keepalive(&self, key: &TransactionKey) -> bool {
        self.keepalives.in_flight.contains_key(key)
    }
}
