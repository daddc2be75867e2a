//! What an audit adds to its report: the verdict section at the top of both pages (from `run.json`
//! `audit`), and `audit_crops.png`, the faces as the model was fed them under the chosen spec and
//! under its runner-up, so that a reader can see that the face is framed as the vendor intended.

use image::RgbImage;
use plotters::prelude::*;

/// What `audit` hands to the run: the `audit` section of `run.json` and files for the report folder.
#[derive(Debug, Clone, Default)]
pub struct AuditAttachment {
    /// The `audit` section of `run.json`.
    pub summary: serde_json::Value,
    /// `(file name, bytes)` written into the report folder before it is committed.
    pub files: Vec<(String, Vec<u8>)>,
}

/// The crop sheet's file name.
pub const CROPS_FILE: &str = "audit_crops.png";

const CELL: u32 = 96;
const LABEL_H: u32 = 22;

/// `audit_crops.png`: one row per labelled spec, its crops side by side at 96 px.
pub fn crop_sheet(rows: &[(String, Vec<RgbImage>)]) -> Result<Vec<u8>, String> {
    super::charts::ensure_font()?;
    let cols = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(1) as u32;
    let (w, h) = (
        cols * (CELL + 4) + 8,
        rows.len().max(1) as u32 * (CELL + LABEL_H + 8),
    );
    let mut canvas = RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    for (r, (_, crops)) in rows.iter().enumerate() {
        for (c, crop) in crops.iter().enumerate() {
            let thumb =
                image::imageops::resize(crop, CELL, CELL, image::imageops::FilterType::Triangle);
            let (x, y) = (
                8 + c as u32 * (CELL + 4),
                r as u32 * (CELL + LABEL_H + 8) + LABEL_H,
            );
            image::imageops::overlay(&mut canvas, &thumb, x as i64, y as i64);
        }
    }
    let mut buf = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let err = |e| format!("crop sheet drawing failed: {e:?}");
        for (r, (label, _)) in rows.iter().enumerate() {
            let y = r as i32 * (CELL + LABEL_H + 8) as i32 + 4;
            let font = ("sans-serif", 14).into_font().color(&BLACK);
            root.draw(&Text::new(label.clone(), (8, y), font))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    let img = RgbImage::from_raw(w, h, buf).ok_or("bad crop sheet buffer")?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode the crop sheet: {e}"))?;
    Ok(png)
}

/// The verdict section's sentences from `run.json` `audit` (none when the run was not an audit).
pub fn verdict_lines(record: &serde_json::Value) -> Vec<String> {
    let a = &record["audit"];
    if !a.is_object() {
        return Vec::new();
    }
    let s = &a["sanity"];
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let mut lines = vec![format!(
        "Preprocessing check (is the model fed the input it expects? not a verdict on its bias): {}. The sanity gate asks for FNMR ≤ {:.2} at the FMR {} threshold of the sanity set `{}`{}: this spec gives FNMR {:.3} on {} mated and {} non-mated pairs of {} images (AUC {:.4}).",
        a["verdict"].as_str().unwrap_or("?"),
        f(&s["max_fnmr"]),
        s["fmr"],
        s["set"].as_str().unwrap_or("?"),
        match s["chosen_by"].as_str() {
            Some("default") => " (by default the committed set of the other dataset, so not the audited images)",
            _ => " (given with --sanity)",
        },
        f(&s["fnmr"]),
        s["mated_pairs"],
        s["nonmated_pairs"],
        s["images"],
        f(&s["auc"]),
    )];
    lines.push(format!(
        "Model file {} (sha256 {}); preprocessing from {}.",
        a["model_file"].as_str().unwrap_or("?"),
        record["model"]["sha256"].as_str().unwrap_or("?"),
        a["spec_source"].as_str().unwrap_or("?"),
    ));
    if let Some(r) = a["runner_up"].as_object() {
        lines.push(format!(
            "Runner-up: {} with FNMR {:.3} on {} sanity images, {:.3} behind the chosen {:.3}{}.",
            r["name"].as_str().unwrap_or("?"),
            f(&r["fnmr"]),
            r["images"],
            f(&r["fnmr"]) - f(&r["chosen_fnmr"]),
            f(&r["chosen_fnmr"]),
            match a["flat"].as_u64() {
                Some(n) if n > 1 => format!("; {n} candidates lie within 0.01 of the best, so the top is flat and any of them would serve"),
                _ => String::new(),
            }
        ));
    }
    if a["spec_sha256_mismatch"] == true {
        lines.push(
            "The spec names another file's sha256 and was used only because of --force.".into(),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_reads_the_record() {
        let record = serde_json::json!({
            "model": {"sha256": "ab"},
            "audit": {
                "verdict": "passed",
                "model_file": "vendor.onnx",
                "spec_source": "the probe",
                "spec_sha256_mismatch": false,
                "flat": 3,
                "sanity": {"max_fnmr": 0.5, "fmr": 0.001, "set": "lfw", "fnmr": 0.033,
                           "mated_pairs": 600, "nonmated_pairs": 179100, "images": 600, "auc": 0.9944},
                "runner_up": {"name": "B", "fnmr": 0.029, "chosen_fnmr": 0.025, "images": 240},
            }
        });
        let l = verdict_lines(&record);
        assert!(
            l[0].contains("not a verdict on its bias): passed.")
                && l[0].contains("FNMR 0.033 on 600 mated and 179100 non-mated")
                && l[0].contains("(given with --sanity)"),
            "{}",
            l[0]
        );
        assert!(l[1].contains("vendor.onnx (sha256 ab)"), "{}", l[1]);
        assert!(
            l[2].contains("0.004 behind the chosen 0.025; 3 candidates"),
            "{}",
            l[2]
        );
        assert!(verdict_lines(&serde_json::json!({})).is_empty());
    }
}
