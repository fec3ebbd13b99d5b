//! Decoding JPEG, PNG, BMP and WebP files into RGB8 with hard memory limits.
//!
//! A header is read before any pixel: dimensions over [`MAX_DIMENSION`] per side, or a decoded
//! size over [`MAX_ALLOC_BYTES`], are refused before allocation, so a tiny file claiming to be
//! 60000 x 60000 costs nothing. Grayscale, alpha (dropped, not composited: the networks were
//! trained on opaque photos), 16-bit and CMYK JPEG (converted by the decoder) all end as RGB8.
//! EXIF orientation is applied so phone photos are classified upright.

use std::io::{BufRead, Cursor, Seek};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

/// Largest accepted width or height, in pixels.
pub const MAX_DIMENSION: u32 = 16_384;
/// Largest accepted decoder allocation (decoded image plus its RGB8 copy), in bytes.
pub const MAX_ALLOC_BYTES: u64 = 512 * 1024 * 1024;

/// Why an image could not be used. Every message starts with the file name.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a supported image (JPEG, PNG, BMP or WebP expected)")]
    UnknownFormat { file: String },
    #[error(
        "{file}: image of {width}x{height} pixels is too large (limits: {MAX_DIMENSION} pixels per side, {} MiB decoded)",
        MAX_ALLOC_BYTES >> 20
    )]
    TooLarge { file: String, width: u32, height: u32 },
    #[error("{file}: image has no pixels ({width}x{height})")]
    Empty { file: String, width: u32, height: u32 },
    #[error("{file}: cannot decode image: {reason}")]
    Decode { file: String, reason: String },
}

/// Reads and decodes the image at `path` into RGB8.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let file = path.display().to_string();
    let io = |source| ImageError::Io {
        file: file.clone(),
        source,
    };
    let reader = ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?;
    decode_reader(reader, &file)
}

/// Decodes an in-memory image file; `name` is used in error messages.
pub fn decode_bytes(bytes: &[u8], name: &str) -> Result<RgbImage, ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| ImageError::Io {
            file: name.to_string(),
            source,
        })?;
    decode_reader(reader, name)
}

fn decode_reader<R: BufRead + Seek>(mut reader: ImageReader<R>, file: &str) -> Result<RgbImage, ImageError> {
    if reader.format().is_none() {
        return Err(ImageError::UnknownFormat {
            file: file.to_string(),
        });
    }
    // Header first with only the allocation cap, so oversized dimensions are reported with
    // their values; then the full limits bind the decoder for the pixel data.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC_BYTES);
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, file))?;
    let (width, height) = decoder.dimensions();
    let rgb_bytes = u64::from(width) * u64::from(height) * 3;
    if width > MAX_DIMENSION
        || height > MAX_DIMENSION
        || decoder.total_bytes().saturating_add(rgb_bytes) > MAX_ALLOC_BYTES
    {
        return Err(too_large(file, width, height));
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Empty {
            file: file.to_string(),
            width,
            height,
        });
    }
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    decoder.set_limits(limits).map_err(|e| classify(e, file))?;
    // A broken EXIF block should not cost the picture: fall back to "as stored".
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, file))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

fn too_large(file: &str, width: u32, height: u32) -> ImageError {
    ImageError::TooLarge {
        file: file.to_string(),
        width,
        height,
    }
}

