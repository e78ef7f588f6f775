//! Typed tensors crossing the session boundary: [`TensorInput`] in, [`Outputs`] of [`TensorOutput`]
//! out, and the metadata that describes them ([`TensorInfo`], [`ElementType`], [`Dim`]).

use std::fmt;

use ndarray::{ArrayD, CowArray, Dimension, IxDyn};

use crate::error::{EngineError, Result};

/// The element type of a tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ElementType {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// `i8`.
    I8,
    /// `u8`.
    U8,
    /// `i16`.
    I16,
    /// `u16`.
    U16,
    /// `i32`.
    I32,
    /// `u32`.
    U32,
    /// `i64`.
    I64,
    /// `u64`.
    U64,
    /// `bool`.
    Bool,
    /// UTF-8 strings.
    String,
    /// Anything else (8- and 4-bit floats, complex numbers, non-tensor values), by name.
    Other(String),
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElementType::F32 => "f32",
            ElementType::F64 => "f64",
            ElementType::F16 => "f16",
            ElementType::BF16 => "bf16",
            ElementType::I8 => "i8",
            ElementType::U8 => "u8",
            ElementType::I16 => "i16",
            ElementType::U16 => "u16",
            ElementType::I32 => "i32",
            ElementType::U32 => "u32",
            ElementType::I64 => "i64",
            ElementType::U64 => "u64",
            ElementType::Bool => "bool",
            ElementType::String => "string",
            ElementType::Other(name) => name,
        })
    }
}

impl From<ort::value::TensorElementType> for ElementType {
    fn from(ty: ort::value::TensorElementType) -> ElementType {
        use ort::value::TensorElementType as T;
        match ty {
            T::Float32 => ElementType::F32,
            T::Float64 => ElementType::F64,
            T::Float16 => ElementType::F16,
            T::Bfloat16 => ElementType::BF16,
            T::Int8 => ElementType::I8,
            T::Uint8 => ElementType::U8,
            T::Int16 => ElementType::I16,
            T::Uint16 => ElementType::U16,
            T::Int32 => ElementType::I32,
            T::Uint32 => ElementType::U32,
            T::Int64 => ElementType::I64,
            T::Uint64 => ElementType::U64,
            T::Bool => ElementType::Bool,
            T::String => ElementType::String,
            other => ElementType::Other(format!("{other:?}").to_lowercase()),
        }
    }
}

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A dynamic size with a symbolic name (`batch`, `N`).
    Named(String),
    /// A dynamic size without a name.
    Dynamic,
}

impl Dim {
    /// The size as ONNX Runtime writes it: the fixed size, or `-1` when dynamic.
    pub fn as_i64(&self) -> i64 {
        match self {
            Dim::Fixed(n) => i64::try_from(*n).unwrap_or(i64::MAX),
            Dim::Named(_) | Dim::Dynamic => -1,
        }
    }

    /// The fixed size, if any.
    pub fn fixed(&self) -> Option<usize> {
        match self {
            Dim::Fixed(n) => Some(*n),
            Dim::Named(_) | Dim::Dynamic => None,
        }
    }

    /// Whether a tensor of size `n` fits this dimension.
    pub fn accepts(&self, n: usize) -> bool {
        self.fixed().is_none_or(|fixed| fixed == n)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Named(name) => f.write_str(name),
            Dim::Dynamic => f.write_str("?"),
        }
    }
}

/// Formats a declared shape: `[N, 3, 224, 224]`.
pub fn fmt_dims(dims: &[Dim]) -> String {
    let inner: Vec<String> = dims.iter().map(Dim::to_string).collect();
    format!("[{}]", inner.join(", "))
}

/// A model input or output as the session declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// Its element type (`Other("sequence…")` for non-tensor values).
    pub element_type: ElementType,
    /// Its shape; empty for scalars and non-tensor values.
    pub shape: Vec<Dim>,
}

impl TensorInfo {
    /// The shape as ONNX Runtime writes it (`-1` for dynamic dimensions).
    pub fn dims_i64(&self) -> Vec<i64> {
        self.shape.iter().map(Dim::as_i64).collect()
    }

