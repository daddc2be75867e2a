//! Bad input ends in a clear message (naming the file, row or flag and the fix) and never a panic or a
//! half-written report.

#[macro_use]
mod common;

use common::{bfw_subset, facebias, read_csv, shared};

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).to_string()
}

#[test]
fn missing_image_file_names_the_row_and_leaves_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.csv");
    std::fs::write(&m, "path,subject,sex\nnope/a.jpg,s1,female\n").unwrap();
    let out = dir.path().join("out");
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--dataset"])
        .arg(&m)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("row 2") && err.contains("nope/a.jpg") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn conflicting_labels_name_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    let img = shared().join("models/testfaces/brad_1.jpg");
    let img2 = shared().join("models/testfaces/brad_2.jpg");
    let m = dir.path().join("m.csv");
    std::fs::write(
        &m,
        format!(
            "path,subject,sex\n{},brad,male\n{},brad,female\n",
            img.display(),
            img2.display()
        ),
    )
    .unwrap();
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--dataset"])
        .arg(&m)
        .arg("--out")
        .arg(dir.path().join("o"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("subject brad has two values of `sex`"),
        "{err}"
    );
}

#[test]
fn corrupt_jpeg_and_faceless_image_are_counted_failures_to_enrol() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 3); // 24 images, 8 subjects
                                                 // A truncated JPEG and a blank grey image, as extra subjects in one group.
    let good = std::fs::read(shared().join("models/testfaces/brad_1.jpg")).unwrap();
    std::fs::write(dir.path().join("corrupt.jpg"), &good[..good.len() / 3]).unwrap();
    std::fs::write(
        dir.path().join("garbage.jpg"),
        b"\xff\xd8\xff\xe0 this is not really a jpeg",
    )
    .unwrap();
    image::RgbImage::from_pixel(120, 120, image::Rgb([128, 128, 128]))
        .save(dir.path().join("blank.png"))
        .unwrap();
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    for (f, s) in [("garbage.jpg", "x1"), ("blank.png", "x2")] {
        text.push_str(&format!(
            "{},{s},female,white,\n",
            dir.path().join(f).display()
        ));
    }
    std::fs::write(&manifest, text).unwrap();
    let out = dir.path().join("out");
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--no-cache", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let err = stderr_of(&a);
    assert!(
        err.contains("1 of 26 images are failures to enrol (decode_error)"),
        "{err}"
    );
    assert!(
        err.contains("1 of 26 images are failures to enrol (no_face)"),
        "{err}"
    );
    let samples = read_csv(&out.join("samples.csv"));
    let status =
        |f: &str| samples.iter().find(|s| s["path"].ends_with(f)).unwrap()["status"].clone();
    assert_eq!(status("garbage.jpg"), "decode_error");
    assert_eq!(status("blank.png"), "no_face");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run["skipped"],
        serde_json::json!({"decode_error": 1, "no_face": 1})
    );
    // They stay in the denominators: female|white has 4 images (3 + 2 failures … minus none) → counted.
    let groups = read_csv(&out.join("groups.csv"));
    let wf = groups
        .iter()
        .find(|g| g["attribute"] == "sex×race" && g["group"] == "female|white")
        .unwrap();
    assert_eq!(wf["images"], "5");
    assert_eq!(wf["failures_to_enrol"], "2");
    // 5 images: C(5,2) = 10 pairs, 3 mated (one subject with 3 images) → 7 non-mated.
    assert_eq!(
        (
            wf["mated_comparisons"].as_str(),
            wf["nonmated_comparisons"].as_str()
        ),
        ("3", "7")
    );
}

#[test]
fn wrong_model_input_shape_is_reported_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--input-size", "128", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("o"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("input `input0` is [1,3,112,112]")
            && err.contains("128x128")
            && err.contains("--input-size"),
        "{err}"
    );
}

#[test]
fn unknown_model_without_spec_says_which_flags_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("vendor.onnx");
    std::fs::copy(
        shared().join("models/mobilefacenet_foamliu_128d.onnx"),
        &model,
    )
    .unwrap();
    let mut bytes = std::fs::read(&model).unwrap();
    bytes.extend_from_slice(b"x"); // a different sha256, so not a catalogue match
    std::fs::write(&model, bytes).unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--model"])
        .arg(&model)
        .arg("--dataset")
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("o"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("not in the catalogue")
            && err.contains("--spec")
            && err.contains("--input-size"),
        "{err}"
    );
}

