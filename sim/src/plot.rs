//! The convergence curve as an SVG: the fraction of live nodes whose view is
//! correct at that moment (every live node; during a partition, the live
//! nodes on the node's own side), over virtual time, with the timeline's
//! operations marked by labelled vertical lines.

use std::path::Path;

use plotters::prelude::*;

/// Why the plot could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing plot {path}: {message}")]
pub struct PlotError {
    /// The file the plot was meant for.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// The curve's name in the legend: what a correct view is.
pub const CURVE_LABEL: &str = "correct views (during a partition: the node's own side)";

/// Draws `samples` ((virtual seconds, fraction)) with vertical lines at
/// `marks` ((virtual seconds, label)) into an SVG file at `path`.
pub fn write_svg(
    path: &Path,
    title: &str,
    samples: &[(f64, f64)],
    marks: &[(f64, String)],
) -> Result<(), PlotError> {
    write_curves(path, title, &[(CURVE_LABEL, samples)], marks)
}

/// Marks beyond this many are drawn as lines without their labels.
const LABELLED_MARKS: usize = 12;

/// The colour of the marks' lines and labels.
const MARK_COLOUR: RGBColor = RGBColor(200, 80, 80);

/// Labels stack downwards from 90% in at most this many rows: each goes
/// into the highest row where it overlaps no other label.
const LABEL_ROWS: usize = 6;

/// The labels' font size (plotters draws it at about 0.8 of this in SVG).
const LABEL_FONT: u32 = 14;

/// A label's geometry in pixels: the width of one character (rounded up),
/// the height of one line, and the padding around the text.
const CHAR_PX: i32 = 7;
const LINE_PX: i32 = 16;
const PAD_PX: i32 = 4;

/// Series colours, in order.
const COLOURS: [RGBColor; 4] = [
    RGBColor(30, 90, 200),
    RGBColor(230, 130, 20),
    RGBColor(40, 160, 60),
    RGBColor(120, 60, 170),
];

/// Draws several convergence curves (label, samples) on one chart, e.g.
/// the same seed with sync on and off, with dashed vertical lines at
/// `marks`, each labelled in a box beside its line (a label may hold
/// several lines; up to 12 marks are labelled, in rows stacked downwards
/// so that neighbours do not overlap).
pub fn write_curves(
    path: &Path,
    title: &str,
    curves: &[(&str, &[(f64, f64)])],
    marks: &[(f64, String)],
) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let x_max = curves
        .iter()
        .filter_map(|(_, s)| s.last().map(|s| s.0))
        .fold(1.0, f64::max)
        .max(marks.iter().map(|m| m.0).fold(0.0, f64::max))
        .max(0.1);
    {
        let root = SVGBackend::new(path, (960, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..1.02)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_desc("live nodes with a correct view")
            .y_label_formatter(&|y: &f64| format!("{:.0}%", y * 100.0))
            .draw()
            .map_err(|e| err(&e))?;
        for (k, (label, samples)) in curves.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    samples.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        // The marks over the curves, so a line is never hidden by a curve's
        // own step at the same instant.
        for (at, _) in marks {
            chart
                .draw_series(DashedLineSeries::new(
                    [(*at, 0.0), (*at, 1.02)],
                    6,
                    4,
                    MARK_COLOUR.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
        }
        if marks.len() <= LABELLED_MARKS {
            let (right, _) = chart.backend_coord(&(x_max, 0.0));
            let (_, top) = chart.backend_coord(&(0.0, 0.9));
            let lines_per_label = marks.iter().map(|(_, l)| l.lines().count()).max();
            let row_height = lines_per_label.unwrap_or(1) as i32 * LINE_PX + 2 * PAD_PX;
            // Where each row of labels is taken up to, from the left.
            let mut rows: Vec<i32> = Vec::new();
            for (at, label) in marks {
                let lines: Vec<&str> = label.lines().collect();
                let chars = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
                let width = chars as i32 * CHAR_PX + 2 * PAD_PX;
                let height = lines.len() as i32 * LINE_PX + 2 * PAD_PX;
                let (x, _) = chart.backend_coord(&(*at, 0.0));
                // Right of its line, or left of it where the chart ends.
                let left = if x + 4 + width <= right {
                    x + 4
                } else {
                    x - 4 - width
                };
                // The first row with room, else a new one, else the row
                // that frees up first.
                let row = match rows.iter().position(|&end| end + PAD_PX <= left) {
                    Some(r) => r,
                    None if rows.len() < LABEL_ROWS => {
                        rows.push(i32::MIN);
                        rows.len() - 1
                    }
                    None => (0..rows.len()).min_by_key(|&r| rows[r]).unwrap_or(0),
                };
                rows[row] = left + width;
                let row_top = top + row as i32 * (row_height + PAD_PX);
                let corners = [(left, row_top), (left + width, row_top + height)];
                root.draw(&Rectangle::new(corners, WHITE.mix(0.85).filled()))
                    .map_err(|e| err(&e))?;
                root.draw(&Rectangle::new(corners, MARK_COLOUR.stroke_width(1)))
                    .map_err(|e| err(&e))?;
                for (j, line) in lines.iter().enumerate() {
                    root.draw(&Text::new(
                        (*line).to_owned(),
                        (left + PAD_PX, row_top + PAD_PX + j as i32 * LINE_PX),
                        ("sans-serif", LABEL_FONT).into_font().color(&MARK_COLOUR),
                    ))
                    .map_err(|e| err(&e))?;
                }
            }
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(())
}
