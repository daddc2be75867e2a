//! Five-point face alignment: a least-squares similarity transform (rotation, uniform scale,
//! translation; Umeyama's method without reflection, as InsightFace's `norm_crop` and skimage's
//! `SimilarityTransform`) from detected landmarks onto a template, then a bilinear warp with a zero
//! border (OpenCV `warpAffine` conventions: integer pixel coordinates are pixel centres).

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

/// Warps `img` by `m` (source → output coordinates) into a `size`×`size` RGB crop, bilinear, zero border.
pub fn warp(img: &RgbImage, m: &Similarity, size: u32) -> RgbImage {
    let inv = m.inverse();
    let (w, h) = (img.width() as i64, img.height() as i64);
    let raw = img.as_raw();
    let mut out = RgbImage::new(size, size);
    let px = |x: i64, y: i64, c: usize| -> f64 {
        if x < 0 || y < 0 || x >= w || y >= h {
            0.0
        } else {
            raw[((y * w + x) * 3) as usize + c] as f64
        }
    };
    for v in 0..size {
        for u in 0..size {
            let (sx, sy) = inv.apply(u as f64, v as f64);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let mut rgb = [0u8; 3];
            for (c, slot) in rgb.iter_mut().enumerate() {
                let top = px(x0, y0, c) * (1.0 - fx) + px(x0 + 1, y0, c) * fx;
                let bottom = px(x0, y0 + 1, c) * (1.0 - fx) + px(x0 + 1, y0 + 1, c) * fx;
                *slot = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(u, v, image::Rgb(rgb));
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
}
