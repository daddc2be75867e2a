//! `facebias slurm plan` writes the sbatch scripts of a sharded run — an embedding job array, the job
//! that joins its shards, a comparison job array started from the joined embed folder, and the merge
//! job writing the report — plus `submit.sh`, which submits them in order with `--dependency=afterok`.
//! `facebias slurm status` says which of those jobs' outputs are finished.
//!
//! The scripts call only the facebias binary, with `--skip-finished`: a requeued or pre-empted job
//! that finished does nothing, one that died reruns (an embedding shard resumes from its own
//! embedding cache). The plan folder holds nothing but what the plan and its jobs write.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use crate::cli::{ModelArgs, SlurmPlanArgs, SlurmStatusArgs};
use crate::report::record;

/// The plan's own record, `DIR/slurm/plan.json`.
const PLAN: &str = "plan.json";
/// The files `plan` writes into `DIR/slurm`.
const SCRIPTS: [&str; 6] = [
    PLAN,
    "embed.sbatch",
    "embed_merge.sbatch",
    "compare.sbatch",
    "merge.sbatch",
    "submit.sh",
];

/// A plan's layout inside its folder.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The plan folder (`--out`).
    pub dir: PathBuf,
    /// Embedding shards.
    pub embed_shards: usize,
    /// Comparison shards.
    pub compare_shards: usize,
}

impl Layout {
    /// `DIR/slurm`: scripts and plan.json.
    pub fn scripts(&self) -> PathBuf {
        self.dir.join("slurm")
    }
    /// `DIR/logs`: the jobs' output.
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    /// Embedding shard `k`'s folder.
    pub fn embed_shard(&self, k: usize) -> PathBuf {
        self.dir.join("embed").join(format!("shard-{k}"))
    }
    /// The joined embed folder.
    pub fn embeddings(&self) -> PathBuf {
        self.dir.join("embeddings")
    }
    /// Comparison shard `k`'s folder.
    pub fn compare_shard(&self, k: usize) -> PathBuf {
        self.dir.join("compare").join(format!("shard-{k}"))
    }
    /// The merged report.
    pub fn report(&self) -> PathBuf {
        self.dir.join("report")
    }
}

/// Single-quotes `s` for a POSIX shell.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn abs(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| anyhow!("cannot resolve {}: {e}", p.display()))
}

