//! Model inspection: the header fields of an ONNX file (IR version, opsets, producer) read straight
//! from its protobuf encoding, plus the inputs and outputs ONNX Runtime reports.

use serde::Serialize;

/// Top-level facts of an ONNX `ModelProto`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OnnxHeader {
    /// `ir_version`.
    pub ir_version: i64,
    /// `(domain, version)` of each opset import; the default ONNX domain is written `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// `producer_name`.
    pub producer_name: String,
    /// `producer_version`.
    pub producer_version: String,
}

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

/// A protobuf field's value: a varint, or the byte range of a length-delimited payload.
type FieldValue = Result<u64, (usize, usize)>;

/// Iterates the top-level fields of a protobuf message: (field number, varint value or byte range).
fn fields(b: &[u8]) -> Result<Vec<(u64, FieldValue)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = varint(b, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((field, Ok(varint(b, &mut pos)?))),
            1 => pos += 8,
            2 => {
                let len = varint(b, &mut pos)? as usize;
                if pos + len > b.len() {
                    return Err("truncated field".into());
                }
                out.push((field, Err((pos, pos + len))));
                pos += len;
            }
            5 => pos += 4,
            w => return Err(format!("unsupported wire type {w}")),
        }
    }
    Ok(out)
}

/// Parses the ONNX header (it does not decode the graph).
pub fn parse_header(bytes: &[u8]) -> Result<OnnxHeader, String> {
    let mut h = OnnxHeader::default();
    let text = |r: (usize, usize)| String::from_utf8_lossy(&bytes[r.0..r.1]).to_string();
    for (field, value) in fields(bytes).map_err(|e| format!("not an ONNX model: {e}"))? {
        match (field, value) {
            (1, Ok(v)) => h.ir_version = v as i64,
            (2, Err(r)) => h.producer_name = text(r),
            (3, Err(r)) => h.producer_version = text(r),
            (8, Err((s, e))) => {
                let sub = &bytes[s..e];
                let (mut domain, mut version) = (String::new(), 0i64);
                for (f, v) in fields(sub)? {
                    match (f, v) {
                        (1, Err(r)) => domain = String::from_utf8_lossy(&sub[r.0..r.1]).to_string(),
                        (2, Ok(v)) => version = v as i64,
                        _ => {}
                    }
                }
                h.opsets.push((
                    if domain.is_empty() {
                        "ai.onnx".into()
                    } else {
                        domain
                    },
                    version,
                ));
            }
            _ => {}
        }
    }
    if h.ir_version == 0 {
        return Err("not an ONNX model (no ir_version field)".into());
    }
    Ok(h)
}

/// A model input or output as ONNX Runtime reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IoInfo {
    /// Name.
    pub name: String,
    /// Element type (`float32`, …).
    pub dtype: String,
    /// Dimensions: a number, or the symbolic name (`?` when it has none).
    pub shape: Vec<String>,
}

/// Describes one input or output of an open session.
pub fn describe_io(o: &ort::value::Outlet) -> IoInfo {
    let (dtype, shape) = match o.dtype() {
        ort::value::ValueType::Tensor {
            ty,
            dimension_symbols,
            ..
        } => {
            let shape: Vec<String> = super::declared_shape(o.dtype())
                .unwrap_or_default()
                .iter()
                .zip(dimension_symbols.iter())
                .map(|(d, sym)| {
                    d.map(|v| v.to_string()).unwrap_or_else(|| {
                        if sym.is_empty() {
                            "?".into()
                        } else {
                            sym.to_string()
                        }
                    })
                })
                .collect();
            (format!("{ty:?}").to_lowercase(), shape)
        }
        other => (format!("{other:?}"), Vec::new()),
    };
    IoInfo {
        name: o.name().to_string(),
        dtype,
        shape,
    }
}

/// One opset import.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpsetInfo {
    /// Domain (`ai.onnx` for the default one).
    pub domain: String,
    /// Version.
    pub version: i64,
}

/// What `facebias inspect` reports about a model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The file.
    pub path: String,
    /// Its size.
    pub bytes: usize,
    /// Its sha256.
    pub sha256: String,
    /// ONNX IR version.
    pub ir_version: i64,
    /// Opset imports.
    pub opsets: Vec<OpsetInfo>,
    /// Producer name and version.
    pub producer: String,
    /// Inputs.
    pub inputs: Vec<IoInfo>,
    /// Outputs.
    pub outputs: Vec<IoInfo>,
    /// Name of the catalogue entry with this sha256.
    pub catalogue_match: Option<String>,
    /// That entry's spec.
    pub spec: Option<super::spec::ModelSpec>,
}

impl ModelInfo {
    /// The facts of a model file from its header, its open session and its catalogue match.
    pub fn new(
        path: &std::path::Path,
        bytes: usize,
        sha256: &str,
        header: &OnnxHeader,
        session: &ort::session::Session,
        matched: Option<super::spec::ModelSpec>,
    ) -> ModelInfo {
        ModelInfo {
            path: path.display().to_string(),
            bytes,
            sha256: sha256.to_string(),
            ir_version: header.ir_version,
            opsets: header
                .opsets
                .iter()
                .map(|(d, v)| OpsetInfo {
                    domain: d.clone(),
                    version: *v,
                })
                .collect(),
            producer: format!("{} {}", header.producer_name, header.producer_version)
                .trim()
                .to_string(),
            inputs: session.inputs().iter().map(describe_io).collect(),
            outputs: session.outputs().iter().map(describe_io).collect(),
            catalogue_match: matched.as_ref().map(|m| m.name.clone()),
            spec: matched,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hand_encoded_header() {
        // ir_version=8 (08 08), producer_name="pt" (12 02 70 74), opset_import{version=18} (42 02 10 12)
        let bytes = [0x08, 0x08, 0x12, 0x02, b'p', b't', 0x42, 0x02, 0x10, 0x12];
        let h = parse_header(&bytes).unwrap();
        assert_eq!(h.ir_version, 8);
        assert_eq!(h.producer_name, "pt");
        assert_eq!(h.opsets, vec![("ai.onnx".to_string(), 18)]);
        assert!(parse_header(b"hello world").is_err());
    }
}
