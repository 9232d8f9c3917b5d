//! Column storage: the four kinds of values tabular keeps, each with a
//! validity flag per row (a null is a missing value).
//!
//! - [`Float64Array`] holds numbers (and id-like numbers);
//! - [`BooleanArray`] holds true/false;
//! - [`TimestampArray`] holds datetimes as UTC epoch milliseconds;
//! - [`StringArray`] holds text, one contiguous buffer with offsets.
//!
//! Written here rather than taken from `arrow-array`: tabular needs these
//! four layouts and a handful of accessors, and the Arrow crates
//! (`arrow-array`, `-buffer`, `-data`, `-schema` with `num-bigint` and
//! `half`) were about 25 CPU-seconds of every cold release build.

/// Which slots hold a value; no flags at all while every slot does.
#[derive(Debug, Clone, PartialEq, Default)]
struct Validity {
    flags: Option<Vec<bool>>,
    nulls: usize,
}

impl Validity {
    fn is_valid(&self, i: usize) -> bool {
        self.flags.as_ref().is_none_or(|v| v[i])
    }
    /// Record slot `i` (the next one) as present or missing.
    fn push(&mut self, i: usize, present: bool) {
        if !present {
            self.nulls += 1;
            self.flags.get_or_insert_with(|| vec![true; i]);
        }
        if let Some(flags) = self.flags.as_mut() {
            flags.push(present);
        }
    }
}

/// `null_count`, `is_valid` and `is_null` of an array with a `validity`.
macro_rules! validity_accessors {
    () => {
        pub fn null_count(&self) -> usize {
            self.validity.nulls
        }
        pub fn is_valid(&self, i: usize) -> bool {
            self.validity.is_valid(i)
        }
        pub fn is_null(&self, i: usize) -> bool {
            !self.is_valid(i)
        }
    };
}

/// Fixed-width values with validity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PrimitiveArray<T> {
    values: Vec<T>,
    validity: Validity,
}

/// Numbers; a null is a missing value (NaN is never stored).
pub type Float64Array = PrimitiveArray<f64>;
/// true/false values.
pub type BooleanArray = PrimitiveArray<bool>;
/// Datetimes as UTC epoch milliseconds.
pub type TimestampArray = PrimitiveArray<i64>;

impl<T: Copy + Default> PrimitiveArray<T> {
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    validity_accessors!();
    /// The value in slot `i` (a default for a null slot).
    pub fn value(&self, i: usize) -> T {
        self.values[i]
    }
    /// Every slot's value, nulls included as defaults.
    pub fn values(&self) -> &[T] {
        &self.values
    }
    /// The value at `i`, None when missing.
    pub fn get(&self, i: usize) -> Option<T> {
        self.is_valid(i).then(|| self.values[i])
    }
    pub fn iter(&self) -> impl Iterator<Item = Option<T>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<T: Copy + Default> FromIterator<Option<T>> for PrimitiveArray<T> {
    fn from_iter<I: IntoIterator<Item = Option<T>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut a = PrimitiveArray {
            values: Vec::with_capacity(iter.size_hint().0),
            validity: Validity::default(),
        };
        for (i, v) in iter.enumerate() {
            a.validity.push(i, v.is_some());
            a.values.push(v.unwrap_or_default());
        }
        a
    }
}

impl<T: Copy + Default> From<Vec<Option<T>>> for PrimitiveArray<T> {
    fn from(v: Vec<Option<T>>) -> Self {
        v.into_iter().collect()
    }
}

/// Text values in one buffer: value `i` is `bytes[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StringArray {
    offsets: Vec<usize>,
    bytes: String,
    validity: Validity,
}

impl Default for StringArray {
    fn default() -> Self {
        StringArray {
            offsets: vec![0],
            bytes: String::new(),
            validity: Validity::default(),
        }
    }
}

