//! `facebias merge`: adds the partial comparisons of every shard of one run (`run --shard k/n`) and
//! writes the full report.

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::common::{self, put};
use crate::cli::MergeArgs;
use crate::compare::backend::shard_scheme;
use crate::metrics::{store, Comparisons};
use crate::report::console::RunOutcome;
use crate::report::{charts, record};

/// `facebias merge`.
pub fn merge(args: &MergeArgs) -> Result<RunOutcome> {
    charts::ensure_font().map_err(|e| anyhow!(e))?;
    if args.shards.is_empty() {
        bail!("give the shard folders to merge (the --out folders of `facebias run --shard k/n`)");
    }
    let shards: Vec<&Path> = args.shards.iter().map(|d| d.as_path()).collect();
    crate::report::staging::check_not_input(&args.out, &shards).map_err(|e| anyhow!(e))?;
    let staging = common::stage(&args.out)?;
    let first = args.shards[0].as_path();
    let mut merged: Option<(store::Header, Comparisons)> = None;
    let mut seen = Vec::new();
    for dir in &args.shards {
        let (h, c) = common::read_comparisons(dir, "shard folder")?;
        match &mut merged {
            None => merged = Some((h.clone(), c)),
            Some((h0, c0)) => {
                check_compatible(dir, &h, first, h0)?;
                store::merge_into(c0, &c).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
            }
        }
        if seen.contains(&h.shard[0]) {
            bail!(
                "shard {} of {} is given twice ({})",
                h.shard[0],
                h.shard[1],
                dir.display()
            );
        }
        seen.push(h.shard[0]);
    }
    let (mut header, comparisons) = merged.expect("at least one shard");
    let count = header.shard[1];
    let missing: Vec<usize> = (0..count).filter(|i| !seen.contains(i)).collect();
    if !missing.is_empty() {
        bail!("shards {missing:?} of {count} are missing; merge needs every shard folder");
    }
    header.shard = [0, 1];
    common::copy_into(&staging, first, &["samples.csv"])?;
    copy_embeddings(&staging, first, &header)?;
    put(
        &staging,
        "comparisons.bin",
        &store::to_bytes(&header, &comparisons),
    )?;
    let mut record = record::read(first).map_err(|e| anyhow!(e))?;
    record::set_merged(&mut record, &shards);
    let analysis = common::finish_report(
        &staging,
        &header,
        &comparisons,
        None,
        &args.analysis,
        &mut record,
    )?;
    let out = common::commit(staging, &record)?;
    Ok(common::outcome(out, &record, analysis))
}

/// Refuses a shard (`dir`, header `h`) that cannot be added to the first one (`first`, `h0`): other
/// inputs, another kernel's pair scheme, another build's pair split, or another shard count.
fn check_compatible(dir: &Path, h: &store::Header, first: &Path, h0: &store::Header) -> Result<()> {
    if h.fingerprint != h0.fingerprint
        || h.combos != h0.combos
        || h.excluded_pairs != h0.excluded_pairs
    {
        bail!(
            "{} comes from a different run (other embeddings or samples) than {}",
            dir.display(),
            first.display()
        );
    }
    let (scheme, scheme0) = (shard_scheme(&h.kernel), shard_scheme(&h0.kernel));
    if scheme != scheme0 {
        bail!(
            "{} was computed by {} ({scheme}) but {} by {} ({scheme0}); shards split the pairs by their kernel's scheme, so run every shard with the same --device (on the CPU, any tiled --kernel, or scalar for all)",
            dir.display(),
            h.kernel,
            first.display(),
            h0.kernel
        );
    }
    if h.split_revision != h0.split_revision {
        bail!(
            "{} was split into shards by another facebias build than {} (pair split revision {} against {}): they cover different pairs; rerun every shard with one build",
            dir.display(),
            first.display(),
            h.split_revision,
            h0.split_revision
        );
    }
    if h.shard[1] != h0.shard[1] {
        bail!(
            "{} is shard {} of {}, but {} is of {}",
            dir.display(),
            h.shard[0],
            h.shard[1],
            first.display(),
            h0.shard[1]
        );
    }
    Ok(())
}

/// Puts the run's `embeddings.npy` into the merged report: the first shard's copy, or — for shards
/// started from an embed folder (`run --embeddings`), which keep none — the folder's, after checking
/// that it is still the matrix the shards scored (the comparisons' fingerprint).
fn copy_embeddings(
    staging: &crate::report::Staging,
    first: &Path,
    header: &store::Header,
) -> Result<()> {
    if first.join("embeddings.npy").is_file() {
        return common::copy_into(staging, first, &["embeddings.npy"]);
    }
    let record = record::read(first).map_err(|e| anyhow!(e))?;
    let Some(dir) = record["execution"]["embeddings_from"].as_str() else {
        bail!(
            "{} has no embeddings.npy and names no embed folder it was computed from",
            first.display()
        );
    };
    let from = Path::new(dir).join("embeddings.npy");
    let npy = crate::embed::folder::MappedMatrix::open(&from).map_err(|e| anyhow!(e))?;
    let samples = std::fs::read(first.join("samples.csv"))
        .map_err(|e| anyhow!("cannot read {}: {e}", first.join("samples.csv").display()))?;
    if store::fingerprint(&[&samples, npy.file_bytes()]) != header.fingerprint {
        bail!(
            "{} is not the matrix the shards scored (it changed since, or the folder was replaced); rerun the comparison shards",
            from.display()
        );
    }
    let to = staging.dir().join("embeddings.npy");
    std::fs::copy(&from, &to)
        .map(|_| ())
        .map_err(|e| anyhow!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(shard: usize, split_revision: u32) -> store::Header {
        store::Header {
            attributes: vec!["sex".into()],
            combos: vec![vec!["f".into()]],
            shard: [shard, 2],
            fingerprint: "abc".into(),
            kernel: "avx2-fma-6x16".into(),
            excluded_pairs: 0,
            split_revision,
        }
    }

    #[test]
    fn shards_of_another_builds_pair_split_are_refused() {
        let (a, b) = (Path::new("shard-0"), Path::new("shard-1"));
        assert!(check_compatible(b, &header(1, 2), a, &header(0, 2)).is_ok());
        let e = check_compatible(b, &header(1, 0), a, &header(0, 2))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("shard-1") && e.contains("revision 0 against 2") && e.contains("one build"),
            "{e}"
        );
        // A header written before the field existed reads as revision 0.
        let mut json = serde_json::to_value(header(0, 2)).unwrap();
        json.as_object_mut().unwrap().remove("split_revision");
        let old: store::Header = serde_json::from_value(json).unwrap();
        assert_eq!(old.split_revision, 0);
    }
}