fn classify(error: image::ImageError, file: &str) -> ImageError {
    match error {
        image::ImageError::Limits(_) => ImageError::Decode {
            file: file.to_string(),
            reason: format!(
                "exceeds the decoder limits ({MAX_DIMENSION} pixels per side, {} MiB)",
                MAX_ALLOC_BYTES >> 20
            ),
        },
        image::ImageError::Unsupported(e) => ImageError::Decode {
            file: file.to_string(),
            reason: format!("unsupported: {e}"),
        },
        image::ImageError::IoError(source) => ImageError::Io {
            file: file.to_string(),
            source,
        },
        other => ImageError::Decode {
            file: file.to_string(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    fn gradient() -> RgbImage {
        ImageBuffer::from_fn(20, 12, |x, y| Rgb([(x * 12) as u8, (y * 20) as u8, 77]))
    }

    #[test]
    fn every_supported_format_and_pixel_type_becomes_rgb8() {
        let rgb = gradient();
        for format in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::WebP] {
            let decoded = decode_bytes(&encode(DynamicImage::ImageRgb8(rgb.clone()), format), "x").unwrap();
            assert_eq!(decoded, rgb, "{format:?} is lossless");
        }
        let jpeg = decode_bytes(
            &encode(DynamicImage::ImageRgb8(rgb.clone()), ImageFormat::Jpeg),
            "x",
        )
        .unwrap();
        assert_eq!(jpeg.dimensions(), (20, 12));

        let gray = ImageBuffer::from_fn(5, 4, |x, _| Luma([(x * 50) as u8]));
        let decoded = decode_bytes(&encode(DynamicImage::ImageLuma8(gray), ImageFormat::Png), "g").unwrap();
        assert_eq!(decoded.get_pixel(2, 1), &Rgb([100, 100, 100]));

        let gray_alpha = ImageBuffer::from_fn(5, 4, |_, _| LumaA([9u8, 0]));
        let decoded = decode_bytes(
            &encode(DynamicImage::ImageLumaA8(gray_alpha), ImageFormat::Png),
            "ga",
        )
        .unwrap();
        assert_eq!(decoded.get_pixel(0, 0), &Rgb([9, 9, 9]), "alpha is dropped");

        let rgba = ImageBuffer::from_fn(5, 4, |_, _| Rgba([10u8, 20, 30, 128]));
        let decoded = decode_bytes(&encode(DynamicImage::ImageRgba8(rgba), ImageFormat::Png), "a").unwrap();
        assert_eq!(decoded.get_pixel(4, 3), &Rgb([10, 20, 30]));

        let deep: ImageBuffer<Rgb<u16>, Vec<u16>> =
            ImageBuffer::from_fn(5, 4, |_, _| Rgb([65535u16, 32896, 0]));
        let decoded = decode_bytes(&encode(DynamicImage::ImageRgb16(deep), ImageFormat::Png), "16").unwrap();
        assert_eq!(decoded.get_pixel(1, 1), &Rgb([255, 128, 0]));
    }

    /// A BMP header claiming `width` x `height` at 24 bits, with no pixel data after it.
    fn bmp_header(width: i32, height: i32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"BM");
        b.extend_from_slice(&1000u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&54u32.to_le_bytes());
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&width.to_le_bytes());
        b.extend_from_slice(&height.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&24u16.to_le_bytes());
        b.extend_from_slice(&[0u8; 24]);
        b
    }

    #[test]
    fn huge_headers_are_refused_before_allocating() {
        for (w, h) in [(60_000, 60_000), (16_385, 10), (16_000, 16_000)] {
            let err = decode_bytes(&bmp_header(w, h), "huge.bmp")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("huge.bmp: "), "{err}");
            assert!(err.contains("too large") || err.contains("limits"), "{err}");
        }
    }

    #[test]
    fn garbage_and_truncation_are_clean_errors() {
        let err = decode_bytes(b"hello, world", "notes.txt")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "notes.txt: not a supported image (JPEG, PNG, BMP or WebP expected)"
        );
        let png = encode(DynamicImage::ImageRgb8(gradient()), ImageFormat::Png);
        let err = decode_bytes(&png[..png.len() / 2], "cut.png")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cut.png: "), "{err}");
        let err = decode_bytes(&bmp_header(4, 4), "short.bmp")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("short.bmp: "), "{err}");
        let err = load_rgb(Path::new("/nonexistent/x.jpg")).unwrap_err().to_string();
        assert!(err.starts_with("/nonexistent/x.jpg: cannot read"), "{err}");
    }
}
