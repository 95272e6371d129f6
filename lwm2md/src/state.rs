//! The state directory (`/var/lib/lwm2md`): small files replaced atomically, so that a
//! `kill -9` or a power cut at any instant leaves either the old or the new content,
//! never a torn file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of a state file. Names are chosen by the daemon, never by a peer.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The content of a state file, `None` when it does not exist.
    pub fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(name)) {
            Ok(data) => Ok(Some(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces a state file: temporary file, fsync, rename over the old one, fsync the
    /// directory so that the rename itself survives a power cut. Mode 0600: state files
    /// may hold credentials.
    pub fn write(&self, name: &str, data: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        let target = self.path(name);
        let tmp = self.path(&format!(".{name}.tmp"));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &target)?;
        File::open(&self.root)?.sync_all()
    }

    /// Renames a state file that could not be used to `NAME.corrupt` (replacing an older
    /// one), so that it is kept for inspection but no longer read.
    pub fn move_aside(&self, name: &str) -> io::Result<PathBuf> {
        let aside = self.path(&format!("{name}.corrupt"));
        fs::rename(self.path(name), &aside)?;
        File::open(&self.root)?.sync_all()?;
        Ok(aside)
    }

    pub fn remove(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path(name)) {
            Ok(()) => File::open(&self.root)?.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> StateDir {
        let dir = std::env::temp_dir().join(format!("lwm2md-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        StateDir::new(dir)
    }

    #[test]
    fn write_replaces_and_read_returns_the_latest() {
        let s = scratch("replace");
        assert_eq!(s.read("a").unwrap(), None);
        s.write("a", b"one").unwrap();
        s.write("a", b"two").unwrap();
        assert_eq!(s.read("a").unwrap().as_deref(), Some(&b"two"[..]));
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(s.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a")]);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(s.path("a")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let aside = s.move_aside("a").unwrap();
        assert_eq!(fs::read(&aside).unwrap(), b"two");
        s.write("a", b"three").unwrap();
        s.remove("a").unwrap();
        s.remove("a").unwrap();
        assert_eq!(s.read("a").unwrap(), None);
        fs::remove_dir_all(s.root()).unwrap();
    }

    #[test]
    fn a_leftover_temporary_file_does_not_hide_the_old_content() {
        // What a crash between create and rename leaves: the old file stays authoritative.
        let s = scratch("torn");
        s.write("a", b"old").unwrap();
        fs::write(s.path(".a.tmp"), b"ne").unwrap();
        assert_eq!(s.read("a").unwrap().as_deref(), Some(&b"old"[..]));
        s.write("a", b"new").unwrap();
        assert_eq!(s.read("a").unwrap().as_deref(), Some(&b"new"[..]));
        fs::remove_dir_all(s.root()).unwrap();
    }
}
