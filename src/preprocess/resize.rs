//! Triangle-filter (bilinear) resizing of 8-bit RGB images with exactly the arithmetic of
//! `image::imageops::resize(…, FilterType::Triangle)` in image 0.25 — every output byte equal — but
//! laid out so that the compiler vectorises it: the detector's input is an upscaled copy of every
//! image, and the generic version (a boxed kernel call per tap, four channels, bounds-checked pixel
//! access) cost as much as the detector network itself on BFW's 108 × 124 crops.
//!
//! The arithmetic it reproduces: a vertical pass into f32 (per output row, taps `left..right` of the
//! triangle kernel on source rows, weights normalised by their sum, `t += p · w` in tap order from
//! 0.0), then a horizontal pass the same way on columns, clamped to 0..255 and rounded half away from
//! zero. Same dimensions: a copy, as `image` does.

use image::RgbImage;

/// The source taps of one output coordinate: the first source index and the normalised weights.
struct Taps {
    left: usize,
    weights: Vec<f32>,
}

/// The taps for resizing a `src`-long axis to `dst`, as `image`'s `vertical_sample` /
/// `horizontal_sample` compute them for the triangle filter (support 1).
fn taps(src: u32, dst: u32) -> Vec<Taps> {
    let ratio = src as f32 / dst as f32;
    let sratio = if ratio < 1.0 { 1.0 } else { ratio };
    let support = sratio;
    (0..dst)
        .map(|out| {
            let input = (out as f32 + 0.5) * ratio;
            let left = ((input - support).floor() as i64).clamp(0, src as i64 - 1);
            let right = ((input + support).ceil() as i64).clamp(left + 1, src as i64);
            let input = input - 0.5;
            let mut weights: Vec<f32> = (left..right)
                .map(|i| {
                    let x = (i as f32 - input) / sratio;
                    if x.abs() < 1.0 {
                        1.0 - x.abs()
                    } else {
                        0.0
                    }
                })
                .collect();
            let sum = weights.iter().fold(0.0f32, |s, w| s + w);
            weights.iter_mut().for_each(|w| *w /= sum);
            Taps {
                left: left as usize,
                weights,
            }
        })
        .collect()
}

/// Resizes `img` to `width` × `height` and hands every output pixel to `put(x, y, [r, g, b])`, in
/// row order; the values are those of `image::imageops::resize` with the triangle filter.
pub fn triangle_each(
    img: &RgbImage,
    width: u32,
    height: u32,
    mut put: impl FnMut(usize, usize, [u8; 3]),
) {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 || width == 0 || height == 0 {
        return;
    }
    let src = img.as_raw();
    if (w, h) == (width, height) {
        for (i, p) in src.chunks_exact(3).enumerate() {
            put(i % w as usize, i / w as usize, [p[0], p[1], p[2]]);
        }
        return;
    }
    let row_len = 3 * w as usize;
    // Vertical pass: `height` rows of `w` pixels × 3 channels in f32.
    let mut mid = vec![0.0f32; height as usize * row_len];
    for (out, t) in mid.chunks_exact_mut(row_len).zip(taps(h, height)) {
        for (k, &wt) in t.weights.iter().enumerate() {
            let row = &src[(t.left + k) * row_len..(t.left + k + 1) * row_len];
            for (o, &p) in out.iter_mut().zip(row) {
                *o += p as f32 * wt;
            }
        }
    }
    // Horizontal pass, rounded to bytes. Every output column takes `k` taps (the widest column's
    // count; the others padded with weight 0 on their first pixel, which adds exactly 0.0 to a
    // non-negative sum), so the loop has a fixed trip count.
    let cols = taps(w, width);
    let k = cols.iter().map(|t| t.weights.len()).max().unwrap_or(1);
    let mut index = Vec::with_capacity(cols.len() * k);
    let mut weight = Vec::with_capacity(cols.len() * k);
    for t in &cols {
        for j in 0..k {
            let (i, wt) = t
                .weights
                .get(j)
                .map_or((t.left, 0.0), |&wt| (t.left + j, wt));
            index.push(3 * i);
            weight.push(wt);
        }
    }
    for (y, row) in mid.chunks_exact(row_len).enumerate() {
        for (x, (idx, wts)) in index
            .chunks_exact(k)
            .zip(weight.chunks_exact(k))
            .enumerate()
        {
            let mut acc = [0.0f32; 3];
            for (&i, &wt) in idx.iter().zip(wts) {
                let p = &row[i..i + 3];
                acc[0] += p[0] * wt;
                acc[1] += p[1] * wt;
                acc[2] += p[2] * wt;
            }
            put(x, y, acc.map(round_byte));
        }
    }
}

