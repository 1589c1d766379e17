//! Free-form JSON fields (`annotated_request`, `extensions`, ...).
//!
//! They are kept as compact JSON text rather than as a `serde_json::Value`
//! tree: decoding then only validates and copies bytes instead of building a
//! map per object, which made up most of the cost of reading a run. Python
//! sees plain JSON values, built when the attribute is read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::wire::Wire;

#[derive(Clone)]
pub struct Json(Box<RawValue>);

impl Json {
    pub fn null() -> Self {
        Json::from_value(&Value::Null)
    }

    pub fn from_value(value: &Value) -> Self {
        // A Value always serializes: its numbers are finite by construction.
        Json(serde_json::value::to_raw_value(value).expect("a JSON value serializes"))
    }

    /// The parsed value; `None` for valid JSON that `serde_json::Value`
    /// cannot hold (a number beyond f64, such as `1e400`).
    pub fn to_value(&self) -> Option<Value> {
        serde_json::from_str(self.0.get()).ok()
    }

    /// Text that is already compact JSON (checked, not rewritten).
    pub fn from_compact_text(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(Json)
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    pub fn is_null(&self) -> bool {
        self.0.get() == "null"
    }
}

impl Default for Json {
    fn default() -> Self {
        Json::null()
    }
}

/// Equal when Python would find what `json.loads` makes of the two equal,
/// so that two models compare as their `to_dict()`s do: key order and
/// spelling (escapes) aside, `1 == 1.0`, `true == 1`, integers of any size
/// exactly, `1e400 == 2e400` (both infinite), and of a key given twice the
/// last counts.
impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || same_value(self.as_str(), other.as_str(), 0)
    }
}

/// Two compact JSON texts, compared as Python values. Fields nest at most
/// `FIELD_DEPTH + 1` levels (see `Wire::de` below); past that, which only
/// hand-made values reach, the text alone decides, so the recursion stays
/// bounded.
fn same_value(a: &str, b: &str, depth: usize) -> bool {
    use std::collections::BTreeMap;
    type Object<'a> = BTreeMap<Text, &'a RawValue>;
    if depth > FIELD_DEPTH + 1 {
        return a == b;
    }
    let same = |x: &RawValue, y: &RawValue| same_value(x.get(), y.get(), depth + 1);
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(b'{'), Some(b'{')) => match (serde_json::from_str::<Object<'_>>(a), serde_json::from_str::<Object<'_>>(b)) {
            (Ok(x), Ok(y)) => x.len() == y.len() && x.iter().zip(&y).all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy)),
            _ => false,
        },
        (Some(b'['), Some(b'[')) => {
            match (serde_json::from_str::<Vec<&RawValue>>(a), serde_json::from_str::<Vec<&RawValue>>(b)) {
                (Ok(x), Ok(y)) => x.len() == y.len() && x.iter().zip(&y).all(|(vx, vy)| same(vx, vy)),
                _ => false,
            }
        }
        (Some(b'"'), Some(b'"')) => {
            matches!((serde_json::from_str::<Text>(a), serde_json::from_str::<Text>(b)), (Ok(x), Ok(y)) if x == y)
        }
        (Some(b'n'), Some(b'n')) => true,
        _ => match (Number::of(a), Number::of(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// Feeds a JSON text into `state` so that texts `same_value` finds equal hash
/// alike: the same walk over the same parse, with object members in key
/// order, and a number (or boolean) as the nearest `f64`, which numbers
/// Python finds equal share (`1`, `1.0` and `true` alike; `-0.0` as `0`).
pub(crate) fn hash_value<H: std::hash::Hasher>(text: &str, depth: usize, state: &mut H) {
    use std::collections::BTreeMap;
    use std::hash::Hash;
    // Past this depth `same_value` compares the text itself.
    if depth > FIELD_DEPTH + 1 {
        return text.hash(state);
    }
    match text.as_bytes().first() {
        Some(b'{') => match serde_json::from_str::<BTreeMap<Text, &RawValue>>(text) {
            Ok(members) => {
                (b'{', members.len()).hash(state);
                for (key, value) in &members {
                    key.0.hash(state);
                    hash_value(value.get(), depth + 1, state);
                }
            }
            Err(_) => text.hash(state),
        },
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => {
                (b'[', items.len()).hash(state);
                for item in &items {
                    hash_value(item.get(), depth + 1, state);
                }
            }
            Err(_) => text.hash(state),
        },
        Some(b'"') => match serde_json::from_str::<Text>(text) {
            Ok(t) => (b'"', t.0).hash(state),
            Err(_) => text.hash(state),
        },
        Some(b'n') => b'n'.hash(state),
        _ => match Number::of(text) {
            Some(n) => (b'0', crate::hashing::float_bits(n.nearest_f64())).hash(state),
            None => text.hash(state),
        },
    }
}

/// A JSON string as the code points Python's `json.loads` makes of it, in
/// WTF-8: escapes decoded, a surrogate pair joined, a lone surrogate kept
/// (valid JSON, which no Rust `String` can hold).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Text(Vec<u8>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Text, E> {
                Ok(Text(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.as_bytes().to_vec()))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// A JSON number, or a boolean (which Python compares as 0 or 1).
enum Number<'a> {
    /// Exact: sign and the decimal digits, which JSON spells canonically.
    Int { negative: bool, digits: &'a str },
    Float(f64),
}

impl<'a> Number<'a> {
    /// Equal numbers have equal nearest floats: an int equal to a float is
    /// that float exactly, and parsing rounds an exact value to itself.
    fn nearest_f64(&self) -> f64 {
        match *self {
            Number::Int { negative, digits } => {
                let v: f64 = digits.parse().unwrap_or(f64::INFINITY);
                if negative { -v } else { v }
            }
            Number::Float(f) => f,
        }
    }

    fn of(text: &'a str) -> Option<Number<'a>> {
        match text.as_bytes().first()? {
            b't' => Some(Number::Int { negative: false, digits: "1" }),
            b'f' => Some(Number::Int { negative: false, digits: "0" }),
            b'-' | b'0'..=b'9' if text.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) => {
                text.parse().ok().map(Number::Float)
            }
            b'-' | b'0'..=b'9' => {
                let digits = text.trim_start_matches('-');
                Some(Number::Int { negative: text.starts_with('-') && digits != "0", digits })
            }
            _ => None,
        }
    }
}

impl PartialEq for Number<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Number::Int { negative: n1, digits: d1 }, Number::Int { negative: n2, digits: d2 }) => n1 == n2 && d1 == d2,
            (Number::Float(x), Number::Float(y)) => x == y,
            (Number::Int { negative, digits }, Number::Float(f)) | (Number::Float(f), Number::Int { negative, digits }) => {
                // An integral float printed in full is its exact value.
                f.is_finite() && f.fract() == 0.0 && {
                    let exact = format!("{:.0}", f.abs());
                    exact == *digits && (*negative == (*f < 0.0) || exact == "0")
                }
            }
        }
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Value> for Json {
    fn from(value: Value) -> Self {
        Json::from_value(&value)
    }
}

