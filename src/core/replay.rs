//! Replay protection: every sealed datagram is numbered, and a receiver
//! takes each number once.
//!
//! The 24-byte nonce of the envelope ([`crate::core::wire`]) carries, in
//! its first 16 bytes, the sender's stream (8 bytes, drawn at random when
//! the node first sends, mixed with its generation) and the datagram's number in that stream (8 bytes,
//! big-endian, from 1); the last 8 bytes stay random. The seal
//! authenticates the nonce, so nobody without the cookie can renumber a
//! datagram, and the format on the wire does not change: a node of an
//! earlier release, whose nonces are random, reads as a sender with a new
//! stream for every datagram, and is neither refused nor protected.
//!
//! A receiver keeps, per stream, the highest number seen and which of the
//! [`WINDOW`] numbers below it arrived ([`Window`], as IPsec and WireGuard
//! do): a number seen before, or older than the window, is a replay and is
//! dropped before the protocol reads it. A replayed ping would otherwise be
//! answered, to the captured sender: a flood of replays made the flooded
//! node flood a member with acks until that member, its receive buffer
//! full, declared the flooded node down.
//!
//! Streams are held in two generations of at most [`MAX_STREAMS`] each:
//! when the current one is full it becomes the previous one and the old
//! previous one is forgotten; a stream found in the previous generation
//! moves back to the current. A forgotten stream's next datagram starts it
//! afresh, so a replay of a stream not heard from for that long is taken
//! once more (once per datagram, not once per copy).

use super::keymap::HashedMap;
use super::wire::NONCE_LEN;

/// How many numbers below the highest a stream's window covers: a datagram
/// overtaken by more than this many later ones of its sender is dropped.
pub const WINDOW: u64 = 256;

/// Streams remembered per generation (two generations are kept).
pub const MAX_STREAMS: usize = 1024;

/// The sender's side: its stream and the next number.
#[derive(Clone, Debug, Default)]
pub struct Sequence {
    salt: u64,
    stream: Option<u64>,
    next: u64,
}

impl Sequence {
    /// A sequence whose stream is mixed with `salt` (the node's generation:
    /// a node restarted with the same seed still numbers a stream of its
    /// own, which its peers have not seen).
    pub fn new(salt: u64) -> Self {
        Self {
            salt,
            ..Self::default()
        }
    }

    /// Writes the stream and the next number into `nonce`, whose bytes were
    /// drawn at random (the first draw, with the salt, names the stream).
    pub fn stamp(&mut self, nonce: &mut [u8; NONCE_LEN]) {
        let salt = self.salt;
        let stream = *self.stream.get_or_insert_with(|| numbered(nonce).0 ^ salt);
        self.next += 1;
        nonce[..8].copy_from_slice(&stream.to_be_bytes());
        nonce[8..16].copy_from_slice(&self.next.to_be_bytes());
    }
}

/// The stream and number a nonce carries.
pub fn numbered(nonce: &[u8; NONCE_LEN]) -> (u64, u64) {
    let [s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3, n4, n5, n6, n7, ..] = *nonce;
    (
        u64::from_be_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
        u64::from_be_bytes([n0, n1, n2, n3, n4, n5, n6, n7]),
    )
}

/// Which numbers of one stream arrived: the highest, and a bitmap of the
/// [`WINDOW`] numbers up to it, indexed by number modulo the window.
#[derive(Clone, Copy, Debug)]
struct Window {
    top: u64,
    bits: [u64; (WINDOW / 64) as usize],
}

impl Window {
    fn new(number: u64) -> Self {
        let mut w = Self {
            top: number,
            bits: [0; (WINDOW / 64) as usize],
        };
        w.flip(number, true);
        w
    }

    fn slot(number: u64) -> (usize, u64) {
        let i = number % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn flip(&mut self, number: u64, on: bool) {
        let (word, bit) = Self::slot(number);
        if on {
            self.bits[word] |= bit;
        } else {
            self.bits[word] &= !bit;
        }
    }

    fn has(&self, number: u64) -> bool {
        let (word, bit) = Self::slot(number);
        self.bits[word] & bit != 0
    }

    /// Whether `number` is new; records it if so.
    fn admit(&mut self, number: u64) -> bool {
        if number > self.top {
            if number - self.top >= WINDOW {
                self.bits = [0; (WINDOW / 64) as usize];
            } else {
                for n in self.top + 1..number {
                    self.flip(n, false);
                }
            }
            self.top = number;
            self.flip(number, true);
            true
        } else if self.top - number >= WINDOW || self.has(number) {
            false
        } else {
            self.flip(number, true);
            true
        }
    }
}

/// The receiver's side: a window per stream heard from.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    current: HashedMap<u64, Window>,
    previous: HashedMap<u64, Window>,
}

