//! The ledger's line format: one line per published event, `<identity
//! hex32> <body hex16> <partition> <offset> <topic> <id>`, written byte by
//! byte on the hot path and parsed back by the follower.

use crate::dedup::Claim;
use crate::dedup::ledger::Entry;
use crate::receipt::Receipt;

/// Bytes of an event's id a ledger line keeps at most. The id is there
/// for people reading the ledger; the follower reads only the digests, so
/// a MID as long as the header limit allows (16 KiB) must not make the
/// record too large for Kafka.
const MAX_ID_IN_LINE: usize = 128;

/// Appends one entry's line, `<identity hex32> <body hex16> <partition>
/// <offset> <topic> <id>\n`, byte by byte (no formatting machinery).
pub(super) fn line(out: &mut Vec<u8>, e: &Entry) {
    line_of(out, e.claim, &e.id, &e.topic, Some(e.receipt));
}

/// The line of an event; without a receipt (a line written in the event's
/// own transaction, before Kafka said where the record went) the partition
/// and offset are `-`.
pub(crate) fn line_of(out: &mut Vec<u8>, claim: Claim, id: &str, topic: &str, at: Option<Receipt>) {
    push_hex(out, claim.identity, 32);
    out.push(b' ');
    push_hex(out, u128::from(claim.body), 16);
    out.push(b' ');
    match at {
        Some(r) => {
            push_decimal(out, i64::from(r.partition()));
            out.push(b' ');
            push_decimal(out, r.offset());
        }
        None => out.extend_from_slice(b"- -"),
    }
    out.push(b' ');
    out.extend_from_slice(topic.as_bytes());
    out.push(b' ');
    out.extend_from_slice(id_in_line(id).as_bytes());
    out.push(b'\n');
}

/// The longest line: the digests, the place (partition and offset in
/// decimal), the longest topic name Kafka allows (249) and the id kept.
pub(super) const MAX_LINE: usize = 32 + 1 + 16 + 1 + 11 + 1 + 20 + 1 + 249 + 1 + MAX_ID_IN_LINE + 1;

/// The bytes `line` writes for `e`, at most [`MAX_LINE`].
pub(super) fn line_len(e: &Entry) -> usize {
    32 + 1 + 16 + 1 + 11 + 1 + 20 + 1 + e.topic.len() + 1 + id_in_line(&e.id).len() + 1
}

/// The event's id as a ledger line keeps it: cut to [`MAX_ID_IN_LINE`]
/// bytes, at a character boundary.
fn id_in_line(id: &str) -> &str {
    crate::telemetry::bounded(id, MAX_ID_IN_LINE)
}

/// The low `digits` hex digits of `v`, lower case, zero-padded.
fn push_hex(out: &mut Vec<u8>, v: u128, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend(
        (0..digits)
            .rev()
            .map(|i| HEX[((v >> (4 * i)) & 0xf) as usize]),
    );
}

/// `v` in decimal, as `{}` writes it.
fn push_decimal(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Parses a ledger record's value: the claims it lists. Lines without a
/// body digest (earlier versions) or otherwise malformed are skipped.
pub(crate) fn parse_entries(value: &[u8]) -> impl Iterator<Item = Claim> + '_ {
    value.split(|&b| b == b'\n').filter_map(|line| {
        let mut words = line.split(|&b| b == b' ');
        let identity = words.next().filter(|w| w.len() == 32)?;
        let body = words.next().filter(|w| w.len() == 16)?;
        Some(Claim {
            identity: parse_hex(identity)?,
            body: u64::try_from(parse_hex(body)?).ok()?,
        })
    })
}

/// A hex number as `u128::from_str_radix(_, 16)` reads it (a leading `+`
/// included), at most 32 digits.
fn parse_hex(word: &[u8]) -> Option<u128> {
    let digits = word.strip_prefix(b"+").unwrap_or(word);
    if digits.is_empty() || digits.len() > 32 {
        return None;
    }
    digits.iter().try_fold(0u128, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(d))
    })
}

#[cfg(test)]
mod tests;
