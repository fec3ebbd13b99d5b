//! Decoding JPEG, PNG, BMP and WebP files into RGB8 with hard memory limits.
//!
//! A header is read before any pixel: dimensions over [`MAX_DIMENSION`] per side, or a decoded
//! size over [`MAX_ALLOC_BYTES`], are refused before allocation, so a tiny file claiming to be
//! 60000 x 60000 costs nothing. Grayscale, alpha (dropped, not composited: the networks were
//! trained on opaque photos), 16-bit and CMYK JPEG (converted by the decoder) all end as RGB8.
//! EXIF orientation is applied so phone photos are classified upright.
//!
//! A file that ends before its image does is refused as truncated, as Pillow refuses it. The PNG,
//! BMP and WebP decoders say so themselves (an unexpected end of file; a lossy WebP whose last
//! partition is cut reports a corrupt bitstream). `image` runs zune-jpeg in its lenient mode,
//! which paints whatever a cut JPEG lacks grey and reports success, so JPEG pixels are decoded
//! here with zune-jpeg directly, watching its reads (`Watched`) and its errors
//! (`jpeg_data_ran_out`) for the end of the data: first in strict mode; when that refuses the
//! file for another reason (say, stray bytes between two headers), in lenient mode, so quirky
//! but complete files still decode. A JPEG without its end-of-image marker counts as cut. (One
//! gap remains: in lenient mode zune-jpeg can stop at the end of the data without a read this
//! module sees, so a file that is both quirky and cut at an unlucky byte still decodes.)

use std::error::Error as _;
use std::io::{BufRead, Cursor, Seek};
use std::path::Path;

use image::{ColorType, DynamicImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use std::cell::Cell;

use zune_core::bytestream::{ZByteIoError, ZByteReaderTrait, ZCursor, ZSeekFrom};
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::errors::DecodeErrors;

use crate::text::{escape_controls, one_line, path_text};

/// Largest accepted width or height, in pixels.
pub const MAX_DIMENSION: u32 = 16_384;
/// Largest accepted decoder allocation (decoded image plus its RGB8 copy), in bytes.
pub const MAX_ALLOC_BYTES: u64 = 512 * 1024 * 1024;

/// Why an image could not be used: the file, as [`path_text`] writes it, and the reason. The
/// message is one line, "FILE: REASON", with control characters in the name escaped.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", escape_controls(.file))]
pub struct ImageError {
    pub file: String,
    pub kind: ImageErrorKind,
}

/// The reason part of an [`ImageError`]; every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum ImageErrorKind {
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    #[error("empty file")]
    EmptyFile,
    #[error("not a supported image (JPEG, PNG, BMP or WebP expected)")]
    UnknownFormat,
    #[error(
        "image of {width}x{height} pixels is too large (limits: {MAX_DIMENSION} pixels per side, {} MiB decoded)",
        MAX_ALLOC_BYTES >> 20
    )]
    TooLarge { width: u32, height: u32 },
    #[error("image has no pixels ({width}x{height})")]
    Empty { width: u32, height: u32 },
    /// The decoder needed bytes past the end of the file; `reason` is its own message.
    #[error("truncated image ({reason})")]
    Truncated { reason: String },
    #[error("cannot decode image: {reason}")]
    Decode { reason: String },
}

/// Reads and decodes the image at `path` into RGB8.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let file = path_text(path);
    let fail = |kind| ImageError {
        file: file.clone(),
        kind,
    };
    let reader = ImageReader::open(path)
        .map_err(|e| fail(ImageErrorKind::Io(e)))?
        .with_guessed_format()
        .map_err(|e| fail(ImageErrorKind::Io(e)))?;
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(fail(ImageErrorKind::EmptyFile));
    }
    if reader.format() == Some(ImageFormat::Jpeg) {
        // `image` reads a whole JPEG into memory before decoding it anyway.
        let bytes = std::fs::read(path).map_err(|e| fail(ImageErrorKind::Io(e)))?;
        return decode_in_memory(&bytes, ImageFormat::Jpeg, &file);
    }
    decode_reader(reader, None).map_err(fail)
}

