//! Store URLs: parsing `file://`, plain paths, `memory://`, `s3://`, `gs://` and `azure://`
//! into an object_store backend, and the credential check done before any network call.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use url::Url;

use super::BlobStoreOptions;
use super::error::{BlobError, SUPPORTED_SCHEMES};

/// What the S3 credential check accepts: an access key id with its secret, a web identity token
/// file, container credentials, or unsigned requests. (object_store reads no `AWS_PROFILE`, so a
/// profile alone is not accepted.)
pub const S3_CREDENTIALS: &str = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (optionally \
     AWS_SESSION_TOKEN), or AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, or \
     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / AWS_CONTAINER_CREDENTIALS_FULL_URI, or \
     AWS_SKIP_SIGNATURE=true for a public bucket (the same keys, lower-case, work in \
     BlobStoreOptions::config; set allow_implicit_credentials to rely on instance metadata)";

/// What the GCS credential check accepts: a service account (path or key), application
/// credentials (named, or gcloud's well-known file when reading the environment), a bearer token,
/// or unsigned requests.
pub const GCS_CREDENTIALS: &str = "GOOGLE_SERVICE_ACCOUNT (a key file path), or \
     GOOGLE_SERVICE_ACCOUNT_KEY (the key JSON), or GOOGLE_APPLICATION_CREDENTIALS, or \
     GOOGLE_BEARER_TOKEN, or GOOGLE_SKIP_SIGNATURE=true, or run `gcloud auth \
     application-default login` (the same keys, lower-case, work in BlobStoreOptions::config; set \
     allow_implicit_credentials to rely on instance metadata)";

/// What the Azure credential check accepts: the emulator, or an account name with a key, SAS
/// token, bearer token, service principal, federated token, the Azure CLI, or unsigned requests.
pub const AZURE_CREDENTIALS: &str = "AZURE_STORAGE_ACCOUNT_NAME with one of \
     AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_TOKEN, \
     AZURE_CLIENT_ID + AZURE_CLIENT_SECRET + AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, \
     AZURE_USE_AZURE_CLI=true or AZURE_SKIP_SIGNATURE=true; or AZURE_STORAGE_USE_EMULATOR=true \
     (the same keys, lower-case, work in BlobStoreOptions::config; set \
     allow_implicit_credentials to rely on a managed identity)";

/// Which backend a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A local directory.
    Local,
    /// Process memory.
    Memory,
    /// Amazon S3 or an S3-compatible service.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

/// An opened backend.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The object store.
    pub store: Arc<dyn ObjectStore>,
    /// The canonical store URL (no trailing `/`, except `memory://` and a root `file:///`).
    pub url: String,
    /// The key prefix every object of this store lives under.
    pub prefix: Path,
    /// For a local store, its directory.
    pub local_root: Option<PathBuf>,
    /// Which backend.
    pub backend: Backend,
}

/// Opens the backend `url` names.
pub(crate) fn open(url: &str, options: &BlobStoreOptions) -> Result<Opened, BlobError> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(invalid_url(url, "empty URL"));
    }
    if !trimmed.contains("://") {
        let cwd = std::env::current_dir()
            .map_err(|e| BlobError::io("read the current directory for", trimmed, e))?;
        return open_local(&resolve_path(FsPath::new(trimmed), &cwd), options);
    }
    let parsed = Url::parse(trimmed).map_err(|e| invalid_url(url, &e.to_string()))?;
    match parsed.scheme() {
        "file" => {
            if parsed
                .host_str()
                .is_some_and(|h| !h.is_empty() && h != "localhost")
            {
                return Err(invalid_url(
                    url,
                    "a file URL must not name a host; use file:///absolute/path",
                ));
            }
            let path = parsed.to_file_path().map_err(|()| {
                invalid_url(url, "not an absolute path; use file:///absolute/path")
            })?;
            open_local(&path, options)
        }
        "memory" => {
            if parsed.host_str().is_some_and(|h| !h.is_empty())
                || !matches!(parsed.path(), "" | "/")
            {
                return Err(invalid_url(
                    url,
                    "a memory store takes no name or path: use memory://",
                ));
            }
            Ok(in_memory())
        }
        "s3" | "s3a" => open_s3(url, &parsed, options),
        "gs" => open_gcs(url, &parsed, options),
        "azure" | "az" => open_azure(url, &parsed, options),
        other => Err(BlobError::UnsupportedScheme {
            url: url.to_owned(),
            scheme: other.to_owned(),
            supported: SUPPORTED_SCHEMES,
        }),
    }
}

/// A fresh in-memory backend.
pub(crate) fn in_memory() -> Opened {
    Opened {
        store: Arc::new(InMemory::new()),
        url: "memory://".to_owned(),
        prefix: Path::default(),
        local_root: None,
        backend: Backend::Memory,
    }
}

/// `path` made absolute against `cwd` (no filesystem access).
pub(crate) fn resolve_path(path: &FsPath, cwd: &FsPath) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

