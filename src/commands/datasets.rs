//! `facebias datasets`: the adapters, or one dataset's comparison counts per group (before any model
//! runs).

use anyhow::{anyhow, Result};

use crate::cli::DatasetsArgs;
use crate::manifest::adapters;
use crate::metrics::groups::{self, Partition};
use crate::report::console;

/// `facebias datasets`.
pub fn datasets(args: &DatasetsArgs) -> Result<()> {
    let Some(path) = &args.dataset else {
        console::print_adapters();
        return Ok(());
    };
    let adapted = adapters::load(path, args.adapter, args.attributes.as_deref(), true)?;
    let m = &adapted.manifest;
    let subjects = m.subject_ids();
    let partition = Partition::new(&m.attributes, &m.samples).map_err(|e| anyhow!(e))?;
    let counts = groups::counts(&partition, &subjects);
    let t = groups::totals(&subjects);
    if args.json {
        let v = serde_json::json!({
            "adapter": adapted.adapter, "images": t.images, "subjects": t.subjects,
            "subjects_with_pairs": t.subjects_with_pairs,
            "mated_comparisons": t.mated_comparisons, "nonmated_comparisons": t.nonmated_comparisons,
            "attributes": m.attributes, "warnings": m.warnings, "groups": counts,
            "protocol": adapted.pairs.as_ref().map(|p| serde_json::json!({"name": p.name, "pairs": p.pairs.len(), "mated": p.pairs.iter().filter(|x| x.mated).count(), "missing": p.missing})),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    console::print_dataset_counts(path, &adapted, &t, &counts);
    Ok(())
}
