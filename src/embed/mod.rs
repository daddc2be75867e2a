//! Embedding: ONNX Runtime sessions for face-embedding models, checked against their [`spec::ModelSpec`],
//! an on-disk [`cache`] of embeddings, and [`extract`], which runs preprocessing and embedding over a
//! whole dataset in parallel workers.

pub mod bench;
pub mod cache;
pub mod extract;
pub mod folder;
pub mod inspect;
pub mod probe;
pub mod sanity;
pub mod spec;

use std::path::Path;

use ort::value::ValueType;

use crate::preprocess::tensor::Layout;
use crate::runtime::{self, Runtime};
use spec::ModelSpec;

/// The declared shape of a model input or output: `None` for a symbolic (dynamic) dimension.
pub type DeclaredShape = Vec<Option<i64>>;

/// Reads the declared shape of a tensor input/output type.
pub fn declared_shape(ty: &ValueType) -> Option<DeclaredShape> {
    match ty {
        ValueType::Tensor { shape, .. } => Some(
            shape
                .iter()
                .map(|&d| if d < 0 { None } else { Some(d) })
                .collect(),
        ),
        _ => None,
    }
}

/// An embedding model session checked against its spec.
pub struct Embedder {
    session: ort::session::Session,
    spec: ModelSpec,
    /// Images per inference call (1 when the model's batch dimension is fixed at 1).
    pub batch: usize,
    /// Embedding length.
    pub dim: usize,
}

impl Embedder {
    /// Opens the model and checks its input and output against the spec; every mismatch is reported with
    /// the model input's name, the declared shape and the expected one.
    pub fn open(
        rt: &Runtime,
        model: &Path,
        spec: &ModelSpec,
        threads: usize,
        batch_size: usize,
    ) -> Result<Embedder, String> {
        Self::open_on(rt, model, spec, threads, batch_size, runtime::Device::Cpu)
    }

    /// [`Embedder::open`] on a device (the CUDA execution provider for [`runtime::Device::Cuda`]).
    pub fn open_on(
        rt: &Runtime,
        model: &Path,
        spec: &ModelSpec,
        threads: usize,
        batch_size: usize,
        device: runtime::Device,
    ) -> Result<Embedder, String> {
        let session = runtime::open_session_on(rt, model, threads, device)?;
        let input = session
            .inputs()
            .iter()
            .find(|i| i.name() == spec.input)
            .ok_or_else(|| {
                format!(
                    "model {} has no input `{}` (inputs: {}); fix `input` in the model spec",
                    model.display(),
                    spec.input,
                    session
                        .inputs()
                        .iter()
                        .map(|i| i.name().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let shape = declared_shape(input.dtype()).ok_or_else(|| {
            format!(
                "model {} input `{}` is not a tensor",
                model.display(),
                spec.input
            )
        })?;
        let show = |s: &DeclaredShape| {
            s.iter()
                .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (c_axis, h_axis, w_axis) = match spec.layout {
            Layout::Nchw => (1, 2, 3),
            Layout::Nhwc => (3, 1, 2),
        };
        let size = spec.size as i64;
        let ok = shape.len() == 4
            && shape[c_axis].is_none_or(|c| c == 3)
            && shape[h_axis].is_none_or(|h| h == size)
            && shape[w_axis].is_none_or(|w| w == size);
        if !ok {
            return Err(format!(
                "model {} input `{}` is [{}] but the spec expects {:?} [N,{}] with a {}x{} image; fix --input-size/--layout or the spec",
                model.display(),
                spec.input,
                show(&shape),
                spec.layout,
                match spec.layout {
                    Layout::Nchw => format!("3,{size},{size}"),
                    Layout::Nhwc => format!("{size},{size},3"),
                },
                size,
                size
            ));
        }
        let batch = match shape[0] {
            Some(1) => 1,
            Some(b) => {
                return Err(format!(
                    "model {} input `{}` has a fixed batch of {b}; only 1 or dynamic is supported",
                    model.display(),
                    spec.input
                ))
            }
            None => batch_size.max(1),
        };
        let output = session
            .outputs()
            .iter()
            .find(|o| o.name() == spec.output)
            .ok_or_else(|| {
                format!(
                    "model {} has no output `{}` (outputs: {}); fix `output` in the model spec",
                    model.display(),
                    spec.output,
                    session
                        .outputs()
                        .iter()
                        .map(|o| o.name().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let out_shape = declared_shape(output.dtype()).unwrap_or_default();
        let declared_dim: Option<i64> = out_shape
            .iter()
            .skip(1)
            .try_fold(1i64, |acc, d| d.map(|v| acc * v));
        let dim = match (declared_dim, spec.dim) {
            (Some(d), s) if s != 0 && d as usize != s => {
                return Err(format!(
                    "model {} output `{}` is [{}] ({} values per face) but the spec says dim = {s}",
                    model.display(),
                    spec.output,
                    show(&out_shape),
                    d
                ))
            }
            (Some(d), _) => d as usize,
            (None, s) => s,
        };
        Ok(Embedder {
            session,
            spec: spec.clone(),
            batch,
            dim,
        })
    }

    /// Runs the model on `n` preprocessed images laid out back to back in `tensors` and returns `n·dim`
    /// raw (not normalised) embedding values; outputs with extra dimensions are flattened per image.
    pub fn run(&mut self, tensors: &[f32], n: usize) -> Result<Vec<f32>, String> {
        let s = self.spec.size as usize;
        let shape = match self.spec.layout {
            Layout::Nchw => [n, 3, s, s],
            Layout::Nhwc => [n, s, s, 3],
        };
        let tensor =
            ort::value::TensorRef::from_array_view((shape, tensors)).map_err(|e| e.to_string())?;
        let outputs = self
            .session
            .run(ort::inputs![self.spec.input.as_str() => tensor])
            .map_err(|e| format!("embedding model failed: {e}"))?;
        let (_, data) = outputs[self.spec.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("output `{}`: {e}", self.spec.output))?;
        if self.dim == 0 {
            self.dim = data.len() / n.max(1);
        }
        if data.len() != n * self.dim {
            return Err(format!(
                "output `{}` has {} values for {n} images, expected {} each",
                self.spec.output,
                data.len(),
                self.dim
            ));
        }
        Ok(data.to_vec())
    }
}

/// L2-normalises `v` in place. Returns `false` (and leaves `v` alone) when it holds NaN/Inf or is all zero.
pub fn l2_normalize(v: &mut [f32]) -> bool {
    if v.iter().any(|x| !x.is_finite()) {
        return false;
    }
    let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if norm == 0.0 {
        return false;
    }
    for x in v.iter_mut() {
        *x = (*x as f64 / norm) as f32;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_rejects_bad_vectors() {
        let mut v = vec![3.0, 4.0];
        assert!(l2_normalize(&mut v));
        assert_eq!(v, vec![0.6, 0.8]);
        assert!(!l2_normalize(&mut [0.0, 0.0]));
        assert!(!l2_normalize(&mut [1.0, f32::NAN]));
        assert!(!l2_normalize(&mut [f32::INFINITY, 1.0]));
    }
}