fn invalid_url(url: &str, reason: &str) -> BlobError {
    BlobError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

fn open_local(path: &FsPath, options: &BlobStoreOptions) -> Result<Opened, BlobError> {
    std::fs::create_dir_all(path).map_err(|e| BlobError::io("create directory", path, e))?;
    let root = std::fs::canonicalize(path).map_err(|e| BlobError::io("resolve", path, e))?;
    let url = Url::from_directory_path(&root)
        .map_err(|()| invalid_url(&root.display().to_string(), "not an absolute path"))?
        .to_string();
    // `from_directory_path` ends with `/`; the canonical form does not, except for the root.
    let url = match url.strip_suffix('/') {
        Some(stripped) if stripped != "file://" => stripped.to_owned(),
        _ => url,
    };
    let store = LocalFileSystem::new_with_prefix(&root)
        .map_err(|source| BlobError::Store {
            url: url.clone(),
            source,
        })?
        .with_fsync(options.fsync);
    Ok(Opened {
        store: Arc::new(store),
        url,
        prefix: Path::default(),
        local_root: Some(root),
        backend: Backend::Local,
    })
}

/// The bucket (or container) and key prefix of a cloud URL.
fn bucket_and_prefix(url: &str, parsed: &Url, what: &str) -> Result<(String, Path), BlobError> {
    let bucket = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            invalid_url(
                url,
                &format!("no {what} name, e.g. {}://{what}/prefix", parsed.scheme()),
            )
        })?
        .to_owned();
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid_url(
            url,
            "query strings and fragments are not supported",
        ));
    }
    let prefix = Path::from_url_path(parsed.path())
        .map_err(|e| invalid_url(url, &format!("invalid key prefix: {e}")))?;
    Ok((bucket, prefix))
}

fn cloud_url(scheme: &str, bucket: &str, prefix: &Path) -> String {
    if prefix.as_ref().is_empty() {
        format!("{scheme}://{bucket}")
    } else {
        format!("{scheme}://{bucket}/{prefix}")
    }
}

/// Lower-cased `options.config` entries parsed as `K`, with the offending key named on error.
fn config_entries<K: std::str::FromStr>(
    options: &BlobStoreOptions,
) -> Result<Vec<(K, String)>, BlobError>
where
    K::Err: std::fmt::Display,
{
    options
        .config
        .iter()
        .map(|(key, value)| {
            key.to_ascii_lowercase()
                .parse::<K>()
                .map(|k| (k, value.clone()))
                .map_err(|e| BlobError::InvalidOptions {
                    field: format!("config.{key}"),
                    reason: e.to_string(),
                })
        })
        .collect()
}

fn is_set(value: Option<String>) -> bool {
    value.is_some_and(|v| !v.trim().is_empty())
}

fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// What differs between the cloud backends when a store is opened.
struct Cloud {
    /// The scheme named in a credentials error.
    scheme: &'static str,
    /// The variables that would give credentials.
    variables: &'static str,
    /// The backend.
    backend: Backend,
}

/// The end every cloud backend shares: refuse missing credentials before any network call, then
/// build the store.
fn finish_cloud<S: ObjectStore>(
    given: &str,
    cloud: Cloud,
    credentials: bool,
    url: String,
    prefix: Path,
    build: impl FnOnce() -> object_store::Result<S>,
) -> Result<Opened, BlobError> {
    if !credentials {
        return Err(BlobError::MissingCredentials {
            url: given.to_owned(),
            scheme: cloud.scheme,
            variables: cloud.variables,
        });
    }
    let store = build().map_err(|source| BlobError::Store {
        url: url.clone(),
        source,
    })?;
    Ok(Opened {
        store: Arc::new(store),
        url,
        prefix,
        local_root: None,
        backend: cloud.backend,
    })
}

fn open_s3(url: &str, parsed: &Url, options: &BlobStoreOptions) -> Result<Opened, BlobError> {
    let (bucket, prefix) = bucket_and_prefix(url, parsed, "bucket")?;
    let mut builder = if options.from_env {
        AmazonS3Builder::from_env()
    } else {
        AmazonS3Builder::new()
    };
    for (key, value) in config_entries::<AmazonS3ConfigKey>(options)? {
        builder = builder.with_config(key, value);
    }
    builder = builder.with_bucket_name(&bucket);
    let credentials = options.allow_implicit_credentials || check_s3(&builder);
    finish_cloud(
        url,
        Cloud {
            scheme: "s3",
            variables: S3_CREDENTIALS,
            backend: Backend::S3,
        },
        credentials,
        cloud_url(parsed.scheme(), &bucket, &prefix),
        prefix,
        || builder.build(),
    )
}

/// The S3 rule: static keys, a web identity token file, container credentials, or unsigned
/// requests. (object_store has no `AWS_PROFILE` support, so a profile alone is not accepted.)
fn check_s3(builder: &AmazonS3Builder) -> bool {
    let get = |key: AmazonS3ConfigKey| builder.get_config_value(&key);
    (is_set(get(AmazonS3ConfigKey::AccessKeyId)) && is_set(get(AmazonS3ConfigKey::SecretAccessKey)))
        || is_set(get(AmazonS3ConfigKey::WebIdentityTokenFile))
        || is_set(get(AmazonS3ConfigKey::ContainerCredentialsRelativeUri))
        || is_set(get(AmazonS3ConfigKey::ContainerCredentialsFullUri))
        || is_true(get(AmazonS3ConfigKey::SkipSignature))
}

