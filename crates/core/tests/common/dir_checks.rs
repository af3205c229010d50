//! What `dir` guarantees, checked through the public API: no symlink followed below the
//! root, no `..`, StrictModes on the root and sub-directories, 0700 directories whatever
//! the umask, regular files only (a FIFO refused without blocking), one link for a
//! writable image.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use reflink_pool_core::dir::{Dir, Kind};
use reflink_pool_core::error::codes;

fn code<T: std::fmt::Debug>(r: reflink_pool_core::Result<T>) -> String {
    r.unwrap_err().code_name()
}

pub fn all() {
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("pool");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    let root = Dir::open_root(&d).unwrap();

    // Directories the pool makes are 0700 under umask 0.
    let vm = root.create_dir_all(Path::new("appvms/vm")).unwrap();
    for p in ["appvms", "appvms/vm"] {
        let mode = fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{p}");
    }
    assert_eq!(vm.path(), d.join("appvms/vm"));
    fs::write(d.join("appvms/vm/a.img"), b"a").unwrap();

    // No `..`, no absolute path, no `.`.
    for rel in [
        "../outside/secret",
        "/etc/passwd",
        "appvms/./vm/a.img",
        "appvms/../x",
    ] {
        assert_eq!(
            code(root.entry(Path::new(rel))),
            codes::ERR_UNSAFE_PATH,
            "{rel}"
        );
    }

    // A symlink on the way, or as the directory itself, is refused.
    symlink(&outside, d.join("appvms/evil")).unwrap();
    assert_eq!(
        code(root.entry(Path::new("appvms/evil/secret"))),
        codes::ERR_UNSAFE_PATH
    );
    assert_eq!(
        code(root.open_dir(Path::new("appvms/evil"))),
        codes::ERR_UNSAFE_PATH
    );
    assert_eq!(
        code(root.create_dir_all(Path::new("appvms/evil/sub"))),
        codes::ERR_UNSAFE_PATH
    );
    assert!(!outside.join("sub").exists());
    // ... and a file where a directory must be.
    assert_eq!(
        code(root.entry(Path::new("appvms/vm/a.img/x"))),
        codes::ERR_UNSAFE_PATH
    );

    // A symlinked file is seen (lstat) but never opened.
    symlink(outside.join("secret"), d.join("appvms/vm/link.img")).unwrap();
    let link = root.entry(Path::new("appvms/vm/link.img")).unwrap();
    assert_eq!(Kind::of(&link.stat().unwrap().unwrap()), Kind::Symlink);
    assert_eq!(code(link.open_read()), codes::ERR_UNSAFE_PATH);
    assert_eq!(code(link.open_writable_image()), codes::ERR_UNSAFE_PATH);

    // A FIFO is refused at once (opening it for reading would block without O_NONBLOCK).
    nix::unistd::mkfifo(
        &d.join("appvms/vm/fifo.img"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let t0 = Instant::now();
    let fifo = root.entry(Path::new("appvms/vm/fifo.img")).unwrap();
    assert_eq!(code(fifo.open_read()), codes::ERR_UNSAFE_PATH);
    assert!(t0.elapsed() < Duration::from_secs(2));

    // A writable image must have one link.
    let img = root.entry(Path::new("appvms/vm/a.img")).unwrap();
    img.open_writable_image().unwrap();
    fs::hard_link(d.join("appvms/vm/a.img"), outside.join("alias")).unwrap();
    assert_eq!(code(img.open_writable_image()), codes::ERR_UNSAFE_PATH);
    img.open_read().unwrap();

    // Listing: kinds without following, sorted by name.
    let names: Vec<(String, Kind)> = vm
        .list()
        .unwrap()
        .into_iter()
        .map(|(n, k)| (n.to_string_lossy().into_owned(), k))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a.img".to_string(), Kind::File),
            ("fifo.img".to_string(), Kind::Other),
            ("link.img".to_string(), Kind::Symlink),
        ]
    );

    // StrictModes: a group- or other-writable sub-directory or root is refused.
    // (The directory acted in is checked: every pool directory is the parent of
    // something the pool acts on; opening a pool ensures its top-level ones.)
    fs::set_permissions(d.join("appvms/vm"), fs::Permissions::from_mode(0o770)).unwrap();
    let e = root.entry(Path::new("appvms/vm/a.img")).unwrap_err();
    assert_eq!(e.code_name(), "ERR_UNSAFE_PERMISSIONS", "{e}");
    fs::set_permissions(d.join("appvms/vm"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(d.join("appvms"), fs::Permissions::from_mode(0o770)).unwrap();
    let e = root.create_dir_all(Path::new("appvms")).unwrap_err();
    assert!(e.to_string().contains("chmod go-w"), "{e}");
    fs::set_permissions(d.join("appvms"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o707)).unwrap();
    assert_eq!(code(Dir::open_root(&d)), "ERR_UNSAFE_PERMISSIONS");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    Dir::open_root(&d).unwrap();

    // Nothing was created outside.
    let mut outside_names: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    outside_names.sort();
    assert_eq!(outside_names, vec!["alias", "secret"]);
}
