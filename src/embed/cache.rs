//! On-disk embedding cache: one append-only file per (model, detector, preprocessing) key, records keyed
//! by the sha256 of the image file's bytes. A rerun, or a run on another dataset sharing images, skips
//! finished work. Failures to find a face are cached too; decode errors are not (they are cheap).
//!
//! File format: `FBEC2\n`, then records `[32-byte image sha256][u8 status]`, followed when status = 0
//! by the face used (15 × f32 LE: box, 5 landmarks, score) and the embedding (dim × f32 LE).
//! A truncated last record (an interrupted run) is cut off when the cache is opened.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::preprocess::detect::Face;

const MAGIC: &[u8] = b"FBEC2\n";
const FACE_F32: usize = 15;

/// What the cache knows about one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// The face used and the L2-normalised embedding.
    Embedding(Face, Vec<f32>),
    /// No face was found.
    NoFace,
}

/// An embedding cache bound to one file.
pub struct EmbeddingCache {
    file: Option<PathBuf>,
    dim: usize,
    entries: HashMap<[u8; 32], Cached>,
}

impl EmbeddingCache {
    /// A cache that remembers nothing (`--no-cache`).
    pub fn disabled() -> EmbeddingCache {
        EmbeddingCache {
            file: None,
            dim: 0,
            entries: HashMap::new(),
        }
    }

    /// Opens (or prepares to create) the cache file for `key` in `dir`, for embeddings of length `dim`.
    pub fn open(dir: &Path, key: &str, dim: usize) -> Result<EmbeddingCache, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create cache folder {}: {e}; pass --cache-dir or --no-cache",
                dir.display()
            )
        })?;
        let file = dir.join(format!("{key}.bin"));
        // Fail now, not after the embedding work, when the cache cannot be written.
        let probe = dir.join(format!(".write-probe-{}", std::process::id()));
        let writable = std::fs::write(&probe, b"").and_then(|_| std::fs::remove_file(&probe));
        let writable = writable.and_then(|_| {
            if file.exists() {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&file)
                    .map(|_| ())
            } else {
                Ok(())
            }
        });
        if let Err(e) = writable {
            return Err(format!(
                "cannot write the embedding cache in {}: {e}; pass a writable --cache-dir or --no-cache",
                dir.display()
            ));
        }
        let mut entries = HashMap::new();
        if let Ok(bytes) = std::fs::read(&file) {
            let mut good = 0;
            if bytes.starts_with(MAGIC) {
                let mut pos = MAGIC.len();
                good = pos;
                let f32_at = |p: usize| {
                    f32::from_le_bytes([bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]])
                };
                while pos + 33 <= bytes.len() {
                    let mut hash = [0u8; 32];
                    hash.copy_from_slice(&bytes[pos..pos + 32]);
                    let status = bytes[pos + 32];
                    pos += 33;
                    if status == 0 {
                        if pos + 4 * (FACE_F32 + dim) > bytes.len() {
                            break;
                        }
                        let f: Vec<f32> = (0..FACE_F32).map(|i| f32_at(pos + 4 * i)).collect();
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
                        pos += 4 * FACE_F32;
                        let v = (0..dim).map(|i| f32_at(pos + 4 * i)).collect();
                        pos += 4 * dim;
                        entries.insert(hash, Cached::Embedding(face, v));
                    } else {
                        entries.insert(hash, Cached::NoFace);
                    }
                    good = pos;
                }
            }
            if good != bytes.len() {
                // Cut a truncated tail (or an unreadable file) so that appends stay aligned.
                let repair =
                    |e: std::io::Error| format!("cannot repair cache {}: {e}", file.display());
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)
                    .map_err(repair)?;
                f.set_len(good as u64).map_err(repair)?;
            }
        }
        Ok(EmbeddingCache {
            file: Some(file),
            dim,
            entries,
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

    /// Number of cached images.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends new results (in the given order) to the cache file.
    pub fn append(&mut self, new: &[([u8; 32], Cached)]) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut buf = Vec::new();
        let exists = file.is_file()
            && std::fs::metadata(file)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
        if !exists {
            buf.extend_from_slice(MAGIC);
        }
        for (hash, c) in new {
            if self.entries.contains_key(hash) {
                continue;
            }
            buf.extend_from_slice(hash);
            match c {
                Cached::Embedding(f, v) if v.len() == self.dim => {
                    buf.push(0);
                    let landmarks = f.landmarks.iter().flatten();
                    f.bbox
                        .iter()
                        .chain(landmarks)
                        .chain(std::iter::once(&f.score))
                        .chain(v.iter())
                        .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                }
                Cached::Embedding(..) => {
                    buf.truncate(buf.len() - 32);
                    continue;
                }
                Cached::NoFace => buf.push(1),
            }
            self.entries.insert(*hash, c.clone());
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(|e| format!("cannot write cache {}: {e}", file.display()))?;
        f.write_all(&buf)
            .map_err(|e| format!("cannot write cache {}: {e}", file.display()))
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

    #[test]
    fn round_trip_and_truncated_tail() {
        let dir = tempfile::tempdir().unwrap();
        let face = Face {
            bbox: [1.0, 2.0, 3.0, 4.0],
            landmarks: [[5.0, 6.0]; 5],
            score: 0.9,
        };
        let mut c = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert!(c.is_empty());
        c.append(&[
            ([1; 32], Cached::Embedding(face, vec![0.6, 0.8])),
            ([2; 32], Cached::NoFace),
        ])
        .unwrap();
        let again = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(
            again.get(&[1; 32]),
            Some(&Cached::Embedding(face, vec![0.6, 0.8]))
        );
        assert_eq!(again.get(&[2; 32]), Some(&Cached::NoFace));
        // An interrupted write leaves half a record: it is ignored, the rest still loads.
        let path = again.path().unwrap().to_path_buf();
        let mut bytes = std::fs::read(&path).unwrap();
        let complete = bytes.len() as u64;
        bytes.extend_from_slice(&[3; 32]);
        bytes.push(0);
        bytes.extend_from_slice(&[0, 0]);
        std::fs::write(&path, bytes).unwrap();
        let mut c = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            complete,
            "the torn record is cut off"
        );
        c.append(&[([4; 32], Cached::NoFace)]).unwrap();
        assert_eq!(
            EmbeddingCache::open(dir.path(), "k", 2)
                .unwrap()
                .get(&[4; 32]),
            Some(&Cached::NoFace)
        );
    }
}
