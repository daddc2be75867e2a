//! The CUDA driver API (`libcuda.so.1`, installed with the NVIDIA driver), loaded at run time, and
//! [`CudaDevice`]: an [`Accelerator`] on one GPU running the kernels NVRTC built for it.
//!
//! Function signatures and attribute numbers are those of `cuda.h` (checked against cudarc 0.19's
//! generated bindings). Every call's result is checked; a failure names the call and the driver's
//! description of the code.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::OnceLock;

use super::{nvrtc, Accelerator, DevPtr, GpuError, KernelArg, SOURCE};

type CuResult = c_int;
type CuDevice = c_int;
type Handle = *mut c_void;

const ATTR_CLOCK_RATE: c_int = 13;
const ATTR_MULTIPROCESSOR_COUNT: c_int = 16;
const ATTR_CC_MAJOR: c_int = 75;
const ATTR_CC_MINOR: c_int = 76;

/// The driver functions facebias calls.
struct Driver {
    init: unsafe extern "C" fn(c_uint) -> CuResult,
    driver_version: unsafe extern "C" fn(*mut c_int) -> CuResult,
    device_count: unsafe extern "C" fn(*mut c_int) -> CuResult,
    device_get: unsafe extern "C" fn(*mut CuDevice, c_int) -> CuResult,
    device_name: unsafe extern "C" fn(*mut c_char, c_int, CuDevice) -> CuResult,
    device_attribute: unsafe extern "C" fn(*mut c_int, c_int, CuDevice) -> CuResult,
    device_total_mem: unsafe extern "C" fn(*mut usize, CuDevice) -> CuResult,
    primary_ctx_retain: unsafe extern "C" fn(*mut Handle, CuDevice) -> CuResult,
    primary_ctx_release: unsafe extern "C" fn(CuDevice) -> CuResult,
    ctx_set_current: unsafe extern "C" fn(Handle) -> CuResult,
    ctx_synchronize: unsafe extern "C" fn() -> CuResult,
    mem_get_info: unsafe extern "C" fn(*mut usize, *mut usize) -> CuResult,
    module_load_data: unsafe extern "C" fn(*mut Handle, *const c_void) -> CuResult,
    module_get_function: unsafe extern "C" fn(*mut Handle, Handle, *const c_char) -> CuResult,
    module_unload: unsafe extern "C" fn(Handle) -> CuResult,
    mem_alloc: unsafe extern "C" fn(*mut u64, usize) -> CuResult,
    mem_free: unsafe extern "C" fn(u64) -> CuResult,
    memset_d8: unsafe extern "C" fn(u64, u8, usize) -> CuResult,
    memcpy_htod: unsafe extern "C" fn(u64, *const c_void, usize) -> CuResult,
    memcpy_dtoh: unsafe extern "C" fn(*mut c_void, u64, usize) -> CuResult,
    #[allow(clippy::type_complexity)]
    launch_kernel: unsafe extern "C" fn(
        Handle,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        c_uint,
        Handle,
        *mut *mut c_void,
        *mut *mut c_void,
    ) -> CuResult,
    error_string: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
    _lib: libloading::Library,
}

// SAFETY: the CUDA driver API is thread-safe; the struct holds function pointers and the library.
unsafe impl Send for Driver {}
unsafe impl Sync for Driver {}

static DRIVER: OnceLock<Result<Driver, String>> = OnceLock::new();

fn driver() -> Result<&'static Driver, GpuError> {
    DRIVER
        .get_or_init(load_driver)
        .as_ref()
        .map_err(|e| GpuError::Missing(e.clone()))
}

