//! Folders as a way in and out, for applications that drop files by SFTP or
//! FTP: `<data>/inbox/<ente>/<layout>/` is watched; a file is picked up once
//! complete (its size and modification time unchanged between two scans),
//! locked and claimed by an atomic rename (so two incasso processes never
//! load it both, and a restart never takes it from a live one), loaded, and moved to `done/` or `rejected/` with its report and
//! outcome beside it. Reporting back lands in `<data>/outbox/<ente>/<layout>/`.

use crate::supply::{self, LoadError};
use incasso_store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a file looked like at the previous scan.
#[derive(Default)]
pub struct Seen {
    files: HashMap<PathBuf, (u64, SystemTime)>,
}

/// One processed file and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub file: PathBuf,
    pub accepted: bool,
}

fn candidates(inbox: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entes) = std::fs::read_dir(inbox) else {
        return out;
    };
    for ente in entes.flatten().filter(|e| e.path().is_dir()) {
        let Ok(layouts) = std::fs::read_dir(ente.path()) else {
            continue;
        };
        for layout in layouts.flatten().filter(|l| l.path().is_dir()) {
            let Ok(files) = std::fs::read_dir(layout.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                // Hidden files and the usual "still uploading" names wait.
                if f.path().is_file()
                    && !name.starts_with('.')
                    && !name.ends_with(".part")
                    && !name.ends_with(".tmp")
                {
                    out.push((
                        ente.file_name().to_string_lossy().into_owned(),
                        layout.file_name().to_string_lossy().into_owned(),
                        f.path(),
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// `dir/name`, or, if a file of that name is already there (the same name
/// sent again), `dir/<time>-name`: a rename must never replace a file.
fn unique_target(dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(name);
    if !plain.exists() {
        return plain;
    }
    dir.join(format!(
        "{}-{name}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f")
    ))
}

fn move_into(file: &Path, dir: &str) -> std::io::Result<PathBuf> {
    let parent = file.parent().unwrap_or(Path::new(".")).join(dir);
    std::fs::create_dir_all(&parent)?;
    let name = file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let target = unique_target(&parent, &name);
    std::fs::rename(file, &target)?;
    Ok(target)
}

/// Scans once: loads every file that has stopped growing since the last
/// scan. Returns what it processed.
pub async fn scan_once(store: &Store, data_dir: &Path, seen: &mut Seen) -> Vec<Processed> {
    let mut processed = Vec::new();
    let mut still_here = HashMap::new();
    for (ente, layout_name, path) in candidates(&data_dir.join("inbox")) {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let now = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let stable = seen.files.get(&path) == Some(&now);
        still_here.insert(path.clone(), now);
        if !stable {
            continue;
        }
        // Claim it: lock it, then rename it (atomic, so only one process
        // wins). The lock follows the file into `processing/` and is held
        // until it settles, so `recover()` in another process can tell a
        // file being loaded from one left by a process that died (the
        // kernel drops a dead process's locks).
        let Ok(lock) = std::fs::File::open(&path) else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue;
        }
        let Ok(claimed) = move_into(&path, "processing") else {
            continue;
        };
        still_here.remove(&path);
        let accepted = process(store, &ente, &layout_name, &claimed).await;
        drop(lock);
        processed.push(Processed {
            file: path,
            accepted,
        });
    }
    seen.files = still_here;
    processed
}

async fn process(store: &Store, ente: &str, layout_name: &str, file: &Path) -> bool {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Moves the file to `dir` (never over another) and writes its notes
    // (report, outcome, error) beside it under the name it ends up with.
    let settle = |dir: &Path, notes: Vec<(&str, Vec<u8>)>| {
        let _ = std::fs::create_dir_all(dir);
        let target = unique_target(dir, &name);
        if std::fs::rename(file, &target).is_ok() {
            let final_name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (suffix, bytes) in notes {
                let _ = std::fs::write(dir.join(format!("{final_name}{suffix}")), bytes);
            }
        }
    };
    let base = file
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let layout = match supply::resolve_layout(store, ente, layout_name).await {
        Ok(l) => l,
        Err(e) => {
            settle(
                &base.join("rejected"),
                vec![(".errore.txt", e.to_string().into_bytes())],
            );
            return false;
        }
    };
    let path = file.to_path_buf();
    let open = move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::fs::File::open(&path)?))
    };
    let mut outcome = Vec::new();
    let file_of = supply::SupplyFile {
        ente,
        layout: &layout,
        default_service: None,
        file_name: &name,
        open: &open,
    };
    let sinks = supply::Sinks {
        outcome: Some(&mut outcome),
        ..supply::Sinks::none()
    };
    let result = supply::load(store, &file_of, sinks).await;
    let accepted = matches!(&result, Ok(r) if r.accepted);
    let mut notes = Vec::new();
    match result {
        Ok(report) => {
            if accepted {
                notes.push((supply::outcome_suffix(&layout), outcome));
            }
            if let Some(id) = report.supply_id
                && let Ok(s) = store.supply(ente, id).await
                && !s.errors.is_empty()
            {
                notes.push((".rapporto.csv", supply::report_csv(&s.errors)));
            }
        }
        Err(LoadError::Duplicate(id)) => notes.push((
            ".errore.txt",
            format!("file già caricato (fornitura {id})").into_bytes(),
        )),
        Err(e) => notes.push((".errore.txt", e.to_string().into_bytes())),
    }
    settle(
        &base.join(if accepted { "done" } else { "rejected" }),
        notes,
    );
    tracing::info!(ente, layout = layout_name, file = %name, accepted, "inbox file processed");
    accepted
}

/// Writes each inbox layout's new payments to its outbox folder; returns the
/// files written.
pub async fn export_once(store: &Store, data_dir: &Path) -> Vec<PathBuf> {
    let mut written = Vec::new();
    let Ok(entes) = std::fs::read_dir(data_dir.join("inbox")) else {
        return written;
    };
    for ente in entes.flatten().filter(|e| e.path().is_dir()) {
        let ente_name = ente.file_name().to_string_lossy().into_owned();
        let Ok(layouts) = std::fs::read_dir(ente.path()) else {
            continue;
        };
        for layout in layouts.flatten().filter(|l| l.path().is_dir()) {
            let layout_name = layout.file_name().to_string_lossy().into_owned();
            let Ok(l) = supply::resolve_layout(store, &ente_name, &layout_name).await else {
                continue;
            };
            if l.export.is_none() {
                continue;
            }
            match crate::export::prepare(store, &ente_name, &l, "outbox").await {
                Ok((bytes, exported)) if !exported.is_empty() => {
                    let dir = data_dir.join("outbox").join(&ente_name).join(&layout_name);
                    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
                    let tmp = dir.join(format!(".pagamenti-{stamp}.tmp"));
                    let file = dir.join(format!("pagamenti-{stamp}.csv"));
                    // Written aside, then renamed: a reader never sees half a
                    // file; the cursor moves only once the file is in place.
                    if std::fs::create_dir_all(&dir).is_ok()
                        && std::fs::write(&tmp, &bytes).is_ok()
                        && std::fs::rename(&tmp, &file).is_ok()
                    {
                        match crate::export::commit(
                            store,
                            &ente_name,
                            &layout_name,
                            "outbox",
                            &exported,
                        )
                        .await
                        {
                            Ok(()) => written.push(file),
                            Err(e) => {
                                tracing::warn!(error = %e, "outbox cursor not moved; the file will be written again")
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox export failed"),
            }
        }
    }
    written
}

/// Puts back files left in `processing/` by a process that died: their
/// supply never committed, so they load from scratch (or, if it did commit
/// just before the crash, are refused as already loaded). Files another
/// live process holds locked are left where they are.
pub fn recover(data_dir: &Path) {
    let Ok(entes) = std::fs::read_dir(data_dir.join("inbox")) else {
        return;
    };
    for ente in entes.flatten() {
        let Ok(layouts) = std::fs::read_dir(ente.path()) else {
            continue;
        };
        for layout in layouts.flatten() {
            let Ok(files) = std::fs::read_dir(layout.path().join("processing")) else {
                continue;
            };
            for f in files.flatten() {
                // Locked: another running process is loading it right now.
                let Ok(file) = std::fs::File::open(f.path()) else {
                    continue;
                };
                if file.try_lock().is_err() {
                    continue;
                }
                let _ = std::fs::rename(f.path(), layout.path().join(f.file_name()));
            }
        }
    }
}

/// Watches the inbox and fills the outbox until the task is dropped.
pub async fn run(store: Store, data_dir: PathBuf, every: Duration) {
    recover(&data_dir);
    let mut seen = Seen::default();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        scan_once(&store, &data_dir, &mut seen).await;
        export_once(&store, &data_dir).await;
    }
}
