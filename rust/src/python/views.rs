//! Read-only views of a model's lists and maps.
//!
//! SPEC §4 asks for two things of a getter at once: reading it is O(1) in the
//! size of what it holds, and mutating what it returned never changes the
//! model. A fresh `list` meets the second but costs one wrapper per item on
//! every read (2 ms for 20,000 calls); handing out a cached `list` would meet
//! the first and break the second. A view meets both: it keeps the record
//! that owns the collection alive and converts an item only when it is read,
//! so `len(run.calls)`, `run.calls[-1]` and `node.children["x"]` cost the
//! same whatever the size. Views are registered as `collections.abc`
//! `Sequence` and `Mapping` ("lists as sequences, maps as mappings"), compare
//! equal to lists and dicts with the same items, and pickle as them.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyIndexError, PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyList, PyMapping, PySequence, PySlice, PyTuple, PyType};
use pyo3::IntoPyObjectExt;

use super::convert::{PyField, PyKey};

/// The items of one list field, read in place.
trait Items: Send + Sync {
    fn len(&self) -> usize;
    /// `at` is below `len()`.
    fn item<'py>(&self, py: Python<'py>, at: usize) -> PyResult<Bound<'py, PyAny>>;
}

/// A field of the record `owner`, reached through `project`; the record is
/// immutable, so the field is the same on every read.
struct Field<P, T: ?Sized, F> {
    owner: Arc<P>,
    project: F,
    of: PhantomData<fn() -> Box<T>>,
}

impl<P, T, F> Items for Field<P, [T], F>
where
    P: Send + Sync,
    T: PyField,
    F: Fn(&P) -> &[T] + Send + Sync,
{
    fn len(&self) -> usize {
        (self.project)(&self.owner).len()
    }
    fn item<'py>(&self, py: Python<'py>, at: usize) -> PyResult<Bound<'py, PyAny>> {
        (self.project)(&self.owner)[at].to_py(py)
    }
}

/// The entries of one map field, read in place.
trait Entries: Send + Sync {
    fn len(&self) -> usize;
    /// `None` for a missing key, including one of the wrong type.
    fn get<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>>;
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>>;
    fn entries<'py>(&self, py: Python<'py>) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>>;
}

impl<P, K, V, F> Entries for Field<P, BTreeMap<K, V>, F>
where
    P: Send + Sync,
    K: PyKey,
    V: PyField,
    F: Fn(&P) -> &BTreeMap<K, V> + Send + Sync,
{
    fn len(&self) -> usize {
        (self.project)(&self.owner).len()
    }
    fn get<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        K::find((self.project)(&self.owner), key)?.map(|v| v.to_py(key.py())).transpose()
    }
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        (self.project)(&self.owner).keys().map(|k| k.key_to_py(py)).collect()
    }
    fn entries<'py>(&self, py: Python<'py>) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
        (self.project)(&self.owner).iter().map(|(k, v)| Ok((k.key_to_py(py)?, v.to_py(py)?))).collect()
    }
}

/// A view of the list field `project(owner)`.
pub fn list_of<'py, P, T, F>(py: Python<'py>, owner: &Arc<P>, project: F) -> PyResult<Bound<'py, PyAny>>
where
    P: Send + Sync + 'static,
    T: PyField + 'static,
    F: Fn(&P) -> &[T] + Send + Sync + 'static,
{
    let items: Arc<dyn Items> = Arc::new(Field::<P, [T], F> { owner: owner.clone(), project, of: PhantomData });
    Ok(Bound::new(py, ListView(items))?.into_any())
}

/// A view of the map field `project(owner)`.
pub fn map_of<'py, P, K, V, F>(py: Python<'py>, owner: &Arc<P>, project: F) -> PyResult<Bound<'py, PyAny>>
where
    P: Send + Sync + 'static,
    K: PyKey + 'static,
    V: PyField + 'static,
    F: Fn(&P) -> &BTreeMap<K, V> + Send + Sync + 'static,
{
    let entries: Box<dyn Entries> = Box::new(Field::<P, BTreeMap<K, V>, F> { owner: owner.clone(), project, of: PhantomData });
    Ok(Bound::new(py, MapView(entries))?.into_any())
}

