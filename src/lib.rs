//! # facebias
//!
//! A local benchmark of demographic differentials in face recognition: it runs ONNX face-embedding
//! models over labelled face datasets and reports false-match (FMR) and false-non-match (FNMR) rates per
//! demographic group at one global threshold, NIST FRVT Part 3 style.
//!
//! ## Module map
//!
//! Data flows one way through modules named after the pipeline stages; each stage takes and returns
//! plain data and has tests of its own.
//!
//! | stage | module | in → out |
//! |---|---|---|
//! | dataset | [`manifest`] ([`manifest::adapters`], [`manifest::protocol`]) | CSV manifest or a published layout → [`manifest::Manifest`] (samples: path, subject, attributes) + the dataset's own [`manifest::protocol::PairList`] |
//! | preprocessing | [`preprocess`] | image file → RGB → [`preprocess::detect::Face`] (box + 5 landmarks) → aligned crop → model input tensor |
//! | embedding | [`embed`] ([`runtime`] loads ONNX Runtime) | [`embed::spec::ModelSpec`] + samples → [`embed::extract::ExtractOutput`] (L2-normalised embeddings, failures to enrol), cached in [`embed::cache`] |
//! | comparison | [`compare`] | embeddings + group and subject ids → mated scores + non-mated [`compare::CellHistograms`] per group pair |
//! | metrics | [`metrics`] | [`metrics::Comparisons`] (saved as `comparisons.bin` by [`metrics::store`]) → [`metrics::analysis::Analysis`]: thresholds, per-group and cross-group rates, summary metrics, bootstrap intervals, policies |
//! | report | [`report`] | `Analysis` → CSV, NPY, charts ([`report::charts`]), pages ([`report::page`]), `run.json` ([`report::record`]), terminal output ([`report::console`]) |
//!
//! Above the stages, [`commands`] has one file per subcommand, each validating its arguments into
//! configurations and calling the stages in order; [`cli`] declares the arguments and `main.rs` only
//! parses them and calls [`commands::execute`].
//!
//! ## Where new things go
//!
//! - A new command: a file in `src/commands/`, its arguments in [`cli`], one arm in
//!   [`commands::execute`]; steps it shares with others go to [`commands::common`].
//! - A new protocol (e.g. 1:N identification): its comparison pass in [`compare`], its rates in a new
//!   [`metrics`] module, its charts and tables in [`report`], its command in [`commands`] — not in an
//!   existing command's file.
//! - A new dataset layout: an adapter in [`manifest::adapters`]. A new field of `run.json`:
//!   [`report::record`].

pub mod cli;
pub mod commands;
pub mod compare;
pub mod embed;
pub mod manifest;
pub mod metrics;
pub mod preprocess;
pub mod progress;
pub mod report;
pub mod runtime;
