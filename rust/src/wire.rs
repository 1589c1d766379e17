//! JSON (de)serialization rules shared by every record.
//!
//! serde's derive cannot express the contract on its own: records must keep the
//! fields a newer writer added (forward compatibility) and non-finite floats must
//! be refused rather than silently written as `null`. `#[serde(flatten)]` would
//! keep unknown fields, but it buffers every value and breaks integer map keys,
//! and large tries are on the hot path. So each record gets a small generated
//! visitor (see [`record!`]) and each field type implements [`Wire`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::json::Json;

/// Where a value that JSON cannot carry was found, innermost segment first.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFinite {
    path: Vec<String>,
    value: f64,
}

impl NonFinite {
    pub fn new(value: f64) -> Self {
        NonFinite { path: Vec::new(), value }
    }
    /// Prepends one path segment on the way out of a nested value.
    pub fn at(mut self, segment: impl fmt::Display) -> Self {
        self.path.push(segment.to_string());
        self
    }
    pub fn path(&self) -> String {
        let mut out = String::new();
        for seg in self.path.iter().rev() {
            if !out.is_empty() && !seg.starts_with('[') {
                out.push('.');
            }
            out.push_str(seg);
        }
        out
    }
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} cannot be represented in JSON", self.path(), self.value)
    }
}

/// How one field type travels through JSON.
pub trait Wire: Sized {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    /// Refuses what could be held in memory but not written (NaN, ±inf).
    fn check(&self) -> Result<(), NonFinite> {
        Ok(())
    }
}

/// Adapts a `Wire` value to serde's `Serialize`.
pub struct Ser<'a, T>(pub &'a T);

impl<T: Wire> Serialize for Ser<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.ser(s)
    }
}

/// Adapts a `Wire` value to serde's `Deserialize`.
#[repr(transparent)]
pub struct De<T>(pub T);

impl<'de, T: Wire> Deserialize<'de> for De<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::de(d).map(De)
    }
}

/// Writes any record as compact JSON. A non-finite float makes the writer
/// fail before anything is returned, so nothing partial is ever produced; only
/// then is the value walked again to name where the offending float sits.
pub fn to_json<T: Wire>(value: &T) -> Result<String> {
    // serde_json writes UTF-8 only.
    to_json_vec(value).map(|bytes| String::from_utf8(bytes).expect("serde_json writes UTF-8"))
}

pub fn to_json_vec<T: Wire>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(1024);
    match value.ser(&mut serde_json::Serializer::new(&mut out)) {
        Ok(()) => Ok(out),
        Err(e) => Err(explain(value, e)),
    }
}

pub fn to_value<T: Wire>(value: &T) -> Result<Value> {
    serde_json::to_value(Ser(value)).map_err(|e| explain(value, e))
}

fn explain<T: Wire>(value: &T, err: serde_json::Error) -> Error {
    match value.check() {
        Err(non_finite) => Error::serialization(non_finite.to_string()),
        Ok(()) => Error::serialization(err.to_string()),
    }
}

/// Reads a document. UTF-8 is checked once for the whole text, which is
/// markedly cheaper than serde_json checking every string on its own.
pub fn from_json<T: Wire>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let decoded = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str::<De<T>>(text).map(|d| d.0),
        // Let serde_json find and report where the bad byte is.
        Err(_) => serde_json::from_slice::<De<T>>(bytes).map(|d| d.0),
    };
    decoded.map_err(|e| naming_the_field::<T>(bytes, e))
}

/// serde_json says where in the text a document went wrong, not which field
/// that is. Tracking the path costs time on every read, and reads rarely
/// fail, so only a failed read is done again with the path tracked, and the
/// error then starts with it: `calls[0].prompt_tokens: invalid value: …`.
fn naming_the_field<T: Wire>(bytes: &[u8], error: serde_json::Error) -> serde_json::Error {
    use serde_path_to_error::Segment;
    use std::fmt::Write as _;
    let mut again = serde_json::Deserializer::from_slice(bytes);
    let Err(tracked) = serde_path_to_error::deserialize::<_, De<T>>(&mut again) else {
        return error;
    };
    // Only the part of the path that is known: the library shows a field
    // it has not read yet (a truncated document) as `?`.
    let mut path = String::new();
    for segment in tracked.path().iter() {
        let _ = match segment {
            Segment::Seq { index } => write!(path, "[{index}]"),
            Segment::Map { key } | Segment::Enum { variant: key } if path.is_empty() => write!(path, "{key}"),
            Segment::Map { key } | Segment::Enum { variant: key } => write!(path, ".{key}"),
            Segment::Unknown => break,
        };
    }
    if path.is_empty() {
        error
    } else {
        de::Error::custom(format_args!("{path}: {error}"))
    }
}

