//! A name-addr kept for the life of a dialog in the form it is written in (one small
//! allocation), instead of a parsed `NameAddr` (about 150 octets inline and three
//! allocations): a dialog only ever writes its From, To and Contact out again, and a held
//! call has two dialogs of three each.

use crate::sip::{NameAddr, Params};

/// `NameAddr::to_bytes` of an address, with where its header parameters start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PackedAddr {
    text: Box<[u8]>,
    /// `text[params_at..]` is the header parameters (`;tag=…;…`), possibly empty.
    params_at: u32,
}

impl PackedAddr {
    pub(super) fn new(a: &NameAddr) -> PackedAddr {
        let text = a.to_bytes();
        let params = a.params.to_string();
        PackedAddr {
            params_at: (text.len() - params.len()) as u32,
            text: text.into_boxed_slice(),
        }
    }

    /// The value as written: what `NameAddr::to_bytes` gave.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        self.text.to_vec()
    }

    /// The address parsed again (for readers; the dialog itself never needs it).
    pub(super) fn name_addr(&self) -> NameAddr {
        // `text` came out of `NameAddr::to_bytes`, which `parse` reads back.
        NameAddr::parse(&self.text).unwrap_or_else(|_| {
            NameAddr::new(crate::sip::Uri::parse("sip:invalid").expect("a literal URI"))
        })
    }

    /// The value with its `tag` parameter set to `tag` (removed when empty), written as
    /// `NameAddr::to_bytes` writes it after `params.set("tag", …)` / `params.remove("tag")`.
    pub(super) fn with_tag(&self, tag: &str) -> Vec<u8> {
        let at = self.params_at as usize;
        let (head, params) = self.text.split_at(at);
        let mut p = Params::parse(&String::from_utf8_lossy(params));
        if tag.is_empty() {
            p.remove("tag");
        } else {
            p.set("tag", Some(tag.to_string()));
        }
        let p = p.to_string();
        let mut out = Vec::with_capacity(head.len() + p.len());
        out.extend_from_slice(head);
        out.extend_from_slice(p.as_bytes());
        out
    }
}