/// Lists up to this long are converted whole when iterated.
const READ_WHOLE: usize = 64;

/// A read-only sequence of a model's list field.
#[pyclass(frozen, sequence, module = "relay_store", name = "ListView")]
pub struct ListView(Arc<dyn Items>);

impl ListView {
    fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = (0..self.0.len()).map(|at| self.0.item(py, at)).collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The positions in `range` of items equal to `value`, in order; an
    /// error from an item's `==` ends the search.
    fn positions_of<'a, 'py>(
        &'a self,
        value: &'a Bound<'py, PyAny>,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = PyResult<usize>> + 'a {
        range.filter_map(move |at| match self.0.item(value.py(), at).and_then(|item| item.eq(value)) {
            Ok(true) => Some(Ok(at)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        })
    }

    /// The position `index` names (negative counts from the end), if any.
    fn position(&self, index: isize) -> Option<usize> {
        let len = self.0.len() as isize;
        let at = if index < 0 { index + len } else { index };
        (0..len).contains(&at).then_some(at as usize)
    }
}

/// `ob` as an int, through `__index__` as `list` does; `None` when it has
/// no `__index__`.
fn as_int<'py>(ob: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyInt>>> {
    if let Ok(i) = ob.cast::<PyInt>() {
        return Ok(Some(i.clone()));
    }
    if !ob.get_type().hasattr(pyo3::intern!(ob.py(), "__index__"))? {
        return Ok(None);
    }
    static INDEX: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let index = INDEX.import(ob.py(), "operator", "index")?;
    Ok(Some(index.call1((ob,))?.cast_into::<PyInt>()?))
}

/// A bound of `index()`: clamped to the view as `list.index` clamps it,
/// however large.
fn bound_of(ob: &Bound<'_, PyAny>, len: usize) -> PyResult<usize> {
    let Some(i) = as_int(ob)? else {
        return Err(PyTypeError::new_err(format!(
            "slice indices must be integers or have an __index__ method, not {}",
            super::convert::type_name(ob)
        )));
    };
    let len = len as isize;
    let i = match i.extract::<isize>() {
        Ok(i) => i,
        Err(_) if i.gt(0)? => isize::MAX,
        Err(_) => isize::MIN,
    };
    Ok(if i < 0 { i.saturating_add(len).max(0) } else { i.min(len) } as usize)
}

/// The items of a list, tuple or view, for comparing and concatenating;
/// `None` for anything else.
fn sequence_items<'py>(other: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyList>>> {
    if let Ok(view) = other.cast::<ListView>() {
        return view.get().to_list(other.py()).map(Some);
    }
    if let Ok(list) = other.cast::<PyList>() {
        return Ok(Some(list.clone()));
    }
    if let Ok(tuple) = other.cast::<PyTuple>() {
        return PyList::new(other.py(), tuple.iter()).map(Some);
    }
    Ok(None)
}

