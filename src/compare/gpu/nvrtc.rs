//! NVRTC, CUDA's run-time compiler, loaded at run time: compiles [`super::SOURCE`] to a CUBIN for the
//! device's architecture, so facebias needs no CUDA toolkit to build.
//!
//! Search order for `libnvrtc.so.*`: the `FACEBIAS_NVRTC` environment variable (the library or its
//! folder), `$CUDA_HOME/lib64` (and `CUDA_PATH`), the Python packages `nvidia-cuda-nvrtc` (CUDA 13,
//! `nvidia/cu13/lib`) and `nvidia-cuda-nvrtc-cu12` (`nvidia/cuda_nvrtc/lib`) found by `python3`, then
//! the system loader. NVRTC loads its `libnvrtc-builtins` by name at compile time; the one beside the
//! library found is loaded first by its full path, so no `LD_LIBRARY_PATH` is needed.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::GpuError;

/// What to install when NVRTC is missing.
pub const INSTALL_HINT: &str =
    "install it with `python3 -m pip install nvidia-cuda-nvrtc==13.0.88` \
(CUDA 13 drivers; `nvidia-cuda-nvrtc-cu12` for CUDA 12), or set FACEBIAS_NVRTC to libnvrtc.so.* \
or its folder";

type Program = *mut std::ffi::c_void;

/// The NVRTC functions facebias calls (signatures as in nvrtc.h).
struct Api {
    version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> c_int,
    create: unsafe extern "C" fn(
        *mut Program,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> c_int,
    compile: unsafe extern "C" fn(Program, c_int, *const *const c_char) -> c_int,
    log_size: unsafe extern "C" fn(Program, *mut usize) -> c_int,
    log: unsafe extern "C" fn(Program, *mut c_char) -> c_int,
    cubin_size: unsafe extern "C" fn(Program, *mut usize) -> c_int,
    cubin: unsafe extern "C" fn(Program, *mut c_char) -> c_int,
    destroy: unsafe extern "C" fn(*mut Program) -> c_int,
    error_string: unsafe extern "C" fn(c_int) -> *const c_char,
}

/// A loaded NVRTC.
pub struct Nvrtc {
    api: Api,
    /// The library file (or loader name) that was loaded.
    pub library: String,
    /// NVRTC's version (major, minor).
    pub version: (i32, i32),
    // Kept loaded for the process's lifetime: the function pointers above point into them.
    _libs: Vec<libloading::Library>,
}

// SAFETY: NVRTC's API is thread-safe for distinct programs (documented by NVIDIA); the struct only
// holds function pointers and library handles.
unsafe impl Send for Nvrtc {}
unsafe impl Sync for Nvrtc {}

static NVRTC: OnceLock<Result<Nvrtc, String>> = OnceLock::new();

/// Loads NVRTC once per process.
pub fn load() -> Result<&'static Nvrtc, GpuError> {
    NVRTC
        .get_or_init(load_uncached)
        .as_ref()
        .map_err(|e| GpuError::Missing(e.clone()))
}

/// Candidate library files, in search order.
fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("FACEBIAS_NVRTC").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_dir() {
            dirs.push(p);
        } else {
            files.push(p);
        }
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            dirs.push(PathBuf::from(v).join("lib64"));
        }
    }
    dirs.extend(python_nvidia_lib_dirs());
    for d in dirs {
        files.extend(libraries_in(&d, "libnvrtc.so"));
    }
    files
}

/// `nvidia/cu13/lib` and `nvidia/cuda_nvrtc/lib` of python3's `nvidia` namespace package.
fn python_nvidia_lib_dirs() -> Vec<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u\ns = u.find_spec('nvidia')\nprint('\\n'.join(s.submodule_search_locations) if s and s.submodule_search_locations else '')",
        ])
        .output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .flat_map(|root| {
            let root = PathBuf::from(root.trim());
            [root.join("cu13/lib"), root.join("cuda_nvrtc/lib")]
        })
        .filter(|d| d.is_dir())
        .collect()
}

/// Files in `dir` named `prefix` or `prefix.<version>` (not the `.alt` variants), newest first.
fn libraries_in(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n == prefix
                    || n.strip_prefix(prefix).is_some_and(|r| {
                        r.starts_with('.') && r[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
                    })
            })
        })
        .collect();
    v.sort();
    v.reverse();
    v
}

fn load_uncached() -> Result<Nvrtc, String> {
    let mut tried = Vec::new();
    for file in candidates() {
        match open(&file) {
            Ok(n) => return Ok(n),
            Err(e) => tried.push(format!("{}: {e}", file.display())),
        }
    }
    // The system loader last (LD_LIBRARY_PATH, ldconfig).
    for name in ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"] {
        match open(Path::new(name)) {
            Ok(n) => return Ok(n),
            Err(e) => tried.push(format!("{name}: {e}")),
        }
    }
    Err(format!(
        "NVRTC (CUDA's run-time compiler, needed for the GPU comparison kernel) was not found; {INSTALL_HINT}. Tried: {}",
        tried.join("; ")
    ))
}

