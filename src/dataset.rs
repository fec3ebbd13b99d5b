//! Image files on disk: which names are images, the images of a folder, and a labelled folder
//! (one subfolder of images per class, named by its class).
//!
//! Nothing here knows ImageNet: `classify::evaluate` maps the folder names to ImageNet classes,
//! and a classifier trained on the user's own classes could read the same folders. Entries whose
//! name starts with '.' are invisible: hidden files, `.DS_Store`, and the `._photo.jpg`
//! AppleDouble companions macOS leaves on other file systems, which are not images whatever
//! their extension. Entries are sorted by name (bytewise), so every listing is reproducible.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::text::{escape_controls, path_text};

/// Extensions (compared without case) of the files taken as images.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "jpe", "png", "bmp", "webp"];

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`].
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(OsStr::to_str)
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Whether a directory entry is hidden: its name starts with '.'.
pub fn is_hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Why a folder could not be listed. Messages name the folder once, on one line.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{}: no such directory", escape_controls(.dir))]
    NotFound { dir: String },
    #[error("{}: not a directory", escape_controls(.dir))]
    NotADirectory { dir: String },
    #[error("{}: cannot read directory: {reason}", escape_controls(.dir))]
    Unreadable { dir: String, reason: String },
}

impl DatasetError {
    fn new(dir: &Path, error: &std::io::Error) -> Self {
        let dir = path_text(dir);
        match error.kind() {
            std::io::ErrorKind::NotFound => DatasetError::NotFound { dir },
            std::io::ErrorKind::NotADirectory => DatasetError::NotADirectory { dir },
            _ => DatasetError::Unreadable {
                dir,
                reason: error.to_string(),
            },
        }
    }
}

/// The visible entries of one folder, each list sorted by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Entries that are folders (symbolic links followed).
    pub folders: Vec<PathBuf>,
    /// Other entries with an image extension; whether they decode is for the decoder to say.
    pub images: Vec<PathBuf>,
    /// Everything else.
    pub others: Vec<PathBuf>,
}

/// Lists the folder `dir` (not its subfolders).
pub fn list_dir(dir: &Path) -> Result<Listing, DatasetError> {
    let fail = |e: std::io::Error| DatasetError::new(dir, &e);
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        if !is_hidden(&entry.file_name()) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    let mut listing = Listing::default();
    for path in paths {
        if path.is_dir() {
            listing.folders.push(path);
        } else if has_image_extension(&path) {
            listing.images.push(path);
        } else {
            listing.others.push(path);
        }
    }
    Ok(listing)
}

/// One class of a labelled folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassFolder {
    /// The folder's name, as [`path_text`] writes it: the class's name.
    pub name: String,
    pub path: PathBuf,
    /// The images directly inside it.
    pub images: Vec<PathBuf>,
}

/// A folder of class folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledFolder {
    /// In name order; a class folder may hold no image.
    pub classes: Vec<ClassFolder>,
    /// Images directly in the top folder, which belong to no class.
    pub unlabelled: Vec<PathBuf>,
    /// Entries that are neither class folders nor images in one: other files at the top, other
    /// files and subfolders inside a class folder.
    pub skipped: Vec<PathBuf>,
}

impl LabelledFolder {
    /// Every image of every class, with the index of its class, class by class.
    pub fn images(&self) -> impl Iterator<Item = (usize, &Path)> {
        self.classes
            .iter()
            .enumerate()
            .flat_map(|(c, class)| class.images.iter().map(move |p| (c, p.as_path())))
    }
}

/// Reads the labelled folder `dir`: its subfolders are the classes.
pub fn read_labelled_folder(dir: &Path) -> Result<LabelledFolder, DatasetError> {
    let top = list_dir(dir)?;
    let mut classes = Vec::with_capacity(top.folders.len());
    let mut skipped = top.others;
    for path in top.folders {
        let inside = list_dir(&path)?;
        skipped.extend(inside.folders);
        skipped.extend(inside.others);
        classes.push(ClassFolder {
            name: path_text(Path::new(path.file_name().unwrap_or(path.as_os_str()))),
            images: inside.images,
            path,
        });
    }
    Ok(LabelledFolder {
        classes,
        unlabelled: top.images,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn image_names_and_hidden_entries() {
        for name in ["a.jpg", "b.JPEG", "c.jpe", "d.Png", "e.bmp", "f.webp"] {
            assert!(has_image_extension(Path::new(name)), "{name}");
        }
        for name in ["a.gif", "notes.txt", "jpg", "a.jpg.txt"] {
            assert!(!has_image_extension(Path::new(name)), "{name}");
        }
        for name in ["._photo.jpg", ".DS_Store", ".hidden"] {
            assert!(is_hidden(OsStr::new(name)), "{name}");
        }
        assert!(!is_hidden(OsStr::new("photo.jpg")));
    }

    #[test]
    fn a_listing_sorts_and_skips_hidden_entries() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.png",
            "a.jpg",
            "._a.jpg",
            ".DS_Store",
            "notes.txt",
            "sub/x.jpg",
            ".git/y.jpg",
        ] {
            touch(&dir.path().join(name));
        }
        let listing = list_dir(dir.path()).unwrap();
        let names = |paths: &[PathBuf]| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(&listing.images), ["a.jpg", "b.png"]);
        assert_eq!(names(&listing.folders), ["sub"]);
        assert_eq!(names(&listing.others), ["notes.txt"]);
    }

    #[test]
    fn folders_that_cannot_be_listed_are_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let err = list_dir(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: no such directory", missing.display())
        );
        let file = dir.path().join("photo.jpg");
        touch(&file);
        let err = read_labelled_folder(&file).unwrap_err();
        assert_eq!(err.to_string(), format!("{}: not a directory", file.display()));
    }

    #[test]
    fn a_labelled_folder_has_classes_unlabelled_images_and_skipped_entries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "cat/1.jpg",
            "cat/2.png",
            "cat/._1.jpg",
            "cat/notes.txt",
            "cat/nested/3.jpg",
            "dog/.keep",
            "loose.jpg",
            "README.md",
            "._loose.jpg",
        ] {
            touch(&root.join(name));
        }
        let folder = read_labelled_folder(root).unwrap();
        let classes: Vec<(&str, usize)> = folder
            .classes
            .iter()
            .map(|c| (c.name.as_str(), c.images.len()))
            .collect();
        assert_eq!(classes, [("cat", 2), ("dog", 0)]);
        assert_eq!(folder.unlabelled, [root.join("loose.jpg")]);
        assert_eq!(
            folder.skipped,
            [
                root.join("README.md"),
                root.join("cat/nested"),
                root.join("cat/notes.txt")
            ]
        );
        let images: Vec<(usize, &Path)> = folder.images().collect();
        assert_eq!(
            images,
            [
                (0, root.join("cat/1.jpg").as_path()),
                (0, root.join("cat/2.png").as_path())
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn class_names_that_are_not_utf8_are_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join(OsStr::from_bytes(b"caf\xe9")).join("a.jpg"));
        let folder = read_labelled_folder(dir.path()).unwrap();
        assert_eq!(folder.classes[0].name, "caf\\xe9");
    }
}
