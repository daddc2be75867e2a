//! `comparisons.bin`: everything the metrics need, saved in the run folder so reports can be
//! re-rendered and sharded runs merged without touching the model or recomputing any comparison.
//!
//! Layout: `FBCMP2\n` (`FBCMP1\n` without the checksum), a u32 LE length and a JSON header ([`Header`]), then little-endian u64 arrays:
//! per combo `images`, `fte`, `mated_total`; per cell `nonmated_total`; then each histogram (all
//! non-mated cells, then the mated histogram of each combo) stored sparsely as a u32 count of non-zero
//! bins followed by that many `(u32 bin, u64 count)` pairs; then (version 2, `FBCMP2`) the sha256 of
//! everything before it, checked on reading.

use serde::{Deserialize, Serialize};

use super::Comparisons;
use crate::compare::{CellHistograms, ScoreHistogram, BINS};

/// Version 2: the bytes end with the sha256 of everything before it ([`seal`]).
const MAGIC: &[u8] = b"FBCMP2\n";
/// Version 1 (no checksum), still read.
const MAGIC_V1: &[u8] = b"FBCMP1\n";

/// Appends the sha256 of `body`, so that any changed byte is found when the file is read back.
pub fn seal(mut body: Vec<u8>) -> Vec<u8> {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&body);
    body.extend_from_slice(&digest);
    body
}

/// Checks and strips the trailer written by [`seal`]; `what` names the file in the error.
pub fn unseal<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8], String> {
    let n = bytes
        .len()
        .checked_sub(32)
        .ok_or_else(|| format!("{what} is truncated"))?;
    let (body, sum) = bytes.split_at(n);
    if <sha2::Sha256 as sha2::Digest>::digest(body).as_slice() != sum {
        return Err(format!(
            "{what} is damaged (its sha256 does not match its contents); rerun the run that wrote it"
        ));
    }
    Ok(body)
}

/// Metadata stored with the counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Attribute names.
    pub attributes: Vec<String>,
    /// Attribute values of each combo (finest group), in combo order.
    pub combos: Vec<Vec<String>>,
    /// Which shard these histograms cover: `[index, count]`; `[0, 1]` for a whole run.
    pub shard: [usize; 2],
    /// sha256 of the inputs the comparisons were computed from (embeddings and sample assignment);
    /// shards merge only when it is equal.
    pub fingerprint: String,
    /// Kernel that computed the scores.
    pub kernel: String,
    /// Pairs left out of every count by `--exclude-pairs` (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excluded_pairs: usize,
    /// Revision of the way `--shard` splits the pairs ([`SPLIT_REVISION`]; 0 in files written before
    /// it was recorded): shards of different revisions cover different pairs and never merge.
    #[serde(default)]
    pub split_revision: u32,
}

/// The revision of the pair split behind `--shard` ([`Header::split_revision`]). 1: the CPU row blocks
/// before the AVX-512 kernel (recorded as 0); 2: row blocks in multiples of 42 rows. Bump it whenever
/// the work units of any kernel change.
pub const SPLIT_REVISION: u32 = 2;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// sha256 over several byte strings (length-prefixed), as hex: the [`Header::fingerprint`] of a run's
/// `samples.csv` and `embeddings.npy`.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    for p in parts {
        sha2::Digest::update(&mut h, (p.len() as u64).to_le_bytes());
        sha2::Digest::update(&mut h, p);
    }
    sha2::Digest::finalize(h)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn put(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_hist(out: &mut Vec<u8>, h: &ScoreHistogram) {
    let nz: Vec<(usize, u64)> = h
        .counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(b, &c)| (b, c))
        .collect();
    out.extend_from_slice(&(nz.len() as u32).to_le_bytes());
    for (b, c) in nz {
        out.extend_from_slice(&(b as u32).to_le_bytes());
        put(out, c);
    }
}

/// Serialises comparisons with their header.
pub fn to_bytes(header: &Header, c: &Comparisons) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("header serialises");
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    for v in c
        .images
        .iter()
        .chain(&c.fte)
        .chain(&c.mated_total)
        .chain(&c.nonmated_total)
    {
        put(&mut out, *v);
    }
    c.nonmated
        .cells
        .iter()
        .chain(&c.mated)
        .for_each(|h| put_hist(&mut out, h));
    seal(out)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or("comparisons file is truncated")?;
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn vec(&mut self, n: usize) -> Result<Vec<u64>, String> {
        (0..n).map(|_| self.u64()).collect()
    }
    fn hist(&mut self) -> Result<ScoreHistogram, String> {
        let mut h = ScoreHistogram::default();
        for _ in 0..self.u32()? {
            let b = self.u32()? as usize;
            let c = self.u64()?;
            *h.counts
                .get_mut(b)
                .ok_or("comparisons file has a bin out of range")? = c;
        }
        Ok(h)
    }
}