impl ReplayGuard {
    /// Whether the datagram with this (authenticated) nonce is new; records
    /// it if so.
    pub fn admit(&mut self, nonce: &[u8; NONCE_LEN]) -> bool {
        let (stream, number) = numbered(nonce);
        if let Some(w) = self.current.get_mut(&stream) {
            return w.admit(number);
        }
        let (window, fresh) = match self.previous.remove(&stream) {
            Some(mut w) => {
                let fresh = w.admit(number);
                (w, fresh)
            }
            None => (Window::new(number), true),
        };
        if self.current.len() >= MAX_STREAMS {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(stream, window);
        fresh
    }

    /// Streams remembered now (both generations).
    pub fn streams(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(stream: u64, number: u64) -> [u8; NONCE_LEN] {
        let mut n = [0xAB; NONCE_LEN];
        n[..8].copy_from_slice(&stream.to_be_bytes());
        n[8..16].copy_from_slice(&number.to_be_bytes());
        n
    }

    #[test]
    fn a_sequence_numbers_its_datagrams_from_one_in_a_stream_named_by_its_first_draw() {
        let mut s = Sequence::default();
        let mut first = [7u8; NONCE_LEN];
        s.stamp(&mut first);
        let mut second = [9u8; NONCE_LEN];
        s.stamp(&mut second);
        assert_eq!(numbered(&first), (0x0707_0707_0707_0707, 1));
        assert_eq!(numbered(&second), (0x0707_0707_0707_0707, 2));
        // The random tail is kept.
        assert_eq!(&second[16..], &[9u8; 8]);
    }

    #[test]
    fn the_same_draws_under_another_generation_name_another_stream() {
        let (mut a, mut b) = (Sequence::new(1), Sequence::new(2));
        let (mut x, mut y) = ([7u8; NONCE_LEN], [7u8; NONCE_LEN]);
        a.stamp(&mut x);
        b.stamp(&mut y);
        assert_ne!(numbered(&x).0, numbered(&y).0);
    }

    #[test]
    fn each_number_is_taken_once_in_any_order_within_the_window() {
        let mut g = ReplayGuard::default();
        for n in [5, 3, 4, 1, 2, 9, 6] {
            assert!(g.admit(&nonce(1, n)), "first {n}");
        }
        for n in [5, 3, 4, 1, 2, 9, 6] {
            assert!(!g.admit(&nonce(1, n)), "again {n}");
        }
        assert!(g.admit(&nonce(1, 7)));
        assert!(g.admit(&nonce(2, 5)), "another stream has its own numbers");
    }

    #[test]
    fn a_number_older_than_the_window_is_refused_and_a_jump_forward_is_taken() {
        let mut g = ReplayGuard::default();
        assert!(g.admit(&nonce(1, 1)));
        assert!(g.admit(&nonce(1, 1 + WINDOW)));
        assert!(!g.admit(&nonce(1, 1)), "older than the window");
        assert!(g.admit(&nonce(1, 2)), "just inside the window, never seen");
        assert!(g.admit(&nonce(1, 10 * WINDOW)));
        assert!(!g.admit(&nonce(1, 10 * WINDOW)));
        assert!(g.admit(&nonce(1, 10 * WINDOW - 1)));
    }

    #[test]
    fn numbers_that_wrap_around_the_bitmap_are_told_apart() {
        let mut g = ReplayGuard::default();
        for n in 1..=3 * WINDOW {
            assert!(g.admit(&nonce(4, n)), "{n}");
        }
        for n in 2 * WINDOW + 1..=3 * WINDOW {
            assert!(!g.admit(&nonce(4, n)), "{n}");
        }
    }

    #[test]
    fn streams_are_bounded_and_a_stream_heard_again_is_kept() {
        let mut g = ReplayGuard::default();
        assert!(g.admit(&nonce(0, 1)));
        for s in 1..=(3 * MAX_STREAMS) as u64 {
            assert!(g.admit(&nonce(s, 1)));
            // Stream 0 keeps talking: it stays in the current generation.
            assert!(g.admit(&nonce(0, s + 1)));
            assert!(g.streams() <= 2 * MAX_STREAMS);
        }
        let last = 3 * MAX_STREAMS as u64 + 1;
        assert!(!g.admit(&nonce(0, last)), "stream 0 was never forgotten");
    }
}
