//! update_loop_dev_sizes against real loop devices (needs root and losetup): attach one
//! device to the image's real path and one through a symlink, grow the image, and check
//! that an unrelated path updates nothing while the symlink updates both.

use std::fs;
use std::path::Path;
use std::process::Command;

use reflink_pool_core::loopdev::update_loop_dev_sizes;
use reflink_pool_core::resize::resize_file;
use reflink_pool_core::sparse::create_sparse_file;

const MIB: u64 = 1 << 20;

/// Detaches the loop devices this test attached, even when it fails.
struct Attached(Vec<String>);

impl Drop for Attached {
    fn drop(&mut self) {
        for dev in &self.0 {
            let _ = Command::new("losetup").args(["-d", dev]).status();
        }
    }
}

fn attach(path: &Path, devs: &mut Attached) -> String {
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "losetup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
    devs.0.push(dev.clone());
    dev
}

fn dev_size(dev: &str) -> u64 {
    let name = dev.trim_start_matches("/dev/");
    let sectors: u64 = fs::read_to_string(format!("/sys/block/{name}/size"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    sectors * 512
}

#[test]
#[ignore = "needs root and losetup: `npm test` runs it with --include-ignored as root"]
fn updates_loop_devices_backed_by_the_file() {
    // /proc/self is owned by the effective uid.
    let root = fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    assert!(root, "needs root to attach loop devices");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    let link = dir.path().join("link.img");
    let other = dir.path().join("other.img");
    create_sparse_file(&img, 111 * MIB).unwrap();
    create_sparse_file(&other, MIB).unwrap();
    std::os::unix::fs::symlink(&img, &link).unwrap();
    let mut devs = Attached(Vec::new());
    let a = attach(&img, &mut devs);
    let b = attach(&link, &mut devs);
    assert_eq!((dev_size(&a), dev_size(&b)), (111 * MIB, 111 * MIB));

    resize_file(&img, 222 * MIB).unwrap();
    assert_eq!(update_loop_dev_sizes(&other).unwrap(), Vec::<String>::new());
    assert_eq!((dev_size(&a), dev_size(&b)), (111 * MIB, 111 * MIB));

    let mut updated = update_loop_dev_sizes(&link).unwrap();
    updated.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(updated, expected);
    assert_eq!((dev_size(&a), dev_size(&b)), (222 * MIB, 222 * MIB));

    // As upstream's os.path.realpath: a missing path backs no device.
    let missing = update_loop_dev_sizes(&dir.path().join("missing")).unwrap();
    assert_eq!(missing, Vec::<String>::new());
}
