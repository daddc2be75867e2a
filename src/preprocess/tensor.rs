//! Model input tensors: colour order, pixel normalisation and layout, as a model spec prescribes.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Memory layout of the image tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
#[value(rename_all = "UPPERCASE")]
pub enum Layout {
    /// batch, channel, height, width
    Nchw,
    /// batch, height, width, channel
    Nhwc,
}

/// Channel order the model was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
#[value(rename_all = "UPPERCASE")]
pub enum ColorOrder {
    /// red, green, blue
    Rgb,
    /// blue, green, red
    Bgr,
}

/// How pixels become input values: `(x · pixel_scale − mean[c]) / std[c]`, `c` in model channel order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Factor applied to the 0..255 value first (1/255 for ImageNet-style, 1 for ±1 or raw).
    pub pixel_scale: f32,
    /// Per-channel mean, subtracted after scaling.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, divided by last.
    pub std: [f32; 3],
}

/// Writes `img` into `out` (length 3·h·w) in the given layout, colour order and normalisation.
pub fn write_tensor(
    img: &RgbImage,
    layout: Layout,
    color: ColorOrder,
    norm: &Normalization,
    out: &mut [f32],
) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    assert_eq!(out.len(), 3 * w * h, "tensor buffer size");
    let order: [usize; 3] = match color {
        ColorOrder::Rgb => [0, 1, 2],
        ColorOrder::Bgr => [2, 1, 0],
    };
    let raw = img.as_raw();
    for y in 0..h {
        for x in 0..w {
            let p = &raw[(y * w + x) * 3..(y * w + x) * 3 + 3];
            for (c, &src) in order.iter().enumerate() {
                let v = (p[src] as f32 * norm.pixel_scale - norm.mean[c]) / norm.std[c];
                let idx = match layout {
                    Layout::Nchw => c * h * w + y * w + x,
                    Layout::Nhwc => (y * w + x) * 3 + c,
                };
                out[idx] = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_nchw_rgb_and_raw_nhwc_bgr() {
        let img = RgbImage::from_fn(2, 1, |x, _| {
            if x == 0 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 128, 255])
            }
        });
        let imagenet = Normalization {
            pixel_scale: 1.0 / 255.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        };
        let mut t = vec![0.0; 6];
        write_tensor(&img, Layout::Nchw, ColorOrder::Rgb, &imagenet, &mut t);
        // R of pixel 0: (1 - 0.485)/0.229 = 2.2489; G of pixel 1: (128/255 - 0.456)/0.224 = 0.2052
        assert!(
            (t[0] - 2.2489).abs() < 1e-3 && (t[3] - 0.2052).abs() < 1e-3,
            "{t:?}"
        );
        let raw = Normalization {
            pixel_scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        write_tensor(&img, Layout::Nhwc, ColorOrder::Bgr, &raw, &mut t);
        assert_eq!(t, vec![0.0, 0.0, 255.0, 255.0, 128.0, 0.0]);
    }
}
