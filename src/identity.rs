//! A delivery's identity: what makes two deliveries "the same event sent
//! again".
//!
//! - The `Pb-Webhook-MID` header, when present. POPBiLL's retries carry the
//!   same MID; it is opaque and never parsed.
//! - Without a MID, a content key: webhook type, corpNum, itemKey, event
//!   type, stateCode and stateDT — the fields that together name one state
//!   change of one document. It needs corpNum, itemKey and stateDT.
//! - Otherwise, the body's SHA-256: a retry of the same bytes is the same
//!   event, which is the most that can be said.
//!
//! Each becomes a 128-bit digest (the first half of a SHA-256 over a
//! tagged, NUL-separated form), which is what the duplicate memory and the
//! ledger store: 16 bytes an event whatever the MID's length. At 128 bits a
//! collision between two different events is not a practical concern.

use std::borrow::Cow;

use sha2::{Digest as _, Sha256};

use crate::delivery::Delivery;

/// Where an identity came from; shown in the log and in `ce_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Mid,
    Content,
    Body,
}

#[derive(Debug, Clone)]
pub struct Identity<'a> {
    pub digest: u128,
    pub source: Source,
    /// The MID, or `content:<hex>` / `sha256:<hex>` of the digest: the
    /// record's `ce_id`.
    pub id: Cow<'a, str>,
}

impl<'a> Identity<'a> {
    pub fn of(d: &Delivery<'a>) -> Identity<'a> {
        if let Some(mid) = d.mid {
            return Identity {
                digest: digest(&[b"mid", mid.as_bytes()]),
                source: Source::Mid,
                id: Cow::Borrowed(mid),
            };
        }
        if let (Some(corp), Some(item), Some(state_dt)) = (&d.corp_num, &d.item_key, &d.state_dt) {
            let parts: [&[u8]; 7] = [
                b"content",
                d.webhook_type.as_bytes(),
                corp.as_bytes(),
                item.as_bytes(),
                d.event_type.as_deref().unwrap_or("").as_bytes(),
                d.state_code.as_deref().unwrap_or("").as_bytes(),
                state_dt.as_bytes(),
            ];
            let digest = digest(&parts);
            return Identity {
                digest,
                source: Source::Content,
                id: Cow::Owned(format!("content:{digest:032x}")),
            };
        }
        let digest = digest(&[b"body", d.body]);
        Identity {
            digest,
            source: Source::Body,
            id: Cow::Owned(format!("sha256:{digest:032x}")),
        }
    }
}

/// First 128 bits of SHA-256 over the parts, each followed by a NUL so
/// `("ab","c")` and `("a","bc")` differ.
fn digest(parts: &[&[u8]]) -> u128 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0u8]);
    }
    let out = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&out[..16]);
    u128::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;
    use hyper::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    const BODY: &[u8] = br#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":300,"stateDT":"20251114093010","eventType":"Issue"}"#;

    #[test]
    fn the_mid_is_the_identity_whatever_the_body() {
        let h = headers(&[
            ("pb-webhook-type", "TAXINVOICE.STATE"),
            ("pb-webhook-mid", "m-1"),
        ]);
        let a = Identity::of(&Delivery::parse(&h, BODY).expect("valid"));
        let b = Identity::of(&Delivery::parse(&h, b"{}").expect("valid"));
        assert_eq!(a.source, Source::Mid);
        assert_eq!(a.id, "m-1");
        assert_eq!(a.digest, b.digest);
        let h2 = headers(&[
            ("pb-webhook-type", "TAXINVOICE.STATE"),
            ("pb-webhook-mid", "m-2"),
        ]);
        assert_ne!(
            a.digest,
            Identity::of(&Delivery::parse(&h2, BODY).expect("valid")).digest
        );
    }

    #[test]
    fn without_mid_the_content_key_ignores_unrelated_fields() {
        let h = headers(&[("pb-webhook-type", "TAXINVOICE.STATE")]);
        let a = Identity::of(&Delivery::parse(&h, BODY).expect("valid"));
        assert_eq!(a.source, Source::Content);
        assert!(
            a.id.starts_with("content:") && a.id.len() == 8 + 32,
            "{}",
            a.id
        );
        let reordered = br#"{"eventDT":"20251114093011","stateDT":"20251114093010","stateCode":"300","itemKey":"025111409301000001","corpNum":"1234567890","eventType":"Issue"}"#;
        let b = Identity::of(&Delivery::parse(&h, reordered).expect("valid"));
        assert_eq!(a.digest, b.digest, "same state change, same identity");
        let later = br#"{"corpNum":"1234567890","itemKey":"025111409301000001","stateCode":304,"stateDT":"20251115090711","eventType":"NTS"}"#;
        assert_ne!(
            a.digest,
            Identity::of(&Delivery::parse(&h, later).expect("valid")).digest
        );
    }

    #[test]
    fn without_content_fields_the_body_is_the_identity() {
        let h = headers(&[("pb-webhook-type", "KAKAO.STATE")]);
        let a = Identity::of(&Delivery::parse(&h, br#"{"receiptNum":"1"}"#).expect("valid"));
        assert_eq!(a.source, Source::Body);
        assert!(a.id.starts_with("sha256:"));
        let b = Identity::of(&Delivery::parse(&h, br#"{"receiptNum":"2"}"#).expect("valid"));
        assert_ne!(a.digest, b.digest);
    }

    #[test]
    fn parts_are_separated() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }
}
