//! Deterministic synthetic inputs for timing runs, shaped from a session's input metadata
//! ([`InputSpec`] fills the dimensions the model leaves open).

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn};

use super::MeasureError;
use crate::session::{Dim, ElementType, TensorInfo, TensorInput};

/// Sizes for the input dimensions a model leaves open (besides the batch dimension, axis 0, which
/// the measurement sets: 1 for latency, [`MeasureOptions::batch`](super::MeasureOptions::batch)
/// for throughput).
///
/// Each dimension of each input is, in order of precedence: fixed by the model; given by
/// [`shapes`](Self::shapes) for that input; given by [`dims`](Self::dims) for its symbolic name.
/// Anything else is [`MeasureError::UnresolvedDim`].
///
/// ```
/// use kiln_engine_ort::measure::InputSpec;
/// // YOLOv8n exports `images: [batch, 3, height, width]`.
/// let spec = InputSpec::new().dim("height", 320).dim("width", 320);
/// let same = InputSpec::new().shape("images", [1, 3, 320, 320]);
/// # let _ = (spec, same);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputSpec {
    /// Whole shapes by input name, batch axis included (its size is replaced by the measurement's
    /// batch when the model leaves it open). They must fit the model's fixed dimensions.
    pub shapes: BTreeMap<String, Vec<usize>>,
    /// Sizes of symbolic dimensions by name (`height` -> 320), for every input.
    pub dims: BTreeMap<String, usize>,
}

impl InputSpec {
    /// Nothing given: only models with every non-batch dimension fixed can be measured.
    pub fn new() -> InputSpec {
        InputSpec::default()
    }

    /// Gives the whole shape of `input`.
    pub fn shape(mut self, input: impl Into<String>, shape: impl Into<Vec<usize>>) -> InputSpec {
        self.shapes.insert(input.into(), shape.into());
        self
    }

    /// Gives the size of the symbolic dimension `name`.
    pub fn dim(mut self, name: impl Into<String>, size: usize) -> InputSpec {
        self.dims.insert(name.into(), size);
        self
    }

    /// The shape of `input` at batch `batch` (used where axis 0 is open).
    pub fn resolve(&self, input: &TensorInfo, batch: usize) -> Result<Vec<usize>, MeasureError> {
        if let Some(given) = self.shapes.get(&input.name) {
            let fits = given.len() == input.shape.len()
                && input
                    .shape
                    .iter()
                    .zip(given)
                    .enumerate()
                    .all(|(axis, (d, &n))| axis == 0 || d.accepts(n));
            if !fits {
                return Err(MeasureError::ShapeMismatch {
                    input: input.name.clone(),
                    given: given.clone(),
                    expected: input.shape.clone(),
                });
            }
        }
        input
            .shape
            .iter()
            .enumerate()
            .map(|(axis, dim)| match dim {
                Dim::Fixed(n) => Ok(*n),
                _ if axis == 0 => Ok(batch),
                _ => self
                    .shapes
                    .get(&input.name)
                    .map(|s| s[axis])
                    .or_else(|| match dim {
                        Dim::Named(name) => self.dims.get(name).copied(),
                        _ => None,
                    })
                    .ok_or_else(|| MeasureError::UnresolvedDim {
                        input: input.name.clone(),
                        axis,
                        dim: dim.to_string(),
                    }),
            })
            .collect()
    }
}

/// Inputs for one model: at batch 1 (or the model's fixed batch) and, when the batch dimension is
/// open, at the throughput batch.
#[derive(Debug)]
pub(crate) struct Synthetic {
    /// The batch of [`one`](Self::one): 1, or the model's fixed batch size.
    pub base_batch: usize,
    pub one: Vec<(String, TensorInput<'static>)>,
    /// `(batch, inputs)` when the model's batch dimension is open and the batch is above 1.
    pub batch: Option<(usize, Vec<(String, TensorInput<'static>)>)>,
}

impl Synthetic {
    /// Inputs for a session with `inputs`, checking `spec` names only inputs it has.
    pub fn new(
        inputs: &[TensorInfo],
        spec: &InputSpec,
        batch: usize,
    ) -> Result<Synthetic, MeasureError> {
        if let Some(unknown) = spec
            .shapes
            .keys()
            .find(|name| !inputs.iter().any(|i| &i.name == *name))
        {
            return Err(MeasureError::UnknownInput {
                name: unknown.clone(),
                known: inputs.iter().map(|i| i.name.clone()).collect(),
            });
        }
        let fixed_batch = inputs
            .iter()
            .find_map(|i| i.shape.first().and_then(Dim::fixed));
        let base_batch = fixed_batch.unwrap_or(1);
        let make = |batch: usize| {
            inputs
                .iter()
                .enumerate()
                .map(|(k, info)| {
                    let shape = spec.resolve(info, batch)?;
                    Ok((info.name.clone(), fill(info, &shape, k as u64)?))
                })
                .collect::<Result<Vec<_>, MeasureError>>()
        };
        let one = make(base_batch)?;
        let batch = match fixed_batch {
            None if batch > 1 => Some((batch, make(batch)?)),
            _ => None,
        };
        Ok(Synthetic {
            base_batch,
            one,
            batch,
        })
    }
}

/// Borrowed feeds for [`OrtSession::run`](crate::OrtSession::run).
pub(crate) fn feeds<'a>(
    inputs: &'a [(String, TensorInput<'static>)],
) -> Vec<(&'a str, TensorInput<'a>)> {
    inputs.iter().map(|(n, t)| (n.as_str(), t.view())).collect()
}

