//! The few body fields a delivery is routed, keyed and identified by,
//! read without re-serialising the body: a fast path for the flat objects
//! POPBiLL sends, and a borrowing serde visitor for anything else, after a
//! nesting-depth check (an over-deep body is refused before serde sees it).

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use crate::error::BridgeError;

/// The body fields the bridge uses.
#[derive(Debug, Default, PartialEq)]
pub(super) struct BodyFields<'a> {
    pub(super) event_type: Option<Cow<'a, str>>,
    pub(super) corp_num: Option<Cow<'a, str>>,
    pub(super) item_key: Option<Cow<'a, str>>,
    pub(super) event_dt: Option<Cow<'a, str>>,
    pub(super) state_code: Option<Cow<'a, str>>,
    pub(super) state_dt: Option<Cow<'a, str>>,
}

impl<'a> BodyFields<'a> {
    /// Where a field's value goes; none for a key the bridge does not read.
    fn slot(&mut self, field: Field) -> Option<&mut Option<Cow<'a, str>>> {
        Some(match field {
            Field::EventType => &mut self.event_type,
            Field::CorpNum => &mut self.corp_num,
            Field::ItemKey => &mut self.item_key,
            Field::EventDt => &mut self.event_dt,
            Field::StateCode => &mut self.state_code,
            Field::StateDt => &mut self.state_dt,
            Field::Other => return None,
        })
    }
}

pub(super) fn parse_body(body: &[u8]) -> Result<BodyFields<'_>, BridgeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BridgeError::EmptyBody);
    }
    // Checked on its own so the answer can say what is wrong; serde_json
    // would only call it a syntax error.
    let text = std::str::from_utf8(body).map_err(|_| BridgeError::NotUtf8)?;
    if let Some(fields) = flat_fields(text) {
        return Ok(fields);
    }
    check_depth(body)?;
    json_fields(text)
}

/// The fields as serde_json reads them; every body that is not the usual
/// flat one ends here, and every error is named here.
pub(super) fn json_fields(text: &str) -> Result<BodyFields<'_>, BridgeError> {
    // From the text already checked: serde_json then does not check the
    // UTF-8 of every string again.
    let mut de = serde_json::Deserializer::from_str(text);
    let fields = de.deserialize_map(FieldsVisitor).map_err(classify)?;
    de.end().map_err(classify)?;
    Ok(fields)
}

/// The usual body — one flat JSON object whose keys and string values hold
/// no escapes and whose other values are integers of at most 18 digits,
/// `true`, `false` or `null` — read in one pass, with the very result
/// [`json_fields`] gives (a property test holds the two together).
/// `None` for anything else, valid or not: serde_json reads it then.
pub(super) fn flat_fields(text: &str) -> Option<BodyFields<'_>> {
    let b = text.as_bytes();
    let mut f = BodyFields::default();
    let mut i = json_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = json_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, next) = plain_string(text, i)?;
            i = json_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = json_ws(b, i + 1);
            let (value, next) = flat_value(text, i)?;
            i = json_ws(b, next);
            if let Some(slot) = f.slot(Field::of(key)) {
                *slot = value;
            }
            match b.get(i) {
                Some(b',') => i = json_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (json_ws(b, i) == b.len()).then_some(f)
}

