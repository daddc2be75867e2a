//! `facebias bench-pipeline`: throughput of the whole extraction stage (decode + detect + align +
//! embed) over repeated runs with the cache off, summarised by the median run.

use serde::Serialize;

use super::extract::ExtractTimings;

/// Result of `facebias bench-pipeline`.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineBench {
    /// Images per repetition.
    pub images: usize,
    /// Where the embedding model ran (ONNX Runtime execution provider).
    pub execution_provider: String,
    /// Parallel workers.
    pub threads: usize,
    /// Seconds per repetition.
    pub seconds: Vec<f64>,
    /// Median seconds.
    pub median_seconds: f64,
    /// Images per second at the median.
    pub images_per_second: f64,
    /// Summed stage times of the median repetition.
    pub stages: ExtractTimings,
    /// Failures to enrol in the run.
    pub failures: usize,
}

/// One repetition: wall seconds, stage times, failures to enrol.
pub type Repetition = (f64, ExtractTimings, usize);

impl PipelineBench {
    /// Summarises repetitions over `images` images: runs sorted by time, the median one's stages.
    pub fn from_runs(
        images: usize,
        execution_provider: String,
        threads: usize,
        mut runs: Vec<Repetition>,
    ) -> PipelineBench {
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let seconds: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let (median, stages, failures) = runs[runs.len() / 2].clone();
        PipelineBench {
            images,
            execution_provider,
            threads,
            seconds,
            median_seconds: median,
            images_per_second: images as f64 / median,
            stages,
            failures,
        }
    }
}
