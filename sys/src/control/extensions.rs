//! The commands NetBSD's driver does not implement (reference §11): `message`, `waitevent` and
//! `remove_all`. Their keys are documented in the module documentation of [`super`].

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::devices::{find, remove_device, write_info, Found};
use super::{edit_flags, flags, keys, CmdResult, Failure};
use crate::device::Device;
use crate::errno::Errno;
use crate::platform::{LogLevel, Platform};
use crate::plist::{Dict, Value};
use crate::target::args;
use crate::Core;

fn refuse(errno: Errno, detail: impl Into<String>) -> Failure {
    Failure { errno, detail: Some(detail.into()) }
}

/// `message`: passes the text of `message`, split into arguments as table parameters are, to
/// the line of the live table that contains sector `sector` (0 when absent: the first line).
/// The line's answer, if it gives one, is the reply's `cmd_data[0]` (a string).
///
/// Refused with `EINVAL`: a missing or non-string `message`, a `sector` that is not a number,
/// an empty message, a message for the device-mapper core (`@...`, Linux's statistics and
/// deferred-remove messages, not provided here), a device without a live table, a sector past
/// its end, and a target that takes no messages ("Target type does not support messages", as
/// Linux). A target's own refusal keeps its errno and message. The message goes to the target
/// without suspending anything, as in Linux; a table swap meanwhile does not disturb it (the
/// message holds the table it found).
pub(super) fn message<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    let device = &found.device;
    let text = dict
        .get(keys::MESSAGE)
        .and_then(Value::as_str)
        .ok_or_else(|| refuse(Errno::EINVAL, "Invalid target message parameters."))?;
    let sector = match dict.get(keys::SECTOR) {
        None => 0,
        Some(value) => value.as_u64().ok_or_else(|| refuse(Errno::EINVAL, "Invalid target message sector."))?,
    };
    let argv = args::split(text).map_err(|e| refuse(e.errno, e.message))?;
    let Some(first) = argv.first() else {
        return Err(refuse(Errno::EINVAL, "Empty message received."));
    };
    if first.starts_with('@') {
        return Err(refuse(
            Errno::EINVAL,
            format!("Unsupported message sent to DM core: {first} (device-mapper core messages are not provided)"),
        ));
    }
    let table = device.active().ok_or_else(|| refuse(Errno::EINVAL, "The device has no live table."))?;
    let entry = table
        .find(sector)
        .and_then(|index| table.entry(index))
        .ok_or_else(|| refuse(Errno::EINVAL, "Target message sector outside device."))?;
    match entry.target.message(&argv) {
        Ok(Some(answer)) => {
            dict.insert(keys::CMD_DATA, Value::Array(alloc::vec![Value::String(answer.into_bytes())]));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            core.platform.log(
                LogLevel::Warning,
                format_args!("dm: minor {}: message to {}: {}", device.minor, entry.target_type.name(), e.message),
            );
            Err(refuse(e.errno, e.message))
        }
    }
}

/// `waitevent`: waits until the device's event counter differs from the request's `event_nr`
/// (0 when absent), then replies with the keys of `info` and the counter in `event_nr`.
///
/// The wait holds a reference to the device and no lock of the core, so every other command,
/// on this device too, runs meanwhile. It is interruptible: a signal (the host's
/// [`Platform::wait`] returning `EINTR`) fails the command with `EINTR`. A device removed
/// while its caller waits fails it with `ENXIO` and EXISTS cleared in the reply flags (the
/// device was found, then went away; `ENOENT` stays the answer for a device not found at all).
pub(super) fn waitevent<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    let device = found.device.clone();
    drop(found);
    let seen = dict.get_u32(keys::EVENT_NR).unwrap_or(0);
    let mut gone = false;
    core.platform.wait(
        &mut || {
            gone = !registered(core, &device);
            gone || device.event_nr() != seen
        },
        true,
    )?;
    // The names as they are now (a rename may have happened meanwhile).
    let record = {
        let devices = core.devices.read();
        let record = devices.lookup(device.minor, &[], &[]).filter(|r| Arc::ptr_eq(&r.device, &device));
        record.map(|r| Found { device: r.device.clone(), name: r.name.clone(), uuid: r.uuid.clone() })
    };
    let Some(found) = record.filter(|_| !gone) else {
        edit_flags(dict, 0, flags::EXISTS);
        return Err(refuse(Errno::ENXIO, "The device was removed while waiting for an event."));
    };
    write_info(dict, &found);
    dict.set_u32(keys::EVENT_NR, found.device.event_nr());
    Ok(())
}

/// Whether `device` is still the registered device of its minor.
fn registered<P: Platform>(core: &Core<P>, device: &Arc<Device<P>>) -> bool {
    core.devices.read().device(device.minor).is_some_and(|d| Arc::ptr_eq(&d, device))
}

/// `remove_all`: removes every device that is not open, each as `remove` does (all or
/// nothing), and keeps the open ones, as Linux's `DM_REMOVE_ALL` does. Removing a device may
/// close the devices its tables stacked on, so passes repeat until one removes nothing. Always
/// succeeds; the devices left are logged ("remove_all left N open device(s)", Linux's
/// warning). The request needs no key beyond the standard ones, and the reply adds nothing.
pub(super) fn remove_all<P: Platform>(core: &Core<P>, _dict: &mut Dict) -> CmdResult {
    loop {
        let devices: Vec<Arc<Device<P>>> =
            core.devices.read().in_order().into_iter().map(|r| r.device.clone()).collect();
        let mut removed = 0usize;
        let mut left = 0usize;
        for device in &devices {
            match remove_device(core, device) {
                Ok(()) => removed += 1,
                Err(errno) => {
                    left += 1;
                    if errno != Errno::EBUSY {
                        core.platform.log(
                            LogLevel::Warning,
                            format_args!("dm: remove_all: minor {} not removed: {errno}", device.minor),
                        );
                    }
                }
            }
        }
        if removed == 0 || left == 0 {
            if left > 0 {
                core.platform.log(LogLevel::Warning, format_args!("dm: remove_all left {left} open device(s)"));
            }
            return Ok(());
        }
    }
}
