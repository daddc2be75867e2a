//! Auditing a vendor model: the probe recovers known preprocessings of fixture variants of the shared
//! MobileFaceNet (built by tests/fixtures/make_variants.py), and the sanity gate stops a wrong spec.

mod common;

use std::path::{Path, PathBuf};

use common::{bfw_subset, facebias, shared};

/// Builds the variants of `script` (in tests/fixtures) into `dir`; returns (file, truth) per variant.
fn build(script: &str, dir: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    let out = std::process::Command::new("python3")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(script),
        )
        .arg(shared().join("models/mobilefacenet_foamliu_128d.onnx"))
        .arg(dir)
        .output()
        .expect("python3 with the onnx package (installed by .ci/setup)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (dir.join(v["file"].as_str().unwrap()), v)
        })
        .collect()
}

/// The pixel variants of tests/fixtures/make_variants.py.
fn variants(dir: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    build("make_variants.py", dir)
}

/// The first `n` images of the committed LFW sanity list as a manifest (the probe searches on the
/// first 240 images of any set, so a 240-image set gives the same choice at a third of the
/// detection time).
fn lfw_head(dir: &Path, n: usize) -> PathBuf {
    let list = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sanity/lfw.csv"),
    )
    .unwrap();
    let lfw = shared().join("datasets/lfw");
    let mut out = vec!["path,subject".to_string()];
    for row in list.lines().skip(1).take(n) {
        let (path, subject) = row.split_once(',').unwrap();
        out.push(format!("{},{subject}", lfw.join(path).display()));
    }
    let file = dir.join("sanity.csv");
    std::fs::write(&file, out.join("\n") + "\n").unwrap();
    file
}

/// The per-channel affine map value = slope·pixel + offset of a spec, in the model's channel order.
fn affine(spec: &toml::Value) -> Vec<(f64, f64)> {
    let f = |v: &toml::Value| {
        v.as_float()
            .or_else(|| v.as_integer().map(|i| i as f64))
            .unwrap()
    };
    let scale = f(&spec["pixel_scale"]);
    (0..3)
        .map(|c| {
            let (m, s) = (f(&spec["mean"][c]), f(&spec["std"][c]));
            (scale / s, -m / s)
        })
        .collect()
}

fn truth_affine(color: &str, scaling: &str) -> Vec<(f64, f64)> {
    let (mut mean, mut std) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    if color == "BGR" {
        mean.reverse();
        std.reverse();
    }
    (0..3)
        .map(|c| match scaling {
            "imagenet" => (1.0 / 255.0 / std[c], -mean[c] / std[c]),
            "caffe-mean" => (1.0, -[103.939, 116.779, 123.68][c]),
            "unit0-1" => (1.0 / 255.0, 0.0),
            "pm1" => (1.0 / 127.5, -1.0),
            _ => unreachable!(),
        })
        .collect()
}

/// The spec's pixel map must match the truth's up to 1 %: (x−127.5)/128 and (x−127.5)/127.5 differ
/// by 0.4 % and no sanity set can tell them apart.
fn assert_pixels(spec: &toml::Value, truth: &serde_json::Value) {
    let name = truth["file"].as_str().unwrap();
    for ((s, o), (ts, to)) in affine(spec).into_iter().zip(truth_affine(
        truth["color"].as_str().unwrap(),
        truth["scaling"].as_str().unwrap(),
    )) {
        assert!(
            (s / ts - 1.0).abs() < 0.01 && (o - to).abs() < 0.01 * to.abs().max(1.0),
            "{name}: slope {s} offset {o} vs {ts} {to}"
        );
    }
}

/// Probes `model` on `sanity` and returns the spec it wrote.
fn probe(dir: &Path, model: &Path, sanity: &Path) -> toml::Value {
    let spec_file = dir.join("chosen.toml");
    facebias(dir)
        .args(["inspect", "--probe", "--spec-out"])
        .arg(&spec_file)
        .arg("--sanity")
        .arg(sanity)
        .arg(model)
        .assert()
        .success();
    assert!(dir.join("chosen.crops.png").is_file(), "the crop sheet");
    toml::from_str(&std::fs::read_to_string(&spec_file).unwrap()).unwrap()
}

