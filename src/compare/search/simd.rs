//! The x86-64 micro-kernels of the 1:N search: a tile of MR gallery entries (k-major, one broadcast
//! per entry and k) against a panel of NR probes (NR/lanes vector loads per k), `fmadd` over k in
//! increasing order, then one `≥ threshold` compare per accumulator register into lane masks.
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::tiled::{run_tiles, Pass, Tile};

/// 14 entries × 32 probes in 28 zmm accumulators (2 panel loads and 14 broadcasts per k).
pub(super) struct Avx512Tile;

impl Tile for Avx512Tile {
    const MR: usize = 14;
    const NR: usize = 32;

    unsafe fn run(
        pass: &Pass,
        acc: &mut [f32],
        from: usize,
        thr: Option<&[f32]>,
        masks: &mut [u64],
    ) -> Option<usize> {
        // SAFETY: as for `tile`.
        unsafe { run512::<14, 2>(pass, acc, from, thr, masks) }
    }
}

/// 6 entries × 16 probes in 12 ymm accumulators (the 1:1 kernel's tile).
pub(super) struct Avx2Tile;

impl Tile for Avx2Tile {
    const MR: usize = 6;
    const NR: usize = 16;

    unsafe fn run(
        pass: &Pass,
        acc: &mut [f32],
        from: usize,
        thr: Option<&[f32]>,
        masks: &mut [u64],
    ) -> Option<usize> {
        // SAFETY: as for `tile`.
        unsafe { run256::<6, 2>(pass, acc, from, thr, masks) }
    }
}

/// [`Tile::run`] with [`tile512`] inlined.
///
/// # Safety
/// As for [`tile512`], for every tile of the pass.
#[target_feature(enable = "avx512f")]
unsafe fn run512<const MR: usize, const NV: usize>(
    pass: &Pass,
    acc: &mut [f32],
    from: usize,
    thr: Option<&[f32]>,
    masks: &mut [u64],
) -> Option<usize> {
    run_tiles(pass, (MR, 16 * NV), acc, from, |a, acc| {
        // SAFETY: AVX-512F is enabled here; `run_tiles` hands MR·kc floats of the tile and MR·16·NV
        // accumulators, the pass holds kc·16·NV panel floats, the caller `thr` and `masks`.
        unsafe { tile512::<MR, NV>(pass, a, acc, thr, masks) }
    })
}

/// [`Tile::run`] with [`tile256`] inlined.
///
/// # Safety
/// As for [`tile256`], for every tile of the pass.
#[target_feature(enable = "avx2,fma")]
unsafe fn run256<const MR: usize, const NV: usize>(
    pass: &Pass,
    acc: &mut [f32],
    from: usize,
    thr: Option<&[f32]>,
    masks: &mut [u64],
) -> Option<usize> {
    run_tiles(pass, (MR, 8 * NV), acc, from, |a, acc| {
        // SAFETY: as in `run512`, with AVX2 and FMA.
        unsafe { tile256::<MR, NV>(a, pass.b, pass.kc, acc, pass.resume, thr, masks) }
    })
}