    /// Whether a tensor of `shape` fits: same rank, and every fixed dimension equal.
    pub fn accepts_shape(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len() && self.shape.iter().zip(shape).all(|(d, &n)| d.accepts(n))
    }

    pub(crate) fn from_outlet(outlet: &ort::value::Outlet) -> TensorInfo {
        let name = outlet.name().to_owned();
        match outlet.dtype() {
            ort::value::ValueType::Tensor {
                ty,
                shape,
                dimension_symbols,
            } => {
                let shape = shape
                    .iter()
                    .enumerate()
                    .map(|(i, &size)| match usize::try_from(size) {
                        Ok(size) => Dim::Fixed(size),
                        Err(_) => match dimension_symbols.get(i) {
                            Some(symbol) if !symbol.is_empty() => Dim::Named(symbol.clone()),
                            _ => Dim::Dynamic,
                        },
                    })
                    .collect();
                TensorInfo {
                    name,
                    element_type: (*ty).into(),
                    shape,
                }
            }
            other => TensorInfo {
                name,
                element_type: ElementType::Other(other.to_string()),
                shape: Vec::new(),
            },
        }
    }
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {}",
            self.name,
            self.element_type,
            fmt_dims(&self.shape)
        )
    }
}

/// Generates the tensor enums' per-type conversions and accessors.
macro_rules! tensor_types {
    ($($variant:ident($ty:ty), $as:ident, $into:ident;)*) => {
        /// An input tensor: owned or borrowed, of one of the element types kiln feeds models.
        ///
        /// Build one with `From` (`TensorInput::from(array)` or `array.view().into()`); arrays of any
        /// dimensionality are accepted. Non-contiguous views are copied into standard layout at run
        /// time; contiguous ones are passed to ONNX Runtime without a copy.
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub enum TensorInput<'a> {
            $(
                #[doc = concat!("`", stringify!($ty), "` elements.")]
                $variant(CowArray<'a, $ty, IxDyn>),
            )*
        }

        impl TensorInput<'_> {
            /// The tensor's shape.
            pub fn shape(&self) -> &[usize] {
                match self {
                    $(TensorInput::$variant(array) => array.shape(),)*
                }
            }

            /// The tensor's element type.
            pub fn element_type(&self) -> ElementType {
                match self {
                    $(TensorInput::$variant(_) => ElementType::$variant,)*
                }
            }

            /// The same tensor, borrowed: no element is copied (to feed owned inputs to many runs).
            pub fn view(&self) -> TensorInput<'_> {
                match self {
                    $(TensorInput::$variant(array) => TensorInput::$variant(CowArray::from(array.view())),)*
                }
            }

            /// The tensor as an `ort` value: a view when contiguous, else a contiguous copy.
            pub(crate) fn to_ort(&self) -> Result<ort::session::SessionInputValue<'_>> {
                let context = "creating an input tensor";
                match self {
                    $(
                        TensorInput::$variant(array) => {
                            if array.is_standard_layout() {
                                ort::value::TensorRef::from_array_view(array)
                                    .map(Into::into)
                                    .map_err(EngineError::ort_with(context))
                            } else {
                                ort::value::Tensor::from_array(array.as_standard_layout().into_owned())
                                    .map(Into::into)
                                    .map_err(EngineError::ort_with(context))
                            }
                        }
                    )*
                }
            }
        }

        $(
            impl<D: Dimension> From<ndarray::Array<$ty, D>> for TensorInput<'static> {
                fn from(array: ndarray::Array<$ty, D>) -> Self {
                    TensorInput::$variant(CowArray::from(array.into_dyn()))
                }
            }

            impl<'a, D: Dimension> From<&'a ndarray::Array<$ty, D>> for TensorInput<'a> {
                fn from(array: &'a ndarray::Array<$ty, D>) -> Self {
                    TensorInput::$variant(CowArray::from(array.view().into_dyn()))
                }
            }

            impl<'a, D: Dimension> From<ndarray::ArrayView<'a, $ty, D>> for TensorInput<'a> {
                fn from(view: ndarray::ArrayView<'a, $ty, D>) -> Self {
                    TensorInput::$variant(CowArray::from(view.into_dyn()))
                }
            }
        )*

        /// An output tensor, copied out of ONNX Runtime, of one of the element types kiln reads.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum TensorOutput {
            $(
                #[doc = concat!("`", stringify!($ty), "` elements.")]
                $variant(ArrayD<$ty>),
            )*
        }

        impl TensorOutput {
            /// The tensor's shape.
            pub fn shape(&self) -> &[usize] {
                match self {
                    $(TensorOutput::$variant(array) => array.shape(),)*
                }
            }

            /// The tensor's element type.
            pub fn element_type(&self) -> ElementType {
                match self {
                    $(TensorOutput::$variant(_) => ElementType::$variant,)*
                }
            }

            $(
                #[doc = concat!("The array, if the elements are `", stringify!($ty), "`.")]
                pub fn $as(&self) -> Option<&ArrayD<$ty>> {
                    match self {
                        TensorOutput::$variant(array) => Some(array),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }

                #[doc = concat!("The array, if the elements are `", stringify!($ty), "`; else the tensor back.")]
                pub fn $into(self) -> std::result::Result<ArrayD<$ty>, TensorOutput> {
                    match self {
                        TensorOutput::$variant(array) => Ok(array),
                        #[allow(unreachable_patterns)]
                        other => Err(other),
                    }
                }
            )*

            /// Copies an `ort` output value into an owned array.
            pub(crate) fn from_ort(name: &str, value: &ort::value::DynValue) -> Result<TensorOutput> {
                let unsupported = |what: String| EngineError::UnsupportedOutput {
                    name: name.to_owned(),
                    what,
                };
                let Some(ty) = value.dtype().tensor_type() else {
                    return Err(unsupported(value.dtype().to_string()));
                };
                let context = format!("reading output `{name}`");
                match ElementType::from(ty) {
                    $(
                        ElementType::$variant => value
                            .try_extract_array::<$ty>()
                            .map(|view| TensorOutput::$variant(view.to_owned()))
                            .map_err(|error| EngineError::ort(context, &error)),
                    )*
                    other => Err(unsupported(format!("a {other} tensor"))),
                }
            }
        }
    };
}

