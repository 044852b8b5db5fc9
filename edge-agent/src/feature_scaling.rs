//! The feature scaling an asset learns at commissioning.
//!
//! A shipped model serves many machines because each asset's features are
//! standardised against its own baseline: `(x - centre) / spread`. Some
//! features also move for reasons that are not faults: a bridge's modal
//! frequencies fall as the deck warms and shift with how hard traffic and
//! wind excite it. If the manifest names such *covariates* (features of the
//! same window, e.g. `temperature_c`), commissioning fits each other
//! feature's dependence on them by least squares over the baseline, and the
//! centre becomes a line: `centre + slope * (covariate - its baseline
//! mean)`. The spread is then that of the residuals, so the model sees how
//! far a feature is from what this asset shows *at this temperature*, and a
//! stiffness loss stands out from the weather.
//!
//! A baseline can only teach a dependence it has seen: a covariate whose
//! baseline spread is below its `min_spread` is left out (the record says
//! so), rather than extrapolating a slope fitted to noise. Nor can it tell
//! apart two covariates that moved together (a bridge's deck warms when
//! traffic peaks): one that correlates beyond [`MAX_COVARIATE_CORRELATION`]
//! with a covariate listed before it is left out too, because their two
//! slopes would be large, opposite and meaningless outside the baseline.

use serde::{Deserialize, Serialize};

/// How a feature's centre and spread are estimated from the baseline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingStatistic {
    /// Median and 1.4826 x the median absolute deviation: robust to a few
    /// odd windows in the baseline.
    #[default]
    MedianMad,
    /// Mean and standard deviation (Hotelling's statistics): for quantised
    /// channels, whose MAD collapses when most readings are equal.
    MeanStd,
}

/// `covariates` in a manifest's commissioning: a feature whose normal
/// influence on the others is learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CovariateSpec {
    /// One of the model's features.
    pub feature: String,
    /// Fit against its natural logarithm (for levels that vary by orders of
    /// magnitude, such as an excitation RMS).
    #[serde(default)]
    pub log: bool,
    /// Smallest baseline standard deviation (in its unit, after the log)
    /// from which its influence is learned.
    pub min_spread: f64,
}

impl CovariateSpec {
    fn value(&self, x: f64) -> f64 {
        if self.log { x.max(1e-30).ln() } else { x }
    }
}

/// Above this baseline correlation with an earlier covariate, a covariate
/// is left out (its influence cannot be told from that one's).
pub const MAX_COVARIATE_CORRELATION: f64 = 0.9;

/// A covariate as commissioning found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedCovariate {
    pub spec: CovariateSpec,
    /// Its position in the feature vector.
    pub index: usize,
    pub mean: f64,
    pub spread: f64,
    /// False: the baseline did not vary it enough, or it moved with
    /// `collinear_with`; its slopes are 0.
    pub learned: bool,
    /// The earlier covariate it moved with in the baseline, if that is
    /// why it was left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collinear_with: Option<String>,
}

/// Per-feature standardisation learned from a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureScaling {
    pub center: Vec<f64>,
    pub scale: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covariates: Vec<LearnedCovariate>,
    /// `slopes[i][j]`: change of feature `i` per unit of covariate `j`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slopes: Vec<Vec<f64>>,
}

impl FeatureScaling {
    /// Centre and spread of each feature over `rows`, no covariates.
    pub fn learn(rows: &[Vec<f64>], statistic: ScalingStatistic) -> Self {
        Self::learn_with(rows, statistic, &[])
    }

