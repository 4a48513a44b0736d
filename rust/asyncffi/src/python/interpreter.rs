//! Finding a CPython at run time and opening its shared library, with no libpython at link
//! time: the interpreter is chosen (an explicit path, then `ASYNCFFI_PYTHON`, then the active
//! virtual environment, then `python3` on `PATH`), asked about itself in a subprocess
//! (`python -c`: version, `LIBDIR`/`LDLIBRARY`, `sys.executable`, where `asyncffi` is), and its
//! `libpython` is opened with `dlopen` (`RTLD_GLOBAL`, so the extension modules it imports
//! find the C API). The few C-API functions the host needs are looked up by name and called
//! through function pointers; all of them are in every CPython 3.9–3.13.

use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString, OsStr};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The oldest CPython minor version the host runs on (3.9).
const MIN_MINOR: u32 = 9;

/// Why no usable Python was found: what was tried, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartError {
    /// What went wrong, with every interpreter tried and why each was refused.
    pub message: String,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StartError {}

/// Where the interpreter to try came from.
#[derive(Clone, Debug)]
enum Source {
    Explicit,
    Env,
    Venv,
    Path,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Explicit => "the configured interpreter",
            Source::Env => "ASYNCFFI_PYTHON",
            Source::Venv => "the active virtual environment (VIRTUAL_ENV)",
            Source::Path => "python3 on PATH",
        })
    }
}

/// What an interpreter said about itself.
#[derive(Clone, Debug)]
pub struct Interpreter {
    /// `sys.executable`: the program name given to the embedded interpreter, so that it finds
    /// its prefix, its virtual environment and so its `sys.path` as that program would.
    pub executable: PathBuf,
    /// `major.minor.micro`.
    pub version: String,
    /// The shared library opened.
    pub library: PathBuf,
}

const QUERY: &str = r#"
import sys, sysconfig, importlib.util
v = sys.version_info
c = sysconfig.get_config_var
spec = importlib.util.find_spec("asyncffi")
fields = [sys.implementation.name, "%d.%d.%d" % v[:3], str(v[1]), sys.abiflags,
          c("LIBDIR") or "", c("LDLIBRARY") or "", c("INSTSONAME") or "",
          sys.executable, (spec.origin or "?") if spec else ""]
sys.stdout.write("\0".join(fields))
"#;

