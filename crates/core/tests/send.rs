//! Send stream round trips in a temp dir (no shared extents here: the diff sends every
//! data run, holes where the base had data become HOLE records).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use reflink_pool_core::control::Control;
use reflink_pool_core::imagehash::image_hash;
use reflink_pool_core::receive::Receiver;
use reflink_pool_core::send::Sender;
use reflink_pool_core::send_format::{BaseRef, Header, RecordHead, StreamKey, MAX_HEADER_LEN};

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

/// How a stream is made: compressed, and under which key.
#[derive(Clone, Copy, Debug)]
struct Mode {
    compress: bool,
    key: Option<StreamKey>,
}

const MODES: [Mode; 4] = [
    Mode {
        compress: false,
        key: None,
    },
    Mode {
        compress: true,
        key: None,
    },
    Mode {
        compress: false,
        key: Some([0x5a; 32]),
    },
    Mode {
        compress: true,
        key: Some([0x5a; 32]),
    },
];

fn stream(header: Header, target: &File, base: Option<&File>) -> Vec<u8> {
    stream_as(header, target, base, MODES[0])
}

fn stream_as(mut header: Header, target: &File, base: Option<&File>, mode: Mode) -> Vec<u8> {
    header.compressed = mode.compress;
    header.keyed = mode.key.is_some();
    let mut s = Sender::new(
        header,
        target.try_clone().unwrap(),
        base.map(|b| b.try_clone().unwrap()),
        mode.key,
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
    receive_as(stream, into, piece, None)
}

fn receive_as(
    stream: &[u8],
    into: File,
    piece: usize,
    key: Option<&StreamKey>,
) -> reflink_pool_core::Result<u128> {
    let at = stream.len().min(MAX_HEADER_LEN);
    let (header, seal) = Header::decode(&stream[..at], key)?;
    let mut r = Receiver::new(header, seal, into, 4096);
    for chunk in stream[header.wire_len()..].chunks(piece) {
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
    let full = stream(Header::new(size, [1; 16], None), &base, None);
    let r1 = make(&dir.path().join("r1"), size, &[]);
    assert_eq!(
        receive(&full, r1.try_clone().unwrap(), 7777).unwrap(),
        base_hash
    );
    assert_eq!(bytes(&r1, size), bytes(&base, size));

    // Incremental against the base, applied to a copy of the received base.
    let header = Header::new(
        size,
        [2; 16],
        Some(BaseRef {
            id: [1; 16],
            size,
            hash: base_hash,
        }),
    );
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
    for cut in [header.wire_len() + 10, inc.len() - 1] {
        let e = receive(&inc[..cut], fresh(), 1 << 20).unwrap_err();
        assert_eq!(e.code_name(), "ERR_STREAM_CORRUPT", "cut at {cut}: {e}");
    }
    let mut flipped = inc.clone();
    flipped[header.wire_len() + 40] ^= 0x40;
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
    version[8] = 3;
    assert_eq!(
        Header::decode(&version, None).unwrap_err().code_name(),
        "ERR_STREAM_VERSION"
    );
}

/// An image with compressible runs, noise and holes, and a target that rewrites a part.
fn pair(dir: &Path) -> (File, File, u64) {
    let size = 6 * MIB + 4096 * 3 + 10;
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..MIB as usize)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let text: Vec<u8> = b"reflink-pool send stream "
        .iter()
        .copied()
        .cycle()
        .take(2 * MIB as usize)
        .collect();
    let base = make(&dir.join("base"), size, &[(5 * MIB, 4, 4096 * 3 + 10)]);
    base.write_all_at(&noise, 0).unwrap();
    base.write_all_at(&text, 2 * MIB).unwrap();
    base.sync_all().unwrap();
    let target = make(&dir.join("target"), size, &[]);
    target.write_all_at(&bytes(&base, size), 0).unwrap();
    target.write_all_at(&text[..300_000], 100_000).unwrap();
    target.write_all_at(&noise[..5000], 3 * MIB + 77).unwrap();
    target.sync_all().unwrap();
    (base, target, size)
}

#[test]
fn every_mode_round_trips_and_compression_shrinks_text() {
    let dir = tempfile::tempdir().unwrap();
    let (base, target, size) = pair(dir.path());
    let base_hash = image_hash(&base, size, &Control::NONE).unwrap();
    let mut lens = Vec::new();
    for mode in MODES {
        let full = stream_as(Header::new(size, [1; 16], None), &base, None, mode);
        // In pieces, then in one (each record checked while the one before it is written).
        let received = |piece: usize| {
            let r = make(&dir.path().join("r"), size, &[]);
            let h = receive_as(&full, r.try_clone().unwrap(), piece, mode.key.as_ref());
            assert_eq!(h.unwrap(), base_hash, "{mode:?} in pieces of {piece}");
            assert_eq!(bytes(&r, size), bytes(&base, size), "{mode:?} {piece}");
            r
        };
        received(9999);
        let r = received(full.len());
        let inc_header = Header::new(
            size,
            [2; 16],
            Some(BaseRef {
                id: [1; 16],
                size,
                hash: base_hash,
            }),
        );
        let inc = stream_as(inc_header, &target, Some(&base), mode);
        receive_as(&inc, r.try_clone().unwrap(), 100_000, mode.key.as_ref()).unwrap();
        assert_eq!(bytes(&r, size), bytes(&target, size), "{mode:?}");
        lens.push(full.len());
    }
    // The 2 MiB of text compress to almost nothing; the noise stays as it is.
    assert!(lens[1] < lens[0] - 2 * MIB as usize + 100_000, "{lens:?}");
    assert!(lens[1] > MIB as usize, "{lens:?}");
}

#[test]
fn keyed_streams_refuse_other_keys_splices_and_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (base, target, size) = pair(dir.path());
    let key = MODES[2].key.unwrap();
    let fresh = || make(&dir.path().join("r"), size, &[]);
    let a = stream_as(Header::new(size, [1; 16], None), &base, None, MODES[2]);
    let b = stream_as(Header::new(size, [3; 16], None), &target, None, MODES[2]);
    let code = |s: &[u8], key: Option<&StreamKey>| {
        receive_as(s, fresh(), 1 << 20, key)
            .unwrap_err()
            .code_name()
    };
    assert_eq!(code(&a, Some(&[1; 32])), "ERR_STREAM_AUTH");
    assert_eq!(code(&a, None), "ERR_STREAM_AUTH");
    let plain = stream(Header::new(size, [1; 16], None), &base, None);
    assert_eq!(code(&plain, Some(&key)), "ERR_STREAM_AUTH");
    // Same key and layout, another state: b's records after a's header.
    let hl = Header::decode(&a[..MAX_HEADER_LEN], Some(&key))
        .unwrap()
        .0
        .wire_len();
    let mut spliced = a[..hl].to_vec();
    spliced.extend_from_slice(&b[hl..]);
    assert_eq!(code(&spliced, Some(&key)), "ERR_STREAM_AUTH");
    // A payload byte changed and its XXH3 "fixed" would not help: there is none to fix.
    let mut altered = a.clone();
    altered[hl + 40] ^= 1;
    assert_eq!(code(&altered, Some(&key)), "ERR_STREAM_AUTH");
    receive_as(&a, fresh(), 1 << 20, Some(&key)).unwrap();
}

