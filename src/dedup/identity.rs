//! A delivery's identity: what makes two deliveries "the same event sent
//! again".
//!
//! - The `Pb-Webhook-MID` header, when present, together with the webhook
//!   type (a MID names an event within its webhook, nothing more).
//!   POPBiLL's retries carry the same MID; it is opaque and never parsed.
//! - Without a MID, a content key: webhook type, corpNum, itemKey, event
//!   type, stateCode and stateDT — the fields that together name one state
//!   change of one document. It needs corpNum, itemKey and stateDT.
//! - Otherwise, the body itself: a retry of the same bytes is the same
//!   event, which is the most that can be said.
//!
//! Each becomes a 128-bit digest (the first half of a BLAKE3 over the
//! parts, each framed by its length so no two different lists of parts
//! give the same input), which is what the duplicate memory and the ledger
//! store: 16 bytes an event whatever the MID's length. At 128 bits a
//! collision between two different events is not a practical concern.
//!
//! Beside the identity every delivery carries a 64-bit digest of its body
//! (the first 64 bits of its BLAKE3). An identity alone is a claim anyone
//! who can post may make (a forged `Pb-Webhook-MID` with a junk body); only
//! a copy whose body matches is a duplicate (see [`crate::dedup`]).
//!
//! Why BLAKE3 and not a keyed hash: both digests travel between replicas
//! through the ledger, so a keyed hash would need one secret key on every
//! replica, to configure and rotate, and would hold only while it stayed
//! secret. A forger who could find a second body with the genuine one's
//! digest (and its MID) could have the genuine event taken for a copy of
//! the forgery; against BLAKE3 that costs 2^64 work for the 64-bit body
//! digest, as it did against SHA-256, with no secret at all. BLAKE3 was
//! chosen over SHA-256 for cost: a tenth of SHA-256's instructions where
//! the CPU has no SHA extensions (Intel before Ice Lake, common in clouds;
//! docs/duplicates.md has the figures).
//!
//! The `ce_id` of an event without a MID (`content:` or `sha256:`) stays a
//! SHA-256: it is part of the record format that consumers read.
//!
//! Dead-lettered deliveries get identities of their own namespace: a
//! malformed copy must never vouch for a routed event with the same MID.

use std::borrow::Cow;

use sha2::{Digest as _, Sha256};

use crate::delivery::Delivery;

/// Where an identity came from (the `ce_id` tells it by its form: the MID,
/// `content:<hex>` or `sha256:<hex>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Mid,
    Content,
    Body,
}

/// Which kind of record the identity is for. Identities of different
/// namespaces never match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// A valid delivery, published to its routed topic.
    Routed,
    /// A malformed delivery, kept on the dead-letter topic.
    DeadLetter,
}

