//! Locating and loading the ONNX Runtime shared library (`ort` with `load-dynamic`).
//!
//! Search order: the `--ort-lib` flag, the `ORT_DYLIB_PATH` environment variable, then the
//! `onnxruntime` (or `onnxruntime-gpu`) Python package found by `python3`. The library is loaded once
//! per process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use thiserror::Error;

/// The ONNX Runtime version facebias is built against (`ort` 2.0.0-rc.15 targets 1.31).
pub const EXPECTED_ORT_VERSION: &str = "1.31.1";

/// What to install when no library is found.
pub const INSTALL_HINT: &str = "install it with `python3 -m pip install onnxruntime==1.31.1` \
(or `onnxruntime-gpu==1.31.1` for CUDA), or point --ort-lib / ORT_DYLIB_PATH at \
onnxruntime/capi/libonnxruntime.so.1.31.1 inside that wheel";

/// Failure to find or load ONNX Runtime.
#[derive(Debug, Error, Clone)]
pub enum RuntimeError {
    /// No library was found anywhere.
    #[error("ONNX Runtime shared library not found (looked at --ort-lib, ORT_DYLIB_PATH and the python3 onnxruntime package); {INSTALL_HINT}")]
    NotFound,
    /// A library was named but does not exist.
    #[error("ONNX Runtime library {path} (from {origin}) does not exist; {INSTALL_HINT}")]
    Missing {
        /// The path given.
        path: PathBuf,
        /// Where the path came from.
        origin: String,
    },
    /// The library exists but could not be loaded or initialised.
    #[error("cannot load ONNX Runtime from {path}: {message}; {INSTALL_HINT}")]
    Load {
        /// The library.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
}

/// A loaded ONNX Runtime.
pub struct Runtime {
    /// The environment sessions are built in.
    pub env: ort::environment::Environment,
    /// The shared library that was loaded.
    pub library: PathBuf,
    /// The runtime's version, read from its build info (e.g. `1.31.1`).
    pub version: String,
}

static RUNTIME: OnceLock<Result<Runtime, RuntimeError>> = OnceLock::new();

/// Finds the library path without loading it.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    if let Some(p) = explicit {
        return existing(p, "--ort-lib");
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        return existing(Path::new(&p), "ORT_DYLIB_PATH");
    }
    python_package_library().ok_or(RuntimeError::NotFound)
}

fn existing(p: &Path, origin: &str) -> Result<PathBuf, RuntimeError> {
    if p.is_file() {
        Ok(p.to_path_buf())
    } else {
        Err(RuntimeError::Missing {
            path: p.to_path_buf(),
            origin: origin.into(),
        })
    }
}

/// Asks `python3` where its onnxruntime package lives and picks `capi/libonnxruntime.so*` there.
fn python_package_library() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u, os; s = u.find_spec('onnxruntime'); print(os.path.dirname(s.origin) if s else '')",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    if dir.is_empty() {
        return None;
    }
    let capi = Path::new(&dir).join("capi");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libonnxruntime.so")
                    || n == "libonnxruntime.dylib"
                    || n == "onnxruntime.dll"
            })
        })
        .collect();
    libs.sort();
    // Prefer the fully versioned name (libonnxruntime.so.1.31.1), the longest.
    libs.into_iter().max_by_key(|p| p.as_os_str().len())
}

