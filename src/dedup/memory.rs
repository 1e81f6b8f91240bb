//! The memory of identities confirmed within the window: time-bucketed
//! hash maps of 128-bit identity digests, each with the 64-bit digest of
//! the body that was published. One [`Memory`] is one part of the
//! duplicates state; [`crate::dedup::Dedup`] keeps one per shard, under its
//! lock.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, SystemTime};

use crate::dedup::Claim;

/// How many buckets the window is cut into.
const BUCKETS: u64 = 8;

/// Seconds since the Unix epoch, the memory's clock (0 before it).
pub(super) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the memory knows of a claim's identity.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    Unknown,
    /// Published with this very body.
    Same,
    /// Published with another body (its digest).
    Differs(u64),
}

/// The identity digest as two words: `(u128, u64)` would be padded to 32
/// bytes by u128's 16-byte alignment, `([u64; 2], u64)` is 24.
type Key = [u64; 2];

fn key(identity: u128) -> Key {
    [(identity >> 64) as u64, identity as u64]
}

/// Where a second body of an identity is kept in a bucket whose main slot
/// holds another body. Never equal to the main key (the mix is non-zero).
fn alt_key(claim: Claim) -> Key {
    let [hi, lo] = key(claim.identity);
    [hi ^ claim.body ^ 1, lo ^ claim.body.rotate_left(32) ^ 1]
}

/// Identities seen within the window, each with its body digest, in
/// buckets in the order they were confirmed. A bucket covers at most
/// `window / BUCKETS` of time and holds at most an eighth of the cap, so
/// the cap holds at every moment: past it, the oldest bucket goes — the
/// oldest confirmations first, an eighth of the cap at most — even when a
/// flood of new identities arrives within one span of time. Expiry drops
/// whole buckets; a lookup probes each map (about `BUCKETS + 1` of them)
/// once.
pub(super) struct Memory {
    /// Sequence number → bucket; a later bucket never has an earlier time.
    buckets: BTreeMap<u64, Bucket>,
    /// The next bucket's sequence number.
    next: u64,
    span: u64,
    window: u64,
    max_entries: usize,
    /// Identities one bucket takes at most: an eighth of the cap.
    per_bucket: usize,
    len: usize,
}

/// Identities confirmed within one span of time (or the part of a span a
/// flood filled): identity → body digest.
struct Bucket {
    /// Unix seconds / span of the confirmations it holds (the latest).
    time: u64,
    map: HashMap<Key, u64, DigestHash>,
}

impl Memory {
    pub(super) fn new(window: Duration, max_entries: usize) -> Memory {
        let window = window.as_secs().max(BUCKETS);
        let max_entries = max_entries.max(1);
        Memory {
            buckets: BTreeMap::new(),
            next: 0,
            span: window.div_ceil(BUCKETS),
            window,
            max_entries,
            per_bucket: max_entries.div_ceil(BUCKETS as usize),
            len: 0,
        }
    }

    /// A body published under the identity in any bucket counts: after a
    /// conflict both the forged and the genuine body are remembered, and a
    /// copy of either is then a duplicate. The second body of an identity
    /// within one bucket sits in an alternate slot (the identity mixed with
    /// the body digest), so the common case stays one probe a bucket.
    pub(super) fn lookup(&self, claim: Claim) -> Lookup {
        let (main, alt) = (key(claim.identity), alt_key(claim));
        let mut found = Lookup::Unknown;
        for b in self.buckets.values().rev() {
            match b.map.get(&main) {
                Some(&body) if body == claim.body => return Lookup::Same,
                Some(&body) => {
                    if b.map.get(&alt) == Some(&claim.body) {
                        return Lookup::Same;
                    }
                    if found == Lookup::Unknown {
                        found = Lookup::Differs(body);
                    }
                }
                None => {}
            }
        }
        found
    }

    /// Returns how many identities were evicted early to stay under the
    /// cap.
    pub(super) fn insert(&mut self, claim: Claim, at: u64) -> usize {
        let time = at / self.span;
        let newest = self
            .buckets
            .values()
            .next_back()
            .map(|b| (b.time, b.map.len()));
        // Older than the window relative to what we hold: nothing to keep.
        if newest.is_some_and(|(t, _)| time + BUCKETS < t) || self.lookup(claim) == Lookup::Same {
            return 0;
        }
        // The newest bucket, unless this confirmation is of a later span
        // or the bucket is full. An older confirmation goes to the newest
        // bucket too: it is then kept a little longer, never shorter.
        let fresh = match newest {
            Some((t, n)) => time > t || n >= self.per_bucket,
            None => true,
        };
        if fresh {
            let time = newest.map_or(time, |(t, _)| time.max(t));
            self.buckets.insert(
                self.next,
                Bucket {
                    time,
                    map: HashMap::default(),
                },
            );
            self.next += 1;
        }
        let Some(b) = self.buckets.values_mut().next_back() else {
            return 0;
        };
        let main = key(claim.identity);
        let slot = if b.map.contains_key(&main) {
            alt_key(claim)
        } else {
            main
        };
        if b.map.insert(slot, claim.body).is_none() {
            self.len += 1;
        }
        let mut evicted = 0;
        while self.len > self.max_entries && self.buckets.len() > 1 {
            if let Some((_, gone)) = self.buckets.pop_first() {
                self.len -= gone.map.len();
                evicted += gone.map.len();
            }
        }
        evicted
    }

    pub(super) fn expire(&mut self, now: u64) {
        let oldest_kept = now.saturating_sub(self.window) / self.span;
        while let Some((_, b)) = self.buckets.first_key_value() {
            if b.time >= oldest_kept {
                break;
            }
            if let Some((_, gone)) = self.buckets.pop_first() {
                self.len -= gone.map.len();
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes of the maps: hashbrown keeps one control byte beside each
    /// 24-byte slot (16-byte identity, 8-byte body digest), with 1/8 of the
    /// slots always free.
    pub(super) fn bytes(&self) -> usize {
        self.buckets
            .values()
            .map(|b| b.map.capacity() * 8 / 7 * (24 + 1) + 64)
            .sum()
    }
}

/// The digests are already uniformly random: hashing them again would only
/// cost time. Mixes the words written into 64 bits.
#[derive(Default)]
pub(super) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
    }
    fn write_usize(&mut self, _len: usize) {
        // Array lengths (written before `[u64; 2]`) carry nothing.
    }
}

pub(super) type DigestHash = BuildHasherDefault<DigestHasher>;

#[cfg(test)]
mod tests;
