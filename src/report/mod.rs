//! Report: exporters from results to files. Each exporter is a pure function from plain result data
//! to bytes (so it can be snapshot-tested); [`render::write_report`] writes the metrics' files into a
//! [`Staging`] folder, which replaces `--out` only when complete.
//!
//! Files: `samples.csv`, `embeddings.npy` (here), `groups.csv`, `cross_fmr.csv`, `equity.csv`,
//! `policies.csv` and the charts of [`charts`] ([`render`]), `index.html` and `summary.md` ([`page`]),
//! `run.json` ([`record`]); what the terminal shows is in [`console`].

pub mod audit;
pub mod charts;
pub mod comparison;
pub mod console;
pub mod findings;
pub mod identification;
pub mod page;
pub mod pairs;
pub mod record;
pub mod render;
pub mod staging;

pub use staging::Staging;

use serde::Serialize;

use crate::embed::extract::SampleResult;
use crate::manifest::Manifest;

pub use record::SCHEMA_VERSION;

/// `embeddings.npy` bytes: NumPy format 1.0, little-endian float32, C order, shape `[rows, dim]`.
pub fn npy_f32(data: &[f32], rows: usize, dim: usize) -> Vec<u8> {
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    // magic (6) + version (2) + header length (2) + header + padding + '\n' ≡ 0 (mod 64)
    let unpadded = 10 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad));
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    data.iter()
        .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    out
}

/// Reads a float32 `[rows, dim]` array written by [`npy_f32`].
pub fn read_npy_f32(bytes: &[u8]) -> Result<(Vec<f32>, usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).map_err(|e| e.to_string())?;
    if !header.contains("'<f4'") {
        return Err(format!("expected float32 (<f4), header: {header}"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or("no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let (rows, dim) = match dims[..] {
        [r, d] => (r, d),
        _ => return Err(format!("expected a 2-d array, shape ({shape})")),
    };
    let data: Vec<f32> = bytes[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if data.len() != rows * dim {
        return Err(format!("{} values for shape ({rows}, {dim})", data.len()));
    }
    Ok((data, rows, dim))
}

/// `samples.csv`: one row per manifest row with its status and its row in `embeddings.npy`.
pub fn samples_csv(
    manifest: &Manifest,
    results: &[SampleResult],
    embedding_row: &[Option<usize>],
) -> Result<Vec<u8>, String> {
    samples_csv_with(manifest, results, embedding_row, &[], &[])
}

/// [`samples_csv`] with more columns at the end: `names`, and `values[i]` for sample i.
pub fn samples_csv_with(
    manifest: &Manifest,
    results: &[SampleResult],
    embedding_row: &[Option<usize>],
    names: &[&str],
    values: &[Vec<String>],
) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["path".to_string(), "subject".to_string()];
    header.extend(manifest.attributes.iter().cloned());
    header.extend(["status", "detail", "embedding_row", "face_score"].map(String::from));
    header.extend(names.iter().map(|n| n.to_string()));
    w.write_record(&header).map_err(|e| e.to_string())?;
    for (i, ((s, r), row)) in manifest
        .samples
        .iter()
        .zip(results)
        .zip(embedding_row)
        .enumerate()
    {
        let mut rec = vec![s.rel_path.clone(), s.subject.clone()];
        rec.extend(s.attributes.iter().cloned());
        rec.push(r.status.as_str().to_string());
        rec.push(r.detail.clone());
        rec.push(row.map(|x| x.to_string()).unwrap_or_default());
        rec.push(
            r.face
                .map(|f| format!("{:.4}", f.score))
                .unwrap_or_default(),
        );
        if let Some(v) = values.get(i) {
            rec.extend(v.iter().cloned());
        }
        w.write_record(&rec).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// A CSV of serialisable rows (header from the field names).
pub fn rows_csv<T: Serialize>(rows: &[T]) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_round_trips() {
        let bytes = npy_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3);
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(bytes[10 + hlen - 1], b'\n');
        let (data, r, d) = read_npy_f32(&bytes).unwrap();
        assert_eq!((r, d), (2, 3));
        assert_eq!(data[5], 6.0);
    }
}
