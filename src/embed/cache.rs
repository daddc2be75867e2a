//! On-disk embedding cache: one append-only file per (model, detector, preprocessing) key, records keyed
//! by the sha256 of the image file's bytes. A rerun, or a run on another dataset sharing images, skips
//! finished work; an interrupted run resumes, because results are appended (and synced) in small
//! chunks while the run goes on. Failures to find a face are cached too; decode errors are not (they
//! are cheap).
//!
//! File format (`FBEC3`): the header `FBEC3\n` + embedding length (u32 LE), then fixed-size records
//! `[32-byte image sha256][u8 status][15 × f32 face][dim × f32 embedding][32-byte sha256 of the
//! record's bytes before it]`, all little-endian. Status 0 is an embedding (the face used: box, 5
//! landmarks, score); status 1 is "no face" with the floats zero. Fixed-size records mean a damaged
//! byte spoils one record, never the framing of the rest.
//!
//! Reading trusts nothing: a record whose checksum fails, whose status is unknown, whose floats are not
//! finite or whose embedding is not unit-length is **damaged**: ignored, counted, and its image is
//! embedded again. A torn last record (a run killed mid-write) is cut off under the file lock before
//! the next append. Writers take an exclusive lock (`flock`) on the file for each append, so
//! concurrent runs sharing one cache interleave whole records only.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::preprocess::detect::Face;

const MAGIC: &[u8] = b"FBEC3\n";
const HEADER: usize = MAGIC.len() + 4;
const FACE_F32: usize = 15;
/// The file name's extension: a new format gets a new name, so old caches are left alone, not misread.
const EXTENSION: &str = "fbec3";
/// How far an embedding's norm may be from 1 before the record counts as damaged.
const NORM_TOLERANCE: f32 = 1e-3;

/// What the cache knows about one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// The face used and the L2-normalised embedding.
    Embedding(Face, Vec<f32>),
    /// No face was found.
    NoFace,
}

/// The records of one cache file's bytes, read with every check (see the module notes).
#[derive(Debug, Default)]
pub struct Parsed {
    /// Valid records by image hash (the first valid record of a hash wins).
    pub entries: HashMap<[u8; 32], Cached>,
    /// Records ignored as damaged.
    pub damaged: usize,
    /// Bytes of header and whole records; anything after is a torn tail.
    pub whole_len: usize,
}

/// The size in bytes of one record for embeddings of length `dim`.
pub fn record_len(dim: usize) -> usize {
    33 + 4 * (FACE_F32 + dim) + 32
}

/// The file header for embeddings of length `dim`.
fn header(dim: usize) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&(dim as u32).to_le_bytes());
    h
}

/// Parses a cache file's bytes for embeddings of length `dim`. `Err` means the header is not an
/// `FBEC3` header for this `dim` (nothing in the file can be used).
pub fn parse(bytes: &[u8], dim: usize) -> Result<Parsed, String> {
    if bytes.len() < HEADER || bytes[..HEADER] != header(dim)[..] {
        return Err(format!(
            "the header is not an FBEC3 header for {dim}-long embeddings"
        ));
    }
    let rec = record_len(dim);
    let mut out = Parsed {
        whole_len: HEADER,
        ..Parsed::default()
    };
    for r in bytes[HEADER..].chunks_exact(rec) {
        out.whole_len += rec;
        match decode_record(r, dim) {
            Some((hash, c)) => {
                out.entries.entry(hash).or_insert(c);
            }
            None => out.damaged += 1,
        }
    }
    Ok(out)
}

