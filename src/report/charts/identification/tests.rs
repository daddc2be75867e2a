use super::*;
use crate::metrics::identification::curves::{CmcRow, DetCurve, GrowthRow};
use crate::metrics::identification::implicated::Row as Implicated;

const T: FpirThreshold = FpirThreshold {
    target: 0.01,
    t: 0.52,
    false_positives: 4,
    searches: 400,
};

/// One row of `identification.csv`: `errors` of `searches`, interval ±0.01 (floored at 0).
fn row(attr: &str, group: &str, metric: Metric, target: Option<f64>, e: usize, n: usize) -> Row {
    let rate = e as f64 / n as f64;
    Row {
        attribute: attr.into(),
        group: group.into(),
        gallery_size: 1000,
        metric,
        rank: 1,
        threshold: target.map(|_| T.t),
        target_fpir: target,
        searches: n,
        errors: e,
        rate: Some(rate),
        ci_low: Some((rate - 0.01).max(0.0)),
        ci_high: Some(rate + 0.01),
        flag: if n < 300 { "insufficient" } else { "" },
    }
}

/// A hand-made analysis: grouping `race` with groups a (200 searches: insufficient for FPIR 0.01)
/// and b; gallery sizes 100 and 1000; L = 5; one threshold (FPIR 0.01). Group a has no false
/// positive at N = 100 (a zero on the log axis); candidates come from a, b and `unlabelled`.
fn analysis() -> Analysis {
    let mut rows = Vec::new();
    for (grp, fp, fnr, n) in [("a", 3, 40, 200), ("b", 4, 30, 400)] {
        rows.push(row("race", grp, Metric::Fnir, None, fnr / 2, n));
        rows.push(row("race", grp, Metric::Fnir, Some(0.01), fnr, n));
        rows.push(row("race", grp, Metric::Fpir, Some(0.01), fp, n));
    }
    let cmc = ["a", "b"]
        .iter()
        .flat_map(|grp| {
            (1..=5).map(move |k| CmcRow {
                attribute: "race".into(),
                group: grp.to_string(),
                gallery_size: 1000,
                rank: k,
                searches: 100,
                hits: 80 + 3 * k,
                rate: Some((80 + 3 * k) as f64 / 100.0),
            })
        })
        .collect();
    let growth = [("a", 100, 0), ("a", 1000, 3), ("b", 100, 1), ("b", 1000, 4)]
        .iter()
        .map(|&(grp, n, fp)| GrowthRow {
            attribute: "race".into(),
            group: grp.into(),
            target_fpir: 0.01,
            threshold: T.t,
            gallery_size: n,
            searches: 300,
            false_positives: fp,
            fpir: Some(fp as f64 / 300.0),
            fmr: Some(1e-5),
            comparisons: 300_000,
            false_matches: 3,
            fmr_saturated: false,
            predicted_fpir: Some(n as f64 * 1e-5),
        })
        .collect();
    let implicated = [
        ("a", "a", 2),
        ("a", "b", 1),
        ("b", "unlabelled", 1),
        ("b", "a", 0),
    ]
    .iter()
    .map(|&(s, c, k)| Implicated {
        attribute: "race".into(),
        search_group: s.into(),
        candidate_group: c.into(),
        mode: "above_threshold",
        target_fpir: Some(0.01),
        threshold: Some(T.t),
        gallery_size: 1000,
        candidates: k,
        share: Some(if s == "a" { k as f64 / 3.0 } else { k as f64 }),
        gallery_share: 0.3,
    })
    .collect();
    let curve = |g: &str| DetCurve {
        group: g.into(),
        points: vec![(0.0025, 0.3), (0.01, 0.2), (0.1, 0.1)],
    };
    Analysis {
        sizes: vec![100, 1000],
        l: 5,
        thresholds: vec![T],
        left_out: Vec::new(),
        calibration: "on all".into(),
        rows,
        summaries: Vec::new(),
        cmc,
        growth,
        implicated,
        det: vec![("race".into(), vec![curve("a"), curve("b")])],
    }
}

/// Whether `<stem>.png` is a PNG and `<stem>.svg` an SVG, both non-empty.
fn written(dir: &Path, stem: &str) -> bool {
    let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap_or_default();
    let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap_or_default();
    png.starts_with(b"\x89PNG") && png.len() > 1000 && svg.contains("<svg")
}

