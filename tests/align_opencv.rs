//! Alignment against the reference implementation: `align::warp` of the `Similarity::fit` of YuNet's
//! landmarks must equal InsightFace's `norm_crop` (skimage's Umeyama fit, then OpenCV's `warpAffine`,
//! bilinear, zero border) within one grey level on every pixel, for real faces at 112 and 224 pixels.
//! Both sides see the same decoded pixels (written as .npy, no image codec between them), so JPEG
//! decoder differences do not enter. The reference is `tests/reference/opencv_align.py`; it needs
//! `cv2` (opencv-python-headless, installed by `bash .ci/setup`).

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::shared;
use facebias::preprocess::align::{scaled_template, warp, Similarity, ARCFACE_112};
use facebias::preprocess::decode;
use facebias::preprocess::detect::{Detector, DetectorConfig, FaceSelect};
use image::RgbImage;

/// NumPy format 1.0 bytes of a uint8 `[h, w, 3]` array.
fn npy_rgb(img: &RgbImage) -> Vec<u8> {
    let header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({}, {}, 3), }}",
        img.height(),
        img.width()
    );
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad));
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(img.as_raw());
    out
}

/// Reads a uint8 `[size, size, 3]` .npy written by `np.save`.
fn read_npy_rgb(path: &Path, size: u32) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    let shape = format!("'shape': ({size}, {size}, 3)");
    assert!(
        header.contains("'|u1'")
            && header.contains("'fortran_order': False")
            && header.contains(&shape),
        "{}: unexpected header {header}",
        path.display()
    );
    let data = bytes[start + hlen..].to_vec();
    assert_eq!(data.len(), (size * size * 3) as usize, "{}", path.display());
    data
}

/// f32 points as exact f64 values (f32's shortest decimal would be read back by Python as a
/// different double).
fn points(p: &[[f32; 2]; 5]) -> serde_json::Value {
    serde_json::json!(p.map(|[x, y]| [x as f64, y as f64]))
}

/// The 31 test faces and the first image of the first subject of each of BFW's 8 groups.
fn faces() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared().join("models/testfaces"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    let bfw = shared().join("datasets/bfw/images");
    let sorted = |dir: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        v
    };
    for group in sorted(&bfw).iter().filter(|p| p.is_dir()) {
        let subject = sorted(group).into_iter().find(|p| p.is_dir()).unwrap();
        let image = sorted(&subject)
            .into_iter()
            .find(|p| p.extension().is_some_and(|x| x == "jpg"))
            .unwrap();
        files.push(image);
    }
    files
}

#[test]
fn aligned_crops_match_opencv_warp_affine_within_one_grey_level() {
    let probe = Command::new("python3")
        .args(["-c", "import cv2, numpy"])
        .output()
        .expect("cannot run python3");
    assert!(
        probe.status.success(),
        "python3 cannot import cv2 (opencv-python-headless), the reference this test compares with: \
         run `bash .ci/setup`\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let rt = facebias::runtime::load(None).expect("ONNX Runtime (run `bash .ci/setup`)");
    let mut det = Detector::open(
        rt,
        &shared().join("models/face_detection_yunet_s_dynamic.onnx"),
        DetectorConfig {
            select: FaceSelect::Largest,
            ..DetectorConfig::default()
        },
        1,
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let sizes = [112u32, 224];
    let mut jobs = Vec::new();
    // (name, size, facebias's crop, facebias's matrix, OpenCV's crop file), in the order of the jobs
    let mut ours: Vec<(String, u32, RgbImage, Similarity, PathBuf)> = Vec::new();
    let files = faces();
    for (i, path) in files.iter().enumerate() {
        let img = decode(&std::fs::read(path).unwrap()).unwrap();
        let Some(face) = det.detect(&img).unwrap() else {
            continue;
        };
        let npy = dir.path().join(format!("image{i}.npy"));
        std::fs::write(&npy, npy_rgb(&img)).unwrap();
        for size in sizes {
            let template = scaled_template(&ARCFACE_112, size);
            let m = Similarity::fit(&face.landmarks, &template);
            let out = dir.path().join(format!("crop{i}_{size}.npy"));
            jobs.push(serde_json::json!({
                "image": npy,
                "landmarks": points(&face.landmarks),
                "template": points(&template),
                "size": size,
                "out": out,
            }));
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            ours.push((name, size, warp(&img, &m, size), m, out));
        }
    }
    let found = ours.len() / sizes.len();
    assert!(
        found >= 30,
        "a face was found in only {found} of {} images",
        files.len()
    );

    let jobs_path = dir.path().join("jobs.json");
    let results_path = dir.path().join("results.json");
    std::fs::write(&jobs_path, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/opencv_align.py");
    let run = Command::new("python3")
        .arg(&script)
        .arg(&jobs_path)
        .arg(&results_path)
        .output()
        .expect("cannot run python3");
    assert!(
        run.status.success(),
        "{} failed (if cv2 is missing: run `bash .ci/setup`):\n{}",
        script.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results_path).unwrap()).unwrap();

    let mut failures = Vec::new();
    for &size in &sizes {
        let (mut values, mut equal, mut pixels, mut equal_pixels, mut max_diff) =
            (0u64, 0u64, 0u64, 0u64, 0u8);
        let mut max_m = 0f64;
        for (k, (name, s, crop, m, out)) in ours.iter().enumerate() {
            if *s != size {
                continue;
            }
            let reference = read_npy_rgb(out, size);
            let r = &results["results"][k]["matrix"];
            let theirs = [
                r[0][0].as_f64().unwrap(),
                r[0][1].as_f64().unwrap(),
                r[0][2].as_f64().unwrap(),
                r[1][0].as_f64().unwrap(),
                r[1][1].as_f64().unwrap(),
                r[1][2].as_f64().unwrap(),
            ];
            let mine = [m.a, -m.b, m.tx, m.b, m.a, m.ty];
            max_m = mine
                .iter()
                .zip(theirs)
                .fold(max_m, |acc, (a, b)| acc.max((a - b).abs()));
            let mut worst = (0u8, 0u32, 0u32);
            for (p, (a, b)) in crop.as_raw().chunks(3).zip(reference.chunks(3)).enumerate() {
                let d = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
                values += 3;
                equal += a.iter().zip(b).filter(|(x, y)| x == y).count() as u64;
                pixels += 1;
                equal_pixels += (d == 0) as u64;
                if d > worst.0 {
                    worst = (d, p as u32 % size, p as u32 / size);
                }
            }
            max_diff = max_diff.max(worst.0);
            if worst.0 > 1 {
                failures.push(format!(
                    "{name} at {size}: differs from cv2.warpAffine by {} grey levels at ({}, {})",
                    worst.0, worst.1, worst.2
                ));
            }
        }
        visible_note!(
            "align vs OpenCV {} at {size}x{size}: {found} faces, max |diff| {max_diff}, {:.4}% of channel values and {:.4}% of pixels equal, max |ΔM| {max_m:.2e}",
            results["opencv"].as_str().unwrap_or("?"),
            100.0 * equal as f64 / values as f64,
            100.0 * equal_pixels as f64 / pixels as f64,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
