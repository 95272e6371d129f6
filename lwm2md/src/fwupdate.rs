//! The firmware update runner: the daemon's side of object 5. It stages pushed packages
//! in a file, hands them to the configured backend, and carries an update across the
//! reboot: the progress is kept in the state directory (replaced atomically at each
//! step), so a `kill -9` or a power cut at any instant resumes or fails cleanly.
//!
//! After the reboot into the new system, it is marked good only once a server has
//! registered us again within the commit window; otherwise it is rolled back.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::time::{Duration, Instant};

use backends::firmware::{Backend, FirmwareError, Interrupted};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::{FirmwareBackend, FirmwareConfig, RebootMethod};
use crate::feed::{Feed, FeedSender};
use crate::fwpull::{PullConfig, PullError};
use crate::objects::firmware::{self as fw, FirmwareAction, PackageSink, State, UpdateResult};
use crate::path::Path;
use crate::state::StateDir;
use crate::value::{ResourceValue, Value};

/// The state file holding the update's progress.
const PROGRESS: &str = "firmware.json";
/// The state file holding the resources of object 5 that outlive an update: Severity,
/// Maximum Defer Period, and the last update's result.
const KEPT: &str = "firmware-resources.json";
/// The staged package's file name in the staging directory.
const PACKAGE: &str = "package";

/// Writes a pushed package into the staging file as it arrives.
pub struct StagingSink {
    path: PathBuf,
    file: Option<File>,
}

impl StagingSink {
    pub fn new(staging_dir: &FsPath) -> StagingSink {
        StagingSink {
            path: staging_dir.join(PACKAGE),
            file: None,
        }
    }
}

impl StagingSink {
    fn staging_error(&self, e: io::Error) -> io::Error {
        match self.path.parent() {
            Some(dir) => staging_error(dir, e),
            None => e,
        }
    }
}

/// A full staging area on a RAM-backed filesystem (tmpfs, ramfs) is the device running
/// out of memory (Update Result 3), where a full disk is out of flash (2): `e` says so
/// by its kind.
pub fn staging_error(dir: &FsPath, e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::StorageFull && ram_backed(dir) {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("{e} (the staging area {} is in RAM)", dir.display()),
        )
    } else {
        e
    }
}

/// Whether the filesystem holding `dir` lives in RAM.
fn ram_backed(dir: &FsPath) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `path` is NUL-terminated and `fs` is a statfs buffer the call fills.
    if unsafe { libc::statfs(path.as_ptr(), fs.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: statfs succeeded, so the buffer is initialised (it was zeroed anyway).
    let fs = unsafe { fs.assume_init() };
    fs.f_type == libc::TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC
}

/// linux/magic.h; the libc crate lacks it.
const RAMFS_MAGIC: libc::__fsword_t = 0x8584_58f6;

impl PackageSink for StagingSink {
    fn begin(&mut self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| self.staging_error(e))?;
        self.file = Some(file);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        match &self.file {
            Some(f) => f
                .write_all_at(data, offset)
                .map_err(|e| self.staging_error(e)),
            None => Err(io::Error::other("no package being staged")),
        }
    }

    fn finish(&mut self, len: u64) -> io::Result<()> {
        let f = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("no package being staged"))?;
        f.set_len(len)
            .and_then(|()| f.sync_all())
            .map_err(|e| self.staging_error(e))
    }

    fn discard(&mut self) {
        self.file = None;
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", self.path.display());
            }
        }
    }
}

/// The update's progress as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Progress {
    /// A download from `uri` into the staging file is under way.
    Downloading { uri: String },
    /// A checked package of `len` bytes is staged.
    Downloaded {
        len: u64,
        name: Option<String>,
        version: Option<String>,
    },
    /// The backend is installing it.
    Installing { len: u64, target: Option<String> },
    /// Installed; the next start is in the new system (into slot `target`), waiting for
    /// registration to commit.
    Installed { len: u64, target: Option<String> },
    /// Rolling the new system back (marking it bad) is under way.
    RollingBack { len: u64 },
    /// The new system was rolled back; the next start reports the failure.
    RolledBack { len: u64 },
}

