//! Element types and tensor sizes: ONNX data type names, bit widths, element counts, and a
//! tensor's inline data as little-endian bytes.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{OnnxError, Result};
use crate::proto::TensorProto;
use crate::proto::tensor_proto::DataType;

/// The lowercase name of an element type as users know it (`float32`, `int64`, `bfloat16`), or
/// `None` for an unknown code. `TensorProto.DataType` code 0 is `"undefined"`.
pub fn elem_type_name(data_type: i32) -> Option<&'static str> {
    let name = match DataType::try_from(data_type).ok()? {
        DataType::Undefined => "undefined",
        DataType::Float => "float32",
        DataType::Uint8 => "uint8",
        DataType::Int8 => "int8",
        DataType::Uint16 => "uint16",
        DataType::Int16 => "int16",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::String => "string",
        DataType::Bool => "bool",
        DataType::Float16 => "float16",
        DataType::Double => "float64",
        DataType::Uint32 => "uint32",
        DataType::Uint64 => "uint64",
        DataType::Complex64 => "complex64",
        DataType::Complex128 => "complex128",
        DataType::Bfloat16 => "bfloat16",
        DataType::Float8e4m3fn => "float8e4m3fn",
        DataType::Float8e4m3fnuz => "float8e4m3fnuz",
        DataType::Float8e5m2 => "float8e5m2",
        DataType::Float8e5m2fnuz => "float8e5m2fnuz",
        DataType::Uint4 => "uint4",
        DataType::Int4 => "int4",
        DataType::Float4e2m1 => "float4e2m1",
        DataType::Float8e8m0 => "float8e8m0",
        DataType::Uint2 => "uint2",
        DataType::Int2 => "int2",
        DataType::Float6e2m3 => "float6e2m3",
        DataType::Float6e3m2 => "float6e3m2",
    };
    Some(name)
}

/// [`elem_type_name`], or `unknown(N)` for a code this crate does not know.
pub fn elem_type_label(data_type: i32) -> String {
    elem_type_name(data_type).map_or_else(|| format!("unknown({data_type})"), str::to_owned)
}

/// Bits per element of a fixed-width type; `None` for `UNDEFINED`, `STRING` and unknown codes.
pub fn elem_bits(data_type: i32) -> Option<u64> {
    let bits = match DataType::try_from(data_type).ok()? {
        DataType::Undefined | DataType::String => return None,
        DataType::Uint2 | DataType::Int2 => 2,
        DataType::Uint4 | DataType::Int4 | DataType::Float4e2m1 => 4,
        DataType::Float6e2m3 | DataType::Float6e3m2 => 6,
        DataType::Bool
        | DataType::Uint8
        | DataType::Int8
        | DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz
        | DataType::Float8e8m0 => 8,
        DataType::Uint16 | DataType::Int16 | DataType::Float16 | DataType::Bfloat16 => 16,
        DataType::Float | DataType::Int32 | DataType::Uint32 => 32,
        DataType::Double | DataType::Int64 | DataType::Uint64 | DataType::Complex64 => 64,
        DataType::Complex128 => 128,
    };
    Some(bits)
}

/// The number of elements of a tensor with these dims (1 for a scalar); `None` if a dim is
/// negative or the product overflows `u64`.
pub fn numel(dims: &[i64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| {
        u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    })
}

/// Bytes that `numel` elements of `data_type` occupy in `raw_data` (sub-byte types packed,
/// rounded up); `None` for strings and unknown types, or on overflow.
pub fn byte_len(data_type: i32, numel: u64) -> Option<u64> {
    let bits = elem_bits(data_type)?;
    Some(numel.checked_mul(bits)?.div_ceil(8))
}

/// Bytes a tensor's data occupies: packed size for fixed-width types, the sum of the strings'
/// lengths for string tensors (inline data only); `None` when unknown (bad dims or type).
pub fn data_size(tensor: &TensorProto) -> Option<u64> {
    if tensor.data_type == DataType::String as i32 {
        return Some(tensor.string_data.iter().map(|s| s.len() as u64).sum());
    }
    byte_len(tensor.data_type, numel(&tensor.dims)?)
}

/// A tensor's inline data as the little-endian bytes `raw_data` would hold.
///
/// `raw_data` is returned as is (a cheap clone sharing its memory); the typed fields
/// (`float_data`, `int32_data`, ...) are converted. Fails for string tensors, unknown types, and
/// data whose size does not match the dims. External data is not looked at here: see
/// [`tensor_bytes`](crate::external::tensor_bytes).
pub fn inline_bytes(tensor: &TensorProto) -> Result<Bytes> {
    let fail = |reason: String| OnnxError::TensorData {
        tensor: tensor.name.clone(),
        reason,
    };
    let data_type = DataType::try_from(tensor.data_type)
        .map_err(|_| fail(format!("unknown data type {}", tensor.data_type)))?;
    let expected = numel(&tensor.dims)
        .and_then(|n| byte_len(tensor.data_type, n))
        .ok_or_else(|| {
            fail(format!(
                "no byte size for dims {:?} of type {}",
                tensor.dims,
                elem_type_label(tensor.data_type)
            ))
        })?;
    let bytes = if !tensor.raw_data.is_empty() {
        tensor.raw_data.clone()
    } else {
        typed_to_le(tensor, data_type)
    };
    if bytes.len() as u64 != expected {
        return Err(fail(format!(
            "{} bytes of data, but dims {:?} of type {} need {expected}",
            bytes.len(),
            tensor.dims,
            elem_type_label(tensor.data_type)
        )));
    }
    Ok(bytes)
}

