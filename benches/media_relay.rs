//! Media relay micro benchmark (issue 11): N synthetic streams at 50 packets/s each way
//! through a real `MediaRelay` on loopback, for a few seconds; prints relayed packets/s and
//! the relay worker threads' CPU time per relayed packet (from /proc/self/task/*/schedstat,
//! so the load generator's own CPU is not counted).
//!
//! `cargo bench --bench media_relay -- [streams] [seconds] [threads]` (defaults 500, 5, 1).
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a short smoke run.

use ferroswitch::media::{Direction, MediaConfig, PortRange, Side, SideSignal};
use ferroswitch::transport::MediaRelay;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// CPU nanoseconds of the relay's worker threads (named `media-N`) so far.
fn relay_cpu_ns() -> u64 {
    let mut total = 0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("media-") {
            continue;
        }
        let sched = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total += sched
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let bench = std::env::args().any(|a| a == "--bench");
    let arg = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (streams, secs, threads) = if bench {
        (arg(0, 500) as usize, arg(1, 5), arg(2, 1) as usize)
    } else {
        (10, 1, 1)
    };
    let config = MediaConfig {
        rtp_ports: PortRange::new(20000, 20000 + (streams as u16) * 4 + 63).unwrap(),
        rtp_ip: Some("127.0.0.1".parse().unwrap()),
        threads,
        ..MediaConfig::default()
    };
    let relay = MediaRelay::start(config).unwrap();
    let ip = "127.0.0.1".parse().unwrap();
    let now = Instant::now();
    let mut legs = Vec::with_capacity(streams);
    for _ in 0..streams {
        let alloc = relay.allocate(&[true], ip).unwrap();
        let (a, b) = (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        for (side, s) in [(Side::A, &a), (Side::B, &b)] {
            let at = s.local_addr().unwrap();
            let signal = SideSignal {
                rtp: Some(at),
                rtcp: Some(SocketAddr::new(at.ip(), at.port() + 1)),
                mux: false,
                direction: Direction::SendRecv,
            };
            relay.update_side(now, alloc.id, 0, side, signal).unwrap();
        }
        let to_a: SocketAddr = (ip, alloc.ports(0, Side::A).unwrap().rtp).into();
        let to_b: SocketAddr = (ip, alloc.ports(0, Side::B).unwrap().rtp).into();
        legs.push((alloc.id, a, b, to_a, to_b));
    }
    let mut packet = [0u8; 172]; // 20 ms of PCMU
    packet[0] = 0x80;
    let mut buf = [0u8; 2048];
    let mut received = 0u64;
    let cpu0 = relay_cpu_ns();
    let proc0 = process_cpu();
    let start = Instant::now();
    let mut tick = start;
    let mut seq: u16 = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
        seq = seq.wrapping_add(1);
        for (_, a, b, to_a, to_b) in &legs {
            let _ = a.send_to(&packet, to_a);
            let _ = b.send_to(&packet, to_b);
        }
        tick += Duration::from_millis(20);
        loop {
            let mut any = false;
            for (_, a, b, _, _) in &legs {
                while a.recv_from(&mut buf).is_ok() {
                    received += 1;
                    any = true;
                }
                while b.recv_from(&mut buf).is_ok() {
                    received += 1;
                    any = true;
                }
            }
            if !any && Instant::now() >= tick {
                break;
            }
            if !any {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    for (_, a, b, _, _) in &legs {
        while a.recv_from(&mut buf).is_ok() || b.recv_from(&mut buf).is_ok() {
            received += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = relay_cpu_ns().saturating_sub(cpu0);
    let proc_cpu = process_cpu().saturating_sub(proc0);
    let mut relayed = 0u64;
    let mut dropped = 0u64;
    for (id, ..) in &legs {
        let st = relay.stats(*id).unwrap();
        relayed += st.leg(Side::A).tx_packets + st.leg(Side::B).tx_packets;
        dropped += st.leg(Side::A).dropped + st.leg(Side::B).dropped;
    }
    for (id, ..) in &legs {
        relay.release(*id).unwrap();
    }
    println!(
        "media_relay: {streams} streams x 50 pps each way, {threads} worker thread(s), {elapsed:.1} s"
    );
    println!(
        "  relayed {relayed} packets = {:.0} packets/s (received by the phones: {received}, dropped {dropped})",
        relayed as f64 / elapsed
    );
    println!(
        "  relay threads CPU {:.3} s = {:.1}% of a core, {:.2} us per relayed packet",
        cpu as f64 / 1e9,
        cpu as f64 / 1e9 / elapsed * 100.0,
        cpu as f64 / 1e3 / relayed.max(1) as f64
    );
    println!(
        "  whole process (generator included) CPU {:.3} s",
        proc_cpu.as_secs_f64()
    );
    assert!(relayed > 0, "nothing relayed");
}