impl Namespace {
    fn tag(self) -> &'static [u8] {
        match self {
            Namespace::Routed => b"routed",
            Namespace::DeadLetter => b"dead-letter",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Identity<'a> {
    pub digest: u128,
    /// First 64 bits of the body's BLAKE3: tells a true copy from a
    /// different body claiming the same identity.
    pub body: u64,
    pub source: Source,
    /// The MID, or `content:<hex>` / `sha256:<hex>` of the digest: the
    /// record's `ce_id`.
    pub id: Cow<'a, str>,
}

impl<'a> Identity<'a> {
    /// The identity and the body digest: what duplicate detection needs.
    /// `topic` is where the delivery is routed: an event is "already
    /// published" only on the topic it belongs to (a delivery that once
    /// went to the fallback topic is not in Kafka for the consumers of the
    /// topic a new route gives it; `popbill-bridge redrive` relies on it).
    pub fn of(d: &Delivery<'a>, ns: Namespace, topic: &str) -> Identity<'a> {
        let body_hash = blake3::hash(d.body);
        let mut first = [0u8; 8];
        first.copy_from_slice(&body_hash.as_bytes()[..8]);
        let body = u64::from_be_bytes(first);
        let (digest, source, id) = Self::identify(d, ns, topic, true);
        Identity {
            digest,
            body,
            source,
            id,
        }
    }

    /// Only the `ce_id` ([`Identity::id`]), for when duplicate detection
    /// is off: with a MID that is the MID itself, and nothing is hashed
    /// (the body's SHA-256 was a fifth of the bridge's instructions).
    pub(crate) fn id_of(d: &Delivery<'a>, ns: Namespace, topic: &str) -> Cow<'a, str> {
        Self::identify(d, ns, topic, false).2
    }

    /// The identity digest (0 when only the MID was needed: `claim` is
    /// false and there is a MID), its source and the `ce_id`.
    fn identify(
        d: &Delivery<'a>,
        ns: Namespace,
        topic: &str,
        claim: bool,
    ) -> (u128, Source, Cow<'a, str>) {
        let ty = d.webhook_type.as_bytes();
        if let Some(mid) = d.mid {
            let digest = match claim {
                true => claim_digest(&[ns.tag(), topic.as_bytes(), b"mid", ty, mid.as_bytes()]),
                false => 0,
            };
            return (digest, Source::Mid, Cow::Borrowed(mid));
        }
        if let (Some(corp), Some(item), Some(state_dt)) = (&d.corp_num, &d.item_key, &d.state_dt) {
            let key: [&[u8]; 7] = [
                b"content",
                ty,
                corp.as_bytes(),
                item.as_bytes(),
                d.event_type.as_deref().unwrap_or("").as_bytes(),
                d.state_code.as_deref().unwrap_or("").as_bytes(),
                state_dt.as_bytes(),
            ];
            let (claim, id) = claim_and_id(ns, topic, &key);
            return (
                claim,
                Source::Content,
                Cow::Owned(format!("content:{id:032x}")),
            );
        }
        // The `ce_id` names the body by its SHA-256 (the record format).
        let body_sha: [u8; 32] = Sha256::digest(d.body).into();
        let (claim, id) = claim_and_id(ns, topic, &[b"body", ty, &body_sha]);
        (claim, Source::Body, Cow::Owned(format!("sha256:{id:032x}")))
    }
}

/// The identity's two digests of an event without a MID: the claim, of
/// the event on its topic in its namespace (what duplicates are told by:
/// see [`Identity::of`]), and the `ce_id`'s, of the event alone, so that
/// the event keeps its `ce_id` wherever it is written — re-driven from
/// the fallback or the dead-letter topic, consumers of both still see one
/// event, as they do with a MID.
fn claim_and_id(ns: Namespace, topic: &str, key: &[&[u8]]) -> (u128, u128) {
    let mut claimed: Vec<&[u8]> = Vec::with_capacity(key.len() + 2);
    claimed.extend([ns.tag(), topic.as_bytes()]);
    claimed.extend_from_slice(key);
    (claim_digest(&claimed), id_digest(key))
}

/// The claim of an identity: first 128 bits of BLAKE3 over the parts
/// framed as [`framed`] frames them.
fn claim_digest(parts: &[&[u8]]) -> u128 {
    let mut h = blake3::Hasher::new();
    framed(parts, |bytes| {
        h.update(bytes);
    });
    first_128(h.finalize().as_bytes())
}

/// The digest in a `content:` or `sha256:` `ce_id`: first 128 bits of
/// SHA-256 over the framed parts.
fn id_digest(parts: &[&[u8]]) -> u128 {
    let mut h = Sha256::new();
    framed(parts, |bytes| h.update(bytes));
    first_128(&h.finalize())
}

/// Feeds the parts, each preceded by its length: `("a\0", "b")` and
/// `("a", "\0b")` differ, whatever bytes the parts hold.
fn framed(parts: &[&[u8]], mut update: impl FnMut(&[u8])) {
    for p in parts {
        update(&(p.len() as u64).to_be_bytes());
        update(p);
    }
}

fn first_128(hash: &[u8]) -> u128 {
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(first)
}
#[cfg(test)]
mod tests;