/// Where each record of `stream` starts, and its head.
fn records(stream: &[u8], key: Option<&StreamKey>) -> Vec<(usize, RecordHead)> {
    let (header, _) = Header::decode(&stream[..MAX_HEADER_LEN], key).unwrap();
    let mut at = header.wire_len();
    let mut out = Vec::new();
    while at < stream.len() {
        let head = RecordHead::decode(&header, &stream[at..at + header.head_len()]).unwrap();
        out.push((at, head));
        at += header.head_len() + head.stored as usize + header.seal_len();
    }
    out
}

#[test]
fn a_record_checked_beside_a_write_never_reaches_the_file_when_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _, size) = pair(dir.path());
    for mode in [MODES[0], MODES[2]] {
        let full = stream_as(Header::new(size, [1; 16], None), &base, None, mode);
        let recs = records(&full, mode.key.as_ref());
        // The third DATA record: checked while the second is written.
        let (at, head) = recs
            .iter()
            .filter(|(_, h)| h.stored > 0)
            .nth(2)
            .copied()
            .unwrap();
        let mut altered = full.clone();
        altered[at + 40] ^= 1;
        let r = make(&dir.path().join("r"), size, &[]);
        let e = receive_as(
            &altered,
            r.try_clone().unwrap(),
            altered.len(),
            mode.key.as_ref(),
        );
        let want = if mode.key.is_some() {
            "ERR_STREAM_AUTH"
        } else {
            "ERR_STREAM_CORRUPT"
        };
        assert_eq!(e.unwrap_err().code_name(), want, "{mode:?}");
        let got = bytes(&r, size);
        let range = head.offset as usize..(head.offset + head.length) as usize;
        assert!(
            got[range].iter().all(|&b| b == 0),
            "{mode:?}: the refused record was written"
        );
        // The records before it were written (and the file is deleted by the caller).
        let (_, first) = recs[0];
        let first = first.offset as usize..(first.offset + first.length) as usize;
        assert_eq!(got[first.clone()], bytes(&base, size)[first], "{mode:?}");
    }
}

