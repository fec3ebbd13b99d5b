//! Training-time views of an image (augmentation): a random crop and a horizontal flip, then
//! the same resize and scaling as evaluation ([`super::preprocess`]).
//!
//! Evaluation keeps the central 87.5% of each side ([`super::CROP_FRACTION`]); a training view
//! keeps a fraction drawn from [`MIN_CROP`, 1] of each side, anywhere in the image, mirrored
//! half of the time (the flips and crop jitter of TF's retrain.py `--flip_left_right` and
//! `--random_crop`). The randomness comes from the caller as uniforms in [0, 1), so a view is a
//! pure function of the image and four numbers: the caller decides seeding and order.

use image::RgbImage;
use image::imageops;

use super::preprocess::{resize, to_chw};

/// The smallest fraction of each side a training view keeps.
pub const MIN_CROP: f64 = 0.65;

/// One training view of an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmentation {
    /// Mirror left to right.
    pub flip: bool,
    /// Fraction of each side kept, in [`MIN_CROP`, 1].
    pub crop: f64,
    /// Where the crop sits in the room left beside it: 0 at the left (top), 1 at the right
    /// (bottom).
    pub x: f64,
    pub y: f64,
}

impl Augmentation {
    /// The view that four uniforms in [0, 1) pick: flip when the first is below 0.5, the crop
    /// fraction, then the crop's position across and down.
    pub fn from_uniforms(u: [f64; 4]) -> Augmentation {
        let unit = |v: f64| v.clamp(0.0, 1.0);
        Augmentation {
            flip: u[0] < 0.5,
            crop: MIN_CROP + (1.0 - MIN_CROP) * unit(u[1]),
            x: unit(u[2]),
            y: unit(u[3]),
        }
    }

    /// (offset, length) of the crop along a side of `size` pixels at position `at`.
    fn span(&self, size: u32, at: f64) -> (u32, u32) {
        let length = ((f64::from(size) * self.crop).round() as u32).clamp(1, size.max(1));
        let room = size.saturating_sub(length);
        ((f64::from(room) * at).round() as u32, length)
    }

    /// The view of `image` as network input `[3, R, R]` at `resolution`.
    pub fn apply(&self, image: &RgbImage, resolution: u32) -> Vec<f32> {
        let (x, w) = self.span(image.width(), self.x);
        let (y, h) = self.span(image.height(), self.y);
        let mut cropped = imageops::crop_imm(image, x, y, w, h).to_image();
        if self.flip {
            imageops::flip_horizontal_in_place(&mut cropped);
        }
        to_chw(&resize(&cropped, resolution))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A 4x2 image whose left half is black and right half white.
    fn halves() -> RgbImage {
        RgbImage::from_fn(4, 2, |x, _| {
            if x < 2 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        })
    }

    #[test]
    fn uniforms_map_onto_the_ranges() {
        let a = Augmentation::from_uniforms([0.2, 0.0, 0.0, 1.0]);
        assert!(a.flip);
        assert_eq!((a.crop, a.x, a.y), (MIN_CROP, 0.0, 1.0));
        let b = Augmentation::from_uniforms([0.7, 1.0, 0.5, 0.5]);
        assert!(!b.flip);
        assert_eq!(b.crop, 1.0);
    }

    #[test]
    fn a_flip_mirrors_and_a_full_crop_keeps_everything() {
        let plain = Augmentation {
            flip: false,
            crop: 1.0,
            x: 0.0,
            y: 0.0,
        };
        let input = plain.apply(&halves(), 4);
        assert_eq!(input.len(), 3 * 16);
        assert_eq!((input[0], input[3]), (-1.0, 1.0), "black left, white right");
        let mirrored = Augmentation { flip: true, ..plain }.apply(&halves(), 4);
        assert_eq!((mirrored[0], mirrored[3]), (1.0, -1.0));
    }

    #[test]
    fn the_crop_moves_with_its_position() {
        let left = Augmentation {
            flip: false,
            crop: 0.5,
            x: 0.0,
            y: 0.0,
        };
        assert!(
            left.apply(&halves(), 2).iter().all(|&v| v == -1.0),
            "the black half"
        );
        let right = Augmentation { x: 1.0, ..left };
        assert!(
            right.apply(&halves(), 2).iter().all(|&v| v == 1.0),
            "the white half"
        );
        assert_eq!(left.span(1, 0.0), (0, 1), "at least one pixel");
    }
}
