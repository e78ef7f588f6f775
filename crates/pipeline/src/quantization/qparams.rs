//! Quantization parameters: U8 asymmetric activations, S8 symmetric per-channel weights, INT32
//! biases — the encodings ONNX Runtime's CPU kernels execute fastest (U8S8).

/// Parameters of a per-tensor U8 activation: `real = (q - zero_point) * scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationParams {
    /// Step between two quantized values (> 0).
    pub scale: f32,
    /// The quantized value of real 0.
    pub zero_point: u8,
}

/// The smallest scale kiln writes: a constant tensor still gets a usable, finite encoding.
pub const MIN_SCALE: f32 = 1e-8;

impl ActivationParams {
    /// U8 parameters covering `[lo, hi]`, widened to include 0 (so zero padding is exact) and
    /// nudged so that 0 is exactly representable. Non-finite bounds are treated as 0.
    pub fn from_range(lo: f32, hi: f32) -> ActivationParams {
        let lo = if lo.is_finite() { lo.min(0.0) } else { 0.0 };
        let hi = if hi.is_finite() { hi.max(0.0) } else { 0.0 };
        let scale = ((f64::from(hi) - f64::from(lo)) / 255.0).max(f64::from(MIN_SCALE));
        let zero_point = (-f64::from(lo) / scale).round().clamp(0.0, 255.0) as u8;
        ActivationParams {
            scale: scale as f32,
            zero_point,
        }
    }

    /// The real range this encoding represents.
    pub fn range(&self) -> (f32, f32) {
        let zp = f32::from(self.zero_point);
        ((0.0 - zp) * self.scale, (255.0 - zp) * self.scale)
    }

    /// Quantizes then dequantizes `x` (what the model computes with).
    pub fn fake_quantize(&self, x: f32) -> f32 {
        let q = (x / self.scale).round() + f32::from(self.zero_point);
        (q.clamp(0.0, 255.0) - f32::from(self.zero_point)) * self.scale
    }
}

/// S8 symmetric weights, one scale per output channel: `real = q * scale[c]`, `q` in
/// `[-127, 127]` (the symmetric range keeps U8S8 kernels free of the `-128` saturation case).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightQuantization {
    /// The quantized values, same layout as the float weights.
    pub values: Vec<i8>,
    /// One scale per channel.
    pub scales: Vec<f32>,
}

/// Quantizes float weights laid out as `channels` contiguous blocks (axis 0 of a Conv weight or
/// `Gemm` `transB` weight). `None` when `values.len()` is not a multiple of `channels`.
pub fn quantize_weights_per_channel(values: &[f32], channels: usize) -> Option<WeightQuantization> {
    if channels == 0 || !values.len().is_multiple_of(channels) {
        return None;
    }
    let block = values.len() / channels;
    let mut scales = Vec::with_capacity(channels);
    let mut quantized = Vec::with_capacity(values.len());
    for chunk in values.chunks(block.max(1)) {
        let max = chunk
            .iter()
            .filter(|v| v.is_finite())
            .fold(0f32, |m, v| m.max(v.abs()));
        let scale = (max / 127.0).max(MIN_SCALE);
        scales.push(scale);
        quantized.extend(chunk.iter().map(|&v| {
            if v.is_finite() {
                (v / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            }
        }));
    }
    Some(WeightQuantization {
        values: quantized,
        scales,
    })
}

/// Quantizes weights laid out with the channel as the LAST axis (`MatMul` `[K, N]` weights:
/// channel `n` is every `N`-th value). `None` when `values.len()` is not a multiple of `channels`.
pub fn quantize_weights_last_axis(values: &[f32], channels: usize) -> Option<WeightQuantization> {
    if channels == 0 || !values.len().is_multiple_of(channels) {
        return None;
    }
    let mut max = vec![0f32; channels];
    for (i, v) in values.iter().enumerate() {
        if v.is_finite() {
            let m = &mut max[i % channels];
            *m = m.max(v.abs());
        }
    }
    let scales: Vec<f32> = max.iter().map(|m| (m / 127.0).max(MIN_SCALE)).collect();
    let quantized = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.is_finite() {
                (v / scales[i % channels]).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            }
        })
        .collect();
    Some(WeightQuantization {
        values: quantized,
        scales,
    })
}

/// Quantizes a bias to INT32 with `scale[c] = input_scale * weight_scale[c]` (what ONNX Runtime's
/// QLinearConv expects), returning the values and the per-channel scales.
pub fn quantize_bias(
    bias: &[f32],
    input_scale: f32,
    weight_scales: &[f32],
) -> (Vec<i32>, Vec<f32>) {
    let scales: Vec<f32> = weight_scales
        .iter()
        .map(|w| (input_scale * w).max(MIN_SCALE))
        .collect();
    let values = bias
        .iter()
        .zip(&scales)
        .map(|(&b, &s)| {
            let q = (f64::from(b) / f64::from(s)).round();
            q.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        })
        .collect();
    (values, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_ranges_include_zero_and_represent_it_exactly() {
        for (lo, hi) in [
            (0.0, 6.0),
            (-1.0, 1.0),
            (-0.278, 9.5),
            (2.0, 5.0),
            (-3.0, -1.0),
        ] {
            let p = ActivationParams::from_range(lo, hi);
            assert_eq!(p.fake_quantize(0.0), 0.0, "{lo}..{hi}");
            let (rlo, rhi) = p.range();
            assert!(
                rlo <= lo.min(0.0) + p.scale && rhi >= hi.max(0.0) - p.scale,
                "{p:?}"
            );
            // Values inside the range are within half a step.
            for x in [lo, hi, (lo + hi) / 2.0] {
                let x = x.clamp(rlo, rhi);
                assert!(
                    (p.fake_quantize(x) - x).abs() <= p.scale / 2.0 + 1e-6,
                    "{x} {p:?}"
                );
            }
        }
        // Post-ReLU ranges use the full U8 range with zero point 0.
        assert_eq!(ActivationParams::from_range(0.0, 2.55).zero_point, 0);
        // Degenerate and non-finite ranges still give a usable encoding.
        let p = ActivationParams::from_range(0.0, 0.0);
        assert!(p.scale > 0.0 && p.scale.is_finite());
        let p = ActivationParams::from_range(f32::NEG_INFINITY, f32::NAN);
        assert!(p.scale > 0.0 && p.scale.is_finite());
    }

    #[test]
    fn per_channel_weights_use_each_channels_own_range() {
        let w = [0.5, -1.0, 0.25, 100.0, -50.0, 0.0];
        let q = quantize_weights_per_channel(&w, 2).expect("2 channels");
        assert_eq!(q.scales.len(), 2);
        assert!((q.scales[0] - 1.0 / 127.0).abs() < 1e-9);
        assert_eq!(q.values[1], -127);
        assert_eq!(q.values[3], 127);
        assert_eq!(q.values[0], 64); // 0.5 * 127 = 63.5 rounds away from zero
        assert!(quantize_weights_per_channel(&w, 4).is_none());
        let q = quantize_weights_last_axis(&w, 3).expect("3 channels");
        assert_eq!(q.values[3], 127); // 100 is the max of channel 0
        assert_eq!(q.values[1], -3); // -1 in channel 1, whose max is 50
        assert_eq!(q.values[4], -127);
    }

    #[test]
    fn bias_scales_are_input_times_weight_scales() {
        let (q, s) = quantize_bias(&[1.0, -2.0], 0.1, &[0.01, 0.02]);
        assert!((s[0] - 0.001).abs() < 1e-9 && (s[1] - 0.002).abs() < 1e-9);
        assert_eq!(q, vec![1000, -1000]);
    }
}