/// Finds the interpreter: `explicit` if given (and only it), else the first of
/// `ASYNCFFI_PYTHON`, `$VIRTUAL_ENV/bin/python`, `python3` on `PATH` that is usable.
pub fn find(explicit: Option<&Path>) -> Result<Interpreter, StartError> {
    let mut candidates: Vec<(Source, PathBuf)> = Vec::new();
    if let Some(path) = explicit {
        candidates.push((Source::Explicit, path.to_owned()));
    } else {
        if let Some(path) = std::env::var_os("ASYNCFFI_PYTHON").filter(|p| !p.is_empty()) {
            candidates.push((Source::Env, PathBuf::from(path)));
        }
        if let Some(venv) = std::env::var_os("VIRTUAL_ENV").filter(|p| !p.is_empty()) {
            candidates.push((Source::Venv, Path::new(&venv).join("bin").join("python")));
        }
        if let Some(path) = on_path("python3") {
            candidates.push((Source::Path, path));
        }
    }
    let mut tried = Vec::new();
    for (source, path) in &candidates {
        match query(path) {
            Ok(found) => return Ok(found),
            Err(why) => tried.push(format!("  {} ({source}): {why}", path.display())),
        }
        // An explicit choice, or ASYNCFFI_PYTHON, is not replaced by another interpreter.
        if matches!(source, Source::Explicit | Source::Env) {
            break;
        }
    }
    let tried = if tried.is_empty() {
        "  nothing: no interpreter configured, ASYNCFFI_PYTHON and VIRTUAL_ENV unset, no \
         python3 on PATH"
            .to_owned()
    } else {
        tried.join("\n")
    };
    Err(StartError {
        message: format!(
            "no usable Python found. Tried:\n{tried}\nFix: point ASYNCFFI_PYTHON at a CPython \
             3.{MIN_MINOR}+ built with a shared libpython (--enable-shared) that has asyncffi \
             installed (`python -m pip install asyncffi`), or activate such a virtual \
             environment"
        ),
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Asks the interpreter at `path` about itself, and refuses it unless it is usable.
fn query(path: &Path) -> Result<Interpreter, String> {
    if !path.exists() {
        return Err("no such file".to_owned());
    }
    let output = Command::new(path)
        .args(["-c", QUERY])
        .output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").trim();
        return Err(format!(
            "it failed to describe itself ({}): {last}",
            output.status
        ));
    }
    // Asked with the environment the embedded interpreter will see (PYTHONPATH included).
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let fields: Vec<&str> = text.split('\0').collect();
    let [implementation, version, minor, abiflags, libdir, ldlibrary, soname, executable, spec] =
        fields[..]
    else {
        return Err(format!("it answered {text:?}, not a description"));
    };
    if implementation != "cpython" {
        return Err(format!(
            "it is {implementation} {version}, not CPython (the host needs CPython's C API)"
        ));
    }
    let minor: u32 = minor.parse().unwrap_or(0);
    if !version.starts_with("3.") || minor < MIN_MINOR {
        return Err(format!("it is CPython {version}, older than 3.{MIN_MINOR}"));
    }
    if abiflags.contains('t') {
        return Err(format!(
            "it is a free-threaded CPython {version} (abiflags {abiflags:?}), which asyncffi \
             does not support"
        ));
    }
    let library = [ldlibrary, soname]
        .iter()
        .filter(|name| name.contains(".so") || name.ends_with(".dylib"))
        .map(|name| Path::new(libdir).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "CPython {version} has no shared libpython (LDLIBRARY is {ldlibrary:?} in \
                 {libdir:?}): it is a static-only build; use one built with --enable-shared"
            )
        })?;
    if spec.is_empty() {
        return Err(format!(
            "asyncffi is not installed in CPython {version}: run `{} -m pip install asyncffi`",
            executable
        ));
    }
    Ok(Interpreter {
        executable: PathBuf::from(executable),
        version: version.to_owned(),
        library,
    })
}

/// An opaque `PyObject`.
#[repr(C)]
pub struct PyObject {
    _private: [u8; 0],
}

type DecodeLocale = unsafe extern "C" fn(*const c_char, *mut usize) -> *mut libc::wchar_t;
type SetProgramName = unsafe extern "C" fn(*const libc::wchar_t);
type InitializeEx = unsafe extern "C" fn(c_int);
type FinalizeEx = unsafe extern "C" fn() -> c_int;
type ImportModule = unsafe extern "C" fn(*const c_char) -> *mut PyObject;
type CallMethod =
    unsafe extern "C" fn(*mut PyObject, *const c_char, *const c_char, ...) -> *mut PyObject;
type LongAsLong = unsafe extern "C" fn(*mut PyObject) -> c_long;
type DecRef = unsafe extern "C" fn(*mut PyObject);
type ErrOccurred = unsafe extern "C" fn() -> *mut PyObject;
type ErrPrint = unsafe extern "C" fn();