impl StringArray {
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    validity_accessors!();
    /// The text in slot `i` ("" for a null slot).
    pub fn value(&self, i: usize) -> &str {
        &self.bytes[self.offsets[i]..self.offsets[i + 1]]
    }
    /// The text at `i`, None when missing.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.is_valid(i).then(|| self.value(i))
    }
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl<S: AsRef<str>> FromIterator<Option<S>> for StringArray {
    fn from_iter<I: IntoIterator<Item = Option<S>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut a = StringArray::default();
        a.offsets.reserve(iter.size_hint().0);
        for (i, v) in iter.enumerate() {
            a.validity.push(i, v.is_some());
            if let Some(s) = v {
                a.bytes.push_str(s.as_ref());
            }
            a.offsets.push(a.bytes.len());
        }
        a
    }
}

impl<S: AsRef<str>> From<Vec<Option<S>>> for StringArray {
    fn from(v: Vec<Option<S>>) -> Self {
        v.into_iter().collect()
    }
}

/// One column's values, in the storage its kind uses.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Float64(Float64Array),
    Boolean(BooleanArray),
    /// UTC epoch milliseconds.
    Timestamp(TimestampArray),
    Utf8(StringArray),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Float64(a) => a.len(),
            ColumnData::Boolean(a) => a.len(),
            ColumnData::Timestamp(a) => a.len(),
            ColumnData::Utf8(a) => a.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn null_count(&self) -> usize {
        match self {
            ColumnData::Float64(a) => a.null_count(),
            ColumnData::Boolean(a) => a.null_count(),
            ColumnData::Timestamp(a) => a.null_count(),
            ColumnData::Utf8(a) => a.null_count(),
        }
    }
    pub fn is_valid(&self, i: usize) -> bool {
        match self {
            ColumnData::Float64(a) => a.is_valid(i),
            ColumnData::Boolean(a) => a.is_valid(i),
            ColumnData::Timestamp(a) => a.is_valid(i),
            ColumnData::Utf8(a) => a.is_valid(i),
        }
    }
    pub fn is_null(&self, i: usize) -> bool {
        !self.is_valid(i)
    }
    /// The values at `idx`, in that order (every index must be < len).
    pub fn take(&self, idx: &[usize]) -> ColumnData {
        match self {
            ColumnData::Float64(a) => ColumnData::Float64(idx.iter().map(|&i| a.get(i)).collect()),
            ColumnData::Boolean(a) => ColumnData::Boolean(idx.iter().map(|&i| a.get(i)).collect()),
            ColumnData::Timestamp(a) => {
                ColumnData::Timestamp(idx.iter().map(|&i| a.get(i)).collect())
            }
            ColumnData::Utf8(a) => ColumnData::Utf8(idx.iter().map(|&i| a.get(i)).collect()),
        }
    }
    /// An empty column of the same storage.
    pub fn empty_like(&self) -> ColumnData {
        self.take(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_is_tracked_from_the_first_null_on() {
        let a: Float64Array = vec![Some(1.0), Some(2.0), None, Some(4.0)].into();
        assert_eq!(a.len(), 4);
        assert_eq!(a.null_count(), 1);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [Some(1.0), Some(2.0), None, Some(4.0)]
        );
        assert!(a.is_null(2) && a.is_valid(3));
        let full: BooleanArray = vec![Some(true), Some(false)].into();
        assert_eq!((full.null_count(), full.get(1)), (0, Some(false)));
        let s: StringArray = vec![None, Some("é"), Some(""), None, Some("xyz")].into();
        assert_eq!(s.len(), 5);
        assert_eq!(s.null_count(), 2);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [None, Some("é"), Some(""), None, Some("xyz")]
        );
        assert!(StringArray::default().is_empty());
    }

    #[test]
    fn take_reorders_and_keeps_nulls() {
        let s = ColumnData::Utf8(vec![Some("a"), None, Some("c")].into());
        let t = s.take(&[2, 1, 0, 2]);
        let ColumnData::Utf8(t) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            [Some("c"), None, Some("a"), Some("c")]
        );
        let f = ColumnData::Timestamp(vec![Some(-5i64), None].into());
        assert_eq!(f.take(&[1, 0]).null_count(), 1);
        assert!(f.empty_like().is_empty());
    }
}
