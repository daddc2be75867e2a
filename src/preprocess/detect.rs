//! YuNet face detection (libfacedetection v3 / OpenCV `FaceDetectorYN`): input preparation, decoding
//! of the 12 output tensors (`cls`, `obj`, `bbox`, `kps` at strides 8/16/32), score threshold, NMS and
//! choice of the face to keep. Decoding follows `../shared/models/MODELS.md`.

use std::path::Path;
use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use crate::runtime::{self, Runtime};

/// One detected face, in the coordinates of the original image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Face {
    /// Box left, top, width, height.
    pub bbox: [f32; 4],
    /// Five landmarks (x, y): image-left eye, image-right eye, nose tip, image-left and image-right mouth corner.
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence `sqrt(cls·obj)`.
    pub score: f32,
}

/// Which face to keep when several are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FaceSelect {
    /// The face whose box centre is nearest the image centre (LFW's labelled person; the default).
    Center,
    /// The face with the largest box.
    Largest,
}

/// Detector settings (OpenCV's defaults).
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize)]
pub struct DetectorConfig {
    /// Images are scaled (up or down) so that their longer side has this many pixels before detection,
    /// as OpenCV's 640×640 letterbox does; landmarks are markedly more precise on faces upscaled this way.
    pub side: u32,
    /// Upper limit on upscaling: tight face crops (BFW's 108×124) blown up 5× to 640 px detect worse
    /// and cost 4× more than at 2.5×.
    pub max_upscale: f32,
    /// Minimum score of a kept face.
    pub score_threshold: f32,
    /// IoU above which a lower-scored overlapping face is suppressed.
    pub nms_iou: f32,
    /// Which face to keep.
    pub select: FaceSelect,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            side: 640,
            max_upscale: 2.5,
            score_threshold: 0.6,
            nms_iou: 0.3,
            select: FaceSelect::Center,
        }
    }
}

const STRIDES: [usize; 3] = [8, 16, 32];

/// The detector input for one image: BGR, raw 0..255, NCHW, zero-padded to multiples of 32.
pub struct DetectorInput {
    /// Tensor data, 3·height·width.
    pub data: Vec<f32>,
    /// Padded height.
    pub height: usize,
    /// Padded width.
    pub width: usize,
    /// Factor from original to detector coordinates.
    pub scale: f32,
}

/// Builds the detector input: scale so the longer side is `side` (upscaling at most `max_upscale`×),
/// place top-left, pad to ×32.
pub fn prepare(img: &RgbImage, side: u32, max_upscale: f32) -> DetectorInput {
    let (w, h) = (img.width(), img.height());
    let scale = (side as f32 / w.max(h) as f32).min(max_upscale.max(1.0));
    let (sw, sh) = if scale != 1.0 {
        (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        )
    } else {
        (w, h)
    };
    let width = (sw as usize).div_ceil(32) * 32;
    let height = (sh as usize).div_ceil(32) * 32;
    let mut data = vec![0.0f32; 3 * width * height];
    let plane = width * height;
    // The triangle-filter resize of `image` (byte-identical), written straight into the BGR planes.
    super::resize::triangle_each(img, sw, sh, |x, y, p| {
        let i = y * width + x;
        data[i] = p[2] as f32;
        data[plane + i] = p[1] as f32;
        data[2 * plane + i] = p[0] as f32;
    });
    DetectorInput {
        data,
        height,
        width,
        scale,
    }
}

/// Raw output tensors of one image, per stride: `cls`, `obj`, `bbox` (4 per anchor), `kps` (10 per anchor).
pub struct RawOutputs<'a> {
    /// `[cls, obj, bbox, kps]` for strides 8, 16, 32.
    pub per_stride: [[&'a [f32]; 4]; 3],
}

/// Decodes YuNet outputs for a `width`×`height` input into faces (before NMS), scaled back by `1/scale`.
pub fn decode(
    raw: &RawOutputs,
    width: usize,
    height: usize,
    scale: f32,
    score_threshold: f32,
) -> Vec<Face> {
    let mut faces = Vec::new();
    for (s, &st) in STRIDES.iter().enumerate() {
        let [cls, obj, bbox, kps] = raw.per_stride[s];
        let cols = width / st;
        let anchors = cols * (height / st);
        for i in 0..anchors.min(cls.len()) {
            let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
            if score < score_threshold {
                continue;
            }
            let (row, col) = ((i / cols) as f32, (i % cols) as f32);
            let stf = st as f32;
            let b = &bbox[i * 4..i * 4 + 4];
            let cx = (col + b[0]) * stf;
            let cy = (row + b[1]) * stf;
            let w = b[2].exp() * stf;
            let h = b[3].exp() * stf;
            let k = &kps[i * 10..i * 10 + 10];
            let mut landmarks = [[0.0f32; 2]; 5];
            for (j, lm) in landmarks.iter_mut().enumerate() {
                *lm = [
                    (k[2 * j] + col) * stf / scale,
                    (k[2 * j + 1] + row) * stf / scale,
                ];
            }
            faces.push(Face {
                bbox: [
                    (cx - w / 2.0) / scale,
                    (cy - h / 2.0) / scale,
                    w / scale,
                    h / scale,
                ],
                landmarks,
                score,
            });
        }
    }
    faces
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let x1 = a[0].max(b[0]);
    let y1 = a[1].max(b[1]);
    let x2 = (a[0] + a[2]).min(b[0] + b[2]);
    let y2 = (a[1] + a[3]).min(b[1] + b[3]);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Greedy non-maximum suppression: highest score first, drop faces overlapping a kept one by more than `iou_threshold`.
pub fn nms(mut faces: Vec<Face>, iou_threshold: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| iou(&k.bbox, &f.bbox) <= iou_threshold) {
            kept.push(f);
        }
    }
    kept
}

