//! The human-facing pages: `index.html` (one self-contained file: charts inlined as base64 PNG, no
//! external resources, works opened from disk) and `summary.md` (the same findings and tables in
//! Markdown, for papers and issues).

use std::fmt::Write as _;
use std::path::Path;

use super::findings::{differentials_table_md, findings};
use crate::metrics::analysis::{chart_threshold, Analysis};
use crate::metrics::evidence::Evidence;
use crate::metrics::{EquityRow, GroupRate, PolicyRate, Threshold};

/// What the pages say about the run besides the numbers.
#[derive(Debug, Clone)]
pub struct Context {
    /// Model name.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
    /// The run record (run.json), shown in the page.
    pub record: serde_json::Value,
}

impl Context {
    /// The context of a run record: model and dataset names from it, and the record without its
    /// run-dependent `execution` part (so pages are identical for identical inputs).
    pub fn from_record(record: &serde_json::Value) -> Context {
        let mut shown = record.clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("execution");
        }
        Context {
            model: model_name(record),
            dataset: record["dataset"]["name"]
                .as_str()
                .unwrap_or("dataset")
                .to_string(),
            record: shown,
        }
    }
}

/// The model as a page names it: by its file, with the catalogue entry when it came from there.
fn model_name(record: &serde_json::Value) -> String {
    let m = &record["model"];
    let file = m["path"]
        .as_str()
        .map(|p| {
            std::path::Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| p.to_string())
        })
        .unwrap_or_else(|| "model".into());
    let name = m["spec"]["name"].as_str().unwrap_or("");
    if crate::embed::spec::by_name(name).is_some() {
        format!("{file} (catalogue entry {name})")
    } else {
        file
    }
}

/// A chart written by the report: file stem, grouping, and what it shows.
#[derive(Debug, Clone)]
pub struct ChartFile {
    /// File stem (`det_race`): `<stem>.png` and `<stem>.svg` exist.
    pub stem: String,
    /// Grouping name.
    pub grouping: String,
    /// One-line caption.
    pub caption: String,
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) fn sci(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x == 0.0 {
        "0".into()
    } else {
        format!("{x:.2e}")
    }
}

fn ci(lo: f64, hi: f64) -> String {
    if lo.is_finite() && hi.is_finite() {
        format!("[{}, {}]", sci(lo), sci(hi))
    } else {
        String::new()
    }
}

fn ci_num(lo: f64, hi: f64) -> String {
    if lo.is_finite() && hi.is_finite() {
        format!("[{}, {}]", num(lo), num(hi))
    } else {
        String::new()
    }
}

fn num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".into()
    }
}

/// A Markdown table cell: `|` (the intersection separator in labels) escaped so it does not end the
/// cell; [`md_table_to_html`] turns it back.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn thresholds_table_md(ts: &[Threshold]) -> String {
    let mut s = "| target FMR | τ | false matches | non-mated comparisons | FMR | enough data |\n|---|---|---|---|---|---|\n".to_string();
    for t in ts {
        let _ = writeln!(
            s,
            "| {:.0e} | {:.5} | {} | {} | {} | {} |",
            t.target_fmr,
            t.tau,
            t.false_matches,
            t.comparisons,
            sci(t.fmr),
            if t.supported { "yes" } else { "no" }
        );
    }
    s
}

fn rates_table_md(rows: &[&GroupRate]) -> String {
    let mut s = "| grouping | group | FMR | 95 % CI | false matches / comparisons | FNMR | 95 % CI | false non-matches / mated | failures to enrol | EER | d′ | evidence |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n".to_string();
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} / {} | {} | {} | {} / {} | {} | {} | {} | {} |",
            r.attribute,
            cell(&r.group),
            sci(r.fmr),
            ci(r.fmr_ci_low, r.fmr_ci_high),
            r.false_matches,
            r.nonmated_comparisons,
            num(r.fnmr),
            ci_num(r.fnmr_ci_low, r.fnmr_ci_high),
            r.false_non_matches,
            r.mated_comparisons,
            r.failures_to_enrol,
            num(r.eer),
            num(r.d_prime),
            evidence_label(r)
        );
    }
    s
}