#[pymethods]
impl ListView {
    #[classmethod]
    #[pyo3(signature = (item, /))]
    fn __class_getitem__<'py>(cls: &Bound<'py, PyType>, item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        generic_alias(cls, item)
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __getitem__<'py>(&self, index: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = index.py();
        if let Ok(slice) = index.cast::<PySlice>() {
            let range = slice.indices(self.0.len() as isize)?;
            let picked = (0..range.slicelength)
                .map(|i| self.0.item(py, (range.start + i as isize * range.step) as usize))
                .collect::<PyResult<Vec<_>>>()?;
            return Ok(PyList::new(py, picked)?.into_any());
        }
        let Some(at) = as_int(index)? else {
            return Err(PyTypeError::new_err(format!(
                "ListView indices must be integers or slices, not {}",
                super::convert::type_name(index)
            )));
        };
        let Ok(at) = at.extract::<isize>() else {
            return Err(PyIndexError::new_err("cannot fit 'int' into an index-sized integer"));
        };
        match self.position(at) {
            Some(at) => self.0.item(py, at),
            None => Err(PyIndexError::new_err("ListView index out of range")),
        }
    }

    /// A short list is read whole and walked by Python's own list iterator,
    /// which steps faster than a native one; a long one is read an item at
    /// a time, so a loop that stops early never converts the rest.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.0.len() <= READ_WHOLE {
            return Ok(self.to_list(py)?.try_iter()?.into_any());
        }
        let iter = ListIter { items: self.0.clone(), next: AtomicUsize::new(0), reversed: false };
        Ok(Bound::new(py, iter)?.into_any())
    }

    fn __reversed__(&self) -> ListIter {
        ListIter { items: self.0.clone(), next: AtomicUsize::new(0), reversed: true }
    }

    fn __contains__(&self, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.positions_of(value, 0..self.0.len()).next().transpose()?.is_some())
    }

    /// As `list.index`: the first position from `start` (up to `stop`)
    /// holding an item equal to `value`.
    #[pyo3(signature = (value, start = None, stop = None, /))]
    fn index(&self, value: &Bound<'_, PyAny>, start: Option<&Bound<'_, PyAny>>, stop: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
        let len = self.0.len();
        let start = start.map_or(Ok(0), |s| bound_of(s, len))?;
        let stop = stop.map_or(Ok(len), |s| bound_of(s, len))?;
        match self.positions_of(value, start..stop).next().transpose()? {
            Some(at) => Ok(at),
            None => Err(PyValueError::new_err("ListView.index(x): x not in view")),
        }
    }

    #[pyo3(signature = (value, /))]
    fn count(&self, value: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.positions_of(value, 0..self.0.len()).try_fold(0, |n, found| found.map(|_| n + 1))
    }

    /// Equal to a list, tuple or view holding equal items in the same order.
    fn __eq__<'py>(&self, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        with_operand(other, sequence_items(other)?, |theirs| {
            let same = theirs.len() == self.0.len() && self.to_list(other.py())?.eq(theirs)?;
            same.into_bound_py_any(other.py())
        })
    }

    /// A new `list` (views are not changed in place).
    fn __add__<'py>(&self, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        with_operand(other, sequence_items(other)?, |theirs| self.to_list(other.py())?.add(theirs))
    }

    fn __radd__<'py>(&self, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        with_operand(other, sequence_items(other)?, |theirs| theirs.add(self.to_list(other.py())?))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.to_list(py)?.repr()?.to_str()?.to_owned())
    }

    /// Unpickles (and copies, through `copy.copy`) as a plain `list`.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyType>, (Bound<'py, PyList>,))> {
        Ok((py.get_type::<PyList>(), (self.to_list(py)?,)))
    }
}

#[pyclass(frozen, module = "relay_store")]
pub struct ListIter {
    items: Arc<dyn Items>,
    next: AtomicUsize,
    reversed: bool,
}

#[pymethods]
impl ListIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let len = self.items.len();
        if n >= len {
            // Stays exhausted, however often it is asked again.
            self.next.store(len, Ordering::Relaxed);
            return Ok(None);
        }
        let at = if self.reversed { len - 1 - n } else { n };
        self.items.item(py, at).map(Some)
    }

    fn __length_hint__(&self) -> usize {
        self.items.len().saturating_sub(self.next.load(Ordering::Relaxed))
    }
}

/// A read-only mapping of a model's map field, in key order.
#[pyclass(frozen, mapping, module = "relay_store", name = "MapView")]
pub struct MapView(Box<dyn Entries>);

impl MapView {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (k, v) in self.0.entries(py)? {
            dict.set_item(k, v)?;
        }
        Ok(dict)
    }
}

/// A binary operator's result: `op` of the other operand as `coerced`, or
/// `NotImplemented` (so Python tries the other side) when it did not coerce.
fn with_operand<'py, T>(
    other: &Bound<'py, PyAny>,
    coerced: Option<T>,
    op: impl FnOnce(T) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    match coerced {
        Some(theirs) => op(theirs),
        None => Ok(other.py().NotImplemented().into_bound(other.py())),
    }
}

