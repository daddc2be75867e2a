//! Command-line interface (clap derive). Raw arguments are turned into validated configurations by
//! [`crate::commands`]; this module only declares and documents them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::embed::spec::Template;
use crate::preprocess::detect::FaceSelect;
use crate::preprocess::tensor::{ColorOrder, Layout};

/// facebias: measure how a face-recognition model's error rates differ across demographic groups.
#[derive(Debug, Parser)]
#[command(name = "facebias", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a model over a labelled dataset and write a demographic-differential report.
    Run(RunArgs),
    /// Merge the folders of a sharded run (`run --shard k/n`) into the full report.
    Merge(MergeArgs),
    /// Re-render a run folder's metrics and charts from its saved comparisons (no model, no rescoring).
    Report(ReportArgs),
    /// The demo: MobileFaceNet + YuNet over ../shared/datasets/bfw, report in reports/demo.
    Demo(DemoArgs),
    /// Embed a dataset only: samples.csv and embeddings.npy (and optionally the model input tensors).
    Embed(EmbedArgs),
    /// Join the folders of a sharded embed (`embed --shard k/n`) into one embed folder.
    EmbedMerge(EmbedMergeArgs),
    /// Run on a Slurm cluster: `plan` writes the sbatch scripts of a sharded run, `status` says what is done.
    #[command(subcommand)]
    Slurm(SlurmCommand),
    /// 1:N identification: split the dataset into a gallery and searches, search, per-group FNIR/FPIR.
    Identify(IdentifyArgs),
    /// Models side by side on one dataset: run each (or read finished runs), one comparison report.
    Compare(CompareArgs),
    /// List the dataset adapters, or validate a dataset and count its comparisons per group.
    Datasets(DatasetsArgs),
    /// Show an ONNX model's inputs, outputs, opset, producer, sha256 and catalogue match (and probe its preprocessing).
    Inspect(InspectArgs),
    /// Audit a model file in one command: inspect, probe when it has no spec, sanity gate, run, report.
    Audit(AuditArgs),
    /// Benchmark the matching kernel: measured FMA peak, pairs/s, GFLOP/s, % of peak, scalar baseline.
    Bench(KernelBenchArgs),
    /// Measure pipeline throughput (decode + detect + align + embed, images/s) on a dataset.
    BenchPipeline(BenchArgs),
}

/// Where the model is and how to feed it.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Embedding model: a catalogue name (see models/models.toml, e.g. `mobilefacenet`) or a path to an .onnx file.
    #[arg(long, default_value = "mobilefacenet")]
    pub model: String,
    /// Folder holding the catalogue's model files [default: $FACEBIAS_MODELS, then ../shared/models].
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// YuNet face detector with dynamic input size [default: catalogue `yunet-dynamic` in the models folder].
    #[arg(long)]
    pub detector: Option<PathBuf>,
    /// ONNX Runtime shared library (libonnxruntime.so.1.31.1) [default: $ORT_DYLIB_PATH, then the python3 onnxruntime package].
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// A TOML model spec (the fields of a models/models.toml entry) for a model that is not in the catalogue.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Override: input tensor name.
    #[arg(long)]
    pub input_name: Option<String>,
    /// Override: output tensor name.
    #[arg(long)]
    pub output_name: Option<String>,
    /// Override: square input side in pixels.
    #[arg(long)]
    pub input_size: Option<u32>,
    /// Override: tensor layout.
    #[arg(long, value_enum)]
    pub layout: Option<Layout>,
    /// Override: channel order.
    #[arg(long, value_enum)]
    pub color: Option<ColorOrder>,
    /// Override: factor applied to 0..255 pixels before the mean (e.g. 0.00392157 for x/255).
    #[arg(long)]
    pub pixel_scale: Option<f32>,
    /// Override: per-channel mean, three comma-separated values (`--mean 127.5,127.5,127.5`).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub mean: Option<Vec<f32>>,
    /// Override: per-channel std, three comma-separated values (`--std 128,128,128`).
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// Override: crop template family (arcface112, dlib, box, points, none).
    #[arg(long, value_enum)]
    pub template: Option<Template>,
    /// Override: crop side relative to the template's (> 1: wider, more context).
    #[arg(long, allow_hyphen_values = true)]
    pub crop_scale: Option<f64>,
    /// Override: downward shift of the crop window, as a fraction of its side.
    #[arg(long, allow_hyphen_values = true)]
    pub crop_offset_y: Option<f64>,
    /// Override: dlib face-chip padding (template dlib).
    #[arg(long, allow_hyphen_values = true)]
    pub padding: Option<f64>,
    /// Detection canvas: images are scaled so their longer side has this many pixels before detection
    /// (640 reproduces OpenCV's letterbox and the reference landmarks; smaller is faster, less precise).
    #[arg(long, default_value_t = 640)]
    pub detect_size: u32,
    /// Largest factor by which an image is upscaled for detection (tight crops detect worse when blown up).
    #[arg(long, default_value_t = 2.5)]
    pub detect_max_upscale: f32,
    /// Which face to keep when the detector finds several.
    #[arg(long, value_enum, default_value = "center")]
    pub face_select: FaceSelect,
    /// Run a model the catalogue marks unusable (e.g. embeddings that barely depend on the input); the
    /// run record and pages say so.
    #[arg(long)]
    pub allow_unusable: bool,
}

