//! Table commands: reload, clear, deps, status and table.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::devices::find;
use super::{edit_flags, flags, keys, read_flags, report_event_nr, CmdResult, Failure};
use crate::errno::Errno;
use crate::platform::{LogLevel, Platform};
use crate::plist::{Dict, Number, Value};
use crate::table::{Table, TableLine};
use crate::target::StatusKind;
use crate::Core;

/// Reads `cmd_data` as table lines; any entry that is not a dictionary with a string `type`,
/// numbers `start` and `length` and a string `params` makes the whole request invalid.
fn table_lines(dict: &Dict) -> Result<Vec<TableLine>, Errno> {
    let entries = dict.get_array(keys::CMD_DATA).ok_or(Errno::EINVAL)?;
    entries
        .iter()
        .map(|entry| {
            let entry = entry.as_dict().ok_or(Errno::EINVAL)?;
            Ok(TableLine {
                start: entry.get_u64(keys::START).ok_or(Errno::EINVAL)?,
                len: entry.get_u64(keys::LENGTH).ok_or(Errno::EINVAL)?,
                target_type: String::from(entry.get_str(keys::TYPE).ok_or(Errno::EINVAL)?),
                params: String::from(entry.get_str(keys::PARAMS).ok_or(Errno::EINVAL)?),
            })
        })
        .collect()
}

/// `reload`: builds the table of `cmd_data` in full and, only if every line is valid, puts it
/// in the inactive slot (replacing what was there). On any failure the device is unchanged.
pub(super) fn reload<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    let device = &found.device;
    dict.set_u32(keys::MINOR, device.minor);
    let lines = table_lines(dict)?;
    core.load_inactive(device, &lines).map_err(|e| {
        let detail = match e.line {
            Some(line) => alloc::format!("line {line}: {}", e.message),
            None => e.message,
        };
        core.platform.log(
            LogLevel::Error,
            format_args!("dm: minor {}: table load failed: {detail} ({})", device.minor, e.errno.name()),
        );
        Failure { errno: e.errno, detail: Some(detail) }
    })?;
    edit_flags(dict, flags::INACTIVE_PRESENT, 0);
    Ok(())
}

/// `clear`: drops the inactive table. The reply is not edited.
pub(super) fn clear<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    let device = &found.device;
    let dropped = {
        let _ctl = device.ctl.lock(&core.platform)?;
        device.slots.lock().inactive.take()
    };
    drop(dropped);
    Ok(())
}

/// The table a `deps`, `status` or `table` request asks about.
fn selected_table<P: Platform>(device: &crate::device::Device<P>, dict: &Dict) -> Option<Arc<Table<P>>> {
    if read_flags(dict) & flags::QUERY_INACTIVE_TABLE != 0 {
        device.inactive()
    } else {
        device.active()
    }
}

/// `deps`: the lower block devices of the table, each once, as the host encodes device numbers.
/// The elements are signed numbers, as NetBSD's array append helper writes them.
pub(super) fn deps<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    let devs = selected_table(&found.device, dict).map(|t| t.devices()).unwrap_or_default();
    let list = devs
        .into_iter()
        .map(|d| {
            let encoded = core.platform.encode_dev(d);
            let number = i64::try_from(encoded).map_or(Number::Unsigned(encoded), Number::Signed);
            Value::Number(number)
        })
        .collect();
    dict.set_u32(keys::MINOR, found.device.minor);
    dict.set_string(keys::NAME, &found.name);
    dict.set_string(keys::UUID, &found.uuid);
    dict.insert(keys::CMD_DATA, Value::Array(list));
    Ok(())
}

/// `status` and `table` (one handler; the STATUS_TABLE flag, not the string, chooses): one
/// entry per line with Linux's TABLE line, or its INFO line, in `params`.
pub(super) fn status<P: Platform>(core: &Core<P>, dict: &mut Dict) -> CmdResult {
    let found = find(core, dict)?;
    let device = &found.device;
    let (has_active, has_inactive, active_index) = {
        let slots = device.slots.lock();
        (slots.active.is_some(), slots.inactive.is_some(), slots.active_index)
    };
    let mut set = 0;
    let mut clear = 0;
    if has_active {
        set |= flags::ACTIVE_PRESENT;
    } else {
        clear |= flags::ACTIVE_PRESENT;
        if has_inactive {
            set |= flags::INACTIVE_PRESENT;
        } else {
            clear |= flags::INACTIVE_PRESENT;
        }
    }
    if device.suspended() {
        set |= flags::SUSPEND;
    }
    let kind = if read_flags(dict) & flags::STATUS_TABLE != 0 { StatusKind::Table } else { StatusKind::Info };
    let lines = selected_table(device, dict).map(|t| t.status(kind)).unwrap_or_default();
    let list = lines
        .into_iter()
        .map(|(start, len, target_type, params)| {
            let mut entry = Dict::new();
            entry.set_u64(keys::START, start);
            entry.set_u64(keys::LENGTH, len);
            entry.set_string(keys::TYPE, target_type.as_bytes());
            entry.set_i32(keys::STATUS, active_index);
            entry.set_string(keys::PARAMS, params.as_bytes());
            Value::Dict(entry)
        })
        .collect();
    edit_flags(dict, set, clear);
    dict.set_u32(keys::MINOR, device.minor);
    dict.insert(keys::CMD_DATA, Value::Array(list));
    report_event_nr(dict, device.event_nr());
    Ok(())
}
