//! Tests of the algorithm configuration: POT's JSON accepted in every documented form, each
//! unknown name, wrong type and bad value reported on the right parameter with what is accepted,
//! and typed parameters round-tripping through their JSON.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::stats::{StatsCollector, StatsLayout};

fn dq(params: Value) -> DefaultQuantizationParams {
    DefaultQuantizationParams::from_json(&params).unwrap_or_else(|e| panic!("{params}: {e}"))
}

fn aa(params: Value) -> AccuracyAwareParams {
    AccuracyAwareParams::from_json(&params).unwrap_or_else(|e| panic!("{params}: {e}"))
}

/// Parses the algorithm list and each entry's parameters, as `create_pipeline` does.
fn parse(config: Value) -> Result<Vec<AlgorithmParams>, PipelineError> {
    parse_algorithms(&config)?
        .iter()
        .map(|s| AlgorithmParams::parse(&s.name, &s.params))
        .collect()
}

#[test]
fn pot_examples_are_accepted() {
    // The example of POT's `create_pipeline` documentation.
    let parsed = parse(json!([{
        "name": "DefaultQuantization",
        "params": {"preset": "performance", "stat_subset_size": 500}
    }]))
    .expect("parsed");
    assert_eq!(
        parsed,
        [AlgorithmParams::DefaultQuantization(
            DefaultQuantizationParams {
                stat_subset_size: 500,
                ..DefaultQuantizationParams::default()
            }
        )]
    );

    // A full accuracy-aware configuration in POT's vocabulary.
    let parsed = parse(json!({
        "name": "AccuracyAwareQuantization",
        "params": {
            "preset": "mixed",
            "stat_subset_size": 300,
            "stat_batch_size": 8,
            "maximal_drop": 0.02,
            "drop_type": "relative",
            "ranking_subset_size": 100,
            "max_iter_num": 20,
            "target_device": "CPU",
            "shuffle_data": true,
            "seed": 7,
            "range_estimator": {"preset": "quantile"},
            "ignored": {"scope": ["conv1"], "operations": [{"type": "Concat"}]},
            "use_fast_bias": null
        }
    }));
    // `use_fast_bias` is not a kiln parameter, even as null.
    assert!(
        matches!(parsed, Err(PipelineError::UnknownParam { ref param, .. }) if param == "use_fast_bias")
    );

    let p = aa(json!({
        "preset": "mixed",
        "stat_batch_size": 8,
        "maximal_drop": 0.02,
        "drop_type": "relative",
        "ranking_subset_size": 100,
        "max_iter_num": 20,
        "target_device": "cpu",
        "shuffle_data": true,
        "seed": 7,
        "range_estimator": {"preset": "quantile"},
        "ignored": {"scope": ["conv1"], "operations": [{"type": "Concat"}]},
        "ignored_scope": {"names": ["head"], "patterns": ["^model\\.22\\."]}
    }));
    assert_eq!(p.quantization.preset, Preset::Mixed);
    assert!(!p.quantization.preset.symmetric_activations());
    assert_eq!(p.quantization.stat_batch_size, 8);
    assert_eq!(p.quantization.target_device, TargetDevice::Cpu);
    assert_eq!(
        p.quantization.stat_subset(),
        Subset::Random { size: 300, seed: 7 }
    );
    let quantile = RangeEstimator::Quantile { outlier_prob: 1e-4 };
    assert_eq!(
        p.quantization.range_estimator,
        RangeEstimatorParams {
            activations: quantile,
            weights: quantile
        }
    );
    let scope = &p.quantization.ignored_scope;
    assert_eq!(scope.names, ["head", "conv1"]);
    assert_eq!(scope.types, ["Concat"]);
    assert!(scope.matches("model.22.cv2.conv", "Conv"));
    assert!(!scope.matches("model.2.cv2.conv", "Conv"));
    assert!(scope.matches("anything", "Concat"));
    assert!(scope.matches("conv1", "Conv"));
    assert_eq!(p.maximal_drop, 0.02);
    assert_eq!(p.drop_type, DropType::Relative);
    assert_eq!(p.ranking_subset_size, 100);
    assert_eq!(p.max_iter_num, Some(20));
}

