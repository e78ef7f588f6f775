//! Tensor data: every storage field, half floats, external data, errors, round trips.

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::ExternalDataError;
use crate::external::{ExternalDataRef, ExternalDataResolver, slice_checked};
use crate::graph::{
    Element, TensorError, f16_to_f32, scalar_tensor, tensor_from_values, tensor_to_f32,
    tensor_to_f32_with, tensor_to_i64, tensor_values, tensor_values_with,
};
use crate::proto::TensorProto;
use crate::proto::tensor_proto::{DataType, Segment};

fn tensor(data_type: DataType, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: "t".to_owned(),
        data_type: data_type as i32,
        dims: dims.to_vec(),
        ..Default::default()
    }
}

fn raw(data_type: DataType, dims: &[i64], bytes: &[u8]) -> TensorProto {
    TensorProto {
        raw_data: Bytes::copy_from_slice(bytes),
        ..tensor(data_type, dims)
    }
}

fn check(t: &TensorProto, expected: &[f32]) {
    assert_eq!(
        tensor_to_f32(t).expect("decodes"),
        expected,
        "{:?}",
        DataType::try_from(t.data_type)
    );
}

#[test]
fn every_storage_field_decodes() {
    let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    check(&raw(DataType::Float, &[2], &le(&[1.5, -2.0])), &[1.5, -2.0]);
    check(
        &TensorProto {
            float_data: vec![1.0, 2.0, 3.0],
            ..tensor(DataType::Float, &[3])
        },
        &[1.0, 2.0, 3.0],
    );
    check(
        &TensorProto {
            double_data: vec![0.25],
            ..tensor(DataType::Double, &[1])
        },
        &[0.25],
    );
    check(
        &TensorProto {
            int64_data: vec![-3, 7],
            ..tensor(DataType::Int64, &[2])
        },
        &[-3.0, 7.0],
    );
    check(
        &TensorProto {
            int32_data: vec![-3, 7],
            ..tensor(DataType::Int32, &[2, 1])
        },
        &[-3.0, 7.0],
    );
    check(
        &TensorProto {
            int32_data: vec![-128, 127],
            ..tensor(DataType::Int8, &[2])
        },
        &[-128.0, 127.0],
    );
    check(
        &raw(DataType::Uint8, &[3], &[0, 128, 255]),
        &[0.0, 128.0, 255.0],
    );
    check(&raw(DataType::Int8, &[2], &[0xff, 0x80]), &[-1.0, -128.0]);
    check(
        &TensorProto {
            uint64_data: vec![5],
            ..tensor(DataType::Uint32, &[1])
        },
        &[5.0],
    );
    check(&raw(DataType::Bool, &[2], &[1, 0]), &[1.0, 0.0]);
    // FLOAT16 raw and in int32_data; BFLOAT16.
    check(
        &raw(
            DataType::Float16,
            &[3],
            &[0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38],
        ),
        &[1.0, -2.0, 0.5],
    );
    check(
        &TensorProto {
            int32_data: vec![0x7bff],
            ..tensor(DataType::Float16, &[1])
        },
        &[65504.0],
    );
    check(
        &TensorProto {
            int32_data: vec![0x3f80, 0xc040],
            ..tensor(DataType::Bfloat16, &[2])
        },
        &[1.0, -3.0],
    );
    // A scalar and an empty tensor.
    check(&scalar_tensor("s", 2.5f32), &[2.5]);
    check(&tensor(DataType::Float, &[0, 3]), &[]);
}

#[test]
fn half_precision_is_exact() {
    for bits in 0..=u16::MAX {
        let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
        let e = i32::from((bits >> 10) & 0x1f);
        let m = f64::from(bits & 0x3ff);
        let got = f16_to_f32(bits);
        match e {
            0x1f if m == 0.0 => assert_eq!(got, sign as f32 * f32::INFINITY),
            0x1f => assert!(got.is_nan(), "{bits:#x}"),
            0 => assert_eq!(got, (sign * m * 2f64.powi(-24)) as f32, "{bits:#x}"),
            _ => assert_eq!(
                got,
                (sign * (1.0 + m / 1024.0) * 2f64.powi(e - 15)) as f32,
                "{bits:#x}"
            ),
        }
    }
}

fn round_trip<T: Element + PartialEq + std::fmt::Debug>(values: &[T]) {
    let dims = [values.len() as i64];
    let t = tensor_from_values("r", &dims, values).expect("encodes");
    assert_eq!(t.data_type, T::DATA_TYPE as i32);
    assert_eq!(t.raw_data.len(), values.len() * T::SIZE);
    assert_eq!(tensor_values::<T>(&t).expect("decodes"), values);
}

