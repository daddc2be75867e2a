//! Writing a report folder without ever losing a user's files.
//!
//! - Files go to a hidden sibling `.NAME.partial-PID` that replaces `--out` only when complete, so an
//!   interrupted run never leaves a report that looks finished.
//! - facebias writes only into folders it made: every report folder carries the marker file
//!   [`MARKER`]. An existing `--out` is accepted only when it is empty, or holds the marker (or, for
//!   reports written before the marker existed, a `run.json`) **and** nothing but the files facebias
//!   writes ([`is_report_file`]). Anything else — a thesis, a `src/`, notes added to a report — makes
//!   it refuse, naming the files, with nothing touched.
//! - `--out` may not be `.`, the current folder or one of its ancestors, nor an input of the run or a
//!   folder holding one ([`check_not_input`]).
//! - Replacing: the old report is renamed aside (`.NAME.old-PID`), the new one renamed in, and only
//!   then is the old one deleted; if the second rename fails, the old report is put back.
//! - Leftovers of dead runs (`.NAME.partial-PID` / `.NAME.old-PID` whose process is gone, holding the
//!   marker) are removed by the next run into the same parent folder.

use std::path::{Path, PathBuf};

/// The file that marks a folder as a facebias report (its content is fixed, so reports stay
/// byte-identical).
pub const MARKER: &str = ".facebias-run";

const MARKER_TEXT: &str =
    "a report folder written by facebias; it may replace this folder's contents\n";

/// Prefixes of the 1:N charts (`identify`): `<prefix><grouping>.png` and `.svg`.
const IDENTIFICATION_CHARTS: [&str; 5] =
    ["fpir_vs_n_", "det_1n_", "cmc_", "implicated_", "dots_1n_"];

/// Names facebias writes into a report folder: those `run.json` lists ([`super::record::REPORT_FILES`],
/// `det_*` etc. as PNG or SVG charts), the marker, and the files of some commands only (the 1:N
/// charts among them).
pub fn is_report_file(name: &str) -> bool {
    const OTHERS: [&str; 16] = [
        "candidates.csv",
        "identification.csv",
        "identification_summary.csv",
        "cmc.csv",
        "gallery_size.csv",
        "implicated.csv",
        "overlap.csv",
        "models.csv",
        "common_manifest.csv",
        MARKER,
        "run.json",
        "tensors.npy",
        "protocol.csv",
        "model_spec.toml",
        "sanity.json",
        super::audit::CROPS_FILE,
    ];
    let chart = name.ends_with(".png") || name.ends_with(".svg");
    OTHERS.contains(&name)
        || (chart && IDENTIFICATION_CHARTS.iter().any(|p| name.starts_with(p)))
        || super::record::REPORT_FILES
            .iter()
            .any(|f| match f.split_once('*') {
                Some((prefix, _)) => chart && name.starts_with(prefix),
                None => *f == name,
            })
}

/// Writes the marker into a folder facebias made (a report's sub-report, e.g. `identification/`).
pub fn mark(dir: &Path) -> Result<(), String> {
    let p = dir.join(MARKER);
    std::fs::write(&p, MARKER_TEXT).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// A report folder being written.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    tmp: PathBuf,
}

