//! The media relay's I/O, the one file of `media` with sockets and threads: [`MediaRelay`]
//! binds a session's sockets when it is allocated (RTP and RTCP for each side of each stream;
//! a muxing phone simply uses the RTP one) and `[media] threads` worker threads forward
//! between the two sides, applying the rules of [`StreamRelay`](crate::media::StreamRelay).
//!
//! Plain std threads, never the tokio SIP thread: per worker one epoll set (level-triggered)
//! over its sessions' sockets and an eventfd to stop it; packets come in `recvmmsg` batches
//! into buffers allocated once per worker and leave in `sendmmsg` batches pointing at the same
//! buffers, so the hot path neither allocates nor copies. Every 100 ms a worker checks its
//! sessions' media timeouts and queues [`MediaEvent`]s, which the B2BUA drains with
//! [`MediaRelay::poll_event`] (optionally woken by [`MediaRelay::on_event`]).
//!
//! Locks, always taken in this order and never across a system call that blocks: `control`
//! (pool and session table), a worker's `regs`/`sessions`, a session's `rules`. The worker
//! holds an `Arc` of a session while it forwards for it, so a release never closes a socket
//! under it. Nothing here panics on what a peer sends.

use crate::media::control::{
    addresses, Allocation, LocalPorts, MediaControl, MediaError, MediaEvent,
};
use crate::media::control::{SessionId, SessionRules, SessionStats};
use crate::media::pool::{PortPair, PortPool};
use crate::media::stream::{Channel, SideSignal, Verdict};
use crate::media::{MediaConfig, Side};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Packets per `recvmmsg`/`sendmmsg` call.
const BATCH: usize = 32;
/// Largest datagram relayed whole (RTP stays under the 1500-octet MTU; video may come close).
const BUF: usize = 2048;
/// How often a worker looks at its sessions' media timeouts.
const TICK: Duration = Duration::from_millis(100);
/// The epoll token of a worker's stop eventfd.
const WAKE: u64 = 0;
/// Port pairs tried before giving up when another program holds ports of our range.
const BIND_ATTEMPTS: usize = 16;

type Notify = Arc<dyn Fn() + Send + Sync>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked must not take the relay down with it: the data is counters.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One session's sockets and rules.
struct IoSession {
    id: SessionId,
    worker: usize,
    rules: Mutex<SessionRules>,
    /// Per stream (`None`: not relayed), per side, RTP then RTCP.
    sockets: Vec<Option<[[UdpSocket; 2]; 2]>>,
    pairs: Vec<PortPair>,
    tokens: Vec<u64>,
    v6: bool,
}

/// What an epoll token stands for.
#[derive(Clone)]
struct Reg {
    session: Arc<IoSession>,
    stream: usize,
    side: Side,
    channel: Channel,
}

struct Worker {
    epoll: OwnedFd,
    wake: OwnedFd,
    regs: Mutex<HashMap<u64, Reg>>,
    sessions: Mutex<HashMap<SessionId, Arc<IoSession>>>,
}

struct Control {
    pool: PortPool,
    sessions: HashMap<SessionId, Arc<IoSession>>,
    next_id: u64,
    next_token: u64,
}

struct Shared {
    config: MediaConfig,
    control: Mutex<Control>,
    workers: Vec<Worker>,
    events: Mutex<VecDeque<MediaEvent>>,
    notify: Mutex<Option<Notify>>,
    stop: AtomicBool,
}

