//! The 1:N report's `index.html`: one self-contained file (charts inlined as base64 PNG), the same
//! findings and tables as `summary.md`, and the run record.

use std::path::Path;

use super::findings::{growth_table, summary_table, thresholds_table, Headline};
use crate::metrics::identification::analysis::Analysis;
use crate::report::page::{base64, esc, md_table_to_html, provenance, ChartFile, Context};

/// The page's style (that of the 1:1 page).
const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}\
th{background:#f3f3f3}figure{margin:1em 0 2em}img{max-width:100%;border:1px solid #ddd}figcaption{font-size:13px;color:#555}\
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}li{margin:.3em 0}";

/// The page body's sections (no `<html>` shell), so that the 1:1 demo page can embed them.
pub fn body(
    a: &Analysis,
    ctx: &Context,
    h: &Headline,
    charts: &[ChartFile],
    dir: &Path,
    level: u8,
) -> Result<String, String> {
    let n = *a.sizes.last().expect("a gallery size");
    let hx = |t: &str| format!("<h{level}>{}</h{level}>", esc(t));
    let mut s = format!("<p class=\"provenance\">{}</p>", esc(&provenance(ctx)));
    s += &hx("Findings");
    s += "<ul>";
    h.findings
        .iter()
        .for_each(|f| s += &format!("<li>{}</li>", esc(f)));
    s += "</ul>";
    s += &hx("Global thresholds");
    s += &md_table_to_html(&thresholds_table(a));
    s += &hx(&format!("Differentials at N = {n}"));
    s += "<p>Max/GeoMean of the groups' rates (NIST's MXOG; a zero-error group enters as 3/n, making the value a lower bound) and the Gini coefficient (n/(n−1) corrected); 95 % intervals from the searching-subject bootstrap. Per-group counts and intervals: identification.csv.</p>";
    s += &md_table_to_html(&summary_table(a, n));
    if let Some(t) = a.headline_threshold() {
        s += &hx(&format!(
            "FPIR against gallery size at T = {:.5} (FPIR {})",
            t.t, t.target
        ));
        s += &md_table_to_html(&growth_table(a, &t));
    }
    s += &hx("Charts");
    for c in charts {
        let png = dir.join(format!("{}.png", c.stem));
        let bytes =
            std::fs::read(&png).map_err(|e| format!("cannot read {}: {e}", png.display()))?;
        s += &format!("<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption>{} ({}.svg)</figcaption></figure>\n", esc(&c.caption), base64(&bytes), esc(&c.caption), esc(&c.stem));
    }
    Ok(s)
}

/// `index.html`, reading the chart PNGs from `dir`.
pub fn index_html(
    a: &Analysis,
    ctx: &Context,
    h: &Headline,
    charts: &[ChartFile],
    dir: &Path,
) -> Result<String, String> {
    let title = format!("1:N identification: {} on {}", ctx.model, ctx.dataset);
    let mut p = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{STYLE}</style></head>\n<body data-images-expected=\"{}\">\n<h1>{}</h1>\n",
        esc(&title),
        charts.len(),
        esc(&title)
    );
    p += &body(a, ctx, h, charts, dir, 2)?;
    let record = serde_json::to_string_pretty(&ctx.record).unwrap_or_default();
    p += &format!("<h2>Run record</h2><pre>{}</pre>\n", esc(&record));
    p += crate::report::page::LOAD_SCRIPT;
    p += "</body></html>\n";
    Ok(p)
}