/// `v.clamp(0.0, 255.0).round() as u8` (half away from zero) without the `roundf` call that the
/// baseline x86-64 target makes of `f32::round`: for 0 ≤ v < 256 the fraction `v − trunc(v)` is exact.
#[inline]
fn round_byte(v: f32) -> u8 {
    let v = v.clamp(0.0, 255.0);
    let t = v as u32;
    (t + u32::from(v - t as f32 >= 0.5)) as u8
}

/// [`triangle_each`] into a new image.
pub fn triangle(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let mut out = RgbImage::new(width, height);
    triangle_each(img, width, height, |x, y, p| {
        out.put_pixel(x as u32, y as u32, image::Rgb(p))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::bootstrap::SplitMix64;

    fn noise(rng: &mut SplitMix64, w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |_, _| {
            let v = rng.next_u64();
            image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
        })
    }

    #[test]
    fn equals_image_crate_triangle_resize_byte_for_byte() {
        let mut rng = SplitMix64::new(7);
        // Up (BFW's 108×124 crop at 2.5×, odd ratios), down (a large LFW-like frame to 640), mixed,
        // same size, one-pixel edges.
        let cases = [
            (108, 124, 270, 310),
            (250, 250, 640, 640),
            (1280, 960, 640, 480),
            (97, 41, 13, 200),
            (64, 64, 64, 64),
            (1, 1, 5, 3),
            (7, 1, 1, 9),
            (333, 217, 332, 218),
        ];
        for (w, h, nw, nh) in cases {
            let img = noise(&mut rng, w, h);
            let want = image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle);
            let got = triangle(&img, nw, nh);
            assert_eq!(got.dimensions(), (nw, nh));
            let diff = want
                .as_raw()
                .iter()
                .zip(got.as_raw())
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(diff, 0, "{w}×{h} → {nw}×{nh}: {diff} bytes differ");
        }
    }

    #[test]
    fn round_byte_is_clamped_round_half_away_from_zero() {
        // Every 1,001st float from 0 to 260, and negatives.
        let mut bits = 0u32;
        while f32::from_bits(bits) < 260.0 {
            let v = f32::from_bits(bits);
            assert_eq!(round_byte(v), v.clamp(0.0, 255.0).round() as u8, "{v}");
            bits += 1001;
        }
        assert_eq!(round_byte(-0.7), 0);
        for v in [0.49999997f32, 0.5, 1.5, 2.5, 254.5, 254.49998, 255.0, 255.7] {
            assert_eq!(round_byte(v), v.clamp(0.0, 255.0).round() as u8, "{v}");
        }
    }

    #[test]
    fn a_flat_image_stays_flat_and_taps_sum_to_one() {
        let img = RgbImage::from_fn(10, 6, |_, _| image::Rgb([200, 17, 0]));
        let out = triangle(&img, 25, 15);
        assert!(out.pixels().all(|p| p.0 == [200, 17, 0]));
        for t in taps(108, 270).iter().chain(&taps(1280, 640)) {
            let s: f32 = t.weights.iter().sum();
            assert!((s - 1.0).abs() < 1e-6, "taps sum to {s}");
        }
        // Upscaling 2×: output pixel 1's centre (1.5 / 2 = 0.75 in source units, 0.25 past pixel 0's
        // centre) takes 3/4 of pixel 0 and 1/4 of pixel 1.
        let t = &taps(2, 4)[1];
        assert_eq!((t.left, t.weights.clone()), (0, vec![0.75, 0.25]));
    }
}
