//! On-disk embedding cache: one append-only file per (model, detector, preprocessing) key, records keyed
//! by the sha256 of the image file's bytes. A rerun, or a run on another dataset sharing images, skips
//! finished work. Failures to find a face are cached too; decode errors are not (they are cheap).
//!
//! File format: `FBEC1\n`, then records `[32-byte image sha256][u8 status][dim × f32 LE if status = 0]`.
//! A truncated last record (an interrupted run) is ignored.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"FBEC1\n";

/// What the cache knows about one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// The L2-normalised embedding.
    Embedding(Vec<f32>),
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
        let mut entries = HashMap::new();
        if let Ok(bytes) = std::fs::read(&file) {
            let mut pos = 0;
            if bytes.starts_with(MAGIC) {
                pos = MAGIC.len();
                while pos + 33 <= bytes.len() {
                    let mut hash = [0u8; 32];
                    hash.copy_from_slice(&bytes[pos..pos + 32]);
                    let status = bytes[pos + 32];
                    pos += 33;
                    if status == 0 {
                        if pos + 4 * dim > bytes.len() {
                            break;
                        }
                        let v = bytes[pos..pos + 4 * dim]
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                        pos += 4 * dim;
                        entries.insert(hash, Cached::Embedding(v));
                    } else {
                        entries.insert(hash, Cached::NoFace);
                    }
                }
                // Rewind past a complete record only.
                pos = MAGIC.len()
                    + entries
                        .values()
                        .map(|c| {
                            33 + if matches!(c, Cached::Embedding(_)) {
                                4 * dim
                            } else {
                                0
                            }
                        })
                        .sum::<usize>();
            }
            if pos != bytes.len() {
                // Drop a truncated tail (or an unreadable file) so that appends stay aligned.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)
                    .map_err(|e| format!("cannot repair cache {}: {e}", file.display()))?;
                f.set_len(pos as u64)
                    .map_err(|e| format!("cannot repair cache {}: {e}", file.display()))?;
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
                Cached::Embedding(v) if v.len() == self.dim => {
                    buf.push(0);
                    v.iter()
                        .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
                }
                Cached::Embedding(_) => {
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
        let mut c = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert!(c.is_empty());
        c.append(&[
            ([1; 32], Cached::Embedding(vec![0.6, 0.8])),
            ([2; 32], Cached::NoFace),
        ])
        .unwrap();
        let again = EmbeddingCache::open(dir.path(), "k", 2).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(
            again.get(&[1; 32]),
            Some(&Cached::Embedding(vec![0.6, 0.8]))
        );
        assert_eq!(again.get(&[2; 32]), Some(&Cached::NoFace));
        // An interrupted write leaves half a record: it is ignored, the rest still loads.
        let path = again.path().unwrap().to_path_buf();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[3; 32]);
        bytes.push(0);
        bytes.extend_from_slice(&[0, 0]);
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(EmbeddingCache::open(dir.path(), "k", 2).unwrap().len(), 2);
    }
}
