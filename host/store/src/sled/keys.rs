//! Key encodings. Every key of an account-owned object starts with the account id's 16 bytes, so listing
//! an account's objects is a prefix scan and another account's object is simply not found.

use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// `account ‖ id`.
pub(crate) fn pair(account: Uuid, id: Uuid) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(account.as_bytes());
    k[16..].copy_from_slice(id.as_bytes());
    k
}

/// `account ‖ a ‖ b`.
pub(crate) fn triple(account: Uuid, a: Uuid, b: Uuid) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..16].copy_from_slice(account.as_bytes());
    k[16..32].copy_from_slice(a.as_bytes());
    k[32..].copy_from_slice(b.as_bytes());
    k
}

/// `account ‖ workflow ‖ version(be)`.
pub(crate) fn workflow_version(account: Uuid, workflow: Uuid, version: u32) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..32].copy_from_slice(&pair(account, workflow));
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

/// `account ‖ name ‖ 0x00`: the prefix of every version of one plugin (the NUL keeps `a` apart from `ab`).
pub(crate) fn plugin_prefix(account: Uuid, name: &str) -> StoreResult<Vec<u8>> {
    check_name(name)?;
    let mut k = Vec::with_capacity(16 + name.len() + 1 + 4);
    k.extend_from_slice(account.as_bytes());
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    Ok(k)
}

/// `account ‖ name ‖ 0x00 ‖ version(be)`.
pub(crate) fn plugin_version(account: Uuid, name: &str, version: u32) -> StoreResult<Vec<u8>> {
    let mut k = plugin_prefix(account, name)?;
    k.extend_from_slice(&version.to_be_bytes());
    Ok(k)
}

/// `account ‖ month`.
pub(crate) fn month(account: Uuid, month: &str) -> StoreResult<Vec<u8>> {
    let ok = month.len() == 7
        && month.bytes().enumerate().all(|(i, b)| {
            if i == 4 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !ok {
        return Err(StoreError::InvalidInput(format!(
            "month must look like 2026-12, got {month:?}"
        )));
    }
    let mut k = Vec::with_capacity(23);
    k.extend_from_slice(account.as_bytes());
    k.extend_from_slice(month.as_bytes());
    Ok(k)
}

/// The uuid stored at `key[at..at + 16]`.
pub(crate) fn uuid_at(key: &[u8], at: usize) -> StoreResult<Uuid> {
    key.get(at..at + 16)
        .and_then(|b| Uuid::from_slice(b).ok())
        .ok_or_else(|| StoreError::Decode {
            what: "key",
            reason: format!("key of {} bytes too short", key.len()),
        })
}

fn check_name(name: &str) -> StoreResult<()> {
    if name.is_empty() || name.contains('\0') {
        return Err(StoreError::InvalidInput(format!(
            "invalid plugin name {name:?}"
        )));
    }
    Ok(())
}
