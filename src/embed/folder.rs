//! Embed folders (`facebias embed --out DIR`: `samples.csv`, `embeddings.npy`, `run.json`) as inputs:
//! the share of the samples an embedding shard takes, joining shard folders into the folder an
//! unsharded embed writes, and reading a folder back — `embeddings.npy` memory-mapped, so the
//! comparison reads the matrix from the page cache instead of holding a copy of it.

use std::path::{Path, PathBuf};

use crate::compare::kernel::Shard;

/// The samples (manifest rows, 0-based, end exclusive) that embedding shard `shard` of a manifest of
/// `n` rows embeds: contiguous, in manifest order, sizes differing by at most one, so that the shards'
/// `samples.csv` and `embeddings.npy` concatenate into the unsharded ones.
pub fn shard_range(n: usize, shard: Shard) -> std::ops::Range<usize> {
    let at = |k: usize| (k as u128 * n as u128 / shard.count as u128) as usize;
    at(shard.index)..at(shard.index + 1)
}

/// The float32 `[rows, dim]` matrix of an `embeddings.npy`, memory-mapped read-only (or, for an
/// empty matrix, no mapping at all).
pub struct MappedMatrix {
    map: Option<Mapping>,
    /// Byte offset of the data in the file (the npy header's length, a multiple of 64).
    offset: usize,
    /// Rows.
    pub rows: usize,
    /// Values per row.
    pub dim: usize,
}

/// A read-only `mmap` of a whole file, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and private; the pointer is only read through `&self`.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

impl Mapping {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping spans `len` readable bytes for the lifetime of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl MappedMatrix {
    /// Maps `path` and checks its npy header: float32 little-endian, C order, two dimensions, and a
    /// file exactly as long as the header says.
    pub fn open(path: &Path) -> Result<MappedMatrix, String> {
        use std::os::unix::io::AsRawFd;
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let len = file
            .metadata()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .len() as usize;
        let map = if len == 0 {
            None
        } else {
            // SAFETY: a fresh read-only private mapping of an open file; checked for MAP_FAILED.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(format!(
                    "cannot map {}: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                ));
            }
            Some(Mapping { ptr, len })
        };
        let bytes = map.as_ref().map_or(&[][..], |m| m.bytes());
        let (offset, rows, dim) =
            npy_header(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let want = offset as u128 + rows as u128 * dim as u128 * 4;
        if want != bytes.len() as u128 {
            return Err(format!(
                "{}: the header says {rows} x {dim} float32 values ({want} bytes with the header) but the file has {} bytes; it is truncated or not facebias's",
                path.display(),
                bytes.len()
            ));
        }
        if !cfg!(target_endian = "little") {
            return Err("memory-mapped embeddings need a little-endian machine".into());
        }
        Ok(MappedMatrix {
            map,
            offset,
            rows,
            dim,
        })
    }

    /// The whole file, header included.
    pub fn file_bytes(&self) -> &[u8] {
        self.map.as_ref().map_or(&[][..], |m| m.bytes())
    }

    /// The `rows × dim` values, row-major.
    pub fn values(&self) -> &[f32] {
        let data = &self.file_bytes()[self.offset.min(self.file_bytes().len())..];
        // SAFETY: the data starts at a multiple of 64 bytes from a page-aligned mapping, so it is
        // aligned for f32; every bit pattern is a valid f32; the length was checked in `open`.
        let (head, values, _) = unsafe { data.align_to::<f32>() };
        assert!(head.is_empty(), "npy data not aligned for f32");
        &values[..self.rows * self.dim]
    }
}

/// `(data offset, rows, dim)` of a float32 C-order two-dimensional npy header.
fn npy_header(bytes: &[u8]) -> Result<(usize, usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = bytes
        .get(10..10 + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("damaged npy header")?;
    if !header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False") {
        return Err(format!(
            "expected float32 (<f4) in C order, header: {header}"
        ));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| format!("no shape in npy header: {header}"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad shape in npy header: {header}"))?;
    match dims[..] {
        [rows, dim] if (10 + hlen).is_multiple_of(64) => Ok((10 + hlen, rows, dim)),
        [_, _] => Err(format!(
            "npy header of {} bytes is not 64-byte aligned (facebias writes aligned headers)",
            10 + hlen
        )),
        _ => Err(format!("expected a 2-dimensional array, header: {header}")),
    }
}

/// One row of an embed folder's `samples.csv`, as the comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRow {
    /// `path`, as the manifest writes it.
    pub path: String,
    /// `subject`.
    pub subject: String,
    /// `status` (`ok`, `no_face`, …).
    pub status: String,
    /// `embedding_row`: the sample's row of `embeddings.npy` (none for a failure to enrol).
    pub row: Option<usize>,
}

/// Parses `samples.csv` bytes into the header and rows; `what` names the file for errors.
fn parse_samples(
    bytes: &[u8],
    what: &str,
) -> Result<(csv::StringRecord, Vec<csv::StringRecord>), String> {
    let mut r = csv::ReaderBuilder::new().from_reader(bytes);
    let header = r.headers().map_err(|e| format!("{what}: {e}"))?.clone();
    let records = r
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    Ok((header, records))
}

/// The index of column `name` in `header`.
fn column(header: &csv::StringRecord, name: &str, what: &str) -> Result<usize, String> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| format!("{what} has no `{name}` column; is it a facebias samples.csv?"))
}

