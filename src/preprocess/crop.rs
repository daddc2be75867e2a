//! Crop geometry: where the model's input square lies on the photo, from the detected face.
//!
//! A [`Crop`] is a template family ([`Template`]) plus a **scale** and a **vertical offset** applied on
//! top of it, so that any vendor's documented chip can be written down:
//! - `arcface112`: 5-point similarity alignment onto the ArcFace/InsightFace 112×112 template (scaled to
//!   the input size);
//! - `dlib`: 5-point similarity alignment onto dlib's `get_face_chip_details` mean face (the 68-point
//!   mean shape's eye centres, nose tip and mouth corners) with dlib's `padding` (0.25 in dlib's face
//!   recognition example, 150 px chips);
//! - `box`: the detector's box made square (side = max(w, h)) about its centre, no rotation: the
//!   FaceNet/MTCNN "box + margin" and VGGFace2-style loose crops are this with a scale above 1 (a
//!   margin of m pixels on each side of a box of side s is scale (s + 2m)/s);
//! - `points`: similarity alignment onto any five points given in a frame of `template_size` pixels;
//! - `none`: no crop, the whole (already aligned) image is resized.
//!
//! `scale` > 1 widens the crop about its centre (the face gets smaller, more context); `offset_y`
//! moves the crop window down by that fraction of its side (the face moves up in the crop).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::align::{scaled_template, warp, Similarity, ARCFACE_112};
use super::detect::Face;

/// The template family of a crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Template {
    /// 5-point similarity alignment onto the ArcFace 112×112 template (scaled to the input size).
    Arcface112,
    /// 5-point similarity alignment onto dlib's face-chip mean face, with `padding`.
    Dlib,
    /// The detector's box, squared about its centre, without rotation.
    Box,
    /// 5-point similarity alignment onto the spec's own `template_points`.
    Points,
    /// No alignment: the whole image (already an aligned crop) is resized to the input size.
    None,
}

impl Template {
    /// The name used in specs and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Template::Arcface112 => "arcface112",
            Template::Dlib => "dlib",
            Template::Box => "box",
            Template::Points => "points",
            Template::None => "none",
        }
    }
}

/// dlib's mean face (`get_face_chip_details`, 68-point branch: the mean shape of points 17–67 in
/// [0, 1]² chip coordinates) reduced to YuNet's five points: the means of points 36–41 and 42–47 (eye
/// centres), point 30 (nose tip), points 48 and 54 (mouth corners). E.g. the image-left eye's x is
/// (0.121737 + 0.187122 + 0.265825 + 0.334606 + 0.260918 + 0.182743) / 6 = 0.2254918.
pub const DLIB_MEAN_FACE: [[f64; 2]; 5] = [
    [0.225_491_8, 0.215_990_3],
    [0.754_761_3, 0.215_990_3],
    [0.490_127, 0.515_625],
    [0.254_149, 0.780_233],
    [0.726_104, 0.780_233],
];

/// A crop: template family, its parameters, and the scale and offset on top.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    /// Template family.
    pub template: Template,
    /// Crop side relative to the template's (> 1: wider, more context).
    pub scale: f64,
    /// Downward shift of the crop window, as a fraction of its side.
    pub offset_y: f64,
    /// dlib's padding (only for `dlib`).
    pub padding: f64,
    /// Five template points (only for `points`), in a frame of `points_size` pixels.
    pub points: Option<[[f64; 2]; 5]>,
    /// The side of the frame `points` are given in.
    pub points_size: u32,
}

impl Crop {
    /// The ArcFace crop with no scale or offset.
    pub fn arcface() -> Crop {
        Crop {
            template: Template::Arcface112,
            scale: 1.0,
            offset_y: 0.0,
            padding: 0.25,
            points: None,
            points_size: 112,
        }
    }

    /// The five template points (output coordinates of a `size` crop) of a landmark-based family,
    /// before scale and offset.
    fn template_points(&self, size: u32) -> Option<[[f64; 2]; 5]> {
        let s = size as f64;
        match self.template {
            Template::Arcface112 => {
                Some(scaled_template(&ARCFACE_112, size).map(|[x, y]| [x as f64, y as f64]))
            }
            Template::Dlib => {
                let p = self.padding;
                Some(
                    DLIB_MEAN_FACE.map(|[x, y]| {
                        [(p + x) / (2.0 * p + 1.0) * s, (p + y) / (2.0 * p + 1.0) * s]
                    }),
                )
            }
            Template::Points => {
                let k = s / self.points_size.max(1) as f64;
                self.points.map(|pts| pts.map(|[x, y]| [x * k, y * k]))
            }
            Template::Box | Template::None => None,
        }
    }