impl ModelArgs {
    /// The defaults of every flag, for `model` (a catalogue name or a path).
    pub fn named(model: impl Into<String>) -> ModelArgs {
        ModelArgs {
            model: model.into(),
            models_dir: None,
            detector: None,
            ort_lib: None,
            spec: None,
            input_name: None,
            output_name: None,
            input_size: None,
            layout: None,
            color: None,
            pixel_scale: None,
            mean: None,
            std: None,
            template: None,
            crop_scale: None,
            crop_offset_y: None,
            padding: None,
            face_select: FaceSelect::Center,
            detect_size: 640,
            detect_max_upscale: 2.5,
            allow_unusable: false,
        }
    }
}

/// Execution settings shared by the commands that embed images.
#[derive(Debug, Args, Clone)]
pub struct ExecArgs {
    /// Parallel workers (each runs single-threaded ONNX Runtime sessions) [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Images per inference call for models with a dynamic batch dimension (fixed-batch models use 1).
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Embedding cache folder [default: $XDG_CACHE_HOME/facebias or ~/.cache/facebias].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Do not read or write the embedding cache.
    #[arg(long)]
    pub no_cache: bool,
    /// No progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Where the work runs: cpu, cuda, cuda:N, or auto. Embedding runs on ONNX Runtime's CUDA execution
    /// provider (needs the onnxruntime-gpu wheel's library); the comparison kernel (and identify's
    /// search) runs on the GPU through the NVIDIA driver and NVRTC (the nvidia-cuda-nvrtc wheel). `auto` uses the GPU for each
    /// stage that can, else the CPU, with a note in run.json; `cuda` stops at once when a stage cannot.
    #[arg(long, default_value = "cpu", value_parser = |s: &str| s.parse::<crate::runtime::Device>())]
    pub device: crate::runtime::Device,
    /// Images whose header claims more pixels than this are not decoded but counted as `too_large`
    /// (a decompression bomb of a few hundred bytes can claim 65000x65000); bounds each worker's
    /// decode memory to about 12 bytes a pixel of it.
    #[arg(long, default_value_t = crate::preprocess::DEFAULT_MAX_PIXELS, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_image_pixels: u64,
}