/// The rates table's evidence cell: empty when both rates have enough data.
fn evidence_label(r: &GroupRate) -> String {
    let mut v = Vec::new();
    match r.fmr_evidence {
        Evidence::Insufficient => v.push("FMR: insufficient data"),
        Evidence::FewComparisons => v.push("FMR: few comparisons"),
        Evidence::Ok => {}
    }
    if r.fnmr_evidence == Evidence::Insufficient {
        v.push("FNMR: insufficient data");
    }
    v.join("; ")
}

fn equity_table_md(rows: &[&EquityRow]) -> String {
    let mut s = "| grouping | metric | rate | value | 95 % CI | reading | note |\n|---|---|---|---|---|---|---|\n".to_string();
    for e in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:?} | {} |",
            e.attribute,
            e.metric,
            e.rate,
            num(e.value),
            if e.ci_low.is_finite() {
                format!("[{}, {}]", num(e.ci_low), num(e.ci_high))
            } else {
                String::new()
            },
            e.bound,
            cell(&e.note)
        );
    }
    s
}

fn policies_table_md(rows: &[&PolicyRate]) -> String {
    let mut s =
        "| grouping | policy | group | τ | FMR | FNMR |\n|---|---|---|---|---|---|\n".to_string();
    for p in rows {
        let policy = if p.policy == "reference" {
            format!("reference ({})", cell(&p.reference_group))
        } else {
            p.policy.clone()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.4} | {} | {} |",
            p.attribute,
            policy,
            cell(&p.group),
            p.threshold,
            sci(p.fmr),
            num(p.fnmr)
        );
    }
    s
}

/// Markdown tables → HTML tables (the pipe tables written above: header, separator, rows).
pub(crate) fn md_table_to_html(md: &str) -> String {
    let mut lines = md.lines().filter(|l| l.starts_with('|'));
    let cells = |l: &str| -> Vec<String> {
        l.trim_matches('|')
            .split(" | ")
            .map(|c| esc(&c.trim().replace("\\|", "|")))
            .collect()
    };
    let mut s = String::from("<table>");
    if let Some(h) = lines.next() {
        s += "<thead><tr>";
        cells(h).iter().for_each(|c| s += &format!("<th>{c}</th>"));
        s += "</tr></thead><tbody>";
    }
    for l in lines.skip(1) {
        s += "<tr>";
        cells(l).iter().for_each(|c| s += &format!("<td>{c}</td>"));
        s += "</tr>";
    }
    s + "</tbody></table>"
}

struct Sections {
    differentials: String,
    thresholds: String,
    rates: String,
    equity: String,
    policies: String,
}

fn sections(a: &Analysis) -> Sections {
    let t = chart_threshold(&a.thresholds).map(|t| t.target_fmr);
    let at = |x: f64| Some(x) == t;
    Sections {
        differentials: differentials_table_md(a),
        thresholds: thresholds_table_md(&a.thresholds),
        rates: rates_table_md(
            &a.rates
                .iter()
                .filter(|r| at(r.target_fmr))
                .collect::<Vec<_>>(),
        ),
        equity: equity_table_md(
            &a.equity
                .iter()
                .filter(|r| at(r.target_fmr))
                .collect::<Vec<_>>(),
        ),
        policies: policies_table_md(
            &a.policies
                .iter()
                .filter(|r| at(r.target_fmr))
                .collect::<Vec<_>>(),
        ),
    }
}

/// One line on the model, its hash and the exact preprocessing used, and the dataset's hash; then
/// the catalogue's training-data note and any unusable mark.
pub fn provenance(ctx: &Context) -> String {
    let sp = &ctx.record["model"]["spec"];
    let mut line = provenance_line(ctx);
    if let Some(t) = sp["training_overlap"].as_str().filter(|t| !t.is_empty()) {
        line += &format!(" Training data: {t}");
    }
    if let Some(u) = sp["unusable"].as_str().filter(|t| !t.is_empty()) {
        line += &format!(" THIS MODEL IS MARKED UNUSABLE ({u}); it was run with --allow-unusable, so its rates are not evidence about demographic groups.");
    }
    line
}