/// SplitMix64's output function: a well-mixed 64-bit value for `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// An array of `shape` whose `i`-th element (in standard order) is `f(i)`.
fn generated<T>(shape: &[usize], mut f: impl FnMut(u64) -> T) -> ArrayD<T> {
    let mut i = 0u64;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        let v = f(i);
        i += 1;
        v
    })
}

/// A deterministic tensor of `shape` for `info`: floats uniform in `[0, 1)`, bytes over their
/// non-negative range, other integers 0 (safe as indices and sizes), booleans false. `seed`
/// (the input's position) makes inputs of one model differ.
fn fill(
    info: &TensorInfo,
    shape: &[usize],
    seed: u64,
) -> Result<TensorInput<'static>, MeasureError> {
    let value = move |i: u64| mix((seed << 48) ^ i);
    // 24 random bits: exactly representable in f32.
    let unit = move |i: u64| (value(i) >> 40) as f64 / f64::from(1u32 << 24);
    Ok(match info.element_type {
        ElementType::F32 => TensorInput::from(generated(shape, |i| unit(i) as f32)),
        ElementType::F64 => TensorInput::from(generated(shape, unit)),
        ElementType::U8 => TensorInput::from(generated(shape, |i| (value(i) & 0xFF) as u8)),
        ElementType::I8 => TensorInput::from(generated(shape, |i| (value(i) & 0x7F) as i8)),
        ElementType::I64 => TensorInput::from(ArrayD::<i64>::zeros(IxDyn(shape))),
        ElementType::I32 => TensorInput::from(ArrayD::<i32>::zeros(IxDyn(shape))),
        ElementType::Bool => TensorInput::from(ArrayD::from_elem(IxDyn(shape), false)),
        ref other => {
            return Err(MeasureError::UnsupportedInput {
                input: info.name.clone(),
                element_type: other.clone(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, element_type: ElementType, shape: Vec<Dim>) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            element_type,
            shape,
        }
    }

    fn yolo() -> TensorInfo {
        info(
            "images",
            ElementType::F32,
            vec![
                Dim::Named("batch".into()),
                Dim::Fixed(3),
                Dim::Named("height".into()),
                Dim::Named("width".into()),
            ],
        )
    }

    #[test]
    fn dims_resolve_by_precedence() {
        let spec = InputSpec::new().dim("height", 32).dim("width", 64);
        assert_eq!(spec.resolve(&yolo(), 1).expect("dims"), [1, 3, 32, 64]);
        assert_eq!(spec.resolve(&yolo(), 8).expect("dims"), [8, 3, 32, 64]);
        // A whole shape wins over symbolic sizes; its batch is replaced.
        let spec = spec.shape("images", [1, 3, 16, 16]);
        assert_eq!(spec.resolve(&yolo(), 4).expect("shape"), [4, 3, 16, 16]);
        // Fixed dims are checked.
        let bad = InputSpec::new().shape("images", [1, 4, 16, 16]);
        assert!(matches!(
            bad.resolve(&yolo(), 1),
            Err(MeasureError::ShapeMismatch { .. })
        ));
        let err = InputSpec::new().resolve(&yolo(), 1).expect_err("open dims");
        assert!(
            matches!(&err, MeasureError::UnresolvedDim { input, axis: 2, dim } if input == "images" && dim == "height"),
            "{err:?}"
        );
        let anonymous = info("x", ElementType::F32, vec![Dim::Dynamic, Dim::Dynamic]);
        assert!(matches!(
            InputSpec::new().resolve(&anonymous, 1),
            Err(MeasureError::UnresolvedDim { axis: 1, .. })
        ));
    }

    #[test]
    fn synthetic_inputs_are_deterministic_and_batched_only_when_open() {
        let spec = InputSpec::new().dim("height", 8).dim("width", 8);
        let a = Synthetic::new(&[yolo()], &spec, 4).expect("inputs");
        let b = Synthetic::new(&[yolo()], &spec, 4).expect("inputs");
        assert_eq!(a.base_batch, 1);
        assert_eq!(a.one[0].1.shape(), [1, 3, 8, 8]);
        let (batch, inputs) = a.batch.as_ref().expect("open batch");
        assert_eq!((*batch, inputs[0].1.shape()), (4, &[4, 3, 8, 8][..]));
        let values = |s: &Synthetic| match &s.one[0].1 {
            TensorInput::F32(x) => x.iter().copied().collect::<Vec<_>>(),
            other => panic!("f32 expected, got {other:?}"),
        };
        let (va, vb) = (values(&a), values(&b));
        assert_eq!(va, vb);
        assert!(va.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(va.windows(2).any(|w| w[0] != w[1]), "not constant");

        let fixed = info("x", ElementType::U8, vec![Dim::Fixed(1), Dim::Fixed(4)]);
        let s = Synthetic::new(std::slice::from_ref(&fixed), &InputSpec::new(), 8).expect("inputs");
        assert!(s.batch.is_none());
        assert_eq!(s.base_batch, 1);
        let err = Synthetic::new(&[fixed], &InputSpec::new().shape("y", [1]), 8)
            .expect_err("unknown input");
        assert!(matches!(err, MeasureError::UnknownInput { .. }), "{err:?}");
        let strings = info("s", ElementType::String, vec![Dim::Fixed(1)]);
        assert!(matches!(
            Synthetic::new(&[strings], &InputSpec::new(), 1),
            Err(MeasureError::UnsupportedInput { .. })
        ));
    }
}
