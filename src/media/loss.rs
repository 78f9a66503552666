//! Packets lost, judged from RTP sequence numbers the way RFC 3550 Appendix A.1 and A.3 do:
//! an extended highest sequence number (16-bit wraps counted as cycles), the base where
//! counting started, and expected − received. A late (reordered) packet is counted as received
//! and so lowers the loss again; a jump of more than `MAX_DROPOUT` is believed only when the
//! next packet continues it (the source restarted), as in A.1. A new SSRC starts a new count;
//! losses already seen are kept.
//!
//! Pure arithmetic on numbers handed in; never panics.

/// A.1: a jump ahead of this many is suspicious.
const MAX_DROPOUT: u16 = 3000;
/// A.1: this far behind is taken for a late packet, further for a restart.
const MAX_MISORDER: u16 = 100;

/// The receive side of one RTP source, as far as loss goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqCounter {
    ssrc: Option<u32>,
    base: u64,
    max_seq: u16,
    cycles: u64,
    received: u64,
    /// A.1's `bad_seq`: the sequence number that would confirm a restart.
    bad_seq: Option<u16>,
    /// Lost under earlier SSRCs or before a restart.
    lost_before: u64,
}

impl SeqCounter {
    /// Takes the SSRC and sequence number of one RTP packet.
    pub fn update(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc != Some(ssrc) {
            self.lost_before += self.lost_current();
            self.restart(ssrc, seq);
            return;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        if delta == 0 {
            // A duplicate: received twice, expected once; counted so loss can go "negative"
            // as A.3 allows (it is clamped when read).
            self.received += 1;
        } else if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
            self.received += 1;
            self.bad_seq = None;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A big jump: believe it only if the next packet follows it.
            if self.bad_seq == Some(seq) {
                self.lost_before += self.lost_current();
                self.restart(ssrc, seq);
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
            }
        } else {
            // Late or duplicate: it arrived after all.
            self.received += 1;
        }
    }

    fn restart(&mut self, ssrc: u32, seq: u16) {
        self.ssrc = Some(ssrc);
        self.base = u64::from(seq);
        self.max_seq = seq;
        self.cycles = 0;
        self.received = 1;
        self.bad_seq = None;
    }

    fn lost_current(&self) -> u64 {
        if self.ssrc.is_none() {
            return 0;
        }
        let expected = (self.cycles + u64::from(self.max_seq)) - self.base + 1;
        expected.saturating_sub(self.received)
    }

    /// Packets lost so far, over every SSRC seen.
    pub fn lost(&self) -> u64 {
        self.lost_before + self.lost_current()
    }
}

/// `(ssrc, seq)` of an RTP packet, `None` for RTCP (RFC 5761 §4: second octet 192–223) or
/// anything that is not RTP version 2.
pub fn rtp_header(packet: &[u8]) -> Option<(u32, u16)> {
    if packet.len() < 12 || packet[0] >> 6 != 2 || is_rtcp(packet) {
        return None;
    }
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    Some((ssrc, seq))
}

/// RTCP by RFC 5761 §4's rule (packet type 192–223 in the second octet).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == 2 && (192..=223).contains(&packet[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: &[u16]) -> u64 {
        let mut c = SeqCounter::default();
        for &s in seqs {
            c.update(7, s);
        }
        c.lost()
    }

    #[test]
    fn rfc3550_a_3_loss_is_expected_minus_received() {
        assert_eq!(run(&[1, 2, 3, 4]), 0);
        assert_eq!(run(&[1, 2, 4, 5]), 1);
        assert_eq!(run(&[10, 13, 20]), 8);
    }

    #[test]
    fn rfc3550_a_1_sequence_wraparound_counts_a_cycle() {
        assert_eq!(run(&[65533, 65534, 65535, 0, 1, 2]), 0);
        assert_eq!(run(&[65534, 65535, 1, 2]), 1);
        let mut c = SeqCounter::default();
        for i in 0..200_000u32 {
            if i % 1000 != 999 {
                c.update(1, i as u16);
            }
        }
        // 999, 1999, …, 198999 missing; 199999 would be too but nothing came after it.
        assert_eq!(c.lost(), 199);
    }

    #[test]
    fn rfc3550_a_1_reordered_packets_are_not_lost() {
        assert_eq!(run(&[1, 2, 4, 3, 5]), 0);
        assert_eq!(run(&[65534, 0, 65535, 1]), 0);
        assert_eq!(run(&[1, 3, 2, 2, 4]), 0);
    }

    #[test]
    fn rfc3550_a_1_a_jump_is_a_restart_only_when_confirmed() {
        // One stray far-off packet is ignored…
        assert_eq!(run(&[1, 2, 30000, 3, 4]), 0);
        // …two in sequence restart the count, keeping what was lost before.
        assert_eq!(run(&[1, 3, 30000, 30001, 30002]), 1);
    }

    #[test]
    fn a_new_ssrc_starts_over_and_keeps_earlier_losses() {
        let mut c = SeqCounter::default();
        for s in [1, 2, 5] {
            c.update(1, s);
        }
        for s in [900, 901, 903] {
            c.update(2, s);
        }
        assert_eq!(c.lost(), 3);
    }

    #[test]
    fn rtp_and_rtcp_told_apart() {
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 0; // PCMU
        rtp[2..4].copy_from_slice(&513u16.to_be_bytes());
        rtp[8..12].copy_from_slice(&9u32.to_be_bytes());
        assert_eq!(rtp_header(&rtp), Some((9, 513)));
        let mut rtcp = [0u8; 8];
        rtcp[0] = 0x81;
        rtcp[1] = 200; // SR
        assert!(is_rtcp(&rtcp) && rtp_header(&rtcp).is_none());
        assert!(rtp_header(&[0u8; 12]).is_none());
        assert!(rtp_header(&[0x80; 5]).is_none());
    }
}
