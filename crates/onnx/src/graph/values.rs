//! Typed tensor values without ndarray: vectors read from `raw_data` (little-endian) or the typed
//! fields (`float_data`, `int64_data`, ...), external data read through the crate's
//! [`ExternalDataResolver`] (for a loaded model: `Model::resolver()`), and tensors built from
//! slices ([`tensor_from_values`]).

use bytes::Bytes;

use crate::external::{ExternalDataRef, ExternalDataResolver};
use crate::proto::TensorProto;
use crate::proto::tensor_proto::DataType;

use super::error::TensorError;

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that is an ONNX element type: `f32`, `f64`, `i8`, `u8`, `i16`, `u16`, `i32`,
/// `i64`, `u32`, `u64`, `bool`.
pub trait Element: Copy + sealed::Sealed + 'static {
    /// The ONNX element type.
    const DATA_TYPE: DataType;
    /// Bytes per element in `raw_data`.
    const SIZE: usize;
    /// Decodes one element from `SIZE` little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;
    /// Appends the little-endian bytes of `self`.
    fn write_le(self, out: &mut Vec<u8>);
    /// The values of the typed field this type is stored in when `raw_data` is empty.
    fn from_typed(tensor: &TensorProto) -> Vec<Self>;
}

macro_rules! element {
    ($t:ty, $dt:ident, $field:ident, |$v:ident| $conv:expr) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DATA_TYPE: DataType = DataType::$dt;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn from_le(bytes: &[u8]) -> Self {
                let mut buf = [0u8; std::mem::size_of::<$t>()];
                buf.copy_from_slice(&bytes[..Self::SIZE]);
                <$t>::from_le_bytes(buf)
            }
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            fn from_typed(tensor: &TensorProto) -> Vec<Self> {
                tensor.$field.iter().map(|&$v| $conv).collect()
            }
        }
    };
}

element!(f32, Float, float_data, |v| v);
element!(f64, Double, double_data, |v| v);
element!(i8, Int8, int32_data, |v| v as i8);
element!(u8, Uint8, int32_data, |v| v as u8);
element!(i16, Int16, int32_data, |v| v as i16);
element!(u16, Uint16, int32_data, |v| v as u16);
element!(i32, Int32, int32_data, |v| v);
element!(i64, Int64, int64_data, |v| v);
element!(u32, Uint32, uint64_data, |v| v as u32);
element!(u64, Uint64, uint64_data, |v| v);

