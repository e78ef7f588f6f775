//! Tensors as the pipeline sees them: typed ndarrays, and named collections of them.

use ndarray::{ArrayD, ArrayViewD, Axis};

/// One tensor: a typed, n-dimensional array. Models take and give mostly `F32`; token ids and
/// shapes are `I64`.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    /// 32-bit floats.
    F32(ArrayD<f32>),
    /// 64-bit integers.
    I64(ArrayD<i64>),
    /// 32-bit integers.
    I32(ArrayD<i32>),
    /// Bytes.
    U8(ArrayD<u8>),
    /// Signed bytes.
    I8(ArrayD<i8>),
    /// Booleans.
    Bool(ArrayD<bool>),
}

impl Tensor {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::I64(a) => a.shape(),
            Tensor::I32(a) => a.shape(),
            Tensor::U8(a) => a.shape(),
            Tensor::I8(a) => a.shape(),
            Tensor::Bool(a) => a.shape(),
        }
    }

    /// The element type's ONNX name (`float32`, `int64`, ...).
    pub fn elem_type(&self) -> &'static str {
        match self {
            Tensor::F32(_) => "float32",
            Tensor::I64(_) => "int64",
            Tensor::I32(_) => "int32",
            Tensor::U8(_) => "uint8",
            Tensor::I8(_) => "int8",
            Tensor::Bool(_) => "bool",
        }
    }

    /// The float array, if this is one.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Some(a),
            _ => None,
        }
    }

    /// The `index`-th item along the first (batch) axis, as a tensor with that axis kept (size 1).
    /// `None` when the tensor has no axis or `index` is out of range.
    pub fn item(&self, index: usize) -> Option<Tensor> {
        fn take<T: Clone>(a: &ArrayD<T>, index: usize) -> Option<ArrayD<T>> {
            (a.ndim() > 0 && index < a.len_of(Axis(0)))
                .then(|| a.slice_axis(Axis(0), (index..=index).into()).to_owned())
        }
        Some(match self {
            Tensor::F32(a) => Tensor::F32(take(a, index)?),
            Tensor::I64(a) => Tensor::I64(take(a, index)?),
            Tensor::I32(a) => Tensor::I32(take(a, index)?),
            Tensor::U8(a) => Tensor::U8(take(a, index)?),
            Tensor::I8(a) => Tensor::I8(take(a, index)?),
            Tensor::Bool(a) => Tensor::Bool(take(a, index)?),
        })
    }

    /// Stacks same-typed, same-shaped tensors along their first axis (batching samples that each
    /// carry a batch axis of 1). `None` when the list is empty or the tensors differ in type or shape.
    pub fn concat(items: &[&Tensor]) -> Option<Tensor> {
        fn cat<T: Clone>(arrays: Vec<ArrayViewD<'_, T>>) -> Option<ArrayD<T>> {
            ndarray::concatenate(Axis(0), &arrays).ok()
        }
        macro_rules! all {
            ($variant:ident) => {{
                let arrays: Option<Vec<_>> = items
                    .iter()
                    .map(|t| match t {
                        Tensor::$variant(a) if a.ndim() > 0 => Some(a.view()),
                        _ => None,
                    })
                    .collect();
                Tensor::$variant(cat(arrays?)?)
            }};
        }
        Some(match items.first()? {
            Tensor::F32(_) => all!(F32),
            Tensor::I64(_) => all!(I64),
            Tensor::I32(_) => all!(I32),
            Tensor::U8(_) => all!(U8),
            Tensor::I8(_) => all!(I8),
            Tensor::Bool(_) => all!(Bool),
        })
    }
}

macro_rules! from_array {
    ($($ty:ty => $variant:ident),*) => {$(
        impl From<ArrayD<$ty>> for Tensor {
            fn from(a: ArrayD<$ty>) -> Tensor {
                Tensor::$variant(a)
            }
        }
    )*};
}
from_array!(f32 => F32, i64 => I64, i32 => I32, u8 => U8, i8 => I8, bool => Bool);

/// Named tensors in a fixed order (a model's inputs or outputs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorMap {
    entries: Vec<(String, Tensor)>,
}

impl TensorMap {
    /// An empty map.
    pub fn new() -> TensorMap {
        TensorMap::default()
    }

    /// Adds or replaces `name`.
    pub fn insert(&mut self, name: impl Into<String>, tensor: impl Into<Tensor>) {
        let name = name.into();
        let tensor = tensor.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = tensor,
            None => self.entries.push((name, tensor)),
        }
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The float tensor called `name`.
    pub fn f32(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.get(name).and_then(Tensor::as_f32)
    }

    /// Removes and returns `name`.
    pub fn remove(&mut self, name: &str) -> Option<Tensor> {
        let at = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(at).1)
    }

    /// Names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// `(name, tensor)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The first tensor (most models have one output).
    pub fn first(&self) -> Option<(&str, &Tensor)> {
        self.entries.first().map(|(n, t)| (n.as_str(), t))
    }

    /// How many tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `index`-th item of every tensor along the batch axis (see [`Tensor::item`]).
    pub fn item(&self, index: usize) -> Option<TensorMap> {
        let entries = self
            .entries
            .iter()
            .map(|(n, t)| Some((n.clone(), t.item(index)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(TensorMap { entries })
    }

    /// Batches maps with the same names by stacking each tensor along its first axis.
    pub fn concat(maps: &[&TensorMap]) -> Option<TensorMap> {
        let first = maps.first()?;
        let entries = first
            .entries
            .iter()
            .map(|(name, _)| {
                let items: Option<Vec<&Tensor>> = maps.iter().map(|m| m.get(name)).collect();
                Some((name.clone(), Tensor::concat(&items?)?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(TensorMap { entries })
    }
}

impl FromIterator<(String, Tensor)> for TensorMap {
    fn from_iter<I: IntoIterator<Item = (String, Tensor)>>(iter: I) -> TensorMap {
        let mut map = TensorMap::new();
        for (name, tensor) in iter {
            map.insert(name, tensor);
        }
        map
    }
}

impl IntoIterator for TensorMap {
    type Item = (String, Tensor);
    type IntoIter = std::vec::IntoIter<(String, Tensor)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;

    #[test]
    fn items_and_concat_are_inverse() {
        let a = ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| (i[0] * 10 + i[1]) as f32);
        let mut map = TensorMap::new();
        map.insert("x", a.clone());
        map.insert("ids", ArrayD::from_elem(IxDyn(&[3, 4]), 7i64));
        let items: Vec<TensorMap> = (0..3).map(|i| map.item(i).expect("item")).collect();
        assert_eq!(items[1].f32("x").expect("x").shape(), [1, 2]);
        assert_eq!(items[1].f32("x").expect("x")[[0, 1]], 11.0);
        assert!(map.item(3).is_none());
        let back = TensorMap::concat(&items.iter().collect::<Vec<_>>()).expect("concat");
        assert_eq!(back, map);
        // Mismatched types do not concatenate.
        let mut other = TensorMap::new();
        other.insert("x", ArrayD::from_elem(IxDyn(&[1, 2]), 1i64));
        other.insert("ids", ArrayD::from_elem(IxDyn(&[1, 4]), 7i64));
        assert!(TensorMap::concat(&[&items[0], &other]).is_none());
    }
}
