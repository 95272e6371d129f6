//! A private `dbus-daemon` standing in for the system bus in the backends' tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Runs in the foreground (not --fork) so that it is our child: killed and reaped on
/// drop instead of lingering as an orphan.
pub struct DbusDaemon {
    pub address: String,
    child: Child,
}

impl DbusDaemon {
    /// Starts one listening on a socket in `dir` (its configuration and log go there too).
    pub fn start(dir: &Path) -> DbusDaemon {
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                dir.join("bus.sock").display()
            ),
        )
        .expect("write bus.conf");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // It warns when it may not raise its fd limit; keep that out of the test output.
            .stderr(std::fs::File::create(dir.join("dbus-daemon.log")).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run dbus-daemon ({e}); install the Debian package dbus-daemon")
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the bus address");
        let address = line.trim().to_owned();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed no address (got {line:?})"
        );
        DbusDaemon { address, child }
    }
}

impl Drop for DbusDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