/// Arguments of `run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Dataset: a manifest CSV (`path,subject,<attributes…>`) or a folder holding manifest.csv.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Report folder (created; an earlier report there is replaced, any other non-empty folder is refused).
    #[arg(long)]
    pub out: PathBuf,
    /// Target FMRs for the global thresholds, comma-separated [default: 1e-2,1e-3,1e-4, plus 1e-5 and 1e-6 when there are enough non-mated comparisons for 30 expected false matches].
    #[arg(long, value_delimiter = ',')]
    pub target_fmr: Option<Vec<f64>>,
    /// Attribute columns to analyse, comma-separated [default: all attribute columns of the manifest].
    #[arg(long, value_delimiter = ',')]
    pub attributes: Option<Vec<String>>,
    /// How to read the dataset [default: detected from its layout; see `facebias datasets`].
    #[arg(long, value_enum, default_value = "auto")]
    pub adapter: crate::manifest::adapters::Adapter,
    /// Compute only shard K of N (0-based, e.g. `--shard 2/8`): a deterministic share of the pair blocks,
    /// saved as partial histograms in --out; `facebias merge` adds the N folders into the full report.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<crate::compare::kernel::Shard>,
    /// Start from a finished `facebias embed` folder (or the `embed-merge` of its shards) instead of
    /// the images: its embeddings.npy is memory-mapped, and neither the images nor the model are read
    /// (the model, detector and runtime recorded are the folder's). Its samples must be the dataset's.
    #[arg(long)]
    pub embeddings: Option<PathBuf>,
    /// Do nothing when --out already holds this finished job (same shard, manifest, attributes,
    /// model, spec and exclusions in its run.json): a rerun of a finished shard is a no-op.
    #[arg(long)]
    pub skip_finished: bool,
    /// Storage precision of the embeddings in the GPU comparison kernel (accumulation is always fp32):
    /// fp32 gives results bit-identical to the CPU kernel; bf16 / fp16 halve the GPU memory and move
    /// each score by at most about 2^-7 / 2^-10. Reduced precision needs --device cuda (or auto with a GPU).
    #[arg(long, value_enum, default_value = "fp32")]
    pub precision: crate::compare::gpu::Precision,
    /// CPU comparison kernel, by its recorded name (avx512f-14x32, avx2-fma-6x16, portable-6x16,
    /// scalar) [default: the fastest this CPU supports, in that order]. The tiled kernels give
    /// bit-identical results, so shards computed with different ones merge.
    #[arg(long, value_enum)]
    pub kernel: Option<crate::compare::kernel::Kernel>,
    /// Pairs to leave out of every count, judged label errors (one person under two identities,
    /// duplicates): a CSV with columns `path_a,path_b` naming images as the manifest does — the layout
    /// of top_impostors.csv, so rows can be copied from it. Recorded in run.json, stated on the page.
    #[arg(long)]
    pub exclude_pairs: Option<PathBuf>,
    /// Metric and uncertainty settings.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// Model selection and preprocessing.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Execution settings.
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Set by `audit`: its verdict for run.json and the page, and its files for the report folder.
    #[arg(skip)]
    pub audit: Option<crate::report::audit::AuditAttachment>,
    /// Set by `demo`: a 1:N identification run written into the report's `identification/` folder
    /// and summarised on its page.
    #[arg(skip)]
    pub identify: Option<Box<IdentifyArgs>>,
    /// Set by `demo`: a model comparison written into the report's `models/` folder and summarised
    /// on its page.
    #[arg(skip)]
    pub compare: Option<Box<CompareArgs>>,
}

/// Parses `K/N` with `0 ≤ K < N`.
pub fn parse_shard(s: &str) -> Result<crate::compare::kernel::Shard, String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard `{s}`: expected K/N, e.g. 0/4"))?;
    let index: usize = k
        .trim()
        .parse()
        .map_err(|_| format!("--shard `{s}`: K is not a number"))?;
    let count: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard `{s}`: N is not a number"))?;
    if count == 0 || index >= count {
        return Err(format!(
            "--shard `{s}`: need 0 ≤ K < N (shards are numbered from 0)"
        ));
    }
    Ok(crate::compare::kernel::Shard { index, count })
}

/// Arguments of `merge`.
#[derive(Debug, Args, Clone)]
pub struct MergeArgs {
    /// The shard folders (each the --out of `facebias run --shard k/n`), all N of them.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Folder of the merged report.
    #[arg(long)]
    pub out: PathBuf,
    /// Metric settings (a merged run has no bootstrap intervals).
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// Arguments of `report`.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// A run folder (holding run.json and comparisons.bin).
    pub run_dir: PathBuf,
    /// Target FMRs for the global thresholds [default: those of the run].
    #[arg(long, value_delimiter = ',')]
    pub target_fmr: Option<Vec<f64>>,
    /// α, the weight of FMR against FNMR in FDR, inequity rate and GARBE [default: the run's].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Subject-bootstrap replicates for the 95 % intervals (0: none) [default: the run's].
    #[arg(long)]
    pub bootstrap: Option<usize>,
    /// Seed of the bootstrap's random draws [default: the run's].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Reference group for the `reference` policy and the relative charts [default: the run's].
    #[arg(long)]
    pub reference_group: Option<String>,
}

impl ReportArgs {
    /// The metric settings: each flag given, else the run's own (its run.json `bootstrap` block), else
    /// the defaults.
    pub fn analysis(&self, record: &serde_json::Value) -> AnalysisArgs {
        let b = &record["bootstrap"];
        let d = AnalysisArgs::default();
        AnalysisArgs {
            alpha: self.alpha.or(b["alpha"].as_f64()).unwrap_or(d.alpha),
            bootstrap: self
                .bootstrap
                .or(b["replicates"].as_u64().map(|v| v as usize))
                .unwrap_or(d.bootstrap),
            seed: self.seed.or(b["seed"].as_u64()).unwrap_or(d.seed),
            reference_group: self
                .reference_group
                .clone()
                .or(b["reference_group"].as_str().map(String::from)),
        }
    }
}

