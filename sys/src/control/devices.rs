//! Device commands: create, info/mknodes, names, suspend, resume, rename, remove.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{edit_flags, flags, keys, read_flags, report_event_nr, CmdResult};
use crate::device::{Device, MAX_NAME_LEN, MAX_UUID_LEN};
use crate::errno::Errno;
use crate::platform::Platform;
use crate::plist::{Dict, Value};
use crate::Core;

/// A device found by a request's lookup keys, with its current names.
pub(super) struct Found<P: Platform> {
    pub device: Arc<Device<P>>,
    pub name: Vec<u8>,
    pub uuid: Vec<u8>,
}

/// Finds the request's device (minor, then name, then uuid). When there is none the reply's
/// EXISTS flag is cleared and the command fails with `ENOENT`.
pub(super) fn find<P: Platform>(core: &Core<P>, dict: &mut Dict) -> Result<Found<P>, Errno> {
    let minor = dict.get_u32(keys::MINOR).unwrap_or(0);
    let name = dict.get_bytes(keys::NAME).unwrap_or_default();
    let uuid = dict.get_bytes(keys::UUID).unwrap_or_default();
    let found = core.devices.read().lookup(minor, name, uuid).map(|r| Found {
        device: r.device.clone(),
        name: r.name.clone(),
        uuid: r.uuid.clone(),
    });
    found.ok_or_else(|| {
        edit_flags(dict, 0, flags::EXISTS);
        Errno::ENOENT
    })
}

/// A device name must be non-empty, at most 127 bytes, and usable as a node name in
/// /dev/mapper (no `/`, not `.` or `..`).
fn check_name(name: &[u8]) -> Result<(), Errno> {
    let bad = name.is_empty() || name.len() > MAX_NAME_LEN || name.contains(&b'/') || name == b"." || name == b"..";
    if bad {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// The flags word a device itself carries: READONLY, SUSPEND and the table-presence bits.
fn device_flags<P: Platform>(device: &Device<P>) -> u32 {
    let mut f = 0;
    if device.read_only {
        f |= flags::READONLY;
    }
    if device.suspended() {
        f |= flags::SUSPEND;
    }
    let slots = device.slots.lock();
    if slots.active.is_some() {
        f |= flags::ACTIVE_PRESENT;
    }
    if slots.inactive.is_some() {
        f |= flags::INACTIVE_PRESENT;
    }
    f
}

/// `create`: registers a device under `name` (and `uuid`). The requested minor and
/// PERSISTENT_DEV are ignored: minors count up from 1 and are never reused.
pub(super) fn create<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let name = dict.get_bytes(keys::NAME).ok_or(Errno::EINVAL)?.to_vec();
    let uuid = dict.get_bytes(keys::UUID).unwrap_or_default().to_vec();
    check_name(&name)?;
    if uuid.len() > MAX_UUID_LEN {
        return Err(Errno::EINVAL.into());
    }
    let read_only = read_flags(dict) & flags::READONLY != 0;
    let _serial = core.registry_ctl.lock(&core.platform)?;
    let created = core.devices.write().create(&name, &uuid, read_only);
    let device = match created {
        Ok(device) => device,
        Err(errno) => {
            if errno == Errno::EEXIST {
                edit_flags(dict, flags::EXISTS, 0);
            }
            return Err(errno.into());
        }
    };
    if let Err(errno) = core.platform.attach_device(device.minor, &name) {
        core.devices.write().remove(device.minor);
        return Err(errno.into());
    }
    dict.set_u32(keys::MINOR, device.minor);
    edit_flags(dict, flags::EXISTS, flags::INACTIVE_PRESENT);
    Ok(())
}

/// `info` and `mknodes`: the device's open count, minor, uuid, name, target count and flags,
/// and its event counter in `event_nr` when the request carries that key.
pub(super) fn info<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    write_info(dict, &found);
    Ok(())
}

/// The keys of an `info` reply (also those of `waitevent`'s).
pub(super) fn write_info<P: Platform>(dict: &mut Dict, found: &Found<P>) {
    let device = &found.device;
    let (active, inactive) = {
        let slots = device.slots.lock();
        (slots.active.as_ref().map(|t| t.entries().len()), slots.inactive.is_some())
    };
    dict.set_u32(keys::OPEN_COUNT, device.open_count());
    dict.set_u32(keys::MINOR, device.minor);
    dict.set_string(keys::UUID, &found.uuid);
    dict.set_string(keys::NAME, &found.name);
    dict.set_u32(keys::TARGET_COUNT, active.unwrap_or(0) as u32);
    let mut set = 0;
    let mut clear = 0;
    if device.suspended() {
        set |= flags::SUSPEND;
    }
    // NetBSD reports READONLY only in suspend replies; Linux in every info reply, where lvm2
    // reads it.
    if device.read_only {
        set |= flags::READONLY;
    } else {
        clear |= flags::READONLY;
    }
    if active.is_some() {
        set |= flags::ACTIVE_PRESENT;
    } else {
        clear |= flags::ACTIVE_PRESENT;
    }
    if inactive {
        set |= flags::INACTIVE_PRESENT;
    } else {
        clear |= flags::INACTIVE_PRESENT;
    }
    edit_flags(dict, set, clear);
    report_event_nr(dict, device.event_nr());
}

/// `names`: `{dev: minor, name}` for every device, in creation order (a renamed device last).
pub(super) fn names<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let list = core
        .devices
        .read()
        .in_order()
        .into_iter()
        .map(|r| {
            let mut entry = Dict::new();
            entry.set_u32(keys::DEV, r.device.minor);
            entry.set_string(keys::NAME, &r.name);
            Value::Dict(entry)
        })
        .collect();
    dict.insert(keys::CMD_DATA, Value::Array(list));
    Ok(())
}

