//! Preprocessing: decode an image file, find the face and its 5 landmarks, align it onto the template
//! the embedding model expects, and lay it out as the model's input tensor.
//!
//! - [`decode`]: JPEG/PNG through `image`, EXIF orientation honoured, grayscale, RGBA and 16-bit
//!   converted to 8-bit RGB.
//! - [`detect`]: the YuNet face detector (decoding of its 12 output tensors, NMS, face selection).
//! - [`align`]: 4-degree-of-freedom similarity fit of the 5 landmarks to a template, bilinear warp.
//! - [`tensor`]: colour order, pixel normalisation and NCHW/NHWC layout.

pub mod align;
pub mod detect;
pub mod tensor;

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use thiserror::Error;

/// Why one image could not be decoded.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Decodes image bytes (JPEG or PNG) to 8-bit RGB, applying the EXIF orientation.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError(format!("cannot read image: {e}")))?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| DecodeError(format!("unsupported or corrupt image: {e}")))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| DecodeError(format!("corrupt image data: {e}")))?;
    img.apply_orientation(orientation);
    if img.width() < 8 || img.height() < 8 {
        return Err(DecodeError(format!(
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

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
        jpeg.extend(std::iter::repeat_n(0x42u8, 100));
        assert!(decode(&jpeg).is_err());
        assert!(decode(b"not an image").is_err());
    }
}