fn load_driver() -> Result<Driver, String> {
    // SAFETY: loading the NVIDIA driver library runs its initialisers, which have no preconditions.
    let lib = unsafe { libloading::Library::new("libcuda.so.1") }.map_err(|e| {
        format!(
            "no NVIDIA driver found ({e}); the GPU path needs an NVIDIA GPU with its driver installed — use --device cpu (or auto) on this machine"
        )
    })?;
    // SAFETY: the types are the C signatures of cuda.h for these exact (versioned) symbol names.
    let d = unsafe {
        macro_rules! sym {
            ($name:literal) => {
                *lib.get(concat!($name, "\0").as_bytes()).map_err(|e| {
                    format!(
                        "libcuda.so.1 lacks {}: {e}; update the NVIDIA driver",
                        $name
                    )
                })?
            };
        }
        Driver {
            init: sym!("cuInit"),
            driver_version: sym!("cuDriverGetVersion"),
            device_count: sym!("cuDeviceGetCount"),
            device_get: sym!("cuDeviceGet"),
            device_name: sym!("cuDeviceGetName"),
            device_attribute: sym!("cuDeviceGetAttribute"),
            device_total_mem: sym!("cuDeviceTotalMem_v2"),
            primary_ctx_retain: sym!("cuDevicePrimaryCtxRetain"),
            primary_ctx_release: sym!("cuDevicePrimaryCtxRelease_v2"),
            ctx_set_current: sym!("cuCtxSetCurrent"),
            ctx_synchronize: sym!("cuCtxSynchronize"),
            mem_get_info: sym!("cuMemGetInfo_v2"),
            module_load_data: sym!("cuModuleLoadData"),
            module_get_function: sym!("cuModuleGetFunction"),
            module_unload: sym!("cuModuleUnload"),
            mem_alloc: sym!("cuMemAlloc_v2"),
            mem_free: sym!("cuMemFree_v2"),
            memset_d8: sym!("cuMemsetD8_v2"),
            memcpy_htod: sym!("cuMemcpyHtoD_v2"),
            memcpy_dtoh: sym!("cuMemcpyDtoH_v2"),
            launch_kernel: sym!("cuLaunchKernel"),
            error_string: sym!("cuGetErrorString"),
            _lib: lib,
        }
    };
    Ok(d)
}

impl Driver {
    fn check(&self, call: &'static str, rc: CuResult) -> Result<(), GpuError> {
        if rc == 0 {
            return Ok(());
        }
        let mut p: *const c_char = std::ptr::null();
        // SAFETY: valid out-pointer; the driver returns a static string or leaves it null.
        let text = unsafe {
            if (self.error_string)(rc, &mut p) == 0 && !p.is_null() {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            } else {
                "unknown error".into()
            }
        };
        Err(GpuError::Driver {
            call,
            code: rc,
            text,
        })
    }
}

/// Facts about a GPU, for reports and peak estimates.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeviceInfo {
    /// Ordinal (`cuda:N`).
    pub ordinal: u32,
    /// Product name.
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Streaming multiprocessors.
    pub multiprocessors: u32,
    /// Peak SM clock in MHz, when the driver reports it.
    pub clock_mhz: Option<f64>,
    /// Device memory in bytes.
    pub memory_bytes: u64,
    /// Driver API version (e.g. 13000).
    pub driver_version: i32,
    /// NVRTC version used to build the kernels.
    pub nvrtc_version: (i32, i32),
}

impl DeviceInfo {
    /// FP32 lanes per SM by compute capability (CUDA C Programming Guide, arithmetic throughput table).
    pub fn fp32_lanes_per_sm(&self) -> Option<u32> {
        match self.compute_capability {
            (7, _) => Some(64),
            (8, 0) => Some(64),
            (8, _) | (9, 0) | (10, _) | (12, _) => Some(128),
            _ => None,
        }
    }

    /// Peak fp32 FMA throughput: SMs × lanes × 2 FLOP × clock, in GFLOP/s.
    pub fn fp32_peak_gflops(&self) -> Option<f64> {
        Some(
            self.multiprocessors as f64 * self.fp32_lanes_per_sm()? as f64 * 2.0 * self.clock_mhz?
                / 1e3,
        )
    }

    /// Dense 16-bit tensor-core peak with fp32 accumulation, in GFLOP/s, for the data-centre parts
    /// whose per-SM rate is published (A100: 1024 FMA/clk/SM, H100/H200: 2048); `None` otherwise.
    pub fn tensor_peak_gflops(&self) -> Option<f64> {
        let fma_per_clk = match self.compute_capability {
            (8, 0) => 1024.0,
            (9, 0) => 2048.0,
            _ => return None,
        };
        Some(self.multiprocessors as f64 * fma_per_clk * 2.0 * self.clock_mhz? / 1e3)
    }
}

/// One GPU with the facebias kernels loaded.
pub struct CudaDevice {
    d: &'static Driver,
    dev: CuDevice,
    ctx: Handle,
    module: Handle,
    functions: Vec<(&'static str, Handle)>,
    /// What the device is.
    pub info: DeviceInfo,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaDevice")
            .field("info", &self.info)
            .finish()
    }
}

