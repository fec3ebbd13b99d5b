//! Writing results: to stdout (a closed pipe is not an error) or to a file replaced atomically,
//! so a failed or interrupted run never leaves a partial results file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Writes `content` to stdout, treating a closed pipe (`| head -1`) as success.
pub fn write_stdout(content: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(content.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// Writes `content` to `path` atomically: a temporary file beside it, then a rename. Paths that
/// exist and are not regular files (/dev/stdout, /dev/full, a FIFO) are written in place,
/// since renaming over a device would replace it.
pub fn write_file(path: &Path, content: &[u8]) -> Result<()> {
    let shown = path.display();
    if let Ok(meta) = fs::metadata(path) {
        if meta.is_dir() {
            bail!("--output {shown}: is a directory");
        }
        if !meta.is_file() {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("--output {shown}: cannot open"))?;
            return file
                .write_all(content)
                .and_then(|()| file.flush())
                .with_context(|| format!("--output {shown}: write failed"));
        }
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!("--output {shown}: directory {} does not exist", dir.display());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(content)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("--output {shown}: write failed"));
    }
    Ok(())
}

/// Writes to `path` if given, else to stdout.
pub fn emit(path: Option<&Path>, content: &str) -> Result<()> {
    match path {
        Some(p) => write_file(p, content.as_bytes()),
        None => write_stdout(content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_file(&path, b"first").unwrap();
        write_file(&path, b"second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_named() {
        let err = write_file(Path::new("/nonexistent-dir/x.json"), b"x").unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent-dir does not exist"),
            "{err:#}"
        );
    }

    #[test]
    fn device_files_are_written_in_place() {
        write_file(Path::new("/dev/null"), b"x").unwrap();
        assert!(Path::new("/dev/null").exists());
        if Path::new("/dev/full").exists() {
            assert!(write_file(Path::new("/dev/full"), b"x").is_err());
        }
    }
}
