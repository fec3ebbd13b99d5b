//! Transfer learning: a new classifier head for a pretrained MobileNet, trained on the user's
//! own labelled folder (issue 12; TensorFlow's retrain.py and "TensorFlow for Poets", TF Hub's
//! make_image_classifier). Only the last layer is retrained: the backbone stays as shipped, and
//! the result is the whole network with its `logits` replaced, which every command reads.
//!
//! - [`split`]: the labelled folder and its stable train / validation / test split;
//! - [`features`]: the backbone's feature vector of each image (`Runner::features` on the fast
//!   engine, batched and threaded), through [`cache`], the on-disk feature cache;
//! - [`head`]: softmax regression on those features with candle-nn (AdamW, label smoothing,
//!   early stopping), deterministic under its seed;
//! - [`metrics`]: accuracy with its Wilson interval, per class, the confusion matrix;
//! - [`export`]: the network file, backbone tensors copied as they are;
//! - [`pipeline`]: the steps in order, [`retrain`], which `retrain` calls once and a sweep over
//!   backbones would call once per backbone on one split;
//! - [`report`]: the typed result the `retrain` command prints.
//!
//! Nothing here parses flags or formats text: `app::retrain` wires it to the command line and
//! `report` formats its result.

pub mod cache;
pub mod export;
pub mod features;
pub mod head;
pub mod metrics;
pub mod pipeline;
pub mod report;
pub mod split;

pub use cache::{CacheKey, FeatureCache, Sha, default_root, sha256};
pub use export::{ExportError, ExportInfo, FeaturesInfo, features_file, network_file};
pub use features::{ExtractionStats, FeatureSource, FeatureVector, feature_vector};
pub use head::{Epoch, Head, HeadSettings, Samples, Training};
pub use metrics::{Interval, Score, wilson};
pub use pipeline::{Observer, Options, Quiet, Retrained, TransferError, retrain};
pub use report::RetrainReport;
pub use split::{Source, Split, SplitCounts, SplitDataset, SplitError, SplitRule, split_folder};