fn open_gcs(url: &str, parsed: &Url, options: &BlobStoreOptions) -> Result<Opened, BlobError> {
    let (bucket, prefix) = bucket_and_prefix(url, parsed, "bucket")?;
    let mut builder = if options.from_env {
        GoogleCloudStorageBuilder::from_env()
    } else {
        GoogleCloudStorageBuilder::new()
    };
    for (key, value) in config_entries::<GoogleConfigKey>(options)? {
        builder = builder.with_config(key, value);
    }
    builder = builder.with_bucket_name(&bucket);
    let credentials = options.allow_implicit_credentials || check_gcs(&builder, options.from_env);
    finish_cloud(
        url,
        Cloud {
            scheme: "gs",
            variables: GCS_CREDENTIALS,
            backend: Backend::Gcs,
        },
        credentials,
        cloud_url("gs", &bucket, &prefix),
        prefix,
        || builder.build(),
    )
}

/// The GCS rule: a service account (path or key), application credentials (named, or gcloud's
/// well-known file when reading the environment), a bearer token, or unsigned requests.
fn check_gcs(builder: &GoogleCloudStorageBuilder, from_env: bool) -> bool {
    let get = |key: GoogleConfigKey| builder.get_config_value(&key);
    let well_known_adc = from_env
        && std::env::var_os(if cfg!(windows) { "APPDATA" } else { "HOME" }).is_some_and(|home| {
            let relative = if cfg!(windows) {
                "gcloud/application_default_credentials.json"
            } else {
                ".config/gcloud/application_default_credentials.json"
            };
            FsPath::new(&home).join(relative).is_file()
        });
    is_set(get(GoogleConfigKey::ServiceAccount))
        || is_set(get(GoogleConfigKey::ServiceAccountKey))
        || is_set(get(GoogleConfigKey::ApplicationCredentials))
        || is_set(get(GoogleConfigKey::BearerToken))
        || is_true(get(GoogleConfigKey::SkipSignature))
        || well_known_adc
}

fn open_azure(url: &str, parsed: &Url, options: &BlobStoreOptions) -> Result<Opened, BlobError> {
    let (container, prefix) = bucket_and_prefix(url, parsed, "container")?;
    let mut builder = if options.from_env {
        MicrosoftAzureBuilder::from_env()
    } else {
        MicrosoftAzureBuilder::new()
    };
    for (key, value) in config_entries::<AzureConfigKey>(options)? {
        builder = builder.with_config(key, value);
    }
    builder = builder.with_container_name(&container);
    let credentials = options.allow_implicit_credentials || check_azure(&builder);
    finish_cloud(
        url,
        Cloud {
            scheme: "azure",
            variables: AZURE_CREDENTIALS,
            backend: Backend::Azure,
        },
        credentials,
        cloud_url(parsed.scheme(), &container, &prefix),
        prefix,
        || builder.build(),
    )
}

/// The Azure rule: the emulator, or an account name with a key, SAS token, bearer token, service
/// principal, federated token, the Azure CLI, or unsigned requests.
fn check_azure(builder: &MicrosoftAzureBuilder) -> bool {
    let get = |key: AzureConfigKey| builder.get_config_value(&key);
    if is_true(get(AzureConfigKey::UseEmulator)) {
        return true;
    }
    is_set(get(AzureConfigKey::AccountName))
        && (is_set(get(AzureConfigKey::AccessKey))
            || is_set(get(AzureConfigKey::SasKey))
            || is_set(get(AzureConfigKey::Token))
            || (is_set(get(AzureConfigKey::ClientId))
                && is_set(get(AzureConfigKey::ClientSecret))
                && is_set(get(AzureConfigKey::AuthorityId)))
            || is_set(get(AzureConfigKey::FederatedTokenFile))
            || is_true(get(AzureConfigKey::UseAzureCli))
            || is_true(get(AzureConfigKey::SkipSignature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_given_directory() {
        let cwd = FsPath::new("/srv/kiln");
        assert_eq!(
            resolve_path(FsPath::new("blobs"), cwd),
            PathBuf::from("/srv/kiln/blobs")
        );
        assert_eq!(
            resolve_path(FsPath::new("../other/blobs"), cwd),
            PathBuf::from("/srv/kiln/../other/blobs")
        );
        assert_eq!(
            resolve_path(FsPath::new("/abs/blobs"), cwd),
            PathBuf::from("/abs/blobs")
        );
    }

    #[test]
    fn cloud_urls_are_canonical() {
        assert_eq!(cloud_url("s3", "b", &Path::default()), "s3://b");
        assert_eq!(cloud_url("s3", "b", &Path::from("x/y")), "s3://b/x/y");
    }
}