impl Wire for Json {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let shape = Shape::of(raw.get().as_bytes());
        if shape.nesting > FIELD_DEPTH + 1 {
            return Err(serde::de::Error::custom(format_args!(
                "a JSON field nested {} levels deep; at most {} are read (readers of whole records, NeMo Relay's included, stop at 128)",
                shape.nesting,
                FIELD_DEPTH + 1
            )));
        }
        Ok(match shape.first_whitespace {
            // Whitespace between tokens (a pretty-printing writer): drop it,
            // since stored values are compact JSON.
            Some(first) => Json(RawValue::from_string(compact(raw.get(), first)).map_err(serde::de::Error::custom)?),
            None => Json(raw),
        })
    }
}

/// How deep a JSON field may nest (a scalar is 0, `[1]` is 1). Readers,
/// NeMo Relay's included, stop at 128 levels for a whole document, and a
/// record adds a few around its fields; the Python layer refuses deeper
/// values when a model is built, and reading refuses them too.
pub const FIELD_DEPTH: usize = 120;

/// What one pass over a JSON text finds outside its strings.
struct Shape {
    first_whitespace: Option<usize>,
    nesting: usize,
}

impl Shape {
    /// Skips string bodies with `memchr` (SIMD), so spaces inside strings,
    /// which are common, cost almost nothing.
    fn of(bytes: &[u8]) -> Shape {
        let (mut first_whitespace, mut depth, mut nesting) = (None, 0usize, 0usize);
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b' ' | b'\n' | b'\r' | b'\t' => {
                    first_whitespace = first_whitespace.or(Some(i));
                    i += 1;
                }
                b'[' | b'{' => {
                    depth += 1;
                    nesting = nesting.max(depth);
                    i += 1;
                }
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                b'"' => {
                    i += 1;
                    loop {
                        let Some(at) = bytes.get(i..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) else {
                            return Shape { first_whitespace, nesting };
                        };
                        let j = i + at;
                        if bytes[j] == b'\\' {
                            i = j + 2;
                        } else {
                            i = j + 1;
                            break;
                        }
                    }
                }
                _ => i += 1,
            }
        }
        Shape { first_whitespace, nesting }
    }
}

