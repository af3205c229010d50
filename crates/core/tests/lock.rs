//! flock(2) volume locks: contention between fds of one process, a waiter woken
//! by release, the unlink-on-release protocol, refused planted paths, and a
//! holder process that dies (the kernel releases its lock).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use reflink_pool_core::dir::{Dir, Entry};
use reflink_pool_core::lock::{self as core_lock, LockFile, ERR_UNSAFE_PATH};
use reflink_pool_core::Result;

/// The lock file `p` as the pool names it: its directory's handle plus its name.
fn at(p: &Path) -> Entry {
    let dir = Dir::open_root(p.parent().unwrap()).unwrap();
    dir.entry(Path::new(p.file_name().unwrap())).unwrap()
}

fn lock(p: &Path) -> Result<LockFile> {
    core_lock::lock(at(p))
}

fn try_lock(p: &Path) -> Result<Option<LockFile>> {
    core_lock::try_lock(at(p))
}

#[test]
fn two_fds_of_one_process_contend() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.lock");
    let held = lock(&p).unwrap();
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert!(
        try_lock(&p).unwrap().is_none(),
        "a second fd must not get the lock"
    );
    held.release().unwrap();
    assert!(!p.exists(), "release removes the lock file");
    let again = try_lock(&p).unwrap().expect("free after release");
    assert_eq!(again.path(), p);
    again.release().unwrap();
}

#[test]
fn waiter_is_woken_by_release_and_holds_the_file_at_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.lock");
    let first = lock(&p).unwrap();
    let (tx, rx) = mpsc::channel();
    let p2 = p.clone();
    let waiter = thread::spawn(move || {
        let l = lock(&p2).unwrap();
        tx.send(()).unwrap();
        l
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "waiter got a held lock"
    );
    // The waiter opened the inode that release unlinks: it must retry on a fresh file.
    first.release().unwrap();
    rx.recv_timeout(Duration::from_secs(5))
        .expect("waiter woken by release");
    let second = waiter.join().unwrap();
    assert!(p.exists(), "the new holder's lock file is at the path");
    assert!(try_lock(&p).unwrap().is_none(), "and it really holds it");
    second.release().unwrap();
}

#[test]
fn threads_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.lock");
    let counter = dir.path().join("count");
    fs::write(&counter, "0").unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (p, counter) = (p.clone(), counter.clone());
            thread::spawn(move || {
                for _ in 0..50 {
                    let l = lock(&p).unwrap();
                    // Read-modify-write with a pause: any overlap loses an increment.
                    let n: u32 = fs::read_to_string(&counter).unwrap().parse().unwrap();
                    thread::sleep(Duration::from_micros(200));
                    fs::write(&counter, (n + 1).to_string()).unwrap();
                    l.release().unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(fs::read_to_string(&counter).unwrap(), "200");
    assert!(!p.exists());
}

#[test]
fn planted_symlink_and_fifo_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    let link = dir.path().join("link.lock");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = lock(&link).unwrap_err();
    assert_eq!(err.code_name(), ERR_UNSAFE_PATH);
    assert_eq!(err.path.as_deref(), Some(link.as_path()));
    assert!(!victim.exists(), "the symlink was not followed");
    let fifo = dir.path().join("fifo.lock");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_eq!(try_lock(&fifo).unwrap_err().code_name(), ERR_UNSAFE_PATH);
}

const CHILD_ENV: &str = "REFLINK_POOL_LOCK_CHILD";

/// Not a test on its own: the body of the child process of `dead_holder_releases_its_lock`.
#[test]
#[ignore = "run as a child process by dead_holder_releases_its_lock"]
fn child_holds_lock() {
    let path = std::env::var(CHILD_ENV).expect("child only");
    let held = lock(Path::new(&path)).unwrap();
    // The harness prints "test child_holds_lock ... " first, on the same line.
    println!("LOCKED");
    thread::sleep(Duration::from_secs(60));
    drop(held);
}

#[test]
fn dead_holder_releases_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("v.lock");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_lock",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &p)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    assert!(
        out.lines()
            .map_while(|l| l.ok())
            .any(|l| l.trim_end().ends_with("LOCKED")),
        "child never took the lock"
    );
    assert!(try_lock(&p).unwrap().is_none(), "another process holds it");
    let ino = fs::metadata(&p).unwrap().ino();
    child.kill().unwrap();
    child.wait().unwrap();
    // The dead holder's file stays (that is how recovery finds it), but the kernel freed the lock.
    assert_eq!(fs::metadata(&p).unwrap().ino(), ino);
    let l = try_lock(&p)
        .unwrap()
        .expect("released by the kernel when the holder died");
    l.release().unwrap();
}
