//! Target modules: shared objects built against kmod/include/dmtarget.h (such as
//! kmod/targets/flakey's libdm_target_flakey.so), loaded with dlopen and registered with the
//! core through dmcore-abi's host side, as NetBSD loads and registers a dm_target_<name> kernel
//! module.
//!
//! A module exports `dmtarget_module_entry(index)`, which returns its target types' ops tables
//! one by one (NULL after the last). Loading registers every one of them, or none. Unloading
//! unregisters every one of them, or none (`EBUSY` while a table, background work or a reference
//! of the module uses one), and only then closes the library. A module still in use at exit is
//! never closed: its code stays mapped until the process ends.

use std::ffi::OsStr;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use dmcore::{Core, Errno};
use dmcore_abi::host::{self, Registration};
use dmcore_abi::sys::dmtarget_ops;

use crate::platform::HostPlatform;

/// Most target types one module may provide.
const MAX_TYPES: u32 = 64;

/// The entry point every module exports.
type Entry = unsafe extern "C" fn(u32) -> *const dmtarget_ops;

/// A loaded module.
struct Loaded {
    /// The file name without directory, `lib` and `.so`: `dm_target_flakey`.
    name: String,
    path: PathBuf,
    types: Vec<(Registration<HostPlatform>, *const dmtarget_ops)>,
    /// Closed only after every type was unregistered.
    library: ManuallyDrop<libloading::Library>,
}

// SAFETY: the ops pointers point into the library's static data, immutable and valid on any
// thread while the library is loaded; the rest is Send.
unsafe impl Send for Loaded {}

/// The modules of one dmhost.
pub struct Modules {
    core: Weak<Core<HostPlatform>>,
    dir: Option<PathBuf>,
    loaded: Mutex<Vec<Loaded>>,
}

/// The module name of a file: its name without `lib` and `.so`.
pub fn module_name(path: &Path) -> String {
    let file = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
    let file = file.strip_suffix(".so").unwrap_or(file);
    file.strip_prefix("lib").unwrap_or(file).to_string()
}

impl Modules {
    pub fn new(core: &Arc<Core<HostPlatform>>, dir: Option<PathBuf>) -> Arc<Modules> {
        Arc::new(Modules { core: Arc::downgrade(core), dir, loaded: Mutex::new(Vec::new()) })
    }

    fn loaded(&self) -> MutexGuard<'_, Vec<Loaded>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the module at `path` and registers its types; returns their names. On any
    /// failure nothing stays registered and the library is closed.
    pub fn load(&self, path: &Path) -> Result<Vec<String>, (Errno, String)> {
        let core = self.core.upgrade().ok_or((Errno::ENXIO, "dmhost is stopping".to_string()))?;
        let name = module_name(path);
        let mut loaded = self.loaded();
        if loaded.iter().any(|m| m.name == name) {
            return Err((Errno::EEXIST, format!("module {name} is loaded already")));
        }
        // SAFETY: loading a module runs its initialisers; a target module is code the
        // administrator chose to load into dmhost, as modload(8) loads one into a kernel.
        let library = unsafe { libloading::Library::new(path) }
            .map_err(|e| (Errno::ENOENT, format!("cannot load {}: {e}", path.display())))?;
        // SAFETY: the symbol has the type dmtarget.h gives dmtarget_module_entry.
        let entry: Entry = match unsafe { library.get::<Entry>(b"dmtarget_module_entry\0") } {
            Ok(symbol) => *symbol,
            Err(e) => {
                return Err((Errno::EINVAL, format!("{}: no dmtarget_module_entry: {e}", path.display())));
            }
        };
        let mut types: Vec<(Registration<HostPlatform>, *const dmtarget_ops)> = Vec::new();
        let mut failure = None;
        for index in 0..MAX_TYPES {
            // SAFETY: the module's entry point, called as dmtarget.h says.
            let ops = unsafe { entry(index) };
            if ops.is_null() {
                break;
            }
            // SAFETY: the ops table lives in the library, which stays loaded until every type
            // it registered was unregistered (see `unload`; never closed otherwise).
            match unsafe { host::register(core.targets(), core.platform(), ops) } {
                Ok(registration) => types.push((registration, ops)),
                Err(errno) => {
                    failure = Some((errno, format!("{}: type {index} refused ({errno})", path.display())));
                    break;
                }
            }
        }
        if types.is_empty() && failure.is_none() {
            failure = Some((Errno::EINVAL, format!("{}: the module provides no target type", path.display())));
        }
        if let Some(failure) = failure {
            for (registration, _) in &types {
                // Just registered, unused: unregistering cannot be refused.
                let _ = host::unregister(core.targets(), registration);
            }
            return Err(failure);
        }
        let names: Vec<String> = types.iter().map(|(r, _)| r.name().to_string()).collect();
        log::info!("target module {name} ({}) loaded: {}", path.display(), names.join(" "));
        loaded.push(Loaded { name, path: path.to_owned(), types, library: ManuallyDrop::new(library) });
        Ok(names)
    }