/// `suspend`: new requests wait, and the command returns once every request in flight has
/// completed. The reply's flags are the device's own flags plus EXISTS.
pub(super) fn suspend<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    let device = &found.device;
    let noflush = read_flags(dict) & flags::NOFLUSH != 0;
    {
        let _ctl = device.ctl.lock(&core.platform)?;
        quiesce(core, device, noflush)?;
    }
    dict.set_u32(keys::OPEN_COUNT, device.open_count());
    dict.set_u32(keys::MINOR, device.minor);
    dict.set_u32(keys::FLAGS, device_flags(device) | flags::EXISTS);
    Ok(())
}

/// Stops admitting requests to `device`, lets every line of the live table release what it
/// holds ([`crate::target::Target::presuspend`]: delay's held requests), and waits for the
/// requests in flight.
pub(super) fn quiesce<P: Platform>(core: &Core<P>, device: &Device<P>, noflush: bool) -> Result<(), Errno> {
    device.set_suspended(true);
    presuspend(device, noflush);
    core.platform.wait(&mut || device.drained(), false)
}

/// Calls `presuspend` on every line of the live table.
fn presuspend<P: Platform>(device: &Device<P>, noflush: bool) {
    if let Some(table) = device.active() {
        for entry in table.entries() {
            entry.target.presuspend(noflush);
        }
    }
}

/// `resume`: makes a loaded table live (after draining the old one) and releases the requests
/// that waited. Without a loaded table it only ends the suspension: unlike NetBSD, it never
/// swaps in an empty table.
pub(super) fn resume<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    let device = &found.device;
    let (retired, refused) = {
        let _ctl = device.ctl.lock(&core.platform)?;
        let retired = if device.slots.lock().inactive.is_some() {
            quiesce(core, device, read_flags(dict) & flags::NOFLUSH != 0)?;
            let mut slots = device.slots.lock();
            let incoming = slots.inactive.take();
            slots.active_index ^= 1;
            core::mem::replace(&mut slots.active, incoming)
        } else {
            None
        };
        // Linux's preresume: a line may keep the device suspended (a snapshot whose exceptions
        // another, still live, device holds).
        let refused = device.active().and_then(|t| t.entries().iter().find_map(|e| e.target.preresume().err()));
        if refused.is_none() {
            // The live table's lines undo their presuspend before requests flow again.
            if let Some(table) = device.active() {
                for entry in table.entries() {
                    entry.target.resume();
                }
            }
            device.set_suspended(false);
        }
        (retired, refused)
    };
    if let Some(size) = device.active().map(|t| t.size()) {
        core.platform.device_resized(device.minor, size);
    }
    if let Some(errno) = refused {
        drop(retired);
        return Err(errno.into());
    }
    core.platform.release_deferred(device.minor);
    drop(retired);
    dict.set_u32(keys::OPEN_COUNT, device.open_count());
    dict.set_u32(keys::MINOR, device.minor);
    edit_flags(dict, flags::EXISTS, 0);
    Ok(())
}

/// `rename`: the new name is `cmd_data[0]`. The reply keeps the old `name`, as NetBSD's does.
pub(super) fn rename<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let new_name =
        dict.get_array(keys::CMD_DATA).and_then(|a| a.first()).and_then(Value::as_bytes).ok_or(Errno::EINVAL)?.to_vec();
    check_name(&new_name)?;
    let found = find(core, dict)?;
    let device = &found.device;
    {
        let _serial = core.registry_ctl.lock(&core.platform)?;
        core.devices.write().rename(device.minor, &new_name)?;
    }
    dict.set_u32(keys::OPEN_COUNT, device.open_count());
    dict.set_u32(keys::MINOR, device.minor);
    dict.set_string(keys::UUID, &found.uuid);
    Ok(())
}

/// `remove`: refused with `EBUSY` while the device is open; otherwise waits for requests in
/// flight, unregisters the device and destroys both tables. The reply adds nothing.
pub(super) fn remove<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    remove_device(core, &found.device)?;
    Ok(())
}

/// Removes one device, all or nothing: `EBUSY` (and nothing done) while it is open; when the
/// wait for its requests in flight fails, it stays registered and usable. Used by `remove` and
/// `remove_all`.
pub(super) fn remove_device<P: Platform>(core: &Core<P>, device: &Device<P>) -> Result<(), Errno> {
    let removed = {
        let _serial = core.registry_ctl.lock(&core.platform)?;
        let _ctl = device.ctl.lock(&core.platform)?;
        device.start_removal()?;
        // As Linux's destroy does for a live device: its lines release what they hold.
        presuspend(device, false);
        if let Err(errno) = core.platform.wait(&mut || device.drained(), false) {
            if let Some(table) = device.active() {
                for entry in table.entries() {
                    entry.target.resume();
                }
            }
            device.cancel_removal();
            return Err(errno);
        }
        core.devices.write().remove(device.minor)
    };
    // Requests that waited for a resume now find no device and fail.
    core.platform.release_deferred(device.minor);
    core.platform.detach_device(device.minor);
    let tables = {
        let mut slots = device.slots.lock();
        (slots.active.take(), slots.inactive.take())
    };
    drop(tables);
    drop(removed);
    // `waitevent` callers of the device learn that it is gone.
    core.platform.wake();
    Ok(())
}
