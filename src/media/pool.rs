//! The RTP port pool: even RTP + odd RTCP pairs over `[media] rtp_ports`, bounded, O(1) to
//! take and to give back. Freed pairs go to the back of the queue, so a port is reused as late
//! as possible and stray packets of an ended call do not land in the next one.
//!
//! Only bookkeeping: binding the ports is the relay's job (a pair someone else holds is given
//! back and another taken). Never hands out a pair twice; a double free is an error, not a
//! corruption.

use super::PortRange;
use std::collections::VecDeque;
use thiserror::Error;

/// An even RTP port and the odd RTCP port after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortPair {
    pub rtp: u16,
}

impl PortPair {
    pub fn rtcp(self) -> u16 {
        self.rtp + 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PoolError {
    /// Every pair is in use: the call gets 503.
    #[error("no free RTP port pair")]
    Exhausted,
    #[error("port {0} is not an RTP port of the pool")]
    NotInPool(u16),
    #[error("port pair {0} is not in use")]
    NotAllocated(u16),
}

/// The pairs of a range, each free or in use.
#[derive(Debug, Clone)]
pub struct PortPool {
    first: u16,
    free: VecDeque<u32>,
    in_use: Vec<bool>,
}

impl PortPool {
    pub fn new(range: PortRange) -> PortPool {
        let pairs = range.pairs();
        PortPool {
            first: range.first(),
            free: (0..pairs).collect(),
            in_use: vec![false; pairs as usize],
        }
    }

    /// Takes the pair free the longest.
    pub fn alloc(&mut self) -> Result<PortPair, PoolError> {
        let i = self.free.pop_front().ok_or(PoolError::Exhausted)?;
        self.in_use[i as usize] = true;
        Ok(PortPair {
            rtp: self.first + (i * 2) as u16,
        })
    }

    /// Gives `pair` back.
    pub fn release(&mut self, pair: PortPair) -> Result<(), PoolError> {
        let i = self.index(pair.rtp)?;
        if !self.in_use[i] {
            return Err(PoolError::NotAllocated(pair.rtp));
        }
        self.in_use[i] = false;
        self.free.push_back(i as u32);
        Ok(())
    }

    fn index(&self, rtp: u16) -> Result<usize, PoolError> {
        let off = rtp
            .checked_sub(self.first)
            .ok_or(PoolError::NotInPool(rtp))?;
        let i = usize::from(off / 2);
        if off % 2 != 0 || i >= self.in_use.len() {
            return Err(PoolError::NotInPool(rtp));
        }
        Ok(i)
    }

    /// Pairs free now.
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Pairs in the range.
    pub fn capacity(&self) -> usize {
        self.in_use.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_odd_bounded_and_come_back() {
        let mut p = PortPool::new(PortRange::new(20000, 20007).unwrap());
        assert_eq!((p.capacity(), p.free()), (4, 4));
        let got: Vec<PortPair> = (0..4).map(|_| p.alloc().unwrap()).collect();
        let rtp: Vec<u16> = got.iter().map(|g| g.rtp).collect();
        assert_eq!(rtp, [20000, 20002, 20004, 20006]);
        assert_eq!(got[3].rtcp(), 20007);
        assert_eq!(p.alloc(), Err(PoolError::Exhausted));
        p.release(got[1]).unwrap();
        assert_eq!(p.release(got[1]), Err(PoolError::NotAllocated(20002)));
        assert_eq!(
            p.release(PortPair { rtp: 20001 }),
            Err(PoolError::NotInPool(20001))
        );
        assert_eq!(
            p.release(PortPair { rtp: 20008 }),
            Err(PoolError::NotInPool(20008))
        );
        assert_eq!(
            p.release(PortPair { rtp: 1000 }),
            Err(PoolError::NotInPool(1000))
        );
        assert_eq!(p.alloc().unwrap().rtp, 20002);
        for g in got {
            p.release(g).unwrap();
        }
        assert_eq!(p.free(), p.capacity());
    }

    #[test]
    fn a_freed_pair_is_reused_last() {
        let mut p = PortPool::new(PortRange::new(30000, 30005).unwrap());
        let a = p.alloc().unwrap();
        p.release(a).unwrap();
        assert_eq!(p.alloc().unwrap().rtp, 30002);
        assert_eq!(p.alloc().unwrap().rtp, 30004);
        assert_eq!(p.alloc().unwrap().rtp, 30000);
    }

    #[test]
    fn the_top_pair_of_the_port_space_fits() {
        let mut p = PortPool::new(PortRange::new(65534, 65535).unwrap());
        assert_eq!(p.alloc().unwrap().rtcp(), 65535);
        assert_eq!(p.alloc(), Err(PoolError::Exhausted));
    }
}