    /// Centre (a line in the learned covariates) and residual spread of
    /// each feature over `rows`; `covariates` pairs each spec with its
    /// feature's index. A feature that did not vary gets a spread of 1e-6
    /// of its size (at least 1e-9), so any later change in it stands out
    /// rather than dividing by zero.
    pub fn learn_with(
        rows: &[Vec<f64>],
        statistic: ScalingStatistic,
        covariates: &[(CovariateSpec, usize)],
    ) -> Self {
        let n = rows.first().map_or(0, Vec::len);
        let mut learned: Vec<LearnedCovariate> = Vec::with_capacity(covariates.len());
        let mut active_values: Vec<Vec<f64>> = Vec::new();
        for (spec, index) in covariates {
            let values: Vec<f64> = rows.iter().map(|r| spec.value(r[*index])).collect();
            let (mean, spread) = mean_std(&values);
            let varied = spread.is_finite() && spread >= spec.min_spread;
            let collinear_with = if varied {
                learned
                    .iter()
                    .filter(|c| c.learned)
                    .zip(&active_values)
                    .find(|(_, other)| {
                        correlation(&values, other).abs() > MAX_COVARIATE_CORRELATION
                    })
                    .map(|(c, _)| c.spec.feature.clone())
            } else {
                None
            };
            let is_learned = varied && collinear_with.is_none();
            if is_learned {
                active_values.push(values);
            }
            learned.push(LearnedCovariate {
                spec: spec.clone(),
                index: *index,
                mean,
                spread,
                learned: is_learned,
                collinear_with,
            });
        }
        let active: Vec<&LearnedCovariate> = learned.iter().filter(|c| c.learned).collect();
        // Centred covariate values of each row, for the active ones.
        let design: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| {
                active
                    .iter()
                    .map(|c| c.spec.value(r[c.index]) - c.mean)
                    .collect()
            })
            .collect();
        let (mut center, mut scale) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut slopes = Vec::with_capacity(n);
        for i in 0..n {
            let column: Vec<f64> = rows.iter().map(|r| r[i]).collect();
            let is_covariate = learned.iter().any(|c| c.index == i);
            let fitted = if is_covariate || active.is_empty() {
                vec![0.0; active.len()]
            } else {
                least_squares_slopes(&design, &column)
            };
            let residuals: Vec<f64> = column
                .iter()
                .zip(&design)
                .map(|(y, d)| y - d.iter().zip(&fitted).map(|(a, b)| a * b).sum::<f64>())
                .collect();
            let (c, spread) = centre_and_spread(&residuals, statistic);
            center.push(c);
            scale.push(spread.max(1e-6 * c.abs()).max(1e-9));
            // Slopes per covariate in spec order, 0 where not learned.
            let mut row = vec![0.0; learned.len()];
            let mut k = 0;
            for (j, c) in learned.iter().enumerate() {
                if c.learned {
                    row[j] = fitted[k];
                    k += 1;
                }
            }
            slopes.push(row);
        }
        if learned.is_empty() {
            slopes.clear();
        }
        FeatureScaling {
            center,
            scale,
            covariates: learned,
            slopes,
        }
    }

    /// What the baseline shows for feature `i` at the covariates of
    /// `features`.
    fn expected(&self, features: &[f64], i: usize) -> f64 {
        let mut e = self.center[i];
        if let Some(slopes) = self.slopes.get(i) {
            for (c, slope) in self.covariates.iter().zip(slopes) {
                if *slope != 0.0 {
                    e += slope * (c.spec.value(features[c.index]) - c.mean);
                }
            }
        }
        e
    }

    /// `features` standardised.
    pub fn apply(&self, features: &[f64]) -> Vec<f64> {
        (0..features.len().min(self.center.len()))
            .map(|i| (features[i] - self.expected(features, i)) / self.scale[i])
            .collect()
    }

    /// Standardised values (e.g. the model's `expected`) back in feature
    /// units, at the covariates of `features`.
    pub fn to_units(&self, features: &[f64], standardised: &[f64]) -> Vec<f64> {
        standardised
            .iter()
            .enumerate()
            .map(|(i, z)| self.expected(features, i) + self.scale[i] * z)
            .collect()
    }
}

/// Pearson's correlation of two equally long series (0 if either is flat).
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let (ma, sa) = mean_std(a);
    let (mb, sb) = mean_std(b);
    if sa == 0.0 || sb == 0.0 {
        return 0.0;
    }
    let n = a.len().max(2) as f64;
    let covariance: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n - 1.0);
    covariance / (sa * sb)
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn centre_and_spread(xs: &[f64], statistic: ScalingStatistic) -> (f64, f64) {
    match statistic {
        ScalingStatistic::MedianMad => {
            let median = crate::commissioning::quantile(xs, 0.5);
            let deviations: Vec<f64> = xs.iter().map(|x| (x - median).abs()).collect();
            (
                median,
                1.4826 * crate::commissioning::quantile(&deviations, 0.5),
            )
        }
        ScalingStatistic::MeanStd => mean_std(xs),
    }
}

/// Slopes of `y` on the centred columns of `design` (normal equations,
/// solved by Gauss-Jordan elimination; the columns were checked not to be
/// collinear, and a whisker of ridge only guards against round-off).
fn least_squares_slopes(design: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let k = design.first().map_or(0, Vec::len);
    let mut a = vec![vec![0.0; k + 1]; k];
    for (d, y) in design.iter().zip(y) {
        for p in 0..k {
            for q in 0..k {
                a[p][q] += d[p] * d[q];
            }
            a[p][k] += d[p] * y;
        }
    }
    for (p, row) in a.iter_mut().enumerate() {
        row[p] += 1e-9 * row[p].abs() + f64::MIN_POSITIVE;
    }
    for p in 0..k {
        let pivot = (p..k)
            .max_by(|&i, &j| a[i][p].abs().total_cmp(&a[j][p].abs()))
            .unwrap_or(p);
        a.swap(p, pivot);
        let pivot_row = a[p].clone();
        if pivot_row[p] == 0.0 {
            continue;
        }
        for (i, row) in a.iter_mut().enumerate() {
            if i != p {
                let f = row[p] / pivot_row[p];
                for (x, y) in row[p..].iter_mut().zip(&pivot_row[p..]) {
                    *x -= f * y;
                }
            }
        }
    }
    (0..k)
        .map(|p| {
            if a[p][p] == 0.0 {
                0.0
            } else {
                a[p][k] / a[p][p]
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "feature_scaling_tests.rs"]
mod tests;
