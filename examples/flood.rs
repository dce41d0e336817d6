//! Floods one agent's gossip port with hostile datagrams, as fast as one
//! core sends, for a fixed time; prints one JSON line with what it sent.
//!
//! Kinds:
//! * `wrong-cookie`: well-formed envelopes of the right cluster, sealed
//!   under another cookie (the victim pays for the AEAD and drops them as
//!   `bad_seal`).
//! * `random`: random bytes of random length (dropped before any
//!   cryptography: too short, unknown version, other cluster).
//! * `replay`: datagrams captured on the wire (`--capture`), resent as they
//!   were; they open under the cluster's cookie.
//! * `spoofed`: the captured datagrams and wrong-cookie ones, alternately,
//!   each from a source address taken in turn from `--spoof` (sockets bound
//!   with `IP_TRANSPARENT` to addresses this host does not own; needs
//!   `CAP_NET_ADMIN`).
//!
//! The capture file holds datagrams as a 2-byte big-endian length and the
//! bytes, one after another (`bench/hostile/hostile.py` writes it).
//!
//! ```text
//! cargo run --release --example flood -- --to 10.80.0.11:4370 --kind random --seconds 60
//! ```
//!
//! Used by `bench/hostile/hostile.py`; only ever aim it at agents you run.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use rand::{Rng, RngExt, SeedableRng};
use rollcall::core::wire::{Envelope, Kind};
use rollcall::core::SeedRng;
use socket2::{Domain, Protocol, Socket, Type};

/// What the flood sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FloodKind {
    WrongCookie,
    Random,
    Replay,
    Spoofed,
}

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// The victim's gossip address.
    #[arg(long)]
    to: SocketAddr,
    /// What to send.
    #[arg(long, value_enum)]
    kind: FloodKind,
    /// How long to send.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// The cluster name (its tag goes into wrong-cookie envelopes).
    #[arg(long, default_value = "rollcall")]
    cluster: String,
    /// Captured datagrams (`replay`, `spoofed`).
    #[arg(long)]
    capture: Option<std::path::PathBuf>,
    /// Source addresses to spoof (`spoofed`), comma-separated `IP:port`.
    #[arg(long, value_delimiter = ',')]
    spoof: Vec<SocketAddr>,
    /// Seed of the datagrams' randomness.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Distinct datagrams generated per random kind, sent in turn.
const POOL: usize = 4096;

fn main() {
    let args = Args::parse();
    match flood(&args) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("flood: {e}");
            std::process::exit(1);
        }
    }
}

fn flood(args: &Args) -> Result<String, String> {
    let mut rng = SeedRng::seed_from_u64(args.seed);
    let captured = match &args.capture {
        Some(path) => read_capture(path)?,
        None => Vec::new(),
    };
    let needs_capture = matches!(args.kind, FloodKind::Replay | FloodKind::Spoofed);
    if needs_capture && captured.is_empty() {
        return Err(format!(
            "--kind {:?} needs a non-empty --capture",
            args.kind
        ));
    }
    let pool: Vec<Vec<u8>> = match args.kind {
        FloodKind::WrongCookie => wrong_cookie(&args.cluster, &mut rng),
        FloodKind::Random => (0..POOL)
            .map(|_| {
                let len = rng.random_range(1..1400);
                let mut d = vec![0u8; len];
                rng.fill_bytes(&mut d);
                d
            })
            .collect(),
        FloodKind::Replay => captured.clone(),
        FloodKind::Spoofed => {
            let forged = wrong_cookie(&args.cluster, &mut rng);
            captured
                .iter()
                .cycle()
                .zip(forged.iter().take(POOL.max(captured.len())))
                .flat_map(|(c, f)| [c.clone(), f.clone()])
                .collect()
        }
    };
    let sockets = match args.kind {
        FloodKind::Spoofed => {
            if args.spoof.is_empty() {
                return Err("--kind spoofed needs --spoof addresses".into());
            }
            args.spoof
                .iter()
                .map(|a| transparent_socket(*a))
                .collect::<Result<Vec<_>, _>>()?
        }
        _ => {
            let any: IpAddr = if args.to.is_ipv4() {
                [0, 0, 0, 0].into()
            } else {
                [0u16; 8].into()
            };
            vec![UdpSocket::bind((any, 0)).map_err(|e| format!("bind: {e}"))?]
        }
    };

    let deadline = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let (mut sent, mut errors, mut bytes) = (0u64, 0u64, 0u64);
    let mut i = 0usize;
    loop {
        // Read the clock once per batch: the send is the cost to measure.
        for _ in 0..256 {
            let datagram = &pool[i % pool.len()];
            let socket = &sockets[i % sockets.len()];
            i += 1;
            match socket.send_to(datagram, args.to) {
                Ok(_) => {
                    sent += 1;
                    bytes += datagram.len() as u64;
                }
                Err(_) => errors += 1,
            }
        }
        if start.elapsed() >= deadline {
            break;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(format!(
        "{{\"kind\":\"{:?}\",\"sent\":{sent},\"send_errors\":{errors},\"bytes\":{bytes},\
         \"seconds\":{seconds:.3},\"distinct\":{},\"sources\":{}}}",
        args.kind,
        pool.len(),
        sockets.len()
    ))
}

/// Envelopes of `cluster` sealed under a cookie nobody uses.
fn wrong_cookie(cluster: &str, rng: &mut SeedRng) -> Vec<Vec<u8>> {
    let envelope = Envelope::new(b"not the cluster's cookie", cluster);
    (0..POOL)
        .map(|_| {
            let len = rng.random_range(20..1200);
            let mut body = vec![0u8; len];
            rng.fill_bytes(&mut body);
            envelope.seal(Kind::Gossip, &body, rng)
        })
        .collect()
}

/// Datagrams of a capture file (2-byte big-endian length, then the bytes).
fn read_capture(path: &std::path::Path) -> Result<Vec<Vec<u8>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut rest = &data[..];
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + len {
            return Err(format!("{}: truncated datagram", path.display()));
        }
        out.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    if !rest.is_empty() {
        return Err(format!("{}: trailing byte", path.display()));
    }
    Ok(out)
}

/// A UDP socket bound to `addr`, which need not be this host's.
fn transparent_socket(addr: SocketAddr) -> Result<UdpSocket, String> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| format!("socket: {e}"))?;
    if !addr.is_ipv4() {
        return Err(format!("{addr}: spoofing is IPv4 only"));
    }
    let transparent =
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::IpTransparent, &true);
    transparent.map_err(|e| format!("IP_TRANSPARENT (needs CAP_NET_ADMIN): {e}"))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| format!("SO_REUSEADDR: {e}"))?;
    socket
        .bind(&addr.into())
        .map_err(|e| format!("bind {addr}: {e}"))?;
    Ok(socket.into())
}
