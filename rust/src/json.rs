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
        self.as_str() == other.as_str() || same_value(self.as_str(), other.as_str())
    }
}

/// Two compact JSON texts, compared as Python values.
fn same_value(a: &str, b: &str) -> bool {
    use std::collections::BTreeMap;
    type Object<'a> = BTreeMap<String, &'a RawValue>;
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(b'{'), Some(b'{')) => match (serde_json::from_str::<Object<'_>>(a), serde_json::from_str::<Object<'_>>(b)) {
            (Ok(x), Ok(y)) => {
                x.len() == y.len() && x.iter().zip(&y).all(|((kx, vx), (ky, vy))| kx == ky && same_value(vx.get(), vy.get()))
            }
            _ => false,
        },
        (Some(b'['), Some(b'[')) => {
            match (serde_json::from_str::<Vec<&RawValue>>(a), serde_json::from_str::<Vec<&RawValue>>(b)) {
                (Ok(x), Ok(y)) => x.len() == y.len() && x.iter().zip(&y).all(|(vx, vy)| same_value(vx.get(), vy.get())),
                _ => false,
            }
        }
        (Some(b'"'), Some(b'"')) => {
            matches!((serde_json::from_str::<String>(a), serde_json::from_str::<String>(b)), (Ok(x), Ok(y)) if x == y)
        }
        (Some(b'n'), Some(b'n')) => true,
        _ => match (Number::of(a), Number::of(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// A JSON number, or a boolean (which Python compares as 0 or 1).
enum Number<'a> {
    /// Exact: sign and the decimal digits, which JSON spells canonically.
    Int { negative: bool, digits: &'a str },
    Float(f64),
}

impl<'a> Number<'a> {
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
        Ok(match compact(raw.get()) {
            // Whitespace between tokens (a pretty-printing writer): drop it,
            // since stored values are compact JSON.
            Some(text) => Json(RawValue::from_string(text).map_err(serde::de::Error::custom)?),
            None => Json(raw),
        })
    }
}

/// The text without whitespace outside strings, or `None` when it has none
/// (the common case: every writer we know of writes compact JSON).
fn compact(text: &str) -> Option<String> {
    let first = first_whitespace_outside_strings(text.as_bytes())?;
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
    Some(out)
}

/// Skips string bodies with `memchr` (SIMD), so spaces inside strings, which
/// are common, cost almost nothing.
fn first_whitespace_outside_strings(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\n' | b'\r' | b'\t' => return Some(i),
            b'"' => {
                i += 1;
                loop {
                    let j = i + memchr::memchr2(b'"', b'\\', &bytes[i..])?;
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
    None
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
        ];
        for (a, b) in different {
            assert_ne!(j(a), j(b), "{a} != {b}");
            assert_ne!(j(b), j(a), "{b} != {a}");
        }
    }

    #[test]
    fn reads_from_a_value_tree_too() {
        let j: Json = from_value(serde_json::json!({"k": [1, "x"]})).unwrap();
        assert_eq!(j.as_str(), r#"{"k":[1,"x"]}"#);
        assert!(from_json::<Json>(b"nul").is_err());
        assert!(Json::null().is_null());
    }
}
