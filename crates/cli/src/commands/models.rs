//! `kiln models …` and `kiln gc`: the registry from the command line.
//!
//! Every subcommand opens the [`Store`] named by `--home` / `--database-url` / `--blob-url`
//! (environment: `KILN_HOME`, `KILN_DATABASE_URL`, `KILN_BLOB_URL`), does one thing, and prints
//! text or, with `--json`, one JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use kiln_entities::{MetadataType, ModelId, ModelPrecision, ModelRecord};
use kiln_storage::{
    GcOptions, LineageDirection, LineageQuery, ModelQuery, RegistryExt, Store, StoreOptions,
    StoredModel, WEIGHTS_ROLE,
};
use serde_json::{Value, json};

use super::errors::InputError;
use crate::cli::{
    DownloadArgs, GcArgs, GlobalArgs, LineageArgs, ListArgs, MetadataArgs, ModelsArgs,
    ModelsCommand, StoreArgs, TagArgs, UploadArgs,
};

/// The metadata key holding the file name the weights were registered under.
pub const WEIGHTS_FILENAME_KEY: &str = "weights_filename";

/// Runs `kiln models …`.
pub fn run(args: &ModelsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let store = open_store(&args.store).await?;
        let output = match &args.command {
            ModelsCommand::List(list) => self::list(&store, list).await?,
            ModelsCommand::Show(model) => {
                let model = load(&store, &model.id).await?;
                Output::new(describe(&model), model_json(&model))
            }
            ModelsCommand::Lineage(lineage) => self::lineage(&store, lineage).await?,
            ModelsCommand::Publish(model) => {
                change(&store, &model.id, "published", ModelRecord::publish).await?
            }
            ModelsCommand::Archive(model) => {
                change(&store, &model.id, "archived", ModelRecord::archive).await?
            }
            ModelsCommand::Unarchive(model) => {
                change(&store, &model.id, "unarchived", ModelRecord::unarchive).await?
            }
            ModelsCommand::Tag(tag) => self::tag(&store, tag).await?,
            ModelsCommand::Metadata(metadata) => self::metadata(&store, metadata).await?,
            ModelsCommand::Download(download) => self::download(&store, download).await?,
            ModelsCommand::Upload(upload) => self::upload(&store, upload, global.json).await?,
        };
        output.print(global.json)
    })
}

/// Runs `kiln gc`.
pub fn gc(args: &GcArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let store = open_store(&args.store).await?;
        let options = GcOptions {
            superseded: args.superseded,
            dry_run: args.dry_run,
            grace: chrono::Duration::seconds(i64::try_from(args.grace).unwrap_or(i64::MAX)),
        };
        let report = store.gc(&options).await.context("collecting garbage")?;
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let text = format!(
            "{verb} {} of {} blobs ({} bytes); kept {} younger than {} s; {} superseded references dropped; {} stale uploads removed\n",
            report.deleted.len(),
            report.scanned,
            report.bytes_freed,
            report.kept_young,
            args.grace,
            report.superseded_dropped,
            report.stale_uploads,
        );
        Output::new(text, serde_json::to_value(&report)?).print(global.json)
    })
}

/// The async runtime a registry command runs on (the CLI is otherwise synchronous).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs a future to completion on a [`runtime`] of its own.
pub fn block_on<T>(future: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    runtime()?.block_on(future)
}

/// Records the file name the weights were registered under (what `download` names its output).
pub fn set_weights_file_name(record: &mut ModelRecord, path: &Path) {
    if let Some(name) = path.file_name() {
        record.set_metadata(
            WEIGHTS_FILENAME_KEY,
            name.to_string_lossy(),
            MetadataType::Str,
        );
    }
}

/// Opens the registry and blob store the flags name.
pub async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    let options = StoreOptions {
        home: args.home.clone(),
        database_url: args.database_url.clone(),
        blob_url: args.blob_url.clone(),
    };
    Store::open(&options)
        .await
        .with_context(|| format!("opening the registry in {}", args.home.display()))
}

/// What a subcommand prints: text, or JSON with `--json`.
struct Output {
    text: String,
    json: Value,
}

impl Output {
    fn new(text: String, json: Value) -> Self {
        Self { text, json }
    }

    fn print(self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(&self.json)?);
        } else {
            print!("{}", self.text);
        }
        Ok(())
    }
}