/// The text without whitespace outside strings; `first` is where the first
/// such whitespace is.
fn compact(text: &str, first: usize) -> String {
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    let (mut in_string, mut escaped) = (false, false);
    for ch in text[first..].chars() {
        if in_string {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            out.push(ch);
        } else if ch == '"' {
            in_string = true;
            out.push(ch);
        } else if !matches!(ch, ' ' | '\n' | '\r' | '\t') {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{from_json, from_value, to_json};

    #[test]
    fn kept_compact_and_verbatim() {
        let j: Json = from_json(br#"{"b": [1, 2.50, "a b\" c"],	"a":{}}"#).unwrap();
        assert_eq!(j.as_str(), r#"{"b":[1,2.50,"a b\" c"],"a":{}}"#);
        assert_eq!(to_json(&j).unwrap(), j.as_str());
        let j: Json = from_json(br#"{"x":"no  change","y":"esc\" aped \\","z":[1]}"#).unwrap();
        assert_eq!(j.as_str(), r#"{"x":"no  change","y":"esc\" aped \\","z":[1]}"#);
        let j: Json = from_json(b"[\"a\\\\\" ,\n1]").unwrap();
        assert_eq!(j.as_str(), r#"["a\\",1]"#);
    }

    #[test]
    fn equality_is_by_value() {
        let a: Json = from_json(br#"{"a":1,"b":[true,null]}"#).unwrap();
        let b: Json = from_json(br#"{"b":[true,null],"a":1}"#).unwrap();
        let c: Json = from_json(br#"{"a":2,"b":[true,null]}"#).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(Json::from_value(&a.to_value().unwrap()), a);
        let huge: Json = from_json(b"[1e400]").unwrap();
        assert!(huge.to_value().is_none());
        assert_eq!(huge, huge.clone());
    }

    #[test]
    fn equality_is_pythons() {
        let j = |t: &str| from_json::<Json>(t.as_bytes()).unwrap();
        let equal = [
            ("1", "1.0"),
            ("-0", "0.0"),
            ("0", "-0.0"),
            ("true", "1"),
            ("false", "0.0"),
            ("[1e400]", "[2e400]"),
            ("18446744073709551616", "1.8446744073709552e19"),
            ("123456789012345678901234567890", "123456789012345678901234567890"),
            (r#""\u0041\n""#, "\"A\\n\""),
            (r#"{"a":1,"b":[true,{"c":null}]}"#, r#"{"b":[1,{"c":null}],"a":1.0}"#),
            (r#"{"a":1,"a":2}"#, r#"{"a":2}"#),
            (r#"{"\ud800":"\udfff","b":1}"#, r#"{"b":1.0,"\ud800":"\udfff"}"#),
            (r#""\ud83d\ude00""#, "\"\u{1f600}\""),
        ];
        for (a, b) in equal {
            assert_eq!(j(a), j(b), "{a} == {b}");
            assert_eq!(j(b), j(a), "{b} == {a}");
        }
        let different = [
            ("18446744073709551616", "18446744073709551617"),
            ("9007199254740993", "9007199254740992.0"),
            ("-1", "1"),
            ("1.5", "1"),
            ("true", "2"),
            ("null", "false"),
            ("null", "0"),
            ("\"1\"", "1"),
            ("[1,2]", "[2,1]"),
            ("[1]", "[1,1]"),
            (r#"{"a":1}"#, r#"{"a":1,"b":2}"#),
            (r#"{"a":1}"#, r#"{"b":1}"#),
            ("[1e400]", "[-1e400]"),
            ("{}", "[]"),
            (r#""\ud800""#, r#""\ud801""#),
            (r#""\ud83d""#, r#""\ud83d\ude00""#),
        ];
        for (a, b) in different {
            assert_ne!(j(a), j(b), "{a} != {b}");
            assert_ne!(j(b), j(a), "{b} != {a}");
        }
    }

    #[test]
    fn nesting_is_bounded_when_read_and_when_compared() {
        let nested = |levels: usize, leaf: &str| format!("{}{leaf}{}", "[".repeat(levels), "]".repeat(levels));
        assert!(from_json::<Json>(nested(FIELD_DEPTH + 1, "1").as_bytes()).is_ok());
        let err = from_json::<Json>(nested(FIELD_DEPTH + 2, "1").as_bytes()).unwrap_err().to_string();
        assert!(err.contains("nested 122 levels deep"), "{err}");
        // Far deeper than any field can be, built by hand: compared without
        // recursing all the way down (this would overflow the stack).
        let deep = |leaf: &str| Json::from_compact_text(nested(20_000, leaf)).unwrap();
        assert_ne!(deep("1"), deep("1.0"));
        assert_eq!(deep("1"), deep("1"));
        let (a, b) = (from_json::<Json>(nested(FIELD_DEPTH + 1, "1").as_bytes()).unwrap(), nested(FIELD_DEPTH + 1, "1.0"));
        assert_eq!(a, from_json::<Json>(b.as_bytes()).unwrap());
    }

    #[test]
    fn reads_from_a_value_tree_too() {
        let j: Json = from_value(serde_json::json!({"k": [1, "x"]})).unwrap();
        assert_eq!(j.as_str(), r#"{"k":[1,"x"]}"#);
        assert!(from_json::<Json>(b"nul").is_err());
        assert!(Json::null().is_null());
    }
}
