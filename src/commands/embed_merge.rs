//! `facebias embed-merge`: joins the folders of a sharded embed (`embed --shard k/n`) into one embed
//! folder whose `samples.csv` and `embeddings.npy` are those of an unsharded embed, byte for byte.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use super::common::{self, put};
use crate::cli::EmbedMergeArgs;
use crate::embed::folder::{self, MappedMatrix};
use crate::report::record;

/// What must agree between the shards of one embed (JSON pointers into their run.json).
const SAME: [&str; 6] = [
    "/dataset/manifest_sha256",
    "/dataset/images",
    "/model/sha256",
    "/model/spec",
    "/detector/sha256",
    "/detector/config",
];

/// `facebias embed-merge`.
pub fn embed_merge(args: &EmbedMergeArgs) -> Result<PathBuf> {
    let shards: Vec<&Path> = args.shards.iter().map(|d| d.as_path()).collect();
    let listed = serde_json::json!(shards
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>());
    if args.skip_finished
        && common::finished(
            &args.out,
            &[
                ("/shard", serde_json::json!([0, 1])),
                ("/merged_from", listed.clone()),
            ],
            &["samples.csv", "embeddings.npy"],
        )
    {
        println!(
            "{} already holds the join of these {} shards; nothing to do",
            args.out.display(),
            shards.len()
        );
        return Ok(args.out.clone());
    }
    crate::report::staging::check_not_input(&args.out, &shards).map_err(|e| anyhow!(e))?;
    let mut records = Vec::new();
    for dir in &shards {
        let rec = record::read(dir).map_err(|e| {
            anyhow!(
                "{e}; is {} the --out of `facebias embed --shard k/n`?",
                dir.display()
            )
        })?;
        let shard = rec["shard"]
            .as_array()
            .and_then(|s| Some((s.first()?.as_u64()? as usize, s.get(1)?.as_u64()? as usize)));
        let Some(shard) = shard else {
            bail!(
                "{} records no embedding shard (written by an older facebias, or not by `embed`)",
                dir.display()
            );
        };
        records.push((dir, shard, rec));
    }
    records.sort_by_key(|(_, s, _)| s.0);
    let (first, (_, count), rec0) = &records[0];
    let count = *count;
    for (dir, (k, n), rec) in &records {
        if *n != count {
            bail!(
                "{} is embedding shard {k} of {n}, but {} is of {count}",
                dir.display(),
                first.display()
            );
        }
        if let Some(p) = SAME.iter().find(|p| rec.pointer(p) != rec0.pointer(p)) {
            bail!(
                "{} and {} are shards of different embeds ({} differs: {} against {})",
                dir.display(),
                first.display(),
                p.trim_start_matches('/').replace('/', "."),
                rec.pointer(p).unwrap_or(&serde_json::Value::Null),
                rec0.pointer(p).unwrap_or(&serde_json::Value::Null)
            );
        }
    }
    let seen: Vec<usize> = records.iter().map(|(_, s, _)| s.0).collect();
    if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
        bail!("embedding shard {} of {count} is given twice", w[0]);
    }
    let missing: Vec<usize> = (0..count).filter(|i| !seen.contains(i)).collect();
    if !missing.is_empty() {
        bail!("embedding shards {missing:?} of {count} are missing; embed-merge needs every shard folder");
    }
    let images = rec0["dataset"]["images"].as_u64().unwrap_or(0) as usize;
    // Each shard's rows are the ones shard_range gives it, so that the join is the manifest in order.
    for (dir, (k, n), rec) in &records {
        let want = folder::shard_range(
            images,
            crate::compare::kernel::Shard {
                index: *k,
                count: *n,
            },
        );
        let got = (rec["samples"][0].as_u64(), rec["samples"][1].as_u64());
        if got != (Some(want.start as u64), Some(want.end as u64)) {
            bail!(
                "{} holds manifest rows {:?}..{:?}, not the {}..{} of shard {k} of {n}",
                dir.display(),
                got.0,
                got.1,
                want.start,
                want.end
            );
        }
    }
    let staging = common::stage(&args.out)?;
    let mut csvs = Vec::new();
    let mut matrices = Vec::new();
    for (dir, _, _) in &records {
        let p = dir.join("samples.csv");
        csvs.push(std::fs::read(&p).map_err(|e| anyhow!("cannot read {}: {e}", p.display()))?);
        matrices.push(MappedMatrix::open(&dir.join("embeddings.npy")).map_err(|e| anyhow!(e))?);
    }
    let parts: Vec<(&Path, &[u8])> = records
        .iter()
        .zip(&csvs)
        .map(|((d, _, _), c)| (**d, c.as_slice()))
        .collect();
    let samples_csv = folder::join_samples(&parts).map_err(|e| anyhow!(e))?;
    let rows: usize = matrices.iter().map(|m| m.rows).sum();
    let dims: Vec<usize> = matrices
        .iter()
        .filter(|m| m.rows > 0)
        .map(|m| m.dim)
        .collect();
    let dim = dims.first().copied().unwrap_or(0);
    if let Some(i) = matrices.iter().position(|m| m.rows > 0 && m.dim != dim) {
        bail!(
            "{} has {}-value embeddings, the other shards {dim}",
            records[i].0.display(),
            matrices[i].dim
        );
    }
    let listed_rows = folder::sample_rows(&samples_csv, "the joined samples.csv")
        .map_err(|e| anyhow!(e))?
        .iter()
        .filter(|s| s.row.is_some())
        .count();
    if listed_rows != rows {
        bail!("the shards' samples.csv list {listed_rows} embedded samples but their embeddings.npy hold {rows} rows");
    }
    put(&staging, "samples.csv", &samples_csv)?;
    // The matrix is streamed shard by shard (never held whole): the npy header, then each shard's data.
    let path = staging.dir().join("embeddings.npy");
    let file = std::fs::File::create(&path)
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    w.write_all(&crate::report::npy_f32(&[], rows, dim))
        .and_then(|_| {
            matrices.iter().try_for_each(|m| {
                w.write_all(&m.file_bytes()[m.file_bytes().len() - m.rows * m.dim * 4..])
            })
        })
        .and_then(|_| w.flush())
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    let mut rec = rec0.clone();
    rec["shard"] = serde_json::json!([0, 1]);
    rec["samples"] = serde_json::json!([0, images]);
    rec["images"] = images.into();
    rec["enrolled"] = rows.into();
    rec["merged_from"] = listed;
    rec["cache_hits"] = records
        .iter()
        .map(|(_, _, r)| r["cache_hits"].as_u64().unwrap_or(0))
        .sum::<u64>()
        .into();
    rec["timings_s"] = serde_json::json!({
        "extract_per_shard": records.iter().map(|(_, _, r)| r["timings_s"]["extract"].clone()).collect::<Vec<_>>(),
    });
    let out = common::commit(staging, &rec)?;
    println!(
        "joined {count} embedding shards ({rows} of {images} images embedded) into {}",
        out.display()
    );
    Ok(out)
}
