//! Python <-> Rust conversion of model fields.
//!
//! Every field type knows how to read itself from a Python value (raising
//! `TypeError` for a wrong type and `ValueError` for a bad value, both naming
//! the field) and how to present itself to Python. A getter hands out lists
//! and maps as read-only views (`views`); `to_py` builds fresh `list`/`dict`
//! objects, for reprs and pickling.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDateAccess, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyMapping,
    PySequence, PyString, PyTimeAccess, PyTuple, PyTzInfo, PyTzInfoAccess, PyType,
};
use pyo3::IntoPyObjectExt;
use serde_json::Value;
use uuid::Uuid;

use crate::model::WireEnum;
use crate::stats::Digest;
use crate::wire::{self, Ser};

/// Where a value sits inside the arguments, for error messages; only turned
/// into text when an error is raised.
pub enum Loc<'a> {
    Field(&'static str, &'a str),
    Index(&'a Loc<'a>, usize),
    Key(&'a Loc<'a>, &'a dyn fmt::Debug),
}

impl Loc<'_> {
    /// The field the path starts from.
    fn field(&self) -> &Loc<'_> {
        match self {
            Loc::Field(..) => self,
            Loc::Index(parent, _) | Loc::Key(parent, _) => parent.field(),
        }
    }
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Field(cls, field) => write!(f, "{cls}.{field}"),
            Loc::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Loc::Key(parent, k) => write!(f, "{parent}[{k:?}]"),
        }
    }
}

pub fn type_name(ob: &Bound<'_, PyAny>) -> String {
    ob.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

pub fn type_error(loc: &Loc<'_>, expected: &str, ob: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("{loc}: expected {expected}, got {}", type_name(ob)))
}

pub fn value_error(loc: &Loc<'_>, msg: impl fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{loc}: {msg}"))
}

/// The text of a `str`; one holding a lone surrogate (which no UTF-8 text,
/// and so no JSON document or Redis key, can carry) is a bad value.
fn text<'a>(s: &'a Bound<'_, PyString>, loc: &Loc<'_>) -> PyResult<&'a str> {
    s.to_str().map_err(|_| value_error(loc, LONE_SURROGATE))
}

pub const LONE_SURROGATE: &str = "not valid Unicode text (it holds a lone surrogate)";

/// A model field type as seen from Python.
pub trait PyField: Sized + 'static {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self>;
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;

    /// What a getter returns for the field `project(owner)`: the value as
    /// `to_py` gives it, except that a list or map is handed out as a view
    /// that reads the record in place (see `views`).
    fn field_to_py<'py, P, F>(py: Python<'py>, owner: &Arc<P>, project: F) -> PyResult<Bound<'py, PyAny>>
    where
        P: Send + Sync + 'static,
        F: Fn(&P) -> &Self + Send + Sync + 'static,
    {
        project(owner).to_py(py)
    }
}

impl PyField for String {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        match ob.cast::<PyString>() {
            Ok(s) => Ok(text(s, loc)?.to_owned()),
            Err(_) => Err(type_error(loc, "str", ob)),
        }
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyString::new(py, self).into_any())
    }
}

impl PyField for bool {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        match ob.cast::<PyBool>() {
            Ok(b) => Ok(b.is_true()),
            Err(_) => Err(type_error(loc, "bool", ob)),
        }
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyBool::new(py, *self).to_owned().into_any())
    }
}

/// Reads a Python `int` (never a `bool`) that must fit `0..=max`.
fn unsigned(ob: &Bound<'_, PyAny>, loc: &Loc<'_>, max: u64) -> PyResult<u64> {
    if !ob.is_instance_of::<PyInt>() || ob.is_instance_of::<PyBool>() {
        return Err(type_error(loc, "int", ob));
    }
    match ob.extract::<u64>() {
        Ok(v) if v <= max => Ok(v),
        _ => Err(value_error(loc, format_args!("must be an integer from 0 to {max}, got {ob}"))),
    }
}