impl sealed::Sealed for bool {}
impl Element for bool {
    const DATA_TYPE: DataType = DataType::Bool;
    const SIZE: usize = 1;
    fn from_le(bytes: &[u8]) -> Self {
        bytes.first().is_some_and(|b| *b != 0)
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn from_typed(tensor: &TensorProto) -> Vec<Self> {
        tensor.int32_data.iter().map(|&v| v != 0).collect()
    }
}

/// The number of elements the dims of `tensor` describe (1 for a scalar).
pub fn element_count(tensor: &TensorProto) -> Result<usize, TensorError> {
    tensor
        .dims
        .iter()
        .try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
        .ok_or_else(|| TensorError::BadDims {
            tensor: tensor.name.clone(),
            dims: tensor.dims.clone(),
        })
}

/// The raw little-endian bytes of `tensor` when they are in `raw_data` or external; `None` when
/// the data is in a typed field.
fn raw_bytes(
    tensor: &TensorProto,
    resolver: Option<&dyn ExternalDataResolver>,
) -> Result<Option<Bytes>, TensorError> {
    if tensor.segment.is_some() {
        return Err(TensorError::Segmented {
            tensor: tensor.name.clone(),
        });
    }
    let external = ExternalDataRef::of(tensor).map_err(|source| TensorError::ExternalData {
        tensor: tensor.name.clone(),
        source,
    })?;
    if let Some(external) = external {
        let Some(resolver) = resolver else {
            return Err(TensorError::External {
                tensor: tensor.name.clone(),
                location: external.location,
            });
        };
        let bytes = resolver
            .read(&external.location, external.offset, external.length)
            .map_err(|source| TensorError::ExternalData {
                tensor: tensor.name.clone(),
                source,
            })?;
        return Ok(Some(bytes));
    }
    Ok((!tensor.raw_data.is_empty()).then(|| tensor.raw_data.clone()))
}

fn check_len(tensor: &TensorProto, expected: usize, found: usize) -> Result<(), TensorError> {
    if expected == found {
        Ok(())
    } else {
        Err(TensorError::Length {
            tensor: tensor.name.clone(),
            dims: tensor.dims.clone(),
            expected,
            found,
        })
    }
}

fn from_raw<T: Element>(
    tensor: &TensorProto,
    bytes: &[u8],
    count: usize,
) -> Result<Vec<T>, TensorError> {
    let expected = count.saturating_mul(T::SIZE);
    if bytes.len() != expected {
        return Err(TensorError::RawLength {
            tensor: tensor.name.clone(),
            dims: tensor.dims.clone(),
            expected,
            found: bytes.len(),
        });
    }
    Ok(bytes.chunks_exact(T::SIZE).map(T::from_le).collect())
}

/// The values of `tensor` as `T`, which must be its element type exactly. External data is an
/// error ([`TensorError::External`]); see [`tensor_values_with`].
///
/// ```
/// use kiln_onnx::graph::{tensor_from_values, tensor_values};
/// let t = tensor_from_values("w", &[2, 2], &[1.0f32, 2.0, 3.0, 4.0])?;
/// assert_eq!(tensor_values::<f32>(&t)?, [1.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), kiln_onnx::graph::TensorError>(())
/// ```
pub fn tensor_values<T: Element>(tensor: &TensorProto) -> Result<Vec<T>, TensorError> {
    values_impl(tensor, None)
}

/// Like [`tensor_values`], reading external data through `resolver`.
pub fn tensor_values_with<T: Element>(
    tensor: &TensorProto,
    resolver: &dyn ExternalDataResolver,
) -> Result<Vec<T>, TensorError> {
    values_impl(tensor, Some(resolver))
}

fn values_impl<T: Element>(
    tensor: &TensorProto,
    resolver: Option<&dyn ExternalDataResolver>,
) -> Result<Vec<T>, TensorError> {
    if tensor.data_type != T::DATA_TYPE as i32 {
        return Err(TensorError::TypeMismatch {
            tensor: tensor.name.clone(),
            expected: T::DATA_TYPE as i32,
            found: tensor.data_type,
        });
    }
    let count = element_count(tensor)?;
    match raw_bytes(tensor, resolver)? {
        Some(bytes) => from_raw(tensor, &bytes, count),
        None => {
            let values = T::from_typed(tensor);
            check_len(tensor, count, values.len())?;
            Ok(values)
        }
    }
}

/// The 16-bit patterns of a FLOAT16 or BFLOAT16 tensor.
fn half_bits(
    tensor: &TensorProto,
    resolver: Option<&dyn ExternalDataResolver>,
) -> Result<Vec<u16>, TensorError> {
    let count = element_count(tensor)?;
    match raw_bytes(tensor, resolver)? {
        Some(bytes) => from_raw::<u16>(tensor, &bytes, count),
        None => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let values: Vec<u16> = tensor.int32_data.iter().map(|&v| v as u16).collect();
            check_len(tensor, count, values.len())?;
            Ok(values)
        }
    }
}

/// IEEE half precision to single precision, exactly.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        (0, m) => {
            // Subnormal: value = m * 2^-24, exact in f32.
            #[allow(clippy::cast_precision_loss)]
            let v = (m as f32) * f32::from_bits(0x3380_0000); // 2^-24
            v.to_bits()
        }
        (0x1f, m) => 0x7f80_0000 | (m << 13),
        (e, m) => ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// The values of a numeric tensor converted to `f32`: FLOAT, DOUBLE, FLOAT16, BFLOAT16, the
/// integer types and BOOL. External data is an error; see [`tensor_to_f32_with`].
pub fn tensor_to_f32(tensor: &TensorProto) -> Result<Vec<f32>, TensorError> {
    to_f32_impl(tensor, None)
}

/// Like [`tensor_to_f32`], reading external data through `resolver`.
pub fn tensor_to_f32_with(
    tensor: &TensorProto,
    resolver: &dyn ExternalDataResolver,
) -> Result<Vec<f32>, TensorError> {
    to_f32_impl(tensor, Some(resolver))
}