/// The rows of `samples.csv` bytes.
pub fn sample_rows(bytes: &[u8], what: &str) -> Result<Vec<SampleRow>, String> {
    let (header, records) = parse_samples(bytes, what)?;
    let [p, s, st, er] =
        ["path", "subject", "status", "embedding_row"].map(|c| column(&header, c, what));
    let (p, s, st, er) = (p?, s?, st?, er?);
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let row = match r.get(er).unwrap_or("") {
                "" => None,
                v => Some(v.parse::<usize>().map_err(|_| {
                    format!("{what} row {}: embedding_row `{v}` is not a number", i + 2)
                })?),
            };
            Ok(SampleRow {
                path: r.get(p).unwrap_or("").to_string(),
                subject: r.get(s).unwrap_or("").to_string(),
                status: r.get(st).unwrap_or("").to_string(),
                row,
            })
        })
        .collect()
}

/// Joins the `samples.csv` of embedding shards 0, 1, … (in that order) into the unsharded one: one
/// header, every shard's rows, `embedding_row` numbered on from the rows of the shards before.
pub fn join_samples(parts: &[(&Path, &[u8])]) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut first: Option<csv::StringRecord> = None;
    let mut offset = 0usize;
    for (dir, bytes) in parts {
        let what = dir.join("samples.csv").display().to_string();
        let (header, records) = parse_samples(bytes, &what)?;
        match &first {
            None => {
                w.write_record(&header).map_err(|e| e.to_string())?;
                first = Some(header.clone());
            }
            Some(h) if *h != header => {
                return Err(format!(
                    "{what} has other columns than the first shard's ({:?} against {:?})",
                    header.iter().collect::<Vec<_>>(),
                    h.iter().collect::<Vec<_>>()
                ))
            }
            Some(_) => {}
        }
        let er = column(&header, "embedding_row", &what)?;
        let mut rows = 0;
        for (i, r) in records.iter().enumerate() {
            let mut out: Vec<String> = r.iter().map(String::from).collect();
            if let Some(v) = out.get_mut(er).filter(|v| !v.is_empty()) {
                let local: usize = v.parse().map_err(|_| {
                    format!("{what} row {}: embedding_row `{v}` is not a number", i + 2)
                })?;
                if local != rows {
                    return Err(format!(
                        "{what} row {}: embedding_row {local} where {rows} was expected (rows are numbered in order)",
                        i + 2
                    ));
                }
                *v = (local + offset).to_string();
                rows += 1;
            }
            w.write_record(&out).map_err(|e| e.to_string())?;
        }
        offset += rows;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// An embed folder read back for the comparison: its `samples.csv` bytes and rows, the mapped
/// `embeddings.npy` and its `run.json`.
pub struct EmbedFolder {
    /// The folder.
    pub dir: PathBuf,
    /// `samples.csv` as written.
    pub samples_csv: Vec<u8>,
    /// Its rows.
    pub samples: Vec<SampleRow>,
    /// `embeddings.npy`, mapped.
    pub matrix: MappedMatrix,
    /// `run.json`.
    pub record: serde_json::Value,
}

impl EmbedFolder {
    /// Reads `dir` and checks that it is a whole (not a shard's) embed folder whose `samples.csv`
    /// numbers exactly the rows of its `embeddings.npy`.
    pub fn open(dir: &Path) -> Result<EmbedFolder, String> {
        let rec_path = dir.join("run.json");
        let record: serde_json::Value = std::fs::read(&rec_path)
            .map_err(|e| {
                format!(
                    "cannot read {}; is {} a `facebias embed` folder?: {e}",
                    rec_path.display(),
                    dir.display()
                )
            })
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", rec_path.display()))
            })?;
        if record["model"]["sha256"].as_str().is_none() || record.get("enrolled").is_none() {
            return Err(format!(
                "{} is not a `facebias embed` folder (its run.json has no model and enrolled count)",
                dir.display()
            ));
        }
        if let Some(s) = record["shard"]
            .as_array()
            .filter(|s| s.get(1).and_then(|v| v.as_u64()) > Some(1))
        {
            return Err(format!(
                "{} holds only embedding shard {} of {}; join the shards first with `facebias embed-merge`",
                dir.display(),
                s[0],
                s[1]
            ));
        }
        let csv_path = dir.join("samples.csv");
        let samples_csv = std::fs::read(&csv_path)
            .map_err(|e| format!("cannot read {}: {e}", csv_path.display()))?;
        let samples = sample_rows(&samples_csv, &csv_path.display().to_string())?;
        let matrix = MappedMatrix::open(&dir.join("embeddings.npy"))?;
        for (i, s) in samples.iter().filter_map(|s| s.row).enumerate() {
            if s != i {
                return Err(format!(
                    "{}: embedding_row {s} where {i} was expected (rows are numbered in order)",
                    csv_path.display()
                ));
            }
        }
        let enrolled = samples.iter().filter(|s| s.row.is_some()).count();
        if enrolled != matrix.rows {
            return Err(format!(
                "{} lists {enrolled} embedded samples but {} has {} rows; the folder is damaged or mixed",
                csv_path.display(),
                dir.join("embeddings.npy").display(),
                matrix.rows
            ));
        }
        Ok(EmbedFolder {
            dir: dir.to_path_buf(),
            samples_csv,
            samples,
            matrix,
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ranges_tile_the_samples_in_order() {
        for n in [0usize, 1, 5, 96, 1001] {
            for count in 1..=7 {
                let mut next = 0;
                for index in 0..count {
                    let r = shard_range(n, Shard { index, count });
                    assert_eq!(r.start, next);
                    assert!(
                        r.len() == n / count || r.len() == n / count + 1,
                        "{n} {count} {r:?}"
                    );
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }

    #[test]
    fn joined_samples_renumber_rows_and_keep_failures_blank() {
        let a = b"path,subject,status,detail,embedding_row,face_score\nx.jpg,s1,ok,,0,0.9000\ny.jpg,s1,no_face,none,,\n";
        let b = b"path,subject,status,detail,embedding_row,face_score\n\"z,1.jpg\",s2,ok,,0,0.8000\nw.jpg,s2,ok,,1,0.7000\n";
        let joined = join_samples(&[(Path::new("a"), a), (Path::new("b"), b)]).unwrap();
        assert_eq!(
            String::from_utf8(joined).unwrap(),
            "path,subject,status,detail,embedding_row,face_score\nx.jpg,s1,ok,,0,0.9000\ny.jpg,s1,no_face,none,,\n\"z,1.jpg\",s2,ok,,1,0.8000\nw.jpg,s2,ok,,2,0.7000\n"
        );
        let other = b"path,subject,sex,status,detail,embedding_row,face_score\n";
        let err = join_samples(&[(Path::new("a"), a), (Path::new("c"), other)]).unwrap_err();
        assert!(err.contains("other columns"), "{err}");
    }

    #[test]
    fn mapped_matrix_reads_what_npy_f32_wrote_and_refuses_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.npy");
        let values: Vec<f32> = (0..15).map(|i| i as f32 * 0.5 - 3.0).collect();
        std::fs::write(&p, crate::report::npy_f32(&values, 5, 3)).unwrap();
        let m = MappedMatrix::open(&p).unwrap();
        assert_eq!((m.rows, m.dim), (5, 3));
        assert_eq!(m.values(), &values[..]);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 4]).unwrap();
        let err = MappedMatrix::open(&p).err().unwrap();
        assert!(err.contains("truncated"), "{err}");
        std::fs::write(&p, b"not npy").unwrap();
        assert!(MappedMatrix::open(&p).err().unwrap().contains("not a .npy"));
    }
}