/// The entries of a dict (itself, however it is subclassed), a view or any
/// other mapping, as a `dict`; `None` for anything else.
fn mapping_entries<'py>(other: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyDict>>> {
    if let Ok(view) = other.cast::<MapView>() {
        return view.get().to_dict(other.py()).map(Some);
    }
    if let Ok(dict) = other.cast::<PyDict>() {
        return Ok(Some(dict.clone()));
    }
    if let Ok(mapping) = other.cast::<PyMapping>() {
        let dict = PyDict::new(other.py());
        for item in mapping.items()?.iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            dict.set_item(k, v)?;
        }
        return Ok(Some(dict));
    }
    Ok(None)
}

/// `ListView[CallRecord]` in annotations, as `list[...]` is.
fn generic_alias<'py>(cls: &Bound<'py, PyType>, item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static ALIAS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    ALIAS.import(cls.py(), "types", "GenericAlias")?.call1((cls, item))
}

/// `keys()`, `values()` and `items()`: the `collections.abc` views, made
/// in `relay_store._views`.
fn abc_view<'py>(name: &'static str, of: &Bound<'py, MapView>) -> PyResult<Bound<'py, PyAny>> {
    static VIEWS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let py = of.py();
    let views = VIEWS.get_or_try_init(py, || Ok::<_, PyErr>(py.import("relay_store._views")?.unbind()))?;
    views.bind(py).getattr(name)?.call1((of,))
}

#[pymethods]
impl MapView {
    #[classmethod]
    #[pyo3(signature = (item, /))]
    fn __class_getitem__<'py>(cls: &Bound<'py, PyType>, item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        generic_alias(cls, item)
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __getitem__<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.0.get(key)?.ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
    }

    #[pyo3(signature = (key, default = None, /))]
    fn get<'py>(&self, key: &Bound<'py, PyAny>, default: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let py = key.py();
        Ok(self.0.get(key)?.or(default).unwrap_or_else(|| py.None().into_bound(py)))
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.0.get(key)?.is_some())
    }

    /// Over the keys as they were when iteration began (they never change).
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyList::new(py, self.0.keys(py)?)?.try_iter()?.into_any())
    }

    fn keys<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc_view("MapKeys", slf)
    }

    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc_view("MapValues", slf)
    }

    fn items<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc_view("MapItems", slf)
    }

    /// All values in key order, for `values()` to iterate over.
    fn _values<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.0.entries(py)?.into_iter().map(|(_, v)| v))
    }

    /// All `(key, value)` pairs in key order, for `items()` to iterate over.
    fn _entries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.0.entries(py)?)
    }

    /// Equal to any mapping (a dict, another view) with equal entries. Read
    /// as a whole, as `dict` compares: looking keys up one by one would call
    /// a `defaultdict`'s default factory and add keys to it.
    fn __eq__<'py>(&self, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        with_operand(other, mapping_entries(other)?, |theirs| {
            let same = theirs.len() == self.0.len() && self.to_dict(other.py())?.eq(theirs)?;
            same.into_bound_py_any(other.py())
        })
    }

    /// A new `dict`, as `dict | other` gives.
    fn __or__<'py>(&self, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let or = pyo3::intern!(other.py(), "__or__");
        with_operand(other, mapping_entries(other)?, |theirs| self.to_dict(other.py())?.call_method1(or, (theirs,)))
    }

    fn __ror__<'py>(&self, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let or = pyo3::intern!(other.py(), "__or__");
        with_operand(other, mapping_entries(other)?, |theirs| theirs.call_method1(or, (self.to_dict(other.py())?,)))
    }

    /// A plain `dict` of the entries, as `MappingProxyType.copy()` gives.
    fn copy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.to_dict(py)
    }

    fn __reversed__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut keys = self.0.keys(py)?;
        keys.reverse();
        Ok(PyList::new(py, keys)?.try_iter()?.into_any())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.to_dict(py)?.repr()?.to_str()?.to_owned())
    }

    /// Unpickles (and copies, through `copy.copy`) as a plain `dict`.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyType>, (Bound<'py, PyDict>,))> {
        Ok((py.get_type::<PyDict>(), (self.to_dict(py)?,)))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ListView>()?;
    m.add_class::<MapView>()?;
    // `isinstance(view, Sequence)` and `match` statements' sequence and
    // mapping patterns follow the registration.
    PySequence::register::<ListView>(m.py())?;
    PyMapping::register::<MapView>(m.py())?;
    Ok(())
}