fn decode_record(r: &[u8], dim: usize) -> Option<([u8; 32], Cached)> {
    let body = &r[..r.len() - 32];
    if Sha256::digest(body)[..] != r[r.len() - 32..] {
        return None;
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&body[..32]);
    let floats: Vec<f32> = body[33..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    match body[32] {
        0 => {
            let (f, v) = floats.split_at(FACE_F32);
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let finite = floats.iter().all(|x| x.is_finite());
            if !finite || v.len() != dim || (norm - 1.0).abs() > NORM_TOLERANCE {
                return None;
            }
            let face = Face {
                bbox: [f[0], f[1], f[2], f[3]],
                landmarks: [
                    [f[4], f[5]],
                    [f[6], f[7]],
                    [f[8], f[9]],
                    [f[10], f[11]],
                    [f[12], f[13]],
                ],
                score: f[14],
            };
            Some((hash, Cached::Embedding(face, v.to_vec())))
        }
        1 if floats.iter().all(|x| *x == 0.0) => Some((hash, Cached::NoFace)),
        _ => None,
    }
}

/// Encodes one record; `None` when an embedding's length is not `dim`.
fn encode_record(hash: &[u8; 32], c: &Cached, dim: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(record_len(dim));
    buf.extend_from_slice(hash);
    match c {
        Cached::Embedding(f, v) if v.len() == dim => {
            buf.push(0);
            let landmarks = f.landmarks.iter().flatten();
            f.bbox
                .iter()
                .chain(landmarks)
                .chain(std::iter::once(&f.score))
                .chain(v.iter())
                .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
        }
        Cached::Embedding(..) => return None,
        Cached::NoFace => {
            buf.push(1);
            buf.resize(33 + 4 * (FACE_F32 + dim), 0);
        }
    }
    let sum = Sha256::digest(&buf);
    buf.extend_from_slice(&sum);
    Some(buf)
}

struct Writer {
    file: File,
    /// Hashes already in the file or written by this run (not written twice).
    written: HashSet<[u8; 32]>,
}

/// An embedding cache bound to one file.
pub struct EmbeddingCache {
    file: Option<PathBuf>,
    dim: usize,
    entries: HashMap<[u8; 32], Cached>,
    damaged: usize,
    set_aside: Option<PathBuf>,
    writer: Option<Mutex<Writer>>,
}

fn io_error<'a>(file: &'a Path, what: &str) -> impl Fn(std::io::Error) -> String + 'a {
    let what = what.to_string();
    move |e| {
        format!(
            "cannot {what} the embedding cache {}: {e}; pass a writable --cache-dir or --no-cache",
            file.display()
        )
    }
}

impl EmbeddingCache {
    /// A cache that remembers nothing (`--no-cache`).
    pub fn disabled() -> EmbeddingCache {
        EmbeddingCache {
            file: None,
            dim: 0,
            entries: HashMap::new(),
            damaged: 0,
            set_aside: None,
            writer: None,
        }
    }

