//! Golden bytes of the write-ahead log's encodings (docs/FORMAT.md, "Write-ahead log"): commit
//! records with every op kind, frames without and with the hash chain and the HMAC, and segment
//! headers and file names. Pure encoders only: no I/O.
//!
//! Every expected byte is a literal written from FORMAT.md. The CRC32s (IEEE), SHA-256 chain
//! hashes and HMAC-SHA256s were computed from the bytes FORMAT.md lays out with Python's zlib,
//! hashlib and hmac, not with this crate. A failure means logs written before the change no
//! longer read the same: change the format deliberately (and FORMAT.md), never a literal to fit.

use std::path::Path;

use aedb_wal::frame::{
    decode, encode, peek_header, FrameHeader, FRAME_HEADER_BYTES, FRAME_MAGIC, HASH_BYTES,
    MAX_PAYLOAD_BYTES,
};
use aedb_wal::segment::{
    parse_segment_name, segment_path, SegmentHeader, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC,
    SEGMENT_VERSION,
};
use aedb_wal::{decode_record, decode_record_ref, Integrity, RecordBuilder, WalOp, WalOpRef};

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn constants() {
    assert_eq!(FRAME_MAGIC, b"AEWF");
    assert_eq!(FRAME_HEADER_BYTES, 40);
    assert_eq!(HASH_BYTES, 32);
    assert_eq!(MAX_PAYLOAD_BYTES, 64 << 20);
    assert_eq!(SEGMENT_MAGIC, b"AEDBWAL\0");
    assert_eq!(SEGMENT_VERSION, 1);
    assert_eq!(SEGMENT_HEADER_BYTES, 128);
}

// ---------------------------------------------------------------------------------------------
// Commit records