macro_rules! unsigned_field {
    ($($t:ty),*) => {$(
        impl PyField for $t {
            fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
                unsigned(ob, loc, <$t>::MAX as u64).map(|v| v as $t)
            }
            fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                Ok(self.into_pyobject(py)?.into_any())
            }
        }
    )*};
}
unsigned_field!(u32, u64, usize);

impl PyField for f64 {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        if let Ok(f) = ob.cast::<PyFloat>() {
            return Ok(f.value());
        }
        if ob.is_instance_of::<PyInt>() && !ob.is_instance_of::<PyBool>() {
            return ob.extract::<f64>().map_err(|e| value_error(loc, e));
        }
        Err(type_error(loc, "float", ob))
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyFloat::new(py, *self).into_any())
    }
}

static UUID_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

impl PyField for Uuid {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        let py = ob.py();
        let cls = UUID_CLASS.import(py, "uuid", "UUID")?;
        if ob.is_instance(cls)? {
            let int: u128 = ob.getattr(pyo3::intern!(py, "int"))?.extract()?;
            return Ok(Uuid::from_u128(int));
        }
        if let Ok(s) = ob.cast::<PyString>() {
            let s = text(s, loc)?;
            return Uuid::parse_str(s).map_err(|_| value_error(loc, format_args!("malformed UUID {s:?}")));
        }
        Err(type_error(loc, "uuid.UUID or str", ob))
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cls = UUID_CLASS.import(py, "uuid", "UUID")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item(pyo3::intern!(py, "int"), self.as_u128())?;
        cls.call((), Some(&kwargs))
    }
}

impl PyField for DateTime<Utc> {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        let py = ob.py();
        if let Ok(dt) = ob.cast::<PyDateTime>() {
            // Naive as Python defines it: no tzinfo, or one without an offset.
            if dt.get_tzinfo().is_none() || dt.call_method0(pyo3::intern!(py, "utcoffset"))?.is_none() {
                return Err(value_error(loc, "naive datetime: a timezone is required (e.g. tzinfo=timezone.utc)"));
            }
            let utc = dt
                .call_method1(pyo3::intern!(py, "astimezone"), (PyTzInfo::utc(py)?,))
                .map_err(|_| value_error(loc, "datetime out of range once in UTC"))?;
            let utc = utc.cast::<PyDateTime>()?;
            let naive = NaiveDate::from_ymd_opt(utc.get_year(), utc.get_month().into(), utc.get_day().into())
                .and_then(|d| {
                    d.and_hms_micro_opt(
                        utc.get_hour().into(),
                        utc.get_minute().into(),
                        utc.get_second().into(),
                        utc.get_microsecond(),
                    )
                })
                .ok_or_else(|| value_error(loc, "datetime out of range"))?;
            return Ok(naive.and_utc());
        }
        if let Ok(s) = ob.cast::<PyString>() {
            return crate::timestamp::parse(text(s, loc)?).map_err(|e| value_error(loc, e));
        }
        Err(type_error(loc, "datetime.datetime", ob))
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        use chrono::Datelike;
        // Python keeps microseconds; a nanosecond value written by another
        // process stays exact in the model and on the wire.
        let micros = (self.nanosecond() / 1_000).min(999_999);
        let utc = PyTzInfo::utc(py)?;
        Ok(PyDateTime::new(
            py,
            self.year(),
            self.month() as u8,
            self.day() as u8,
            self.hour() as u8,
            self.minute() as u8,
            self.second() as u8,
            micros,
            Some(&utc),
        )?
        .into_any())
    }
}

