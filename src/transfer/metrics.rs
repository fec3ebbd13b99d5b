//! Scoring a head on held-out images: accuracy with its 95% Wilson interval, per-class
//! accuracy, the confusion matrix and the images it got wrong.
//!
//! The Wilson score interval (Wilson 1927; Brown, Cai and DasGupta 2001 recommend it for
//! small n) is (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.959964 for 95%:
//! unlike the normal approximation it stays inside [0, 1] and is honest at 50 images.

use serde::Serialize;

use super::head::Head;

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A confidence interval for a proportion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// 0.95.
    pub confidence: f64,
    pub low: f64,
    pub high: f64,
}

/// The 95% Wilson score interval of `correct` successes in `n` trials (None for n = 0).
pub fn wilson(correct: usize, n: usize) -> Option<Interval> {
    if n == 0 {
        return None;
    }
    let (n, z) = (n as f64, Z95);
    let p = correct as f64 / n;
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    // At 0 and n successes the bound is exactly 0 (1); the formula's rounding would miss it.
    Some(Interval {
        confidence: 0.95,
        low: if correct == 0 {
            0.0
        } else {
            (centre - half).max(0.0)
        },
        high: if correct as f64 == n {
            1.0
        } else {
            (centre + half).min(1.0)
        },
    })
}

/// One class's accuracy on the held-out images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassAccuracy {
    pub class: String,
    pub images: usize,
    pub correct: usize,
    /// None when the class has no held-out image.
    pub accuracy: Option<f64>,
}

/// A held-out image the head got wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Misclassified {
    pub image: String,
    /// Its class (its folder).
    pub class: String,
    /// The head's top class, and its probability.
    pub predicted: String,
    pub probability: f32,
}

/// The head's figures on a set of held-out images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub images: usize,
    pub correct: usize,
    pub accuracy: f64,
    /// 95% Wilson interval of the accuracy.
    pub interval: Interval,
    /// In class order.
    pub per_class: Vec<ClassAccuracy>,
    /// `confusion[t][p]`: images of class t the head put in class p.
    pub confusion: Vec<Vec<usize>>,
    /// In the order scored.
    pub misclassified: Vec<Misclassified>,
}

/// One scored image: its name, its class and its features.
pub struct Scored<'a> {
    pub image: String,
    pub class: usize,
    pub features: &'a [f32],
}

/// Scores `head` on `images` (None when there are none); `classes` names the outputs.
pub fn score<'a>(
    head: &Head,
    images: impl IntoIterator<Item = Scored<'a>>,
    classes: &[String],
) -> Option<Score> {
    let k = classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut misclassified = Vec::new();
    for item in images {
        let probs = head.probabilities(item.features);
        let predicted = (0..probs.len())
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        confusion[item.class][predicted] += 1;
        if predicted != item.class {
            misclassified.push(Misclassified {
                image: item.image,
                class: classes[item.class].clone(),
                predicted: classes[predicted].clone(),
                probability: probs[predicted],
            });
        }
    }
    let images: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..k).map(|c| confusion[c][c]).sum();
    let interval = wilson(correct, images)?;
    let per_class = classes
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let n: usize = confusion[c].iter().sum();
            ClassAccuracy {
                class: name.clone(),
                images: n,
                correct: confusion[c][c],
                accuracy: (n > 0).then(|| confusion[c][c] as f64 / n as f64),
            }
        })
        .collect();
    Some(Score {
        images,
        correct,
        accuracy: correct as f64 / images as f64,
        interval,
        per_class,
        confusion,
        misclassified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // 41 of 50 (82%): [69.2%, 90.2%], the hot dog README's [69, 90] for v1 1.0_224.
        let i = wilson(41, 50).unwrap();
        assert!(
            (i.low - 0.6920).abs() < 1e-4 && (i.high - 0.9023).abs() < 1e-4,
            "{i:?}"
        );
        // 44 of 50 (88%): [76, 94].
        let i = wilson(44, 50).unwrap();
        assert_eq!(((i.low * 100.0).round(), (i.high * 100.0).round()), (76.0, 94.0));
        let all = wilson(10, 10).unwrap();
        assert_eq!(all.high, 1.0);
        assert!((all.low - 0.7225).abs() < 1e-4, "{all:?}");
        assert_eq!(wilson(0, 10).unwrap().low, 0.0);
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn scores_count_confusions_and_name_the_mistakes() {
        // Class 0 when the first feature is larger, class 1 otherwise.
        let head = Head {
            classes: 2,
            width: 2,
            weight: vec![1.0, -1.0, -1.0, 1.0],
            bias: vec![0.0, 0.0],
        };
        let classes = ["cat".to_string(), "dog".to_string()];
        let rows = [[2.0, 0.0], [0.0, 2.0], [0.0, 1.0], [3.0, 0.0]];
        let truth = [0, 1, 0, 0];
        let images = rows.iter().zip(truth).enumerate().map(|(i, (r, c))| Scored {
            image: format!("{i}.jpg"),
            class: c,
            features: r,
        });
        let s = score(&head, images, &classes).unwrap();
        assert_eq!((s.images, s.correct, s.accuracy), (4, 3, 0.75));
        assert_eq!(s.confusion, [[2, 1], [0, 1]]);
        assert_eq!(s.per_class[0].accuracy, Some(2.0 / 3.0));
        assert_eq!(s.misclassified.len(), 1);
        let m = &s.misclassified[0];
        assert_eq!(
            (m.image.as_str(), m.class.as_str(), m.predicted.as_str()),
            ("2.jpg", "cat", "dog")
        );
        assert!(m.probability > 0.5);
        assert_eq!(score(&head, std::iter::empty(), &classes), None);
    }
}
