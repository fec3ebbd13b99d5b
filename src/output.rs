//! Writing results: to stdout (a closed pipe is not an error) or to a file checked before any
//! work and replaced atomically, so a failed or interrupted run never leaves a partial results
//! file in place of a complete one.
//!
//! An output file is resolved when the plan is made ([`OutputFile::check`]): a symbolic link is
//! followed to its target (so `--output link` rewrites what the link points at, and the link
//! stays a link), an existing file's permissions are kept, and the directory must exist and
//! accept a new file. Writes then go to a temporary file beside the target and are renamed over
//! it. Paths that exist and are not regular files (/dev/stdout, /dev/null, a FIFO) are written
//! in place, since renaming over a device would replace it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A path as text for messages and reports (lossy for names that are not UTF-8).
pub fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// Writes `content` to stdout, treating a closed pipe (`| head -1`) as success.
pub fn write_stdout(content: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(content).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// An output file, checked: where it will be written and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// As the user gave it, for messages.
    shown: PathBuf,
    /// Symbolic links resolved: the file that is replaced.
    target: PathBuf,
    /// Written in place (a device or FIFO), not replaced.
    in_place: bool,
    /// The existing file's permissions, kept across the replacement.
    permissions: Option<u32>,
}

impl OutputFile {
    /// Checks that `path` can be written: not a directory, its directory exists and accepts
    /// a new file. The reason is one line without the path (the caller names the flag and path).
    pub fn check(path: &Path) -> Result<OutputFile, String> {
        if path.as_os_str().is_empty() {
            return Err("empty path".into());
        }
        let target = resolve_links(path)?;
        let mut file = OutputFile {
            shown: path.to_path_buf(),
            target: target.clone(),
            in_place: false,
            permissions: None,
        };
        if let Ok(meta) = fs::metadata(&target) {
            if meta.is_dir() {
                return Err("is a directory".into());
            }
            if !meta.is_file() {
                // Devices and FIFOs: opened for writing now, so a read-only one fails here.
                fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(|e| format!("cannot open for writing: {}", io_reason(&e)))?;
                file.in_place = true;
                return Ok(file);
            }
            file.permissions = Some(mode(&meta));
        }
        let dir = file.dir();
        if !dir.is_dir() {
            return Err(format!("directory {} does not exist", path_text(&dir)));
        }
        // Prove the directory takes a new file now, rather than after the work.
        let probe = file.temporary("probe");
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map_err(|e| format!("cannot create a file in {}: {}", path_text(&dir), io_reason(&e)))?;
        let _ = fs::remove_file(&probe);
        Ok(file)
    }

    /// The path as given.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// Whether two outputs would write the same file.
    pub fn same_file(&self, other: &OutputFile) -> bool {
        let canonical = |p: &Path| {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            fs::canonicalize(dir)
                .ok()
                .map(|d| d.join(p.file_name().unwrap_or_default()))
        };
        self.target == other.target
            || canonical(&self.target).is_some_and(|a| Some(a) == canonical(&other.target))
    }

    fn dir(&self) -> PathBuf {
        match self.target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn temporary(&self, tag: &str) -> PathBuf {
        let name = self
            .target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.dir().join(format!(".{name}.{}.{tag}", std::process::id()))
    }

    /// Replaces the file's content with `content` (atomically for regular files).
    pub fn write(&self, content: &[u8]) -> io::Result<()> {
        let mut pending = self.begin()?;
        pending.append(content)?;
        pending.commit()
    }

    /// Starts a replacement written piece by piece: nothing is visible at the target until
    /// [`PendingFile::commit`]; dropped uncommitted, the temporary file is removed.
    pub fn begin(&self) -> io::Result<PendingFile> {
        if self.in_place {
            let file = fs::OpenOptions::new().write(true).open(&self.target)?;
            return Ok(PendingFile {
                file: Some(file),
                temporary: None,
                target: self.target.clone(),
                permissions: None,
            });
        }
        let temporary = self.temporary("tmp");
        let file = fs::File::create(&temporary)?;
        Ok(PendingFile {
            file: Some(file),
            temporary: Some(temporary),
            target: self.target.clone(),
            permissions: self.permissions,
        })
    }
}

/// A file being written; see [`OutputFile::begin`].
#[derive(Debug)]
pub struct PendingFile {
    file: Option<fs::File>,
    /// None when writing in place.
    temporary: Option<PathBuf>,
    target: PathBuf,
    permissions: Option<u32>,
}

impl PendingFile {
    pub fn append(&mut self, content: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.write_all(content),
            None => Err(io::Error::other("file already committed")),
        }
    }

    /// Makes the content visible at the target: flush, keep the old permissions, rename.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        file.flush()?;
        let Some(temporary) = self.temporary.take() else {
            return Ok(());
        };
        let result = (|| {
            if let Some(mode) = self.permissions {
                set_mode(&file, mode)?;
            }
            file.sync_all()?;
            drop(file);
            fs::rename(&temporary, &self.target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        result
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if let Some(temporary) = self.temporary.take() {
            let _ = fs::remove_file(temporary);
        }
    }
}

/// `path` with every symbolic link along the final component followed (a dangling link
/// resolves to the file it would create).
fn resolve_links(path: &Path) -> Result<PathBuf, String> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current)
                    .map_err(|e| format!("cannot read the link: {}", io_reason(&e)))?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    Err("too many levels of symbolic links".into())
}

/// An io::Error's reason without the "(os error N)" suffix.
fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}

#[cfg(unix)]
fn mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode()
}

#[cfg(not(unix))]
fn mode(_: &fs::Metadata) -> u32 {
    0
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &fs::File, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let out = OutputFile::check(&path).unwrap();
        out.write(b"first").unwrap();
        OutputFile::check(&path).unwrap().write(b"second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_and_directories_are_refused() {
        let err = OutputFile::check(Path::new("/nonexistent-dir/x.json")).unwrap_err();
        assert_eq!(err, "directory /nonexistent-dir does not exist");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(OutputFile::check(dir.path()).unwrap_err(), "is a directory");
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_kept_and_links_written_through() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.json");
        symlink("real.json", &link).unwrap();
        let out = OutputFile::check(&link).unwrap();
        out.write(b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
        assert!(out.same_file(&OutputFile::check(&real).unwrap()));
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut pending = OutputFile::check(&path).unwrap().begin().unwrap();
        pending.append(b"a,b\n").unwrap();
        drop(pending);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn device_files_are_written_in_place() {
        OutputFile::check(Path::new("/dev/null"))
            .unwrap()
            .write(b"x")
            .unwrap();
        assert!(Path::new("/dev/null").exists());
        if Path::new("/dev/full").exists() {
            assert!(
                OutputFile::check(Path::new("/dev/full"))
                    .unwrap()
                    .write(b"x")
                    .is_err()
            );
        }
    }
}