fn parse_id(id: &str) -> Result<ModelId, InputError> {
    ModelId::from_str(id).map_err(|e| InputError::Invalid {
        what: "model id".into(),
        value: id.to_owned(),
        reason: e.to_string(),
    })
}

fn parse_precisions(values: &[String]) -> Result<Vec<ModelPrecision>, InputError> {
    values
        .iter()
        .map(|v| {
            ModelPrecision::from_str(v).map_err(|e| InputError::Invalid {
                what: "--precision".into(),
                value: v.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

async fn load(store: &Store, id: &str) -> anyhow::Result<StoredModel> {
    let id = parse_id(id)?;
    Ok(store.registry().model(id).await?)
}

async fn list(store: &Store, args: &ListArgs) -> anyhow::Result<Output> {
    let query = ModelQuery {
        project: args.project.clone(),
        name_pattern: args.name.clone(),
        tags: args.tags.clone(),
        only_published: args.published,
        include_archived: args.archived,
        metadata: args.metadata.clone(),
        precision: parse_precisions(&args.precision)?,
        max_results: Some(u32::try_from(args.limit.min(500)).unwrap_or(500)),
        cursor: None,
    };
    let mut models = Vec::new();
    let mut query = query;
    while models.len() < args.limit {
        let page = store.registry().query_models(&query).await?;
        models.extend(page.items);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    models.truncate(args.limit);
    let mut text = String::new();
    if models.is_empty() {
        text.push_str("no models\n");
    } else {
        let _ = writeln!(
            text,
            "{:<36}  {:<28}  {:<10}  {:<9}  {:>10}  tags",
            "id", "name", "precision", "state", "size"
        );
    }
    for model in &models {
        let _ = writeln!(
            text,
            "{:<36}  {:<28}  {:<10}  {:<9}  {:>10}  {}",
            model.id(),
            model.record.name,
            precision_text(model),
            state(&model.record),
            model
                .blob(WEIGHTS_ROLE)
                .map_or_else(|| "-".to_owned(), |b| b.size.to_string()),
            model.record.tags.join(","),
        );
    }
    let json = Value::Array(models.iter().map(model_json).collect());
    Ok(Output::new(text, json))
}

async fn lineage(store: &Store, args: &LineageArgs) -> anyhow::Result<Output> {
    let id = parse_id(&args.id)?;
    let model = store.registry().model(id).await?;
    let ancestors = store.registry().ancestors(id).await?;
    let mut query = LineageQuery::new(id, LineageDirection::Descendants);
    query.precision = parse_precisions(&args.precision)?;
    let descendants = store.registry().lineage(&query).await?;
    let mut text = String::new();
    for (depth, ancestor) in ancestors.iter().rev().enumerate() {
        let _ = writeln!(text, "{}{}", "  ".repeat(depth), line(ancestor));
    }
    let base = ancestors.len();
    let _ = writeln!(text, "{}{}  <- this model", "  ".repeat(base), line(&model));
    // Children under their parents: walk the descendants as a tree from the model.
    let mut children: BTreeMap<ModelId, Vec<&StoredModel>> = BTreeMap::new();
    for d in &descendants {
        if let Some(parent) = d.record.parent {
            children.entry(parent).or_default().push(d);
        }
    }
    let shown: std::collections::BTreeSet<ModelId> = descendants.iter().map(|d| d.id()).collect();
    // With a precision filter, a descendant's parent may be filtered out: hang it under the model.
    for d in &descendants {
        if let Some(parent) = d.record.parent
            && parent != id
            && !shown.contains(&parent)
        {
            children.entry(id).or_default().push(d);
        }
    }
    fn walk(
        text: &mut String,
        children: &BTreeMap<ModelId, Vec<&StoredModel>>,
        id: ModelId,
        depth: usize,
    ) {
        for child in children.get(&id).into_iter().flatten() {
            let _ = writeln!(text, "{}{}", "  ".repeat(depth), line(child));
            walk(text, children, child.id(), depth + 1);
        }
    }
    walk(&mut text, &children, id, base + 1);
    let json = json!({
        "model": model_json(&model),
        "ancestors": ancestors.iter().map(model_json).collect::<Vec<_>>(),
        "descendants": descendants.iter().map(model_json).collect::<Vec<_>>(),
    });
    Ok(Output::new(text, json))
}

fn line(model: &StoredModel) -> String {
    format!(
        "{} {} [{}]{}",
        model.id(),
        model.record.name,
        precision_text(model),
        if model.record.published {
            " published"
        } else {
            ""
        }
    )
}

async fn change(
    store: &Store,
    id: &str,
    what: &str,
    edit: impl FnOnce(&mut ModelRecord),
) -> anyhow::Result<Output> {
    let mut model = load(store, id).await?;
    let version = model.version;
    edit(&mut model.record);
    let model = store.registry().put_model(&model, Some(version)).await?;
    Ok(Output::new(
        format!("{} {what}\n", model.id()),
        model_json(&model),
    ))
}

async fn tag(store: &Store, args: &TagArgs) -> anyhow::Result<Output> {
    let mut model = load(store, &args.id).await?;
    let version = model.version;
    let tags = &mut model.record.tags;
    tags.retain(|t| !args.remove.contains(t));
    for tag in &args.add {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    let model = store.registry().put_model(&model, Some(version)).await?;
    Ok(Output::new(
        format!("{} tags: {}\n", model.id(), model.record.tags.join(", ")),
        model_json(&model),
    ))
}

async fn metadata(store: &Store, args: &MetadataArgs) -> anyhow::Result<Output> {
    let mut model = load(store, &args.id).await?;
    if !args.set.is_empty() || !args.unset.is_empty() {
        let version = model.version;
        for (key, raw) in &args.set {
            let (value, ty) = split_type(raw)?;
            model.record.set_metadata(key, value, ty);
        }
        for key in &args.unset {
            model.record.metadata.remove(key);
        }
        model = store.registry().put_model(&model, Some(version)).await?;
    }
    let mut text = String::new();
    for entry in model.record.metadata.iter() {
        let _ = writeln!(text, "{} = {} ({})", entry.key, entry.value, entry.ty);
    }
    if text.is_empty() {
        text.push_str("no metadata\n");
    }
    Ok(Output::new(
        text,
        serde_json::to_value(model.record.get_all_metadata())?,
    ))
}

/// `VALUE[:TYPE]`: a trailing `:TYPE` naming a metadata type types the value; otherwise `str`.
fn split_type(raw: &str) -> Result<(&str, MetadataType), InputError> {
    if let Some((value, ty)) = raw.rsplit_once(':')
        && let Ok(ty) = MetadataType::from_str(ty)
    {
        return Ok((value, ty));
    }
    Ok((raw, MetadataType::Str))
}

async fn download(store: &Store, args: &DownloadArgs) -> anyhow::Result<Output> {
    let model = load(store, &args.id).await?;
    let blob = model
        .blob(WEIGHTS_ROLE)
        .with_context(|| format!("model {} has no weights", model.id()))?;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => PathBuf::from(
            model
                .record
                .get_metadata(WEIGHTS_FILENAME_KEY)
                .and_then(|name| Path::new(name).file_name())
                .map_or_else(|| format!("{}.bin", model.id()).into(), ToOwned::to_owned),
        ),
    };
    let cached = store.fetch(blob, args.force).await?;
    let bytes = copy_atomically(&cached, &out)?;
    Ok(Output::new(
        format!(
            "{} -> {} ({bytes} bytes, sha256 {} verified)\n",
            model.id(),
            out.display(),
            blob.digest
        ),
        json!({"id": model.id().to_string(), "path": out, "size": bytes, "sha256": blob.digest}),
    ))
}

/// Copies `from` to `to` through a temporary file in `to`'s directory and a rename.
fn copy_atomically(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let mut source =
        std::fs::File::open(from).with_context(|| format!("reading {}", from.display()))?;
    let bytes = std::io::copy(&mut source, &mut temp)
        .with_context(|| format!("writing {}", to.display()))?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", to.display()))?;
    temp.persist(to)
        .with_context(|| format!("writing {}", to.display()))?;
    Ok(bytes)
}

/// A byte progress bar on stderr for storing `file` (none with `--json`; indicatif draws nothing
/// when stderr is not a terminal).
fn upload_bar(file: &Path, json: bool) -> Option<indicatif::ProgressBar> {
    if json {
        return None;
    }
    let len = std::fs::metadata(file).ok()?.len();
    let style = indicatif::ProgressStyle::with_template(
        "storing {msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    )
    .with_style(style)
    .with_message(file.display().to_string());
    Some(bar)
}

async fn upload(store: &Store, args: &UploadArgs, json: bool) -> anyhow::Result<Output> {
    if !args.file.is_file() {
        return Err(InputError::Missing {
            what: "weights file".into(),
            path: args.file.clone(),
        }
        .into());
    }
    let project = store.registry().ensure_project(&args.project).await?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.file
            .file_stem()
            .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned())
    });
    let mut record = ModelRecord::new(name);
    record.project = Some(project.id);
    record.tags = args.tags.clone();
    record.framework = args.framework.clone();
    record.comment = args.comment.clone();
    if let Some(parent) = &args.parent {
        let parent = parse_id(parent)?;
        // The parent must exist: lineage never points into the void.
        store.registry().model(parent).await?;
        record.parent = Some(parent);
    }
    set_weights_file_name(&mut record, &args.file);
    let bar = upload_bar(&args.file, json);
    let progress: Option<kiln_storage::ProgressFn> = bar.clone().map(|bar| {
        let progress: kiln_storage::ProgressFn =
            std::sync::Arc::new(move |done| bar.set_position(done));
        progress
    });
    let model = store
        .register(
            StoredModel::new(record),
            &[(WEIGHTS_ROLE.to_owned(), args.file.clone())],
            Some(0),
            progress,
        )
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(Output::new(
        format!(
            "{} registered: {} ({})\n",
            model.id(),
            model.record.name,
            model.record.uri.as_deref().unwrap_or("-")
        ),
        model_json(&model),
    ))
}

fn precision_text(model: &StoredModel) -> String {
    let p = model.precision();
    if p.is_empty() {
        "-".to_owned()
    } else {
        p.iter()
            .map(|p| p.as_str().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join("+")
    }
}

fn state(record: &ModelRecord) -> &'static str {
    match (record.published, record.archived()) {
        (_, true) => "archived",
        (true, false) => "published",
        (false, false) => "draft",
    }
}

fn describe(model: &StoredModel) -> String {
    let r = &model.record;
    let mut text = String::new();
    let _ = writeln!(text, "id:         {}", model.id());
    let _ = writeln!(text, "name:       {}", r.name);
    let _ = writeln!(text, "state:      {}", state(r));
    let _ = writeln!(text, "precision:  {}", precision_text(model));
    let _ = writeln!(
        text,
        "framework:  {}",
        r.framework.as_deref().unwrap_or("-")
    );
    let _ = writeln!(text, "project:    {}", r.project.as_deref().unwrap_or("-"));
    let _ = writeln!(text, "task:       {}", r.task.as_deref().unwrap_or("-"));
    let _ = writeln!(
        text,
        "parent:     {}",
        r.parent.map_or_else(|| "-".to_owned(), |p| p.to_string())
    );
    let _ = writeln!(text, "uri:        {}", r.uri.as_deref().unwrap_or("-"));
    let _ = writeln!(text, "tags:       {}", r.tags.join(", "));
    let _ = writeln!(text, "comment:    {}", r.comment);
    let _ = writeln!(
        text,
        "version:    {} (updated {})",
        model.version, model.updated_at
    );
    for blob in &model.blobs {
        let _ = writeln!(
            text,
            "blob:       {} {} bytes sha256:{}",
            blob.role, blob.blob.size, blob.blob.digest
        );
    }
    if let Some(entity) = &model.entity {
        if entity.latency > 0 {
            let _ = writeln!(text, "latency:    {} ms", entity.latency);
        }
        if entity.fps_throughput > 0 {
            let _ = writeln!(text, "throughput: {} fps", entity.fps_throughput);
        }
        if entity.model_size_reduction > 0.0 {
            let _ = writeln!(text, "size reduction: {:.2}", entity.model_size_reduction);
        }
    }
    for entry in r.metadata.iter() {
        let _ = writeln!(
            text,
            "metadata:   {} = {} ({})",
            entry.key, entry.value, entry.ty
        );
    }
    text
}

/// A model as JSON: the stored model plus its archived state spelled out.
pub fn model_json(model: &StoredModel) -> Value {
    let mut value = serde_json::to_value(model).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("id".into(), json!(model.id().to_string()));
        map.insert("archived".into(), json!(model.record.archived()));
    }
    value
}
