//! Samplers (POT's `Sampler` / `BatchSampler`): which samples an engine runs, in which batches.
//!
//! A [`Sampler`] yields batches of sample indices. [`BatchSampler`] batches the whole dataset or an
//! explicit subset; [`SubsetSampler`] picks the subset first ([`Subset`]: the first `n`, `n`
//! evenly spaced, or `n` at random with a seed) — `stat_subset_size` and `ranking_subset_size`
//! are subsets. Randomness is a [`SplitMix64`] generator: deterministic for a seed on every
//! platform, no `rand` dependency.

#![warn(missing_docs)]

use std::collections::HashMap;

use crate::data::DataLoader;
use crate::error::PipelineError;

/// Iterates over a dataset in batches of sample indices.
pub trait Sampler: Send + Sync + std::fmt::Debug {
    /// The batches, in order.
    fn batches(&self) -> Box<dyn Iterator<Item = Vec<usize>> + '_>;

    /// Number of batches (POT's `len`).
    fn len(&self) -> usize;

    /// Number of samples over all batches.
    fn sample_count(&self) -> usize;

    /// Whether there are no batches.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that every index is below `dataset_len`.
    fn check(&self, dataset_len: usize) -> Result<(), PipelineError> {
        match self.batches().flatten().find(|&i| i >= dataset_len) {
            Some(index) => Err(PipelineError::Config {
                field: "sampler".into(),
                reason: format!(
                    "sample index {index} is out of range (the dataset has {dataset_len})"
                ),
            }),
            None => Ok(()),
        }
    }
}

/// Batches of `batch_size` over the whole dataset (`0..dataset_len`) or over `subset_indices`, in
/// order; the last batch may be shorter. A `batch_size` of 0 is taken as 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSampler {
    /// Samples per batch.
    pub batch_size: usize,
    /// The samples to visit, in this order; `None`: the whole dataset.
    pub subset_indices: Option<Vec<usize>>,
    /// Number of samples in the dataset (used when `subset_indices` is `None`).
    pub dataset_len: usize,
}

impl BatchSampler {
    /// Every sample of a dataset of `dataset_len`.
    pub fn new(dataset_len: usize, batch_size: usize) -> BatchSampler {
        BatchSampler {
            batch_size,
            subset_indices: None,
            dataset_len,
        }
    }

    /// Every sample of `loader`.
    pub fn for_loader(loader: &dyn DataLoader, batch_size: usize) -> BatchSampler {
        BatchSampler::new(loader.len(), batch_size)
    }

    /// The samples at `indices`, in that order.
    pub fn with_subset(indices: Vec<usize>, batch_size: usize) -> BatchSampler {
        BatchSampler {
            batch_size,
            dataset_len: indices.len(),
            subset_indices: Some(indices),
        }
    }

    fn size(&self) -> usize {
        self.batch_size.max(1)
    }
}

impl Sampler for BatchSampler {
    fn batches(&self) -> Box<dyn Iterator<Item = Vec<usize>> + '_> {
        let size = self.size();
        match &self.subset_indices {
            Some(indices) => Box::new(indices.chunks(size).map(<[usize]>::to_vec)),
            None => {
                let len = self.dataset_len;
                Box::new(
                    (0..len.div_ceil(size))
                        .map(move |b| (b * size..((b + 1) * size).min(len)).collect()),
                )
            }
        }
    }

    fn len(&self) -> usize {
        self.sample_count().div_ceil(self.size())
    }

    fn sample_count(&self) -> usize {
        self.subset_indices
            .as_ref()
            .map_or(self.dataset_len, Vec::len)
    }
}

/// Which samples of a dataset to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subset {
    /// All of them.
    #[default]
    All,
    /// The first `n` (POT's `stat_subset_size` without shuffling; NNCF's `subset_size`).
    First(usize),
    /// `n` evenly spaced over the dataset (`floor(i * len / n)`), covering it end to end.
    Even(usize),
    /// `n` drawn without replacement with a seeded generator, in ascending order (POT's
    /// `shuffle_data` with `seed`).
    Random {
        /// How many.
        size: usize,
        /// The generator's seed.
        seed: u64,
    },
}

impl Subset {
    /// The indices into a dataset of `len` samples, ascending and distinct; all of them when the
    /// subset asks for `len` or more.
    pub fn indices(&self, len: usize) -> Vec<usize> {
        match *self {
            Subset::All => (0..len).collect(),
            Subset::First(n) => (0..n.min(len)).collect(),
            Subset::Even(n) if n >= len => (0..len).collect(),
            Subset::Even(n) => (0..n).map(|i| i * len / n).collect(),
            Subset::Random { size, .. } if size >= len => (0..len).collect(),
            Subset::Random { size, seed } => {
                // Partial Fisher–Yates over a sparse permutation: O(size) memory.
                let mut rng = SplitMix64::new(seed);
                let mut swapped: HashMap<usize, usize> = HashMap::with_capacity(size);
                let mut out = Vec::with_capacity(size);
                for i in 0..size {
                    let j = i + rng.below((len - i) as u64) as usize;
                    let at_j = swapped.get(&j).copied().unwrap_or(j);
                    let at_i = swapped.get(&i).copied().unwrap_or(i);
                    swapped.insert(j, at_i);
                    out.push(at_j);
                }
                out.sort_unstable();
                out
            }
        }
    }