/// The C-API functions the host calls, looked up in the opened libpython.
pub struct CApi {
    decode_locale: DecodeLocale,
    set_program_name: SetProgramName,
    initialize_ex: InitializeEx,
    finalize_ex: FinalizeEx,
    import_module: ImportModule,
    call_method: CallMethod,
    long_as_long: LongAsLong,
    dec_ref: DecRef,
    err_occurred: ErrOccurred,
    err_print: ErrPrint,
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".to_owned()
    } else {
        // SAFETY: non-NULL, NUL-terminated (above).
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

fn cstring(s: &OsStr) -> Result<CString, StartError> {
    CString::new(s.as_bytes()).map_err(|_| StartError {
        message: format!("the path {s:?} contains a NUL byte"),
    })
}

impl CApi {
    /// Opens the interpreter's shared library and looks up the functions.
    pub fn open(interpreter: &Interpreter) -> Result<CApi, StartError> {
        let path = cstring(interpreter.library.as_os_str())?;
        // SAFETY: a NUL-terminated path; the handle is never closed (the interpreter lives as
        // long as the process).
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if handle.is_null() {
            return Err(StartError {
                message: format!(
                    "cannot open {} (CPython {}): {}",
                    interpreter.library.display(),
                    interpreter.version,
                    dlerror()
                ),
            });
        }
        let symbol = |name: &str| -> Result<*mut c_void, StartError> {
            let c = CString::new(name).expect("a C-API name");
            // SAFETY: a valid handle and a NUL-terminated name.
            let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
            if p.is_null() {
                Err(StartError {
                    message: format!(
                        "{} (CPython {}) has no {name}",
                        interpreter.library.display(),
                        interpreter.version
                    ),
                })
            } else {
                Ok(p)
            }
        };
        macro_rules! function {
            ($name:literal, $ty:ty) => {
                // SAFETY: the symbol is the C-API function of that name, whose signature is
                // the field's type in every CPython 3.9-3.13.
                unsafe { std::mem::transmute::<*mut c_void, $ty>(symbol($name)?) }
            };
        }
        Ok(CApi {
            decode_locale: function!("Py_DecodeLocale", DecodeLocale),
            set_program_name: function!("Py_SetProgramName", SetProgramName),
            initialize_ex: function!("Py_InitializeEx", InitializeEx),
            finalize_ex: function!("Py_FinalizeEx", FinalizeEx),
            import_module: function!("PyImport_ImportModule", ImportModule),
            call_method: function!("PyObject_CallMethod", CallMethod),
            long_as_long: function!("PyLong_AsLong", LongAsLong),
            dec_ref: function!("Py_DecRef", DecRef),
            err_occurred: function!("PyErr_Occurred", ErrOccurred),
            err_print: function!("PyErr_Print", ErrPrint),
        })
    }

    /// Starts the interpreter as if it were `executable` (so it finds its prefix, virtual
    /// environment and `sys.path`), with Python's signal handlers installed. The calling
    /// thread holds the GIL from now on.
    ///
    /// # Safety
    /// Once per process, on the thread that will run Python (the main thread).
    pub unsafe fn initialize(&self, executable: &Path) -> Result<(), StartError> {
        let name = cstring(executable.as_os_str())?;
        // SAFETY: before initialization both are allowed; the decoded name is never freed,
        // as the interpreter keeps a pointer to it.
        unsafe {
            let wide = (self.decode_locale)(name.as_ptr(), std::ptr::null_mut());
            if wide.is_null() {
                return Err(StartError {
                    message: format!("cannot decode the path {}", executable.display()),
                });
            }
            (self.set_program_name)(wide);
            (self.initialize_ex)(1);
        }
        Ok(())
    }

    /// Calls `module.function(argument)` and returns the int it returns, or prints the
    /// exception it raised (with its traceback) and returns `None`.
    ///
    /// # Safety
    /// With the interpreter initialized and the GIL held.
    pub unsafe fn call_int(&self, module: &str, function: &str, argument: &str) -> Option<c_long> {
        let module = CString::new(module).expect("a module name");
        let function = CString::new(function).expect("a function name");
        let argument = CString::new(argument).ok()?;
        // SAFETY: the GIL is held; every new reference is released once.
        unsafe {
            let m = (self.import_module)(module.as_ptr());
            if m.is_null() {
                (self.err_print)();
                return None;
            }
            let r = (self.call_method)(m, function.as_ptr(), c"s".as_ptr(), argument.as_ptr());
            (self.dec_ref)(m);
            if r.is_null() {
                (self.err_print)();
                return None;
            }
            let value = (self.long_as_long)(r);
            (self.dec_ref)(r);
            if value == -1 && !(self.err_occurred)().is_null() {
                (self.err_print)();
                return None;
            }
            Some(value)
        }
    }

    /// Finalizes the interpreter (atexit handlers, asyncffi's shutdown); false if that failed.
    ///
    /// # Safety
    /// Once, on the thread that initialized it, holding the GIL.
    pub unsafe fn finalize(&self) -> bool {
        // SAFETY: as documented.
        unsafe { (self.finalize_ex)() == 0 }
    }
}