/// The kernels of [`SOURCE`] that the host launches.
const KERNELS: [&str; 5] = [
    "fb_tiles_f32",
    "fb_tiles_bf16",
    "fb_tiles_f16",
    "fb_flush",
    "fb_search_f32",
];

impl CudaDevice {
    /// Opens GPU `ordinal`, compiles the kernels for its architecture with NVRTC and loads them.
    pub fn open(ordinal: u32) -> Result<CudaDevice, GpuError> {
        let d = driver()?;
        // SAFETY (all calls below): valid out-pointers and handles obtained from the driver itself.
        unsafe {
            d.check("cuInit", (d.init)(0))?;
            let mut count = 0;
            d.check("cuDeviceGetCount", (d.device_count)(&mut count))?;
            if ordinal as c_int >= count {
                return Err(GpuError::Missing(format!(
                    "--device cuda:{ordinal}: the driver sees {count} GPU(s); use cuda:0 … cuda:{}",
                    count.saturating_sub(1).max(0)
                )));
            }
            let mut dev = 0;
            d.check("cuDeviceGet", (d.device_get)(&mut dev, ordinal as c_int))?;
            let attr = |a: c_int| -> Result<i32, GpuError> {
                let mut v = 0;
                d.check("cuDeviceGetAttribute", (d.device_attribute)(&mut v, a, dev))?;
                Ok(v)
            };
            let cc = (attr(ATTR_CC_MAJOR)?, attr(ATTR_CC_MINOR)?);
            let sms = attr(ATTR_MULTIPROCESSOR_COUNT)? as u32;
            let clock_mhz = attr(ATTR_CLOCK_RATE)
                .ok()
                .filter(|&k| k > 0)
                .map(|k| k as f64 / 1e3);
            let mut name = [0 as c_char; 256];
            d.check(
                "cuDeviceGetName",
                (d.device_name)(name.as_mut_ptr(), 256, dev),
            )?;
            let name = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
            let mut mem = 0usize;
            d.check("cuDeviceTotalMem", (d.device_total_mem)(&mut mem, dev))?;
            let mut drv = 0;
            d.check("cuDriverGetVersion", (d.driver_version)(&mut drv))?;
            let nv = nvrtc::load()?;
            let cubin = nv.compile_cubin(SOURCE, (cc.0 * 10 + cc.1) as u32)?;
            let mut ctx: Handle = std::ptr::null_mut();
            d.check(
                "cuDevicePrimaryCtxRetain",
                (d.primary_ctx_retain)(&mut ctx, dev),
            )?;
            let mut device = CudaDevice {
                d,
                dev,
                ctx,
                module: std::ptr::null_mut(),
                functions: Vec::new(),
                info: DeviceInfo {
                    ordinal,
                    name,
                    compute_capability: cc,
                    multiprocessors: sms,
                    clock_mhz,
                    memory_bytes: mem as u64,
                    driver_version: drv,
                    nvrtc_version: nv.version,
                },
            };
            device.current()?;
            let mut module: Handle = std::ptr::null_mut();
            d.check(
                "cuModuleLoadData",
                (d.module_load_data)(&mut module, cubin.as_ptr() as *const c_void),
            )?;
            device.module = module;
            for k in KERNELS {
                let cname = std::ffi::CString::new(k).expect("no NUL");
                let mut f: Handle = std::ptr::null_mut();
                d.check(
                    "cuModuleGetFunction",
                    (d.module_get_function)(&mut f, module, cname.as_ptr()),
                )?;
                device.functions.push((k, f));
            }
            Ok(device)
        }
    }

    fn current(&self) -> Result<(), GpuError> {
        // SAFETY: `ctx` is the retained primary context of this device.
        self.d.check("cuCtxSetCurrent", unsafe {
            (self.d.ctx_set_current)(self.ctx)
        })
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        // SAFETY: the module and context were created by this value and are released once.
        unsafe {
            let _ = (self.d.ctx_set_current)(self.ctx);
            if !self.module.is_null() {
                let _ = (self.d.module_unload)(self.module);
            }
            let _ = (self.d.primary_ctx_release)(self.dev);
        }
    }
}

impl Accelerator for CudaDevice {
    fn describe(&self) -> String {
        let i = &self.info;
        format!(
            "{} (cuda:{}, sm_{}{}, {} SMs, driver {}.{}, NVRTC {}.{})",
            i.name,
            i.ordinal,
            i.compute_capability.0,
            i.compute_capability.1,
            i.multiprocessors,
            i.driver_version / 1000,
            (i.driver_version % 1000) / 10,
            i.nvrtc_version.0,
            i.nvrtc_version.1
        )
    }