/// Converts the typed field that `data_type` uses into packed little-endian bytes.
fn typed_to_le(t: &TensorProto, data_type: DataType) -> Bytes {
    let mut out = BytesMut::new();
    match data_type {
        DataType::Float | DataType::Complex64 => {
            t.float_data.iter().for_each(|&v| out.put_f32_le(v));
        }
        DataType::Double | DataType::Complex128 => {
            t.double_data.iter().for_each(|&v| out.put_f64_le(v));
        }
        DataType::Int64 => t.int64_data.iter().for_each(|&v| out.put_i64_le(v)),
        DataType::Uint64 => t.uint64_data.iter().for_each(|&v| out.put_u64_le(v)),
        // Narrowing casts below are the ONNX encoding: each int32/uint64 entry holds one element
        // (or one packed byte of 2- and 4-bit elements) in its low bits.
        DataType::Uint32 => t.uint64_data.iter().for_each(|&v| out.put_u32_le(v as u32)),
        DataType::Int32 => t.int32_data.iter().for_each(|&v| out.put_i32_le(v)),
        DataType::Int16 => t.int32_data.iter().for_each(|&v| out.put_i16_le(v as i16)),
        DataType::Uint16 | DataType::Float16 | DataType::Bfloat16 => {
            t.int32_data.iter().for_each(|&v| out.put_u16_le(v as u16));
        }
        DataType::Int8
        | DataType::Uint8
        | DataType::Bool
        | DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz
        | DataType::Float8e8m0
        | DataType::Uint4
        | DataType::Int4
        | DataType::Float4e2m1
        | DataType::Uint2
        | DataType::Int2 => t.int32_data.iter().for_each(|&v| out.put_u8(v as u8)),
        DataType::Float6e2m3 | DataType::Float6e3m2 => {
            // One 6-bit element per int32 entry; raw_data packs them as an LSB-first bitstream.
            let (mut acc, mut nbits) = (0u32, 0u32);
            for &v in &t.int32_data {
                acc |= ((v as u32) & 0x3f) << nbits;
                nbits += 6;
                while nbits >= 8 {
                    out.put_u8(acc as u8);
                    acc >>= 8;
                    nbits -= 8;
                }
            }
            if nbits > 0 {
                out.put_u8(acc as u8);
            }
        }
        DataType::Undefined | DataType::String => {}
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(data_type: DataType, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: "t".into(),
            data_type: data_type as i32,
            dims: dims.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(numel(&[]), Some(1));
        assert_eq!(numel(&[2, 3, 0]), Some(0));
        assert_eq!(numel(&[2, -1]), None);
        assert_eq!(numel(&[i64::MAX, i64::MAX, 4]), None);
        assert_eq!(byte_len(DataType::Float as i32, 6), Some(24));
        assert_eq!(byte_len(DataType::Int4 as i32, 5), Some(3));
        assert_eq!(byte_len(DataType::Float6e2m3 as i32, 5), Some(4));
        assert_eq!(byte_len(DataType::String as i32, 5), None);
        assert_eq!(byte_len(99, 5), None);
        assert_eq!(elem_type_label(DataType::Double as i32), "float64");
        assert_eq!(elem_type_label(99), "unknown(99)");
    }

    #[test]
    fn typed_fields_become_little_endian_bytes() {
        let mut t = tensor(DataType::Float, &[2]);
        t.float_data = vec![1.0, -2.0];
        let expected: Vec<u8> = [1.0f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            inline_bytes(&t).expect("float").as_ref(),
            expected.as_slice()
        );

        let mut t = tensor(DataType::Int8, &[3]);
        t.int32_data = vec![-1, 2, 127];
        assert_eq!(inline_bytes(&t).expect("int8").as_ref(), &[0xff, 2, 127]);

        let mut t = tensor(DataType::Float16, &[1]);
        t.int32_data = vec![0x3c00];
        assert_eq!(inline_bytes(&t).expect("f16").as_ref(), &[0x00, 0x3c]);

        let mut t = tensor(DataType::Float6e2m3, &[4]);
        t.int32_data = vec![0x3f, 0, 0x3f, 0];
        assert_eq!(inline_bytes(&t).expect("f6").as_ref(), &[0x3f, 0xf0, 0x03]);
    }

    #[test]
    fn raw_data_is_shared_and_size_checked() {
        let mut t = tensor(DataType::Int64, &[2]);
        t.raw_data = Bytes::from(vec![0u8; 16]);
        let bytes = inline_bytes(&t).expect("raw");
        assert_eq!(bytes.as_ptr(), t.raw_data.as_ptr());

        t.dims = vec![3];
        assert!(matches!(
            inline_bytes(&t),
            Err(OnnxError::TensorData { .. })
        ));
        let s = tensor(DataType::String, &[1]);
        assert!(matches!(
            inline_bytes(&s),
            Err(OnnxError::TensorData { .. })
        ));
    }
}
