//! Images in, network input out: decoding with bounded memory ([`decode`]), TF-slim evaluation
//! preprocessing ([`preprocess`]), training views ([`augment`]) and the ImageNet class names
//! ([`labels`]).
//!
//! The pipeline is the one the shipped models were evaluated with: central crop of 87.5% of each
//! side, bilinear resize (antialiased when shrinking) to R x R, then value = pixel / 127.5 - 1 in
//! NCHW order (`MobileNet::forward` takes the [N, 3, R, R] batch).

pub mod augment;
pub mod decode;
pub mod labels;
pub mod preprocess;

pub use augment::Augmentation;
pub use decode::{ImageError, ImageErrorKind, MAX_ALLOC_BYTES, MAX_DIMENSION, decode_bytes, load_rgb};
pub use labels::{ClassLayout, ClassNames, LabelMatch, label_for, labels, match_label, wordnet_id};
pub use preprocess::{
    CROP_FRACTION, Crop, central_crop, eval_preprocess, load_pixels, pixels_to_chw, preprocess_pixels,
    resize, to_chw,
};
