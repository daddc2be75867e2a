//! Five-point face alignment: a least-squares similarity transform (rotation, uniform scale,
//! translation; Umeyama's method without reflection, as InsightFace's `norm_crop` and skimage's
//! `SimilarityTransform`) from detected landmarks onto a template, then a bilinear warp with a zero
//! border that reproduces OpenCV's `cv2.warpAffine(img, M, (size, size), borderValue=0)` (INTER_LINEAR,
//! BORDER_CONSTANT) pixel for pixel: integer pixel coordinates are pixel centres, and the warp uses
//! OpenCV's fixed-point arithmetic (source positions quantised to 1/32 pixel, integer bilinear weights
//! summing to 2^15), which differs from exact bilinear interpolation by up to 5 grey levels on
//! sharp edges. `tests/align_opencv.rs` checks it against OpenCV 4.x on real faces.

use image::RgbImage;

/// The ArcFace 112×112 template, in YuNet landmark order: eye on the image left, eye on the image
/// right, nose tip, mouth corner on the image left, mouth corner on the image right.
pub const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A 2-D similarity transform `dst = [a -b; b a] · src + [tx, ty]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// scale·cos(θ)
    pub a: f64,
    /// scale·sin(θ)
    pub b: f64,
    /// x translation
    pub tx: f64,
    /// y translation
    pub ty: f64,
}

impl Similarity {
    /// The least-squares similarity mapping `src` points onto `dst` points.
    pub fn fit(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Similarity {
        let n = src.len().min(dst.len()) as f64;
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts
                .iter()
                .fold((0.0, 0.0), |(x, y), p| (x + p[0] as f64, y + p[1] as f64));
            (sx / n, sy / n)
        };
        let (mpx, mpy) = mean(src);
        let (mqx, mqy) = mean(dst);
        let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
        for (p, q) in src.iter().zip(dst) {
            let (px, py) = (p[0] as f64 - mpx, p[1] as f64 - mpy);
            let (qx, qy) = (q[0] as f64 - mqx, q[1] as f64 - mqy);
            num_a += px * qx + py * qy;
            num_b += px * qy - py * qx;
            den += px * px + py * py;
        }
        let (a, b) = if den > 0.0 {
            (num_a / den, num_b / den)
        } else {
            (1.0, 0.0)
        };
        Similarity {
            a,
            b,
            tx: mqx - (a * mpx - b * mpy),
            ty: mqy - (b * mpx + a * mpy),
        }
    }

    /// Applies the transform to a point.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        )
    }

    /// The inverse transform.
    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }
}

/// OpenCV's fixed-point constants (`imgproc.hpp`, `imgwarp.cpp`): source positions are kept to
/// 1/2^`INTER_BITS` = 1/32 pixel, the inverse map is stepped along a row in 1/2^`AB_BITS` = 1/1024
/// pixel, and the bilinear weights are integers summing to 2^`INTER_REMAP_COEF_BITS`.
const INTER_BITS: u32 = 5;
const INTER_TAB_SIZE: i64 = 1 << INTER_BITS;
const AB_BITS: u32 = 10;
const AB_SCALE: i64 = 1 << AB_BITS;
const INTER_REMAP_COEF_BITS: u32 = 15;

/// OpenCV's `saturate_cast<int>(double)` (`cvRound`, `_mm_cvtsd_si32`): round half to even. The warp
/// keeps positions in i64 where OpenCV has int (and short for the tap, its remap refusing images of
/// 32767 pixels a side or more): the results agree wherever OpenCV's do not overflow, and far-off
/// positions of degenerate transforms stay in the zero border instead of wrapping.
fn cv_round(v: f64) -> i64 {
    v.round_ties_even() as i64
}

/// The inverse of `m` as `cv::warpAffine` computes it (without `WARP_INVERSE_MAP`), operation for
/// operation, as the 2×3 matrix `[m0 m1 m2; m3 m4 m5]` mapping output pixels to source positions.
fn opencv_inverse(m: &Similarity) -> [f64; 6] {
    let [m0, m1, m2, m3, m4, m5] = [m.a, -m.b, m.tx, m.b, m.a, m.ty];
    let d = m0 * m4 - m1 * m3;
    let d = if d != 0.0 { 1.0 / d } else { 0.0 };
    let (a11, a22) = (m4 * d, m0 * d);
    let (m1, m3) = (m1 * -d, m3 * -d);
    let b1 = -a11 * m2 - m1 * m5;
    let b2 = -m3 * m2 - a22 * m5;
    [a11, m1, b1, m3, a22, b2]
}

/// OpenCV's integer bilinear weights (`BilinearTab_i` of `initInterTab2D`) for the fractional
/// position (`fx`, `fy`) in 1/32 pixel, in the order top-left, top-right, bottom-left, bottom-right:
/// `(32−fy)(32−fx)·32`, `(32−fy)·fx·32`, `fy(32−fx)·32`, `fy·fx·32` (the float weights times 2^15, exact),
/// except at (0, 0): there 2^15 saturates to the `short` 32767 and OpenCV's sum correction adds the
/// missing 1 to the bottom-right weight, `[32767, 0, 0, 1]` (which never changes an 8-bit result).
fn bilinear_weights(fx: i64, fy: i64) -> [i64; 4] {
    if fx == 0 && fy == 0 {
        return [32767, 0, 0, 1];
    }
    let n = INTER_TAB_SIZE;
    let s = (1 << INTER_REMAP_COEF_BITS) / (n * n);
    [
        (n - fy) * (n - fx) * s,
        (n - fy) * fx * s,
        fy * (n - fx) * s,
        fy * fx * s,
    ]
}

/// Warps `img` by `m` (source → output coordinates) into a `size`×`size` RGB crop, bilinear, zero border,
/// with OpenCV's fixed-point arithmetic (`cv::warpAffine` → `hal::warpAffine` → `WarpAffineInvoker` →
/// `warpAffineBlockline` → `remapBilinear`, OpenCV 4.x `modules/imgproc/src/imgwarp.cpp`):
///
/// - the inverse matrix `M` is computed in double as OpenCV does (`opencv_inverse`);
/// - per output column `x`: `adelta[x] = round(M0·x·1024)`, `bdelta[x] = round(M3·x·1024)`; per output
///   row `y`: `X0 = round((M1·y + M2)·1024) + 16`, `Y0 = round((M4·y + M5)·1024) + 16` (16 = 1024/32/2
///   rounds to the nearest 1/32 pixel);
/// - `X = (X0 + adelta[x]) >> 5`, `Y = (Y0 + bdelta[x]) >> 5` (arithmetic shifts, i.e. floor) are the
///   source position in 1/32 pixel: the top-left tap is (`X >> 5`, `Y >> 5`), the fraction (`X & 31`,
///   `Y & 31`);
/// - each channel is `(Σ tap·weight + 2^14) >> 15` over the four taps with `bilinear_weights`, taps
///   outside the image counting as 0 (`borderValue = 0`).
pub fn warp(img: &RgbImage, m: &Similarity, size: u32) -> RgbImage {
    let inv = opencv_inverse(m);
    let (w, h) = (img.width() as i64, img.height() as i64);
    let raw = img.as_raw();
    let ab = AB_SCALE as f64;
    let round_delta = AB_SCALE / INTER_TAB_SIZE / 2;
    let adelta: Vec<i64> = (0..size)
        .map(|x| cv_round(inv[0] * x as f64 * ab))
        .collect();
    let bdelta: Vec<i64> = (0..size)
        .map(|x| cv_round(inv[3] * x as f64 * ab))
        .collect();
    let mask = INTER_TAB_SIZE - 1;
    let half = 1i64 << (INTER_REMAP_COEF_BITS - 1);
    let mut out = RgbImage::new(size, size);
    for (v, row) in out.chunks_exact_mut(size as usize * 3).enumerate() {
        let x0 = cv_round((inv[1] * v as f64 + inv[2]) * ab) + round_delta;
        let y0 = cv_round((inv[4] * v as f64 + inv[5]) * ab) + round_delta;
        for (u, dst) in row.chunks_exact_mut(3).enumerate() {
            let x = (x0 + adelta[u]) >> (AB_BITS - INTER_BITS);
            let y = (y0 + bdelta[u]) >> (AB_BITS - INTER_BITS);
            let (sx, sy) = (x >> INTER_BITS, y >> INTER_BITS);
            if sx + 1 < 0 || sy + 1 < 0 || sx >= w || sy >= h {
                continue; // all four taps outside: the zero border
            }
            let weights = bilinear_weights(x & mask, y & mask);
            let taps = [(sx, sy), (sx + 1, sy), (sx, sy + 1), (sx + 1, sy + 1)];
            let mut acc = [half; 3];
            for ((tx, ty), wt) in taps.into_iter().zip(weights) {
                if wt == 0 || tx < 0 || ty < 0 || tx >= w || ty >= h {
                    continue;
                }
                let i = ((ty * w + tx) * 3) as usize;
                for (a, &p) in acc.iter_mut().zip(&raw[i..i + 3]) {
                    *a += p as i64 * wt;
                }
            }
            for (d, a) in dst.iter_mut().zip(acc) {
                *d = (a >> INTER_REMAP_COEF_BITS).clamp(0, 255) as u8;
            }
        }
    }
    out
}

/// The template scaled to a square crop of `size` pixels (the ArcFace template is defined for 112).
pub fn scaled_template(template: &[[f32; 2]; 5], size: u32) -> [[f32; 2]; 5] {
    let s = size as f32 / 112.0;
    template.map(|[x, y]| [x * s, y * s])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_a_known_similarity() {
        // dst = 2·R(30°)·src + (5, -3): a = 2cos30 = 1.7320508, b = 2sin30 = 1.0
        let truth = Similarity {
            a: 3f64.sqrt(),
            b: 1.0,
            tx: 5.0,
            ty: -3.0,
        };
        let src = [
            [10.0f32, 20.0],
            [30.0, 22.0],
            [20.0, 35.0],
            [12.0, 45.0],
            [28.0, 46.0],
        ];
        let dst = src.map(|[x, y]| {
            let (u, v) = truth.apply(x as f64, y as f64);
            [u as f32, v as f32]
        });
        let m = Similarity::fit(&src, &dst);
        assert!(
            (m.a - truth.a).abs() < 1e-5 && (m.b - 1.0).abs() < 1e-5,
            "{m:?}"
        );
        assert!(
            (m.tx - 5.0).abs() < 1e-3 && (m.ty + 3.0).abs() < 1e-3,
            "{m:?}"
        );
        let back = m.inverse().apply(m.apply(7.0, 9.0).0, m.apply(7.0, 9.0).1);
        assert!((back.0 - 7.0).abs() < 1e-9 && (back.1 - 9.0).abs() < 1e-9);
    }

    #[test]
    fn identity_warp_copies_pixels_and_zero_fills_outside() {
        let img = RgbImage::from_fn(4, 4, |x, y| image::Rgb([(x * 10) as u8, (y * 10) as u8, 7]));
        let id = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        let out = warp(&img, &id, 6);
        assert_eq!(out.get_pixel(3, 2).0, [30, 20, 7]);
        assert_eq!(out.get_pixel(5, 5).0, [0, 0, 0]);
        // A half-pixel shift averages neighbours: (10+20)/2 = 15 in red.
        let shift = Similarity {
            a: 1.0,
            b: 0.0,
            tx: -0.5,
            ty: 0.0,
        };
        assert_eq!(warp(&img, &shift, 4).get_pixel(1, 1).0[0], 15);
    }

    #[test]
    fn warp_uses_opencv_fixed_point_positions_and_weights() {
        // A 2×2 image, red 0 | 100 and green 100 | 0 across x, on both rows.
        let img = RgbImage::from_fn(2, 2, |x, _| {
            image::Rgb([(x * 100) as u8, (100 - x * 100) as u8, 0])
        });
        let shift = |tx: f64| Similarity {
            a: 1.0,
            b: 0.0,
            tx,
            ty: 0.0,
        };
        // tx = −0.3: output (0, 0) samples x = 0.3 (exact bilinear: red 30, green 70).
        // OpenCV: X0 = round(0.3·1024) + 16 = 307 + 16 = 323, adelta[0] = 0; X = 323 >> 5 = 10, so the
        // taps are x = 10 >> 5 = 0 and 1 at fx = 10/32 (not 0.3); row 0: Y0 = 0 + 16, Y = 0, fy = 0.
        // Weights: (32−0)(32−10)·32 = 22528 and (32−0)·10·32 = 10240 (sum 32768).
        // red = (0·22528 + 100·10240 + 16384) >> 15 = 1040384 >> 15 = 31 (31.75);
        // green = (100·22528 + 16384) >> 15 = 2269184 >> 15 = 69 (69.25).
        let out = warp(&img, &shift(-0.3), 3);
        assert_eq!(out.get_pixel(0, 0).0, [31, 69, 0]);
        // tx = +0.3: output (0, 0) samples x = −0.3 (exact: green 0.7·100 = 70, the tap at −1 being
        // border 0). OpenCV: X0 = round(−307.2) + 16 = −291, X = −291 >> 5 = −10 (floor), so the taps are
        // x = −10 >> 5 = −1 and 0 at fx = −10 & 31 = 22: weights (32−22)·32·32 = 10240 on the border tap
        // and 22·32·32 = 22528 on x = 0: green = (100·22528 + 16384) >> 15 = 69, red = 0.
        let out = warp(&img, &shift(0.3), 3);
        assert_eq!(out.get_pixel(0, 0).0, [0, 69, 0]);
        // Output (2, 0) samples x = 1.7: adelta[2] = round(2·1024) = 2048, X = (−291 + 2048) >> 5 = 1757 >> 5
        // = 54, taps x = 54 >> 5 = 1 and 2 (outside, 0) at fx = 54 & 31 = 22: red = (100·10240 + 16384)
        // >> 15 = 31 (exact: 30), green 0.
        assert_eq!(out.get_pixel(2, 0).0, [31, 0, 0]);
        // A position half-way between two 1/32 steps rounds up: x = 1/64 = 16/1024, X0 = 16 + 16 = 32,
        // X = 32 >> 5 = 1 (fx = 1/32), weights 32·31·32 = 31744 and 32·1·32 = 1024:
        // red = (100·1024 + 16384) >> 15 = 118784 >> 15 = 3 (exact bilinear: 1.5625 → 2).
        let out = warp(&img, &shift(-1.0 / 64.0), 1);
        assert_eq!(out.get_pixel(0, 0).0[0], 3);
    }
}