/// Picks the face to keep among NMS survivors of an image of size `w`×`h`.
pub fn select(faces: &[Face], w: u32, h: u32, how: FaceSelect) -> Option<Face> {
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let key = |f: &Face| match how {
        FaceSelect::Largest => -(f.bbox[2] * f.bbox[3]),
        FaceSelect::Center => {
            let dx = f.bbox[0] + f.bbox[2] / 2.0 - cx;
            let dy = f.bbox[1] + f.bbox[3] / 2.0 - cy;
            dx * dx + dy * dy
        }
    };
    faces
        .iter()
        .copied()
        .min_by(|a, b| key(a).total_cmp(&key(b)))
}

/// Seconds a [`Detector`] has spent in each part of [`Detector::detect`], summed over its calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DetectTimings {
    /// Resizing the image and laying it out as the network's input ([`prepare`]).
    pub prepare_s: f64,
    /// The network itself: ONNX Runtime's `run` and reading its 12 outputs.
    pub infer_s: f64,
    /// Decoding anchors, NMS and choosing the face.
    pub post_s: f64,
}

/// A YuNet detector session (dynamic input size model).
pub struct Detector {
    session: ort::session::Session,
    config: DetectorConfig,
    /// Time spent so far in each part of detection.
    pub timings: DetectTimings,
}

const OUTPUT_NAMES: [[&str; 4]; 3] = [
    ["cls_8", "obj_8", "bbox_8", "kps_8"],
    ["cls_16", "obj_16", "bbox_16", "kps_16"],
    ["cls_32", "obj_32", "bbox_32", "kps_32"],
];

impl Detector {
    /// Opens the YuNet model and checks it has the expected input and the 12 outputs.
    pub fn open(
        rt: &Runtime,
        model: &Path,
        config: DetectorConfig,
        threads: usize,
    ) -> Result<Detector, String> {
        let session = runtime::open_session(rt, model, threads)?;
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        for n in OUTPUT_NAMES.iter().flatten() {
            if !names.contains(n) {
                return Err(format!(
                    "detector {} has no output `{n}` (outputs: {}); it is not a YuNet model — use face_detection_yunet_s_dynamic.onnx",
                    model.display(),
                    names.join(", ")
                ));
            }
        }
        if session.inputs().len() != 1 {
            return Err(format!(
                "detector {} must have one input, found {}",
                model.display(),
                session.inputs().len()
            ));
        }
        Ok(Detector {
            session,
            config,
            timings: DetectTimings::default(),
        })
    }

