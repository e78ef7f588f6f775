//! Conversions between kiln-pipeline's tensors and this crate's session tensors: inputs are
//! borrowed (no copy), outputs are moved (the one copy is out of ONNX Runtime, in
//! [`OrtSession::run`](crate::OrtSession::run)).

use kiln_pipeline::{PipelineError, Tensor, TensorMap};
use ndarray::{Axis, CowArray, Slice};

use crate::session::{Outputs, TensorInput, TensorOutput};

impl<'a> From<&'a Tensor> for TensorInput<'a> {
    /// Borrows the tensor's array: nothing is copied.
    fn from(tensor: &'a Tensor) -> TensorInput<'a> {
        match tensor {
            Tensor::F32(a) => TensorInput::F32(CowArray::from(a.view())),
            Tensor::I64(a) => TensorInput::I64(CowArray::from(a.view())),
            Tensor::I32(a) => TensorInput::I32(CowArray::from(a.view())),
            Tensor::U8(a) => TensorInput::U8(CowArray::from(a.view())),
            Tensor::I8(a) => TensorInput::I8(CowArray::from(a.view())),
            Tensor::Bool(a) => TensorInput::Bool(CowArray::from(a.view())),
        }
    }
}

/// Item `index` along axis 0 of `tensor` (the axis kept, size 1), borrowed. `None` when the tensor
/// has no axis or `index` is out of range.
pub(crate) fn item_input(tensor: &Tensor, index: usize) -> Option<TensorInput<'_>> {
    macro_rules! item {
        ($variant:ident, $a:expr) => {{
            let a = $a;
            if a.ndim() == 0 || index >= a.len_of(Axis(0)) {
                return None;
            }
            let slice = Slice::from(index..index + 1);
            TensorInput::$variant(CowArray::from(a.slice_axis(Axis(0), slice)))
        }};
    }
    Some(match tensor {
        Tensor::F32(a) => item!(F32, a),
        Tensor::I64(a) => item!(I64, a),
        Tensor::I32(a) => item!(I32, a),
        Tensor::U8(a) => item!(U8, a),
        Tensor::I8(a) => item!(I8, a),
        Tensor::Bool(a) => item!(Bool, a),
    })
}

/// Moves one session output into a pipeline [`Tensor`] (no copy). Element types the pipeline has
/// no tensor for (`f64`) are [`PipelineError::Output`] naming the output.
pub fn tensor_from_output(name: &str, output: TensorOutput) -> Result<Tensor, PipelineError> {
    Ok(match output {
        TensorOutput::F32(a) => Tensor::F32(a),
        TensorOutput::I64(a) => Tensor::I64(a),
        TensorOutput::I32(a) => Tensor::I32(a),
        TensorOutput::U8(a) => Tensor::U8(a),
        TensorOutput::I8(a) => Tensor::I8(a),
        TensorOutput::Bool(a) => Tensor::Bool(a),
        other => {
            return Err(PipelineError::Output {
                name: name.to_owned(),
                reason: format!(
                    "is a {} tensor; kiln-pipeline tensors are f32, i64, i32, u8, i8 or bool",
                    other.element_type()
                ),
            });
        }
    })
}

/// Moves every session output into a [`TensorMap`], in the model's output order (no copy).
pub fn tensor_map_from_outputs(outputs: Outputs) -> Result<TensorMap, PipelineError> {
    outputs
        .into_iter()
        .map(|(name, output)| {
            let tensor = tensor_from_output(&name, output)?;
            Ok((name, tensor))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;

    #[test]
    fn inputs_borrow_and_items_slice() {
        let a = ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| (i[0] * 10 + i[1]) as f32);
        let tensor = Tensor::F32(a.clone());
        let input = TensorInput::from(&tensor);
        assert_eq!(input.shape(), [3, 2]);
        let TensorInput::F32(view) = &input else {
            panic!("f32 input")
        };
        assert!(view.is_view(), "borrowed, not copied");
        let item = item_input(&tensor, 2).expect("item 2");
        assert_eq!(item.shape(), [1, 2]);
        let TensorInput::F32(item) = item else {
            panic!("f32 item")
        };
        assert_eq!(item.iter().copied().collect::<Vec<_>>(), [20.0, 21.0]);
        assert!(item_input(&tensor, 3).is_none());
        assert!(item_input(&Tensor::I64(ArrayD::from_elem(IxDyn(&[]), 1)), 0).is_none());
    }

    #[test]
    fn outputs_move_and_f64_is_refused() {
        let a = ArrayD::from_elem(IxDyn(&[1, 4]), 0.25f32);
        let t = tensor_from_output("p", TensorOutput::F32(a.clone())).expect("f32");
        assert_eq!(t, Tensor::F32(a));
        let err = tensor_from_output("d", TensorOutput::F64(ArrayD::from_elem(IxDyn(&[1]), 1.0)))
            .expect_err("f64");
        assert!(
            matches!(&err, PipelineError::Output { name, reason } if name == "d" && reason.contains("f64")),
            "{err:?}"
        );
    }
}
