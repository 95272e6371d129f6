//! The U-Boot A/B backend against libubootenv's real fw_setenv/fw_printenv on a
//! file-backed environment made with mkenvimage, with file-backed slots.

use std::path::{Path, PathBuf};
use std::process::Command;

use backends::firmware::uboot::Uboot;
use backends::firmware::FirmwareError;

struct Rig {
    dir: tempfile::TempDir,
    uboot: Uboot,
}

fn tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn rig(slot_size: u64) -> Rig {
    for t in ["mkenvimage", "fw_setenv", "fw_printenv"] {
        assert!(
            tool(t),
            "{t} is needed (apt packages u-boot-tools, libubootenv-tool)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("env.txt"),
        "BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n",
    )
    .unwrap();
    let st = Command::new("mkenvimage")
        .args(["-s", "0x4000", "-o"])
        .arg(p("uboot.env"))
        .arg(p("env.txt"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        p("fw_env.config"),
        format!("{} 0x0000 0x4000\n", p("uboot.env").display()),
    )
    .unwrap();
    for slot in ["A.img", "B.img"] {
        std::fs::File::create(p(slot))
            .unwrap()
            .set_len(slot_size)
            .unwrap();
    }
    boot(&dir, "A");
    let uboot = Uboot {
        slots: vec![("A".into(), p("A.img")), ("B".into(), p("B.img"))],
        env_config: Some(p("fw_env.config")),
        fw_setenv: "fw_setenv".into(),
        fw_printenv: "fw_printenv".into(),
        cmdline: p("cmdline"),
        slot_param: "rauc.slot".into(),
        boot_order_var: "BOOT_ORDER".into(),
        attempts_var: "BOOT_{slot}_LEFT".into(),
        attempts: 3,
    };
    Rig { dir, uboot }
}

/// What the kernel command line says after a (simulated) boot.
fn boot(dir: &tempfile::TempDir, slot: &str) {
    std::fs::write(
        dir.path().join("cmdline"),
        format!("console=ttyS0 root=/dev/x rauc.slot={slot} quiet\n"),
    )
    .unwrap();
}

fn image(dir: &Path, len: usize) -> PathBuf {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let p = dir.join("image");
    std::fs::write(&p, data).unwrap();
    p
}

async fn env(r: &Rig, name: &str) -> Option<String> {
    r.uboot.get_env(name).await.unwrap()
}

#[tokio::test]
async fn install_switches_to_the_inactive_slot_and_commit_keeps_it() {
    let r = rig(1 << 20);
    let img = image(r.dir.path(), 300_000);
    assert_eq!(r.uboot.inactive().await.unwrap(), "B");
    r.uboot.check(&img).await.unwrap();
    r.uboot.install(&img).await.unwrap();
    let written = std::fs::read(r.dir.path().join("B.img")).unwrap();
    assert_eq!(&written[..300_000], &std::fs::read(&img).unwrap()[..]);
    assert!(std::fs::read(r.dir.path().join("A.img"))
        .unwrap()
        .iter()
        .all(|&b| b == 0));
    assert_eq!(env(&r, "BOOT_ORDER").await.as_deref(), Some("B A"));
    assert_eq!(env(&r, "BOOT_B_LEFT").await.as_deref(), Some("3"));
    // The reboot: U-Boot took B and counted one attempt.
    boot(&r.dir, "B");
    let st = Command::new("fw_setenv")
        .arg("-c")
        .arg(r.dir.path().join("fw_env.config"))
        .args(["BOOT_B_LEFT", "2"])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(r.uboot.booted_new(Some("B")).await.unwrap());
    r.uboot.commit().await.unwrap();
    assert_eq!(env(&r, "BOOT_ORDER").await.as_deref(), Some("B A"));
    assert_eq!(env(&r, "BOOT_B_LEFT").await.as_deref(), Some("3"));
    // The old system stays bootable as the fallback.
    assert_eq!(env(&r, "BOOT_A_LEFT").await.as_deref(), Some("3"));
}

#[tokio::test]
async fn rollback_marks_the_new_slot_bad_and_the_old_one_first() {
    let r = rig(1 << 20);
    let img = image(r.dir.path(), 5000);
    r.uboot.install(&img).await.unwrap();
    boot(&r.dir, "B");
    r.uboot.rollback().await.unwrap();
    assert_eq!(env(&r, "BOOT_ORDER").await.as_deref(), Some("A B"));
    assert_eq!(env(&r, "BOOT_B_LEFT").await.as_deref(), Some("0"));
    assert_eq!(env(&r, "BOOT_A_LEFT").await.as_deref(), Some("3"));
}

#[tokio::test]
async fn bootloader_fallback_is_seen() {
    let r = rig(1 << 20);
    r.uboot.install(&image(r.dir.path(), 5000)).await.unwrap();
    // U-Boot ran out of attempts on B and started A again.
    boot(&r.dir, "A");
    assert!(!r.uboot.booted_new(Some("B")).await.unwrap());
}

#[tokio::test]
async fn image_larger_than_the_slot_is_no_space() {
    let r = rig(64 * 1024);
    let img = image(r.dir.path(), 64 * 1024 + 1);
    assert!(matches!(
        r.uboot.check(&img).await,
        Err(FirmwareError::NoSpace(_))
    ));
    // Nothing was switched.
    assert_eq!(env(&r, "BOOT_ORDER").await.as_deref(), Some("A B"));
}

#[tokio::test]
async fn unknown_running_slot_is_an_error() {
    let r = rig(1 << 20);
    boot(&r.dir, "C");
    assert!(r.uboot.inactive().await.is_err());
    std::fs::write(r.dir.path().join("cmdline"), "console=ttyS0\n").unwrap();
    assert!(r.uboot.install(&image(r.dir.path(), 10)).await.is_err());
}