/// Decodes an in-memory image file; `name` is used in error messages.
pub fn decode_bytes(bytes: &[u8], name: &str) -> Result<RgbImage, ImageError> {
    let fail = |kind| ImageError {
        file: name.to_string(),
        kind,
    };
    if bytes.is_empty() {
        return Err(fail(ImageErrorKind::EmptyFile));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(ImageErrorKind::Io(e)))?;
    match reader.format() {
        Some(format) => decode_in_memory(bytes, format, name),
        None => Err(fail(ImageErrorKind::UnknownFormat)),
    }
}

fn decode_in_memory(bytes: &[u8], format: ImageFormat, file: &str) -> Result<RgbImage, ImageError> {
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    let jpeg = (format == ImageFormat::Jpeg).then_some(bytes);
    decode_reader(reader, jpeg).map_err(|kind| ImageError {
        file: file.to_string(),
        kind,
    })
}

/// Decodes `reader`; `jpeg` holds the file's bytes when it is a JPEG, for the strict decode.
fn decode_reader<R: BufRead + Seek>(
    mut reader: ImageReader<R>,
    jpeg: Option<&[u8]>,
) -> Result<RgbImage, ImageErrorKind> {
    if reader.format().is_none() {
        return Err(ImageErrorKind::UnknownFormat);
    }
    // Header first with only the allocation cap, so oversized dimensions are reported with
    // their values; then the full limits bind the decoder for the pixel data.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC_BYTES);
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(|e| match jpeg {
        // `image` reads JPEG headers leniently: a cut length field reads as zeros.
        Some(bytes) => jpeg_headers_truncated(bytes).unwrap_or_else(|| classify(e)),
        None => classify(e),
    })?;
    let (width, height) = decoder.dimensions();
    let rgb_bytes = u64::from(width) * u64::from(height) * 3;
    if width > MAX_DIMENSION
        || height > MAX_DIMENSION
        || decoder.total_bytes().saturating_add(rgb_bytes) > MAX_ALLOC_BYTES
    {
        return Err(ImageErrorKind::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(ImageErrorKind::Empty { width, height });
    }
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    decoder.set_limits(limits).map_err(classify)?;
    // A broken EXIF block should not cost the picture: fall back to "as stored".
    let orientation = decoder.orientation().ok();
    let mut image = match jpeg {
        Some(bytes) => decode_jpeg(bytes, decoder.color_type(), width, height)?,
        None => DynamicImage::from_decoder(decoder).map_err(classify)?,
    };
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// The JPEG's pixels, decoded by zune-jpeg as `image` would (same output colour type, `color`),
/// except that running out of data is an error: first in strict mode, then, if that refuses the
/// file for another reason, leniently.
fn decode_jpeg(
    bytes: &[u8],
    color: ColorType,
    width: u32,
    height: u32,
) -> Result<DynamicImage, ImageErrorKind> {
    // The output colour space `image` asks zune-jpeg for (CMYK and YCCK become RGB).
    let out = match color {
        ColorType::L8 => ColorSpace::Luma,
        ColorType::La8 => ColorSpace::LumaA,
        ColorType::Rgba8 => ColorSpace::RGBA,
        _ => ColorSpace::RGB,
    };
    let options = |strict| {
        DecoderOptions::default()
            .set_strict_mode(strict)
            .jpeg_set_out_colorspace(out)
            .set_max_width(MAX_DIMENSION as usize)
            .set_max_height(MAX_DIMENSION as usize)
    };
    let pass = match jpeg_pass(bytes, options(true), false) {
        JpegPass::Refused(_) => jpeg_pass(bytes, options(false), false),
        pass => pass,
    };
    let pixels = match pass {
        JpegPass::Pixels(pixels) => pixels,
        JpegPass::Truncated(reason) => return Err(ImageErrorKind::Truncated { reason }),
        JpegPass::Refused(e) => {
            return Err(ImageErrorKind::Decode {
                reason: one_line(&format!("Format error decoding Jpeg: {e}")),
            });
        }
    };
    let image = match out {
        ColorSpace::Luma => ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
        ColorSpace::LumaA => ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageLumaA8),
        ColorSpace::RGBA => ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageRgba8),
        _ => ImageBuffer::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
    };
    image.ok_or_else(|| ImageErrorKind::Decode {
        reason: format!("the decoded pixels do not fill the {width}x{height} image the header declares"),
    })
}

