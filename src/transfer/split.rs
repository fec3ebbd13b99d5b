//! The labelled folder a head is retrained on, divided into training, validation and test
//! images.
//!
//! DIR holds one subfolder per class (any names; at least two classes, none empty). Unless a
//! folder is given for validation or test, each image goes to a split by a hash of its path
//! relative to DIR, as TensorFlow's retrain.py does: SHA-256 of `CLASS/FILE` (bytes of the
//! names, '/' between them) read as a number in [0, 100); below the validation percentage it
//! is a validation image, below validation + test a test image, else a training image. An
//! image's split depends on its own path only, so it is the same on every run and adding or
//! removing other files moves no image. As in retrain.py, whatever follows `_nohash_` in a file
//! name is left out of the hash, so `photo_nohash_1.jpg` and `photo_nohash_2.jpg` (variants of
//! one photo) always share a split.
//!
//! A folder given for validation or test (same layout, class folders named as in DIR, any
//! subset of them) takes that split whole; DIR then feeds only the other splits.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::dataset::{DatasetError, LabelledFolder, read_labelled_folder};
use crate::text::{escape_controls, path_text};

/// Which part of the data an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
    Test,
}

/// Where one of the held-out splits comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// This percentage of DIR's images, picked by the hash of their paths (0 for none).
    Percent(f64),
    /// Every image of this folder.
    Folder(PathBuf),
}

/// How the images are divided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitRule {
    pub validation: Source,
    pub test: Source,
}

impl SplitRule {
    /// retrain.py's and this tool's default: 10% validation and 10% test, by hash.
    pub const DEFAULT_PERCENT: f64 = 10.0;

    /// The percentages of DIR that go to validation and test (0 for a split from a folder).
    pub fn percents(&self) -> (f64, f64) {
        let of = |s: &Source| match s {
            Source::Percent(p) => *p,
            Source::Folder(_) => 0.0,
        };
        (of(&self.validation), of(&self.test))
    }

    /// Where an image of DIR whose hash is `hash` (in [0, 100)) goes.
    pub fn place(&self, hash: f64) -> Split {
        let (validation, test) = self.percents();
        if hash < validation {
            Split::Validation
        } else if hash < validation + test {
            Split::Test
        } else {
            Split::Train
        }
    }
}

/// One image: where it is, its class and its split.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub path: PathBuf,
    /// Index into [`SplitDataset::classes`].
    pub class: usize,
    pub split: Split,
}

/// Images of one class in each split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

impl SplitCounts {
    pub fn total(&self) -> usize {
        self.train + self.validation + self.test
    }

    fn add(&mut self, split: Split) {
        match split {
            Split::Train => self.train += 1,
            Split::Validation => self.validation += 1,
            Split::Test => self.test += 1,
        }
    }
}

/// The divided dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitDataset {
    pub dir: PathBuf,
    pub rule: SplitRule,
    /// The class names: DIR's folder names, in name order (the head's output order).
    pub classes: Vec<String>,
    /// Every image, DIR's first (class by class, in name order), then the given folders'.
    pub examples: Vec<Example>,
    /// Images directly inside DIR or a given folder, outside every class folder: not used.
    pub unlabelled: Vec<PathBuf>,
    /// Other entries left out: non-image files, folders inside class folders.
    pub skipped: Vec<PathBuf>,
}

impl SplitDataset {
    /// The images of one split, in order.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &Example> {
        self.examples.iter().filter(move |e| e.split == split)
    }

    /// Each class's images per split, in class order.
    pub fn counts(&self) -> Vec<SplitCounts> {
        let mut counts = vec![SplitCounts::default(); self.classes.len()];
        for e in &self.examples {
            counts[e.class].add(e.split);
        }
        counts
    }
}

/// Why a folder cannot be retrained on.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(
        "{}: no class folders (expected one subfolder of images per class){}",
        escape_controls(.dir),
        match .unlabelled { 0 => String::new(), n => format!("; the {n} images directly inside belong to no class") }
    )]
    NoClasses { dir: String, unlabelled: usize },
    #[error(
        "{}: only one class folder ('{}'); retraining needs at least 2 classes, one subfolder of images each",
        escape_controls(.dir),
        escape_controls(.class)
    )]
    OneClass { dir: String, class: String },
    #[error(
        "{}: class folder{} without images: {} (every class needs images: JPEG, PNG, BMP or WebP)",
        escape_controls(.dir),
        if .classes.len() == 1 { "" } else { "s" },
        escape_controls(&.classes.join(", "))
    )]
    EmptyClasses { dir: String, classes: Vec<String> },
    #[error(
        "{}: class folder '{}' is not a class of {} (its classes: {})",
        escape_controls(.folder),
        escape_controls(.class),
        escape_controls(.dir),
        escape_controls(&.classes.join(", "))
    )]
    UnknownClass {
        folder: String,
        class: String,
        dir: String,
        classes: Vec<String>,
    },
    #[error(
        "too few training images: {} (each class needs at least one; {}); add images to {} or hold out a smaller share",
        escape_controls(&.classes.join(", ")),
        .rule,
        if .classes.len() == 1 { "it" } else { "them" }
    )]
    NoTraining { classes: Vec<String>, rule: String },
    #[error(
        "split percentages must each be in [0, 100) and leave some for training: validation {validation}%, test {test}%"
    )]
    Percent { validation: f64, test: f64 },
}