/// Severity (/5/0/11) and Maximum Defer Period (/5/0/13) as the server last set them,
/// and the Update Result (/5/0/5) of the last update until a new package comes: a
/// restart right after a commit still tells the server it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
    severity: i64,
    max_defer: u64,
    #[serde(default)]
    result: Option<i64>,
}

impl Default for Kept {
    fn default() -> Kept {
        // The registry's defaults: Mandatory, no deferring.
        Kept {
            severity: 1,
            max_defer: 0,
            result: None,
        }
    }
}

/// What the daemon tells the runner.
#[derive(Debug)]
pub enum Command {
    Action(FirmwareAction),
    /// A server accepted our registration.
    Registered,
}

pub struct Runner {
    backend: Backend,
    package: PathBuf,
    state: StateDir,
    feed: FeedSender,
    commit_window: Duration,
    reboot: RebootMethod,
    pull: PullConfig,
    /// Packages must carry a signature made for this key.
    signature_key: Option<openssl::pkey::PKey<openssl::pkey::Public>>,
}

/// How the runner works, from the configuration.
pub struct Options {
    pub staging_dir: PathBuf,
    /// How long the new system has to register before it is rolled back.
    pub commit_window: Duration,
    pub reboot: RebootMethod,
    pub pull: PullConfig,
    /// Packages must carry a signature made for this key.
    pub signature_key: Option<openssl::pkey::PKey<openssl::pkey::Public>>,
}

/// Work a restart found half done.
enum Resume {
    Fetch { uri: String },
    Install { len: u64 },
}

/// A download task's outcome.
type Fetch = tokio::task::JoinHandle<Result<u64, PullError>>;

/// The backend a configuration asks for.
pub fn backend(config: &FirmwareConfig) -> Result<Backend, String> {
    let timeout = Duration::from_secs(config.command_timeout.into());
    Ok(match config.backend {
        FirmwareBackend::Script => Backend::Script(backends::firmware::script::Script {
            check: config.check.clone(),
            install: config
                .install
                .clone()
                .ok_or("firmware.install is missing")?,
            commit: config.commit.clone(),
            rollback: config.rollback.clone(),
            version: config.version.clone(),
            timeout,
        }),
        FirmwareBackend::Uboot => Backend::Uboot(backends::firmware::uboot::Uboot {
            slots: config
                .slots
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            env_config: config.fw_env_config.clone(),
            fw_setenv: config.fw_setenv.clone(),
            fw_printenv: config.fw_printenv.clone(),
            cmdline: config.cmdline.clone(),
            slot_param: "rauc.slot".into(),
            boot_order_var: config.boot_order_var.clone(),
            attempts_var: config.boot_attempts_var.clone(),
            attempts: config.boot_attempts,
        }),
        FirmwareBackend::Rauc => Backend::Rauc(backends::firmware::rauc::Rauc {
            address: backends::system::SystemBus::from_env()
                .address()
                .to_string(),
            timeout,
        }),
    })
}

impl Runner {
    pub fn new(backend: Backend, state: StateDir, feed: FeedSender, options: Options) -> Runner {
        Runner {
            backend,
            package: options.staging_dir.join(PACKAGE),
            state,
            feed,
            commit_window: options.commit_window,
            reboot: options.reboot,
            pull: options.pull,
            signature_key: options.signature_key,
        }
    }

    /// Picks up the state the last run left, then starts the runner's task; commands go
    /// through the returned sender. The recovery is done before the daemon serves
    /// requests, so that a new push cannot race with the cleanup of an old one. Its
    /// reports wait in the feed (a handful, well below its capacity).
    pub async fn start(self) -> mpsc::Sender<Command> {
        let (commit_by, resume) = self.recover().await;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(self.run(rx, commit_by, resume));
        tx
    }

