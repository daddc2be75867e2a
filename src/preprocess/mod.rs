//! Preprocessing: decode an image file, find the face and its 5 landmarks, align it onto the template
//! the embedding model expects, and lay it out as the model's input tensor.
//!
//! - [`decode`]: JPEG/PNG through `image`, EXIF orientation honoured, grayscale, RGBA and 16-bit
//!   converted to 8-bit RGB.
//! - [`detect`]: the YuNet face detector (decoding of its 12 output tensors, NMS, face selection).
//! - [`resize`]: the detector input's triangle-filter resize (byte-identical to `image`'s, faster).
//! - [`align`]: 4-degree-of-freedom similarity fit of the 5 landmarks to a template, bilinear warp.
//! - [`tensor`]: colour order, pixel normalisation and NCHW/NHWC layout.

pub mod align;
pub mod crop;
pub mod detect;
pub mod resize;
pub mod tensor;

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use thiserror::Error;

/// The revision of this stage's code: part of the embedding cache's key, so embeddings made by an
/// earlier decode/detect/align/tensor code are never reused. Bump it whenever any of them changes its
/// output. 2: the OpenCV-exact fixed-point warp.
pub const REVISION: u32 = 2;

/// Images whose header claims more pixels than this are not decoded (`--max-image-pixels`).
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Why one image could not be decoded.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The header claims more pixels than the limit: never decoded (a decompression bomb or a
    /// poster-sized scan), counted as `too_large`.
    #[error("{0}")]
    TooLarge(String),
    /// Not a readable image, or truncated or corrupt data.
    #[error("{0}")]
    Corrupt(String),
}

/// Decodes image bytes with the default pixel limit.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    decode_limited(bytes, DEFAULT_MAX_PIXELS)
}

/// Whether JPEG data ends its last scan with an end-of-image marker: a file cut short has none
/// after its last start-of-scan (in entropy-coded data an 0xFF byte is always stuffed, so neither
/// marker can occur there by chance; an EXIF thumbnail's markers come before the main scans).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let marker = |m: u8| bytes.windows(2).rposition(|w| w == [0xFF, m]);
    match (marker(0xDA), marker(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

/// Decodes image bytes (JPEG or PNG) to 8-bit RGB, applying the EXIF orientation. The dimensions are
/// read from the header first: above `max_pixels` the image is refused before any pixel memory is
/// allocated, and the decoder's own allocation limit is set from the same bound. Truncated JPEG data
/// is an error, not a half-grey image.
pub fn decode_limited(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, DecodeError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Corrupt(format!("cannot read image: {e}")))?;
    let jpeg = reader.format() == Some(image::ImageFormat::Jpeg);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| DecodeError::Corrupt(format!("unsupported or corrupt image: {e}")))?;
    let (w, h) = decoder.dimensions();
    if w as u64 * h as u64 > max_pixels {
        return Err(DecodeError::TooLarge(format!(
            "the header says {w}x{h} = {:.1} megapixels, above the limit of {:.1} (--max-image-pixels); not decoded",
            (w as u64 * h as u64) as f64 / 1e6,
            max_pixels as f64 / 1e6
        )));
    }
    let mut limits = image::Limits::default();
    // Up to 16-bit RGBA (8 bytes a pixel) and the 8-bit RGB copy.
    limits.max_alloc = Some(max_pixels.saturating_mul(12).max(1 << 26));
    decoder
        .set_limits(limits)
        .map_err(|e| DecodeError::TooLarge(format!("image is beyond the decoder's limits: {e}")))?;
    if jpeg && !jpeg_is_complete(bytes) {
        return Err(DecodeError::Corrupt(
            "truncated JPEG: no end-of-image marker after its last scan".into(),
        ));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| DecodeError::Corrupt(format!("corrupt image data: {e}")))?;
    img.apply_orientation(orientation);
    if img.width() < 8 || img.height() < 8 {
        return Err(DecodeError::Corrupt(format!(
            "image is {}x{} pixels, too small to hold a face",
            img.width(),
            img.height()
        )));
    }
    Ok(img.to_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgba};

    fn encode_png(img: DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn grayscale_rgba_and_16_bit_become_rgb8() {
        let gray = ImageBuffer::from_fn(16, 12, |x, _| Luma([x as u8 * 10]));
        let rgb = decode(&encode_png(DynamicImage::ImageLuma8(gray))).unwrap();
        assert_eq!((rgb.width(), rgb.height()), (16, 12));
        assert_eq!(rgb.get_pixel(3, 0).0, [30, 30, 30]);

        let rgba = ImageBuffer::from_fn(10, 10, |_, _| Rgba([200u8, 100, 50, 7]));
        assert_eq!(
            decode(&encode_png(DynamicImage::ImageRgba8(rgba)))
                .unwrap()
                .get_pixel(0, 0)
                .0,
            [200, 100, 50]
        );

        let g16 = ImageBuffer::from_fn(10, 10, |_, _| Luma([0xFFFFu16]));
        assert_eq!(
            decode(&encode_png(DynamicImage::ImageLuma16(g16)))
                .unwrap()
                .get_pixel(5, 5)
                .0,
            [255, 255, 255]
        );
    }

    fn encode_jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = ImageBuffer::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        out
    }

    /// A JPEG whose SOF0 header claims `w`×`h` (the rest of the file unchanged).
    pub(crate) fn jpeg_bomb(w: u16, h: u16) -> Vec<u8> {
        let mut b = encode_jpeg(16, 16);
        let sof = b.windows(2).position(|x| x == [0xFF, 0xC0]).unwrap();
        b[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        b[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        b
    }

    #[test]
    fn bomb_headers_are_refused_before_decoding() {
        // 65000 × 65000 = 4225 MP claimed by a ~700-byte file: refused from the header alone (decoding
        // would allocate 12.7 GB).
        let bomb = jpeg_bomb(65000, 65000);
        assert!(bomb.len() < 2000);
        match decode(&bomb) {
            Err(DecodeError::TooLarge(m)) => assert!(m.contains("65000x65000"), "{m}"),
            other => panic!("{other:?}"),
        }
        // The limit is the flag's: a 16x16 image is refused at 100 pixels, kept at 256.
        let small = encode_jpeg(16, 16);
        assert!(matches!(
            decode_limited(&small, 100),
            Err(DecodeError::TooLarge(_))
        ));
        assert!(decode_limited(&small, 256).is_ok());
        // PNG: a 30000 × 30000 header (with a valid CRC) is refused the same way.
        let mut png = encode_png(DynamicImage::ImageLuma8(ImageBuffer::from_pixel(
            16,
            16,
            Luma([9]),
        )));
        png[16..20].copy_from_slice(&30000u32.to_be_bytes());
        png[20..24].copy_from_slice(&30000u32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(decode(&png), Err(DecodeError::TooLarge(_))));
    }

    /// CRC-32 (IEEE), for a hand-edited PNG chunk.
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn a_truncated_jpeg_is_a_decode_error() {
        let full = encode_jpeg(64, 48);
        assert!(decode(&full).is_ok());
        let cut = &full[..full.len() / 3];
        match decode(cut) {
            Err(DecodeError::Corrupt(m)) => {
                assert!(m.contains("truncated") || m.contains("corrupt"), "{m}")
            }
            other => panic!("a third of a JPEG decoded as {other:?}"),
        }
        // One byte short of its end-of-image marker is enough.
        assert!(decode(&full[..full.len() - 1]).is_err());
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
        jpeg.extend(std::iter::repeat_n(0x42u8, 100));
        assert!(decode(&jpeg).is_err());
        assert!(decode(b"not an image").is_err());
    }
}