#[test]
fn missing_onnxruntime_library_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let a = facebias(dir.path())
        .args(["inspect", "--ort-lib", "/nonexistent/libonnxruntime.so"])
        .arg(shared().join("models/mobilefacenet_foamliu_128d.onnx"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(err.contains("pip install onnxruntime==1.31.1"), "{err}");
}

#[test]
fn refuses_to_overwrite_a_folder_that_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("thesis");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("chapter1.tex"), "precious").unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure();
    assert!(stderr_of(&a).contains("not a facebias report folder"));
    assert_eq!(
        std::fs::read_to_string(out.join("chapter1.tex")).unwrap(),
        "precious"
    );
}

#[test]
fn cuda_without_a_gpu_runtime_says_what_to_install_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let cpu_only = !std::process::Command::new("python3")
        .args(["-c", "import onnxruntime as o; import sys; sys.exit(0 if 'CUDAExecutionProvider' in o.get_available_providers() else 1)"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        cpu_only,
        "this test expects the CPU onnxruntime wheel (CI has no GPU)"
    );
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--device", "cuda", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("o"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("no CUDA execution provider")
            && err.contains("onnxruntime-gpu==1.31.1")
            && err.contains("--device cpu"),
        "{err}"
    );
    // The throughput bench takes --device too, and stops the same way.
    let bp = facebias(dir.path())
        .args([
            "bench-pipeline",
            "--device",
            "cuda",
            "--images",
            "5",
            "--dataset",
        ])
        .arg(manifest.parent().unwrap())
        .assert()
        .failure();
    assert!(stderr_of(&bp).contains("onnxruntime-gpu==1.31.1"));
    let out = dir.path().join("auto");
    facebias(dir.path())
        .args([
            "run",
            "--quiet",
            "--bootstrap",
            "0",
            "--device",
            "auto",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["runtime"]["execution_provider"], "CPUExecutionProvider");
    assert!(run["runtime"]["device_note"]
        .as_str()
        .unwrap()
        .contains("ran on the CPU"));
    // The comparison stage falls back too (no NVIDIA driver here), and says why.
    if facebias::compare::gpu::cuda::probe().is_ok() {
        visible_note!("SKIPPED the GPU fallback checks: this machine has an NVIDIA driver");
        return;
    }
    assert_eq!(
        run["compare"]["kernel"],
        facebias::compare::kernel::Kernel::detect().name()
    );
    assert_eq!(run["compare"]["precision"], "fp32");
    assert!(run["compare"]["device_note"]
        .as_str()
        .unwrap()
        .starts_with("comparison on the CPU: no NVIDIA driver found"));
    // Reduced precision is a GPU-only setting: refused up front, before any embedding.
    let bf16 = facebias(dir.path())
        .args(["run", "--quiet", "--precision", "bf16", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("bf16"))
        .assert()
        .failure();
    assert!(stderr_of(&bf16).contains("--precision bf16 runs only in the GPU kernel"));
    assert!(!dir.path().join("bf16").join("run.json").exists());
    // The GPU bench names the missing driver and the way out.
    let gpu_bench = facebias(dir.path())
        .args(["bench", "--device", "cuda", "--n", "100"])
        .assert()
        .failure();
    let err = stderr_of(&gpu_bench);
    assert!(
        err.contains("libcuda.so.1") && err.contains("--device cpu"),
        "{err}"
    );
    let bad = facebias(dir.path())
        .args(["run", "--device", "gpu", "--dataset", "x", "--out", "y"])
        .assert()
        .failure();
    assert!(stderr_of(&bad).contains("cuda:N"));
}

#[test]
fn mistyped_dataset_path_says_it_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let a = facebias(dir.path())
        .args([
            "run",
            "--quiet",
            "--dataset",
            "../shared/datasets/bfww",
            "--out",
        ])
        .arg(dir.path().join("o"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("../shared/datasets/bfww") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn the_readme_form_of_mean_and_std_is_accepted_and_a_wrong_count_is_named() {
    // README: `--mean a,b,c --std a,b,c`. The catalogue model with its own values given by hand runs;
    // two values instead of three is refused naming the flag.
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    facebias(dir.path())
        .args([
            "run",
            "--quiet",
            "--bootstrap",
            "0",
            "--mean",
            "0.485,0.456,0.406",
        ])
        .args(["--std", "0.229,0.224,0.225", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("ok"))
        .assert()
        .success();
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--mean", "0.5,0.5", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("bad"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("--mean takes three comma-separated values") && err.contains("got 2"),
        "{err}"
    );
}

#[test]
fn out_folders_the_tool_did_not_make_are_never_emptied() {
    // `report .` inside a run folder, `run --out .`, and an --out holding the dataset: refused with
    // every file left as it was.
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let run = dir.path().join("run");
    facebias(dir.path())
        .args(["run", "--quiet", "--bootstrap", "0", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let files = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    let before = files(&run);
    assert!(
        before.contains(&"comparisons.bin".to_string())
            && before.contains(&".facebias-run".to_string())
    );
    let a = facebias(dir.path())
        .args(["report", "."])
        .current_dir(&run)
        .assert()
        .failure();
    assert!(
        stderr_of(&a).contains("current folder"),
        "{}",
        stderr_of(&a)
    );
    assert_eq!(files(&run), before, "the run folder is untouched");
    // A working folder with a run.json among other work is not a report folder.
    let work = dir.path().join("thesis");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(work.join("run.json"), "{}").unwrap();
    std::fs::write(work.join("chapter1.tex"), "text").unwrap();
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&work)
        .assert()
        .failure();
    assert!(stderr_of(&a).contains("did not write"), "{}", stderr_of(&a));
    assert_eq!(
        std::fs::read_to_string(work.join("chapter1.tex")).unwrap(),
        "text"
    );
    // --out that holds the dataset's manifest.
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("not a facebias report") || err.contains("holds the input"),
        "{err}"
    );
    assert!(manifest.is_file());
}

#[test]
fn a_bomb_header_is_a_counted_too_large_under_a_memory_limit() {
    // A copy of a real BFW JPEG whose frame header claims 65000x65000 (decoding it would take 12.7 GB)
    // and a PNG claiming 30000x30000, run with the process's data segment limited to 3 GiB: the run
    // ends normally, both counted `too_large` in samples.csv.
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let first = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let mut jpeg = std::fs::read(&first).unwrap();
    let sof = jpeg
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]); // 65000 x 65000
    let bomb = dir.path().join("bomb.jpg");
    std::fs::write(&bomb, &jpeg).unwrap();
    let mut m = text.clone();
    m += &format!("{},bomb,female,asian,\n", bomb.display());
    let with_bomb = dir.path().join("bomb.csv");
    std::fs::write(&with_bomb, m).unwrap();
    let out = dir.path().join("run");
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("facebias"));
    cmd.env("XDG_CACHE_HOME", dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--bootstrap", "0", "--dataset"])
        .arg(&with_bomb)
        .arg("--out")
        .arg(&out);
    // SAFETY: setrlimit is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 3 << 30,
                rlim_max: 3 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_csv(&out.join("samples.csv"));
    let b = rows.iter().find(|r| r["subject"] == "bomb").unwrap();
    assert_eq!(b["status"], "too_large", "{b:?}");
    assert!(b["detail"].contains("65000x65000"), "{b:?}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["skipped"]["too_large"], 1);
}

#[test]
fn labels_that_would_collide_are_refused() {
    // `sex,sex` would double every row of groups.csv; a `|` inside a value would merge two groups of
    // an intersection.
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let case = |name: &str, header: String, rows: Vec<String>| {
        let m = dir.path().join(name);
        std::fs::write(&m, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        let a = facebias(dir.path())
            .args(["run", "--quiet", "--dataset"])
            .arg(&m)
            .arg("--out")
            .arg(dir.path().join(format!("{name}.out")))
            .assert()
            .failure();
        stderr_of(&a)
    };
    let err = case(
        "dup.csv",
        format!("{header},sex"),
        rows.iter().map(|r| format!("{r},female")).collect(),
    );
    assert!(err.contains("`sex` twice"), "{err}");
    let mut bad: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    bad[0] = bad[0]
        .replacen(",female,", ",fe|male,", 1)
        .replacen(",male,", ",fe|male,", 1);
    let err = case("pipe.csv", header.to_string(), bad);
    assert!(
        err.contains("row 2") && err.contains("contains `|`"),
        "{err}"
    );
}

#[test]
fn cold_and_warm_runs_write_the_same_samples_csv_with_a_failure_to_enrol() {
    // A faceless image is a cached `no_face`: the warm run's detail must equal the cold run's.
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(96, 96, image::Rgb([128, 128, 128]))
        .save(&blank)
        .unwrap();
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text += &format!("{},blank,female,asian,\n", blank.display());
    std::fs::write(&manifest, text).unwrap();
    let mut outs = Vec::new();
    for name in ["cold", "warm"] {
        let out = dir.path().join(name);
        facebias(dir.path())
            .args(["run", "--quiet", "--bootstrap", "0", "--dataset"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        outs.push(std::fs::read(out.join("samples.csv")).unwrap());
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("warm/run.json")).unwrap()).unwrap();
    assert!(
        run["execution"]["cache_hits"].as_u64().unwrap() > 0,
        "the second run is warm"
    );
    assert!(String::from_utf8_lossy(&outs[0]).contains("no_face"));
    assert_eq!(outs[0], outs[1], "cold and warm samples.csv differ");
}

#[test]
fn an_unwritable_cache_fails_before_any_image_is_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let not_a_folder = dir.path().join("file");
    std::fs::write(&not_a_folder, "x").unwrap();
    let a = facebias(dir.path())
        .args(["run", "--dataset"])
        .arg(&manifest)
        .arg("--cache-dir")
        .arg(not_a_folder.join("cache"))
        .arg("--out")
        .arg(dir.path().join("o"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(err.contains("cache") && err.contains("--no-cache"), "{err}");
    assert!(
        !err.contains("failures to enrol") && !dir.path().join("o").exists(),
        "{err}"
    );
}

#[test]
fn a_damaged_comparisons_or_bootstrap_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 2, 3);
    let run = dir.path().join("run");
    facebias(dir.path())
        .args([
            "run",
            "--quiet",
            "--bootstrap",
            "50",
            "--target-fmr",
            "0.05",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let groups = std::fs::read(run.join("groups.csv")).unwrap();
    for file in ["comparisons.bin", "bootstrap.bin"] {
        let path = run.join(file);
        let good = std::fs::read(&path).unwrap();
        let mut bad = good.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x10; // one flipped count bit
        std::fs::write(&path, &bad).unwrap();
        let a = facebias(dir.path())
            .arg("report")
            .arg(&run)
            .assert()
            .failure();
        let err = stderr_of(&a);
        assert!(err.contains(file) && err.contains("damaged"), "{err}");
        assert_eq!(
            std::fs::read(run.join("groups.csv")).unwrap(),
            groups,
            "nothing rewritten"
        );
        std::fs::write(&path, &good).unwrap();
    }
    facebias(dir.path())
        .arg("report")
        .arg(&run)
        .assert()
        .success();
    assert_eq!(std::fs::read(run.join("groups.csv")).unwrap(), groups);
}

#[test]
fn crop_flags_are_recorded_and_impossible_crops_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let out = dir.path().join("box");
    facebias(dir.path())
        .args(["run", "--quiet", "--bootstrap", "0", "--template", "box"])
        .args([
            "--crop-scale",
            "1.3",
            "--crop-offset-y",
            "-0.05",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let spec = &run["model"]["spec"];
    assert_eq!(
        (
            &spec["template"],
            &spec["crop_scale"],
            &spec["crop_offset_y"]
        ),
        (
            &serde_json::json!("box"),
            &serde_json::json!(1.3),
            &serde_json::json!(-0.05)
        )
    );
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("crop box ×1.300 -0.050"), "{md}");
    let a = facebias(dir.path())
        .args(["run", "--quiet", "--crop-scale", "0", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("bad"))
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(
        err.contains("--crop-scale") && err.contains("between 0.05 and 20"),
        "{err}"
    );
    assert!(!dir.path().join("bad").exists());
}