fn provenance_line(ctx: &Context) -> String {
    let m = &ctx.record["model"];
    let sp = &m["spec"];
    format!(
        "Model {} (sha256 {}); preprocessing: {}×{} {} {}, value = (pixel·{} − mean {}) / std {}, crop {}; dataset manifest {} (sha256 {}).",
        m["path"].as_str().unwrap_or("?"),
        m["sha256"].as_str().unwrap_or("?"),
        sp["size"],
        sp["size"],
        sp["layout"].as_str().unwrap_or("?"),
        sp["color"].as_str().unwrap_or("?"),
        sp["pixel_scale"],
        sp["mean"],
        sp["std"],
        serde_json::from_value::<crate::embed::spec::ModelSpec>(sp.clone())
            .map(|s| s.crop().describe())
            .unwrap_or_else(|_| sp["template"].as_str().unwrap_or("?").to_string()),
        ctx.record["dataset"]["manifest"].as_str().unwrap_or("?"),
        ctx.record["dataset"]["manifest_sha256"].as_str().unwrap_or("?"),
    )
}

/// Rows of `top_impostors.csv` shown on the pages.
const PAGE_PAIRS: usize = 20;

/// The table of the highest-scoring impostor pairs (from `dir/top_impostors.csv`), if the run has one.
fn top_pairs_md(dir: &Path) -> Result<Option<String>, String> {
    let path = dir.join("top_impostors.csv");
    if !path.is_file() {
        return Ok(None);
    }
    let mut r = csv::Reader::from_path(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut s = "| rank | score | subject a | group a | subject b | group b | image a | image b |\n|---|---|---|---|---|---|---|---|\n".to_string();
    let mut shown = 0;
    for row in r.deserialize::<super::pairs::PairRow>() {
        let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(rank) = row.rank.filter(|_| shown < PAGE_PAIRS) else {
            continue;
        };
        shown += 1;
        let _ = writeln!(
            s,
            "| {rank} | {:.4} | {} | {} | {} | {} | {} | {} |",
            row.score,
            cell(&row.subject_a),
            cell(&row.group_a),
            cell(&row.subject_b),
            cell(&row.group_b),
            cell(&row.path_a),
            cell(&row.path_b)
        );
    }
    Ok(Some(s))
}

/// What the pairs section says above its table.
const PAIRS_INTRO: &str = "The highest-scoring non-mated pairs: the false matches at the strictest thresholds. Two images of one person filed under two identities, or duplicates, show up here and are label errors of the dataset, not of the model. All of them (100 overall, 20 per group cell) are in top_impostors.csv; the lowest-scoring mated pairs are in worst_genuine.csv.";

/// `summary.md`.
pub fn summary_md(
    a: &Analysis,
    ctx: &Context,
    charts: &[ChartFile],
    dir: &Path,
) -> Result<String, String> {
    let s = sections(a);
    let t = chart_threshold(&a.thresholds)
        .map(|t| format!("{:.0e}", t.target_fmr))
        .unwrap_or_default();
    let mut md = format!(
        "# Demographic differentials: {} on {}\n\n{}\n\n",
        ctx.model,
        ctx.dataset,
        provenance(ctx)
    );
    let verdict = super::audit::verdict_lines(&ctx.record);
    if !verdict.is_empty() {
        md += "## Audit\n\n";
        verdict.iter().for_each(|l| md += &format!("- {l}\n"));
        md += &format!("- The faces as the model was fed them, under the chosen spec and its runner-up: `{}`.\n\n", super::audit::CROPS_FILE);
    }
    md += "## Findings\n\n";
    findings(a, ctx)
        .iter()
        .for_each(|f| md += &format!("- {f}\n"));
    if let Some(sec) = super::identification::section_md(&ctx.record) {
        md += "\n";
        md += &sec;
    }
    if let Some(sec) = super::comparison::section_md(&ctx.record) {
        md += "\n";
        md += &sec;
    }
    md += &format!("\n## Differentials at every target\n\nmax/min of each grouping's rates at each global threshold, with the 95 % subject-bootstrap interval of the ratio of the two groups named (it can include 1).\n\n{}\n", s.differentials);
    md += &format!("\n## Global thresholds\n\n{}\n## Per-group rates at the global threshold for FMR {t}\n\n{}\n## Summary metrics at FMR {t}\n\n{}\n## Threshold policies at FMR {t}\n\n{}\n", s.thresholds, s.rates, s.equity, s.policies);
    md += "## Charts\n\n";
    charts
        .iter()
        .for_each(|c| md += &format!("- `{}.png` — {}\n", c.stem, c.caption));
    if let Some(table) = top_pairs_md(dir)? {
        md += &format!("\n## The pairs behind the numbers\n\n{PAIRS_INTRO} Contact sheet: `top_impostors.png`.\n\n{table}");
    }
    md += &format!("\n## Run record\n\nModel sha256 `{}`, manifest sha256 `{}`, ONNX Runtime {}, kernel {}, bootstrap {} replicates (seed {}). Full record: `run.json`.\n",
        ctx.record["model"]["sha256"].as_str().unwrap_or("?"),
        ctx.record["dataset"]["manifest_sha256"].as_str().unwrap_or("?"),
        ctx.record["runtime"]["onnxruntime_version"].as_str().unwrap_or("?"),
        ctx.record["compare"]["kernel"].as_str().unwrap_or("?"),
        ctx.record["bootstrap"]["replicates"],
        ctx.record["bootstrap"]["seed"]);
    Ok(md)
}

/// The script that counts loaded images (the page test in headless Chromium reads the counts).
pub const LOAD_SCRIPT: &str = "<script>\nwindow.addEventListener('error',function(){document.body.dataset.errors=(+(document.body.dataset.errors||0))+1},true);\n\
window.addEventListener('load',function(){var ok=0;for(var i=0;i<document.images.length;i++){var im=document.images[i];if(im.complete&&im.naturalWidth>0)ok++;}document.body.dataset.imagesLoaded=ok;document.body.dataset.ready='1';});\n</script>\n";

/// `index.html`, reading the chart PNGs from `dir`.
pub fn index_html(
    a: &Analysis,
    ctx: &Context,
    charts: &[ChartFile],
    dir: &Path,
) -> Result<String, String> {
    let s = sections(a);
    let t = chart_threshold(&a.thresholds)
        .map(|t| format!("{:.0e}", t.target_fmr))
        .unwrap_or_default();
    let identification = super::identification::section_html(&ctx.record, dir);
    let comparison = super::comparison::section_html(&ctx.record, dir);
    let title = format!(
        "Demographic differentials: {} on {}",
        ctx.model, ctx.dataset
    );
    let mut h = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:'DejaVu Sans',Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
table{{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}}th,td{{border:1px solid #ccc;padding:3px 6px;text-align:left}}\
th{{background:#f3f3f3}}figure{{margin:1em 0 2em}}img{{max-width:100%;border:1px solid #ddd}}figcaption{{font-size:13px;color:#555}}\
pre{{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}}li{{margin:.3em 0}}\
</style></head>\n<body data-images-expected=\"{}\">\n<h1>{}</h1>\n",
        esc(&title),
        charts.len()
            + usize::from(dir.join("top_impostors.png").is_file())
            + usize::from(
                ctx.record["audit"].is_object() && dir.join(super::audit::CROPS_FILE).is_file()
            )
            + identification.as_ref().map_or(0, |x| x.1)
            + comparison.as_ref().map_or(0, |x| x.1),
        esc(&title)
    );
    h += &format!("<p class=\"provenance\">{}</p>", esc(&provenance(ctx)));
    let verdict = super::audit::verdict_lines(&ctx.record);
    if !verdict.is_empty() {
        h += "<h2>Audit</h2><ul>";
        verdict
            .iter()
            .for_each(|l| h += &format!("<li>{}</li>", esc(l)));
        h += "</ul>";
        let png = dir.join(super::audit::CROPS_FILE);
        if let Ok(bytes) = std::fs::read(&png) {
            h += &format!("<figure><img alt=\"the model's input crops\" src=\"data:image/png;base64,{}\"><figcaption>The first sanity-set faces as the model was fed them: under the chosen spec (top) and its runner-up ({}). Check that the face is framed as the vendor documents.</figcaption></figure>\n", base64(&bytes), super::audit::CROPS_FILE);
        }
    }
    h += "<h2>Findings</h2><ul>";
    findings(a, ctx)
        .iter()
        .for_each(|f| h += &format!("<li>{}</li>", esc(f)));
    h += "</ul>";
    if let Some((sec, _)) = &identification {
        h += sec;
    }
    if let Some((sec, _)) = &comparison {
        h += sec;
    }
    h += &format!(
        "<h2>Differentials at every target</h2><p>max/min of each grouping's rates at each global threshold, with the 95 % subject-bootstrap interval of the ratio of the two groups named (it can include 1).</p>{}",
        md_table_to_html(&s.differentials)
    );
    h += &format!(
        "<h2>Global thresholds</h2>{}",
        md_table_to_html(&s.thresholds)
    );
    h += &format!(
        "<h2>Per-group rates at the global threshold for FMR {t}</h2>{}",
        md_table_to_html(&s.rates)
    );
    h += &format!(
        "<h2>Summary metrics at FMR {t}</h2><p>α = {}; intervals: {}.</p>{}",
        ctx.record["bootstrap"]["alpha"],
        esc(ctx.record["bootstrap"]["interval"]
            .as_str()
            .unwrap_or("none")),
        md_table_to_html(&s.equity)
    );
    h += &format!("<h2>Threshold policies at FMR {t}</h2><p>global: one τ for everyone (the differentials); reference: τ calibrated on one group; per_group: each group's own τ (a what-if view).</p>{}", md_table_to_html(&s.policies));
    h += "<h2>Charts</h2>";
    for c in charts {
        let png = dir.join(format!("{}.png", c.stem));
        let bytes =
            std::fs::read(&png).map_err(|e| format!("cannot read {}: {e}", png.display()))?;
        h += &format!("<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption>{} ({}.svg)</figcaption></figure>\n", esc(&c.caption), base64(&bytes), esc(&c.caption), esc(&c.stem));
    }
    if let Some(table) = top_pairs_md(dir)? {
        h += &format!(
            "<h2>The pairs behind the numbers</h2><p>{}</p>",
            esc(PAIRS_INTRO)
        );
        let png = dir.join("top_impostors.png");
        if let Ok(bytes) = std::fs::read(&png) {
            h += &format!("<figure><img alt=\"contact sheet of the highest-scoring impostor pairs\" src=\"data:image/png;base64,{}\"><figcaption>The {} highest-scoring impostor pairs, with rank, score, subjects and groups (top_impostors.png).</figcaption></figure>\n", base64(&bytes), super::pairs::SHEET_PAIRS);
        }
        h += &md_table_to_html(&table);
    }
    let record = serde_json::to_string_pretty(&ctx.record).unwrap_or_default();
    h += &format!("<h2>Run record</h2><pre>{}</pre>\n", esc(&record));
    h += LOAD_SCRIPT;
    h += "</body></html>\n";
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn tables_become_html_with_escaping() {
        let html = md_table_to_html("| a | b |\n|---|---|\n| x<y | 2 |\n");
        assert_eq!(html, "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>x&lt;y</td><td>2</td></tr></tbody></table>");
    }
}