/// Past JSON's whitespace (space, tab, line feed, carriage return).
fn json_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// A string at `i` without escapes or control characters: its text and
/// where it ends.
fn plain_string(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let len = b[i + 1..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let end = i + 1 + len;
    // A quote, not an escape or a control character, ends it; the quotes
    // are ASCII, so both slice ends are character boundaries.
    (b[end] == b'"').then(|| (&text[i + 1..end], end + 1))
}

/// A value at `i` as [`Lenient`] reads it: a plain string (empty or blank:
/// none), an integer (its text, which is what `to_string` of the number
/// gives: no sign but a minus, no leading zero), `true`, `false` or `null`
/// (none). Where it ends; whatever follows is the caller's to check.
fn flat_value(text: &str, i: usize) -> Option<(Option<Cow<'_, str>>, usize)> {
    let b = text.as_bytes();
    match *b.get(i)? {
        b'"' => plain_string(text, i).map(|(s, end)| (non_empty(Cow::Borrowed(s)), end)),
        b't' if b[i..].starts_with(b"true") => Some((None, i + 4)),
        b'f' if b[i..].starts_with(b"false") => Some((None, i + 5)),
        b'n' if b[i..].starts_with(b"null") => Some((None, i + 4)),
        b'-' | b'0'..=b'9' => {
            let digits_at = i + usize::from(b[i] == b'-');
            let digits = b[digits_at..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            // No digits, a leading zero ("0" itself, "-0" included) or more
            // digits than any i64 or u64 always holds: serde_json decides.
            if digits == 0
                || digits > 18
                || b[digits_at] == b'0' && !(digits == 1 && digits_at == i)
            {
                return None;
            }
            let end = digits_at + digits;
            Some((Some(Cow::Borrowed(&text[i..end])), end))
        }
        _ => None,
    }
}

fn classify(e: serde_json::Error) -> BridgeError {
    match e.classify() {
        serde_json::error::Category::Data => BridgeError::NotObject,
        _ => BridgeError::NotJson(e),
    }
}

/// Deepest nesting of objects and arrays accepted. POPBiLL's bodies are
/// flat; the bound protects downstream consumers, whose parsers may recurse
/// (serde_json's own stops at 128).
pub(super) const MAX_DEPTH: usize = 64;

/// One pass over the bytes, counting brackets outside strings. serde_json
/// skips ignored values without recursion, so this is the only place depth
/// is bounded.
fn check_depth(body: &[u8]) -> Result<(), BridgeError> {
    // Fewer opening brackets than the limit, strings included, cannot nest
    // deeper than it: one vectorised count settles every usual body.
    let opening = body.iter().filter(|&&b| b == b'{' || b == b'[').count();
    if opening <= MAX_DEPTH {
        return Ok(());
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(BridgeError::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = BodyFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = BodyFields::default();
        // Keys are matched as they are read, borrowed or (escaped) decoded:
        // nothing is allocated for them.
        while let Some(key) = map.next_key::<Field>()? {
            match f.slot(key) {
                Some(slot) => *slot = map.next_value::<Lenient<'de>>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(f)
    }
}

/// A body key: one of the fields the bridge reads, or another.
enum Field {
    EventType,
    CorpNum,
    ItemKey,
    EventDt,
    StateCode,
    StateDt,
    Other,
}

impl Field {
    /// The field a body key names; both readings of a body use this one
    /// table.
    fn of(key: &str) -> Field {
        match key {
            "eventType" => Field::EventType,
            "corpNum" => Field::CorpNum,
            "itemKey" => Field::ItemKey,
            "eventDT" => Field::EventDt,
            "stateCode" => Field::StateCode,
            "stateDT" => Field::StateDt,
            _ => Field::Other,
        }
    }
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(FieldVisitor)
    }
}

struct FieldVisitor;

impl Visitor<'_> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        Ok(Field::of(v))
    }
}

/// A field we read as text if it is a string or an integer, and ignore
/// otherwise: POPBiLL's types vary by product and a surprise must not turn
/// a valid delivery into a rejection.
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de> de::Deserialize<'de> for Lenient<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Lenient<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Lenient(non_empty(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Lenient(non_empty(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Lenient(non_empty(Cow::Owned(v))))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Lenient(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Lenient(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Lenient(None))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Lenient(None))
    }
}

fn non_empty(s: Cow<'_, str>) -> Option<Cow<'_, str>> {
    if trim(&s).is_empty() { None } else { Some(s) }
}

/// `str::trim`, with the usual case — no whitespace at either end — settled
/// by looking at two bytes.
pub(super) fn trim(s: &str) -> &str {
    let plain = |b: u8| b.is_ascii() && !char::from(b).is_whitespace();
    match s.as_bytes() {
        [first, .., last] if plain(*first) && plain(*last) => s,
        [only] if plain(*only) => s,
        _ => s.trim(),
    }
}