/// Loads ONNX Runtime (once per process) and returns it.
pub fn load(explicit: Option<&Path>) -> Result<&'static Runtime, RuntimeError> {
    RUNTIME
        .get_or_init(|| {
            let library = locate(explicit)?;
            let load_err = |message: String| RuntimeError::Load {
                path: library.clone(),
                message,
            };
            let builder = ort::init_from(&library).map_err(|e| load_err(e.to_string()))?;
            let env = builder
                .with_name("facebias")
                .build()
                .map_err(|e| load_err(e.to_string()))?;
            let version = library_version(&library)
                .or_else(|| parse_version(ort::info()))
                .unwrap_or_else(|| "unknown".into());
            Ok(Runtime {
                env,
                library,
                version,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Asks the library itself (`OrtGetApiBase()->GetVersionString()`), as ONNX Runtime documents for logging.
fn library_version(library: &Path) -> Option<String> {
    // SAFETY: the library was already loaded successfully by `ort::init_from`; loading it again only
    // raises its reference count, and `OrtGetApiBase` is the documented C entry point returning a
    // static struct whose `GetVersionString` returns a static NUL-terminated string.
    unsafe {
        let lib = libloading::Library::new(library).ok()?;
        let getter: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            lib.get(b"OrtGetApiBase").ok()?;
        let base = getter();
        if base.is_null() {
            return None;
        }
        let s = ((*base).GetVersionString)();
        if s.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

/// Extracts `1.31.1` from a build-info string containing `git-branch=rel-1.31.1`.
fn parse_version(info: &str) -> Option<String> {
    let start = info.find("rel-")? + 4;
    let rest = &info[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    Some(rest[..end].to_string()).filter(|v| !v.is_empty())
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// ONNX Runtime's CUDA execution provider on this GPU.
    Cuda(i32),
    /// CUDA device 0 when the loaded runtime has the CUDA provider, else the CPU (noted in run.json).
    Auto,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Device, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "auto" => Ok(Device::Auto),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(Device::Cuda)
                .ok_or_else(|| format!("--device `{s}`: expected cpu, cuda, cuda:N or auto")),
        }
    }
}

impl Device {
    /// The execution provider's name as ONNX Runtime reports it.
    pub fn provider(self) -> String {
        match self {
            Device::Cuda(n) => format!("CUDAExecutionProvider (device {n})"),
            _ => "CPUExecutionProvider".into(),
        }
    }
}

/// Whether the loaded ONNX Runtime has the CUDA execution provider (the `onnxruntime-gpu` build).
pub fn cuda_available() -> bool {
    use ort::ep::ExecutionProvider;
    ort::ep::CUDA::is_available().unwrap_or(false)
}

/// Turns `--device` into the device to use, with a note when `auto` fell back to the CPU. Asking for
/// CUDA from a runtime without it is an error that says what to install.
pub fn resolve_device(rt: &Runtime, requested: Device) -> Result<(Device, String), String> {
    match requested {
        Device::Cpu => Ok((Device::Cpu, String::new())),
        Device::Cuda(_) if cuda_available() => Ok((requested, String::new())),
        Device::Cuda(n) => Err(format!(
            "--device cuda:{n}: the ONNX Runtime library {} has no CUDA execution provider; install `python3 -m pip install onnxruntime-gpu==1.31.1` \
             (with an NVIDIA driver and the CUDA 12 / cuDNN 9 wheels it names) and point --ort-lib or ORT_DYLIB_PATH at its libonnxruntime.so.1.31.1, or use --device cpu",
            rt.library.display()
        )),
        Device::Auto if cuda_available() => Ok((Device::Cuda(0), String::new())),
        Device::Auto => Ok((
            Device::Cpu,
            format!("--device auto: {} has no CUDA execution provider; ran on the CPU", rt.library.display()),
        )),
    }
}

/// Opens an ONNX model as a session with `intra_threads` intra-op threads and full graph optimisation.
/// The error message names the model file.
pub fn open_session(
    rt: &Runtime,
    model: &Path,
    intra_threads: usize,
) -> Result<ort::session::Session, String> {
    open_session_on(rt, model, intra_threads, Device::Cpu)
}

/// [`open_session`] on a device ([`Device::Cuda`] registers the CUDA provider and fails if it cannot).
pub fn open_session_on(
    rt: &Runtime,
    model: &Path,
    intra_threads: usize,
    device: Device,
) -> Result<ort::session::Session, String> {
    let fail = |e: String| format!("cannot open ONNX model {}: {e}", model.display());
    ort::session::Session::builder(&rt.env)
        .map_err(|e| fail(e.to_string()))?
        .with_intra_threads(intra_threads.max(1))
        .map_err(|e| fail(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| fail(e.to_string()))?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .map_err(|e| fail(e.to_string()))?
        .with_execution_providers(match device {
            Device::Cuda(n) => vec![ort::ep::CUDA::default()
                .with_device_id(n)
                .build()
                .error_on_failure()],
            _ => Vec::new(),
        })
        .map_err(|e| fail(format!("cannot use {}: {e}", device.provider())))?
        .commit_from_file(model)
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_flag_parses() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:2".parse::<Device>(), Ok(Device::Cuda(2)));
        assert_eq!("auto".parse::<Device>(), Ok(Device::Auto));
        assert!("gpu".parse::<Device>().unwrap_err().contains("cuda:N"));
        assert!("cuda:-1".parse::<Device>().is_err());
    }

    #[test]
    fn version_from_build_info() {
        assert_eq!(
            parse_version("ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc").as_deref(),
            Some("1.31.1")
        );
        assert_eq!(parse_version("no branch"), None);
    }

    #[test]
    fn missing_explicit_library_names_the_flag_and_the_fix() {
        let err = locate(Some(Path::new("/nope/libonnxruntime.so")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--ort-lib") && err.contains("pip install onnxruntime==1.31.1"),
            "{err}"
        );
    }
}