/// The thread-backed relay (see the module doc). Dropping it stops the workers and closes
/// every socket.
pub struct MediaRelay {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl MediaRelay {
    /// Starts `[media] threads` workers (0: one per core); binds nothing until `allocate`.
    pub fn start(config: MediaConfig) -> io::Result<MediaRelay> {
        let n = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut workers = Vec::with_capacity(n);
        for _ in 0..n {
            // SAFETY: plain system calls; the fds are owned right away.
            let epoll =
                unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
            let flags = libc::EFD_NONBLOCK | libc::EFD_CLOEXEC;
            let wake = unsafe { OwnedFd::from_raw_fd(cvt(libc::eventfd(0, flags))?) };
            epoll_add(epoll.as_raw_fd(), wake.as_raw_fd(), WAKE)?;
            workers.push(Worker {
                epoll,
                wake,
                regs: Mutex::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
            });
        }
        let shared = Arc::new(Shared {
            control: Mutex::new(Control {
                pool: PortPool::new(config.rtp_ports),
                sessions: HashMap::new(),
                next_id: 1,
                next_token: WAKE + 1,
            }),
            config,
            workers,
            events: Mutex::new(VecDeque::new()),
            notify: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let mut threads = Vec::with_capacity(n);
        for w in 0..n {
            let s = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("media-{w}"))
                .spawn(move || run_worker(&s, w))?;
            threads.push(t);
        }
        Ok(MediaRelay { shared, threads })
    }

    /// Calls `f` (from a worker thread) whenever events were queued; e.g. to wake the
    /// engine's driver. Keep it short and non-blocking.
    pub fn on_event(&self, f: impl Fn() + Send + Sync + 'static) {
        *lock(&self.shared.notify) = Some(Arc::new(f));
    }

    /// Binds the sockets of a new session; see [`MediaControl::allocate`].
    pub fn allocate(&self, relay: &[bool], sip_ip: IpAddr) -> Result<Allocation, MediaError> {
        let (bind, shown) = addresses(&self.shared.config, sip_ip)?;
        let mut c = lock(&self.shared.control);
        let needed = relay.iter().filter(|&&r| r).count() * 2;
        if c.pool.free() < needed {
            return Err(MediaError::Exhausted);
        }
        let id = SessionId(c.next_id);
        c.next_id += 1;
        let mut pairs = Vec::with_capacity(needed);
        let mut sockets = Vec::with_capacity(relay.len());
        let mut streams = Vec::with_capacity(relay.len());
        for &r in relay {
            if !r {
                sockets.push(None);
                streams.push(None);
                continue;
            }
            let mut bound = Vec::with_capacity(2);
            for _side in [Side::A, Side::B] {
                match bind_pair(&mut c.pool, bind) {
                    Ok((pair, rtp, rtcp)) => {
                        pairs.push(pair);
                        bound.push((pair, [rtp, rtcp]));
                    }
                    Err(e) => {
                        for p in pairs {
                            let _ = c.pool.release(p);
                        }
                        return Err(e);
                    }
                }
            }
            let ports = |p: PortPair| LocalPorts {
                addr: shown,
                rtp: p.rtp,
                rtcp: p.rtcp(),
            };
            streams.push(Some([ports(bound[0].0), ports(bound[1].0)]));
            let mut it = bound.into_iter().map(|(_, s)| s);
            let (a, b) = (it.next(), it.next());
            sockets.push(a.zip(b).map(|(a, b)| [a, b]));
        }
        let worker = (id.0 as usize) % self.shared.workers.len();
        let first_token = c.next_token;
        let count = sockets.iter().flatten().count() as u64 * 4;
        c.next_token += count;
        let session = Arc::new(IoSession {
            id,
            worker,
            rules: Mutex::new(SessionRules::new(&self.shared.config, relay)),
            sockets,
            pairs,
            tokens: (first_token..first_token + count).collect(),
            v6: bind.is_ipv6(),
        });
        c.sessions.insert(id, session.clone());
        drop(c);
        let w = &self.shared.workers[worker];
        lock(&w.sessions).insert(id, session.clone());
        let mut token = first_token;
        for (stream, socks) in session.sockets.iter().enumerate() {
            let Some(socks) = socks else { continue };
            for (side, pair) in [Side::A, Side::B].into_iter().zip(socks) {
                for (channel, sock) in [Channel::Rtp, Channel::Rtcp].into_iter().zip(pair) {
                    let reg = Reg {
                        session: session.clone(),
                        stream,
                        side,
                        channel,
                    };
                    lock(&w.regs).insert(token, reg);
                    if let Err(e) = epoll_add(w.epoll.as_raw_fd(), sock.as_raw_fd(), token) {
                        let _ = self.release(id);
                        return Err(MediaError::Bind(e.to_string()));
                    }
                    token += 1;
                }
            }
        }
        Ok(Allocation { id, streams })
    }

    /// See [`MediaControl::update_side`]. `now` must come from the real clock.
    pub fn update_side(
        &self,
        now: Instant,
        id: SessionId,
        stream: usize,
        side: Side,
        signal: SideSignal,
    ) -> Result<(), MediaError> {
        let s = self.session(id)?;
        let mut rules = lock(&s.rules);
        rules.update_side(now, id, stream, side, signal)
    }

    /// Stops relaying `id`, closes its sockets, frees its ports, returns the final counters.
    pub fn release(&self, id: SessionId) -> Result<SessionStats, MediaError> {
        let s = lock(&self.shared.control)
            .sessions
            .remove(&id)
            .ok_or(MediaError::NoSuchSession(id))?;
        let w = &self.shared.workers[s.worker];
        lock(&w.sessions).remove(&id);
        {
            let mut regs = lock(&w.regs);
            for t in &s.tokens {
                regs.remove(t);
            }
        }
        for sock in s.sockets.iter().flatten().flatten().flatten() {
            // SAFETY: removing a registered fd from our epoll set.
            let fd = sock.as_raw_fd();
            unsafe {
                libc::epoll_ctl(
                    w.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    fd,
                    std::ptr::null_mut(),
                )
            };
        }
        {
            let mut c = lock(&self.shared.control);
            for p in &s.pairs {
                let _ = c.pool.release(*p);
            }
        }
        lock(&self.shared.events)
            .retain(|e| !matches!(e, MediaEvent::Timeout { session, .. } if *session == id));
        let stats = lock(&s.rules).stats();
        Ok(stats)
    }

    pub fn stats(&self, id: SessionId) -> Option<SessionStats> {
        let s = self.session(id).ok()?;
        let stats = lock(&s.rules).stats();
        Some(stats)
    }

    pub fn poll_event(&self) -> Option<MediaEvent> {
        lock(&self.shared.events).pop_front()
    }

    /// Port pairs free now / in the range.
    pub fn pool_free(&self) -> usize {
        lock(&self.shared.control).pool.free()
    }

    pub fn pool_capacity(&self) -> usize {
        lock(&self.shared.control).pool.capacity()
    }

    /// Sessions allocated and not released.
    pub fn sessions(&self) -> usize {
        lock(&self.shared.control).sessions.len()
    }

    fn session(&self, id: SessionId) -> Result<Arc<IoSession>, MediaError> {
        let c = lock(&self.shared.control);
        c.sessions
            .get(&id)
            .cloned()
            .ok_or(MediaError::NoSuchSession(id))
    }
}

impl Drop for MediaRelay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for w in &self.shared.workers {
            let one: u64 = 1;
            // SAFETY: an 8-octet write to our eventfd.
            unsafe { libc::write(w.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl MediaControl for MediaRelay {
    fn allocate(&mut self, relay: &[bool], sip_ip: IpAddr) -> Result<Allocation, MediaError> {
        MediaRelay::allocate(self, relay, sip_ip)
    }

    fn update_side(
        &mut self,
        now: Instant,
        id: SessionId,
        stream: usize,
        side: Side,
        signal: SideSignal,
    ) -> Result<(), MediaError> {
        MediaRelay::update_side(self, now, id, stream, side, signal)
    }

    fn release(&mut self, id: SessionId) -> Result<SessionStats, MediaError> {
        MediaRelay::release(self, id)
    }

    fn stats(&self, id: SessionId) -> Option<SessionStats> {
        MediaRelay::stats(self, id)
    }

    fn poll_event(&mut self) -> Option<MediaEvent> {
        MediaRelay::poll_event(self)
    }
}

/// Takes pairs until both ports bind; a pair another program holds goes back to the pool.
fn bind_pair(
    pool: &mut PortPool,
    ip: IpAddr,
) -> Result<(PortPair, UdpSocket, UdpSocket), MediaError> {
    for _ in 0..BIND_ATTEMPTS {
        let pair = pool.alloc()?;
        let bound = UdpSocket::bind(SocketAddr::new(ip, pair.rtp)).and_then(|rtp| {
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, pair.rtcp()))?;
            rtp.set_nonblocking(true)?;
            rtcp.set_nonblocking(true)?;
            Ok((rtp, rtcp))
        });
        match bound {
            Ok((rtp, rtcp)) => return Ok((pair, rtp, rtcp)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let _ = pool.release(pair);
            }
            Err(e) => {
                let _ = pool.release(pair);
                return Err(MediaError::Bind(e.to_string()));
            }
        }
    }
    Err(MediaError::Exhausted)
}

fn epoll_add(epoll: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `ev` lives across the call.
    cvt(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(|_| ())
}

/// A worker's buffers, allocated once: received packets stay where they are and are sent
/// from there.
struct Batch {
    bufs: Vec<[u8; BUF]>,
    recv_iov: Vec<libc::iovec>,
    recv_names: Vec<libc::sockaddr_storage>,
    recv: Vec<libc::mmsghdr>,
    /// Per outgoing channel (RTP, RTCP).
    send_iov: [Vec<libc::iovec>; 2],
    send_names: [Vec<libc::sockaddr_storage>; 2],
    send: [Vec<libc::mmsghdr>; 2],
}

impl Batch {
    fn new() -> Box<Batch> {
        // SAFETY: all-zero is a valid value of these C structs.
        let z_iov = || unsafe { zeroed::<libc::iovec>() };
        let z_name = || unsafe { zeroed::<libc::sockaddr_storage>() };
        let z_msg = || unsafe { zeroed::<libc::mmsghdr>() };
        let mut b = Box::new(Batch {
            bufs: vec![[0u8; BUF]; BATCH],
            recv_iov: (0..BATCH).map(|_| z_iov()).collect(),
            recv_names: (0..BATCH).map(|_| z_name()).collect(),
            recv: (0..BATCH).map(|_| z_msg()).collect(),
            send_iov: [
                (0..BATCH).map(|_| z_iov()).collect(),
                (0..BATCH).map(|_| z_iov()).collect(),
            ],
            send_names: [
                (0..BATCH).map(|_| z_name()).collect(),
                (0..BATCH).map(|_| z_name()).collect(),
            ],
            send: [
                (0..BATCH).map(|_| z_msg()).collect(),
                (0..BATCH).map(|_| z_msg()).collect(),
            ],
        });
        for i in 0..BATCH {
            b.recv_iov[i].iov_base = b.bufs[i].as_mut_ptr().cast();
            b.recv_iov[i].iov_len = BUF;
            let iov: *mut libc::iovec = &mut b.recv_iov[i];
            let name: *mut libc::sockaddr_storage = &mut b.recv_names[i];
            b.recv[i].msg_hdr.msg_iov = iov;
            b.recv[i].msg_hdr.msg_iovlen = 1;
            b.recv[i].msg_hdr.msg_name = name.cast();
            for c in 0..2 {
                let iov: *mut libc::iovec = &mut b.send_iov[c][i];
                let name: *mut libc::sockaddr_storage = &mut b.send_names[c][i];
                b.send[c][i].msg_hdr.msg_iov = iov;
                b.send[c][i].msg_hdr.msg_iovlen = 1;
                b.send[c][i].msg_hdr.msg_name = name.cast();
            }
        }
        b
    }
}

fn run_worker(shared: &Shared, w: usize) {
    let worker = &shared.workers[w];
    let mut batch = Batch::new();
    // SAFETY: all-zero epoll_events are valid.
    let mut ready: [libc::epoll_event; 64] = unsafe { zeroed() };
    let mut due = VecDeque::new();
    let mut next_tick = Instant::now() + TICK;
    while !shared.stop.load(Ordering::Relaxed) {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let ms = wait.as_millis().min(1000) as i32 + 1;
        // SAFETY: `ready` holds 64 entries.
        let n = unsafe { libc::epoll_wait(worker.epoll.as_raw_fd(), ready.as_mut_ptr(), 64, ms) };
        for ev in ready.iter().take(n.max(0) as usize) {
            let token = ev.u64;
            if token == WAKE {
                continue;
            }
            let reg = lock(&worker.regs).get(&token).cloned();
            if let Some(reg) = reg {
                relay_from(&reg, &mut batch);
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + TICK;
            let sessions: Vec<Arc<IoSession>> = lock(&worker.sessions).values().cloned().collect();
            for s in sessions {
                lock(&s.rules).handle_timeout(now, s.id, &mut due);
            }
            if !due.is_empty() {
                lock(&shared.events).extend(due.drain(..));
                let notify = lock(&shared.notify).clone();
                if let Some(f) = notify {
                    f();
                }
            }
        }
    }
}

/// Drains one socket: receive a batch, judge each packet, send the forwarded ones in one
/// batch per outgoing socket; until the socket is empty.
fn relay_from(reg: &Reg, b: &mut Batch) {
    let session = &reg.session;
    let Some(Some(socks)) = session.sockets.get(reg.stream) else {
        return;
    };
    let from = &socks[reg.side.index()];
    let to = &socks[reg.side.other().index()];
    let fd = from[channel_index(reg.channel)].as_raw_fd();
    loop {
        for m in b.recv.iter_mut() {
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_len = 0;
        }
        // SAFETY: the headers point into `b`, which outlives the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                b.recv.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            return;
        }
        let n = n as usize;
        let now = Instant::now();
        let mut count = [0usize; 2];
        {
            let mut rules = lock(&session.rules);
            let Some(Some(relay)) = rules.streams.get_mut(reg.stream) else {
                return;
            };
            for i in 0..n {
                let len = (b.recv[i].msg_len as usize).min(BUF);
                let Some(src) = from_storage(&b.recv_names[i]) else {
                    continue;
                };
                let packet = &b.bufs[i][..len];
                if let Verdict::Forward { to: dest, via } =
                    relay.handle_packet(now, reg.side, reg.channel, src, packet)
                {
                    let c = channel_index(via);
                    let k = count[c];
                    let namelen = to_storage(dest, session.v6, &mut b.send_names[c][k]);
                    b.send_iov[c][k].iov_base = b.bufs[i].as_mut_ptr().cast();
                    b.send_iov[c][k].iov_len = len;
                    b.send[c][k].msg_hdr.msg_namelen = namelen;
                    count[c] += 1;
                }
            }
        }
        for c in 0..2 {
            send_all(to[c].as_raw_fd(), &mut b.send[c][..count[c]]);
        }
        if n < BATCH {
            return;
        }
    }
}

/// `sendmmsg` until all went or the socket refuses; a message the kernel refuses (an
/// unreachable address family, say) is skipped so the rest still go.
fn send_all(fd: RawFd, msgs: &mut [libc::mmsghdr]) {
    let mut off = 0;
    while off < msgs.len() {
        let rest = &mut msgs[off..];
        // SAFETY: the headers point into the worker's batch, alive across the call.
        let r =
            unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as u32, libc::MSG_DONTWAIT) };
        if r < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
                return; // socket buffer full: UDP may drop, so do we
            }
            off += 1;
        } else if r == 0 {
            return;
        } else {
            off += r as usize;
        }
    }
}

