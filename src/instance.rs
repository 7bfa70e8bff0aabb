//! Which instance answered: an opaque id, stable for the machine's life, sent
//! with every answer (`Nowd-Instance:`), so that a check from outside can tell
//! the instances behind one load balancer address apart.
//!
//! The id is derived from the machine id the way systemd's
//! `sd_id128_get_machine_app_specific()` does (and `systemd-id128 machine-id
//! --app-specific=` prints): HMAC-SHA256 of nowd's application id keyed by the
//! machine id, cut to 128 bits and marked as a version 4 UUID. The machine id
//! cannot be recovered from it, nor does it match any other program's id.
//!
//! The machine id comes from the systemd credential `machine-id` (the unit's
//! `LoadCredential=`, readable by nowd alone inside its empty root), else from
//! /etc/machine-id. Without one, answers carry no id; nowd still serves.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::PathBuf;

/// nowd's application id (made once with `systemd-id128 new`; never change it,
/// or every instance's id changes with it).
pub const APP_ID: [u8; 16] = [
    0xa9, 0x87, 0xe7, 0x96, 0xb8, 0x2e, 0x44, 0x89, 0x8e, 0x3a, 0xe4, 0xe4, 0xb6, 0xb5, 0x30, 0x60,
];

/// The header that carries the id.
pub const HEADER: &str = "Nowd-Instance";

/// The id for a machine id in /etc/machine-id's format (32 hex digits and a
/// newline), or why it cannot be made.
pub fn from_machine_id(text: &str) -> Result<String, String> {
    let hex = text.trim();
    if hex.is_empty() {
        return Err("the machine id is empty".into());
    }
    let mut key = [0u8; 16];
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the machine id is not 32 hexadecimal digits".into());
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(&APP_ID);
    let digest = mac.finalize().into_bytes();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    // As systemd's id128_make_v4_uuid(): version 4, variant 1.
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where the machine id is read from: the credential when systemd passes one.
pub fn machine_id_path() -> PathBuf {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) => PathBuf::from(dir).join("machine-id"),
        None => PathBuf::from("/etc/machine-id"),
    }
}

/// This instance's id, or why there is none (for the log).
pub fn load() -> Result<String, String> {
    let path = machine_id_path();
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    from_machine_id(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_machine_ids_are_refused() {
        assert!(from_machine_id("").unwrap_err().contains("empty"));
        assert!(from_machine_id("\n").unwrap_err().contains("empty"));
        assert!(from_machine_id("uninitialized\n").is_err());
        assert!(from_machine_id(&"g".repeat(32)).is_err());
        assert!(from_machine_id(&"0".repeat(31)).is_err());
    }

    #[test]
    fn the_id_is_a_v4_uuid_that_differs_from_the_machine_id() {
        let machine = "3d1219c7c4c5404aaa1f6d2a48adfda4\n";
        let id = from_machine_id(machine).unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(&id[12..13], "4");
        assert!("89ab".contains(&id[16..17]));
        assert_ne!(id, machine.trim());
        assert_eq!(id, from_machine_id(machine.trim()).unwrap()); // stable
        assert_ne!(id, from_machine_id(&"0".repeat(32)).unwrap());
    }
}
