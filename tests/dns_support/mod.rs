//! A tiny authoritative DNS server for tests, on UDP 127.0.0.1:0: it parses the question of
//! each query (RFC 1035 §4.1) and answers from a table of A, AAAA, SRV and NAPTR records
//! encoded here by hand (RFC 1035 §3.4.1, RFC 3596, RFC 2782, RFC 3403). Names it knows
//! nothing about get NXDOMAIN; known names with no record of the asked type get an empty
//! NOERROR answer. It counts the queries it saw so tests can tell DNS was (not) asked.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

#[derive(Debug, Clone)]
pub enum Rec {
    Ip(IpAddr),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: &'static str,
    },
    Naptr {
        order: u16,
        preference: u16,
        flags: &'static str,
        service: &'static str,
        replacement: &'static str,
    },
}

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_NAPTR: u16 = 35;

impl Rec {
    fn rtype(&self) -> u16 {
        match self {
            Rec::Ip(IpAddr::V4(_)) => TYPE_A,
            Rec::Ip(IpAddr::V6(_)) => TYPE_AAAA,
            Rec::Srv { .. } => TYPE_SRV,
            Rec::Naptr { .. } => TYPE_NAPTR,
        }
    }

    fn rdata(&self) -> Vec<u8> {
        let mut d = Vec::new();
        match self {
            Rec::Ip(IpAddr::V4(a)) => d.extend(a.octets()),
            Rec::Ip(IpAddr::V6(a)) => d.extend(a.octets()),
            Rec::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                for v in [priority, weight, port] {
                    d.extend(v.to_be_bytes());
                }
                d.extend(encode_name(target));
            }
            Rec::Naptr {
                order,
                preference,
                flags,
                service,
                replacement,
            } => {
                d.extend(order.to_be_bytes());
                d.extend(preference.to_be_bytes());
                for s in [flags, service, &""] {
                    d.push(s.len() as u8);
                    d.extend(s.as_bytes());
                }
                d.extend(encode_name(replacement));
            }
        }
        d
    }
}

/// A name as uncompressed labels ending in the root.
fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend(label.as_bytes());
    }
    out.push(0);
    out
}

/// The question: (lowercased name without the trailing dot, type, offset after the question).
fn parse_question(q: &[u8]) -> Option<(String, u16, usize)> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None; // no compression in a question we accept
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

pub struct DnsServer {
    pub addr: SocketAddr,
    queries: Arc<Mutex<Vec<(String, u16)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Serves `zone` (owner name → records; names without the trailing dot) until dropped.
    pub async fn start(zone: Vec<(&'static str, Rec)>) -> DnsServer {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = queries.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let q = &buf[..n];
                let Some((name, qtype, end)) = parse_question(q) else {
                    continue;
                };
                seen.lock().unwrap().push((name.clone(), qtype));
                let known = zone.iter().any(|(o, _)| o.eq_ignore_ascii_case(&name));
                let answers: Vec<&Rec> = zone
                    .iter()
                    .filter(|(o, r)| o.eq_ignore_ascii_case(&name) && r.rtype() == qtype)
                    .map(|(_, r)| r)
                    .collect();
                let mut resp = Vec::with_capacity(512);
                resp.extend(&q[..2]); // id
                                      // QR, opcode 0, AA, RD copied; RA; RCODE 0 or 3 (NXDOMAIN).
                resp.push(0x84 | (q[2] & 0x01));
                resp.push(0x80 | if known { 0 } else { 3 });
                resp.extend(1u16.to_be_bytes());
                resp.extend((answers.len() as u16).to_be_bytes());
                resp.extend([0, 0, 0, 0]); // no authority, no additional (EDNS ignored)
                resp.extend(&q[12..end]);
                for r in answers {
                    resp.extend([0xc0, 0x0c]); // the owner: a pointer to the question's name
                    resp.extend(r.rtype().to_be_bytes());
                    resp.extend(1u16.to_be_bytes()); // IN
                    resp.extend(60u32.to_be_bytes());
                    let rdata = r.rdata();
                    resp.extend((rdata.len() as u16).to_be_bytes());
                    resp.extend(rdata);
                }
                let _ = sock.send_to(&resp, from).await;
            }
        });
        DnsServer {
            addr,
            queries,
            task,
        }
    }

    /// The (name, type) of every query seen so far.
    pub fn queries(&self) -> Vec<(String, u16)> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