#[test]
fn typed_values_round_trip() {
    round_trip(&[1.0f32, -0.0, f32::MAX]);
    round_trip(&[1.0f64, -1e300]);
    round_trip(&[i8::MIN, 0, i8::MAX]);
    round_trip(&[0u8, 255]);
    round_trip(&[i16::MIN, i16::MAX]);
    round_trip(&[u16::MAX]);
    round_trip(&[i32::MIN, 5]);
    round_trip(&[i64::MIN, i64::MAX]);
    round_trip(&[u32::MAX]);
    round_trip(&[u64::MAX]);
    round_trip(&[true, false, true]);
    assert_eq!(tensor_to_i64(&scalar_tensor("i", 7i32)).expect("i64"), [7]);
    assert_eq!(
        tensor_to_i64(&tensor_from_values("u", &[2], &[1u8, 2]).expect("t")).expect("i64"),
        [1, 2]
    );
}

fn check_err(t: &TensorProto, matches: impl Fn(&TensorError) -> bool) {
    let e = tensor_to_f32(t).expect_err("refused");
    assert!(matches(&e), "unexpected error: {e}");
    assert!(
        e.to_string().contains("\"t\""),
        "the message names the tensor: {e}"
    );
}

#[test]
fn malformed_data_is_a_typed_error() {
    let floats = |n: usize, dims: &[i64]| TensorProto {
        float_data: vec![0.0; n],
        ..tensor(DataType::Float, dims)
    };
    check_err(&floats(3, &[2]), |e| {
        matches!(
            e,
            TensorError::Length {
                expected: 2,
                found: 3,
                ..
            }
        )
    });
    check_err(&raw(DataType::Float, &[2], &[0; 7]), |e| {
        matches!(
            e,
            TensorError::RawLength {
                expected: 8,
                found: 7,
                ..
            }
        )
    });
    check_err(&floats(0, &[-1]), |e| {
        matches!(e, TensorError::BadDims { .. })
    });
    check_err(&tensor(DataType::String, &[1]), |e| {
        matches!(e, TensorError::UnsupportedType { .. })
    });
    check_err(
        &TensorProto {
            segment: Some(Segment { begin: 0, end: 1 }),
            ..floats(1, &[1])
        },
        |e| matches!(e, TensorError::Segmented { .. }),
    );
    let e = tensor_values::<i64>(&floats(1, &[1])).expect_err("wrong type");
    assert!(matches!(e, TensorError::TypeMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("FLOAT") && e.to_string().contains("INT64"),
        "{e}"
    );
    assert!(tensor_from_values("t", &[3], &[1.0f32]).is_err());
}

/// Serves named in-memory files.
#[derive(Debug, Default)]
struct MemResolver(HashMap<String, Bytes>);

impl ExternalDataResolver for MemResolver {
    fn read(
        &self,
        location: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Bytes, ExternalDataError> {
        let file = self
            .0
            .get(location)
            .ok_or_else(|| ExternalDataError::NotFound {
                path: location.into(),
            })?;
        slice_checked(file, location, offset, length)
    }
}

#[test]
fn external_data_goes_through_a_resolver() {
    let mut t = tensor(DataType::Float, &[2]);
    ExternalDataRef {
        location: "weights.bin".to_owned(),
        offset: 4,
        length: Some(8),
        checksum: None,
    }
    .apply_to(&mut t);
    check_err(
        &t,
        |e| matches!(e, TensorError::External { location, .. } if location == "weights.bin"),
    );

    let file: Vec<u8> = [9.0f32, 1.0, 2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut files = MemResolver::default();
    files.0.insert("weights.bin".to_owned(), Bytes::from(file));
    assert_eq!(
        tensor_to_f32_with(&t, &files).expect("resolved"),
        [1.0, 2.0]
    );
    assert_eq!(
        tensor_values_with::<f32>(&t, &files).expect("resolved"),
        [1.0, 2.0]
    );

    let missing = MemResolver::default();
    let e = tensor_to_f32_with(&t, &missing).expect_err("no file");
    assert!(
        matches!(
            e,
            TensorError::ExternalData {
                source: ExternalDataError::NotFound { .. },
                ..
            }
        ),
        "{e}"
    );

    // The resolver's bytes must match the dims.
    t.dims = vec![3];
    let e = tensor_to_f32_with(&t, &files).expect_err("8 bytes for 3 floats");
    assert!(
        matches!(
            e,
            TensorError::RawLength {
                expected: 12,
                found: 8,
                ..
            }
        ),
        "{e}"
    );

    t.external_data.clear();
    let e = tensor_to_f32_with(&t, &files).expect_err("no location");
    assert!(
        matches!(
            e,
            TensorError::ExternalData {
                source: ExternalDataError::BadReference { .. },
                ..
            }
        ),
        "{e}"
    );
}
