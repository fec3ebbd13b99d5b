//! The on-disk feature cache: one file per image and backbone, so a second run over the same
//! folder runs no forward pass.
//!
//! An entry is keyed by what its values depend on, and nothing else: the model (its name and
//! the SHA-256 of its weights file), the preprocessing (input resolution and central-crop
//! fraction) and the image file's content (SHA-256 of its bytes: a renamed or moved file still
//! hits, an edited one misses). The first two name the entry's folder,
//! `ROOT/NAME-WEIGHTS16-RESpx-cropCROP-vFORMAT/`, the content its file, `HH/HASH.f32` (HH the
//! hash's first two hex digits).
//!
//! An entry file is [`MAGIC`], the SHA-256 of the key, the content hash, the value count (u32
//! LE), the values (f32 LE), then the SHA-256 of everything before it. An entry is used only if
//! every part checks (size, magic, key, content hash, count, checksum, finite values);
//! anything else (a partial write, a flipped bit, a file from another key) is a miss, and the
//! recomputed entry replaces it. Entries are written to a temporary file in the same folder and
//! renamed into place, so a reader never sees half of one, and two runs sharing a cache at most
//! write the same entry twice.
//!
//! The default root is `$XDG_CACHE_HOME/mobilenet-cli/features` (an absolute
//! `XDG_CACHE_HOME`), else `$HOME/.cache/mobilenet-cli/features`.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The first bytes of every entry; the last byte is the format version.
pub const MAGIC: [u8; 8] = *b"MNFEAT\0\x01";

/// A SHA-256 digest.
pub type Sha = [u8; 32];

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Sha {
    Sha256::digest(bytes).into()
}

/// A digest as lower-case hex.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a cached feature vector depends on besides the image.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheKey {
    /// The model's name ("1.0_224", a file's stem).
    pub model: String,
    /// SHA-256 of the weights file.
    pub weights: Sha,
    /// Input resolution, pixels per side.
    pub resolution: u32,
    /// Fraction of each side the central crop keeps.
    pub crop: f64,
    /// Values per image.
    pub feature_len: usize,
}

impl CacheKey {
    /// The folder of this key's entries: readable, and unique per key.
    pub fn folder_name(&self) -> String {
        let name: String = self
            .model
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        format!(
            "{name}-{}-{}px-crop{}-v{}",
            &hex(&self.weights)[..16],
            self.resolution,
            self.crop,
            MAGIC[7]
        )
    }

    /// SHA-256 of every field, stored in each entry.
    fn digest(&self) -> Sha {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}",
            self.model,
            hex(&self.weights),
            self.resolution,
            self.crop,
            self.feature_len
        );
        sha256(text.as_bytes())
    }
}

/// The default cache root: `$XDG_CACHE_HOME/mobilenet-cli/features` for an absolute
/// `XDG_CACHE_HOME`, else `$HOME/.cache/mobilenet-cli/features`; None without either.
pub fn default_root() -> Option<PathBuf> {
    root_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

/// The root for these values of `XDG_CACHE_HOME` and `HOME` (relative ones are ignored, as
/// the XDG specification says).
fn root_from(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute(xdg).or_else(|| absolute(home).map(|home| home.join(".cache")))?;
    Some(base.join("mobilenet-cli").join("features"))
}

/// What a look-up found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Hit(Vec<f32>),
    /// No entry.
    Miss,
    /// An entry that failed a check: not used, and replaced when the values are recomputed.
    Invalid,
}

/// The entries of one key under a root folder.
#[derive(Debug)]
pub struct FeatureCache {
    dir: PathBuf,
    key: Sha,
    feature_len: usize,
}

/// Distinguishes the temporary files of one process.
static TEMPORARY: AtomicU64 = AtomicU64::new(0);

impl FeatureCache {
    /// The cache of `key` under `root`, its folder created.
    pub fn open(root: &Path, key: &CacheKey) -> io::Result<FeatureCache> {
        let dir = root.join(key.folder_name());
        fs::create_dir_all(&dir)?;
        Ok(FeatureCache {
            dir,
            key: key.digest(),
            feature_len: key.feature_len,
        })
    }

    /// The folder this key's entries are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry of an image whose content hash is `content` lives.
    pub fn entry_path(&self, content: &Sha) -> PathBuf {
        let name = hex(content);
        self.dir.join(&name[..2]).join(format!("{name}.f32"))
    }

    /// The cached features of an image whose content hash is `content`.
    pub fn get(&self, content: &Sha) -> Lookup {
        match fs::read(self.entry_path(content)) {
            Ok(bytes) => self.decode(&bytes, content).map_or(Lookup::Invalid, Lookup::Hit),
            Err(_) => Lookup::Miss,
        }
    }

