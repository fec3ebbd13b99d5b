//! The 1001 ImageNet class names of the shipped models (index 0 is "background"; ImageNet class
//! i, 0-based, is output i + 1) and the WordNet ids of classes 1..=1000, both embedded.
//!
//! Folder names in an evaluation set are matched to classes by [`match_label`]: the whole label
//! ("Egyptian cat", "hotdog, hot dog, red hot"), one of its comma-separated synonyms when that
//! synonym names a single class ("hot dog"), or the WordNet id ("n02124075"), ignoring case and
//! treating '_' as a space.

use std::sync::OnceLock;

const LABELS_TXT: &str = include_str!("../../presets/labels/imagenet_labels.txt");
const WNIDS_TXT: &str = include_str!("../../presets/labels/imagenet_wnids.txt");

/// The 1001 class names in output order.
pub fn labels() -> &'static [&'static str] {
    static LABELS: OnceLock<Vec<&'static str>> = OnceLock::new();
    LABELS.get_or_init(|| LABELS_TXT.lines().map(str::trim_end).collect())
}

/// WordNet ids in output order: index 0 (background) has none.
fn wnids() -> &'static [&'static str] {
    static WNIDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WNIDS.get_or_init(|| {
        std::iter::once("")
            .chain(WNIDS_TXT.lines().map(str::trim))
            .collect()
    })
}

/// The WordNet id of output `index` (None for background or out of range).
pub fn wordnet_id(index: usize) -> Option<&'static str> {
    wnids().get(index).copied().filter(|w| !w.is_empty())
}

/// How a classifier's output indices map to classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ClassLayout {
    /// The 1001 outputs of the shipped (TF-slim) ImageNet models: output 0 is "background" and
    /// ImageNet class i (0-999, the ILSVRC-2012 order of torchvision and Keras) is output i + 1.
    #[serde(rename = "imagenet_1001")]
    Imagenet1001,
    /// The class names a weights file carries (its metadata `labels`, e.g. a `retrain` output),
    /// output i named by the i-th.
    #[serde(rename = "custom")]
    Custom,
    /// Any other number of outputs: classes without names, "class N".
    #[serde(rename = "other")]
    Other,
}

impl ClassLayout {
    /// The layout of a `classes`-way output.
    pub fn of(classes: usize) -> Self {
        if classes == labels().len() {
            ClassLayout::Imagenet1001
        } else {
            ClassLayout::Other
        }
    }

    /// The display name of output `index`: the ImageNet label, or "class N" (a custom layout's
    /// names are [`ClassNames`]'s).
    pub fn label(self, index: usize) -> String {
        match (self, labels().get(index)) {
            (ClassLayout::Imagenet1001, Some(label)) => (*label).to_string(),
            _ => format!("class {index}"),
        }
    }

    /// The 0-999 ImageNet class of output `index` (None for background or another layout).
    pub fn imagenet_index(self, index: usize) -> Option<usize> {
        match self {
            ClassLayout::Imagenet1001 => index.checked_sub(1).filter(|&i| i < labels().len() - 1),
            ClassLayout::Custom | ClassLayout::Other => None,
        }
    }
}

/// The names of a classifier's outputs: a weights file's own labels where it has them, else
/// those of its [`ClassLayout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassNames {
    /// The shipped ImageNet layout ([`ClassLayout::Imagenet1001`]).
    Imagenet1001,
    /// One name per output, from the weights file.
    Custom(Vec<String>),
    /// `classes` outputs without names ("class N").
    Unnamed { classes: usize },
}

impl ClassNames {
    /// The names of a `classes`-way classifier that carries `labels` (one per output) or none.
    pub fn new(classes: usize, labels: Option<&[String]>) -> ClassNames {
        match labels {
            Some(labels) if labels.len() == classes => ClassNames::Custom(labels.to_vec()),
            _ if ClassLayout::of(classes) == ClassLayout::Imagenet1001 => ClassNames::Imagenet1001,
            _ => ClassNames::Unnamed { classes },
        }
    }

    pub fn layout(&self) -> ClassLayout {
        match self {
            ClassNames::Imagenet1001 => ClassLayout::Imagenet1001,
            ClassNames::Custom(_) => ClassLayout::Custom,
            ClassNames::Unnamed { .. } => ClassLayout::Other,
        }
    }

    /// The display name of output `index`.
    pub fn label(&self, index: usize) -> String {
        match self {
            ClassNames::Custom(labels) => labels
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("class {index}")),
            other => other.layout().label(index),
        }
    }

    /// The 0-999 ImageNet class of output `index` (None outside the ImageNet layout).
    pub fn imagenet_index(&self, index: usize) -> Option<usize> {
        self.layout().imagenet_index(index)
    }
}

/// The display name of output `index` of a `classes`-way classifier: the ImageNet label for the
/// 1001-class models, "class N" otherwise.
pub fn label_for(index: usize, classes: usize) -> String {
    ClassLayout::of(classes).label(index)
}

/// How a folder name maps onto the label list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelMatch {
    /// One class: the whole label, a WordNet id, or a synonym only it has.
    Class(usize),
    /// A synonym several classes share ("crane": the bird and the machine).
    Ambiguous(Vec<usize>),
    /// No class has this name.
    Unknown,
}