#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn to_f32_impl(
    tensor: &TensorProto,
    resolver: Option<&dyn ExternalDataResolver>,
) -> Result<Vec<f32>, TensorError> {
    fn convert<T: Element>(
        tensor: &TensorProto,
        resolver: Option<&dyn ExternalDataResolver>,
        f: impl Fn(T) -> f32,
    ) -> Result<Vec<f32>, TensorError> {
        Ok(values_impl::<T>(tensor, resolver)?
            .into_iter()
            .map(f)
            .collect())
    }
    let data_type = DataType::try_from(tensor.data_type).unwrap_or(DataType::Undefined);
    match data_type {
        DataType::Float => values_impl::<f32>(tensor, resolver),
        DataType::Double => convert(tensor, resolver, |v: f64| v as f32),
        DataType::Float16 => Ok(half_bits(tensor, resolver)?
            .into_iter()
            .map(f16_to_f32)
            .collect()),
        DataType::Bfloat16 => Ok(half_bits(tensor, resolver)?
            .into_iter()
            .map(|b| f32::from_bits(u32::from(b) << 16))
            .collect()),
        DataType::Int8 => convert(tensor, resolver, |v: i8| f32::from(v)),
        DataType::Uint8 => convert(tensor, resolver, |v: u8| f32::from(v)),
        DataType::Int16 => convert(tensor, resolver, |v: i16| f32::from(v)),
        DataType::Uint16 => convert(tensor, resolver, |v: u16| f32::from(v)),
        DataType::Int32 => convert(tensor, resolver, |v: i32| v as f32),
        DataType::Int64 => convert(tensor, resolver, |v: i64| v as f32),
        DataType::Uint32 => convert(tensor, resolver, |v: u32| v as f32),
        DataType::Uint64 => convert(tensor, resolver, |v: u64| v as f32),
        DataType::Bool => convert(tensor, resolver, |v: bool| f32::from(u8::from(v))),
        _ => Err(TensorError::UnsupportedType {
            tensor: tensor.name.clone(),
            data_type: tensor.data_type,
            operation: "conversion to f32",
        }),
    }
}

/// The values of an integer tensor (INT8..INT64, UINT8..UINT64, BOOL) as `i64` — shapes, axes,
/// indices. UINT64 values above `i64::MAX` are an error.
pub fn tensor_to_i64(tensor: &TensorProto) -> Result<Vec<i64>, TensorError> {
    fn convert<T: Element>(
        tensor: &TensorProto,
        f: impl Fn(T) -> i64,
    ) -> Result<Vec<i64>, TensorError> {
        Ok(values_impl::<T>(tensor, None)?.into_iter().map(f).collect())
    }
    let data_type = DataType::try_from(tensor.data_type).unwrap_or(DataType::Undefined);
    match data_type {
        DataType::Int64 => values_impl::<i64>(tensor, None),
        DataType::Int32 => convert(tensor, |v: i32| i64::from(v)),
        DataType::Int16 => convert(tensor, |v: i16| i64::from(v)),
        DataType::Int8 => convert(tensor, |v: i8| i64::from(v)),
        DataType::Uint8 => convert(tensor, |v: u8| i64::from(v)),
        DataType::Uint16 => convert(tensor, |v: u16| i64::from(v)),
        DataType::Uint32 => convert(tensor, |v: u32| i64::from(v)),
        DataType::Bool => convert(tensor, |v: bool| i64::from(v)),
        DataType::Uint64 => values_impl::<u64>(tensor, None)?
            .into_iter()
            .map(|v| {
                i64::try_from(v).map_err(|_| TensorError::UnsupportedType {
                    tensor: tensor.name.clone(),
                    data_type: tensor.data_type,
                    operation: "conversion to i64 (a value exceeds i64::MAX)",
                })
            })
            .collect(),
        _ => Err(TensorError::UnsupportedType {
            tensor: tensor.name.clone(),
            data_type: tensor.data_type,
            operation: "conversion to i64",
        }),
    }
}

/// A tensor named `name` with `dims` and `values` stored little-endian in `raw_data`.
pub fn tensor_from_values<T: Element>(
    name: &str,
    dims: &[i64],
    values: &[T],
) -> Result<TensorProto, TensorError> {
    let mut tensor = TensorProto {
        name: name.to_owned(),
        dims: dims.to_vec(),
        data_type: T::DATA_TYPE as i32,
        ..Default::default()
    };
    check_len(&tensor, element_count(&tensor)?, values.len())?;
    let mut raw = Vec::with_capacity(values.len().saturating_mul(T::SIZE));
    for &v in values {
        v.write_le(&mut raw);
    }
    tensor.raw_data = Bytes::from(raw);
    Ok(tensor)
}

/// A scalar (rank 0) tensor.
pub fn scalar_tensor<T: Element>(name: &str, value: T) -> TensorProto {
    let mut raw = Vec::with_capacity(T::SIZE);
    value.write_le(&mut raw);
    TensorProto {
        name: name.to_owned(),
        data_type: T::DATA_TYPE as i32,
        raw_data: Bytes::from(raw),
        ..Default::default()
    }
}
