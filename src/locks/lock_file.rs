//! What the host lock and the build lock share: an advisory `flock` on a file (std's
//! `File::lock`/`try_lock`), its directory created when missing, the file created with a
//! fixed mode whatever the umask (`fchmod` ignores it), and the lock released when the
//! holder is dropped or its process dies, so a crash never leaves it stuck.
//!
//! Only the mechanics: each lock says which mode, which access and which errors it has.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a lock file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Its directory does not exist and cannot be created.
    CreateDir { dir: PathBuf, source: io::Error },
    /// The file cannot be opened or created (or, when [`Create::strict`], given its mode).
    Open { path: PathBuf, source: io::Error },
}

/// How a lock file is created and opened.
#[derive(Debug, Clone, Copy)]
pub struct Create {
    /// The mode a file created here gets, whatever the umask.
    pub mode: u32,
    /// Fail when the mode cannot be set (else best effort).
    pub strict: bool,
    /// Open read and write (else write-only to create, read-only when it exists: `flock`
    /// needs no more, in either mode).
    pub read_write: bool,
}

/// Open the lock file at `path` as `how` says, creating its directory and the file when
/// missing. With `read_write`, an existing file another user owns is opened read-only when
/// it cannot be opened for writing: a read-only descriptor can hold a `flock` too.
pub fn open(path: &Path, how: Create) -> Result<File, OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        fs::create_dir_all(dir).map_err(|source| OpenError::CreateDir {
            dir: dir.to_owned(),
            source,
        })?;
    }
    let open_err = |source| OpenError::Open {
        path: path.to_owned(),
        source,
    };
    let created = OpenOptions::new()
        .read(how.read_write)
        .write(true)
        .create_new(true)
        .open(path);
    match created {
        Ok(file) => {
            let set = file.set_permissions(Permissions::from_mode(how.mode));
            if how.strict {
                set.map_err(open_err)?;
            }
            return Ok(file);
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(open_err(source)),
    }
    if !how.read_write {
        return File::open(path).map_err(open_err);
    }
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && path.is_file() => {
            File::open(path).map_err(|_| open_err(e))
        }
        Err(source) => Err(open_err(source)),
    }
}

/// A held lock on an open file; dropping it releases the lock.
#[derive(Debug)]
pub struct Held {
    file: File,
    path: PathBuf,
}

impl Held {
    /// `file`, locked by the caller.
    #[must_use]
    pub fn new(file: File, path: &Path) -> Self {
        Self {
            file,
            path: path.to_owned(),
        }
    }

    /// The lock file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open lock file.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Let the programs this process starts inherit the lock (clear close-on-exec): the lock
    /// then lives until every process holding the descriptor has ended, as with flock(1).
    pub fn inherit_on_exec(&self) -> io::Result<()> {
        rustix::io::fcntl_setfd(&self.file, rustix::io::FdFlags::empty()).map_err(io::Error::from)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it explicit.
        let _ = self.file.unlock();
    }
}
