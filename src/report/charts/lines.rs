//! Line charts of one rate against a count on a log10 x axis (gallery size N, rank k), one line per
//! group in its colour, marker and dash, with the legend beside the plot: the 1:N FPIR-against-N
//! and CMC charts.

use std::path::Path;

use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::curves::{group_line, line_color, plot_and_legend};
use super::{
    draw_markers, draw_markers_as, err, legend_panel, legend_width, log_label, render, style,
    LegendEntry,
};

/// How an axis writes its tick labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickFormat {
    /// Whole numbers (`400`, `10690`).
    Integer,
    /// Mantissa and exponent (`2e-3`), for log10 rate axes.
    Exponent,
    /// Fixed-point with this many decimals (`0.85`).
    Fixed(usize),
}

impl TickFormat {
    fn label(self, v: f64) -> String {
        match self {
            TickFormat::Integer => format!("{}", v.round()),
            TickFormat::Exponent => log_label(&v),
            TickFormat::Fixed(d) => format!("{v:.d$}"),
        }
    }
}

/// One axis of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// What the axis shows.
    pub desc: String,
    /// The range drawn, `(low, high)`.
    pub range: (f64, f64),
    /// Labelled ticks on a log10 axis; on a linear one only their number counts (plotters puts at
    /// most that many labels at round values; none: its default).
    pub ticks: Vec<f64>,
    /// How the tick labels are written.
    pub format: TickFormat,
}

/// One group's line.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLine {
    /// Legend label.
    pub group: String,
    /// Style index ([`style`]): the group's place in its grouping.
    pub style: usize,
    /// The measured points, x rising, drawn as a line.
    pub points: Vec<(f64, f64)>,
    /// Where the group's marker is drawn (all or some of `points`).
    pub markers: Vec<(f64, f64)>,
    /// A companion curve in the same colour, finely dashed (a prediction); may be empty.
    pub companion: Vec<(f64, f64)>,
    /// The x values at which the measured rate is 0: hollow markers on the foot of a log10 y axis,
    /// which cannot show 0 (the groups' zeros at one x side by side).
    pub zeros: Vec<f64>,
    /// Drawn faded: too little data.
    pub faded: bool,
}

/// A rate against a count: log10 x, log10 or linear y.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title.
    pub title: String,
    /// The x axis (always log10).
    pub x: Axis,
    /// The y axis.
    pub y: Axis,
    /// Whether the y axis is log10 (else linear).
    pub y_log: bool,
    /// One line per group, in group order.
    pub lines: Vec<GroupLine>,
}

/// Writes a line chart as `<stem>.png` and `<stem>.svg`.
pub fn render_line_chart(stem: &Path, c: &LineChart) -> Result<(), String> {
    render(
        stem,
        (900 + legend_width(c.lines.len()), 640),
        |r| draw_line_chart(r, c),
        |r| draw_line_chart(r, c),
    )
}

/// Draws a line chart.
pub fn draw_line_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &LineChart,
) -> Result<(), String> {
    let [plot, side] = plot_and_legend(root, &c.title, c.lines.len())?;
    let mut builder = ChartBuilder::on(&plot);
    builder
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60);
    let x = (c.x.range.0..c.x.range.1)
        .log_scale()
        .with_key_points(c.x.ticks.clone());
    let (y0, y1) = c.y.range;
    if c.y_log {
        let y = (y0..y1).log_scale().with_key_points(c.y.ticks.clone());
        let mut chart = builder.build_cartesian_2d(x, y).map_err(err)?;
        // The zeros sit a little above the foot, so that their markers stay inside the plot.
        draw_lines(&mut chart, c, y0 * (y1 / y0).powf(0.015))?;
    } else {
        let mut chart = builder.build_cartesian_2d(x, y0..y1).map_err(err)?;
        draw_lines(&mut chart, c, y0)?;
    }
    let entries: Vec<LegendEntry> = c
        .lines
        .iter()
        .map(|l| (l.group.clone(), l.style, l.faded))
        .collect();
    legend_panel(&side, &entries)
}

/// The mesh and every group's line, companion, markers and zeros (at height `zero_y`).
fn draw_lines<DB, X, Y>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    c: &LineChart,
    zero_y: f64,
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (fx, fy) = (c.x.format, c.y.format);
    let x_label = move |v: &f64| fx.label(*v);
    let y_label = move |v: &f64| fy.label(*v);
    chart
        .configure_mesh()
        .x_desc(c.x.desc.as_str())
        .y_desc(c.y.desc.as_str())
        .y_labels(if c.y.ticks.is_empty() {
            10
        } else {
            c.y.ticks.len()
        })
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    let width = chart.plotting_area().dim_in_pixel().0.max(1) as f64;
    let zeros = side_by_side(c, 12.0 / width);
    for (l, zeros) in c.lines.iter().zip(zeros) {
        let col = line_color(l.style, l.faded);
        if !l.companion.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(
                    l.companion.clone(),
                    5,
                    4,
                    col.stroke_width(2),
                ))
                .map_err(err)?;
        }
        group_line(chart, l.points.clone(), l.style, col)?;
        let m = style(l.style).marker;
        draw_markers(chart, &l.markers, m, 5, col)?;
        let zeros: Vec<(f64, f64)> = zeros.into_iter().map(|x| (x, zero_y)).collect();
        draw_markers_as(chart, &zeros, m, 5, col, false)?;
    }
    Ok(())
}

/// Where each line's zeros are drawn: the groups with a zero at one x side by side, centred on it,
/// `step` of the (log) x axis's width apart, so that none hides another.
fn side_by_side(c: &LineChart, step: f64) -> Vec<Vec<f64>> {
    let span = (c.x.range.1 / c.x.range.0).log10();
    c.lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.zeros
                .iter()
                .map(|&x| {
                    let with = |m: &GroupLine| m.zeros.contains(&x);
                    let k = c.lines.iter().filter(|m| with(m)).count() as f64;
                    let j = c.lines[..i].iter().filter(|m| with(m)).count() as f64;
                    x * 10f64.powf((j - (k - 1.0) / 2.0) * step * span)
                })
                .collect()
        })
        .collect()
}