/// The model flags of `m` that differ from their defaults, as command-line words (paths absolute).
fn model_flags(m: &ModelArgs) -> Result<Vec<String>> {
    let d = ModelArgs::named("mobilefacenet");
    let mut f: Vec<String> = vec!["--model".into()];
    // A model given as a file path is made absolute; a catalogue name is kept.
    let model = Path::new(&m.model);
    f.push(if model.exists() {
        abs(model)?.display().to_string()
    } else {
        m.model.clone()
    });
    let mut path = |flag: &str, p: &Option<PathBuf>| -> Result<()> {
        if let Some(p) = p {
            f.push(flag.into());
            f.push(abs(p)?.display().to_string());
        }
        Ok(())
    };
    path("--models-dir", &m.models_dir)?;
    path("--detector", &m.detector)?;
    path("--ort-lib", &m.ort_lib)?;
    path("--spec", &m.spec)?;
    let mut opt = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            f.push(flag.into());
            f.push(v);
        }
    };
    let join = |v: &Option<Vec<f32>>| {
        v.as_ref().map(|v| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let value_name = |v: &dyn erased::Named| v.name();
    opt("--input-name", m.input_name.clone());
    opt("--output-name", m.output_name.clone());
    opt("--input-size", m.input_size.map(|v| v.to_string()));
    opt("--layout", m.layout.as_ref().map(|v| value_name(v)));
    opt("--color", m.color.as_ref().map(|v| value_name(v)));
    opt("--pixel-scale", m.pixel_scale.map(|v| v.to_string()));
    opt("--mean", join(&m.mean));
    opt("--std", join(&m.std));
    opt("--template", m.template.as_ref().map(|v| value_name(v)));
    opt("--crop-scale", m.crop_scale.map(|v| v.to_string()));
    opt("--crop-offset-y", m.crop_offset_y.map(|v| v.to_string()));
    opt("--padding", m.padding.map(|v| v.to_string()));
    opt(
        "--detect-size",
        (m.detect_size != d.detect_size).then(|| m.detect_size.to_string()),
    );
    opt(
        "--detect-max-upscale",
        (m.detect_max_upscale != d.detect_max_upscale).then(|| m.detect_max_upscale.to_string()),
    );
    opt(
        "--face-select",
        (m.face_select != d.face_select).then(|| value_name(&m.face_select)),
    );
    if m.allow_unusable {
        f.push("--allow-unusable".into());
    }
    Ok(f)
}

/// The command-line name of a clap value.
mod erased {
    /// A clap value enum's name on the command line.
    pub trait Named {
        /// `--flag NAME`.
        fn name(&self) -> String;
    }
    impl<T: clap::ValueEnum> Named for T {
        fn name(&self) -> String {
            self.to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        }
    }
}

/// An sbatch script: the `#SBATCH` lines, then `set -euo pipefail` and the command.
fn script(
    a: &SlurmPlanArgs,
    l: &Layout,
    name: &str,
    array: Option<usize>,
    cpus: usize,
    gpu: bool,
    command: &str,
) -> Result<String> {
    let mut s = String::from("#!/bin/bash\n");
    s += "# Written by `facebias slurm plan`; submit all jobs in order with submit.sh.\n";
    s += &format!("#SBATCH --job-name=facebias-{name}\n");
    let logs = abs(&l.logs())?;
    match array {
        Some(n) => {
            s += &format!("#SBATCH --array=0-{}\n", n - 1);
            s += &format!(
                "#SBATCH --output={}\n",
                logs.join(format!("{name}-%a.out")).display()
            );
        }
        None => {
            s += &format!(
                "#SBATCH --output={}\n",
                logs.join(format!("{name}.out")).display()
            )
        }
    }
    s += &format!("#SBATCH --chdir={}\n", abs(Path::new("."))?.display());
    s += &format!("#SBATCH --cpus-per-task={cpus}\n");
    s += "#SBATCH --requeue\n";
    if let Some(p) = &a.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(t) = &a.time {
        s += &format!("#SBATCH --time={t}\n");
    }
    if let Some(m) = &a.mem {
        s += &format!("#SBATCH --mem={m}\n");
    }
    if gpu {
        if let Some(g) = &a.gpus {
            s += &format!("#SBATCH --gpus={g}\n");
        }
    }
    s += "set -euo pipefail\n";
    s += command;
    s += "\n";
    Ok(s)
}

/// `facebias slurm plan`.
pub fn plan(a: &SlurmPlanArgs) -> Result<PathBuf> {
    if a.embed_shards == 0 || a.compare_shards == 0 {
        bail!("--embed-shards and --compare-shards must be at least 1");
    }
    crate::commands::common::check_targets(a.target_fmr.as_deref())?;
    let l = Layout {
        dir: abs(&a.out)?,
        embed_shards: a.embed_shards,
        compare_shards: a.compare_shards,
    };
    let scripts = l.scripts();
    // Never overwrite a file the plan did not write: an existing slurm/ must be an earlier plan's.
    if scripts.exists() {
        let ours = scripts.join(PLAN).is_file();
        let foreign: Vec<String> = std::fs::read_dir(&scripts)
            .map_err(|e| anyhow!("cannot read {}: {e}", scripts.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !SCRIPTS.contains(&n.as_str()))
            .collect();
        if !ours || !foreign.is_empty() {
            bail!(
                "{} exists and is not a facebias plan's (foreign files: {foreign:?}); choose another --out",
                scripts.display()
            );
        }
    }
    let exe =
        std::env::current_exe().map_err(|e| anyhow!("cannot find the facebias binary: {e}"))?;
    let bin = sh(&exe.display().to_string());
    let dataset = sh(&abs(&a.dataset)?.display().to_string());
    let words = |v: Vec<String>| v.iter().map(|w| sh(w)).collect::<Vec<_>>().join(" ");
    let model = words(model_flags(&a.model)?);
    let gpu = a.gpus.is_some();
    let device = if gpu { " --device cuda" } else { "" };
    let cpus = a.cpus_per_task;
    let mut run_flags = Vec::new();
    if let Some(t) = &a.target_fmr {
        run_flags.push("--target-fmr".to_string());
        run_flags.push(
            t.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    if let Some(at) = &a.attributes {
        run_flags.push("--attributes".into());
        run_flags.push(at.join(","));
    }
    if let Some(x) = &a.exclude_pairs {
        run_flags.push("--exclude-pairs".into());
        run_flags.push(abs(x)?.display().to_string());
    }
    let mut metric = vec![
        "--alpha".to_string(),
        a.analysis.alpha.to_string(),
        "--seed".into(),
        a.analysis.seed.to_string(),
    ];
    if let Some(r) = &a.analysis.reference_group {
        metric.push("--reference-group".into());
        metric.push(r.clone());
    }
    let metric = words(metric);
    let run_flags = words(run_flags);
    let path = |p: PathBuf| sh(&p.display().to_string());
    let embed_dir = path(l.dir.join("embed"));
    let cache = path(l.dir.join("cache"));
    let compare_dir = path(l.dir.join("compare"));
    let (ne, nc) = (a.embed_shards, a.compare_shards);
    let embed = format!(
        "k=$SLURM_ARRAY_TASK_ID\nexec {bin} embed --quiet --skip-finished --shard \"$k/{ne}\" --dataset {dataset} --out {embed_dir}/shard-\"$k\" --threads \"${{SLURM_CPUS_PER_TASK:-{cpus}}}\" --cache-dir {cache}/embed-\"$k\"{device} {model}"
    );
    let shards_e: Vec<String> = (0..ne).map(|k| path(l.embed_shard(k))).collect();
    let join = format!(
        "exec {bin} embed-merge --skip-finished {} --out {}",
        shards_e.join(" "),
        path(l.embeddings())
    );
    let compare = format!(
        "k=$SLURM_ARRAY_TASK_ID\nexec {bin} run --quiet --skip-finished --bootstrap 0 --shard \"$k/{nc}\" --embeddings {} --dataset {dataset} --out {compare_dir}/shard-\"$k\" --threads \"${{SLURM_CPUS_PER_TASK:-{cpus}}}\"{device} {run_flags}",
        path(l.embeddings())
    );
    let shards_c: Vec<String> = (0..nc).map(|k| path(l.compare_shard(k))).collect();
    let merge = format!(
        "exec {bin} merge {} --bootstrap 0 {metric} --out {}",
        shards_c.join(" "),
        path(l.report())
    );
    std::fs::create_dir_all(&scripts)
        .map_err(|e| anyhow!("cannot create {}: {e}", scripts.display()))?;
    std::fs::create_dir_all(l.logs())
        .map_err(|e| anyhow!("cannot create {}: {e}", l.logs().display()))?;
    for d in [l.dir.join("embed"), l.dir.join("compare")] {
        std::fs::create_dir_all(&d).map_err(|e| anyhow!("cannot create {}: {e}", d.display()))?;
    }
    let files = [
        (
            "embed.sbatch",
            script(a, &l, "embed", Some(ne), cpus, gpu, &embed)?,
        ),
        (
            "embed_merge.sbatch",
            script(a, &l, "embed-merge", None, 1, false, &join)?,
        ),
        (
            "compare.sbatch",
            script(a, &l, "compare", Some(nc), cpus, gpu, &compare)?,
        ),
        (
            "merge.sbatch",
            script(a, &l, "merge", None, 1, false, &merge)?,
        ),
        ("submit.sh", submit_script()),
    ];
    let plan = serde_json::json!({
        "schema_version": record::SCHEMA_VERSION,
        "dataset": abs(&a.dataset)?.display().to_string(),
        "embed_shards": ne,
        "compare_shards": nc,
        "binary": exe.display().to_string(),
        "report": l.report().display().to_string(),
    });
    let mut all = vec![(PLAN, serde_json::to_vec_pretty(&plan)?)];
    all.extend(files.into_iter().map(|(n, s)| (n, s.into_bytes())));
    for (name, bytes) in all {
        let p = scripts.join(name);
        std::fs::write(&p, bytes).map_err(|e| anyhow!("cannot write {}: {e}", p.display()))?;
        if name.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| anyhow!("cannot make {} executable: {e}", p.display()))?;
        }
    }
    println!(
        "planned {ne} embedding and {nc} comparison shards in {}: submit with {}",
        l.dir.display(),
        scripts.join("submit.sh").display()
    );
    Ok(l.dir)
}

/// `submit.sh`: the four sbatch calls, each depending on the one before (`afterok`, and cancelled
/// if it cannot be satisfied), printing the job ids and keeping them in `jobs.txt`.
fn submit_script() -> String {
    r#"#!/bin/bash
# Written by `facebias slurm plan`: submits the embedding array, the join of its shards, the comparison
# array and the merge, each after the previous one succeeded. Job ids are printed and kept in
# logs/jobs.txt; the report lands in ../report. Extra arguments are passed to every sbatch call.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
id() { sbatch --parsable "$@" | cut -d';' -f1; }
embed=$(id "$@" "$here/embed.sbatch")
join=$(id "$@" --dependency="afterok:$embed" --kill-on-invalid-dep=yes "$here/embed_merge.sbatch")
compare=$(id "$@" --dependency="afterok:$join" --kill-on-invalid-dep=yes "$here/compare.sbatch")
merge=$(id "$@" --dependency="afterok:$compare" --kill-on-invalid-dep=yes "$here/merge.sbatch")
printf 'embed %s\nembed-merge %s\ncompare %s\nmerge %s\n' "$embed" "$join" "$compare" "$merge" | tee "$here/../logs/jobs.txt"
"#
    .to_string()
}

/// What `status` found for one job's output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// `embed 0/3`, `embeddings`, `compare 2/4`, `report`.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Finished (its run.json and files are there).
    pub done: bool,
}

/// The parts of a plan and whether each is finished.
pub fn parts(l: &Layout) -> Vec<Part> {
    let finished = |d: &Path, files: &[&str]| {
        d.join("run.json").is_file() && files.iter().all(|f| d.join(f).is_file())
    };
    let mut v = Vec::new();
    for k in 0..l.embed_shards {
        let d = l.embed_shard(k);
        v.push(Part {
            name: format!("embed {k}/{}", l.embed_shards),
            done: finished(&d, &["samples.csv", "embeddings.npy"]),
            dir: d,
        });
    }
    let d = l.embeddings();
    v.push(Part {
        name: "embed-merge".into(),
        done: finished(&d, &["samples.csv", "embeddings.npy"]),
        dir: d,
    });
    for k in 0..l.compare_shards {
        let d = l.compare_shard(k);
        v.push(Part {
            name: format!("compare {k}/{}", l.compare_shards),
            done: finished(&d, &["comparisons.bin"]),
            dir: d,
        });
    }
    let d = l.report();
    v.push(Part {
        name: "merge".into(),
        done: finished(&d, &["comparisons.bin", "groups.csv"]),
        dir: d,
    });
    v
}

/// Reads a plan folder's layout from its `slurm/plan.json`.
pub fn layout_of(dir: &Path) -> Result<Layout> {
    let p = dir.join("slurm").join(PLAN);
    let plan: serde_json::Value = std::fs::read(&p)
        .map_err(|e| {
            anyhow!(
                "cannot read {}; is {} a `facebias slurm plan` folder?: {e}",
                p.display(),
                dir.display()
            )
        })
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| anyhow!("{}: {e}", p.display())))?;
    let n = |k: &str| {
        plan[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| anyhow!("{} has no {k}", p.display()))
    };
    Ok(Layout {
        dir: dir.to_path_buf(),
        embed_shards: n("embed_shards")?,
        compare_shards: n("compare_shards")?,
    })
}

/// `facebias slurm status`: each job's output, done or missing; fails when something is missing.
pub fn status(a: &SlurmStatusArgs) -> Result<()> {
    let l = layout_of(&a.dir)?;
    let parts = parts(&l);
    for p in &parts {
        println!(
            "{:<14} {:<8} {}",
            p.name,
            if p.done { "done" } else { "missing" },
            p.dir.display()
        );
    }
    let missing: Vec<&str> = parts
        .iter()
        .filter(|p| !p.done)
        .map(|p| p.name.as_str())
        .collect();
    let jobs = l.logs().join("jobs.txt");
    if jobs.is_file() {
        println!(
            "job ids in {}; `squeue`/`sacct` give their queue states",
            jobs.display()
        );
    }
    if missing.is_empty() {
        println!(
            "all {} parts done; the report is {}",
            parts.len(),
            l.report().display()
        );
        Ok(())
    } else {
        bail!(
            "{} of {} parts missing: {}",
            missing.len(),
            parts.len(),
            missing.join(", ")
        )
    }
}
