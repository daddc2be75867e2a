//! # facebias
//!
//! A local benchmark of demographic differentials in face recognition: it runs ONNX face-embedding
//! models over labelled face datasets and reports false-match (FMR) and false-non-match (FNMR) rates per
//! demographic group at one global threshold, NIST FRVT Part 3 style.
//!
//! Data flows one way through modules named after the pipeline stages:
//!
//! | stage | module | in → out |
//! |---|---|---|
//! | dataset | [`manifest`] | CSV manifest → validated [`manifest::Manifest`] |
//! | preprocessing | [`preprocess`] | image file → RGB → face + landmarks → aligned crop → tensor |
//! | embedding | [`embed`] | tensors → L2-normalised embeddings (ONNX Runtime via [`runtime`]), cached |
//! | comparison | [`compare`] | embeddings + group ids → mated scores + non-mated score histograms per group pair |
//! | metrics | [`metrics`] | histograms → global thresholds, per-group and cross-group rates, summary metrics, subject-bootstrap intervals |
//! | report | [`report`] | results → CSV, NPY, JSON, charts |
//!
//! [`pipeline`] strings the stages together for the CLI ([`cli`]).

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
