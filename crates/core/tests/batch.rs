//! `batch::make`: many volumes in one group commit, all or nothing (on the test
//! machine's temp filesystem: FICLONE where it can, else the sparse copy).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use reflink_pool_core::batch::{make, Fill, Item, MakeSpec, NewImage};
use reflink_pool_core::group_commit::Barrier;
use reflink_pool_core::{Control, Dir, ReflinkMode};

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(dir.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                stack.push(r);
            } else {
                out.push(r.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn pool(root: &Path) {
    for d in ["meta/records", "meta/locks", "meta/sessions", "tpl"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let mut data = vec![0u8; 256 << 10];
    data[..4096].fill(7);
    data[128 << 10..(128 << 10) + 4096].fill(9);
    fs::write(root.join("tpl/root.img"), data).unwrap();
}

/// The pool's directory handle, as the pool opens it.
fn root(path: &Path) -> Dir {
    Dir::open_root(path).unwrap()
}

fn spec(n: usize, barrier: Barrier) -> MakeSpec {
    MakeSpec {
        records: "meta/records".into(),
        locks: "meta/locks".into(),
        sources: vec!["tpl/root.img".into()],
        items: (0..n)
            .map(|i| Item {
                dir: format!("appvms/vm-{i}").into(),
                images: vec![
                    NewImage {
                        name: "root.img".into(),
                        fill: Fill::Copy(0),
                        copy_mtime: false,
                    },
                    NewImage {
                        name: "root-dirty.img".into(),
                        fill: Fill::Sparse(1 << 20),
                        copy_mtime: false,
                    },
                ],
                record: (
                    format!("vm-{i}.json").into(),
                    format!("{{\"n\":{i}}}\n").into_bytes(),
                ),
                lock: format!("vm-{i}.lock").into(),
            })
            .collect(),
        intent: ("meta/sessions/b.batch".into(), b"owner\n".to_vec()),
        barrier,
        reflink: ReflinkMode::Auto,
    }
}

#[test]
fn make_places_every_image_and_record_and_leaves_no_temp_lock_or_intent() {
    for barrier in [Barrier::Syncfs, Barrier::Fsync] {
        let dir = tempfile::tempdir().unwrap();
        pool(dir.path());
        let report = make(&root(dir.path()), &spec(20, barrier), &Control::NONE).unwrap();
        let made: u64 = report.methods.iter().map(|(_, n)| n).sum();
        assert_eq!(made, 40, "{:?}", report.methods);
        let files = tree(dir.path());
        assert_eq!(files.len(), 1 + 20 * 3, "{files:?}");
        assert!(files
            .iter()
            .all(|f| !f.contains('~') && !f.ends_with(".batch") && !f.ends_with(".lock")));
        let tpl = fs::read(dir.path().join("tpl/root.img")).unwrap();
        assert_eq!(
            fs::read(dir.path().join("appvms/vm-7/root.img")).unwrap(),
            tpl
        );
        assert_eq!(
            fs::metadata(dir.path().join("appvms/vm-7/root-dirty.img"))
                .unwrap()
                .len(),
            1 << 20
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("meta/records/vm-7.json")).unwrap(),
            "{\"n\":7}\n"
        );
    }
}

#[test]
fn an_existing_image_or_an_abort_makes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    pool(dir.path());
    fs::create_dir_all(dir.path().join("appvms/vm-3")).unwrap();
    fs::write(dir.path().join("appvms/vm-3/root.img"), "not ours").unwrap();
    let before = tree(dir.path());
    let err = make(&root(dir.path()), &spec(5, Barrier::Syncfs), &Control::NONE).unwrap_err();
    assert_eq!(err.code_name(), "EEXIST");
    assert_eq!(tree(dir.path()), before);

    fs::remove_dir_all(dir.path().join("appvms")).unwrap();
    let before = tree(dir.path());
    let cancel = AtomicBool::new(true);
    let ctl = Control {
        cancel: Some(&cancel),
        progress: None,
    };
    assert!(make(&root(dir.path()), &spec(5, Barrier::Syncfs), &ctl)
        .unwrap_err()
        .is_aborted());
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn a_symlinked_vm_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    pool(dir.path());
    fs::create_dir_all(dir.path().join("appvms")).unwrap();
    std::os::unix::fs::symlink("/tmp", dir.path().join("appvms/vm-1")).unwrap();
    let err = make(&root(dir.path()), &spec(3, Barrier::Syncfs), &Control::NONE).unwrap_err();
    assert_eq!(err.code_name(), "ERR_UNSAFE_PATH");
    assert!(!tree(dir.path())
        .iter()
        .any(|f| f.contains('~') || f.ends_with(".json")));
}
