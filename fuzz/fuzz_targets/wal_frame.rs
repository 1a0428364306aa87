//! The WAL frame and record decoders on arbitrary bytes: an error or a value, never a panic.
#![no_main]

use aedb_wal::frame::{decode, decode_crc_only, Integrity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let plain = Integrity::default();
    let full = Integrity {
        hash_chain: true,
        hmac_key: Some([1; 32]),
    };
    let _ = decode_crc_only(data);
    for integrity in [&plain, &full] {
        if let Ok((header, payload, _)) = decode(data, integrity, &[0; 32]) {
            assert_eq!(payload.len(), header.len as usize);
        }
    }
    let _ = aedb_wal::decode_record(data);
});