/// Summary-metric weight and confidence intervals.
#[derive(Debug, Args, Clone)]
pub struct AnalysisArgs {
    /// α, the weight of FMR against FNMR in FDR, inequity rate and GARBE.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// Subject-bootstrap replicates for the 95 % intervals (0: no intervals).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap's random draws.
    #[arg(long, default_value_t = 8280)]
    pub seed: u64,
    /// Reference group for the `reference` threshold policy and the relative-FMR chart, as its label
    /// (e.g. `white`, or `male|white` in an intersection) [default: each grouping's lowest-FMR group].
    #[arg(long)]
    pub reference_group: Option<String>,
}

impl Default for AnalysisArgs {
    fn default() -> Self {
        AnalysisArgs {
            alpha: 0.5,
            bootstrap: 1000,
            seed: 8280,
            reference_group: None,
        }
    }
}

/// Arguments of `demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Dataset of the demo.
    #[arg(long, default_value = "../shared/datasets/bfw")]
    pub dataset: PathBuf,
    /// Report folder of the demo.
    #[arg(long, default_value = "reports/demo")]
    pub out: PathBuf,
    /// Folder holding the shared models.
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// ONNX Runtime shared library.
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// Execution settings.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// Arguments of `embed`.
#[derive(Debug, Args, Clone)]
pub struct EmbedArgs {
    /// Dataset: a manifest CSV or a folder holding manifest.csv.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the model input tensors as tensors.npy ([rows, values per image], float32), for parity checks.
    #[arg(long)]
    pub dump_tensors: bool,
    /// Embed only shard K of N (0-based, e.g. `--shard 1/3`): the K-th of N contiguous shares of the
    /// manifest's rows, into its own --out; `facebias embed-merge` joins the N folders into the
    /// samples.csv and embeddings.npy of an unsharded embed, byte for byte.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<crate::compare::kernel::Shard>,
    /// Do nothing when --out already holds this finished job (same shard, manifest, model, spec and
    /// detector in its run.json): a rerun of a finished shard is a no-op (Slurm requeues, pre-emption).
    #[arg(long)]
    pub skip_finished: bool,
    /// Model selection and preprocessing.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Execution settings.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// Arguments of `embed-merge`.
#[derive(Debug, Args, Clone)]
pub struct EmbedMergeArgs {
    /// The shard folders (each the --out of `facebias embed --shard k/n`), all N of them.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Folder of the joined embed (samples.csv, embeddings.npy, run.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Do nothing when --out already holds the join of these shards.
    #[arg(long)]
    pub skip_finished: bool,
}

/// `facebias slurm …`.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum SlurmCommand {
    /// Write the sbatch scripts (embedding array, join, comparison array, merge) and submit.sh into --out.
    Plan(SlurmPlanArgs),
    /// Which shards of a plan folder are done and which are missing (exit 1 while any is missing).
    Status(SlurmStatusArgs),
}