    /// Detects faces in `img` and returns the one chosen by the configured [`FaceSelect`], or `None`.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Option<Face>, String> {
        let t = Instant::now();
        let input = prepare(img, self.config.side, self.config.max_upscale);
        self.timings.prepare_s += t.elapsed().as_secs_f64();
        let (score_threshold, nms_iou, how) = (
            self.config.score_threshold,
            self.config.nms_iou,
            self.config.select,
        );
        let mut post_s = 0.0;
        let face = self.infer(&input, |raw| {
            let t = Instant::now();
            let faces = decode(raw, input.width, input.height, input.scale, score_threshold);
            let face = select(&nms(faces, nms_iou), img.width(), img.height(), how);
            post_s = t.elapsed().as_secs_f64();
            face
        })?;
        self.timings.post_s += post_s;
        Ok(face)
    }

    /// Runs the network on a prepared input and hands its outputs to `then`; the network's own time
    /// (`run` and reading the outputs, not `then`) is added to [`DetectTimings::infer_s`].
    pub fn infer<R>(
        &mut self,
        input: &DetectorInput,
        then: impl FnOnce(&RawOutputs) -> R,
    ) -> Result<R, String> {
        let t = Instant::now();
        let tensor = ort::value::TensorRef::from_array_view((
            [1usize, 3, input.height, input.width],
            &input.data[..],
        ))
        .map_err(|e| e.to_string())?;
        let input_name = self.session.inputs()[0].name().to_string();
        let outputs = self
            .session
            .run(ort::inputs![input_name => tensor])
            .map_err(|e| format!("detector failed: {e}"))?;
        let mut slices: Vec<&[f32]> = Vec::with_capacity(12);
        for name in OUTPUT_NAMES.iter().flatten() {
            let (_, data) = outputs[*name]
                .try_extract_tensor::<f32>()
                .map_err(|e| e.to_string())?;
            slices.push(data);
        }
        let raw = RawOutputs {
            per_stride: [
                [slices[0], slices[1], slices[2], slices[3]],
                [slices[4], slices[5], slices[6], slices[7]],
                [slices[8], slices[9], slices[10], slices[11]],
            ],
        };
        self.timings.infer_s += t.elapsed().as_secs_f64();
        Ok(then(&raw))
    }

    /// The settings this detector was opened with.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_places_an_anchor_by_stride_row_and_col() {
        // 64×32 input: stride 8 has 8 cols × 4 rows = 32 anchors; anchor 10 is row 1, col 2.
        let (w, h) = (64, 32);
        let n8 = 32;
        let mut cls = vec![0.0f32; n8];
        let mut obj = vec![0.0f32; n8];
        let mut bbox = vec![0.0f32; n8 * 4];
        let mut kps = vec![0.0f32; n8 * 10];
        cls[10] = 0.81;
        obj[10] = 1.0; // score = sqrt(0.81) = 0.9
        bbox[40..44].copy_from_slice(&[0.5, 0.25, 0.0, (2.0f32).ln()]); // cx=(2+.5)*8=20, cy=(1+.25)*8=10, w=8, h=16
        kps[100] = 1.0; // first landmark x = (1+2)*8 = 24, y = (0+1)*8 = 8
        let empty: [&[f32]; 4] = [&[], &[], &[], &[]];
        let raw = RawOutputs {
            per_stride: [[&cls, &obj, &bbox, &kps], empty, empty],
        };
        // scale 0.5: coordinates double when mapped back to the original image.
        let faces = decode(&raw, w, h, 0.5, 0.6);
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        assert!((f.score - 0.9).abs() < 1e-6);
        assert_eq!(f.bbox, [32.0, 4.0, 16.0, 32.0]); // (20-4)/.5, (10-8)/.5, 8/.5, 16/.5
        assert_eq!(f.landmarks[0], [48.0, 16.0]);
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_distinct_faces() {
        let f = |x: f32, s: f32| Face {
            bbox: [x, 0.0, 10.0, 10.0],
            landmarks: [[0.0; 2]; 5],
            score: s,
        };
        // 0 and 1 overlap with IoU 8·10/(200-80) = 0.667 > 0.3; 2 is apart.
        let kept = nms(vec![f(0.0, 0.7), f(2.0, 0.9), f(50.0, 0.65)], 0.3);
        assert_eq!(
            kept.iter().map(|k| k.score).collect::<Vec<_>>(),
            vec![0.9, 0.65]
        );
        assert_eq!(
            select(&kept, 100, 20, FaceSelect::Center).unwrap().score,
            0.65
        );
        let big = Face {
            bbox: [0.0, 0.0, 30.0, 30.0],
            ..f(0.0, 0.61)
        };
        assert_eq!(
            select(&[f(45.0, 0.9), big], 100, 100, FaceSelect::Largest)
                .unwrap()
                .score,
            0.61
        );
    }

    #[test]
    fn prepare_pads_to_multiples_of_32_in_bgr() {
        let img = RgbImage::from_fn(40, 33, |_, _| image::Rgb([10, 20, 30]));
        let input = prepare(&img, 640, 1.0);
        assert_eq!((input.width, input.height, input.scale), (64, 64, 1.0));
        let plane = 64 * 64;
        assert_eq!(
            (input.data[0], input.data[plane], input.data[2 * plane]),
            (30.0, 20.0, 10.0)
        );
        assert_eq!(input.data[63], 0.0);
        let big = RgbImage::new(1280, 640);
        let input = prepare(&big, 640, 2.5);
        assert_eq!((input.width, input.height, input.scale), (640, 320, 0.5));
        // 108×124 upscaled by at most 2.5: 270×310 → padded 288×320.
        let crop = RgbImage::new(108, 124);
        let input = prepare(&crop, 640, 2.5);
        assert_eq!((input.width, input.height, input.scale), (288, 320, 2.5));
    }

    #[test]
    fn prepare_holds_images_triangle_resize_in_bgr_planes() {
        let crop = RgbImage::from_fn(108, 124, |x, y| {
            image::Rgb([(x * 7 + y) as u8, (x * y) as u8, (255 - x - y) as u8])
        });
        let input = prepare(&crop, 640, 2.5);
        let want = image::imageops::resize(&crop, 270, 310, image::imageops::FilterType::Triangle);
        let plane = input.width * input.height;
        for (x, y, p) in want.enumerate_pixels() {
            let i = y as usize * input.width + x as usize;
            let got = [
                input.data[2 * plane + i],
                input.data[plane + i],
                input.data[i],
            ];
            assert_eq!(got, p.0.map(|v| v as f32), "pixel ({x}, {y})");
        }
        // Padding stays zero: column 270 onwards and row 310 onwards.
        assert_eq!(input.data[270], 0.0);
        assert_eq!(input.data[310 * input.width], 0.0);
    }
}