#[test]
fn probe_recovers_each_variants_true_preprocessing() {
    let dir = tempfile::tempdir().unwrap();
    let sanity = lfw_head(dir.path(), 240);
    // The ±1 variant is left out of the suite (its scaling and (x−127.5)/128 cannot be told apart).
    for (model, truth) in variants(dir.path())
        .into_iter()
        .filter(|(_, t)| t["file"] != "mfn_pm1.onnx")
    {
        let spec = probe(dir.path(), &model, &sanity);
        let name = truth["file"].as_str().unwrap();
        assert_eq!(spec["color"].as_str(), truth["color"].as_str(), "{name}");
        assert_eq!(spec["layout"].as_str(), truth["layout"].as_str(), "{name}");
        assert_eq!(spec["size"].as_integer(), truth["size"].as_i64(), "{name}");
        // The fixtures take the ArcFace crop; the search may settle a few percent off it, where the
        // sanity set cannot tell the difference (the probe's ranking is printed for a reader).
        assert_eq!(spec["template"].as_str(), Some("arcface112"), "{name}");
        let scale = spec["crop_scale"].as_float().unwrap();
        let offset = spec["crop_offset_y"].as_float().unwrap();
        assert!(
            (0.85..=1.18).contains(&scale) && offset.abs() <= 0.06,
            "{name}: crop ×{scale} {offset:+}"
        );
        assert_pixels(&spec, &truth);
    }
}

#[test]
fn probe_finds_the_chip_of_vendor_like_models() {
    // Graphs that take a dlib 150 chip, a widened 224 ArcFace crop, a squared detector box or BGR
    // minus the caffe means (tests/fixtures/make_vendor_variants.py). The pixels must be the true
    // ones; the crop the true family with a scale within 10 % of the truth (the box fixture's own
    // window is an average over faces, so a neighbouring scale may do as well on 240 images).
    let dir = tempfile::tempdir().unwrap();
    let sanity = lfw_head(dir.path(), 240);
    for (model, truth) in build("make_vendor_variants.py", dir.path()) {
        let spec = probe(dir.path(), &model, &sanity);
        let name = truth["file"].as_str().unwrap();
        assert_eq!(spec["color"].as_str(), truth["color"].as_str(), "{name}");
        assert_eq!(spec["size"].as_integer(), truth["size"].as_i64(), "{name}");
        assert_eq!(
            spec["template"].as_str(),
            truth["template"].as_str(),
            "{name}: {spec}"
        );
        let (scale, want) = (
            spec["crop_scale"].as_float().unwrap(),
            truth["crop_scale"].as_f64().unwrap(),
        );
        assert!(
            (scale / want - 1.0).abs() <= 0.1,
            "{name}: crop ×{scale}, truth ×{want}"
        );
        assert!(
            spec["crop_offset_y"].as_float().unwrap().abs() <= 0.06,
            "{name}: {spec}"
        );
        assert_pixels(&spec, &truth);
    }
}

#[test]
fn audit_probes_gates_runs_and_records_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let models = variants(dir.path());
    let bgr = &models
        .iter()
        .find(|(_, t)| t["file"] == "mfn_bgr.onnx")
        .unwrap()
        .0;
    let manifest = bfw_subset(dir.path(), 2, 3);
    let out = dir.path().join("audit");
    facebias(dir.path())
        .args(["audit", "--quiet", "--bootstrap", "50"])
        .arg(bgr)
        .arg("--dataset")
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let spec: toml::Value =
        toml::from_str(&std::fs::read_to_string(out.join("model_spec.toml")).unwrap()).unwrap();
    assert_eq!(spec["color"].as_str(), Some("BGR"));
    let sanity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sanity.json")).unwrap()).unwrap();
    // The default sanity set when auditing on BFW: the committed LFW list, 200 subjects × 3 images:
    // 200 × C(3, 2) = 600 mated pairs, C(600, 2) − 600 = 179,100 non-mated; the gate allows
    // ⌊179,100 × 1e-3⌋ = 179 false matches.
    assert_eq!(sanity["sanity_set"], "lfw");
    assert_eq!(sanity["images_without_face"], 0);
    assert_eq!(
        (
            sanity["mated_pairs"].as_u64(),
            sanity["nonmated_pairs"].as_u64(),
            sanity["gate"]["false_matches_allowed"].as_u64()
        ),
        (Some(600), Some(179_100), Some(179))
    );
    assert_eq!(sanity["gate"]["passed"], true);
    assert!(sanity["gate"]["fnmr"].as_f64().unwrap() < 0.1, "{sanity}");
    assert_eq!(sanity["probe"]["ranking"].as_array().unwrap().len(), 20);
    assert_eq!(sanity["probe"]["images"], 240);
    // The verdict opens both pages; the crops the model was fed are in the folder and on the page.
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["audit"]["verdict"], "passed");
    assert_eq!(run_json["audit"]["model_file"], "mfn_bgr.onnx");
    assert!(run_json["audit"]["runner_up"]["name"].is_string());
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.starts_with("# Demographic differentials: mfn_bgr.onnx on "),
        "{md}"
    );
    let audit_at = md.find("## Audit").unwrap();
    assert!(audit_at < md.find("## Findings").unwrap());
    assert!(
        md.contains("not a verdict on its bias): passed.")
            && md.contains("by default the committed set of the other dataset")
            && md.contains("Runner-up: "),
        "{md}"
    );
    let png = image::open(out.join("audit_crops.png")).unwrap();
    assert!(
        png.width() > 12 * 96 && png.height() > 2 * 96,
        "two rows of 12 crops"
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<h2>Audit</h2>") && html.contains("the model's input crops"));
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["model"]["spec"]["color"], "BGR");
    assert!(out.join("index.html").is_file());
}