#[test]
fn record_with_every_op() {
    let mut b = RecordBuilder::default();
    b.put("t:1", b"k", b"v");
    b.delete("t:1", b"gone");
    b.create_tree("i:1:x");
    b.drop_tree("old");
    let golden: &[u8] = &[
        0x01, // record version
        0x04, 0x00, 0x00, 0x00, // 4 ops
        // put: kind 1, tree "t:1", key "k", value "v"
        0x01, 0x03, 0x00, b't', b':', b'1', //
        0x01, 0x00, 0x00, 0x00, b'k', //
        0x01, 0x00, 0x00, 0x00, b'v', //
        // delete: kind 2, tree "t:1", key "gone"
        0x02, 0x03, 0x00, b't', b':', b'1', //
        0x04, 0x00, 0x00, 0x00, b'g', b'o', b'n', b'e', //
        // create tree: kind 3, tree "i:1:x"
        0x03, 0x05, 0x00, b'i', b':', b'1', b':', b'x', //
        // drop tree: kind 4, tree "old"
        0x04, 0x03, 0x00, b'o', b'l', b'd',
    ];
    assert_eq!(b.len_bytes(), golden.len());
    assert_eq!(b.finish(), golden);

    let ops = vec![
        WalOp::Put {
            tree: "t:1".into(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        },
        WalOp::Delete {
            tree: "t:1".into(),
            key: b"gone".to_vec(),
        },
        WalOp::CreateTree {
            tree: "i:1:x".into(),
        },
        WalOp::DropTree { tree: "old".into() },
    ];
    assert_eq!(decode_record(golden).unwrap(), ops);
    assert_eq!(
        decode_record_ref(golden).unwrap(),
        vec![
            WalOpRef::Put {
                tree: "t:1",
                key: b"k",
                value: b"v"
            },
            WalOpRef::Delete {
                tree: "t:1",
                key: b"gone"
            },
            WalOpRef::CreateTree { tree: "i:1:x" },
            WalOpRef::DropTree { tree: "old" },
        ]
    );
}

#[test]
fn record_lengths_are_little_endian() {
    // A 258-byte tree name (u16 0x0102), a 300-byte key (u32 0x012c) and an empty value.
    let tree = "n".repeat(258);
    let key = [0xaau8; 300];
    let mut b = RecordBuilder::default();
    b.put(&tree, &key, b"");
    let golden = cat(&[
        &[0x01, 0x01, 0x00, 0x00, 0x00], // version 1, 1 op
        &[0x01, 0x02, 0x01],             // put, tree name length 258
        &[b'n'; 258],
        &[0x2c, 0x01, 0x00, 0x00], // key length 300
        &[0xaa; 300],
        &[0x00, 0x00, 0x00, 0x00], // value length 0
    ]);
    assert_eq!(b.finish(), golden);
    assert_eq!(
        decode_record(&golden).unwrap(),
        vec![WalOp::Put {
            tree,
            key: key.to_vec(),
            value: Vec::new()
        }]
    );

    let empty = RecordBuilder::default();
    assert!(empty.is_empty());
    assert_eq!(empty.finish(), [0x01, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(decode_record(&[0x01, 0x00, 0x00, 0x00, 0x00]).unwrap(), []);
}

// ---------------------------------------------------------------------------------------------
// Frames

/// The payload of every golden frame: a record of one put of "v" at "k" in "t:1".
const PAYLOAD: [u8; 21] = [
    0x01, 0x01, 0x00, 0x00, 0x00, // version 1, 1 op
    0x01, 0x03, 0x00, b't', b':', b'1', // put in "t:1"
    0x01, 0x00, 0x00, 0x00, b'k', // key "k"
    0x01, 0x00, 0x00, 0x00, b'v', // value "v"
];

const HMAC_KEY: [u8; 32] = [0x42; 32];
/// The chain value before the frame, where the chain matters.
const PREV: [u8; 32] = [0x11; 32];

/// LSN 7, commit sequence 7, synced through LSN 6.
fn frame_header(flags: u8) -> FrameHeader {
    FrameHeader {
        len: PAYLOAD.len() as u32,
        lsn: 7,
        seq: 7,
        synced_through: 6,
        flags,
    }
}

/// A golden frame: the 40-byte header with `flags` and `crc`, the payload, the trailer.
fn golden_frame(flags: u8, crc: [u8; 4], trailer: &[&[u8]]) -> Vec<u8> {
    cat(&[
        b"AEWF",
        &[0x15, 0x00, 0x00, 0x00], // payload length 21
        &[0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // LSN 7
        &[0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // commit sequence 7
        &[0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // synced through 6
        &[flags, 0x00, 0x00, 0x00],
        &crc, // CRC32 of bytes 0..36, the payload and the trailer
        &PAYLOAD,
        &trailer.concat(),
    ])
}

/// `encode` writes `golden` and returns `chain`; `decode` reads it back.
fn check_frame(integrity: &Integrity, prev: &[u8; 32], golden: &[u8], chain: [u8; 32]) {
    let flags = golden[32];
    let mut out = vec![0xee]; // frames append: bytes already there stay
    let returned = encode(&mut out, frame_header(flags), &PAYLOAD, integrity, prev);
    assert_eq!(out[0], 0xee);
    assert_eq!(&out[1..], golden, "frame with {integrity:?}");
    assert_eq!(returned, chain, "chain value after the frame");

    assert_eq!(peek_header(golden).unwrap(), frame_header(flags));
    assert_eq!(frame_header(flags).total_len(), golden.len());
    let (header, payload, hash) = decode(golden, integrity, prev).unwrap();
    assert_eq!(header, frame_header(flags));
    assert_eq!(payload, PAYLOAD);
    assert_eq!(hash, chain);
}

#[test]
fn frame_plain() {
    let golden = golden_frame(0x00, [0x58, 0x2f, 0x23, 0xbe], &[]);
    check_frame(&Integrity::default(), &[0; 32], &golden, [0; 32]);
}

/// SHA-256(PREV ‖ bytes 0..36 ‖ payload) of the frame with flags 1.
const CHAIN_HASH: [u8; 32] = [
    0xbe, 0x51, 0xda, 0x65, 0xdf, 0x14, 0xce, 0x33, 0x23, 0x07, 0x27, 0xbb, 0xfa, 0xe7, 0x8f, 0x01,
    0xc2, 0x75, 0xa1, 0xc6, 0x3f, 0xdf, 0x00, 0x18, 0xdc, 0xf4, 0x55, 0x18, 0x09, 0x7a, 0x8c, 0x6b,
];

#[test]
fn frame_with_hash_chain() {
    let integrity = Integrity {
        hash_chain: true,
        hmac_key: None,
    };
    let golden = golden_frame(0x01, [0xd9, 0xc2, 0x53, 0xb6], &[&CHAIN_HASH]);
    check_frame(&integrity, &PREV, &golden, CHAIN_HASH);
}

#[test]
fn frame_with_hmac() {
    let integrity = Integrity {
        hash_chain: false,
        hmac_key: Some(HMAC_KEY),
    };
    // HMAC-SHA256(HMAC_KEY, bytes 0..36 ‖ payload ‖ 32 zero bytes): no chain has been kept.
    let mac: [u8; 32] = [
        0x67, 0x36, 0xd5, 0x42, 0x6e, 0x3b, 0xfe, 0xe9, 0x31, 0xc6, 0x39, 0x7e, 0x3c, 0x39, 0xfc,
        0xf3, 0xec, 0xf9, 0xda, 0x2b, 0xf6, 0xde, 0x11, 0x9f, 0x96, 0x63, 0x47, 0x3e, 0x0a, 0x3a,
        0x55, 0x0f,
    ];
    let golden = golden_frame(0x02, [0x79, 0xeb, 0x75, 0xee], &[&mac]);
    check_frame(&integrity, &[0; 32], &golden, [0; 32]);

    // Without the chain, the HMAC covers the chain value carried from before (a log that kept
    // the chain earlier): here PREV, returned unchanged.
    let mac: [u8; 32] = [
        0x7b, 0x1e, 0xfe, 0x73, 0x65, 0xb6, 0x25, 0x5b, 0x00, 0xa9, 0xfd, 0x1e, 0x24, 0x93, 0x00,
        0x08, 0x91, 0x2f, 0xd8, 0x47, 0x1c, 0xbb, 0x3f, 0xba, 0x2d, 0x12, 0x09, 0x0a, 0xd9, 0x74,
        0xfb, 0x8f,
    ];
    let golden = golden_frame(0x02, [0x1b, 0xbb, 0xb3, 0xa2], &[&mac]);
    check_frame(&integrity, &PREV, &golden, PREV);
}

#[test]
fn frame_with_hash_chain_and_hmac() {
    let integrity = Integrity {
        hash_chain: true,
        hmac_key: Some(HMAC_KEY),
    };
    // SHA-256(PREV ‖ bytes 0..36 ‖ payload); bytes 0..36 hold flags 3, so it is not CHAIN_HASH.
    let chain: [u8; 32] = [
        0x1d, 0xab, 0xd0, 0xc5, 0x0e, 0x92, 0x82, 0xdf, 0x3c, 0xc3, 0x71, 0xab, 0xa8, 0x61, 0x88,
        0xf0, 0x41, 0x90, 0x5d, 0xc5, 0x9b, 0xc4, 0xbe, 0x52, 0x7a, 0x8e, 0x6e, 0xb4, 0x85, 0x47,
        0xf6, 0x83,
    ];
    // HMAC-SHA256(HMAC_KEY, bytes 0..36 ‖ payload ‖ chain).
    let mac: [u8; 32] = [
        0x2d, 0x1e, 0xa5, 0xaa, 0x15, 0x1f, 0x54, 0x9f, 0xfe, 0x22, 0xcc, 0x7d, 0xaa, 0xc0, 0xeb,
        0x3f, 0x2e, 0xc6, 0x4f, 0x5f, 0x09, 0x9d, 0x5e, 0x74, 0xce, 0x7e, 0xad, 0xdc, 0xaf, 0x66,
        0x4f, 0xfc,
    ];
    let golden = golden_frame(0x03, [0xac, 0x77, 0xa2, 0x32], &[&chain, &mac]);
    check_frame(&integrity, &PREV, &golden, chain);
}

// ---------------------------------------------------------------------------------------------
// Segments

#[test]
fn segment_header() {
    let header = SegmentHeader {
        number: 3,
        first_lsn: 0x0102_0304_0506_0708,
        chain: [0x11; 32],
    };
    let golden = cat(&[
        b"AEDBWAL\0",
        &[0x01, 0x00, 0x00, 0x00], // format version 1
        &[0x00; 4],                // reserved
        &[0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // segment number 3
        &[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01], // first LSN
        &[0x11; 32],               // chain value before the first frame
        &[0xff, 0x34, 0x73, 0x25], // CRC32 of bytes 0..64
        &[0x00; 60],               // reserved
    ]);
    assert_eq!(header.encode().as_slice(), golden);
    let path = Path::new("/db/wal/wal-0000000000000003.log");
    assert_eq!(SegmentHeader::decode(&golden, path).unwrap(), header);

    // The first segment of a new log without the chain.
    let first = SegmentHeader {
        number: 1,
        first_lsn: 1,
        chain: [0; 32],
    };
    let golden = cat(&[
        b"AEDBWAL\0",
        &[0x01, 0x00, 0x00, 0x00],
        &[0x00; 4],
        &[0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x00; 32],
        &[0xeb, 0xaa, 0xac, 0xa5],
        &[0x00; 60],
    ]);
    assert_eq!(first.encode().as_slice(), golden);
    assert_eq!(SegmentHeader::decode(&golden, path).unwrap(), first);
}

#[test]
fn segment_file_names() {
    let dir = Path::new("/db/wal");
    assert_eq!(
        segment_path(dir, 3),
        Path::new("/db/wal/wal-0000000000000003.log")
    );
    assert_eq!(
        segment_path(dir, 1234567890123456),
        Path::new("/db/wal/wal-1234567890123456.log")
    );
    assert_eq!(
        parse_segment_name(Path::new("/db/wal/wal-0000000000000003.log")),
        Some(3)
    );
    assert_eq!(parse_segment_name(Path::new("wal-3.log")), None);
}