    /// Opens (creating it if needed) the cache file for `key` in `dir`, for embeddings of length
    /// `dim`, and reads it. Fails now, before any image is embedded, when the cache cannot be written.
    /// A file whose header is unreadable is renamed aside (see [`EmbeddingCache::set_aside`]) and a
    /// new one started.
    pub fn open(dir: &Path, key: &str, dim: usize) -> Result<EmbeddingCache, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create cache folder {}: {e}; pass --cache-dir or --no-cache",
                dir.display()
            )
        })?;
        let path = dir.join(format!("{key}.{EXTENSION}"));
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
        };
        let mut file = open().map_err(io_error(&path, "write"))?;
        file.lock().map_err(io_error(&path, "lock"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_error(&path, "read"))?;
        let mut set_aside = None;
        let parsed = if bytes.is_empty() {
            None
        } else {
            match parse(&bytes, dim) {
                Ok(p) => Some(p),
                Err(_) => {
                    // Not ours to read, but made by this tool under its own name: keep it, aside.
                    let stamp = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let aside = path.with_extension(format!("{EXTENSION}.unreadable-{stamp}"));
                    std::fs::rename(&path, &aside).map_err(io_error(&path, "rename aside"))?;
                    drop(file);
                    file = open().map_err(io_error(&path, "write"))?;
                    file.lock().map_err(io_error(&path, "lock"))?;
                    bytes.clear();
                    file.read_to_end(&mut bytes)
                        .map_err(io_error(&path, "read"))?;
                    set_aside = Some(aside);
                    (!bytes.is_empty())
                        .then(|| parse(&bytes, dim).ok())
                        .flatten()
                }
            }
        };
        if bytes.is_empty() {
            file.write_all(&header(dim))
                .map_err(io_error(&path, "write"))?;
        }
        let parsed = parsed.unwrap_or(Parsed {
            whole_len: HEADER,
            ..Parsed::default()
        });
        file.unlock().map_err(io_error(&path, "unlock"))?;
        let written = parsed.entries.keys().copied().collect();
        Ok(EmbeddingCache {
            file: Some(path),
            dim,
            entries: parsed.entries,
            damaged: parsed.damaged,
            set_aside,
            writer: Some(Mutex::new(Writer { file, written })),
        })
    }

    /// The cache file, if enabled.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Looks an image up by content hash.
    pub fn get(&self, hash: &[u8; 32]) -> Option<&Cached> {
        self.entries.get(hash)
    }

    /// Number of cached images read when the cache was opened.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache held nothing when opened.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records ignored as damaged when the cache was opened (their images are embedded again).
    pub fn damaged(&self) -> usize {
        self.damaged
    }

    /// Where an unreadable cache file (a foreign header) was moved when opening, if one was.
    pub fn set_aside(&self) -> Option<&Path> {
        self.set_aside.as_deref()
    }

    /// Appends new results to the cache file and syncs it, under the file's exclusive lock. Safe to
    /// call from several threads (and processes) at once; an image already written is not written
    /// again. A torn record left by a killed writer is cut off first.
    pub fn append(&self, new: &[([u8; 32], Cached)]) -> Result<(), String> {
        let (Some(path), Some(writer)) = (&self.file, &self.writer) else {
            return Ok(());
        };
        let mut w = writer
            .lock()
            .map_err(|_| format!("the cache {} lock is poisoned", path.display()))?;
        let mut buf = Vec::new();
        for (hash, c) in new {
            if w.written.contains(hash) {
                continue;
            }
            if let Some(rec) = encode_record(hash, c, self.dim) {
                buf.extend_from_slice(&rec);
                w.written.insert(*hash);
            }
        }
        if buf.is_empty() {
            return Ok(());
        }
        let file = &mut w.file;
        file.lock().map_err(io_error(path, "lock"))?;
        let result = (|| {
            let len = file.seek(SeekFrom::End(0))? as usize;
            let rec = record_len(self.dim);
            let whole = HEADER + len.saturating_sub(HEADER) / rec * rec;
            if len > HEADER && whole != len {
                file.set_len(whole as u64)?;
            }
            file.write_all(&buf)?;
            file.sync_data()
        })();
        let unlocked = file.unlock();
        result.map_err(io_error(path, "write"))?;
        unlocked.map_err(io_error(path, "unlock"))
    }
}

