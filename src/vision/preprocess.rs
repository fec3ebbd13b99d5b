//! TF-slim evaluation preprocessing: central crop, bilinear resize, scale to [-1, 1].
//!
//! The crop keeps round(size * 0.875) pixels of each side (Python's round, half to even) at
//! offset (size - crop) / 2: the rule the reference inputs were made with. Another fraction
//! ([`Crop`], `--crop`) follows the same rule; 1 keeps the whole image, and an image whose crop
//! is already the network's resolution is not resampled at all ([`preprocess_pixels`]), so it
//! reaches the network byte for byte. With it the pipeline
//! reproduces the reference pixels to within 2 levels; int(size * 0.875) moves the crop by one
//! pixel on sizes where the fraction is >= 0.5 (e.g. 451 -> 394 instead of 395) and is off by up
//! to 30 levels there. `tf.image.central_crop` itself keeps size - 2 * (size / 16). The resize is a triangle (bilinear) filter whose
//! support widens with the shrink factor, i.e. antialiased like Pillow's BILINEAR that produced
//! the reference inputs; it differs from Pillow by at most a few levels per pixel, which is why
//! networks are compared on the reference tensors and whole pipelines on labels.

use std::path::Path;

use image::RgbImage;
use image::imageops::{self, FilterType};

use super::decode::{ImageError, load_rgb};

/// Fraction of each side kept by the central crop: TF-slim's evaluation default.
pub const CROP_FRACTION: f64 = 0.875;

/// The fraction of each side a central crop keeps, in (0, 1]; 1 keeps the whole image.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
pub struct Crop(f64);

impl Crop {
    /// TF-slim's evaluation crop, [`CROP_FRACTION`].
    pub const TF_SLIM: Crop = Crop(CROP_FRACTION);