fn open(file: &Path) -> Result<Nvrtc, String> {
    let mut libs = Vec::new();
    // The builtins beside the library, by full path, so NVRTC's own dlopen by name finds them loaded.
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        for b in libraries_in(dir, "libnvrtc-builtins.so") {
            // SAFETY: loading a shared library runs its initialisers; NVRTC's builtins library has
            // no initialisers with preconditions.
            if let Ok(l) = unsafe { libloading::Library::new(&b) } {
                libs.push(l);
                break;
            }
        }
    }
    // SAFETY: as above, for libnvrtc itself.
    let lib = unsafe { libloading::Library::new(file) }.map_err(|e| e.to_string())?;
    // SAFETY: the symbol types are the C signatures of nvrtc.h (checked against cudarc's generated
    // bindings); the pointers stay valid while `lib` is kept in `_libs`.
    let api = unsafe {
        macro_rules! sym {
            ($name:literal) => {
                *lib.get(concat!($name, "\0").as_bytes())
                    .map_err(|e| format!("{}: {e}", $name))?
            };
        }
        Api {
            version: sym!("nvrtcVersion"),
            create: sym!("nvrtcCreateProgram"),
            compile: sym!("nvrtcCompileProgram"),
            log_size: sym!("nvrtcGetProgramLogSize"),
            log: sym!("nvrtcGetProgramLog"),
            cubin_size: sym!("nvrtcGetCUBINSize"),
            cubin: sym!("nvrtcGetCUBIN"),
            destroy: sym!("nvrtcDestroyProgram"),
            error_string: sym!("nvrtcGetErrorString"),
        }
    };
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two valid out-pointers.
    let rc = unsafe { (api.version)(&mut major, &mut minor) };
    if rc != 0 {
        return Err(format!("nvrtcVersion returned {rc}"));
    }
    libs.push(lib);
    Ok(Nvrtc {
        api,
        library: file.display().to_string(),
        version: (major, minor),
        _libs: libs,
    })
}

impl Nvrtc {
    fn error(&self, rc: c_int) -> String {
        // SAFETY: nvrtcGetErrorString returns a static string for any code.
        let p = unsafe { (self.api.error_string)(rc) };
        if p.is_null() {
            format!("NVRTC error {rc}")
        } else {
            // SAFETY: non-null, NUL-terminated static string.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }

    /// Compiles `source` for `sm_<arch>` (e.g. 90 for the H100) and returns the CUBIN.
    pub fn compile_cubin(&self, source: &str, arch: u32) -> Result<Vec<u8>, GpuError> {
        let arch_opt = format!("--gpu-architecture=sm_{arch}");
        let fail = |log: String| GpuError::Compile {
            arch: arch_opt.clone(),
            log,
        };
        let src = CString::new(source).map_err(|_| fail("source holds a NUL byte".into()))?;
        let name = CString::new("facebias_kernels.cu").expect("no NUL");
        let mut prog: Program = std::ptr::null_mut();
        // SAFETY: valid out-pointer and NUL-terminated strings; no headers.
        let rc = unsafe {
            (self.api.create)(
                &mut prog,
                src.as_ptr(),
                name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(fail(self.error(rc)));
        }
        // --fmad=false: no multiply-add contraction beyond the explicit fmaf calls, so the binning
        // arithmetic is exactly the CPU's.
        let opts: Vec<CString> = [arch_opt.as_str(), "--fmad=false", "--std=c++17"]
            .iter()
            .map(|o| CString::new(*o).expect("no NUL"))
            .collect();
        let ptrs: Vec<*const c_char> = opts.iter().map(|o| o.as_ptr()).collect();
        // SAFETY: `prog` was created above; `ptrs` holds valid C strings that outlive the call.
        let rc = unsafe { (self.api.compile)(prog, ptrs.len() as c_int, ptrs.as_ptr()) };
        let result = if rc != 0 {
            Err(fail(format!(
                "{}: {}",
                self.error(rc),
                self.program_log(prog)
            )))
        } else {
            let mut size = 0usize;
            // SAFETY: compiled program, valid out-pointer; the buffer has the reported size.
            unsafe {
                let rc = (self.api.cubin_size)(prog, &mut size);
                if rc != 0 {
                    Err(fail(self.error(rc)))
                } else {
                    let mut buf = vec![0u8; size];
                    let rc = (self.api.cubin)(prog, buf.as_mut_ptr() as *mut c_char);
                    if rc != 0 {
                        Err(fail(self.error(rc)))
                    } else {
                        Ok(buf)
                    }
                }
            }
        };
        // SAFETY: destroys the program created above, once.
        unsafe { (self.api.destroy)(&mut prog) };
        result
    }

    fn program_log(&self, prog: Program) -> String {
        let mut size = 0usize;
        // SAFETY: valid program and out-pointer; the buffer has the reported size.
        unsafe {
            if (self.api.log_size)(prog, &mut size) != 0 || size == 0 {
                return String::new();
            }
            let mut buf = vec![0u8; size];
            if (self.api.log)(prog, buf.as_mut_ptr() as *mut c_char) != 0 {
                return String::new();
            }
            String::from_utf8_lossy(&buf)
                .trim_end_matches('\0')
                .trim()
                .to_string()
        }
    }
}
