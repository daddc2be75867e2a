//! What the commands print on the terminal: end-of-run summaries, bench results, probe rankings, model
//! and dataset descriptions. Each function prints one plain result; the commands only call them.

use std::path::Path;

use crate::compare::bench::{BenchOutcome, GpuKernelBench, KernelBench};
use crate::compare::search_bench::SearchBench;
use crate::embed::bench::PipelineBench;
use crate::embed::inspect::ModelInfo;
use crate::embed::probe::Probe;
use crate::embed::spec::ModelSpec;
use crate::manifest::adapters::Adapted;
use crate::metrics::analysis::chart_threshold;
use crate::metrics::groups::{DatasetTotals, GroupCount};
use crate::metrics::{self, Threshold};

/// Everything a run computed, for the summary printed at the end.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The report folder.
    pub out: std::path::PathBuf,
    /// Global thresholds.
    pub thresholds: Vec<Threshold>,
    /// Images, enrolled.
    pub images: usize,
    /// Images with an embedding.
    pub enrolled: usize,
    /// Per-group rates.
    pub rates: Vec<metrics::GroupRate>,
    /// Summary metrics.
    pub equity: Vec<metrics::EquityRow>,
}

/// Prints the end-of-run summary.
pub fn print_run_summary(o: &RunOutcome) {
    println!("report: {}", o.out.display());
    println!(
        "images: {} ({} enrolled, {} failures to enrol)",
        o.images,
        o.enrolled,
        o.images - o.enrolled
    );
    for t in &o.thresholds {
        println!(
            "target FMR {:.0e}: τ = {:.5}, {} false matches / {} non-mated comparisons (FMR {:.3e}){}",
            t.target_fmr,
            t.tau,
            t.false_matches,
            t.comparisons,
            t.fmr,
            if t.supported { "" } else { " — too few comparisons for this target" }
        );
    }
    if let Some(t) = chart_threshold(&o.thresholds) {
        for d in o
            .equity
            .iter()
            .filter(|d| d.target_fmr == t.target_fmr && d.metric == "max_min" && !d.value.is_nan())
        {
            let rel = if d.bound == metrics::Bound::LowerBound {
                "≥ "
            } else {
                ""
            };
            println!(
                "{} {} max/min at FMR {:.0e}: {rel}{:.2} ({})",
                d.attribute, d.rate, t.target_fmr, d.value, d.note
            );
        }
    }
}