    /// `fraction` if it is in (0, 1].
    pub fn new(fraction: f64) -> Result<Crop, String> {
        if fraction > 0.0 && fraction <= 1.0 {
            Ok(Crop(fraction))
        } else {
            Err("the crop keeps a fraction of each side in (0, 1] (1 keeps the whole image)".into())
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// (offset, length) of the central crop along a side of `size` pixels (at least one pixel):
    /// round(size * fraction), half to even like the reference's Python round(); exact for
    /// 0.875 and 1, whose products are exact in f64.
    fn span(self, size: u32) -> (u32, u32) {
        let rounded = (f64::from(size) * self.0).round_ties_even();
        let length = (rounded as u32).clamp(1, size.max(1));
        (size.saturating_sub(length) / 2, length)
    }
}

impl Default for Crop {
    fn default() -> Crop {
        Crop::TF_SLIM
    }
}

impl std::str::FromStr for Crop {
    type Err = String;

    fn from_str(s: &str) -> Result<Crop, String> {
        let value: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number"))?;
        Crop::new(value)
    }
}

impl std::fmt::Display for Crop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The central `crop` of `image` on each side.
pub fn central_crop(image: &RgbImage, crop: Crop) -> RgbImage {
    let (x, w) = crop.span(image.width());
    let (y, h) = crop.span(image.height());
    imageops::crop_imm(image, x, y, w, h).to_image()
}

/// Bilinear resize to `resolution` x `resolution`, antialiased when shrinking.
pub fn resize(image: &RgbImage, resolution: u32) -> RgbImage {
    imageops::resize(image, resolution, resolution, FilterType::Triangle)
}

/// Appends the CHW f32 values pixel / 127.5 - 1 of `pixels` (one image, HWC RGB) to `out`: the
/// range the f32 models were trained on, no mean or std.
pub fn pixels_to_chw(pixels: &[u8], out: &mut Vec<f32>) {
    let plane = pixels.len() / 3;
    let start = out.len();
    out.resize(start + 3 * plane, 0.0);
    let out = &mut out[start..];
    for (i, pixel) in pixels.chunks_exact(3).enumerate() {
        for (c, &v) in pixel.iter().enumerate() {
            out[c * plane + i] = f32::from(v) / 127.5 - 1.0;
        }
    }
}

/// CHW f32 values pixel / 127.5 - 1 of `image` ([`pixels_to_chw`]).
pub fn to_chw(image: &RgbImage) -> Vec<f32> {
    let mut out = Vec::new();
    pixels_to_chw(image.as_raw(), &mut out);
    out
}

/// Crop and resize: the network's input pixels, `resolution` x `resolution` uint8 RGB, for one
/// decoded image. A crop already at the resolution is returned as it is, never resampled.
pub fn preprocess_pixels(image: &RgbImage, resolution: u32, crop: Crop) -> RgbImage {
    let cropped = central_crop(image, crop);
    if cropped.dimensions() == (resolution, resolution) {
        cropped
    } else {
        resize(&cropped, resolution)
    }
}

/// Crop, resize and scale with TF-slim's crop: the f32 network input [3, R, R] for one image.
pub fn eval_preprocess(image: &RgbImage, resolution: u32) -> Vec<f32> {
    to_chw(&preprocess_pixels(image, resolution, Crop::TF_SLIM))
}

/// Decodes the file at `path` and preprocesses its pixels ([`preprocess_pixels`]).
pub fn load_pixels(path: &Path, resolution: u32, crop: Crop) -> std::result::Result<RgbImage, ImageError> {
    Ok(preprocess_pixels(&load_rgb(path)?, resolution, crop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn crop_follows_tf_slim() {
        let crop_span = |size| Crop::TF_SLIM.span(size);
        assert_eq!(crop_span(224), (14, 196));
        assert_eq!(crop_span(600), (37, 525));
        assert_eq!(crop_span(451), (28, 395), "394.625 rounds up");
        assert_eq!(crop_span(300), (19, 262), "262.5 rounds to even");
        assert_eq!(crop_span(12), (1, 10), "10.5 rounds to even");
        assert_eq!(crop_span(4), (0, 4), "3.5 rounds to even");
        assert_eq!(crop_span(1), (0, 1));
        assert_eq!(crop_span(3), (0, 3), "2.625 rounds up");
        assert_eq!(crop_span(0), (0, 1));
        // The integer rule of 7/8 with ties to even, for every size up to 4096.
        for size in 0..4096u32 {
            let (q, r) = (size * 7 / 8, size * 7 % 8);
            let rounded = match r {
                5.. => q + 1,
                4 => q + q % 2,
                _ => q,
            };
            assert_eq!(crop_span(size).1, rounded.clamp(1, size.max(1)), "{size}");
        }
    }

    #[test]
    fn other_crops_and_no_crop() {
        let whole = Crop::new(1.0).unwrap();
        assert_eq!(whole.span(224), (0, 224));
        assert_eq!(whole.span(1), (0, 1));
        let half = Crop::new(0.5).unwrap();
        assert_eq!(half.span(100), (25, 50));
        assert_eq!(half.span(5), (1, 2), "2.5 rounds to even, centred at (5 - 2) / 2");
        assert_eq!(Crop::new(1e-9).unwrap().span(100), (49, 1), "at least one pixel");
        for bad in [0.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert!(Crop::new(bad).is_err(), "{bad}");
        }
        assert_eq!("1".parse::<Crop>().unwrap(), whole);
        assert!("x".parse::<Crop>().is_err());
        assert_eq!(Crop::default(), Crop::TF_SLIM);
    }

    #[test]
    fn an_image_at_the_resolution_is_not_resampled_without_a_crop() {
        let image = RgbImage::from_fn(7, 7, |x, y| {
            Rgb([(x * 37 + y) as u8, (y * 11) as u8, (x ^ y) as u8])
        });
        let whole = Crop::new(1.0).unwrap();
        assert_eq!(preprocess_pixels(&image, 7, whole), image);
        // Otherwise it is cropped and resized.
        assert_eq!(preprocess_pixels(&image, 7, Crop::TF_SLIM).dimensions(), (7, 7));
        assert_ne!(preprocess_pixels(&image, 7, Crop::TF_SLIM), image);
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
}