/// Parses a `comparisons.bin`.
pub fn from_bytes(bytes: &[u8]) -> Result<(Header, Comparisons), String> {
    let bytes = if bytes.starts_with(MAGIC) {
        unseal(bytes, "comparisons.bin")?
    } else if bytes.starts_with(MAGIC_V1) {
        bytes
    } else {
        return Err("not a facebias comparisons.bin (bad magic)".into());
    };
    let mut r = Reader {
        b: bytes,
        pos: MAGIC.len(),
    };
    let len = r.u32()? as usize;
    let header: Header =
        serde_json::from_slice(r.take(len)?).map_err(|e| format!("bad header: {e}"))?;
    let k = header.combos.len();
    // A run never makes more combos than this; a header claiming more would make the dense
    // histograms below (512 KiB each) a memory bomb.
    if k > crate::metrics::groups::MAX_COMBOS {
        return Err(format!(
            "comparisons file claims {k} groups, more than a run makes ({})",
            crate::metrics::groups::MAX_COMBOS
        ));
    }
    let cells = k * (k + 1) / 2;
    let images = r.vec(k)?;
    let fte = r.vec(k)?;
    let mated_total = r.vec(k)?;
    let nonmated_total = r.vec(cells)?;
    let mut nonmated = CellHistograms {
        groups: k,
        cells: Vec::with_capacity(cells),
    };
    for _ in 0..cells {
        nonmated.cells.push(r.hist()?);
    }
    let mated = (0..k).map(|_| r.hist()).collect::<Result<Vec<_>, _>>()?;
    if r.pos != bytes.len() {
        return Err("comparisons file has trailing bytes".into());
    }
    debug_assert!(nonmated.cells.iter().all(|h| h.counts.len() == BINS));
    Ok((
        header,
        Comparisons {
            nonmated,
            nonmated_total,
            mated,
            mated_total,
            images,
            fte,
        },
    ))
}

/// Adds shard `b` into `a`: histograms are summed; totals, which describe the whole dataset, must agree.
pub fn merge_into(a: &mut Comparisons, b: &Comparisons) -> Result<(), String> {
    if a.images != b.images
        || a.fte != b.fte
        || a.mated_total != b.mated_total
        || a.nonmated_total != b.nonmated_total
    {
        return Err("the shards describe different datasets (their totals differ)".into());
    }
    a.nonmated.merge(&b.nonmated);
    a.mated
        .iter_mut()
        .zip(&b.mated)
        .for_each(|(x, y)| x.merge(y));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut nonmated = CellHistograms::new(2);
        nonmated.cells[1].counts[7] = 3;
        nonmated.cells[2].counts[BINS - 1] = 1 << 40;
        let mut mated = vec![ScoreHistogram::default(), ScoreHistogram::default()];
        mated[0].counts[40000] = 5;
        let c = Comparisons {
            nonmated,
            nonmated_total: vec![1, 2, 3],
            mated,
            mated_total: vec![5, 0],
            images: vec![4, 4],
            fte: vec![0, 1],
        };
        let h = Header {
            attributes: vec!["sex".into()],
            combos: vec![vec!["f".into()], vec!["m".into()]],
            shard: [0, 1],
            fingerprint: "x".into(),
            kernel: "k".into(),
            excluded_pairs: 0,
            split_revision: SPLIT_REVISION,
        };
        let bytes = to_bytes(&h, &c);
        // Any flipped byte — a count, a bin, the header — is found, never read as a number.
        for at in [8, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x04;
            let err = from_bytes(&bad).unwrap_err();
            assert!(err.contains("damaged") || err.contains("magic"), "{err}");
        }
        assert!(from_bytes(&bytes[..bytes.len() - 5]).is_err());
        let (h2, c2) = from_bytes(&bytes).unwrap();
        assert_eq!(h, h2);
        assert_eq!(c.nonmated, c2.nonmated);
        assert_eq!(
            (&c.mated, &c.images, &c.fte, &c.nonmated_total),
            (&c2.mated, &c2.images, &c2.fte, &c2.nonmated_total)
        );
        assert!(from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut doubled = c2.clone();
        merge_into(&mut doubled, &c2).unwrap();
        assert_eq!(doubled.nonmated.cells[2].counts[BINS - 1], 1 << 41);
    }
}