/// Arguments of `slurm plan`.
#[derive(Debug, Args, Clone)]
pub struct SlurmPlanArgs {
    /// Dataset: a manifest CSV or a folder holding manifest.csv (seen by every node at this path).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Plan folder: slurm/ (scripts), logs/, embed/, embeddings/, compare/ and the merged report/.
    #[arg(long)]
    pub out: PathBuf,
    /// Embedding shards (the embed job array's size).
    #[arg(long)]
    pub embed_shards: usize,
    /// Comparison shards (the compare job array's size).
    #[arg(long)]
    pub compare_shards: usize,
    /// Slurm partition of every job [default: the cluster's].
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each job (sbatch --time, e.g. 02:00:00) [default: the partition's].
    #[arg(long)]
    pub time: Option<String>,
    /// GPUs of each embedding and comparison job (sbatch --gpus); they then run with --device cuda.
    #[arg(long)]
    pub gpus: Option<String>,
    /// Memory of each job (sbatch --mem, e.g. 8G) [default: the partition's].
    #[arg(long)]
    pub mem: Option<String>,
    /// CPUs of each embedding and comparison job (sbatch --cpus-per-task; the jobs' --threads).
    #[arg(long, default_value_t = 4)]
    pub cpus_per_task: usize,
    /// Target FMRs, as for `run`.
    #[arg(long, value_delimiter = ',')]
    pub target_fmr: Option<Vec<f64>>,
    /// Attribute columns to analyse, as for `run`.
    #[arg(long, value_delimiter = ',')]
    pub attributes: Option<Vec<String>>,
    /// Pairs to leave out of every count, as for `run`.
    #[arg(long)]
    pub exclude_pairs: Option<PathBuf>,
    /// Metric settings (a merged run has no bootstrap intervals).
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// Model selection and preprocessing.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Arguments of `slurm status`.
#[derive(Debug, Args, Clone)]
pub struct SlurmStatusArgs {
    /// A plan folder (the --out of `facebias slurm plan`).
    pub dir: PathBuf,
}

/// Arguments of `compare`.
#[derive(Debug, Args, Clone)]
pub struct CompareArgs {
    /// Models to run and compare, comma-separated (catalogue names or .onnx files with a catalogue
    /// entry), each into its own report folder inside --out; needs --dataset.
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Finished `run` folders of one dataset to compare instead (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub runs: Vec<PathBuf>,
    /// Dataset (with --models): a manifest CSV or a folder holding manifest.csv.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// Comparison report folder (models.csv, index.html, and one folder per model with --models).
    #[arg(long)]
    pub out: PathBuf,
    /// With --models: restrict every model to the images all of them enrolled, so that failures to
    /// enrol do not tilt the comparison (the images left out are counted).
    #[arg(long)]
    pub common_enrolled: bool,
    /// Target FMRs, comma-separated [default: 1e-2,1e-3,1e-4,1e-5,1e-6 where supported].
    #[arg(long, value_delimiter = ',')]
    pub target_fmr: Option<Vec<f64>>,
    /// Largest FNMR at the sanity set's FMR 1e-3 threshold a model may have to be compared.
    #[arg(long, default_value_t = 0.5)]
    pub max_sanity_fnmr: f64,
    /// Sanity set for the gate: `lfw`, `bfw` (the committed lists) or a manifest/folder
    /// [default: lfw, or bfw when the dataset is LFW].
    #[arg(long)]
    pub sanity: Option<PathBuf>,
    /// Folder holding the catalogue's model files [default: $FACEBIAS_MODELS, then ../shared/models].
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// ONNX Runtime shared library.
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// Metric settings (bootstrap replicates and seed).
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// Execution settings.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// Arguments of `identify`.
#[derive(Debug, Args, Clone)]
pub struct IdentifyArgs {
    /// Dataset: a manifest CSV or a folder holding manifest.csv.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Report folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Share of each finest group's subjects enrolled in the gallery (one image each); the rest search
    /// without a mate.
    #[arg(long, default_value_t = 0.5)]
    pub enrolled_fraction: f64,
    /// Candidate list length L (NIST's default 50).
    #[arg(long, default_value_t = 50)]
    pub candidates: usize,
    /// Target FPIRs for the global thresholds, comma-separated (each needs at least 1/target non-mated
    /// searches) [default: 0.1,0.01,0.001].
    #[arg(long, value_delimiter = ',')]
    pub target_fpir: Option<Vec<f64>>,
    /// Seed of the split, the gallery order and the bootstrap.
    #[arg(long, default_value_t = 8280)]
    pub seed: u64,
    /// Datasets whose images join the gallery only (comma-separated manifests or folders, e.g.
    /// ../shared/datasets/lfw,../shared/datasets/utkface); identical files of the searched set are dropped and counted.
    #[arg(long, value_delimiter = ',')]
    pub distractors: Vec<PathBuf>,
    /// Nested gallery sizes (entries), comma-separated, `all` for the whole gallery; each holds every
    /// enrolled mate [default: the mates, then 1000, 2000, 5000, … below the whole gallery, then all].
    #[arg(long, value_delimiter = ',')]
    pub gallery_sizes: Option<Vec<crate::manifest::gallery::Size>>,
    /// Re-weight the distractors' make-up along the nested galleries: `ATTRIBUTE:LABEL=SHARE,…`
    /// (e.g. `race:white=0.8`: every gallery size's distractors 80 % white, as far as the pool allows).
    #[arg(long)]
    pub gallery_mix: Option<String>,
    /// Calibrate each threshold on this group's non-mated searches (its label, e.g. `white` or
    /// `male|white`) and apply it to all, as NIST's 1:N demographic tables do [default: all non-mated searches].
    #[arg(long)]
    pub reference_group: Option<String>,
    /// Subject-bootstrap replicates for the 95 % intervals (0: none).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Keep distractor identities that the overlap screen flags as the same person as a searched
    /// subject (two or more of the subject's images match them at the 1-in-1000 impostor level); by
    /// default they leave the gallery, listed in overlap.csv.
    #[arg(long)]
    pub keep_overlap: bool,
    /// Write candidates.csv for every gallery size, not only the largest (it grows with sizes × searches × L).
    #[arg(long)]
    pub candidates_at_every_size: bool,
    /// Model selection and preprocessing.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Execution settings.
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// Arguments of `inspect`.
#[derive(Debug, Args, Clone)]
pub struct InspectArgs {
    /// The .onnx file (or a catalogue name).
    pub model: String,
    /// Folder holding catalogue model files.
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// ONNX Runtime shared library.
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Try the plausible preprocessings on a labelled sanity set and rank them; write the best as a spec.
    #[arg(long)]
    pub probe: bool,
    /// Labelled sanity set for --probe: `lfw` or `bfw` (600 committed images of 200 subjects over
    /// ../shared/datasets), a manifest, a folder with manifest.csv, or a folder of images named
    /// `<subject>-<n>.jpg` / `<subject>_<n>.jpg`.
    #[arg(long, default_value = "lfw")]
    pub sanity: PathBuf,
    /// Where --probe writes the chosen spec [default: <model file stem>.spec.toml in the current folder].
    #[arg(long)]
    pub spec_out: Option<PathBuf>,
    /// YuNet detector for --probe [default: catalogue `yunet-dynamic`].
    #[arg(long)]
    pub detector: Option<PathBuf>,
}

/// Arguments of `datasets`.
#[derive(Debug, Args, Clone)]
pub struct DatasetsArgs {
    /// A dataset to validate and count (omit to list the adapters).
    pub dataset: Option<PathBuf>,
    /// How to read it.
    #[arg(long, value_enum, default_value = "auto")]
    pub adapter: crate::manifest::adapters::Adapter,
    /// Attribute columns to count, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub attributes: Option<Vec<String>>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `audit`.
#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    /// The model file to audit.
    pub model: PathBuf,
    /// Dataset: a manifest CSV or a folder holding manifest.csv.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Report folder.
    #[arg(long)]
    pub out: PathBuf,
    /// A spec TOML for the model [default: the catalogue entry matching its sha256, else the probe's choice].
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Labelled sanity set (see `inspect --sanity`) [default: `lfw`, or `bfw` when auditing on LFW:
    /// never the dataset audited].
    #[arg(long)]
    pub sanity: Option<PathBuf>,
    /// Treat the model as unknown even when its sha256 is in the catalogue (probe it instead).
    #[arg(long)]
    pub no_catalogue: bool,
    /// The gate: highest acceptable FNMR on the sanity set at its FMR 1e-3 threshold.
    #[arg(long, default_value_t = 0.5)]
    pub max_sanity_fnmr: f64,
    /// Run the audit even when the sanity check fails, or with a --spec written for another file
    /// (both recorded in sanity.json and on the report).
    #[arg(long)]
    pub force: bool,
    /// Target FMRs, comma-separated (as for `run`).
    #[arg(long, value_delimiter = ',')]
    pub target_fmr: Option<Vec<f64>>,
    /// Folder holding catalogue model files (for the detector).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// YuNet detector [default: catalogue `yunet-dynamic`].
    #[arg(long)]
    pub detector: Option<PathBuf>,
    /// ONNX Runtime shared library.
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// Execution settings.
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Metric and uncertainty settings.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// Arguments of `bench` (the matching kernel on synthetic embeddings).
#[derive(Debug, Args, Clone)]
pub struct KernelBenchArgs {
    /// Number of embeddings (all n(n−1)/2 pairs are scored).
    #[arg(long, default_value_t = 20_000)]
    pub n: usize,
    /// Embedding length.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Demographic groups (histogram cells = groups·(groups+1)/2).
    #[arg(long, default_value_t = 8)]
    pub groups: usize,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Kernel to measure, by its recorded name (scalar, portable-6x16, avx2-fma-6x16, avx512f-14x32)
    /// [default: the fastest this CPU supports].
    #[arg(long, value_enum)]
    pub kernel: Option<BenchKernel>,
    /// Embeddings for the scalar per-pair baseline (kept smaller: it is slow), reported as pairs/s.
    #[arg(long, default_value_t = 4000)]
    pub scalar_n: usize,
    /// Where the kernel runs: cpu, cuda, cuda:N, or auto (the GPU when one can be opened). On a GPU the
    /// report gives pairs/s, the share of the device's fp32 and tensor-core peaks, and the CPU kernel
    /// on --cpu-n embeddings in the same process as the baseline.
    #[arg(long, default_value = "cpu", value_parser = |s: &str| s.parse::<crate::runtime::Device>())]
    pub device: crate::runtime::Device,
    /// Storage precision of the embeddings in the GPU kernel (fp32, bf16, fp16; accumulation is fp32).
    #[arg(long, value_enum, default_value = "fp32")]
    pub precision: crate::compare::gpu::Precision,
    /// GPU bench: embeddings for the CPU-kernel baseline.
    #[arg(long, default_value_t = 20_000)]
    pub cpu_n: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Measure the 1:N search kernel instead: --probes probes against a gallery of --gallery synthetic
    /// unit vectors, the top --candidates of each; reports seconds, searches/s, scores/s, GFLOP/s
    /// (2·probes·gallery·d) and % of the measured FMA peak of the widest instruction set.
    #[arg(long)]
    pub search: bool,
    /// Search: number of probes (with --search only).
    #[arg(long, default_value_t = 10_000)]
    pub probes: usize,
    /// Search: gallery entries (with --search only).
    #[arg(long, default_value_t = 100_000)]
    pub gallery: usize,
    /// Search: candidates kept per probe, L (with --search only).
    #[arg(long, default_value_t = 50)]
    pub candidates: usize,
}

/// A kernel named by `bench --kernel`, by the name run.json and the bench record: the all-pairs kernels
/// ([`crate::compare::kernel::Kernel`]) and, with `--search`, the 1:N search kernels
/// ([`crate::compare::search::SearchKernel`]). The short names of earlier versions (`portable`,
/// `avx2-fma`, `avx512f`) are accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "kebab-case")]
pub enum BenchKernel {
    /// The per-pair reference (`scalar`).
    Scalar,
    /// The tiling in portable Rust (`portable-6x16`).
    #[value(name = "portable-6x16", alias = "portable")]
    Portable,
    /// AVX2 + FMA intrinsics (`avx2-fma-6x16`).
    #[value(name = "avx2-fma-6x16", alias = "avx2-fma")]
    Avx2Fma,
    /// AVX-512F intrinsics: the 14×32 all-pairs tile and, with --search, the 14×32 search tile
    /// (both `avx512f-14x32`).
    #[value(name = "avx512f-14x32", alias = "avx512f")]
    Avx512f,
}

impl BenchKernel {
    /// The all-pairs kernel of this name.
    pub fn all_pairs(self) -> crate::compare::kernel::Kernel {
        use crate::compare::kernel::Kernel;
        match self {
            BenchKernel::Scalar => Kernel::Scalar,
            BenchKernel::Portable => Kernel::Portable,
            BenchKernel::Avx2Fma => Kernel::Avx2Fma,
            BenchKernel::Avx512f => Kernel::Avx512f,
        }
    }

    /// The search kernel of this name.
    pub fn search(self) -> crate::compare::search::SearchKernel {
        use crate::compare::search::SearchKernel;
        match self {
            BenchKernel::Scalar => SearchKernel::Scalar,
            BenchKernel::Portable => SearchKernel::Portable,
            BenchKernel::Avx2Fma => SearchKernel::Avx2Fma,
            BenchKernel::Avx512f => SearchKernel::Avx512f,
        }
    }
}

/// Arguments of `bench-pipeline`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Dataset whose images are embedded.
    #[arg(long, default_value = "../shared/datasets/bfw")]
    pub dataset: PathBuf,
    /// Number of images (the first N rows).
    #[arg(long, default_value_t = 1000)]
    pub images: usize,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Model selection and preprocessing.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Parallel workers [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the embedding model runs: cpu, cuda, cuda:N, or auto (as for `run`).
    #[arg(long, default_value = "cpu", value_parser = |s: &str| s.parse::<crate::runtime::Device>())]
    pub device: crate::runtime::Device,
}