/// The folder holding `target` (`.` for a bare name).
fn parent_of(target: &Path) -> &Path {
    target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Whether `path` is a report folder facebias wrote inside another (a comparison's per-model runs,
/// the demo's `identification/`): it holds the marker and nothing facebias did not write.
fn is_sub_report(path: &Path) -> bool {
    path.join(MARKER).is_file() && refuse_existing(path).is_none()
}

/// Why an existing `target` may not be replaced, if it may not.
fn refuse_existing(target: &Path) -> Option<String> {
    if !target.is_dir() {
        return Some(format!(
            "--out {} exists and is not a folder; choose another --out",
            target.display()
        ));
    }
    let entries: Vec<String> = match std::fs::read_dir(target) {
        Ok(d) => d
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect(),
        Err(e) => return Some(format!("cannot read --out {}: {e}", target.display())),
    };
    if entries.is_empty() {
        return None;
    }
    let ours = entries.iter().any(|n| n == MARKER || n == "run.json");
    let mut foreign: Vec<&String> = entries
        .iter()
        .filter(|n| !is_report_file(n) && !is_sub_report(&target.join(n)))
        .collect();
    foreign.sort();
    if !ours {
        return Some(format!(
            "--out {} exists and is not a facebias report folder (no {MARKER}); nothing was touched: choose another --out or an empty folder",
            target.display()
        ));
    }
    if !foreign.is_empty() {
        let list: Vec<&str> = foreign.iter().take(5).map(|s| s.as_str()).collect();
        return Some(format!(
            "--out {} is a facebias report folder but also holds files facebias did not write ({}{}); nothing was touched: move them out or choose another --out",
            target.display(),
            list.join(", "),
            if foreign.len() > 5 { ", …" } else { "" }
        ));
    }
    None
}

/// Whether process `pid` is alive (Linux: `/proc/PID` exists; elsewhere assumed alive).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Removes `.NAME.partial-PID` and `.NAME.old-PID` folders of dead runs that carry the marker.
fn clean_leftovers(parent: &Path, name: &str) {
    let Ok(dir) = std::fs::read_dir(parent) else {
        return;
    };
    for e in dir.filter_map(|e| e.ok()) {
        let file = e.file_name().to_string_lossy().to_string();
        let pid = [".partial-", ".old-"].iter().find_map(|kind| {
            file.strip_prefix(&format!(".{name}{kind}"))
                .and_then(|p| p.parse::<u32>().ok())
        });
        if let Some(pid) = pid {
            let path = e.path();
            if pid != std::process::id() && !alive(pid) && path.join(MARKER).is_file() {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

/// Refuses a `--out` that is `.`, the current folder or an ancestor of it.
fn check_not_cwd(target: &Path) -> Result<(), String> {
    let (Ok(cwd), Ok(t)) = (
        std::env::current_dir().and_then(|c| c.canonicalize()),
        std::path::absolute(target),
    ) else {
        return Ok(());
    };
    let t = t.canonicalize().unwrap_or(t);
    if cwd.starts_with(&t) {
        return Err(format!(
            "--out {} is the current folder or one of its ancestors; a report is written into a folder of its own — run from outside it (e.g. `cd ..`) or choose another --out",
            target.display()
        ));
    }
    Ok(())
}

/// Refuses a `--out` that is one of the run's `inputs` or a folder holding one (replacing it would
/// delete the input).
pub fn check_not_input(target: &Path, inputs: &[&Path]) -> Result<(), String> {
    let Ok(t) = std::path::absolute(target) else {
        return Ok(());
    };
    let t = t.canonicalize().unwrap_or(t);
    for input in inputs {
        let Ok(i) = std::path::absolute(input) else {
            continue;
        };
        let i = i.canonicalize().unwrap_or(i);
        if i.starts_with(&t) {
            return Err(format!(
                "--out {} holds the input {}; writing the report there would replace it: choose another --out",
                target.display(),
                input.display()
            ));
        }
    }
    Ok(())
}

impl Staging {
    /// Checks the target can be written (see the module docs) and creates the temporary folder with
    /// the marker in it.
    pub fn begin(target: &Path) -> Result<Staging, String> {
        check_not_cwd(target)?;
        if target.exists() {
            if let Some(why) = refuse_existing(target) {
                return Err(why);
            }
        }
        let parent = parent_of(target);
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "report".into());
        clean_leftovers(parent, &name);
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if tmp.exists() {
            return Err(format!(
                "{} already exists (another run of this process?); remove it or choose another --out",
                tmp.display()
            ));
        }
        std::fs::create_dir(&tmp).map_err(|e| {
            format!(
                "cannot create {} (is {} writable?): {e}",
                tmp.display(),
                parent.display()
            )
        })?;
        let staging = Staging {
            target: target.to_path_buf(),
            tmp,
        };
        staging.write(MARKER, MARKER_TEXT.as_bytes())?;
        Ok(staging)
    }

    /// The temporary folder files are written to.
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Writes one file into the staging folder.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let p = self.tmp.join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))
    }

    /// Moves the finished report into place: an old report is renamed aside, the new one renamed
    /// in, then the old one deleted; if the new one cannot be moved in, the old one is put back.
    pub fn commit(self) -> Result<PathBuf, String> {
        let mut aside = None;
        if self.target.exists() {
            // Checked again: the folder may have changed during the run.
            if let Some(why) = refuse_existing(&self.target) {
                return Err(why);
            }
            let name = self
                .target
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "report".into());
            let old = parent_of(&self.target).join(format!(".{name}.old-{}", std::process::id()));
            std::fs::rename(&self.target, &old).map_err(|e| {
                format!(
                    "cannot move the old report {} aside: {e}",
                    self.target.display()
                )
            })?;
            aside = Some(old);
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.target) {
            if let Some(old) = &aside {
                let _ = std::fs::rename(old, &self.target);
            }
            return Err(format!(
                "cannot move the report into {}: {e}{}",
                self.target.display(),
                if aside.is_some() {
                    " (the old report is back in place)"
                } else {
                    ""
                }
            ));
        }
        if let Some(old) = aside {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // On failure (commit not reached) the partial folder, which this process made, is removed.
        if self.tmp.join(MARKER).is_file() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_refuses_foreign_folders_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("thesis.tex"), "x").unwrap();
        assert!(Staging::begin(&foreign)
            .unwrap_err()
            .contains("not a facebias report"));
        let out = dir.path().join("out");
        let tmp;
        {
            let s = Staging::begin(&out).unwrap();
            s.write("a.csv", b"x").unwrap();
            tmp = s.dir().to_path_buf();
        }
        assert!(
            !tmp.exists() && !out.exists(),
            "a dropped staging leaves nothing"
        );
        let s = Staging::begin(&out).unwrap();
        s.write("run.json", b"{}").unwrap();
        s.commit().unwrap();
        assert!(out.join("run.json").is_file() && out.join(MARKER).is_file());
        // A finished report may be replaced.
        assert!(Staging::begin(&out).is_ok());
    }

    #[test]
    fn a_folder_with_run_json_and_other_files_is_never_touched() {
        // The old rule (any folder holding run.json is a report) deleted a thesis and a src/ with it.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("work");
        std::fs::create_dir_all(out.join("src")).unwrap();
        std::fs::write(out.join("run.json"), "{}").unwrap();
        std::fs::write(out.join("thesis.tex"), "chapter 1").unwrap();
        let err = Staging::begin(&out).unwrap_err();
        assert!(err.contains("did not write (src, thesis.tex)"), "{err}");
        // The 1:N charts are the tool's own (a rerun of `identify` replaces them); a CSV of that
        // name is not.
        assert!(is_report_file("implicated_sex_x_race.svg") && is_report_file("cmc_race.png"));
        assert!(!is_report_file("cmc_race.csv"));
        assert_eq!(
            std::fs::read_to_string(out.join("thesis.tex")).unwrap(),
            "chapter 1"
        );
        // Notes added to a real report later also stop a replacement, at commit time too.
        let rep = dir.path().join("rep");
        let s = Staging::begin(&rep).unwrap();
        s.write("run.json", b"{}").unwrap();
        s.commit().unwrap();
        let s = Staging::begin(&rep).unwrap();
        std::fs::write(rep.join("notes.txt"), "mine").unwrap();
        assert!(s.commit().unwrap_err().contains("notes.txt"));
        assert!(rep.join("notes.txt").is_file() && rep.join("run.json").is_file());
    }

    #[test]
    fn replacing_keeps_the_old_report_until_the_new_one_is_in() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rep");
        let s = Staging::begin(&out).unwrap();
        s.write("groups.csv", b"old").unwrap();
        s.commit().unwrap();
        let s = Staging::begin(&out).unwrap();
        s.write("groups.csv", b"new").unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(out.join("groups.csv")).unwrap(), b"new");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["rep".to_string()], "no .old or .partial left");
    }

    #[test]
    fn leftovers_of_dead_runs_are_cleaned_but_not_foreign_lookalikes() {
        let dir = tempfile::tempdir().unwrap();
        // PID 4194304 is above Linux's maximum PID, so no such process exists.
        let dead = dir.path().join(".rep.partial-4194304");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(MARKER), MARKER_TEXT).unwrap();
        let lookalike = dir.path().join(".rep.old-4194305");
        std::fs::create_dir(&lookalike).unwrap();
        std::fs::write(lookalike.join("data.txt"), "not ours").unwrap();
        let s = Staging::begin(&dir.path().join("rep")).unwrap();
        assert!(!dead.exists(), "a dead run's partial folder is removed");
        assert!(
            lookalike.join("data.txt").is_file(),
            "a folder without the marker is kept"
        );
        drop(s);
    }

    #[test]
    fn out_may_not_be_the_current_folder_or_hold_an_input() {
        assert!(Staging::begin(Path::new("."))
            .unwrap_err()
            .contains("current folder"));
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data/manifest.csv");
        let err = check_not_input(&dir.path().join("data"), &[&data]).unwrap_err();
        assert!(err.contains("holds the input"), "{err}");
        assert!(check_not_input(&dir.path().join("out"), &[&data]).is_ok());
    }
}