/// Seconds of repeated runs as `0.123, 0.125, …`.
fn fmt_runs(seconds: &[f64]) -> String {
    seconds
        .iter()
        .map(|s| format!("{s:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints a `bench-pipeline` result.
pub fn print_pipeline_bench(b: &PipelineBench) {
    println!(
        "pipeline throughput (decode + detect + align + embed), {} images, {} workers, embedding on {}",
        b.images, b.threads, b.execution_provider
    );
    println!("  runs (s): {}", fmt_runs(&b.seconds));
    println!(
        "  median:   {:.3} s = {:.1} images/s",
        b.median_seconds, b.images_per_second
    );
    let c = &b.ceiling;
    println!(
        "  networks alone (1 thread, {} images, median of {} passes): detector {:.2} ms + embedder {:.2} ms an image",
        c.images, c.passes, c.detector_ms, c.embedder_ms
    );
    println!(
        "  inference ceiling on {} workers: {:.1} images/s; this run reaches {:.1} % of it",
        c.workers,
        c.images_per_second,
        100.0 * b.share_of_ceiling
    );
    let s = &b.stages;
    let per = |x: f64| 1000.0 * x / b.images as f64;
    println!(
        "  stage time summed over workers (s): read {:.2}, decode {:.2}, detect {:.2}, align {:.2}, embed {:.2}",
        s.read_s, s.decode_s, s.detect_s, s.align_s, s.embed_s
    );
    println!(
        "  per image (ms): detect {:.2} = prepare {:.2} + network {:.2} + decode/NMS {:.2}; embed {:.2} (network {:.2})",
        per(s.detect_s),
        per(s.detect_prepare_s),
        per(s.detect_infer_s),
        per(s.detect_post_s),
        per(s.embed_s),
        per(s.embed_infer_s)
    );
    println!("  failures to enrol: {}", b.failures);
}

/// Prints a kernel bench result (`facebias bench`).
pub fn print_kernel_bench(b: &BenchOutcome) {
    match b {
        BenchOutcome::Cpu(b) => print_cpu_kernel_bench(b),
        BenchOutcome::Gpu(b) => print_gpu_kernel_bench(b),
        BenchOutcome::Search(b) => print_search_bench(b),
    }
}

fn print_search_bench(b: &SearchBench) {
    println!(
        "1:N search kernel {}: {} probes x {} gallery entries, d = {}, top {}, {} threads",
        b.kernel, b.probes, b.gallery, b.dim, b.candidates, b.threads
    );
    println!("  runs (s): {}", fmt_runs(&b.seconds));
    println!(
        "  median:   {:.3} s  = {:.0} searches/s = {:.3e} scores/s = {:.1} GFLOP/s",
        b.median_seconds, b.searches_per_second, b.scores_per_second, b.gflops
    );
    println!(
        "  measured FMA peak ({}): {:.1} GFLOP/s on {} threads -> {:.1} % of peak",
        b.peak_isa.name(),
        b.peak_gflops,
        b.threads,
        b.percent_of_peak
    );
    if let Some(m) = b.peak_memory_bytes {
        println!("  peak memory: {:.1} MiB", m as f64 / (1 << 20) as f64);
    }
}

fn print_gpu_kernel_bench(b: &GpuKernelBench) {
    println!(
        "all-pairs kernel {} on {}: n = {}, d = {}, {} groups, {} pairs",
        b.kernel, b.device, b.n, b.dim, b.groups, b.pairs
    );
    println!("  runs (s, end to end): {}", fmt_runs(&b.seconds));
    println!(
        "  median:   {:.3} s  = {:.3e} pairs/s = {:.1} GFLOP/s",
        b.median_seconds, b.pairs_per_second, b.gflops
    );
    let share = |peak: Option<f64>, pct: Option<f64>, what: &str| match (peak, pct) {
        (Some(p), Some(s)) => println!("  {what} peak: {:.1} TFLOP/s -> {s:.1} % of peak", p / 1e3),
        _ => println!("  {what} peak: unknown for this device"),
    };
    share(b.fp32_peak_gflops, b.percent_of_fp32_peak, "fp32");
    share(
        b.tensor_peak_gflops,
        b.percent_of_tensor_peak,
        "16-bit tensor-core (not used by this kernel)",
    );
    println!(
        "  CPU kernel {} (n = {}, {} threads): {:.3e} pairs/s -> GPU is {:.1}x faster",
        b.cpu_kernel, b.cpu_n, b.cpu_threads, b.cpu_pairs_per_second, b.speedup_vs_cpu
    );
}

fn print_cpu_kernel_bench(b: &KernelBench) {
    println!(
        "all-pairs kernel {}: n = {}, d = {}, {} groups, {} threads, {} pairs",
        b.kernel, b.n, b.dim, b.groups, b.threads, b.pairs
    );
    println!("  runs (s): {}", fmt_runs(&b.seconds));
    println!(
        "  median:   {:.3} s  = {:.3e} pairs/s = {:.1} GFLOP/s",
        b.median_seconds, b.pairs_per_second, b.gflops
    );
    println!(
        "  measured FMA peak ({}): {:.1} GFLOP/s on {} threads (before {:.1}, after {:.1}) -> {:.1} % of peak",
        b.peak_isa,
        b.peak_gflops,
        b.threads,
        b.peak_before_gflops,
        b.peak_after_gflops,
        b.percent_of_peak
    );
    if let Some(w) = &b.peak_warning {
        println!("  warning: {w}");
    }
    println!(
        "  scalar per-pair baseline (n = {}): {:.3e} pairs/s -> kernel is {:.1}x faster",
        b.scalar_n, b.scalar_pairs_per_second, b.speedup_vs_scalar
    );
    if let Some(m) = b.peak_memory_bytes {
        println!("  peak memory: {:.1} MiB", m as f64 / (1 << 20) as f64);
    }
}

/// Prints the probe's ranking of candidate preprocessings (best first).
pub fn print_probe_ranking(p: &Probe) {
    println!(
        "probe ranking on {} sanity images ({} candidates, best first by FNMR at FMR 1e-3, then d′; the 15 best shown):",
        p.images,
        p.ranking.len()
    );
    for (i, c) in p.ranking.iter().take(15).enumerate() {
        let s = &c.separation;
        println!(
            "{:>3}. {:<44} FNMR@FMR1e-3 {:.3}  d′ {:>6.3}  AUC {:.4}  mated mean {:.3}  non-mated mean {:.3}",
            i + 1,
            c.name,
            s.fnmr_at_gate_fmr,
            s.d_prime,
            s.auc,
            s.mated_mean,
            s.nonmated_mean
        );
    }
    if !p.confirmed.is_empty() {
        println!(
            "confirmed on all {} sanity images, in the order chosen: those within one standard error of the best FNMR, least-modified crop first, then the rest by FNMR (×s = crop scale, ±o = vertical crop offset):",
            p.confirmed_images
        );
        for (i, c) in p.confirmed.iter().enumerate() {
            let s = &c.separation;
            println!(
                "{:>3}. {:<44} FNMR@FMR1e-3 {:.3}  d′ {:>6.3}  AUC {:.4}",
                i + 1,
                c.name,
                s.fnmr_at_gate_fmr,
                s.d_prime,
                s.auc
            );
        }
    }
    if let (Some(a), Some(b)) = (p.ranking.first(), p.ranking.get(1)) {
        println!(
            "on the search's images: {} candidate(s) within {} FNMR of the best; the second, {}, is {:.3} FNMR behind",
            p.flat,
            crate::embed::probe::FLAT_FNMR,
            b.name,
            b.separation.fnmr_at_gate_fmr - a.separation.fnmr_at_gate_fmr
        );
    }
}

/// Prints what `facebias inspect` found in a model file.
pub fn print_model_info(info: &ModelInfo) {
    println!("model:     {}", info.path);
    println!("size:      {} bytes", info.bytes);
    println!("sha256:    {}", info.sha256);
    println!("ir:        {}", info.ir_version);
    println!(
        "opsets:    {}",
        info.opsets
            .iter()
            .map(|o| format!("{} {}", o.domain, o.version))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("producer:  {}", info.producer);
    for (kind, list) in [("input", &info.inputs), ("output", &info.outputs)] {
        for io in list {
            println!(
                "{kind:<10} {} {} [{}]",
                io.name,
                io.dtype,
                io.shape.join(", ")
            );
        }
    }
}

/// Prints the catalogue entry a model file matched, or how to run it without one.
pub fn print_catalogue_match(matched: Option<&ModelSpec>) {
    match matched {
        Some(m) => println!(
            "catalogue: {} ({}; {} {}x{} {:?} {:?}, pixel_scale {}, mean {:?}, std {:?}, template {:?})",
            m.name, m.role, m.input, m.size, m.size, m.layout, m.color, m.pixel_scale, m.mean, m.std, m.template
        ),
        None => println!("catalogue: no entry has this sha256; run it with --spec FILE.toml or the preprocessing flags (see `facebias run --help`)"),
    }
}

/// Prints the dataset adapters and the layouts they read.
pub fn print_adapters() {
    println!("adapters (--adapter; `auto` picks one from the layout):");
    for (name, layout) in crate::manifest::adapters::LAYOUTS {
        println!("  {name:<9} {layout}");
    }
}

/// Prints one dataset's counts per group (`facebias datasets DIR`).
pub fn print_dataset_counts(
    path: &Path,
    adapted: &Adapted,
    totals: &DatasetTotals,
    counts: &[GroupCount],
) {
    let t = totals;
    println!("dataset {} (adapter {:?}): {} images, {} subjects ({} with ≥ 2 images), {} mated and {} non-mated comparisons", path.display(), adapted.adapter, t.images, t.subjects, t.subjects_with_pairs, t.mated_comparisons, t.nonmated_comparisons);
    for w in &adapted.manifest.warnings {
        println!("warning: {}", w.message);
    }
    println!(
        "{:<18} {:<22} {:>7} {:>8} {:>9} {:>12} {:>14} {:>11}",
        "attribute", "group", "images", "subjects", "subj≥2", "mated", "non-mated", "lowest FMR"
    );
    for c in counts {
        println!(
            "{:<18} {:<22} {:>7} {:>8} {:>9} {:>12} {:>14} {:>11}",
            c.attribute,
            c.group,
            c.images,
            c.subjects,
            c.subjects_with_pairs,
            c.mated_comparisons,
            c.nonmated_comparisons,
            if c.lowest_fmr.is_finite() {
                format!("{:.0e}", c.lowest_fmr)
            } else {
                "–".into()
            }
        );
    }
    if let Some(p) = &adapted.pairs {
        println!(
            "pair protocol `{}`: {} pairs ({} mated), {} listed pairs not in the dataset",
            p.name,
            p.pairs.len(),
            p.pairs.iter().filter(|x| x.mated).count(),
            p.missing
        );
    }
    println!("(lowest FMR: the rate at which a group still expects 10 false matches among its non-mated comparisons)");
}