/// The Python `StrEnum` class behind each wire enum, with its members cached
/// in declaration order.
pub trait PyEnum: WireEnum {
    fn members(py: Python<'_>) -> PyResult<&Vec<Py<PyAny>>>;
}

fn load_members(py: Python<'_>, class: &str) -> PyResult<Vec<Py<PyAny>>> {
    let cls = py.import("relay_store._enums")?.getattr(class)?;
    cls.try_iter()?.map(|m| m.map(Bound::unbind)).collect()
}

macro_rules! py_enum {
    ($($t:ident),*) => {$(
        impl PyEnum for crate::model::$t {
            fn members(py: Python<'_>) -> PyResult<&Vec<Py<PyAny>>> {
                static MEMBERS: PyOnceLock<Vec<Py<PyAny>>> = PyOnceLock::new();
                MEMBERS.get_or_try_init(py, || load_members(py, stringify!($t)))
            }
        }
    )*};
}
py_enum!(CallKind, PromptRole, BlockContentType, ProvenanceLabel, SensitivityLabel, StabilityClass);

impl<E: PyEnum> PyField for E {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        let Ok(s) = ob.cast::<PyString>() else {
            return Err(type_error(loc, &format!("{} or str", E::NAME), ob));
        };
        let s = text(s, loc)?;
        E::parse(s).ok_or_else(|| {
            let allowed: Vec<&str> = E::VARIANTS.iter().map(|v| v.as_str()).collect();
            value_error(loc, format_args!("{s:?} is not a valid {} (expected one of: {})", E::NAME, allowed.join(", ")))
        })
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(E::members(py)?[self.index()].bind(py).clone())
    }
}

impl<T: PyField> PyField for Option<T> {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        if ob.is_none() {
            Ok(None)
        } else {
            T::from_py(ob, loc).map(Some)
        }
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Some(v) => v.to_py(py),
            None => Ok(py.None().into_bound(py)),
        }
    }
    fn field_to_py<'py, P, F>(py: Python<'py>, owner: &Arc<P>, project: F) -> PyResult<Bound<'py, PyAny>>
    where
        P: Send + Sync + 'static,
        F: Fn(&P) -> &Self + Send + Sync + 'static,
    {
        match project(owner) {
            None => Ok(py.None().into_bound(py)),
            // The record never changes, so what is there now is there on every read.
            Some(_) => T::field_to_py(py, owner, move |p: &P| project(p).as_ref().expect("the field was Some")),
        }
    }
}

/// Walks any sequence except text and bytes, which are sequences by accident.
fn for_each_item(
    ob: &Bound<'_, PyAny>,
    loc: &Loc<'_>,
    mut f: impl FnMut(usize, &Bound<'_, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    if let Ok(list) = ob.cast::<PyList>() {
        for (i, item) in list.iter().enumerate() {
            f(i, &item)?;
        }
        return Ok(());
    }
    if let Ok(tuple) = ob.cast::<PyTuple>() {
        for (i, item) in tuple.iter().enumerate() {
            f(i, &item)?;
        }
        return Ok(());
    }
    let textual = ob.is_instance_of::<PyString>() || ob.is_instance_of::<PyBytes>() || ob.is_instance_of::<PyByteArray>();
    if !textual {
        if let Ok(seq) = ob.cast::<PySequence>() {
            for (i, item) in seq.try_iter()?.enumerate() {
                f(i, &item?)?;
            }
            return Ok(());
        }
    }
    Err(type_error(loc, "a sequence", ob))
}

impl<T: PyField> PyField for Vec<T> {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        let mut out = Vec::new();
        for_each_item(ob, loc, |i, item| {
            out.push(T::from_py(item, &Loc::Index(loc, i))?);
            Ok(())
        })?;
        Ok(out)
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let items = self.iter().map(|v| v.to_py(py)).collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.into_any())
    }
    fn field_to_py<'py, P, F>(py: Python<'py>, owner: &Arc<P>, project: F) -> PyResult<Bound<'py, PyAny>>
    where
        P: Send + Sync + 'static,
        F: Fn(&P) -> &Self + Send + Sync + 'static,
    {
        super::views::list_of(py, owner, move |p: &P| project(p).as_slice())
    }
}