fn normalise(s: &str) -> String {
    s.trim().replace('_', " ").to_lowercase()
}

/// Maps a class name or WordNet id to its output index.
pub fn match_label(name: &str) -> LabelMatch {
    let wanted = normalise(name);
    if wanted.is_empty() {
        return LabelMatch::Unknown;
    }
    if let Some(i) = wnids().iter().position(|w| !w.is_empty() && *w == wanted) {
        return LabelMatch::Class(i);
    }
    // Whole labels first ("cardigan" is the sweater, although the corgi's label lists it as a
    // synonym); two classes are both called "crane" and "maillot", so even these can clash.
    let whole = matching(|l| normalise(l) == wanted);
    if !whole.is_empty() {
        return decide(whole);
    }
    decide(matching(|l| l.split(',').any(|s| normalise(s) == wanted)))
}

fn matching(predicate: impl Fn(&str) -> bool) -> Vec<usize> {
    labels()
        .iter()
        .enumerate()
        .filter(|(_, l)| predicate(l))
        .map(|(i, _)| i)
        .collect()
}

fn decide(indices: Vec<usize>) -> LabelMatch {
    match indices.as_slice() {
        [] => LabelMatch::Unknown,
        [one] => LabelMatch::Class(*one),
        _ => LabelMatch::Ambiguous(indices),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_list_is_complete_and_aligned() {
        assert_eq!(labels().len(), 1001);
        assert_eq!(labels()[0], "background");
        assert_eq!(labels()[286], "Egyptian cat");
        assert_eq!(labels()[653], "military uniform");
        assert_eq!(wnids().len(), 1001);
        assert_eq!(wordnet_id(1), Some("n01440764"));
        assert_eq!(wordnet_id(286), Some("n02124075"));
        assert_eq!(wordnet_id(0), None);
        assert_eq!(wordnet_id(1001), None);
        assert_eq!(label_for(286, 1001), "Egyptian cat");
        assert_eq!(label_for(3, 10), "class 3");
    }

    #[test]
    fn the_1001_layout_puts_imagenet_class_i_at_output_i_plus_1() {
        let layout = ClassLayout::of(1001);
        assert_eq!(layout, ClassLayout::Imagenet1001);
        assert_eq!(layout.imagenet_index(0), None, "background");
        assert_eq!(layout.imagenet_index(1), Some(0));
        assert_eq!(layout.label(1), "tench, Tinca tinca");
        assert_eq!(layout.imagenet_index(286), Some(285));
        assert_eq!(layout.imagenet_index(1000), Some(999));
        assert_eq!(layout.imagenet_index(1001), None);
        let other = ClassLayout::of(10);
        assert_eq!(
            (other, other.imagenet_index(3), other.label(3).as_str()),
            (ClassLayout::Other, None, "class 3")
        );
        assert_eq!(
            ClassLayout::of(1000),
            ClassLayout::Other,
            "no background: not the shipped layout"
        );
        assert_eq!(serde_json::to_string(&layout).unwrap(), "\"imagenet_1001\"");
    }

    #[test]
    fn a_file_s_own_labels_name_its_outputs() {
        let labels = vec!["hotdog".to_string(), "not_hotdog".to_string()];
        let names = ClassNames::new(2, Some(&labels));
        assert_eq!(names.layout(), ClassLayout::Custom);
        assert_eq!(
            (names.label(1).as_str(), names.imagenet_index(1)),
            ("not_hotdog", None)
        );
        assert_eq!(serde_json::to_string(&names.layout()).unwrap(), "\"custom\"");
        assert_eq!(ClassNames::new(1001, None), ClassNames::Imagenet1001);
        assert_eq!(ClassNames::new(1001, None).label(286), "Egyptian cat");
        let many: Vec<String> = (0..1001).map(|i| format!("mine {i}")).collect();
        assert_eq!(
            ClassNames::new(1001, Some(&many)).label(286),
            "mine 286",
            "own labels win"
        );
        assert_eq!(ClassNames::new(3, None).label(2), "class 2");
        assert_eq!(
            ClassNames::new(3, Some(&labels)),
            ClassNames::Unnamed { classes: 3 }
        );
    }

    #[test]
    fn folder_names_match_labels_synonyms_and_wordnet_ids() {
        assert_eq!(match_label("Egyptian cat"), LabelMatch::Class(286));
        assert_eq!(match_label("egyptian_cat"), LabelMatch::Class(286));
        assert_eq!(match_label("n02124075"), LabelMatch::Class(286));
        assert_eq!(match_label("N02124075"), LabelMatch::Class(286));
        assert_eq!(match_label("hot dog"), LabelMatch::Class(935));
        assert_eq!(match_label("hotdog, hot dog, red hot"), LabelMatch::Class(935));
        assert_eq!(match_label("crane"), LabelMatch::Ambiguous(vec![135, 518]));
        assert_eq!(match_label("cardigan"), LabelMatch::Class(475));
        assert_eq!(match_label("Cardigan Welsh corgi"), LabelMatch::Class(265));
        assert_eq!(match_label("unicorn"), LabelMatch::Unknown);
        assert_eq!(match_label("  "), LabelMatch::Unknown);
    }
}