    /// The source → output transform of a `size`×`size` crop of `face`; `None` for `none` (resize
    /// the whole image).
    pub fn transform(&self, face: &Face, size: u32) -> Option<Similarity> {
        let s = size as f64;
        let base = match self.template {
            Template::None => return None,
            Template::Box => {
                let [x, y, w, h] = face.bbox.map(|v| v as f64);
                let side = w.max(h).max(1.0);
                let k = s / side;
                // The box centre goes to the crop centre (pixel centres at integer coordinates).
                let (cx, cy) = (x + w / 2.0, y + h / 2.0);
                Similarity {
                    a: k,
                    b: 0.0,
                    tx: (s - 1.0) / 2.0 - k * cx,
                    ty: (s - 1.0) / 2.0 - k * cy,
                }
            }
            _ => {
                let dst = self
                    .template_points(size)?
                    .map(|[x, y]| [x as f32, y as f32]);
                Similarity::fit(&face.landmarks, &dst)
            }
        };
        if self.scale == 1.0 && self.offset_y == 0.0 {
            return Some(base);
        }
        // Scale about the crop centre, then shift the window down by offset_y of its side.
        let c = (s - 1.0) / 2.0;
        let z = 1.0 / self.scale.max(1e-6);
        Some(Similarity {
            a: base.a * z,
            b: base.b * z,
            tx: c + (base.tx - c) * z,
            ty: c + (base.ty - c) * z - self.offset_y * s,
        })
    }

    /// The model's input crop of `img` for `face`.
    pub fn apply(&self, img: &RgbImage, face: &Face, size: u32) -> RgbImage {
        match self.transform(face, size) {
            Some(m) => warp(img, &m, size),
            None => image::imageops::resize(img, size, size, image::imageops::FilterType::Triangle),
        }
    }

    /// A short description, e.g. `arcface112 ×1.15 +0.05`.
    pub fn describe(&self) -> String {
        let mut d = self.template.name().to_string();
        if self.template == Template::Dlib {
            d += &format!(" padding {}", self.padding);
        }
        if self.template != Template::None {
            if (self.scale - 1.0).abs() > 1e-9 {
                d += &format!(" ×{:.3}", self.scale);
            }
            if self.offset_y.abs() > 1e-9 {
                d += &format!(" {:+.3}", self.offset_y);
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> Face {
        // Landmarks exactly on the ArcFace template at 112, box 20..92 × 30..110 (72 × 80).
        Face {
            bbox: [20.0, 30.0, 72.0, 80.0],
            landmarks: ARCFACE_112,
            score: 1.0,
        }
    }

    #[test]
    fn arcface_at_scale_one_is_the_identity_on_template_landmarks() {
        let m = Crop::arcface().transform(&face(), 112).unwrap();
        assert!((m.a - 1.0).abs() < 1e-6 && m.b.abs() < 1e-6, "{m:?}");
        assert!(m.tx.abs() < 1e-4 && m.ty.abs() < 1e-4, "{m:?}");
    }

    #[test]
    fn scale_and_offset_move_points_about_the_centre() {
        let crop = Crop {
            scale: 2.0,
            offset_y: 0.1,
            ..Crop::arcface()
        };
        let m = crop.transform(&face(), 112).unwrap();
        // The nose (56.0252, 71.7366) goes halfway to the centre 55.5, then up 11.2 px:
        // x = 55.5 + 0.5263/2 = 55.7626, y = 55.5 + 16.2366/2 − 11.2 = 52.4183.
        let (x, y) = m.apply(56.0252, 71.7366);
        assert!(
            (x - 55.7626).abs() < 1e-3 && (y - 52.4183).abs() < 1e-3,
            "{x} {y}"
        );
    }

    #[test]
    fn box_crop_squares_the_box_about_its_centre() {
        let crop = Crop {
            template: Template::Box,
            ..Crop::arcface()
        };
        // Side max(72, 80) = 80 → 160 px: k = 2; the centre (56, 70) maps to 79.5.
        let m = crop.transform(&face(), 160).unwrap();
        assert_eq!((m.a, m.b), (2.0, 0.0));
        let (x, y) = m.apply(56.0, 70.0);
        assert!((x - 79.5).abs() < 1e-9 && (y - 79.5).abs() < 1e-9);
        // The top of the box (y = 30) is the top pixel edge: 2·30 + (79.5 − 140) = −0.5.
        assert!((m.apply(56.0, 30.0).1 + 0.5).abs() < 1e-9);
    }

    #[test]
    fn dlib_template_follows_the_padding_formula() {
        let crop = Crop {
            template: Template::Dlib,
            padding: 0.25,
            ..Crop::arcface()
        };
        let t = crop.template_points(150).unwrap();
        // Nose tip x: (0.25 + 0.490127) / 1.5 × 150 = 74.0127.
        assert!((t[2][0] - 74.0127).abs() < 1e-4, "{t:?}");
        // The eyes are level and symmetric about x = 0.490127 (dlib's face centre line).
        assert_eq!(t[0][1], t[1][1]);
        let mid = (t[0][0] + t[1][0]) / 2.0;
        assert!(
            (mid - (0.25 + 0.490_127_05) / 1.5 * 150.0).abs() < 1e-3,
            "{mid}"
        );
    }

    #[test]
    fn custom_points_are_scaled_to_the_input() {
        let crop = Crop {
            template: Template::Points,
            points: Some(ARCFACE_112.map(|[x, y]| [x as f64, y as f64])),
            points_size: 112,
            ..Crop::arcface()
        };
        let m = crop.transform(&face(), 224).unwrap();
        assert!((m.a - 2.0).abs() < 1e-6, "{m:?}");
    }
}
