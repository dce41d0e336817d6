//! The convergence curve as an SVG: the fraction of live nodes whose view is
//! correct, over virtual time, with the timeline's operations marked.

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

/// Draws `samples` ((virtual seconds, fraction)) with vertical lines at
/// `marks` ((virtual seconds, label)) into an SVG file at `path`.
pub fn write_svg(
    path: &Path,
    title: &str,
    samples: &[(f64, f64)],
    marks: &[(f64, String)],
) -> Result<(), PlotError> {
    write_curves(path, title, &[("correct views", samples)], marks)
}

/// Series colours, in order.
const COLOURS: [RGBColor; 4] = [
    RGBColor(30, 90, 200),
    RGBColor(230, 130, 20),
    RGBColor(40, 160, 60),
    RGBColor(120, 60, 170),
];

/// Draws several convergence curves (label, samples) on one chart, e.g.
/// the same seed with sync on and off, with vertical lines at `marks`.
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
            .y_desc("nodes with a correct view")
            .y_label_formatter(&|y: &f64| format!("{:.0}%", y * 100.0))
            .draw()
            .map_err(|e| err(&e))?;
        for (at, label) in marks {
            chart
                .draw_series(LineSeries::new(
                    [(*at, 0.0), (*at, 1.02)],
                    RGBColor(200, 80, 80).stroke_width(1),
                ))
                .map_err(|e| err(&e))?
                .label(label.clone())
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(200, 80, 80)));
        }
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
        if marks.len() <= 12 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(())
}
