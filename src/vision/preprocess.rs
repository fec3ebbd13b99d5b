//! TF-slim evaluation preprocessing: central crop, bilinear resize, scale to [-1, 1].
//!
//! The crop keeps round(size * 0.875) pixels of each side (Python's round, half to even) at
//! offset (size - crop) / 2: the rule the reference inputs were made with. With it the pipeline
//! reproduces the reference pixels to within 2 levels; int(size * 0.875) moves the crop by one
//! pixel on sizes where the fraction is >= 0.5 (e.g. 451 -> 394 instead of 395) and is off by up
//! to 30 levels there. `tf.image.central_crop` itself keeps size - 2 * (size / 16). The resize is a triangle (bilinear) filter whose
//! support widens with the shrink factor, i.e. antialiased like Pillow's BILINEAR that produced
//! the reference inputs; it differs from Pillow by at most a few levels per pixel, which is why
//! networks are compared on the reference tensors and whole pipelines on labels.

use std::path::Path;

use candle_core::{Result, bail};
use image::RgbImage;
use image::imageops::{self, FilterType};

use super::decode::{ImageError, load_rgb};

/// Fraction of each side kept by the central crop.
pub const CROP_FRACTION: f64 = 0.875;

/// (offset, length) of the central crop along a side of `size` pixels (at least one pixel).
fn crop_span(size: u32) -> (u32, u32) {
    // size * 7/8 in integers, rounded half to even like the reference's Python round().
    debug_assert_eq!(CROP_FRACTION, 7.0 / 8.0);
    let scaled = u64::from(size) * 7;
    let (quotient, remainder) = (scaled / 8, scaled % 8);
    let rounded = match remainder {
        5.. => quotient + 1,
        4 => quotient + quotient % 2,
        _ => quotient,
    };
    let length = u32::try_from(rounded).unwrap_or(size).clamp(1, size.max(1));
    (size.saturating_sub(length) / 2, length)
}

/// The central 87.5% of `image` on each side.
pub fn central_crop(image: &RgbImage) -> RgbImage {
    let (x, w) = crop_span(image.width());
    let (y, h) = crop_span(image.height());
    imageops::crop_imm(image, x, y, w, h).to_image()
}

/// Bilinear resize to `resolution` x `resolution`, antialiased when shrinking.
pub fn resize(image: &RgbImage, resolution: u32) -> RgbImage {
    imageops::resize(image, resolution, resolution, FilterType::Triangle)
}

/// CHW f32 values pixel / 127.5 - 1 (the range the models were trained on; no mean/std).
pub fn to_chw(image: &RgbImage) -> Vec<f32> {
    let plane = image.width() as usize * image.height() as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for (c, &v) in pixel.0.iter().enumerate() {
            out[c * plane + i] = f32::from(v) / 127.5 - 1.0;
        }
    }
    out
}

/// Crop, resize and scale: the network input [3, R, R] for one decoded image.
pub fn eval_preprocess(image: &RgbImage, resolution: u32) -> Vec<f32> {
    to_chw(&resize(&central_crop(image), resolution))
}

/// Decodes the file at `path` and preprocesses it for a network at `resolution`.
pub fn load_input(path: &Path, resolution: u32) -> std::result::Result<Vec<f32>, ImageError> {
    Ok(eval_preprocess(&load_rgb(path)?, resolution))
}

/// Stacks preprocessed images into the flat [N, 3, R, R] batch `Runner::forward` takes.
pub fn batch_input(inputs: &[Vec<f32>], resolution: u32) -> Result<Vec<f32>> {
    let r = resolution as usize;
    let per_image = 3 * r * r;
    if let Some(bad) = inputs.iter().find(|v| v.len() != per_image) {
        bail!(
            "an input has {} values, expected 3x{r}x{r} = {per_image}",
            bad.len()
        );
    }
    Ok(inputs.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn crop_follows_tf_slim() {
        assert_eq!(crop_span(224), (14, 196));
        assert_eq!(crop_span(600), (37, 525));
        assert_eq!(crop_span(451), (28, 395), "394.625 rounds up");
        assert_eq!(crop_span(300), (19, 262), "262.5 rounds to even");
        assert_eq!(crop_span(12), (1, 10), "10.5 rounds to even");
        assert_eq!(crop_span(4), (0, 4), "3.5 rounds to even");
        assert_eq!(crop_span(1), (0, 1));
        assert_eq!(crop_span(3), (0, 3), "2.625 rounds up");
        assert_eq!(crop_span(0), (0, 1));
    }

    #[test]
    fn scaling_maps_0_and_255_to_the_ends() {
        let image = RgbImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                Rgb([0, 255, 0])
            } else {
                Rgb([255, 0, 51])
            }
        });
        let v = to_chw(&image);
        assert_eq!(v, vec![-1.0, 1.0, 1.0, -1.0, -1.0, 51.0 / 127.5 - 1.0]);
    }

    #[test]
    fn tiny_and_odd_images_still_produce_full_inputs() {
        for (w, h) in [(1, 1), (3, 700), (1000, 2)] {
            let image = RgbImage::from_pixel(w, h, Rgb([10, 20, 30]));
            let input = eval_preprocess(&image, 33);
            assert_eq!(input.len(), 3 * 33 * 33);
            assert!((input[0] - (10.0 / 127.5 - 1.0)).abs() < 1e-6);
        }
    }

    #[test]
    fn batches_check_their_inputs() {
        let ok = vec![vec![0f32; 3 * 4 * 4], vec![1f32; 3 * 4 * 4]];
        let batch = batch_input(&ok, 4).unwrap();
        assert_eq!((batch.len(), batch[48]), (2 * 48, 1.0));
        assert!(batch_input(&[vec![0f32; 5]], 4).is_err());
    }
}