tensor_types! {
    F32(f32), as_f32, into_f32;
    F64(f64), as_f64, into_f64;
    I64(i64), as_i64, into_i64;
    I32(i32), as_i32, into_i32;
    U8(u8), as_u8, into_u8;
    I8(i8), as_i8, into_i8;
    Bool(bool), as_bool, into_bool;
}

/// A model's outputs by name, in the model's output order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    entries: Vec<(String, TensorOutput)>,
}

impl Outputs {
    pub(crate) fn new(entries: Vec<(String, TensorOutput)>) -> Outputs {
        Outputs { entries }
    }

    /// The output named `name`.
    pub fn get(&self, name: &str) -> Option<&TensorOutput> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The `f32` output named `name`, or a typed error naming what is wrong.
    pub fn f32(&self, name: &str) -> Result<&ArrayD<f32>> {
        let output = self.get(name).ok_or_else(|| EngineError::UnknownOutput {
            name: name.to_owned(),
            known: self.names().map(str::to_owned).collect(),
        })?;
        output.as_f32().ok_or_else(|| EngineError::OutputType {
            name: name.to_owned(),
            expected: ElementType::F32,
            actual: output.element_type(),
        })
    }

    /// Takes the output named `name` out.
    pub fn remove(&mut self, name: &str) -> Option<TensorOutput> {
        let index = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(index).1)
    }

    /// The output names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// `(name, tensor)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TensorOutput)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The number of outputs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no outputs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl IntoIterator for Outputs {
    type Item = (String, TensorOutput);
    type IntoIter = std::vec::IntoIter<(String, TensorOutput)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}