pub fn from_value<T: Wire>(value: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value::<De<T>>(value).map(|d| d.0)
}

/// Types whose serde form already is the wire form.
macro_rules! plain_wire {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::wire::Wire for $t {
            fn ser<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(self, s)
            }
            fn de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                serde::Deserialize::deserialize(d)
            }
        }
    )*};
}
pub(crate) use plain_wire;

plain_wire!(String, bool, u32, u64, usize, Uuid);

impl Wire for Value {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Serialize::serialize(self, s)
    }
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Deserialize::deserialize(d)
    }
    // serde_json::Value cannot hold a non-finite number, so nothing to check.
}

impl Wire for f64 {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_finite() {
            s.serialize_f64(*self)
        } else {
            Err(ser::Error::custom(NonFinite::new(*self)))
        }
    }
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64::deserialize(d)
    }
    fn check(&self) -> Result<(), NonFinite> {
        if self.is_finite() {
            Ok(())
        } else {
            Err(NonFinite::new(*self))
        }
    }
}

/// `Z` and only as many fraction digits as needed, as chrono writes for NeMo
/// Relay; any RFC 3339 offset is read and normalised to UTC.
impl Wire for DateTime<Utc> {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match crate::timestamp::Written::of(self) {
            Some(text) => s.serialize_str(text.as_str()),
            None => s.serialize_str(&self.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DateTime<Utc>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                crate::timestamp::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl<T: Wire> Wire for Option<T> {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(v) => v.ser(s),
            None => s.serialize_none(),
        }
    }
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<De<T>>::deserialize(d).map(|o| o.map(|v| v.0))
    }
    fn check(&self) -> Result<(), NonFinite> {
        match self {
            Some(v) => v.check(),
            None => Ok(()),
        }
    }
}

impl<T: Wire> Wire for Arc<T> {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).ser(s)
    }
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::de(d).map(Arc::new)
    }
    fn check(&self) -> Result<(), NonFinite> {
        (**self).check()
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for item in self {
            seq.serialize_element(&Ser(item))?;
        }
        seq.end()
    }
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Wire> Visitor<'de> for V<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(De(item)) = seq.next_element::<De<T>>()? {
                    out.push(item);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
    fn check(&self) -> Result<(), NonFinite> {
        for (i, item) in self.iter().enumerate() {
            item.check().map_err(|e| e.at(format_args!("[{i}]")))?;
        }
        Ok(())
    }
}

/// Map keys: `String` as is, `u32` as its decimal string (JSON keys are strings).
pub trait WireKey: Ord + Sized + fmt::Display + fmt::Debug + Serialize {
    fn parse(key: &str) -> Option<Self>;
    const EXPECTED: &'static str;
}

impl WireKey for String {
    fn parse(key: &str) -> Option<Self> {
        Some(key.to_owned())
    }
    const EXPECTED: &'static str = "a string key";
}

impl WireKey for u32 {
    fn parse(key: &str) -> Option<Self> {
        // Only canonical decimal: "01" or "+1" would not round-trip to the same key.
        if key == "0" || (!key.starts_with('0') && !key.starts_with('+')) {
            key.parse().ok()
        } else {
            None
        }
    }
    const EXPECTED: &'static str = "a decimal u32 key";
}