fn for_each_entry(
    ob: &Bound<'_, PyAny>,
    loc: &Loc<'_>,
    mut f: impl FnMut(&Bound<'_, PyAny>, &Bound<'_, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    if let Ok(dict) = ob.cast::<PyDict>() {
        // A snapshot: converting a value may run Python code that changes
        // the dict, which a live iteration would not survive.
        for item in dict.items().iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            f(&k, &v)?;
        }
        return Ok(());
    }
    if let Ok(mapping) = ob.cast::<PyMapping>() {
        for item in mapping.items()?.iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            f(&k, &v)?;
        }
        return Ok(());
    }
    Err(type_error(loc, "a mapping", ob))
}

/// Keys of maps: `str` keys, or `int` keys where the wire has `"<u32>"` keys.
pub trait PyKey: Sized + Ord + fmt::Debug + 'static {
    fn key_from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self>;
    fn key_to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
    /// The value at the key `ob` stands for, found as a `dict` with these
    /// keys would find it: by hash and `==`, so an unhashable key raises
    /// `TypeError` and a key of another type is simply not there.
    fn find<'a, V>(map: &'a BTreeMap<Self, V>, ob: &Bound<'_, PyAny>) -> PyResult<Option<&'a V>>;
}

impl PyKey for String {
    fn key_from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        match ob.cast::<PyString>() {
            Ok(s) => Ok(text(s, loc)?.to_owned()),
            Err(_) => Err(type_error(loc, "str keys", ob)),
        }
    }
    fn key_to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_py(py)
    }
    fn find<'a, V>(map: &'a BTreeMap<Self, V>, ob: &Bound<'_, PyAny>) -> PyResult<Option<&'a V>> {
        match ob.cast::<PyString>() {
            Ok(s) => Ok(s.to_str().ok().and_then(|s| map.get(s))),
            Err(_) => ob.hash().map(|_| None),
        }
    }
}

impl PyKey for u32 {
    fn key_from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        if !ob.is_instance_of::<PyInt>() || ob.is_instance_of::<PyBool>() {
            return Err(type_error(loc, "int keys", ob));
        }
        u32::from_py(ob, loc)
    }
    fn key_to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_py(py)
    }
    /// Any number equal to an int key finds it (`True`, `1.0`,
    /// `Fraction(1)`): Python gives equal numbers equal hashes, and the hash
    /// of a small int is the int.
    fn find<'a, V>(map: &'a BTreeMap<Self, V>, ob: &Bound<'_, PyAny>) -> PyResult<Option<&'a V>> {
        if ob.is_exact_instance_of::<PyInt>() {
            return Ok(ob.extract::<u32>().ok().and_then(|k| map.get(&k)));
        }
        let Ok(key) = u32::try_from(ob.hash()?) else {
            return Ok(None);
        };
        match map.get(&key) {
            Some(v) if ob.eq(key)? => Ok(Some(v)),
            _ => Ok(None),
        }
    }
}

impl<K: PyKey, T: PyField> PyField for BTreeMap<K, T> {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        let mut out = BTreeMap::new();
        for_each_entry(ob, loc, |k, v| {
            let key = K::key_from_py(k, loc)?;
            let value = T::from_py(v, &Loc::Key(loc, &key))?;
            out.insert(key, value);
            Ok(())
        })?;
        Ok(out)
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let dict = PyDict::new(py);
        for (k, v) in self {
            dict.set_item(k.key_to_py(py)?, v.to_py(py)?)?;
        }
        Ok(dict.into_any())
    }
    fn field_to_py<'py, P, F>(py: Python<'py>, owner: &Arc<P>, project: F) -> PyResult<Bound<'py, PyAny>>
    where
        P: Send + Sync + 'static,
        F: Fn(&P) -> &Self + Send + Sync + 'static,
    {
        super::views::map_of(py, owner, project)
    }
}