    /// Unregisters every type of the module `name` and closes it: `EBUSY` (and every type still
    /// registered) while one is in use, `ENOENT` for a module not loaded.
    pub fn unload(&self, name: &str) -> Result<(), Errno> {
        let core = self.core.upgrade().ok_or(Errno::ENXIO)?;
        let mut loaded = self.loaded();
        let pos = loaded.iter().position(|m| m.name == name).ok_or(Errno::ENOENT)?;
        let module = loaded.get_mut(pos).ok_or(Errno::ENOENT)?;
        let mut done = 0;
        let mut refused = None;
        for (registration, _) in &module.types {
            match host::unregister(core.targets(), registration) {
                Ok(()) => done += 1,
                Err(errno) => {
                    refused = Some(errno);
                    break;
                }
            }
        }
        if let Some(errno) = refused {
            // All or nothing: register again what was unregistered.
            for slot in module.types.iter_mut().take(done) {
                // SAFETY: the library is still loaded (not closed), so its table is valid.
                if let Ok(again) = unsafe { host::register(core.targets(), core.platform(), slot.1) } {
                    slot.0 = again;
                }
            }
            log::info!("target module {name}: unload refused ({errno})");
            return Err(errno);
        }
        let mut module = loaded.remove(pos);
        // SAFETY: no type of the library is registered, so nothing of the core refers to its
        // code or data any more (unregister checked every reference); it is closed once.
        unsafe { ManuallyDrop::drop(&mut module.library) };
        log::info!("target module {name} ({}) unloaded", module.path.display());
        Ok(())
    }

    /// NetBSD's autoload: loads `DIR/dm_target_<type>.so` for a type nobody registered.
    pub fn autoload(&self, type_name: &str) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        // Only a plain name becomes a file name.
        if type_name.is_empty() || type_name.contains(['/', '\0']) || type_name.starts_with('.') {
            return false;
        }
        let path = dir.join(format!("dm_target_{type_name}.so"));
        if !path.is_file() {
            return false;
        }
        match self.load(&path) {
            Ok(names) => names.iter().any(|n| n == type_name),
            Err((errno, why)) => {
                log::warn!("autoload of target {type_name}: {why} ({errno})");
                false
            }
        }
    }

    /// At exit: unloads every module nothing uses; the others stay loaded (logged).
    pub fn unload_all(&self) {
        let names: Vec<String> = self.loaded().iter().map(|m| m.name.clone()).collect();
        for name in names {
            if let Err(errno) = self.unload(&name) {
                log::info!("target module {name} stays loaded until exit: {errno}");
            }
        }
    }
}

/// The control socket's two commands of dmhost's own (see `cli::HELP`, "TARGET MODULES"):
/// `module_load` (`path`) and `module_unload` (`name`). `None` for every other request, which
/// goes to the core. The version check and the reply's form are the core's: the request
/// dictionary comes back with `version` rewritten, and `module_load` adds `cmd_data`, the names
/// of the types registered.
pub fn control(modules: &Modules, request: &[u8]) -> Option<dmcore::Reply> {
    use dmcore::control::{keys, VERSION};
    use dmcore::plist::{self, Limits, Number, Value};

    let text = request.split(|&b| b == 0).next().unwrap_or_default();
    if !text.windows(b"module_".len()).any(|w| w == b"module_") {
        return None;
    }
    let mut dict = plist::parse_dict(text, &Limits::DM).ok()?;
    let command = dict.get_str(keys::COMMAND)?.to_string();
    if command != "module_load" && command != "module_unload" {
        return None;
    }
    let version: Vec<u32> =
        dict.get_array(keys::VERSION).unwrap_or_default().iter().map(|v| v.as_u32().unwrap_or(0)).collect();
    let outcome = if version.first() != Some(&VERSION[0]) || version.get(1).copied().unwrap_or(0) > VERSION[1] {
        Err((Errno::EIO, "interface version mismatch".to_string()))
    } else {
        let v = VERSION.iter().map(|&n| Value::Number(Number::Unsigned(u64::from(n)))).collect();
        dict.insert(keys::VERSION, Value::Array(v));
        if command == "module_load" {
            match dict.get_str("path").map(PathBuf::from) {
                None => Err((Errno::EINVAL, "module_load needs a string `path`".to_string())),
                Some(path) => modules.load(&path).map(|names| {
                    let list = names.iter().map(|n| Value::String(n.as_bytes().to_vec())).collect();
                    dict.insert(keys::CMD_DATA, Value::Array(list));
                }),
            }
        } else {
            match dict.get_str(keys::NAME) {
                None => Err((Errno::EINVAL, "module_unload needs a string `name`".to_string())),
                Some(name) => modules.unload(name).map_err(|errno| {
                    let why = match errno {
                        Errno::EBUSY => format!("module {name} is in use"),
                        Errno::ENOENT => format!("no module {name} is loaded"),
                        _ => format!("module {name} not unloaded"),
                    };
                    (errno, why)
                }),
            }
        }
    };
    let (command_result, detail) = match outcome {
        Ok(()) => (Ok(()), None),
        Err((errno, why)) => (Err(errno), Some(why)),
    };
    Some(dmcore::Reply { bytes: plist::write_dict(&dict), command_result, detail })
}