impl<K: WireKey, T: Wire> Wire for BTreeMap<K, T> {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            // JSON writers quote integer keys themselves ("1"), no string needed.
            map.serialize_entry(k, &Ser(v))?;
        }
        map.end()
    }
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<K, T>(PhantomData<(K, T)>);
        impl<'de, K: WireKey, T: Wire> Visitor<'de> for V<K, T> {
            type Value = BTreeMap<K, T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = access.next_key::<Key<'de>>()? {
                    let k = K::parse(key.as_str()).ok_or_else(|| {
                        de::Error::invalid_value(de::Unexpected::Str(key.as_str()), &K::EXPECTED)
                    })?;
                    let De(v) = access.next_value::<De<T>>()?;
                    out.insert(k, v);
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
    fn check(&self) -> Result<(), NonFinite> {
        for (k, v) in self {
            v.check().map_err(|e| e.at(format_args!("[{k:?}]")))?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the input when it has no escapes.
pub struct Key<'de>(Cow<'de, str>);

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Fields this version does not know, kept so that a read-modify-write by an
/// older process does not erase what a newer one wrote. Each value is kept as
/// its JSON text, so nothing a newer writer can write is lost or refused
/// (integers beyond 64 bits, `1e400`, escaped surrogates). Boxed and usually
/// `None`, so it costs one pointer per record.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(clippy::box_collection)] // 8 bytes per record instead of 24: most have no extras
pub struct Extra(Option<Box<BTreeMap<String, Json>>>);

impl Extra {
    pub fn insert(&mut self, key: String, value: impl Into<Json>) {
        self.0.get_or_insert_with(Default::default).insert(key, value.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Json)> {
        self.0.iter().flat_map(|m| m.iter())
    }
    /// The fields as one JSON object (`{}` when there are none).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k).expect("a string key serializes"));
            out.push(':');
            out.push_str(v.as_str());
        }
        out.push('}');
        out
    }
    pub fn from_json(text: &str) -> std::result::Result<Self, serde_json::Error> {
        let map: BTreeMap<String, De<Json>> = serde_json::from_str(text)?;
        Ok(Extra(if map.is_empty() { None } else { Some(Box::new(map.into_iter().map(|(k, v)| (k, v.0)).collect())) }))
    }
    pub fn serialize_into<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        for (k, v) in self.iter() {
            map.serialize_entry(k, &Ser(v))?;
        }
        Ok(())
    }
}

/// Declares a wire record: the struct, its `Wire` impl and serde impls.
///
/// Each field is tagged with how it travels:
/// - `req`: always written; missing on read is an error;
/// - `opt`: an `Option` omitted when `None`; missing or `null` reads as `None`;
/// - `null`: an `Option` always written (`null` when `None`);
/// - `def`: always written; missing or `null` reads as `Default::default()`.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $kind:ident $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// Fields written by a newer version, kept verbatim.
            pub extra: $crate::wire::Extra,
        }

        impl $name {
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        /// Every field but the extras (fields from newer writers), which the
        /// hash leaves out (see `hashing`).
        impl $crate::hashing::ValueHash for $name {
            fn value_hash<H: std::hash::Hasher>(&self, _state: &mut H) {
                $( $crate::hashing::ValueHash::value_hash(&self.$field, _state); )*
            }
        }

        impl $crate::wire::Wire for $name {
            fn ser<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                $( record!(@ser $kind map $field self.$field); )*
                self.extra.serialize_into(&mut map)?;
                map.end()
            }

            fn de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }
                    #[allow(unused_mut)]
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<$name, A::Error> {
                        $( let mut $field: Option<$ty> = None; )*
                        let mut extra = $crate::wire::Extra::default();
                        while let Some(key) = access.next_key::<$crate::wire::Key<'de>>()? {
                            match key.as_str() {
                                $( stringify!($field) => {
                                    if $field.is_some() {
                                        return Err(serde::de::Error::duplicate_field(stringify!($field)));
                                    }
                                    $field = Some(record!(@read $kind access $ty));
                                } )*
                                _ => {
                                    let value = access.next_value::<$crate::wire::De<$crate::json::Json>>()?.0;
                                    extra.insert(key.into_owned(), value);
                                }
                            }
                        }
                        Ok($name {
                            $( $field: record!(@finish $kind $field), )*
                            extra,
                        })
                    }
                }
                d.deserialize_map(V)
            }

            fn check(&self) -> Result<(), $crate::wire::NonFinite> {
                $( $crate::wire::Wire::check(&self.$field).map_err(|e| e.at(stringify!($field)))?; )*
                Ok(())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::wire::Wire::ser(self, s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::wire::Wire::de(d)
            }
        }
    };

    (@ser opt $map:ident $field:ident $value:expr) => {
        if let Some(v) = &$value {
            $map.serialize_entry(stringify!($field), &$crate::wire::Ser(v))?;
        }
    };
    (@ser $kind:ident $map:ident $field:ident $value:expr) => {
        $map.serialize_entry(stringify!($field), &$crate::wire::Ser(&$value))?;
    };

    (@read def $access:ident $ty:ty) => {
        $access.next_value::<$crate::wire::De<Option<$ty>>>()?.0.unwrap_or_default()
    };
    (@read $kind:ident $access:ident $ty:ty) => {
        $access.next_value::<$crate::wire::De<$ty>>()?.0
    };

    (@finish req $field:ident) => {
        $field.ok_or_else(|| serde::de::Error::missing_field(stringify!($field)))?
    };
    (@finish def $field:ident) => { $field.unwrap_or_default() };
    (@finish $kind:ident $field:ident) => { $field.flatten() };
}
pub(crate) use record;