    async fn run(
        self,
        mut rx: mpsc::Receiver<Command>,
        mut commit_by: Option<Instant>,
        resume: Option<Resume>,
    ) {
        if let Some(v) = self.backend.version().await {
            self.report(Path::resource(3, 0, 3), Value::String(v)).await;
        }
        let mut fetch: Option<Fetch> = None;
        match resume {
            Some(Resume::Fetch { uri }) => fetch = Some(self.start_fetch(uri)),
            Some(Resume::Install { len }) => self.interrupted_install(len).await,
            None => {}
        }
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(Command::Action(FirmwareAction::Fetch { uri })) => {
                        self.keep(|k| k.result = None);
                        if let Some(old) = fetch.take() {
                            old.abort();
                        }
                        self.remove_package();
                        self.save(&Progress::Downloading { uri: uri.clone() });
                        fetch = Some(self.start_fetch(uri));
                    }
                    Some(Command::Action(a)) => {
                        if a == FirmwareAction::Discard {
                            if let Some(old) = fetch.take() {
                                old.abort();
                            }
                        }
                        self.act(a).await
                    }
                    Some(Command::Registered) => {
                        if commit_by.take().is_some() {
                            self.commit().await;
                        }
                    }
                },
                done = async {
                    match fetch.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                }, if fetch.is_some() => {
                    fetch = None;
                    self.fetched(done).await;
                }
                _ = sleep_until(commit_by) => {
                    commit_by = None;
                    tracing::warn!("the new system did not register within the commit window");
                    self.roll_back().await;
                }
            }
        }
    }

    fn load(&self) -> Option<Progress> {
        match self.state.read(PROGRESS) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!("{}: {e}; firmware update state dropped", PROGRESS);
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::error!("reading {PROGRESS}: {e}");
                None
            }
        }
    }

    fn save(&self, p: &Progress) {
        let result = serde_json::to_vec(p)
            .map_err(io::Error::other)
            .and_then(|bytes| self.state.write(PROGRESS, &bytes));
        if let Err(e) = result {
            tracing::error!("saving the firmware update state: {e}");
        }
    }

    fn load_kept(&self) -> Option<Kept> {
        match self.state.read(KEPT) {
            Ok(Some(bytes)) => match serde_json::from_slice::<Kept>(&bytes) {
                Ok(k) if (0..=2).contains(&k.severity) => Some(k),
                Ok(k) => {
                    tracing::error!("{KEPT}: severity {} is not 0, 1 or 2", k.severity);
                    None
                }
                Err(e) => {
                    tracing::error!("{KEPT}: {e}; defaults kept");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::error!("reading {KEPT}: {e}");
                None
            }
        }
    }

    /// Changes the kept resources; written (atomically) only when they change.
    fn keep(&self, change: impl FnOnce(&mut Kept)) {
        let old = self.load_kept();
        let mut kept = old.unwrap_or_default();
        change(&mut kept);
        if old == Some(kept) || (old.is_none() && kept == Kept::default()) {
            return;
        }
        let result = serde_json::to_vec(&kept)
            .map_err(io::Error::other)
            .and_then(|bytes| self.state.write(KEPT, &bytes));
        if let Err(e) = result {
            tracing::error!("saving {KEPT}: {e}");
        }
    }

    fn keep_result(&self, result: UpdateResult) {
        self.keep(|k| k.result = Some(result as i64));
    }

    /// Puts back what the server set, and the last result when no update is under way.
    async fn restore_kept(&self) {
        let Some(kept) = self.load_kept() else {
            return;
        };
        self.report(
            Path::resource(5, 0, fw::SEVERITY),
            Value::Integer(kept.severity),
        )
        .await;
        self.report(
            Path::resource(5, 0, fw::MAXIMUM_DEFER_PERIOD),
            Value::Unsigned(kept.max_defer),
        )
        .await;
        let idle = matches!(self.load(), None | Some(Progress::Downloaded { .. }));
        if let (true, Some(r)) = (idle, kept.result.and_then(UpdateResult::from_code)) {
            self.report(
                Path::resource(5, 0, fw::UPDATE_RESULT),
                Value::Integer(r as i64),
            )
            .await;
        }
    }

    fn forget(&self) {
        if let Err(e) = self.state.remove(PROGRESS) {
            tracing::error!("removing {PROGRESS}: {e}");
        }
    }

    fn remove_package(&self) {
        if let Err(e) = fs::remove_file(&self.package) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", self.package.display());
            }
        }
    }

    fn staged(&self, len: u64) -> bool {
        fs::metadata(&self.package).is_ok_and(|m| m.len() == len)
    }

    async fn report(&self, path: Path, value: Value) {
        if self
            .feed
            .send(Feed::Value(path, ResourceValue::Single(value)))
            .await
            .is_err()
        {
            tracing::debug!("feed closed");
        }
    }

    async fn set(&self, state: State, result: Option<UpdateResult>) {
        if let Some(r) = result {
            self.keep_result(r);
            self.report(
                Path::resource(5, 0, fw::UPDATE_RESULT),
                Value::Integer(r as i64),
            )
            .await;
        }
        self.report(
            Path::resource(5, 0, fw::STATE),
            Value::Integer(state as i64),
        )
        .await;
    }

    async fn set_info(&self, name: Option<String>, version: Option<String>) {
        self.report(
            Path::resource(5, 0, fw::PKG_NAME),
            Value::String(name.unwrap_or_default()),
        )
        .await;
        self.report(
            Path::resource(5, 0, fw::PKG_VERSION),
            Value::String(version.unwrap_or_default()),
        )
        .await;
    }

    /// Picks up where the last run stopped. Returns the commit deadline when the new
    /// system waits for registration.
    async fn recover(&self) -> (Option<Instant>, Option<Resume>) {
        self.restore_kept().await;
        if let Some(Progress::Downloading { uri }) = self.load() {
            tracing::info!(%uri, "resuming the package download");
            self.report(
                Path::resource(5, 0, fw::PACKAGE_URI),
                Value::String(uri.clone()),
            )
            .await;
            self.set(State::Downloading, None).await;
            return (None, Some(Resume::Fetch { uri }));
        }
        let commit_by = match self.load() {
            Some(Progress::Downloading { .. }) => None,
            None => {
                // A push that a restart interrupted cannot be resumed.
                self.remove_package();
                None
            }
            Some(Progress::Downloaded { len, name, version }) => {
                if self.staged(len) {
                    self.set_info(name, version).await;
                    self.set(State::Downloaded, None).await;
                } else {
                    tracing::warn!("the staged package is gone; back to Idle");
                    self.forget();
                    self.remove_package();
                }
                None
            }
            Some(Progress::Installing { len, .. }) => {
                // Its outcome is found by the run task: the installer may still be at it.
                self.set(State::Updating, None).await;
                return (None, Some(Resume::Install { len }));
            }
            Some(Progress::Installed { len, target }) => {
                match self.backend.booted_new(target.as_deref()).await {
                    Ok(true) => {
                        tracing::info!(
                            "running the new system; committing once registered (within {} s)",
                            self.commit_window.as_secs()
                        );
                        self.set(State::Updating, None).await;
                        Some(Instant::now() + self.commit_window)
                    }
                    Ok(false) => {
                        // The new slot is out of attempts already, or the reboot into
                        // it never came: the old one runs and is the good one; it is
                        // marked so and made first again, never marked bad.
                        tracing::warn!("the old system runs, not the installed one");
                        self.keep_booted().await;
                        self.installation_failed(len, UpdateResult::UpdateFailed)
                            .await;
                        None
                    }
                    Err(e) => {
                        tracing::error!("which system runs: {e}");
                        self.set(State::Updating, None).await;
                        Some(Instant::now() + self.commit_window)
                    }
                }
            }
            Some(Progress::RollingBack { len }) => {
                // Interrupted before the reboot: still in the new system.
                self.finish_rollback(len).await;
                None
            }
            Some(Progress::RolledBack { len }) => {
                self.installation_failed(len, UpdateResult::UpdateFailed)
                    .await;
                None
            }
        };
        (commit_by, None)
    }

    fn start_fetch(&self, uri: String) -> Fetch {
        let dest = self.package.clone();
        let config = self.pull.clone();
        tokio::spawn(async move { crate::fwpull::fetch(&uri, &dest, &config).await })
    }

    async fn fetched(&self, done: Result<Result<u64, PullError>, tokio::task::JoinError>) {
        match done {
            Ok(Ok(len)) => {
                tracing::info!("package of {len} bytes downloaded");
                self.check(len).await;
            }
            Ok(Err(e)) => {
                tracing::warn!("package download failed: {e}");
                self.keep_result(e.result());
                self.forget();
                self.remove_package();
                self.set(State::Idle, Some(e.result())).await;
            }
            // Aborted by a reset or Cancel, which did the cleaning.
            Err(_) => {}
        }
    }

    /// A failed update: back to Downloaded with `result` while the package is still
    /// staged, else Idle.
    async fn installation_failed(&self, len: u64, result: UpdateResult) {
        self.keep_result(result);
        if self.staged(len) {
            self.save(&Progress::Downloaded {
                len,
                name: None,
                version: None,
            });
            self.set(State::Downloaded, Some(result)).await;
        } else {
            self.forget();
            self.set(State::Idle, Some(result)).await;
        }
    }

    async fn act(&self, action: FirmwareAction) {
        if !matches!(action, FirmwareAction::Policy { .. }) {
            // A new package, an Update or a reset: the object's result moved on.
            self.keep(|k| k.result = None);
        }
        match action {
            FirmwareAction::Check { len } => self.check(len).await,
            FirmwareAction::Install => self.install().await,
            // The object's sink removed the staged file already, synchronously: removing
            // it here again could hit a new package pushed in the meantime.
            FirmwareAction::Discard => self.forget(),
            // Started by the run loop, which owns the download task.
            FirmwareAction::Fetch { .. } => {}
            FirmwareAction::Policy {
                severity,
                max_defer,
            } => self.keep(|k| {
                k.severity = severity;
                k.max_defer = max_defer;
            }),
        }
    }

    async fn check(&self, len: u64) {
        if !self.staged(len) {
            tracing::error!("the staged package is not {len} bytes long");
            self.remove_package();
            self.set(State::Idle, Some(UpdateResult::IntegrityCheckFailure))
                .await;
            return;
        }
        let len = match &self.signature_key {
            None => len,
            Some(key) => {
                let (path, key) = (self.package.clone(), key.clone());
                let verified = tokio::task::spawn_blocking(move || {
                    crate::fwsig::verify_and_strip(&path, &key).map_err(|e| e.to_string())
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                match verified {
                    Ok(image_len) => image_len,
                    Err(e) => {
                        tracing::warn!("firmware package refused: {e}");
                        self.remove_package();
                        self.set(State::Idle, Some(UpdateResult::IntegrityCheckFailure))
                            .await;
                        return;
                    }
                }
            }
        };
        match self.backend.check(&self.package).await {
            Ok(info) => {
                tracing::info!(
                    name = info.name.as_deref().unwrap_or(""),
                    version = info.version.as_deref().unwrap_or(""),
                    "firmware package of {len} bytes downloaded"
                );
                self.save(&Progress::Downloaded {
                    len,
                    name: info.name.clone(),
                    version: info.version.clone(),
                });
                self.set_info(info.name, info.version).await;
                self.set(State::Downloaded, None).await;
            }
            Err(e) => {
                tracing::warn!("firmware package refused: {e}");
                self.remove_package();
                self.set(State::Idle, Some(result_of(&e))).await;
            }
        }
    }

    async fn install(&self) {
        let len = match self.load() {
            Some(Progress::Downloaded { len, .. }) if self.staged(len) => len,
            _ => {
                tracing::error!("Update without a staged package");
                self.forget();
                self.set(State::Idle, Some(UpdateResult::UpdateFailed))
                    .await;
                return;
            }
        };
        self.save(&Progress::Installing { len, target: None });
        let result = self.backend.install(&self.package, &installing).await;
        self.installed(len, result).await;
    }

    /// The end of an installation, in this run or found after a restart.
    async fn installed(&self, len: u64, result: Result<Option<String>, FirmwareError>) {
        match result {
            Ok(target) => {
                self.save(&Progress::Installed { len, target });
                tracing::info!("firmware installed; rebooting into the new system");
                self.reboot().await;
            }
            Err(e) => {
                tracing::warn!("firmware installation failed: {e}");
                match e {
                    // A package found bad while installing is dropped (Core TS: Idle).
                    FirmwareError::Integrity(_) | FirmwareError::Unsupported(_) => {
                        self.keep_result(result_of(&e));
                        self.forget();
                        self.remove_package();
                        self.set(State::Idle, Some(result_of(&e))).await;
                    }
                    FirmwareError::Deferred => self.installation_failed(len, result_of(&e)).await,
                    _ => {
                        self.keep_booted().await;
                        self.installation_failed(len, result_of(&e)).await
                    }
                }
            }
        }
    }

    /// An installation the daemon was stopped in: followed to its end if the installer
    /// still runs or finished it, else failed; never started a second time.
    async fn interrupted_install(&self, len: u64) {
        match self.backend.interrupted(&installing).await {
            Ok(Interrupted::Completed(target)) => {
                tracing::info!("the interrupted installation ran to its end");
                self.installed(len, Ok(target)).await;
            }
            Ok(Interrupted::Cut) => {
                tracing::warn!("an installation was interrupted");
                // The boot variables may already point at the half-written slot: the
                // running system is the good one, and stays first.
                self.keep_booted().await;
                self.installation_failed(len, UpdateResult::UpdateFailed)
                    .await;
            }
            Err(e) => {
                tracing::warn!("the interrupted installation: {e}");
                self.installed(len, Err(e)).await;
            }
        }
    }

    async fn keep_booted(&self) {
        if let Err(e) = self.backend.keep_booted().await {
            tracing::error!("keeping the running system first: {e}");
        }
    }

    async fn commit(&self) {
        match self.backend.commit().await {
            Ok(()) => {
                tracing::info!("the new system registered: committed");
                // Kept before the progress goes: a kill in between still reports it.
                self.keep_result(UpdateResult::Success);
                self.forget();
                self.remove_package();
                if let Some(v) = self.backend.version().await {
                    self.report(Path::resource(3, 0, 3), Value::String(v)).await;
                }
                self.set(State::Idle, Some(UpdateResult::Success)).await;
            }
            Err(e) => {
                tracing::error!("committing the new system: {e}");
                self.roll_back().await;
            }
        }
    }

    async fn roll_back(&self) {
        let len = match self.load() {
            Some(Progress::Installed { len, .. }) => len,
            _ => 0,
        };
        self.save(&Progress::RollingBack { len });
        self.finish_rollback(len).await;
    }

    async fn finish_rollback(&self, len: u64) {
        if let Err(e) = self.backend.rollback().await {
            tracing::error!("rolling back: {e}");
        }
        self.save(&Progress::RolledBack { len });
        tracing::warn!("rolled back; rebooting into the old system");
        self.reboot().await;
    }

    async fn reboot(&self) {
        let method = match self.reboot {
            RebootMethod::Logind => backends::system::RebootMethod::Logind,
            RebootMethod::None => backends::system::RebootMethod::None,
        };
        if let Err(e) = backends::system::SystemBus::from_env().reboot(method).await {
            tracing::error!("reboot: {e}");
        }
    }
}

/// An installation's progress, as the backend reports it: in the log, and in the status
/// the service manager shows.
fn installing(percent: i32, message: &str) {
    tracing::info!("firmware installation: {percent}% {message}");
    let status = format!("installing firmware: {percent}% {message}");
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Status(&status)]) {
        tracing::debug!("sd_notify: {e}");
    }
}

fn result_of(e: &FirmwareError) -> UpdateResult {
    match e {
        FirmwareError::Integrity(_) => UpdateResult::IntegrityCheckFailure,
        FirmwareError::Unsupported(_) => UpdateResult::UnsupportedPackage,
        FirmwareError::NoSpace(_) => UpdateResult::NotEnoughSpace,
        FirmwareError::Deferred => UpdateResult::Deferred,
        FirmwareError::Failed(_) => UpdateResult::UpdateFailed,
    }
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