/// The default cache folder: `$XDG_CACHE_HOME/facebias`, else `$HOME/.cache/facebias`, else `.facebias-cache`.
pub fn default_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("facebias");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".cache").join("facebias");
    }
    PathBuf::from(".facebias-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACE: Face = Face {
        bbox: [1.0, 2.0, 3.0, 4.0],
        landmarks: [[5.0, 6.0]; 5],
        score: 0.9,
    };

    fn filled(dir: &Path) -> PathBuf {
        let c = EmbeddingCache::open(dir, "k", 2).unwrap();
        assert!(c.is_empty());
        c.append(&[
            ([1; 32], Cached::Embedding(FACE, vec![0.6, 0.8])),
            ([2; 32], Cached::NoFace),
        ])
        .unwrap();
        c.path().unwrap().to_path_buf()
    }

    #[test]
    fn round_trip_and_truncated_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled(dir.path());
        // Header 10 bytes + 2 records of 33 + 4 × 17 + 32 = 133 bytes.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 10 + 2 * 133);
        let again = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again.damaged(), 0);
        assert_eq!(
            again.get(&[1; 32]),
            Some(&Cached::Embedding(FACE, vec![0.6, 0.8]))
        );
        assert_eq!(again.get(&[2; 32]), Some(&Cached::NoFace));
        // An interrupted write leaves part of a record: it is ignored, and cut before the next append.
        let mut bytes = std::fs::read(&path).unwrap();
        let complete = bytes.len();
        bytes.extend_from_slice(&[3; 40]);
        std::fs::write(&path, bytes).unwrap();
        let c = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert_eq!((c.len(), c.damaged()), (2, 0));
        c.append(&[([4; 32], Cached::NoFace)]).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            complete + 133
        );
        let c = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert_eq!(c.get(&[4; 32]), Some(&Cached::NoFace));
        assert_eq!((c.len(), c.damaged()), (3, 0));
    }

    #[test]
    fn damaged_records_are_counted_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled(dir.path());
        let clean = std::fs::read(&path).unwrap();
        // A flipped byte inside the first record's embedding: the checksum fails.
        let mut bytes = clean.clone();
        bytes[10 + 33 + 60] ^= 0x40;
        let p = parse(&bytes, 2).unwrap();
        assert_eq!((p.entries.len(), p.damaged), (1, 1));
        assert_eq!(p.entries.get(&[2; 32]), Some(&Cached::NoFace));
        // A record re-checksummed by hand but holding a NaN or a zero vector is still refused.
        for v in [[f32::NAN, 0.0], [0.0, 0.0], [3.0, 4.0]] {
            let mut rec = encode_record(&[1; 32], &Cached::Embedding(FACE, v.to_vec()), 2).unwrap();
            rec.truncate(rec.len() - 32);
            let sum = Sha256::digest(&rec);
            rec.extend_from_slice(&sum);
            let mut bytes = header(2);
            bytes.extend_from_slice(&rec);
            assert_eq!(parse(&bytes, 2).unwrap().damaged, 1, "{v:?}");
        }
        // A changed status with a valid checksum over it: unknown status 7.
        let mut rec = encode_record(&[9; 32], &Cached::NoFace, 2).unwrap();
        rec[32] = 7;
        rec.truncate(rec.len() - 32);
        let sum = Sha256::digest(&rec);
        rec.extend_from_slice(&sum);
        let mut bytes = header(2);
        bytes.extend_from_slice(&rec);
        assert_eq!(parse(&bytes, 2).unwrap().damaged, 1);
        // Another length's header is refused as a whole.
        assert!(parse(&clean, 3).is_err());
    }

    #[test]
    fn an_unreadable_file_is_set_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.fbec3");
        std::fs::write(&path, b"not a cache at all").unwrap();
        let c = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert!(c.is_empty());
        let aside = c.set_aside().unwrap().to_path_buf();
        assert_eq!(std::fs::read(&aside).unwrap(), b"not a cache at all");
        assert_eq!(std::fs::read(&path).unwrap(), header(2));
    }

    #[test]
    fn concurrent_appends_keep_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let a = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        let b = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        std::thread::scope(|s| {
            for (c, base) in [(&a, 0u8), (&b, 100u8), (&a, 200u8)] {
                s.spawn(move || {
                    for i in 0..50u8 {
                        let v = Cached::Embedding(FACE, vec![0.6, 0.8]);
                        c.append(&[([base.wrapping_add(i); 32], v)]).unwrap();
                    }
                });
            }
        });
        let p = parse(&std::fs::read(a.path().unwrap()).unwrap(), 2).unwrap();
        assert_eq!((p.entries.len(), p.damaged), (150, 0));
    }
}