fn channel_index(c: Channel) -> usize {
    match c {
        Channel::Rtp => 0,
        Channel::Rtcp => 1,
    }
}

/// The sender of a datagram; IPv4-mapped IPv6 sources (dual-stack sockets) as IPv4, so they
/// compare equal to the addresses SDP gives.
fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )),
            })
        }
        _ => None,
    }
}

/// Writes `addr` for a socket of the family `v6` names (IPv4 as mapped on IPv6 sockets).
fn to_storage(addr: SocketAddr, v6: bool, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let addr = match addr {
        SocketAddr::V4(a) if v6 => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        other => other,
    };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let out =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            out.sin_family = libc::AF_INET as libc::sa_family_t;
            out.sin_port = a.port().to_be();
            out.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let out =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = a.port().to_be();
            out.sin6_addr.s6_addr = a.ip().octets();
            out.sin6_flowinfo = a.flowinfo();
            out.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_can_be_shared_with_the_engine_thread() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MediaRelay>();
    }

    #[test]
    fn socket_addresses_round_trip_through_sockaddr_storage() {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut s: libc::sockaddr_storage = unsafe { zeroed() };
        for a in ["192.0.2.1:5004", "[2001:db8::1]:6000"] {
            let a: SocketAddr = a.parse().unwrap();
            to_storage(a, false, &mut s);
            assert_eq!(from_storage(&s), Some(a));
        }
        let v4: SocketAddr = "192.0.2.1:5004".parse().unwrap();
        to_storage(v4, true, &mut s);
        assert_eq!(i32::from(s.ss_family), libc::AF_INET6);
        assert_eq!(from_storage(&s), Some(v4));
    }
}
