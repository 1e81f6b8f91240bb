//! Tolerant reading of body fields.
//!
//! POPBiLL sends the same field as a number or a string depending on the
//! product, spells some names differently (`ntsConfirmNum`,
//! `ntsconfirmNum`), and leaves optional fields out, empty or null. Each
//! typed field is *taken* out of the body object: a value read into a typed
//! field leaves the object, one that cannot be typed (an object where a
//! string was expected, `"abc"` where a number was) stays in it, so the
//! `extra` map of an event holds everything not typed and nothing is lost.

use serde_json::{Map, Value};

use crate::time::{PbDate, PbDateTime};

pub(crate) struct Fields(Map<String, Value>);

impl Fields {
    pub(crate) fn new(map: Map<String, Value>) -> Fields {
        Fields(map)
    }

    /// What is left: the fields not typed.
    pub(crate) fn rest(self) -> Map<String, Value> {
        self.0
    }

    /// The key under which one of `names` is present: an exact match
    /// first, then one that differs only in ASCII case.
    fn key(&self, names: &[&str]) -> Option<String> {
        for n in names {
            if self.0.contains_key(*n) {
                return Some((*n).to_owned());
            }
        }
        self.0
            .keys()
            .find(|k| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .cloned()
    }

    /// Takes the field out when `read` types it, or when it is empty
    /// (null, or a blank string: an absent value).
    fn take<T>(&mut self, names: &[&str], read: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
        let key = self.key(names)?;
        let v = self.0.get(&key)?;
        if is_blank(v) {
            self.0.remove(&key);
            return None;
        }
        let out = read(v)?;
        self.0.remove(&key);
        Some(out)
    }

    /// A string field; numbers and booleans are taken as their text.
    pub(crate) fn text(&mut self, names: &[&str]) -> Option<String> {
        self.take(names, scalar_text)
    }

    /// An integer field, sent as a number or as a string (`300`, `"300"`,
    /// `" 1,100,000 "`).
    pub(crate) fn int<T: TryFrom<i64>>(&mut self, names: &[&str]) -> Option<T> {
        self.take(names, |v| int(v).and_then(|i| T::try_from(i).ok()))
    }

    /// A `yyyyMMddHHmmss` field. Kept (with its error) even when not a
    /// valid date-time.
    pub(crate) fn datetime(&mut self, names: &[&str]) -> Option<PbDateTime> {
        self.take(names, |v| scalar_text(v).map(|s| PbDateTime::parse(&s)))
    }

    /// A `yyyyMMdd` field. Kept (with its error) even when not a valid date.
    pub(crate) fn date(&mut self, names: &[&str]) -> Option<PbDate> {
        self.take(names, |v| scalar_text(v).map(|s| PbDate::parse(&s)))
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            // 300.0 is 300; 300.5 or 1e300 is not an integer we can keep.
            (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            if s.contains(',') {
                s.replace(',', "").parse().ok()
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => Fields::new(m),
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn numbers_and_strings_both_read_as_integers() {
        let mut f = fields(json!({
            "a": 300, "b": "300", "c": " 1,100,000 ", "d": 300.0, "e": "abc", "f": {"x": 1},
            "g": -5, "h": 1e300
        }));
        assert_eq!(f.int::<u32>(&["a"]), Some(300));
        assert_eq!(f.int::<u32>(&["b"]), Some(300));
        assert_eq!(f.int::<i64>(&["c"]), Some(1_100_000));
        assert_eq!(f.int::<u32>(&["d"]), Some(300));
        assert_eq!(f.int::<u32>(&["e"]), None);
        assert_eq!(f.int::<u32>(&["f"]), None);
        assert_eq!(f.int::<u32>(&["g"]), None, "negative does not fit u32");
        assert_eq!(f.int::<i64>(&["h"]), None);
        let rest = f.rest();
        let left: Vec<&str> = rest.keys().map(String::as_str).collect();
        assert_eq!(left, ["e", "f", "g", "h"], "untyped values stay");
    }

    #[test]
    fn spelling_variants_and_blank_values() {
        let mut f = fields(json!({"ntsconfirmNum": "X1", "empty": "  ", "nul": null, "n": 12}));
        assert_eq!(f.text(&["ntsConfirmNum"]).as_deref(), Some("X1"));
        assert_eq!(f.text(&["empty"]), None);
        assert_eq!(f.text(&["nul"]), None);
        assert_eq!(f.text(&["absent"]), None);
        assert_eq!(f.text(&["n"]).as_deref(), Some("12"));
        assert!(f.rest().is_empty(), "blank values are absent values");
    }
}
