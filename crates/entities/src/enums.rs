//! OTX's closed vocabularies for a model: precision, format, optimization type and method, target
//! device — each with a stable integer code and a snake_case wire name.

use crate::macros::coded_enum;

/// Why a name or an integer code is not a member of one of the crate's enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseEnumError {
    /// The name is not a wire name of the enum (compared exactly, then ASCII case-insensitively).
    #[error("unknown {kind} {name:?}; expected one of: {}", expected.join(", "))]
    UnknownName {
        /// What was being parsed, e.g. `"model precision"`.
        kind: &'static str,
        /// The offending name.
        name: String,
        /// Every accepted name.
        expected: &'static [&'static str],
    },
    /// The integer is not the code of any member.
    #[error("unknown {kind} code {code}; expected 1..={expected}")]
    UnknownCode {
        /// What was being parsed, e.g. `"model precision"`.
        kind: &'static str,
        /// The offending code.
        code: i32,
        /// How many members there are (codes run from 1 to this).
        expected: usize,
    },
}

coded_enum! {
    /// The numeric precision of a model's weights and activations (OTX `ModelPrecision`).
    ///
    /// It affects accuracy, latency and throughput; a model may mix several (e.g. `[Int8, Fp32]`
    /// for a QDQ model whose tail stays in float).
    pub enum ModelPrecision ("model precision") {
        /// 4-bit integers.
        Int4 = 1 => "int4",
        /// 8-bit integers (what `kiln quantize` produces).
        Int8 = 2 => "int8",
        /// 16-bit floats.
        Fp16 = 3 => "fp16",
        /// 32-bit floats (the default of a trained model).
        Fp32 = 4 => "fp32",
    }
}

coded_enum! {
    /// The file format of a model (OTX `ModelFormat`).
    ///
    /// kiln's native format is ONNX, so [`crate::ModelEntity`] defaults to
    /// [`ModelFormat::Onnx`] (OTX defaults to OpenVINO).
    pub enum ModelFormat ("model format") {
        /// OpenVINO IR (`.xml` + `.bin`).
        OpenVino = 1 => "openvino",
        /// The training framework's own format (PyTorch, TensorFlow, ...).
        BaseFramework = 2 => "base_framework",
        /// ONNX.
        Onnx = 3 => "onnx",
    }
}

coded_enum! {
    /// The tool that optimized a model (OTX `ModelOptimizationType`).
    pub enum ModelOptimizationType ("model optimization type") {
        /// Not optimized.
        None = 1 => "none",
        /// OpenVINO Model Optimizer.
        Mo = 2 => "mo",
        /// Neural Network Compression Framework.
        Nncf = 3 => "nncf",
        /// OpenVINO Post-training Optimization Tool (what `kiln quantize` implements).
        Pot = 4 => "pot",
        /// ONNX tooling.
        Onnx = 5 => "onnx",
    }
}

coded_enum! {
    /// A method used to optimize a model (OTX `OptimizationMethod`).
    pub enum OptimizationMethod ("optimization method") {
        /// Removing whole filters (channels).
        FilterPruning = 1 => "filter_pruning",
        /// Lowering numeric precision.
        Quantization = 2 => "quantization",
    }
}

coded_enum! {
    /// The kind of device a model is deployed on (OTX `TargetDevice`).
    pub enum TargetDevice ("target device") {
        /// Not said.
        Unspecified = 1 => "unspecified",
        /// A CPU (the default).
        Cpu = 2 => "cpu",
        /// A GPU.
        Gpu = 3 => "gpu",
        /// A vision processing unit.
        Vpu = 4 => "vpu",
    }
}

impl Default for ModelFormat {
    /// [`ModelFormat::Onnx`], kiln's native format (OTX defaults to OpenVINO).
    fn default() -> Self {
        Self::Onnx
    }
}

impl Default for ModelOptimizationType {
    /// [`ModelOptimizationType::None`]: a fresh model is not optimized.
    fn default() -> Self {
        Self::None
    }
}

impl Default for TargetDevice {
    /// [`TargetDevice::Cpu`], as in OTX.
    fn default() -> Self {
        Self::Cpu
    }
}