#[test]
fn version_1_streams_are_still_received() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
        )
        .unwrap()
    };
    let size = MIB + 100;
    let r = make(&dir.path().join("r"), size, &[]);
    receive(&fixture("v1-full.stream"), r.try_clone().unwrap(), 5000).unwrap();
    let sha = |f: &File| {
        let out = std::process::Command::new("sha256sum")
            .arg(dir.path().join("r"))
            .output()
            .unwrap();
        let _ = f;
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    };
    assert_eq!(
        sha(&r),
        "6bbd86b65f544354dde044f95fa32d2319d36d6f31af7fe13bf7c8d72da18713"
    );
    receive(
        &fixture("v1-incremental.stream"),
        r.try_clone().unwrap(),
        70_000,
    )
    .unwrap();
    assert_eq!(
        sha(&r),
        "b0a5e92c4fdd5e83c7cc0f4758653e27e890903da3a58811e311681c1baa0601"
    );
    // A v1 stream under a key is refused: v1 has no MAC.
    let e = receive_as(&fixture("v1-full.stream"), r, 5000, Some(&[1; 32])).unwrap_err();
    assert_eq!(e.code_name(), "ERR_STREAM_AUTH");
}

#[test]
fn a_resumed_stream_completes_a_cut_receive() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _target, size) = pair(dir.path());
    for mode in MODES {
        let full = stream_as(Header::new(size, [1; 16], None), &base, None, mode);
        let r = make(&dir.path().join("r"), size, &[]);
        let (header, seal) = Header::decode(&full[..MAX_HEADER_LEN], mode.key.as_ref()).unwrap();
        let mut rx = Receiver::new(header, seal, r.try_clone().unwrap(), 4096);
        let cut = full.len() - 100;
        rx.feed(&full[header.wire_len()..cut], &Control::NONE)
            .unwrap();
        let at = rx.position();
        assert!(at > 0 && at < size, "{at}");
        let mut h = Header::new(size, [1; 16], None);
        h.resume_from = Some(at);
        let rest = stream_as(h, &base, None, mode);
        // Only what lies above the verified records is sent again. Compressed
        // records carry far fewer bytes than the image range they cover, so the
        // bound by image offset holds only for plain streams.
        let bound = if mode.compress {
            full.len()
        } else {
            full.len() - at as usize / 2
        };
        assert!(
            rest.len() < bound,
            "{} of {} ({mode:?})",
            rest.len(),
            full.len()
        );
        receive_as(&rest, r.try_clone().unwrap(), 7000, mode.key.as_ref()).unwrap();
        assert_eq!(bytes(&r, size), bytes(&base, size), "{mode:?}");
    }
}