/// One AVX-512F tile of [`Tile::run`], MR entries × 16·NV probes; returns whether a lane was
/// admitted.
///
/// # Safety
/// The CPU must support AVX-512F; `a` holds MR·kc floats (the tile's chunk), `pass.b` kc·16·NV,
/// `out` MR·16·NV, `thr` 16·NV and `masks` MR. While it runs, the chunk of the tile after next
/// (2·MR·dim floats further, where the pass has one) is prefetched into L1, a line every k (two
/// tiles ahead measured a little better than one at d = 512).
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile512<const MR: usize, const NV: usize>(
    pass: &Pass,
    a: &[f32],
    out: &mut [f32],
    thr: Option<&[f32]>,
    masks: &mut [u64],
) -> bool {
    let (b, kc, resume, next) = (pass.b, pass.kc, pass.resume, 2 * MR * pass.dim);
    let nr = 16 * NV;
    assert!(
        a.len() >= MR * kc
            && b.len() >= kc * nr
            && out.len() >= MR * nr
            && thr.is_none_or(|t| t.len() >= nr)
            && masks.len() >= MR
    );
    let (pa, pb, po) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    if resume {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            for (v, x) in acc_r.iter_mut().enumerate() {
                // SAFETY: r·nr + 16·v + 16 ≤ MR·nr floats of `out` (checked above).
                *x = unsafe { _mm512_loadu_ps(po.add(r * nr + 16 * v)) };
            }
        }
    }
    for k in 0..kc {
        // SAFETY: k < kc, so entry r's value k (k·MR + r < MR·kc) and the panel's lanes
        // k·nr .. k·nr + nr ≤ kc·nr lie inside the slices (checked above).
        unsafe {
            let mut bk = [_mm512_setzero_ps(); NV];
            for (v, bv) in bk.iter_mut().enumerate() {
                *bv = _mm512_loadu_ps(pb.add(k * nr + 16 * v));
            }
            // Two tiles ahead, this k's values into L1: a prefetch never faults, and the address
            // is only computed (wrapping), never dereferenced.
            _mm_prefetch::<_MM_HINT_T0>(pa.wrapping_add(next + k * MR) as *const i8);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let ak = _mm512_set1_ps(*pa.add(k * MR + r));
                for (x, bv) in acc_r.iter_mut().zip(&bk) {
                    *x = _mm512_fmadd_ps(ak, *bv, *x);
                }
            }
        }
    }
    let mut any = 0u64;
    if let Some(thr) = thr {
        let mut t = [_mm512_setzero_ps(); NV];
        for (v, tv) in t.iter_mut().enumerate() {
            // SAFETY: thr holds 16·NV floats (checked above).
            *tv = unsafe { _mm512_loadu_ps(thr.as_ptr().add(16 * v)) };
        }
        for (acc_r, m) in acc.iter().zip(masks.iter_mut()) {
            *m = acc_r
                .iter()
                .zip(&t)
                .enumerate()
                .fold(0u64, |m, (v, (x, tv))| {
                    m | ((_mm512_cmp_ps_mask::<_CMP_GE_OQ>(*x, *tv) as u64) << (16 * v))
                });
            any |= *m;
        }
        if any == 0 {
            return false;
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (v, x) in acc_r.iter().enumerate() {
            // SAFETY: r·nr + 16·v + 16 ≤ MR·nr floats of `out` (checked above).
            unsafe { _mm512_storeu_ps(po.add(r * nr + 16 * v), *x) };
        }
    }
    any != 0
}

/// One AVX2+FMA tile of [`Tile::run`], MR entries × 8·NV probes; returns whether a lane was
/// admitted.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `a` holds MR·kc floats, `b` kc·8·NV, `out` MR·8·NV, `thr`
/// 8·NV and `masks` MR.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile256<const MR: usize, const NV: usize>(
    a: &[f32],
    b: &[f32],
    kc: usize,
    out: &mut [f32],
    resume: bool,
    thr: Option<&[f32]>,
    masks: &mut [u64],
) -> bool {
    let nr = 8 * NV;
    assert!(
        a.len() >= MR * kc
            && b.len() >= kc * nr
            && out.len() >= MR * nr
            && thr.is_none_or(|t| t.len() >= nr)
            && masks.len() >= MR
    );
    let (pa, pb, po) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
    let mut acc = [[_mm256_setzero_ps(); NV]; MR];
    if resume {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            for (v, x) in acc_r.iter_mut().enumerate() {
                // SAFETY: r·nr + 8·v + 8 ≤ MR·nr floats of `out` (checked above).
                *x = unsafe { _mm256_loadu_ps(po.add(r * nr + 8 * v)) };
            }
        }
    }
    for k in 0..kc {
        // SAFETY: as in `tile512`, every load is inside the slices checked above.
        unsafe {
            let mut bk = [_mm256_setzero_ps(); NV];
            for (v, bv) in bk.iter_mut().enumerate() {
                *bv = _mm256_loadu_ps(pb.add(k * nr + 8 * v));
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let ak = _mm256_broadcast_ss(&*pa.add(k * MR + r));
                for (x, bv) in acc_r.iter_mut().zip(&bk) {
                    *x = _mm256_fmadd_ps(ak, *bv, *x);
                }
            }
        }
    }
    let mut any = 0u64;
    if let Some(thr) = thr {
        let mut t = [_mm256_setzero_ps(); NV];
        for (v, tv) in t.iter_mut().enumerate() {
            // SAFETY: thr holds 8·NV floats (checked above).
            *tv = unsafe { _mm256_loadu_ps(thr.as_ptr().add(8 * v)) };
        }
        for (acc_r, m) in acc.iter().zip(masks.iter_mut()) {
            *m = acc_r
                .iter()
                .zip(&t)
                .enumerate()
                .fold(0u64, |m, (v, (x, tv))| {
                    let ge = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(*x, *tv)) as u32 as u64;
                    m | (ge << (8 * v))
                });
            any |= *m;
        }
        if any == 0 {
            return false;
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (v, x) in acc_r.iter().enumerate() {
            // SAFETY: r·nr + 8·v + 8 ≤ MR·nr floats of `out` (checked above).
            unsafe { _mm256_storeu_ps(po.add(r * nr + 8 * v), *x) };
        }
    }
    any != 0
}
