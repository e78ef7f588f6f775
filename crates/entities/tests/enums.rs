//! OTX enums: integer codes from 1, snake_case names, parsing in both directions, defaults.

use std::fmt::Debug;
use std::str::FromStr;

use kiln_entities::{
    ModelFormat, ModelOptimizationType, ModelPrecision, OptimizationMethod, ParseEnumError,
    TargetDevice,
};

/// Checks that `expect` lists every member with its code and name, in declaration order, and
/// that codes and names convert both ways.
fn check<T>(kind: &str, all: &[T], expect: &[(T, i32, &str)])
where
    T: Copy + PartialEq + Debug + std::fmt::Display + FromStr<Err = ParseEnumError>,
    T: TryFrom<i32, Error = ParseEnumError> + Into<i32>,
{
    assert_eq!(
        all,
        expect.iter().map(|e| e.0).collect::<Vec<_>>(),
        "{kind}: members in order"
    );
    for &(member, code, name) in expect {
        assert_eq!(member.into(), code, "{kind} {name}");
        assert_eq!(T::try_from(code), Ok(member));
        assert_eq!(member.to_string(), name);
        assert_eq!(name.parse::<T>(), Ok(member));
        assert_eq!(
            name.to_ascii_uppercase().parse::<T>(),
            Ok(member),
            "case-insensitive"
        );
    }
    let max = expect.len();
    for bad in [0, -1, i32::try_from(max).expect("small") + 1, i32::MAX] {
        match T::try_from(bad) {
            Err(ParseEnumError::UnknownCode { code, expected, .. }) => {
                assert_eq!((code, expected), (bad, max));
            }
            other => panic!("{kind}: code {bad} gave {other:?}"),
        }
    }
    match "no_such_member".parse::<T>() {
        Err(ParseEnumError::UnknownName { name, expected, .. }) => {
            assert_eq!(name, "no_such_member");
            assert_eq!(expected, expect.iter().map(|e| e.2).collect::<Vec<_>>());
        }
        other => panic!("{kind}: gave {other:?}"),
    }
}

#[test]
fn codes_and_names() {
    use ModelPrecision as P;
    check(
        "precision",
        P::ALL,
        &[
            (P::Int4, 1, "int4"),
            (P::Int8, 2, "int8"),
            (P::Fp16, 3, "fp16"),
            (P::Fp32, 4, "fp32"),
        ],
    );
    use ModelFormat as F;
    check(
        "format",
        F::ALL,
        &[
            (F::OpenVino, 1, "openvino"),
            (F::BaseFramework, 2, "base_framework"),
            (F::Onnx, 3, "onnx"),
        ],
    );
    use ModelOptimizationType as O;
    check(
        "optimization type",
        O::ALL,
        &[
            (O::None, 1, "none"),
            (O::Mo, 2, "mo"),
            (O::Nncf, 3, "nncf"),
            (O::Pot, 4, "pot"),
            (O::Onnx, 5, "onnx"),
        ],
    );
    use OptimizationMethod as M;
    check(
        "method",
        M::ALL,
        &[
            (M::FilterPruning, 1, "filter_pruning"),
            (M::Quantization, 2, "quantization"),
        ],
    );
    use TargetDevice as D;
    check(
        "device",
        D::ALL,
        &[
            (D::Unspecified, 1, "unspecified"),
            (D::Cpu, 2, "cpu"),
            (D::Gpu, 3, "gpu"),
            (D::Vpu, 4, "vpu"),
        ],
    );
}

#[test]
fn from_code_and_code_agree() {
    assert_eq!(ModelPrecision::Fp32.code(), 4);
    assert_eq!(ModelPrecision::from_code(1), Some(ModelPrecision::Int4));
    assert_eq!(ModelPrecision::from_code(5), None);
    assert_eq!(
        ModelOptimizationType::from_code(5),
        Some(ModelOptimizationType::Onnx)
    );
}

#[test]
fn defaults() {
    assert_eq!(ModelFormat::default(), ModelFormat::Onnx);
    assert_eq!(
        ModelOptimizationType::default(),
        ModelOptimizationType::None
    );
    assert_eq!(TargetDevice::default(), TargetDevice::Cpu);
}

#[test]
fn errors_name_the_offender() {
    let err = "fp64".parse::<ModelPrecision>().expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown model precision \"fp64\"; expected one of: int4, int8, fp16, fp32"
    );
    let err = ModelFormat::try_from(9).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown model format code 9; expected 1..=3"
    );
}