impl PyField for crate::json::Json {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        let text = json_text_from_py(ob, loc, FIELD_DEPTH)?;
        crate::json::Json::from_compact_text(text).map_err(|e| value_error(loc, e))
    }
    /// Python's own parser reads the exact text: integers of any size stay
    /// exact, just as `json.loads(model.to_json())` gives them.
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let loads = LOADS.get_or_try_init(py, || Ok::<_, PyErr>(py.import("json")?.getattr("loads")?.unbind()))?;
        loads.bind(py).call1((self.as_str(),))
    }
}

impl PyField for Digest {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        if !ob.is_instance_of::<PyDict>() && !ob.is_instance_of::<PyMapping>() {
            return Err(type_error(loc, "a dict in the tdigest serde form", ob));
        }
        let text = json_text_from_py(ob, loc, FIELD_DEPTH)?;
        wire::from_json::<Digest>(text.as_bytes()).map_err(|e| value_error(loc, format_args!("not a t-digest: {e}")))
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(Ser(self)).map_err(|e| value_error(&Loc::Field("RunningStats", "digest"), e))?;
        json_to_py(py, &value)
    }
}

/// Readers (serde_json, NeMo Relay's included) refuse JSON nested deeper than
/// 128 levels: deeper values would be written but never read back. A record
/// adds a few levels around its JSON fields, so a field may nest 120; a
/// whole document (`from_dict`) 127. Also stops a cycle.
pub use crate::json::FIELD_DEPTH;
pub const DOCUMENT_DEPTH: usize = 127;

/// Plain Python JSON data (dict, list, tuple, str, int, float, bool, None)
/// as compact JSON text, as `json.dumps` sees it: integers of any size, and
/// object keys in the order the dict holds them.
pub fn json_text_from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>, max_depth: usize) -> PyResult<String> {
    let mut out = Vec::new();
    write_json(ob, loc, 0, max_depth, &mut out)?;
    // Only serde_json's writer and ASCII digits went in.
    Ok(String::from_utf8(out).expect("JSON text is UTF-8"))
}

fn write_json(ob: &Bound<'_, PyAny>, loc: &Loc<'_>, depth: usize, max_depth: usize, out: &mut Vec<u8>) -> PyResult<()> {
    use std::io::Write as _;
    if depth > max_depth {
        // Named by the field alone: the full path would repeat a segment per level.
        return Err(value_error(loc.field(), format_args!("nested more than {max_depth} levels deep (or contains a cycle)")));
    }
    let written = if ob.is_none() {
        out.write_all(b"null")
    } else if let Ok(b) = ob.cast::<PyBool>() {
        out.write_all(if b.is_true() { b"true" } else { b"false" })
    } else if ob.is_instance_of::<PyInt>() {
        out.write_all(int_text(ob)?.as_bytes())
    } else if let Ok(f) = ob.cast::<PyFloat>() {
        let v = f.value();
        if !v.is_finite() {
            return Err(value_error(loc, format_args!("{v} cannot be represented in JSON")));
        }
        serde_json::to_writer(&mut *out, &v).map_err(std::io::Error::other)
    } else if let Ok(s) = ob.cast::<PyString>() {
        serde_json::to_writer(&mut *out, text(s, loc)?).map_err(std::io::Error::other)
    } else if ob.is_instance_of::<PyDict>() || ob.is_instance_of::<PyMapping>() {
        out.push(b'{');
        let mut first = true;
        // A key written twice would lose a value on reading. A dict whose
        // keys are all exact `str` cannot repeat one; int keys (`1` and `"1"`),
        // `str` subclasses (their own `__eq__`) and other mappings (whose
        // `items()` may repeat) can, so their keys are remembered.
        let plain = ob.cast::<PyDict>().is_ok_and(|d| d.iter().all(|(k, _)| k.is_exact_instance_of::<PyString>()));
        let mut seen = (!plain).then(std::collections::HashSet::<String>::new);
        for_each_entry(ob, loc, |k, v| {
            // An int key is written in decimal, as json.dumps writes it (so
            // `{1: ...}` reads as a map with `u32` keys does). Other keys
            // json.dumps would turn into text (bool, float, None) are refused:
            // `"true"` or `"1.0"` as a key is more likely a mistake.
            let key = match k.cast::<PyString>() {
                Ok(s) => Cow::Borrowed(text(s, loc)?),
                Err(_) if k.is_instance_of::<PyInt>() && !k.is_instance_of::<PyBool>() => Cow::Owned(int_text(k)?),
                Err(_) => return Err(type_error(loc, "str or int keys in a JSON object", k)),
            };
            if let Some(seen) = seen.as_mut() {
                if !seen.insert(key.clone().into_owned()) {
                    return Err(value_error(loc, format_args!("two keys are both {key:?} in JSON")));
                }
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, &*key).map_err(|e| value_error(loc, e))?;
            out.push(b':');
            write_json(v, &Loc::Key(loc, &key), depth + 1, max_depth, out)
        })?;
        out.push(b'}');
        Ok(())
    } else if ob.is_instance_of::<PyList>() || ob.is_instance_of::<PyTuple>() || ob.cast::<PySequence>().is_ok() {
        // Any sequence but bytes, which `for_each_item` refuses by name.
        out.push(b'[');
        for_each_item(ob, loc, |i, item| {
            if i > 0 {
                out.push(b',');
            }
            write_json(item, &Loc::Index(loc, i), depth + 1, max_depth, out)
        })?;
        out.push(b']');
        Ok(())
    } else {
        return Err(type_error(loc, "a JSON value (dict, list, tuple, str, int, float, bool or None)", ob));
    };
    written.map_err(|e| value_error(loc, e))
}