#[test]
fn defaults_are_pot_and_nncf_defaults_except_measured_ones() {
    let d = dq(json!({}));
    assert_eq!(d, DefaultQuantizationParams::default());
    assert_eq!(d.preset, Preset::Performance);
    assert_eq!(d.stat_subset_size, 300);
    assert_eq!(d.stat_batch_size, 1);
    assert_eq!(d.stat_subset(), Subset::First(300));
    assert_eq!(d.range_estimator.activations, RangeEstimator::MinMax);
    assert_eq!(d.range_estimator.weights, RangeEstimator::MinMax);
    assert!(!d.bias_correction);
    assert!(d.ignored_scope.is_empty());
    let a = aa(json!({}));
    assert_eq!(a, AccuracyAwareParams::default());
    assert_eq!(
        (
            a.maximal_drop,
            a.drop_type,
            a.ranking_subset_size,
            a.max_iter_num
        ),
        (0.01, DropType::Absolute, 300, None)
    );
    // `params` may be missing or null.
    assert_eq!(
        parse(json!([{"name": "DefaultQuantization"}, {"name": "DefaultQuantization", "params": null}]))
            .expect("parsed")
            .len(),
        2
    );
}

#[test]
fn range_estimators_in_every_form() {
    let q = |p: f64| RangeEstimator::Quantile { outlier_prob: p };
    let cases = [
        (
            json!({"activations": "mse"}),
            RangeEstimator::Mse,
            RangeEstimator::MinMax,
        ),
        (
            json!({"activations": "min_max", "weights": "mse"}),
            RangeEstimator::MinMax,
            RangeEstimator::Mse,
        ),
        (
            json!({"activations": {"type": "quantile", "outlier_prob": 0.001}}),
            q(0.001),
            RangeEstimator::MinMax,
        ),
        (
            json!({"activations": "quantile"}),
            q(1e-4),
            RangeEstimator::MinMax,
        ),
        (
            json!({"preset": "quantile", "weights": "min_max"}),
            q(1e-4),
            RangeEstimator::MinMax,
        ),
        (
            json!({"preset": "default"}),
            RangeEstimator::MeanMinMax,
            RangeEstimator::MinMax,
        ),
        (
            json!({"activations": {"preset": "quantile"}}),
            q(1e-4),
            RangeEstimator::MinMax,
        ),
        (
            json!({"activations": {"min": {"type": "min", "aggregator": "mean"}, "max": {"type": "max", "aggregator": "mean"}}}),
            RangeEstimator::MeanMinMax,
            RangeEstimator::MinMax,
        ),
        (
            json!({"activations": {"min": {"aggregator": "min"}, "max": {"aggregator": "max"}}}),
            RangeEstimator::MinMax,
            RangeEstimator::MinMax,
        ),
        (
            json!({"activations": {"max": {"type": "abs_max"}}}),
            RangeEstimator::MeanMinMax,
            RangeEstimator::MinMax,
        ),
        (
            json!({"activations": {"min": {"type": "quantile", "outlier_prob": 0.01}, "max": {"type": "quantile"}},
                   "weights": {"min": {"type": "min"}, "max": {"type": "max"}}}),
            q(0.01),
            RangeEstimator::MinMax,
        ),
        (
            json!({"weights": {"type": "quantile"}}),
            RangeEstimator::MinMax,
            q(1e-4),
        ),
    ];
    for (re, activations, weights) in cases {
        let p = dq(json!({ "range_estimator": re }));
        assert_eq!(
            p.range_estimator,
            RangeEstimatorParams {
                activations,
                weights
            },
            "{re}"
        );
    }
}

