//! `facebias report`: metrics and charts again from a run folder's saved comparisons (no model, no
//! rescoring), replacing the folder's report.

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::common::{self, put};
use crate::cli::ReportArgs;
use crate::metrics::bootstrap::BootstrapData;
use crate::report::console::RunOutcome;
use crate::report::{charts, record};

/// `facebias report`.
pub fn rerender(args: &ReportArgs) -> Result<RunOutcome> {
    charts::ensure_font().map_err(|e| anyhow!(e))?;
    let dir = &args.run_dir;
    let (header, comparisons) = common::read_comparisons(dir, "facebias run folder")?;
    if header.shard[1] > 1 {
        bail!(
            "{} holds shard {} of {} only; run `facebias merge` over all shard folders first",
            dir.display(),
            header.shard[0],
            header.shard[1]
        );
    }
    common::check_targets(args.target_fmr.as_deref())?;
    let mut record = record::read(dir).map_err(|e| anyhow!(e))?;
    let analysis_args = args.analysis(&record);
    if let Some(t) = &args.target_fmr {
        record["requested_target_fmrs"] = serde_json::json!(t);
    }
    let staging = common::stage(dir)?;
    common::copy_into(
        &staging,
        dir,
        &["samples.csv", "embeddings.npy", "comparisons.bin"],
    )?;
    for extra in [
        "top_impostors.csv",
        "worst_genuine.csv",
        "top_impostors.png",
        "protocol.csv",
        "model_spec.toml",
        "sanity.json",
        crate::report::audit::CROPS_FILE,
    ] {
        if dir.join(extra).is_file() {
            common::copy_into(&staging, dir, &[extra])?;
        }
    }
    copy_sub_reports(dir, staging.dir())?;
    let boot = read_bootstrap(dir)?;
    if let Some((bytes, _)) = &boot {
        put(&staging, "bootstrap.bin", bytes)?;
    }
    let analysis = common::finish_report(
        &staging,
        &header,
        &comparisons,
        boot.as_ref().map(|(_, b)| b),
        &analysis_args,
        &mut record,
    )?;
    let out = common::commit(staging, &record)?;
    Ok(common::outcome(out, &record, analysis))
}

/// Copies the report folders facebias wrote inside `from` (the demo's `identification/` and
/// `models/`: they hold the marker) into `to`, so that re-rendering keeps them.
fn copy_sub_reports(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from).map_err(|e| anyhow!("cannot read {}: {e}", from.display()))? {
        let p = e?.path();
        if p.is_dir() && p.join(crate::report::staging::MARKER).is_file() {
            copy_tree(&p, &to.join(p.file_name().expect("a named folder")))?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| anyhow!("cannot create {}: {e}", to.display()))?;
    for e in std::fs::read_dir(from).map_err(|e| anyhow!("cannot read {}: {e}", from.display()))? {
        let p = e?.path();
        let target = to.join(p.file_name().expect("a named entry"));
        if p.is_dir() {
            copy_tree(&p, &target)?;
        } else {
            std::fs::copy(&p, &target)
                .map_err(|e| anyhow!("cannot copy {} to {}: {e}", p.display(), target.display()))?;
        }
    }
    Ok(())
}

/// The run's `bootstrap.bin` (bytes and data), if it has one.
fn read_bootstrap(dir: &Path) -> Result<Option<(Vec<u8>, BootstrapData)>> {
    let path = dir.join("bootstrap.bin");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let data = BootstrapData::from_bytes(&bytes)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Ok(Some((bytes, data)))
        }
        Err(_) => Ok(None),
    }
}
