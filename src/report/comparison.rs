//! The model-comparison report: `models.csv` (one row per model, grouping and target), charts per
//! grouping at FMR 1e-3 (per-group FMR and FNMR by model, accuracy against differential), the
//! models the sanity gate stopped and why, `summary.md`, `index.html` (with each model's own
//! cross-group heatmap side by side) and the record.

use std::path::{Path, PathBuf};

use super::charts::models::{
    render_accuracy_vs_differential, render_rates_by_model, AccuracyVsDifferential, ModelPoint,
    ModelRow as ChartRow, RatesByModel,
};
use super::page::{
    base64, cell, esc, md_table_to_html, provenance, ChartFile, Context, LOAD_SCRIPT,
};
use crate::embed::sanity::Separation;
use crate::metrics::analysis::Analysis;
use crate::metrics::comparison::{self, ModelRow, ModelRun};
use crate::metrics::{store, Comparisons};

/// The folder of a comparison inside a 1:1 report (the demo's).
pub const FOLDER: &str = "models";

/// What the 1:1 page says of a comparison in its `models/` folder: the ranking lines of the finest
/// grouping at FMR 1e-3 (from the comparison's models.csv) and the stopped models.
pub fn section_record(dir: &Path, rec: &serde_json::Value) -> serde_json::Value {
    let rows: Vec<std::collections::HashMap<String, String>> =
        csv::Reader::from_path(dir.join("models.csv"))
            .map(|mut r| r.deserialize().filter_map(|x| x.ok()).collect())
            .unwrap_or_default();
    let finest = rows
        .iter()
        .map(|r| r["attribute"].clone())
        .max_by_key(|a| (a.matches('×').count(), a.clone()))
        .unwrap_or_default();
    let mut shown: Vec<&std::collections::HashMap<String, String>> = rows
        .iter()
        .filter(|r| {
            r["attribute"] == finest && r["target_fmr"].parse::<f64>().ok() == Some(SHOWN_FMR)
        })
        .collect();
    shown.sort_by_key(|r| r["rank"].parse::<usize>().unwrap_or(usize::MAX));
    let num = |r: &std::collections::HashMap<String, String>, k: &str| {
        r[k].parse::<f64>().unwrap_or(f64::NAN)
    };
    let lines: Vec<String> = shown
        .iter()
        .map(|r| {
            format!(
                "{}. {}: overall FNMR {:.4} at its FMR 1e-3 threshold; {finest} FMR Max/GeoMean {} [{:.2}, {:.2}], highest FMR {} ({:.2e}){}",
                r["rank"],
                r["model"],
                num(r, "fnmr_overall"),
                if r["fmr_max_geomean_bound"] == "lower_bound" { format!("≥ {:.2}", num(r, "fmr_max_geomean")) } else { format!("{:.2}", num(r, "fmr_max_geomean")) },
                num(r, "fmr_max_geomean_ci_low"),
                num(r, "fmr_max_geomean_ci_high"),
                r["highest_fmr_group"],
                num(r, "highest_fmr"),
                if r["rank_note"].is_empty() { String::new() } else { format!(" ({})", r["rank_note"]) }
            )
        })
        .collect();
    let stopped: Vec<String> = rec["stopped_by_sanity_gate"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} was stopped by the sanity gate: {}",
                s["name"].as_str().unwrap_or("?"),
                s["reason"].as_str().unwrap_or("?")
            )
        })
        .collect();
    serde_json::json!({"folder": FOLDER, "grouping": finest, "ranking": lines, "stopped": stopped})
}

/// The 1:1 page's comparison section (HTML, images inlined) from the record's `comparison` block.
pub fn section_html(record: &serde_json::Value, dir: &Path) -> Option<(String, usize)> {
    let b = record.get("comparison")?;
    let g = b["grouping"].as_str().unwrap_or("");
    let mut h = format!("<h2>Models side by side</h2><p>The same images through other models, each at its own global thresholds, ranked by {} FMR Max/GeoMean at FMR 1e-3 (lower = smaller differential). Full comparison: <a href=\"{FOLDER}/index.html\">{FOLDER}/index.html</a>; each model's own report in its folder there.</p><ol style=\"list-style:none;padding-left:0\">", esc(g));
    for l in b["ranking"].as_array().into_iter().flatten() {
        h += &format!("<li>{}</li>", esc(l.as_str().unwrap_or("")));
    }
    h += "</ol><ul>";
    for l in b["stopped"].as_array().into_iter().flatten() {
        h += &format!("<li>{}</li>", esc(l.as_str().unwrap_or("")));
    }
    h += "</ul>";
    let png = dir.join(FOLDER).join(format!(
        "accuracy_vs_differential_{}.png",
        super::render::sanitize(g)
    ));
    let mut images = 0;
    if let Ok(bytes) = std::fs::read(&png) {
        images = 1;
        h += &format!("<figure><img alt=\"accuracy against differential\" src=\"data:image/png;base64,{}\"><figcaption>Each model's overall FNMR against its {} FMR Max/GeoMean at FMR 1e-3, with 95 % intervals ({FOLDER}/accuracy_vs_differential_{}.png).</figcaption></figure>", base64(&bytes), esc(g), esc(&super::render::sanitize(g)));
    }
    Some((h, images))
}