#[test]
fn every_chart_of_a_grouping_is_written_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let files = render(dir.path(), &analysis()).unwrap();
    let stems: Vec<&str> = files.iter().map(|f| f.stem.as_str()).collect();
    assert_eq!(
        stems,
        [
            "fpir_vs_n_race",
            "det_1n_race",
            "cmc_race",
            "implicated_race",
            "dots_1n_race"
        ]
    );
    for f in &files {
        assert!(written(dir.path(), &f.stem), "{} written", f.stem);
        assert_eq!(f.grouping, "race");
        assert!(f.caption.contains("N = 1000"), "{}", f.caption);
    }
    assert!(files[0].caption.contains("T = 0.5200 (FPIR 0.01)"));
}

#[test]
fn charts_without_anything_to_draw_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    // No candidate above T, no DET point, one gallery size: only the CMC and the dots remain.
    let mut a = analysis();
    a.implicated.iter_mut().for_each(|r| r.candidates = 0);
    a.det[0].1.iter_mut().for_each(|c| c.points.clear());
    a.sizes = vec![1000];
    let files = render(dir.path(), &a).unwrap();
    let stems: Vec<&str> = files.iter().map(|f| f.stem.as_str()).collect();
    assert_eq!(stems, ["cmc_race", "dots_1n_race"]);
    assert!(!dir.path().join("implicated_race.png").exists());
    // Without a threshold, the charts at T go too.
    let mut a = analysis();
    a.thresholds.clear();
    let files = render(dir.path(), &a).unwrap();
    let stems: Vec<&str> = files.iter().map(|f| f.stem.as_str()).collect();
    assert_eq!(stems, ["det_1n_race", "cmc_race"]);
    // No gallery at all: nothing.
    a.sizes.clear();
    assert!(render(dir.path(), &a).unwrap().is_empty());
}

#[test]
fn intersections_get_sanitised_stems() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = analysis();
    for r in &mut a.rows {
        r.attribute = "sex×race".into();
    }
    let files = render(dir.path(), &a).unwrap();
    // Only the rows moved: the CMC, growth, DET and implicated rows still say `race`.
    let stems: Vec<&str> = files.iter().map(|f| f.stem.as_str()).collect();
    assert_eq!(stems, ["dots_1n_sex_x_race"]);
    assert!(written(dir.path(), "dots_1n_sex_x_race"));
}

#[test]
fn implicated_columns_put_the_searchers_groups_first_and_lump_the_rest() {
    let a = analysis();
    let mut extra: Vec<Implicated> = Vec::new();
    for (c, k) in [("Others", 1), ("female|caucasian", 0), ("eastasian", 0)] {
        let mut r = a.implicated[0].clone();
        (r.candidate_group, r.candidates) = (c.into(), k);
        extra.push(r);
    }
    let rows: Vec<&Implicated> = a.implicated.iter().chain(&extra).collect();
    let groups = vec!["b".to_string(), "a".to_string()];
    // Searcher groups in group order, then the others with a candidate (`unlabelled` last), then
    // the two without a candidate in one column.
    let cols = super::implicated::columns(&rows, &groups);
    let labels: Vec<&str> = cols.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        labels,
        ["b", "a", "Others", "unlabelled", "2 more, none above T"]
    );
    assert_eq!(cols[4].members, ["female|caucasian", "eastasian"]);
    // 40 groups with a candidate each: 24 columns, the last lumping the 16 + 1 left over.
    let many: Vec<Implicated> = (0..40)
        .map(|i| {
            let mut r = a.implicated[0].clone();
            (r.candidate_group, r.candidates) = (format!("g{i:02}"), 1 + i % 3);
            r
        })
        .collect();
    let rows: Vec<&Implicated> = many.iter().collect();
    let cols = super::implicated::columns(&rows, &groups);
    assert_eq!(cols.len(), super::implicated::MAX_COLUMNS);
    assert_eq!(cols.last().unwrap().label, "17 more groups");
}

#[test]
fn gallery_size_labels_do_not_collide() {
    // BFW + distractors: 10000 and 10690 would overprint; the largest is kept.
    assert_eq!(
        curves::spaced(&[400, 1000, 2000, 5000, 10000, 10690]),
        [400.0, 1000.0, 2000.0, 5000.0, 10690.0]
    );
    assert_eq!(curves::spaced(&[16]), [16.0]);
}