    /// Stores `values` for `content`, atomically (a temporary file renamed into place).
    pub fn put(&self, content: &Sha, values: &[f32]) -> io::Result<()> {
        if values.len() != self.feature_len {
            return Err(io::Error::other(format!(
                "{} values for a cache of {}",
                values.len(),
                self.feature_len
            )));
        }
        let path = self.entry_path(content);
        let dir = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(dir)?;
        let temporary = dir.join(format!(
            ".{}.{}.{}.tmp",
            hex(content),
            std::process::id(),
            TEMPORARY.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(&self.encode(content, values))?;
            drop(file);
            fs::rename(&temporary, &path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        result
    }

    fn encode(&self, content: &Sha, values: &[f32]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(entry_len(values.len()));
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&self.key);
        bytes.extend_from_slice(content);
        bytes.extend_from_slice(&u32::try_from(values.len()).unwrap_or(u32::MAX).to_le_bytes());
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let checksum = sha256(&bytes);
        bytes.extend_from_slice(&checksum);
        bytes
    }

    /// The values of an entry that passes every check.
    fn decode(&self, bytes: &[u8], content: &Sha) -> Option<Vec<f32>> {
        if bytes.len() != entry_len(self.feature_len) {
            return None;
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        let (magic, rest) = body.split_at(8);
        let (key, rest) = rest.split_at(32);
        let (stored_content, rest) = rest.split_at(32);
        let (count, values) = rest.split_at(4);
        let count = u32::from_le_bytes(count.try_into().ok()?) as usize;
        if magic != MAGIC
            || key != self.key
            || stored_content != content
            || count != self.feature_len
            || sha256(body) != checksum
        {
            return None;
        }
        let values: Vec<f32> = values
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        values.iter().all(|v| v.is_finite()).then_some(values)
    }
}

/// Bytes of an entry of `n` values.
fn entry_len(n: usize) -> usize {
    8 + 32 + 32 + 4 + 4 * n + 32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            model: "1.0_224".into(),
            weights: sha256(b"weights"),
            resolution: 224,
            crop: 0.875,
            feature_len: 3,
        }
    }

    #[test]
    fn an_entry_round_trips_and_names_its_key() {
        let root = tempfile::tempdir().unwrap();
        let cache = FeatureCache::open(root.path(), &key()).unwrap();
        assert!(
            cache.dir().ends_with(format!(
                "1.0_224-{}-224px-crop0.875-v1",
                &hex(&sha256(b"weights"))[..16]
            )),
            "{}",
            cache.dir().display()
        );
        let content = sha256(b"image");
        assert_eq!(cache.get(&content), Lookup::Miss);
        cache.put(&content, &[1.0, -2.5, 0.0]).unwrap();
        assert_eq!(cache.get(&content), Lookup::Hit(vec![1.0, -2.5, 0.0]));
        assert!(cache.put(&content, &[1.0]).is_err(), "wrong length");
        let leftovers: Vec<_> = fs::read_dir(cache.entry_path(&content).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[test]
    fn damaged_or_foreign_entries_are_never_used() {
        let root = tempfile::tempdir().unwrap();
        let cache = FeatureCache::open(root.path(), &key()).unwrap();
        let content = sha256(b"image");
        cache.put(&content, &[1.0, 2.0, 3.0]).unwrap();
        let path = cache.entry_path(&content);
        let good = fs::read(&path).unwrap();
        // Truncated, one bit flipped in a value, and an entry of another image copied here.
        let mut flipped = good.clone();
        flipped[8 + 32 + 32 + 4 + 1] ^= 0x10;
        let other = {
            cache.put(&sha256(b"other"), &[1.0, 2.0, 3.0]).unwrap();
            fs::read(cache.entry_path(&sha256(b"other"))).unwrap()
        };
        for bad in [&good[..good.len() - 1], &flipped[..], &other[..], b""] {
            fs::write(&path, bad).unwrap();
            assert_eq!(cache.get(&content), Lookup::Invalid);
        }
        // Another model's cache does not read this one's entries.
        let moved = CacheKey {
            resolution: 192,
            ..key()
        };
        let elsewhere = FeatureCache::open(root.path(), &moved).unwrap();
        assert_ne!(elsewhere.dir(), cache.dir());
        fs::create_dir_all(elsewhere.entry_path(&content).parent().unwrap()).unwrap();
        fs::write(elsewhere.entry_path(&content), &good).unwrap();
        assert_eq!(
            elsewhere.get(&content),
            Lookup::Invalid,
            "the key inside must match"
        );
        // Rewritten, the entry is good again.
        cache.put(&content, &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(cache.get(&content), Lookup::Hit(vec![1.0, 2.0, 3.0]));
    }

    #[test]
    fn the_default_root_follows_xdg_then_home() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            root_from(os("/x/cache"), os("/home/u")),
            Some(PathBuf::from("/x/cache/mobilenet-cli/features"))
        );
        assert_eq!(
            root_from(os("relative"), os("/home/u")),
            Some(PathBuf::from("/home/u/.cache/mobilenet-cli/features"))
        );
        assert_eq!(root_from(None, os("/home/u")), root_from(os(""), os("/home/u")));
        assert_eq!(root_from(None, None), None);
    }
}