    fn free_memory(&mut self) -> Option<u64> {
        let (mut free, mut total) = (0usize, 0usize);
        self.current().ok()?;
        // SAFETY: valid out-pointers, current context set.
        let rc = unsafe { (self.d.mem_get_info)(&mut free, &mut total) };
        (rc == 0).then_some(free as u64)
    }

    fn flush_blocks(&self) -> u32 {
        self.info.multiprocessors * 8
    }

    fn alloc_zeroed(&mut self, bytes: usize) -> Result<DevPtr, GpuError> {
        self.current()?;
        let mut p = 0u64;
        // SAFETY: valid out-pointer; the memset covers exactly the allocation.
        unsafe {
            self.d
                .check("cuMemAlloc", (self.d.mem_alloc)(&mut p, bytes.max(1)))?;
            self.d
                .check("cuMemsetD8", (self.d.memset_d8)(p, 0, bytes.max(1)))?;
        }
        Ok(DevPtr(p))
    }

    fn upload(&mut self, dst: DevPtr, src: &[u8]) -> Result<(), GpuError> {
        if src.is_empty() {
            return Ok(());
        }
        // SAFETY: `dst` is an allocation of at least src.len() bytes made by alloc_zeroed (callers
        // size them); synchronous copy from valid host memory.
        self.d.check("cuMemcpyHtoD", unsafe {
            (self.d.memcpy_htod)(dst.0, src.as_ptr() as *const c_void, src.len())
        })
    }

    fn download(&mut self, src: DevPtr, dst: &mut [u8]) -> Result<(), GpuError> {
        if dst.is_empty() {
            return Ok(());
        }
        // SAFETY: as in upload, into valid host memory of dst.len() bytes.
        self.d.check("cuMemcpyDtoH", unsafe {
            (self.d.memcpy_dtoh)(dst.as_mut_ptr() as *mut c_void, src.0, dst.len())
        })
    }

    fn free(&mut self, ptr: DevPtr) {
        if ptr != DevPtr::NULL {
            // SAFETY: freed once, allocated by alloc_zeroed.
            unsafe {
                let _ = (self.d.mem_free)(ptr.0);
            }
        }
    }

    fn launch(
        &mut self,
        kernel: &str,
        grid: u32,
        block: u32,
        args: &[KernelArg],
    ) -> Result<(), GpuError> {
        if grid == 0 {
            return Ok(());
        }
        let f = self
            .functions
            .iter()
            .find(|(k, _)| *k == kernel)
            .map(|(_, f)| *f)
            .ok_or_else(|| GpuError::Inconsistent(format!("no kernel named {kernel}")))?;
        // kernelParams: one pointer per parameter, pointing at the argument's value.
        let mut values: Vec<u64> = args
            .iter()
            .map(|a| match *a {
                KernelArg::Ptr(p) => p.0,
                KernelArg::U32(v) => v as u64,
                KernelArg::U64(v) => v,
            })
            .collect();
        // A u32 parameter reads the first 4 bytes of its slot: the low half on little-endian x86-64.
        let mut params: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        // SAFETY: `f` belongs to the loaded module; `params` has one valid pointer per kernel
        // parameter, alive for the call (the driver copies the values at launch).
        self.d.check("cuLaunchKernel", unsafe {
            (self.d.launch_kernel)(
                f,
                grid,
                1,
                1,
                block,
                1,
                1,
                0,
                std::ptr::null_mut(),
                params.as_mut_ptr(),
                std::ptr::null_mut(),
            )
        })
    }

    fn synchronize(&mut self) -> Result<(), GpuError> {
        // SAFETY: no arguments; the current context is this device's.
        self.d
            .check("cuCtxSynchronize", unsafe { (self.d.ctx_synchronize)() })
    }
}

/// Whether a CUDA GPU can be opened (driver present and at least one device), without compiling.
pub fn probe() -> Result<u32, GpuError> {
    let d = driver()?;
    // SAFETY: valid out-pointer.
    unsafe {
        d.check("cuInit", (d.init)(0))?;
        let mut count = 0;
        d.check("cuDeviceGetCount", (d.device_count)(&mut count))?;
        Ok(count.max(0) as u32)
    }
}