#[test]
fn a_full_stream_over_a_similar_image_ends_as_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (base, target, size) = pair(dir.path());
    // The target also zeroes a block inside data and drops the base's last data run.
    target.write_all_at(&[0u8; 4096], 8192).unwrap();
    target.set_len(5 * MIB).unwrap();
    target.set_len(size).unwrap();
    target.sync_all().unwrap();
    for mode in [MODES[0], MODES[3]] {
        let full = stream_as(Header::new(size, [9; 16], None), &target, None, mode);
        let r = make(&dir.path().join("r"), size, &[]);
        r.write_all_at(&bytes(&base, size), 0).unwrap();
        let (header, seal) = Header::decode(&full[..MAX_HEADER_LEN], mode.key.as_ref()).unwrap();
        let mut rx = Receiver::new(header, seal, r.try_clone().unwrap(), 4096).over_existing();
        rx.feed(&full[header.wire_len()..], &Control::NONE).unwrap();
        rx.finish(&Control::NONE).unwrap();
        assert_eq!(bytes(&r, size), bytes(&target, size), "{mode:?}");
    }
}

#[test]
fn a_receive_stages_into_a_file_of_its_own_beside_the_import_name() {
    let dir = tempfile::tempdir().unwrap();
    let import = dir.path().join("root-import.img");
    // Another caller's import file (importData hands this name out): never touched.
    std::fs::write(&import, b"theirs").unwrap();
    let base = make(&dir.path().join("root.img"), MIB, &[(0, 7, 4096)]);
    let entry = reflink_pool_core::Entry::of_path(&import).unwrap();
    let ctl = Control::default();

    let (file, mut kept, method) =
        reflink_pool_core::receive::stage(&entry, Some(&base), 2 * MIB, &ctl).unwrap();
    let name = kept.tmp.name.to_string_lossy().into_owned();
    assert!(name.starts_with("root-import.img~") && name.len() == "root-import.img~".len() + 16);
    assert!(method.is_some(), "the base was cloned or copied into it");
    assert_eq!(
        file.metadata().unwrap().len(),
        2 * MIB,
        "cut or extended to the target size"
    );
    assert_eq!(bytes(&file, 4096), vec![7u8; 4096], "it starts as the base");
    assert_eq!(std::fs::read(&import).unwrap(), b"theirs");
    let staged = dir.path().join(&name);
    kept.keep();
    drop(kept);
    assert!(staged.exists(), "kept: the commit's to rename");

    // Dropped before `keep` (a failed or aborted receive): unlinked.
    let (_file, kept, method) = reflink_pool_core::receive::stage(&entry, None, MIB, &ctl).unwrap();
    assert!(method.is_none(), "a full stream's file is sparse");
    let second = dir.path().join(&kept.tmp.name);
    assert_ne!(second, staged, "every receive gets a new name (O_EXCL)");
    assert!(second.exists());
    drop(kept);
    assert!(!second.exists());
    assert_eq!(std::fs::read(&import).unwrap(), b"theirs");
}

#[test]
fn a_sender_that_failed_never_goes_on_as_if_complete() {
    use std::sync::atomic::AtomicBool;
    let dir = tempfile::tempdir().unwrap();
    let (base, _, size) = pair(dir.path());
    let mut s = Sender::new(Header::new(size, [1; 16], None), base, None, None).unwrap();
    let aborted = AtomicBool::new(true);
    let ctl = Control {
        cancel: Some(&aborted),
        progress: None,
    };
    let mut out = Vec::new();
    let e = s.fill(&mut out, usize::MAX, &ctl).unwrap_err();
    assert_eq!(e.code_name(), "ABORT_ERR");
    let again = s.fill(&mut out, usize::MAX, &Control::NONE).unwrap_err();
    assert_eq!(again.code_name(), "ERR_INVALID_ARG_VALUE");
}