/// `Some(Truncated)` when zune-jpeg, reading the headers in strict mode, runs out of data.
fn jpeg_headers_truncated(bytes: &[u8]) -> Option<ImageErrorKind> {
    match jpeg_pass(bytes, DecoderOptions::default().set_strict_mode(true), true) {
        JpegPass::Truncated(reason) => Some(ImageErrorKind::Truncated { reason }),
        _ => None,
    }
}

/// What one zune-jpeg pass made of a file.
enum JpegPass {
    /// The decoded pixels (none when only the headers were read).
    Pixels(Vec<u8>),
    /// The decoder ran out of data: its words.
    Truncated(String),
    /// The decoder refused the file for another reason.
    Refused(DecodeErrors),
}

/// Runs zune-jpeg over `bytes` with `options`: the headers only, or the whole image.
fn jpeg_pass(bytes: &[u8], options: DecoderOptions, headers_only: bool) -> JpegPass {
    let overran = Cell::new(false);
    let source = Watched {
        inner: ZCursor::new(bytes),
        overran: &overran,
    };
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(source, options);
    let result = if headers_only {
        decoder.decode_headers().map(|()| Vec::new())
    } else {
        decoder.decode()
    };
    match result {
        Err(e) if overran.get() || jpeg_data_ran_out(&e) => JpegPass::Truncated(one_line(&e.to_string())),
        Err(e) => JpegPass::Refused(e),
        Ok(_) if overran.get() => JpegPass::Truncated("the decoder read past the end of the data".into()),
        Ok(pixels) => JpegPass::Pixels(pixels),
    }
}

/// The JPEG's bytes as zune-jpeg reads them, noting whether the decoder asked for a byte past
/// the end through one of the reads that answer zeros there instead of failing: the bit reader
/// takes bytes one at a time near the end of the data and, finding none, shifts in zeros and
/// carries on (in strict mode it checks for that only before each row of blocks, so a file cut
/// inside the last row would decode "successfully" from zeros), and some segment lengths are
/// read as zero when cut.
struct Watched<'a> {
    inner: ZCursor<&'a [u8]>,
    overran: &'a Cell<bool>,
}

impl ZByteReaderTrait for Watched<'_> {
    fn read_byte_no_error(&mut self) -> u8 {
        if self.inner.is_eof().unwrap_or(true) {
            self.overran.set(true);
        }
        self.inner.read_byte_no_error()
    }
    fn read_exact_bytes(&mut self, buf: &mut [u8]) -> Result<(), ZByteIoError> {
        self.inner.read_exact_bytes(buf)
    }
    fn read_bytes(&mut self, buf: &mut [u8]) -> Result<usize, ZByteIoError> {
        // zune-jpeg reads segment lengths this way, as zero when the bytes are missing.
        let read = self.inner.read_bytes(buf)?;
        if read < buf.len() {
            self.overran.set(true);
        }
        Ok(read)
    }
    fn peek_bytes(&mut self, buf: &mut [u8]) -> Result<usize, ZByteIoError> {
        self.inner.peek_bytes(buf)
    }
    fn peek_exact_bytes(&mut self, buf: &mut [u8]) -> Result<(), ZByteIoError> {
        self.inner.peek_exact_bytes(buf)
    }
    fn z_seek(&mut self, from: ZSeekFrom) -> Result<u64, ZByteIoError> {
        self.inner.z_seek(from)
    }
    fn is_eof(&mut self) -> Result<bool, ZByteIoError> {
        self.inner.is_eof()
    }
    fn z_position(&mut self) -> Result<u64, ZByteIoError> {
        self.inner.z_position()
    }
    fn read_remaining(&mut self, sink: &mut Vec<u8>) -> Result<usize, ZByteIoError> {
        self.inner.read_remaining(sink)
    }
}

/// Whether a strict-mode zune-jpeg (0.5) error says the data ended before the image did:
/// - `ExhaustedData`: the bit reader found no byte left (bitstream.rs; `get_marker` in
///   mcu_prog.rs when the file ends before the next marker);
/// - `NotEnoughBytes`: a header, table or marker is cut;
/// - "Premature end of buffer": a baseline scan reached the end of the data before its last row
///   of blocks (mcu.rs, `overread_by`);
/// - "... more than bits left ...": a Huffman code needs more bits than the stream holds. Past
///   a marker the bit reader pads with zeros, so only a stream that reached the end of the data
///   is short of bits (bitstream.rs).
///
/// The last two are messages, not variants: the unit tests cut JPEGs (baseline, progressive,
/// restart intervals, grayscale, CMYK) at every length and expect each cut to be recognised, so
/// a zune-jpeg that words them differently fails there.
fn jpeg_data_ran_out(error: &DecodeErrors) -> bool {
    match error {
        DecodeErrors::ExhaustedData | DecodeErrors::IoErrors(ZByteIoError::NotEnoughBytes(..)) => true,
        DecodeErrors::FormatStatic(message) => *message == "Premature end of buffer",
        DecodeErrors::Format(message) => message.contains("more than bits left"),
        _ => false,
    }
}