#[test]
fn sanity_gate_stops_a_wrong_spec_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    // The real model with a wrong spec: raw 0..255 pixels (MODELS.md: AUC 0.705 that way).
    let wrong = dir.path().join("wrong.toml");
    let spec: toml::Value = toml::from_str(include_str!("../models/models.toml")).unwrap();
    let mut entry = spec["model"][0].clone();
    entry["pixel_scale"] = toml::Value::Float(1.0);
    entry["mean"] = toml::Value::Array(vec![toml::Value::Float(0.0); 3]);
    entry["std"] = toml::Value::Array(vec![toml::Value::Float(1.0); 3]);
    std::fs::write(&wrong, toml::to_string(&entry).unwrap()).unwrap();
    let model = shared().join("models/mobilefacenet_foamliu_128d.onnx");
    let manifest = bfw_subset(dir.path(), 1, 2);
    let out = dir.path().join("audit");
    let a = facebias(dir.path())
        .args(["audit", "--quiet"])
        .arg(&model)
        .arg("--spec")
        .arg(&wrong)
        .arg("--dataset")
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("sanity check failed") && err.contains("--probe") && err.contains("--force"),
        "{err}"
    );
    assert!(!out.exists(), "no report after a failed gate");
    facebias(dir.path())
        .args(["audit", "--quiet", "--force", "--bootstrap", "0"])
        .arg(&model)
        .arg("--spec")
        .arg(&wrong)
        .arg("--dataset")
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let sanity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sanity.json")).unwrap()).unwrap();
    assert_eq!(sanity["gate"]["forced"], true);
    assert!(sanity["gate"]["fnmr"].as_f64().unwrap() > 0.5, "{sanity}");
}

#[test]
fn a_spec_written_for_another_file_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.toml");
    let spec: toml::Value = toml::from_str(include_str!("../models/models.toml")).unwrap();
    let mut entry = spec["model"][0].clone();
    entry["sha256"] = toml::Value::String("0".repeat(64));
    std::fs::write(&other, toml::to_string(&entry).unwrap()).unwrap();
    let model = shared().join("models/mobilefacenet_foamliu_128d.onnx");
    let manifest = bfw_subset(dir.path(), 1, 2);
    let out = dir.path().join("audit");
    let a = facebias(dir.path())
        .args(["audit", "--quiet", "--spec"])
        .arg(&other)
        .arg(&model)
        .arg("--dataset")
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("another model") && err.contains(&"0".repeat(64)) && err.contains("--force"),
        "{err}"
    );
    assert!(!out.exists());
    facebias(dir.path())
        .args(["audit", "--quiet", "--force", "--bootstrap", "0", "--spec"])
        .arg(&other)
        .arg(&model)
        .arg("--dataset")
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let sanity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("sanity.json")).unwrap()).unwrap();
    assert_eq!(sanity["spec_sha256_mismatch"], true);
    assert_eq!(sanity["gate"]["passed"], true);
}
