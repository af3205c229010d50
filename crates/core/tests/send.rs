//! Send stream round trips in a temp dir (no shared extents here: the diff sends every
//! data run, holes where the base had data become HOLE records).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use reflink_pool_core::control::Control;
use reflink_pool_core::imagehash::image_hash;
use reflink_pool_core::receive::Receiver;
use reflink_pool_core::send::{BaseRef, Header, Sender, HEADER_LEN};

const MIB: u64 = 1 << 20;

fn make(path: &Path, size: u64, writes: &[(u64, u8, usize)]) -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.set_len(size).unwrap();
    for &(off, byte, len) in writes {
        f.write_all_at(&vec![byte; len], off).unwrap();
    }
    f.sync_all().unwrap();
    f
}

fn stream(header: Header, target: &File, base: Option<&File>) -> Vec<u8> {
    let mut s = Sender::new(
        header,
        target.try_clone().unwrap(),
        base.map(|b| b.try_clone().unwrap()),
    )
    .unwrap();
    let mut out = Vec::new();
    loop {
        let want = out.len() + (64 << 10);
        if !s.fill(&mut out, want, &Control::NONE).unwrap() {
            break;
        }
    }
    assert_eq!(s.stats().stream_bytes, out.len() as u64);
    out
}

fn receive(stream: &[u8], into: File, piece: usize) -> reflink_pool_core::Result<u128> {
    let header = Header::decode(&stream[..HEADER_LEN])?;
    let mut r = Receiver::new(header, into, 4096);
    for chunk in stream[HEADER_LEN..].chunks(piece) {
        r.feed(chunk, &Control::NONE)?;
    }
    r.finish(&Control::NONE)
}

fn bytes(f: &File, size: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    f.read_exact_at(&mut v, 0).unwrap();
    v
}

#[test]
fn full_then_incremental_round_trip_and_tampering_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let size = 8 * MIB + 100;
    let base = make(
        &dir.path().join("base"),
        size,
        &[
            (0, 1, 5000),
            (3 * MIB, 2, 2 * MIB as usize),
            (8 * MIB, 3, 100),
        ],
    );
    let target = make(
        &dir.path().join("target"),
        size,
        &[
            (0, 1, 5000),
            (3 * MIB, 2, 2 * MIB as usize),
            (8 * MIB, 3, 100),
        ],
    );
    // Rewrite a little, and punch a hole where the base has data.
    target.write_all_at(&[9u8; 10], 4 * MIB + 7).unwrap();
    nix::fcntl::fallocate(
        &target,
        nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
            | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
        3 * MIB as i64,
        MIB as i64,
    )
    .unwrap();
    target.sync_all().unwrap();
    let base_hash = image_hash(&base, size, &Control::NONE).unwrap();

    // Full stream of the base into a sparse file.
    let full = stream(
        Header {
            size,
            target_id: [1; 16],
            base: None,
        },
        &base,
        None,
    );
    let r1 = make(&dir.path().join("r1"), size, &[]);
    assert_eq!(
        receive(&full, r1.try_clone().unwrap(), 7777).unwrap(),
        base_hash
    );
    assert_eq!(bytes(&r1, size), bytes(&base, size));

    // Incremental against the base, applied to a copy of the received base.
    let header = Header {
        size,
        target_id: [2; 16],
        base: Some(BaseRef {
            id: [1; 16],
            size,
            hash: base_hash,
        }),
    };
    let inc = stream(header, &target, Some(&base));
    let r2 = make(&dir.path().join("r2"), size, &[]);
    r2.write_all_at(&bytes(&r1, size), 0).unwrap();
    let h = receive(&inc, r2.try_clone().unwrap(), 4096).unwrap();
    assert_eq!(h, image_hash(&target, size, &Control::NONE).unwrap());
    assert_eq!(bytes(&r2, size), bytes(&target, size));

    // A flipped byte, a cut, or a stream after the wrong base is refused.
    let fresh = || {
        let f = make(&dir.path().join("r3"), size, &[]);
        f.write_all_at(&bytes(&base, size), 0).unwrap();
        f
    };
    for cut in [HEADER_LEN + 10, inc.len() - 1] {
        let e = receive(&inc[..cut], fresh(), 1 << 20).unwrap_err();
        assert_eq!(e.code_name(), "ERR_STREAM_CORRUPT", "cut at {cut}: {e}");
    }
    let mut flipped = inc.clone();
    flipped[HEADER_LEN + 40] ^= 0x40;
    assert_eq!(
        receive(&flipped, fresh(), 1 << 20).unwrap_err().code_name(),
        "ERR_STREAM_CORRUPT"
    );
    let wrong = make(&dir.path().join("r4"), size, &[(0, 7, 4096)]);
    assert_eq!(
        receive(&inc, wrong, 1 << 20).unwrap_err().code_name(),
        "ERR_STREAM_CORRUPT"
    );
    let mut version = full.clone();
    version[8] = 2;
    assert_eq!(
        Header::decode(&version).unwrap_err().code_name(),
        "ERR_STREAM_VERSION"
    );
}
