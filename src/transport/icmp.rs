//! ICMP errors for datagrams we sent (RFC 3261 §18.4): on Linux, `IP_RECVERR` /
//! `IPV6_RECVERR` on the listening UDP sockets make the kernel queue each ICMP error with
//! the destination of the datagram that caused it, and this module reads that queue
//! (`MSG_ERRQUEUE`). An unconnected socket otherwise learns nothing: a phone whose NAT
//! mapping has gone would cost a caller Timer B (32 s) instead of milliseconds.
//!
//! §18.4 lists which errors count: host, network, port or protocol unreachable and parameter
//! problem. Source quench, time exceeded and "fragmentation needed"/"packet too big" (path
//! MTU discovery) do not fail anything. `is_fatal` is that rule as a pure function; the rest
//! is the socket calls. Never interprets the returned octets beyond handing them on.

use std::net::SocketAddr;

/// Where an error queue entry came from (`ee_origin` of `struct sock_extended_err`).
pub(crate) const ORIGIN_ICMP: u8 = 2;
pub(crate) const ORIGIN_ICMP6: u8 = 3;

/// One ICMP error read from a socket's error queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IcmpError {
    /// Where the datagram that failed was going.
    pub dest: SocketAddr,
    /// The errno the kernel chose (ECONNREFUSED for port unreachable, …).
    pub errno: i32,
    pub origin: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// What the kernel kept of the datagram (the ICMP quote: often truncated).
    pub data: Vec<u8>,
}

/// RFC 3261 §18.4: does this ICMP error mean the datagram cannot be delivered?
pub(crate) fn is_fatal(origin: u8, icmp_type: u8, icmp_code: u8) -> bool {
    match origin {
        // Destination unreachable (all codes but 4, "fragmentation needed"), parameter problem.
        ORIGIN_ICMP => (icmp_type == 3 && icmp_code != 4) || icmp_type == 12,
        // Destination unreachable, parameter problem; not packet too big (2) or time exceeded (3).
        ORIGIN_ICMP6 => icmp_type == 1 || icmp_type == 4,
        _ => false,
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use super::IcmpError;
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    fn set_int(fd: libc::c_int, level: libc::c_int, opt: libc::c_int) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: a valid fd and a pointer to a c_int of the given length.
        let r = unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Asks the kernel to queue ICMP errors on `sock` (both families on an IPv6 socket, for
    /// IPv4-mapped peers of a dual-stack socket).
    pub(crate) fn enable(sock: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
        let fd = sock.as_raw_fd();
        if ipv6 {
            set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVERR)?;
            let _ = set_int(fd, libc::IPPROTO_IP, libc::IP_RECVERR);
            Ok(())
        } else {
            set_int(fd, libc::IPPROTO_IP, libc::IP_RECVERR)
        }
    }

    fn to_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match libc::c_int::from(ss.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let a: &libc::sockaddr_in = unsafe { &*(ss as *const _ as *const _) };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a: &libc::sockaddr_in6 = unsafe { &*(ss as *const _ as *const _) };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// Reads one entry of the error queue without blocking: `Ok(None)` for an entry that is
    /// not an ICMP error with an address, `WouldBlock` when the queue is empty.
    pub(crate) fn recv_error(sock: &impl AsRawFd) -> io::Result<Option<IcmpError>> {
        let mut data = vec![0u8; 2048];
        // SAFETY: plain C structs for which all-zero is a valid value.
        let mut name: libc::sockaddr_storage = unsafe { zeroed() };
        let mut control = [0u64; 64];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 64]>() as _;
        // SAFETY: every pointer in msg points at a live buffer of the stated length.
        let n = unsafe {
            libc::recvmsg(
                sock.as_raw_fd(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        data.truncate((n as usize).min(data.len()));
        let Some(dest) = to_addr(&name) else {
            return Ok(None);
        };
        // SAFETY: msg was filled by recvmsg; the CMSG macros walk its control buffer.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            // SAFETY: non-null cmsg pointers from CMSG_FIRSTHDR/NXTHDR are valid headers.
            let hdr = unsafe { &*cmsg };
            let ours = (hdr.cmsg_level == libc::IPPROTO_IP && hdr.cmsg_type == libc::IP_RECVERR)
                || (hdr.cmsg_level == libc::IPPROTO_IPV6 && hdr.cmsg_type == libc::IPV6_RECVERR);
            if ours {
                // SAFETY: these control messages carry a sock_extended_err; read unaligned.
                let ee: libc::sock_extended_err = unsafe {
                    std::ptr::read_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<libc::sock_extended_err>(),
                    )
                };
                return Ok(Some(IcmpError {
                    dest,
                    errno: ee.ee_errno as i32,
                    origin: ee.ee_origin,
                    icmp_type: ee.ee_type,
                    icmp_code: ee.ee_code,
                    data,
                }));
            }
            // SAFETY: as above.
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        Ok(None)
    }
}

#[cfg(target_os = "linux")]
pub(crate) use sys::{enable, recv_error};

/// Elsewhere there is no error queue: ICMP errors stay unseen and the timers cover the loss.
#[cfg(not(target_os = "linux"))]
pub(crate) fn enable<T>(_sock: &T, _ipv6: bool) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn recv_error<T>(_sock: &T) -> std::io::Result<Option<IcmpError>> {
    Err(std::io::ErrorKind::WouldBlock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_18_4_unreachable_and_parameter_problem_fail_the_send() {
        // Port, host, network, protocol unreachable; administratively prohibited.
        for code in [0, 1, 2, 3, 13] {
            assert!(is_fatal(ORIGIN_ICMP, 3, code), "ICMP 3/{code}");
        }
        assert!(is_fatal(ORIGIN_ICMP, 12, 0));
        assert!(is_fatal(ORIGIN_ICMP6, 1, 4), "ICMPv6 port unreachable");
        assert!(is_fatal(ORIGIN_ICMP6, 4, 0));
    }

    #[test]
    fn rfc3261_18_4_quench_time_exceeded_and_pmtu_do_not() {
        assert!(!is_fatal(ORIGIN_ICMP, 3, 4), "fragmentation needed");
        assert!(!is_fatal(ORIGIN_ICMP, 4, 0), "source quench");
        assert!(!is_fatal(ORIGIN_ICMP, 11, 0), "time exceeded");
        assert!(!is_fatal(ORIGIN_ICMP6, 2, 0), "packet too big");
        assert!(!is_fatal(ORIGIN_ICMP6, 3, 0), "time exceeded");
        // A local error (origin 1) is not an ICMP report.
        assert!(!is_fatal(1, 3, 3));
    }
}