/// What an error must be.
enum Expect {
    UnknownAlgorithm,
    UnknownParam(&'static str, &'static str, Vec<&'static str>),
    Invalid(&'static str, &'static str, &'static str),
    Config(&'static str),
}

fn check(config: Value, expect: Expect) {
    let err = parse(config.clone()).expect_err(&config.to_string());
    let message = err.to_string();
    match (expect, err) {
        (Expect::UnknownAlgorithm, PipelineError::UnknownAlgorithm { accepted, .. }) => {
            assert_eq!(accepted, ALGORITHMS, "{config}");
            assert!(
                message.contains("DefaultQuantization, AccuracyAwareQuantization"),
                "{message}"
            );
        }
        (
            Expect::UnknownParam(algorithm, param, accepted),
            PipelineError::UnknownParam {
                algorithm: a,
                param: p,
                accepted: acc,
            },
        ) => {
            assert_eq!((a.as_str(), p.as_str()), (algorithm, param), "{config}");
            assert_eq!(acc, accepted, "{config}");
            assert!(message.contains(&accepted.join(", ")), "{message}");
        }
        (
            Expect::Invalid(algorithm, param, reason),
            PipelineError::InvalidParam {
                algorithm: a,
                param: p,
                reason: r,
            },
        ) => {
            assert_eq!(
                (a.as_str(), p.as_str()),
                (algorithm, param),
                "{config}: {r}"
            );
            assert!(
                r.contains(reason),
                "{config}: {r:?} should mention {reason:?}"
            );
        }
        (Expect::Config(field), PipelineError::Config { field: f, .. }) => {
            assert_eq!(f, field, "{config}");
        }
        (_, other) => panic!("{config}: unexpected error {other:?}"),
    }
}

fn dq_cfg(params: Value) -> Value {
    json!([{"name": "DefaultQuantization", "params": params}])
}

fn aa_cfg(params: Value) -> Value {
    json!([{"name": "AccuracyAwareQuantization", "params": params}])
}

#[test]
fn every_bad_name_or_value_is_reported_where_it_is() {
    use Expect::*;
    const DQ: &str = "DefaultQuantization";
    const AA: &str = "AccuracyAwareQuantization";
    let dq_accepted = DefaultQuantizationParams::ACCEPTED.to_vec();
    let cases = [
        // Shape of the list.
        (json!("DefaultQuantization"), Config("algorithms")),
        (json!([42]), Config("algorithms[0]")),
        (json!([{"params": {}}]), Config("algorithms[0].name")),
        (json!([{"name": 3}]), Config("algorithms[0].name")),
        (
            json!([{"name": "DefaultQuantization", "params": []}]),
            Config("algorithms[0].params"),
        ),
        (
            json!([{"name": "DefaultQuantization", "parameters": {}}]),
            Config("algorithms[0].parameters"),
        ),
        // Names.
        (json!([{"name": "MinMaxQuantization"}]), UnknownAlgorithm),
        (json!([{"name": "defaultquantization"}]), UnknownAlgorithm),
        (
            dq_cfg(json!({"stat_subset": 10})),
            UnknownParam(DQ, "stat_subset", dq_accepted.clone()),
        ),
        (
            dq_cfg(json!({"maximal_drop": 0.01})),
            UnknownParam(DQ, "maximal_drop", dq_accepted.clone()),
        ),
        (
            aa_cfg(json!({"max_drop": 0.01})),
            UnknownParam(AA, "max_drop", AccuracyAwareParams::accepted()),
        ),
        (
            dq_cfg(json!({"ignored_scope": {"name": ["a"]}})),
            UnknownParam(DQ, "ignored_scope.name", vec!["names", "types", "patterns"]),
        ),
        (
            dq_cfg(json!({"ignored": {"scopes": ["a"]}})),
            UnknownParam(DQ, "ignored.scopes", vec!["scope", "operations"]),
        ),
        (
            dq_cfg(json!({"range_estimator": {"activation": "mse"}})),
            UnknownParam(
                DQ,
                "range_estimator.activation",
                vec!["preset", "activations", "weights"],
            ),
        ),
        (
            dq_cfg(json!({"range_estimator": {"activations": {"type": "quantile", "q": 0.1}}})),
            UnknownParam(
                DQ,
                "range_estimator.activations.q",
                vec!["type", "outlier_prob"],
            ),
        ),
        (
            dq_cfg(
                json!({"range_estimator": {"activations": {"max": {"type": "max", "clipping_value": 6}}}}),
            ),
            UnknownParam(
                DQ,
                "range_estimator.activations.max.clipping_value",
                vec!["type", "aggregator", "outlier_prob"],
            ),
        ),
        // Types and ranges.
        (
            dq_cfg(json!({"stat_subset_size": 0})),
            Invalid(DQ, "stat_subset_size", "at least 1"),
        ),
        (
            dq_cfg(json!({"stat_subset_size": -5})),
            Invalid(DQ, "stat_subset_size", "non-negative integer"),
        ),
        (
            dq_cfg(json!({"stat_subset_size": 1.5})),
            Invalid(DQ, "stat_subset_size", "non-negative integer"),
        ),
        (
            dq_cfg(json!({"stat_subset_size": "300"})),
            Invalid(DQ, "stat_subset_size", "non-negative integer"),
        ),
        (
            dq_cfg(json!({"stat_batch_size": 0})),
            Invalid(DQ, "stat_batch_size", "at least 1"),
        ),
        (
            dq_cfg(json!({"histogram_bins": 2047})),
            Invalid(DQ, "histogram_bins", "even"),
        ),
        (
            dq_cfg(json!({"histogram_bins": 0})),
            Invalid(DQ, "histogram_bins", "at least 2"),
        ),
        (
            dq_cfg(json!({"preset": "accuracy"})),
            Invalid(DQ, "preset", "performance, mixed"),
        ),
        (
            dq_cfg(json!({"preset": 1})),
            Invalid(DQ, "preset", "performance, mixed"),
        ),
        (
            dq_cfg(json!({"target_device": "NPU"})),
            Invalid(DQ, "target_device", "ANY, CPU, GPU"),
        ),
        (
            dq_cfg(json!({"bias_correction": "yes"})),
            Invalid(DQ, "bias_correction", "true or false"),
        ),
        (
            dq_cfg(json!({"seed": -1})),
            Invalid(DQ, "seed", "non-negative integer"),
        ),
        (
            dq_cfg(json!({"ignored_scope": ["conv1"]})),
            Invalid(DQ, "ignored_scope", "an object"),
        ),
        (
            dq_cfg(json!({"ignored_scope": {"names": "conv1"}})),
            Invalid(DQ, "ignored_scope.names", "list of strings"),
        ),
        (
            dq_cfg(json!({"ignored_scope": {"types": ["Add", 3]}})),
            Invalid(DQ, "ignored_scope.types[1]", "a string"),
        ),
        (
            dq_cfg(json!({"ignored_scope": {"patterns": ["ok.*", "(unclosed"]}})),
            Invalid(
                DQ,
                "ignored_scope.patterns[1]",
                "invalid regular expression",
            ),
        ),
        (
            dq_cfg(
                json!({"ignored": {"operations": [{"type": "Add", "attributes": {"axis": 1}}]}}),
            ),
            Invalid(DQ, "ignored.operations[0].attributes", "not supported"),
        ),
        (
            dq_cfg(json!({"ignored": {"operations": {"type": "Add"}}})),
            Invalid(DQ, "ignored.operations", "a list"),
        ),
        (
            dq_cfg(json!({"range_estimator": "mse"})),
            Invalid(DQ, "range_estimator", "an object"),
        ),
        (
            dq_cfg(json!({"range_estimator": {"activations": "kl_divergence"}})),
            Invalid(
                DQ,
                "range_estimator.activations",
                "min_max, mean_min_max, quantile, mse",
            ),
        ),
        (
            dq_cfg(json!({"range_estimator": {"activations": {"type": "entropy"}}})),
            Invalid(
                DQ,
                "range_estimator.activations.type",
                "min_max, mean_min_max, quantile, mse",
            ),
        ),
        (
            dq_cfg(
                json!({"range_estimator": {"activations": {"type": "quantile", "outlier_prob": 0.7}}}),
            ),
            Invalid(DQ, "range_estimator.activations.outlier_prob", "(0, 0.5)"),
        ),
        (
            dq_cfg(
                json!({"range_estimator": {"activations": {"type": "mse", "outlier_prob": 0.1}}}),
            ),
            Invalid(DQ, "range_estimator.activations.type", "quantile only"),
        ),
        (
            dq_cfg(json!({"range_estimator": {"weights": "mean_min_max"}})),
            Invalid(DQ, "range_estimator.weights", "activations only"),
        ),
        (
            dq_cfg(json!({"range_estimator": {"preset": "fancy"}})),
            Invalid(DQ, "range_estimator.preset", "default, quantile"),
        ),
        (
            dq_cfg(
                json!({"range_estimator": {"activations": {"min": {"type": "quantile"}, "max": {"type": "max"}}}}),
            ),
            Invalid(DQ, "range_estimator.activations", "both be quantile"),
        ),
        (
            dq_cfg(json!({"range_estimator": {"activations": {"max": {"type": "median"}}}})),
            Invalid(
                DQ,
                "range_estimator.activations.max.type",
                "max, abs_max, quantile",
            ),
        ),
        (
            dq_cfg(
                json!({"range_estimator": {"activations": {"max": {"aggregator": "hl_estimator"}}}}),
            ),
            Invalid(
                DQ,
                "range_estimator.activations.max.aggregator",
                "mean, min, max",
            ),
        ),
        (
            dq_cfg(json!({"range_estimator": {"activations": {}}})),
            Invalid(DQ, "range_estimator.activations", "`min` and/or `max`"),
        ),
        (
            aa_cfg(json!({"maximal_drop": 1.5})),
            Invalid(AA, "maximal_drop", "[0, 1]"),
        ),
        (
            aa_cfg(json!({"maximal_drop": -0.01})),
            Invalid(AA, "maximal_drop", "[0, 1]"),
        ),
        (
            aa_cfg(json!({"maximal_drop": "1%"})),
            Invalid(AA, "maximal_drop", "a number"),
        ),
        (
            aa_cfg(json!({"drop_type": "percent"})),
            Invalid(AA, "drop_type", "absolute, relative"),
        ),
        (
            aa_cfg(json!({"ranking_subset_size": 0})),
            Invalid(AA, "ranking_subset_size", "at least 1"),
        ),
        (
            aa_cfg(json!({"max_iter_num": 0})),
            Invalid(AA, "max_iter_num", "at least 1"),
        ),
        (
            aa_cfg(json!({"metric_subset_ratio": 0})),
            Invalid(AA, "metric_subset_ratio", "(0, 1]"),
        ),
        // The shared parameters are checked under the accuracy-aware name too.
        (
            aa_cfg(json!({"stat_subset_size": 0})),
            Invalid(AA, "stat_subset_size", "at least 1"),
        ),
        (dq_cfg(json!(7)), Config("algorithms[0].params")),
    ];
    for (config, expect) in cases {
        check(config, expect);
    }
    // Errors in a later entry are found too.
    check(
        json!([{"name": "DefaultQuantization"}, {"name": "AccuracyAwareQuantization", "params": {"drop": 1}}]),
        UnknownParam(AA, "drop", AccuracyAwareParams::accepted()),
    );
}

#[test]
fn estimators_turn_statistics_into_ranges() {
    let layout = StatsLayout::new().with(
        "t",
        [
            RangeEstimator::MinMax.stat_kinds(256),
            RangeEstimator::MeanMinMax.stat_kinds(256),
            RangeEstimator::Mse.stat_kinds(256),
        ]
        .concat(),
    );
    let mut c = StatsCollector::new(&layout).expect("collector");
    // Two samples: [0..=99] and [0..=99] * 2 - 50.
    let a = ndarray::Array::from_shape_fn((2, 100), |(s, i)| {
        if s == 0 {
            i as f32
        } else {
            2.0 * i as f32 - 50.0
        }
    })
    .into_dyn();
    c.update("t", a.view()).expect("update");
    let stats = c.finish();
    let t = stats.get("t").expect("t");
    let mse = MseOptions::default();
    assert_eq!(RangeEstimator::MinMax.range(t, &mse), Some((-50.0, 148.0)));
    assert_eq!(
        RangeEstimator::MeanMinMax.range(t, &mse),
        Some((-25.0, 123.5))
    );
    let (lo, hi) = RangeEstimator::Quantile { outlier_prob: 0.01 }
        .range(t, &mse)
        .expect("quantile");
    assert!(
        lo > -50.0 && lo < -40.0 && hi < 148.0 && hi > 140.0,
        "[{lo}, {hi}]"
    );
    let (lo, hi) = RangeEstimator::Mse.range(t, &mse).expect("mse");
    assert!(
        (-50.0..=0.0).contains(&lo) && hi <= 148.0 && hi > 100.0,
        "[{lo}, {hi}]"
    );
    // Missing statistics: no range.
    assert_eq!(
        RangeEstimator::Mse.range(&TensorStats::default(), &mse),
        None
    );
}

#[test]
fn drops() {
    assert!((DropType::Absolute.drop(0.76, 0.75) - 0.01).abs() < 1e-12);
    assert!((DropType::Relative.drop(0.5, 0.45) - 0.1).abs() < 1e-12);
    assert_eq!(DropType::Relative.drop(0.0, -0.5), 0.5);
}

fn estimator() -> impl Strategy<Value = RangeEstimator> {
    prop_oneof![
        Just(RangeEstimator::MinMax),
        Just(RangeEstimator::MeanMinMax),
        (1e-6f64..0.49).prop_map(|p| RangeEstimator::Quantile { outlier_prob: p }),
        Just(RangeEstimator::Mse),
    ]
}

fn weights_estimator() -> impl Strategy<Value = RangeEstimator> {
    estimator().prop_map(|e| match e {
        RangeEstimator::MeanMinMax => RangeEstimator::Mse,
        e => e,
    })
}

prop_compose! {
    fn dq_params()(
        mixed in any::<bool>(),
        stat_subset_size in 1usize..10_000,
        stat_batch_size in 1usize..64,
        shuffle_data in any::<bool>(),
        seed in any::<u64>(),
        activations in estimator(),
        weights in weights_estimator(),
        names in prop::collection::vec("[a-z0-9_./]{1,12}", 0..4),
        types in prop::collection::vec("[A-Z][a-z]{1,8}", 0..3),
        patterns in prop::collection::vec(prop::sample::select(vec!["^head", "conv[0-9]+$", ".*\\.22\\..*"]), 0..3),
        bias_correction in any::<bool>(),
        device in 0usize..3,
        half_bins in 1usize..4096,
        cache in prop::option::of(("[a-z]{1,8}", "[0-9a-f]{8}")),
    ) -> DefaultQuantizationParams {
        DefaultQuantizationParams {
            preset: if mixed { Preset::Mixed } else { Preset::Performance },
            stat_subset_size,
            stat_batch_size,
            shuffle_data,
            seed,
            range_estimator: RangeEstimatorParams { activations, weights },
            ignored_scope: IgnoredScope::new(names, types, &patterns).expect("patterns"),
            bias_correction,
            target_device: [TargetDevice::Any, TargetDevice::Cpu, TargetDevice::Gpu][device],
            histogram_bins: 2 * half_bins,
            stats_cache_dir: cache.as_ref().map(|(dir, _)| std::path::PathBuf::from(dir)),
            data_fingerprint: cache.map(|(_, fingerprint)| fingerprint),
        }
    }
}

proptest! {
    #[test]
    fn typed_params_round_trip_through_json(
        quantization in dq_params(),
        maximal_drop in 0.0f64..=1.0,
        relative in any::<bool>(),
        ranking_subset_size in 1usize..1000,
        max_iter_num in prop::option::of(1usize..100),
        metric_subset_ratio in 0.01f64..=1.0,
    ) {
        let dq = AlgorithmParams::DefaultQuantization(quantization.clone());
        let aa = AlgorithmParams::AccuracyAwareQuantization(AccuracyAwareParams {
            quantization,
            maximal_drop,
            drop_type: if relative { DropType::Relative } else { DropType::Absolute },
            ranking_subset_size,
            max_iter_num,
            metric_subset_ratio,
        });
        let json = serde_json::to_value([&dq, &aa]).expect("json");
        prop_assert_eq!(parse(json).expect("parsed"), vec![dq, aa]);
    }
}