/// Where in [0, 100) the hash of `relative` (an image's path under DIR, components joined by
/// '/') puts it; a file name's `_nohash_` suffix is left out.
pub fn hash_percent(relative: &[u8]) -> f64 {
    let (dir, name) = match relative.iter().rposition(|&b| b == b'/') {
        Some(i) => relative.split_at(i + 1),
        None => (&relative[..0], relative),
    };
    let name = match name.windows(8).position(|w| w == b"_nohash_") {
        Some(i) => &name[..i],
        None => name,
    };
    let digest = Sha256::new().chain_update(dir).chain_update(name).finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // The top 53 bits: exactly representable, uniform in [0, 1).
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64 * 100.0
}

/// The bytes of `path` relative to `dir`, components joined by '/'.
fn relative_bytes(dir: &Path, path: &Path) -> Vec<u8> {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    let mut bytes = Vec::new();
    for (i, part) in relative.components().enumerate() {
        if i > 0 {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(part.as_os_str().as_encoded_bytes());
    }
    bytes
}

/// Reads DIR (and any folder the rule names) and divides its images by `rule`.
pub fn split_folder(dir: &Path, rule: &SplitRule) -> Result<SplitDataset, SplitError> {
    let (validation, test) = rule.percents();
    let valid = |p: f64| (0.0..100.0).contains(&p);
    if !(valid(validation) && valid(test) && validation + test < 100.0) {
        return Err(SplitError::Percent { validation, test });
    }
    let dir_text = path_text(dir);
    let folder = read_labelled_folder(dir)?;
    match folder.classes.as_slice() {
        [] => {
            return Err(SplitError::NoClasses {
                dir: dir_text,
                unlabelled: folder.unlabelled.len(),
            });
        }
        [one] => {
            return Err(SplitError::OneClass {
                dir: dir_text,
                class: one.name.clone(),
            });
        }
        _ => {}
    }
    let empty: Vec<String> = folder
        .classes
        .iter()
        .filter(|c| c.images.is_empty())
        .map(|c| c.name.clone())
        .collect();
    if !empty.is_empty() {
        return Err(SplitError::EmptyClasses {
            dir: dir_text,
            classes: empty,
        });
    }
    let classes: Vec<String> = folder.classes.iter().map(|c| c.name.clone()).collect();
    let mut examples: Vec<Example> = folder
        .images()
        .map(|(class, path)| Example {
            path: path.to_path_buf(),
            class,
            split: rule.place(hash_percent(&relative_bytes(dir, path))),
        })
        .collect();
    let LabelledFolder {
        mut unlabelled,
        mut skipped,
        ..
    } = folder;
    for (source, split) in [(&rule.validation, Split::Validation), (&rule.test, Split::Test)] {
        if let Source::Folder(given) = source {
            let other = read_labelled_folder(given)?;
            for class in &other.classes {
                let Some(index) = classes.iter().position(|c| *c == class.name) else {
                    return Err(SplitError::UnknownClass {
                        folder: path_text(&class.path),
                        class: class.name.clone(),
                        dir: dir_text,
                        classes,
                    });
                };
                examples.extend(class.images.iter().map(|path| Example {
                    path: path.clone(),
                    class: index,
                    split,
                }));
            }
            unlabelled.extend(other.unlabelled);
            skipped.extend(other.skipped);
        }
    }
    let dataset = SplitDataset {
        dir: dir.to_path_buf(),
        rule: rule.clone(),
        classes,
        examples,
        unlabelled,
        skipped,
    };
    let untrained: Vec<String> = dataset
        .counts()
        .iter()
        .zip(&dataset.classes)
        .filter(|(c, _)| c.train == 0)
        .map(|(c, name)| {
            let n = c.total();
            format!(
                "'{name}' ({n} image{}, none for training)",
                if n == 1 { "" } else { "s" }
            )
        })
        .collect();
    if !untrained.is_empty() {
        return Err(SplitError::NoTraining {
            classes: untrained,
            rule: describe(rule),
        });
    }
    Ok(dataset)
}

/// The rule in words, for the error that says a class got no training image.
fn describe(rule: &SplitRule) -> String {
    let (validation, test) = rule.percents();
    format!("{validation}% of DIR held out for validation and {test}% for test, by a hash of each path")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    fn hashed(validation: f64, test: f64) -> SplitRule {
        SplitRule {
            validation: Source::Percent(validation),
            test: Source::Percent(test),
        }
    }

    #[test]
    fn the_hash_is_stable_uniform_and_ignores_nohash_suffixes() {
        // Pinned: a change here would move users' images between splits.
        let h = hash_percent(b"cat/1.jpg");
        assert!((0.0..100.0).contains(&h));
        assert_eq!(h, hash_percent(b"cat/1.jpg"));
        assert_ne!(
            h,
            hash_percent(b"dog/1.jpg"),
            "the class folder is part of the path"
        );
        assert_eq!(
            hash_percent(b"cat/photo_nohash_1.jpg"),
            hash_percent(b"cat/photo_nohash_2.png")
        );
        assert_eq!(
            hash_percent(b"cat/photo_nohash_1.jpg"),
            hash_percent(b"cat/photo")
        );
        let below_10 = (0..10_000)
            .filter(|i| hash_percent(format!("c/{i}.jpg").as_bytes()) < 10.0)
            .count();
        assert!((900..1100).contains(&below_10), "{below_10} of 10000 below 10%");
    }

    #[test]
    fn places_follow_the_percentages() {
        let rule = hashed(10.0, 20.0);
        assert_eq!(rule.place(0.0), Split::Validation);
        assert_eq!(rule.place(9.99), Split::Validation);
        assert_eq!(rule.place(10.0), Split::Test);
        assert_eq!(rule.place(29.99), Split::Test);
        assert_eq!(rule.place(30.0), Split::Train);
        let given = SplitRule {
            validation: Source::Percent(10.0),
            test: Source::Folder("t".into()),
        };
        assert_eq!(
            given.place(15.0),
            Split::Train,
            "a given test folder takes no share of DIR"
        );
    }

    #[test]
    fn adding_files_moves_no_other_file() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["a", "b"] {
            for i in 0..30 {
                touch(&dir.path().join(class).join(format!("{i}.png")));
            }
        }
        let rule = hashed(20.0, 20.0);
        let before = split_folder(dir.path(), &rule).unwrap();
        assert_eq!(
            before,
            split_folder(dir.path(), &rule).unwrap(),
            "stable across runs"
        );
        for i in 30..60 {
            touch(&dir.path().join("a").join(format!("{i}.png")));
        }
        let after = split_folder(dir.path(), &rule).unwrap();
        for e in &before.examples {
            let same = after.examples.iter().find(|a| a.path == e.path).unwrap();
            assert_eq!(same.split, e.split, "{}", e.path.display());
        }
        assert_eq!(after.examples.len(), 90);
        let counts = after.counts();
        assert_eq!(counts[0].total(), 60);
        assert!(
            counts
                .iter()
                .all(|c| c.train > 0 && c.validation > 0 && c.test > 0)
        );
    }

    #[test]
    fn given_folders_take_their_split_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (train, test) = (dir.path().join("train"), dir.path().join("test"));
        for class in ["a", "b"] {
            for i in 0..5 {
                touch(&train.join(class).join(format!("{i}.jpg")));
            }
        }
        touch(&test.join("b").join("x.jpg"));
        let rule = SplitRule {
            validation: Source::Percent(0.0),
            test: Source::Folder(test.clone()),
        };
        let data = split_folder(&train, &rule).unwrap();
        let counts = data.counts();
        assert_eq!(
            counts,
            [
                SplitCounts {
                    train: 5,
                    validation: 0,
                    test: 0
                },
                SplitCounts {
                    train: 5,
                    validation: 0,
                    test: 1
                }
            ]
        );
        touch(&test.join("c").join("y.jpg"));
        let err = split_folder(&train, &rule).unwrap_err().to_string();
        assert!(
            err.contains("class folder 'c' is not a class of") && err.ends_with("(its classes: a, b)"),
            "{err}"
        );
    }

    #[test]
    fn folders_that_cannot_be_trained_on_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let rule = hashed(10.0, 10.0);
        assert!(matches!(
            split_folder(root, &rule),
            Err(SplitError::NoClasses { .. })
        ));
        touch(&root.join("a/1.jpg"));
        let err = split_folder(root, &rule).unwrap_err().to_string();
        assert!(err.ends_with("only one class folder ('a'); retraining needs at least 2 classes, one subfolder of images each"), "{err}");
        std::fs::create_dir(root.join("b")).unwrap();
        let err = split_folder(root, &rule).unwrap_err().to_string();
        assert!(err.contains("class folder without images: b"), "{err}");
        touch(&root.join("b/1.jpg"));
        // Everything held out: no class keeps a training image.
        let err = split_folder(root, &hashed(60.0, 39.99)).unwrap_err().to_string();
        assert!(
            err.starts_with("too few training images: 'a' (1 image, none for training)"),
            "{err}"
        );
        let err = split_folder(root, &hashed(50.0, 50.0)).unwrap_err();
        assert!(matches!(err, SplitError::Percent { .. }), "{err}");
    }
}