/// An int's decimal digits; beyond 64 bits, by int's own repr (not a
/// subclass's, which may say anything).
fn int_text(ob: &Bound<'_, PyAny>) -> PyResult<String> {
    match ob.extract::<i64>() {
        Ok(v) => Ok(v.to_string()),
        Err(_) => Ok(ob.py().get_type::<PyInt>().call_method1(pyo3::intern!(ob.py(), "__repr__"), (ob,))?.extract()?),
    }
}

pub fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_bound_py_any(py)?
            } else if let Some(i) = n.as_i64() {
                i.into_bound_py_any(py)?
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let items = items.iter().map(|v| json_to_py(py, v)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// An error from building a nested record, prefixed with where that record
/// sits ("RunRecord.calls[2]: CallRecord.prompt_tokens: ..."), same class.
fn within(py: Python<'_>, loc: &Loc<'_>, err: PyErr) -> PyErr {
    let message = format!("{loc}: {}", err.value(py));
    if err.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(message)
    } else if err.is_instance_of::<PyValueError>(py) {
        PyValueError::new_err(message)
    } else {
        err
    }
}

/// Shares an `Arc` in and out of Python without copying the record.
pub trait PyRecord: wire::Wire + Clone + Send + Sync + 'static {
    type Class: pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync + pyo3::PyTypeInfo;
    const NAME: &'static str;
    fn wrap_py<'py>(value: Arc<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
    fn shared(class: &Self::Class) -> &Arc<Self>;
}

impl<T: PyRecord> PyField for Arc<T> {
    fn from_py(ob: &Bound<'_, PyAny>, loc: &Loc<'_>) -> PyResult<Self> {
        if let Ok(m) = ob.cast::<T::Class>() {
            return Ok(T::shared(m.get()).clone());
        }
        // A mapping of fields is accepted too, as pydantic does for nested models.
        if ob.is_instance_of::<PyDict>() {
            let cls = ob.py().get_type::<T::Class>();
            let built = cls.call((), Some(ob.cast::<PyDict>()?)).map_err(|e| within(ob.py(), loc, e))?;
            return Ok(T::shared(built.cast::<T::Class>()?.get()).clone());
        }
        Err(type_error(loc, &format!("{} (or a dict of its fields)", T::NAME), ob))
    }
    fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        T::wrap_py(self.clone(), py)
    }
}