    /// Number of samples taken from a dataset of `len`.
    pub fn size(&self, len: usize) -> usize {
        match *self {
            Subset::All => len,
            Subset::First(n) | Subset::Even(n) | Subset::Random { size: n, .. } => n.min(len),
        }
    }
}

/// A [`BatchSampler`] over a [`Subset`] of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsetSampler {
    subset: Subset,
    inner: BatchSampler,
}

impl SubsetSampler {
    /// `subset` of a dataset of `dataset_len`, in batches of `batch_size`.
    pub fn new(dataset_len: usize, subset: Subset, batch_size: usize) -> SubsetSampler {
        SubsetSampler {
            subset,
            inner: BatchSampler::with_subset(subset.indices(dataset_len), batch_size),
        }
    }

    /// `subset` of `loader`.
    pub fn for_loader(loader: &dyn DataLoader, subset: Subset, batch_size: usize) -> SubsetSampler {
        SubsetSampler::new(loader.len(), subset, batch_size)
    }

    /// The subset.
    pub fn subset(&self) -> Subset {
        self.subset
    }

    /// The indices visited, in order.
    pub fn indices(&self) -> &[usize] {
        self.inner.subset_indices.as_deref().unwrap_or(&[])
    }
}

impl Sampler for SubsetSampler {
    fn batches(&self) -> Box<dyn Iterator<Item = Vec<usize>> + '_> {
        self.inner.batches()
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn sample_count(&self) -> usize {
        self.inner.sample_count()
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator with a 64-bit state, the same
/// sequence for a seed everywhere. Not for cryptography.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by Lemire's multiply-shift with rejection (unbiased).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A float in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn covered(sampler: &dyn Sampler) -> Vec<usize> {
        sampler.batches().flatten().collect()
    }

    proptest! {
        #[test]
        fn batches_cover_the_dataset_once(len in 0usize..200, batch in 0usize..17) {
            let s = BatchSampler::new(len, batch);
            let batches: Vec<Vec<usize>> = s.batches().collect();
            prop_assert_eq!(batches.len(), s.len());
            prop_assert_eq!(covered(&s), (0..len).collect::<Vec<_>>());
            prop_assert_eq!(s.sample_count(), len);
            for (k, b) in batches.iter().enumerate() {
                prop_assert!(!b.is_empty() && b.len() <= batch.max(1));
                if k + 1 < batches.len() {
                    prop_assert_eq!(b.len(), batch.max(1));
                }
            }
            prop_assert!(s.check(len).is_ok());
        }

        #[test]
        fn subsets_are_distinct_in_range_and_sized(
            len in 0usize..500,
            n in 0usize..600,
            seed in any::<u64>(),
            batch in 1usize..9,
        ) {
            for subset in [Subset::All, Subset::First(n), Subset::Even(n), Subset::Random { size: n, seed }] {
                let s = SubsetSampler::new(len, subset, batch);
                let idx = covered(&s);
                prop_assert_eq!(idx.len(), subset.size(len));
                prop_assert_eq!(idx.as_slice(), s.indices());
                prop_assert!(idx.windows(2).all(|w| w[0] < w[1]), "ascending, distinct: {:?}", idx);
                prop_assert!(idx.iter().all(|&i| i < len));
                prop_assert!(s.check(len).is_ok());
            }
        }

        #[test]
        fn random_subsets_are_deterministic_per_seed(len in 10usize..400, seed in any::<u64>()) {
            let n = len / 3;
            let a = Subset::Random { size: n, seed }.indices(len);
            prop_assert_eq!(&a, &Subset::Random { size: n, seed }.indices(len));
            prop_assert_ne!(a, Subset::Random { size: n, seed: seed ^ 1 }.indices(len));
        }
    }

    #[test]
    fn even_subset_spans_the_dataset() {
        let idx = Subset::Even(300).indices(3000);
        assert_eq!(idx.len(), 300);
        assert_eq!(idx[0], 0);
        assert_eq!(idx[1], 10);
        assert_eq!(idx[299], 2990);
    }

    #[test]
    fn random_subset_is_roughly_uniform() {
        // 300 of 3000 over 200 seeds: every decile should get about 10% of the picks.
        let mut deciles = [0usize; 10];
        for seed in 0..200 {
            for i in (Subset::Random { size: 300, seed }).indices(3000) {
                deciles[i / 300] += 1;
            }
        }
        let expected = 200 * 300 / 10;
        for (d, &n) in deciles.iter().enumerate() {
            let dev = (n as f64 - expected as f64).abs() / expected as f64;
            assert!(
                dev < 0.05,
                "decile {d}: {n} picks, expected about {expected}"
            );
        }
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 1234567 (reference implementation by Vigna).
        let mut rng = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
        let mut rng = SplitMix64::new(7);
        assert!((0..1000).all(|_| rng.below(3) < 3));
        assert!((0..1000).all(|_| (0.0..1.0).contains(&rng.next_f64())));
    }

    #[test]
    fn out_of_range_subsets_are_reported() {
        let s = BatchSampler::with_subset(vec![0, 5, 12], 2);
        let err = s.check(10).expect_err("12 is out of range");
        assert!(err.to_string().contains("12"), "{err}");
    }
}