/// The 1:1 summary.md's comparison section.
pub fn section_md(record: &serde_json::Value) -> Option<String> {
    let b = record.get("comparison")?;
    let mut md = format!("## Models side by side

Ranked by {} FMR Max/GeoMean at FMR 1e-3, each model at its own thresholds. Full comparison: `{FOLDER}/index.html`, `{FOLDER}/models.csv`.

", b["grouping"].as_str().unwrap_or(""));
    for l in b["ranking"].as_array().into_iter().flatten() {
        md += &format!(
            "- {}
",
            l.as_str().unwrap_or("")
        );
    }
    for l in b["stopped"].as_array().into_iter().flatten() {
        md += &format!(
            "- {}
",
            l.as_str().unwrap_or("")
        );
    }
    Some(md + "\n")
}

/// The manifest `--common-enrolled` writes into the comparison folder.
pub const COMMON_MANIFEST: &str = "common_manifest.csv";

/// The target FMR the charts and tables show.
const SHOWN_FMR: f64 = 1e-3;

/// One finished run, read back and analysed.
pub struct Loaded {
    /// Its folder.
    pub dir: PathBuf,
    /// Its run.json.
    pub record: serde_json::Value,
    /// Its comparisons' header.
    pub header: store::Header,
    /// Its comparisons.
    pub comparisons: Comparisons,
    /// Its analysis.
    pub analysis: Analysis,
}

/// A model the sanity gate stopped.
pub struct Stopped {
    /// Its name.
    pub name: String,
    /// Its file's sha256.
    pub sha256: String,
    /// Why.
    pub reason: String,
    /// What the gate measured.
    pub separation: Separation,
}

/// The model's name as the comparison shows it: the catalogue name, else the run folder's name.
fn name_of(l: &Loaded) -> String {
    l.record["model"]["spec"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(String::from)
        .unwrap_or_else(|| {
            l.dir
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        })
}

/// Writes the comparison into `dir`; returns its run record.
pub fn write(
    dir: &Path,
    runs: &[Loaded],
    stopped: &[Stopped],
    common_note: Option<&str>,
) -> Result<serde_json::Value, String> {
    let models: Vec<ModelRun> = runs
        .iter()
        .map(|l| ModelRun {
            name: name_of(l),
            sha256: l.record["model"]["sha256"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            analysis: &l.analysis,
            comparisons: &l.comparisons,
        })
        .collect();
    let rows = comparison::rows(&models);
    let put = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    put("models.csv", &super::rows_csv(&rows)?)?;
    let charts = charts(dir, runs, &rows)?;
    let record = serde_json::json!({
        "schema_version": super::record::SCHEMA_VERSION,
        "command": "compare",
        "dataset": runs[0].record["dataset"],
        "models": runs.iter().map(|l| serde_json::json!({
            "name": name_of(l),
            "sha256": l.record["model"]["sha256"],
            "folder": l.dir.file_name().map(|f| f.to_string_lossy().to_string()),
            "spec": l.record["model"]["spec"],
            "images": l.comparisons.images.iter().sum::<u64>(),
            "kernel": l.header.kernel,
        })).collect::<Vec<_>>(),
        "stopped_by_sanity_gate": stopped.iter().map(|s| serde_json::json!({
            "name": s.name, "sha256": s.sha256, "reason": s.reason, "sanity": s.separation,
        })).collect::<Vec<_>>(),
        "common_enrolled": common_note,
        "ranking": "per grouping and target, by FMR Max/GeoMean at each model's own global threshold, lowest first; undefined last",
    });
    let md = summary_md(runs, stopped, &rows, common_note, &charts);
    put("summary.md", md.as_bytes())?;
    put(
        "index.html",
        index_html(runs, stopped, &rows, common_note, &charts, dir)?.as_bytes(),
    )?;
    Ok(record)
}

/// The groupings in the runs' rates, in order.
fn groupings(runs: &[Loaded]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in &runs[0].analysis.rates {
        if !v.contains(&r.attribute) {
            v.push(r.attribute.clone());
        }
    }
    v
}

/// The charts of every grouping at [`SHOWN_FMR`].
fn charts(dir: &Path, runs: &[Loaded], rows: &[ModelRow]) -> Result<Vec<ChartFile>, String> {
    let mut out = Vec::new();
    for g in groupings(runs) {
        let groups: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for r in runs.iter().flat_map(|l| &l.analysis.rates) {
                if r.attribute == g && !v.contains(&r.group) {
                    v.push(r.group.clone());
                }
            }
            v
        };
        let stem = super::render::sanitize(&g);
        for (fmr, what) in [(true, "FMR"), (false, "FNMR")] {
            let chart_rows: Vec<ChartRow> = runs
                .iter()
                .map(|l| ChartRow {
                    model: name_of(l),
                    points: l
                        .analysis
                        .rates
                        .iter()
                        .filter(|r| r.attribute == g && r.target_fmr == SHOWN_FMR)
                        .filter_map(|r| {
                            let i = groups.iter().position(|x| *x == r.group)?;
                            Some(if fmr {
                                (i, r.fmr, r.fmr_ci_low, r.fmr_ci_high)
                            } else {
                                (i, r.fnmr, r.fnmr_ci_low, r.fnmr_ci_high)
                            })
                        })
                        .collect(),
                })
                .collect();
            let name = format!("models_{}_{stem}", what.to_lowercase());
            let caption = format!("{what} of every {g} group, one row per model, each at its own global threshold for FMR {SHOWN_FMR:.0e} (log10; whiskers: 95 % subject-bootstrap intervals)");
            render_rates_by_model(
                &dir.join(&name),
                &RatesByModel {
                    title: format!(
                        "{what} by {g} and model at each model's threshold for FMR {SHOWN_FMR:.0e}"
                    ),
                    x_desc: format!("{what} (log10)"),
                    groups: groups.clone(),
                    rows: chart_rows,
                },
            )?;
            out.push(ChartFile {
                stem: name,
                grouping: g.clone(),
                caption,
            });
        }
        let points: Vec<ModelPoint> = rows
            .iter()
            .filter(|r| r.attribute == g && r.target_fmr == SHOWN_FMR)
            .map(|r| ModelPoint {
                model: r.model.clone(),
                fnmr: r.fnmr_overall,
                differential: (
                    r.fmr_max_geomean,
                    r.fmr_max_geomean_ci_low,
                    r.fmr_max_geomean_ci_high,
                ),
            })
            .collect();
        let name = format!("accuracy_vs_differential_{stem}");
        render_accuracy_vs_differential(
            &dir.join(&name),
            &AccuracyVsDifferential {
                title: format!("Accuracy against {g} FMR differential at FMR {SHOWN_FMR:.0e}"),
                points,
            },
        )?;
        out.push(ChartFile {
            stem: name,
            grouping: g.clone(),
            caption: format!("Each model's overall FNMR at its own threshold for FMR {SHOWN_FMR:.0e} against its {g} FMR Max/GeoMean (whiskers: 95 % intervals); models lacking a defined value are left out"),
        });
    }
    Ok(out)
}

/// `1.23 [1.01, 1.50]`, `≥ 1.2` for a lower bound, `undefined`.
fn mg(v: f64, lo: f64, hi: f64, bound: crate::metrics::Bound) -> String {
    if !v.is_finite() {
        return "undefined".into();
    }
    let ge = if bound == crate::metrics::Bound::LowerBound {
        "≥ "
    } else {
        ""
    };
    if lo.is_finite() && hi.is_finite() {
        format!("{ge}{v:.2} [{lo:.2}, {hi:.2}]")
    } else {
        format!("{ge}{v:.2}")
    }
}

/// The ranking table of one grouping at [`SHOWN_FMR`].
fn ranking_md(rows: &[ModelRow], g: &str) -> String {
    let mut md = "| rank | model | τ | overall FNMR | EER | AUC | FMR Max/GeoMean [95 % CI] | FMR Gini | highest-FMR group | FNMR Max/GeoMean [95 % CI] | note |\n|---|---|---|---|---|---|---|---|---|---|---|\n".to_string();
    let mut shown: Vec<&ModelRow> = rows
        .iter()
        .filter(|r| r.attribute == g && r.target_fmr == SHOWN_FMR)
        .collect();
    shown.sort_by_key(|r| r.rank);
    for r in shown {
        md += &format!(
            "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {:.3} | {} ({:.2e}) | {} | {} |\n",
            r.rank,
            cell(&r.model),
            r.threshold,
            r.fnmr_overall,
            r.eer,
            r.auc,
            mg(
                r.fmr_max_geomean,
                r.fmr_max_geomean_ci_low,
                r.fmr_max_geomean_ci_high,
                r.fmr_max_geomean_bound
            ),
            r.fmr_gini,
            cell(&r.highest_fmr_group),
            r.highest_fmr,
            mg(
                r.fnmr_max_geomean,
                r.fnmr_max_geomean_ci_low,
                r.fnmr_max_geomean_ci_high,
                crate::metrics::Bound::Exact
            ),
            cell(&r.rank_note)
        );
    }
    md
}

/// The plain-words lines: each model's provenance, the stopped models, the common-enrolled note.
fn intro(runs: &[Loaded], stopped: &[Stopped], common_note: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = runs
        .iter()
        .map(|l| {
            format!(
                "{}: {}",
                name_of(l),
                provenance(&Context::from_record(&l.record))
            )
        })
        .collect();
    for s in stopped {
        v.push(format!(
            "{} (sha256 {}) was stopped by the sanity gate and is not compared: {}.",
            s.name, s.sha256, s.reason
        ));
    }
    v.push(match common_note {
        Some(n) => format!("{n}."),
        None => "Each model ran on every image; failures to enrol count as non-matches for the model that had them (run with --common-enrolled to compare on the images all models enrolled).".into(),
    });
    v.push("Each model is measured at its own global thresholds (one τ per target FMR over all its non-mated comparisons); the ranking orders models by FMR Max/GeoMean at FMR 1e-3, and models whose intervals overlap cannot be told apart.".into());
    v
}

fn summary_md(
    runs: &[Loaded],
    stopped: &[Stopped],
    rows: &[ModelRow],
    common_note: Option<&str>,
    charts: &[ChartFile],
) -> String {
    let mut md = format!(
        "# Models side by side on {}\n\n",
        runs[0].record["dataset"]["name"]
            .as_str()
            .unwrap_or("the dataset")
    );
    for l in intro(runs, stopped, common_note) {
        md += &format!("- {l}\n");
    }
    for g in groupings(runs) {
        md += &format!(
            "\n## {g} at FMR {SHOWN_FMR:.0e}\n\n{}",
            ranking_md(rows, &g)
        );
    }
    md += "\n## Charts\n\n";
    for c in charts {
        md += &format!("- `{}.png` — {}\n", c.stem, c.caption);
    }
    md + "\nAll rows, every target: `models.csv`. Each model's own report: its folder beside this page.\n"
}

fn index_html(
    runs: &[Loaded],
    stopped: &[Stopped],
    rows: &[ModelRow],
    common_note: Option<&str>,
    charts: &[ChartFile],
    dir: &Path,
) -> Result<String, String> {
    let title = format!(
        "Models side by side on {}",
        runs[0].record["dataset"]["name"]
            .as_str()
            .unwrap_or("the dataset")
    );
    let heatmaps: Vec<(String, Vec<u8>)> = runs
        .iter()
        .filter_map(|l| {
            let g = groupings(runs).last()?.clone();
            let p = l
                .dir
                .join(format!("heatmap_{}.png", super::render::sanitize(&g)));
            std::fs::read(p).ok().map(|b| (name_of(l), b))
        })
        .collect();
    let mut h = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:'DejaVu Sans',Arial,sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}}th,td{{border:1px solid #ccc;padding:3px 6px;text-align:left}}th{{background:#f3f3f3}}figure{{margin:1em 0 2em}}img{{max-width:100%;border:1px solid #ddd}}figcaption{{font-size:13px;color:#555}}li{{margin:.3em 0}}.grid{{display:flex;flex-wrap:wrap;gap:8px}}.grid figure{{width:48%;margin:0}}</style></head>\n<body data-images-expected=\"{}\">\n<h1>{}</h1><ul>",
        esc(&title),
        charts.len() + heatmaps.len(),
        esc(&title)
    );
    for l in intro(runs, stopped, common_note) {
        h += &format!("<li>{}</li>", esc(&l));
    }
    h += "</ul>";
    for g in groupings(runs) {
        h += &format!(
            "<h2>{} at FMR {SHOWN_FMR:.0e}</h2>{}",
            esc(&g),
            md_table_to_html(&ranking_md(rows, &g))
        );
    }
    h += "<h2>Charts</h2>";
    for c in charts {
        let bytes = std::fs::read(dir.join(format!("{}.png", c.stem)))
            .map_err(|e| format!("cannot read {}.png: {e}", c.stem))?;
        h += &format!("<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption>{} ({}.svg)</figcaption></figure>\n", esc(&c.caption), base64(&bytes), esc(&c.caption), esc(&c.stem));
    }
    if !heatmaps.is_empty() {
        h += "<h2>Cross-group FMR, model by model</h2><p>Each model's own cross-group heatmap (from its report folder), at its own threshold.</p><div class=\"grid\">";
        for (name, bytes) in &heatmaps {
            h += &format!("<figure><img alt=\"cross-group heatmap of {}\" src=\"data:image/png;base64,{}\"><figcaption>{}</figcaption></figure>", esc(name), base64(bytes), esc(name));
        }
        h += "</div>";
    }
    h += LOAD_SCRIPT;
    h += "</body></html>\n";
    Ok(h)
}