/// The decoder's own words when `error` means the file ended early: an I/O "unexpected end of
/// file" (PNG, BMP, WebP headers) or a JPEG that ran out of data.
fn truncation_reason(error: &image::ImageError) -> Option<String> {
    if let image::ImageError::IoError(e) = error {
        return (e.kind() == std::io::ErrorKind::UnexpectedEof).then(|| one_line(&e.to_string()));
    }
    let mut cause = error.source();
    while let Some(e) = cause {
        if let Some(jpeg) = e.downcast_ref::<DecodeErrors>()
            && jpeg_data_ran_out(jpeg)
        {
            return Some(one_line(&jpeg.to_string()));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::UnexpectedEof
        {
            return Some(one_line(&io.to_string()));
        }
        cause = e.source();
    }
    None
}

fn classify(error: image::ImageError) -> ImageErrorKind {
    if let Some(reason) = truncation_reason(&error) {
        return ImageErrorKind::Truncated { reason };
    }
    match error {
        image::ImageError::Limits(_) => ImageErrorKind::Decode {
            reason: format!(
                "exceeds the decoder limits ({MAX_DIMENSION} pixels per side, {} MiB)",
                MAX_ALLOC_BYTES >> 20
            ),
        },
        image::ImageError::Unsupported(e) => ImageErrorKind::Decode {
            reason: one_line(&format!("unsupported: {e}")),
        },
        image::ImageError::IoError(source) => ImageErrorKind::Io(source),
        other => ImageErrorKind::Decode {
            reason: one_line(&other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, LumaA, Rgb, Rgba};

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
    fn garbage_and_unreadable_files_are_clean_errors() {
        let err = decode_bytes(b"hello, world", "notes.txt")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "notes.txt: not a supported image (JPEG, PNG, BMP or WebP expected)"
        );
        let err = decode_bytes(&bmp_header(4, 4), "short.bmp").unwrap_err();
        assert!(matches!(err.kind, ImageErrorKind::Truncated { .. }), "{err}");
        let err = load_rgb(Path::new("/nonexistent/x.jpg")).unwrap_err().to_string();
        assert!(err.starts_with("/nonexistent/x.jpg: cannot read"), "{err}");
        assert_eq!(
            decode_bytes(b"", "zero.jpg").unwrap_err().to_string(),
            "zero.jpg: empty file"
        );
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.jpg");
        std::fs::write(&zero, b"").unwrap();
        let err = load_rgb(&zero).unwrap_err();
        assert!(matches!(err.kind, ImageErrorKind::EmptyFile), "{err}");
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap()
    }

    /// Decodes every prefix of `bytes` from `from` up to (not including) `complete`, expecting
    /// each to be refused as truncated, and the whole file to decode.
    fn assert_every_cut_is_truncated(name: &str, bytes: &[u8], from: usize, complete: usize) {
        decode_bytes(bytes, name).unwrap_or_else(|e| panic!("{e}"));
        for cut in from..complete {
            match decode_bytes(&bytes[..cut], name) {
                Err(ImageError {
                    kind: ImageErrorKind::Truncated { reason },
                    ..
                }) => assert!(
                    !reason.contains('\n') && !reason.is_empty(),
                    "{name}[..{cut}]: {reason:?}"
                ),
                Err(e) => panic!("{name} cut to {cut} of {} bytes: {e}", bytes.len()),
                Ok(_) => panic!("{name} cut to {cut} of {} bytes decoded", bytes.len()),
            }
        }
    }

    #[test]
    fn every_cut_jpeg_is_truncated() {
        let baseline = encode(DynamicImage::ImageRgb8(gradient()), ImageFormat::Jpeg);
        let cases = [
            ("baseline.jpg", baseline),
            ("cat_progressive.jpg", fixture("jpeg/cat_progressive.jpg")),
            ("cat_restart.jpg", fixture("jpeg/cat_restart.jpg")),
            ("cat_gray.jpg", fixture("odd/cat_gray.jpg")),
            ("cat_cmyk.jpg", fixture("odd/cat_cmyk.jpg")),
        ];
        for (name, bytes) in cases {
            // From the first length field on (shorter prefixes are not recognised as JPEG at
            // all) to the end-of-image marker: every cut, in a header, a table, the first or the
            // last row of blocks, or between two scans.
            assert_every_cut_is_truncated(name, &bytes, 4, bytes.len());
        }
    }

    #[test]
    fn strict_jpeg_pixels_are_the_lenient_decoders() {
        for name in [
            "jpeg/cat_progressive.jpg",
            "jpeg/cat_restart.jpg",
            "odd/cat_gray.jpg",
            "odd/cat_cmyk.jpg",
            "photos/grace_hopper.jpg",
        ] {
            let bytes = fixture(name);
            let lenient = image::load_from_memory(&bytes).unwrap().to_rgb8();
            assert_eq!(decode_bytes(&bytes, name).unwrap(), lenient, "{name}");
        }
    }

    #[test]
    fn quirky_but_complete_jpegs_still_decode() {
        // Stray bytes between two headers: zune-jpeg's strict mode refuses them, libjpeg warns.
        let bytes = fixture("odd/cat_gray.jpg");
        let app0_end = 2 + 2 + usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
        let mut quirky = bytes[..app0_end].to_vec();
        quirky.extend_from_slice(&[0; 5]);
        quirky.extend_from_slice(&bytes[app0_end..]);
        assert!(
            zune_jpeg::JpegDecoder::new_with_options(
                ZCursor::new(quirky.as_slice()),
                DecoderOptions::default().set_strict_mode(true)
            )
            .decode()
            .is_err(),
            "the strict decoder must refuse this file for the test to mean anything"
        );
        assert_eq!(
            decode_bytes(&quirky, "quirky.jpg").unwrap(),
            decode_bytes(&bytes, "plain.jpg").unwrap()
        );
        // Cut, the lenient decode that runs for such a file still sees the end of the data.
        for cut in [quirky.len() / 2, quirky.len() - 2] {
            let err = decode_bytes(&quirky[..cut], "quirky.jpg").unwrap_err();
            assert!(
                matches!(err.kind, ImageErrorKind::Truncated { .. }),
                "{cut}: {err}"
            );
        }
    }

    #[test]
    fn cut_png_bmp_and_webp_are_refused() {
        let png = encode(DynamicImage::ImageRgb8(gradient()), ImageFormat::Png);
        // The last 8 bytes are IEND's type and checksum, which the PNG decoder does not read.
        assert_every_cut_is_truncated("cut.png", &png, 8, png.len() - 8);
        let bmp = encode(DynamicImage::ImageRgb8(gradient()), ImageFormat::Bmp);
        assert_every_cut_is_truncated("cut.bmp", &bmp, 2, bmp.len());
        for (name, webp) in [
            (
                "lossless.webp",
                encode(DynamicImage::ImageRgb8(gradient()), ImageFormat::WebP),
            ),
            ("cat_rgb.webp", fixture("odd/cat_rgb.webp")),
        ] {
            // Past the headers the WebP decoder reports a cut bitstream as corrupt.
            for cut in 12..webp.len() - 2 {
                let err = decode_bytes(&webp[..cut], name).unwrap_err();
                assert!(
                    matches!(
                        err.kind,
                        ImageErrorKind::Truncated { .. } | ImageErrorKind::Decode { .. }
                    ),
                    "{name}[..{cut}]: {err}"
                );
            }
        }
    }

    #[test]
    fn messages_are_one_line_and_name_the_file_once() {
        let err = decode_bytes(&fixture("photos/grace_hopper.jpg")[..700], "cut.jpg")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cut.jpg: truncated image ("), "{err}");
        assert_eq!(err.matches("cut.jpg").count(), 1, "{err}");
        let err = decode_bytes(&fixture("photos/grace_hopper.jpg")[..100], "\u{1b}[31mred.jpg")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("\\x1b[31mred.jpg: truncated image (I/O errors Not enough bytes"),
            "{err}"
        );
        assert!(!err.contains('\n') && !err.contains('\u{1b}'), "{err:?}");
    }
}
