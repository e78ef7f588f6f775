//! Plotly figures for the `report_*` methods: each builder checks its data against its options
//! and returns `{"data": [traces…], "layout": {…}}`, the JSON plotly.js draws as is.
//!
//! Conventions (those of ClearML's reports): the layout's `title` is the plot title, with the
//! comment under it as `<br><sup>comment</sup>`; axis titles go to `layout.xaxis.title` (3-D
//! plots: `layout.scene.*axis.title`); `extra_layout` is merged into the layout last (objects
//! merged key by key, anything else replaced) and `data_args` into every trace.

use std::fmt;

use serde_json::{Map, Value, json};

use crate::error::TrackingError;

/// How several bar series share the axis (plotly's `barmode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BarMode {
    /// Side by side (ClearML's default).
    #[default]
    Group,
    /// On top of each other.
    Stack,
    /// Stacked, negatives below the axis.
    Relative,
}

impl BarMode {
    /// plotly's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Stack => "stack",
            Self::Relative => "relative",
        }
    }
}

/// How scatter points are drawn (plotly's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScatterMode {
    /// Lines between points.
    Lines,
    /// Points only.
    Markers,
    /// Both.
    LinesMarkers,
}

impl ScatterMode {
    /// plotly's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lines => "lines",
            Self::Markers => "markers",
            Self::LinesMarkers => "lines+markers",
        }
    }
}

impl fmt::Display for ScatterMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of `report_histogram` and `report_vector`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramOptions {
    /// The iteration (default 0).
    pub iteration: Option<i64>,
    /// One legend label per row of values (default: the series name for one row, `series
    /// <i>` otherwise).
    pub labels: Vec<String>,
    /// One x label per bar (default 0, 1, 2, …).
    pub xlabels: Vec<String>,
    /// The x-axis title.
    pub xaxis: Option<String>,
    /// The y-axis title.
    pub yaxis: Option<String>,
    /// How rows share the axis (default group).
    pub mode: BarMode,
    /// Merged into every bar trace.
    pub data_args: Option<Map<String, Value>>,
    /// Merged into the layout.
    pub extra_layout: Option<Map<String, Value>>,
}

/// One line of `report_line_plot`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineSeries {
    /// The line's name (legend).
    pub name: String,
    /// Its points, `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// One hover label per point (optional).
    pub labels: Vec<String>,
}

/// Options of `report_line_plot`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlotOptions {
    /// The iteration (default 0).
    pub iteration: Option<i64>,
    /// The x-axis title.
    pub xaxis: Option<String>,
    /// The y-axis title.
    pub yaxis: Option<String>,
    /// How lines are drawn (default lines).
    pub mode: ScatterMode,
    /// Draw the x axis high to low.
    pub reverse_xaxis: bool,
    /// A comment shown under the title.
    pub comment: Option<String>,
    /// Merged into the layout.
    pub extra_layout: Option<Map<String, Value>>,
}

impl Default for LinePlotOptions {
    fn default() -> Self {
        Self {
            iteration: None,
            xaxis: None,
            yaxis: None,
            mode: ScatterMode::Lines,
            reverse_xaxis: false,
            comment: None,
            extra_layout: None,
        }
    }
}

/// Options of `report_scatter2d`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter2dOptions {
    /// The iteration (default 0).
    pub iteration: Option<i64>,
    /// The x-axis title.
    pub xaxis: Option<String>,
    /// The y-axis title.
    pub yaxis: Option<String>,
    /// One label per point, in order (optional).
    pub labels: Vec<String>,
    /// How points are drawn (default lines, as ClearML's `mode='line'`).
    pub mode: ScatterMode,
    /// A comment shown under the title.
    pub comment: Option<String>,
    /// Merged into the layout.
    pub extra_layout: Option<Map<String, Value>>,
}

impl Default for Scatter2dOptions {
    fn default() -> Self {
        Self {
            iteration: None,
            xaxis: None,
            yaxis: None,
            labels: Vec::new(),
            mode: ScatterMode::Lines,
            comment: None,
            extra_layout: None,
        }
    }
}

/// Options of `report_scatter3d`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter3dOptions {
    /// The iteration (default 0).
    pub iteration: Option<i64>,
    /// The x-axis title.
    pub xaxis: Option<String>,
    /// The y-axis title.
    pub yaxis: Option<String>,
    /// The z-axis title.
    pub zaxis: Option<String>,
    /// One label per point, in order (optional).
    pub labels: Vec<String>,
    /// How points are drawn (default markers).
    pub mode: ScatterMode,
    /// Fill under the points (plotly's `surfaceaxis: 2`, a surface over the x-y plane).
    pub fill: bool,
    /// A comment shown under the title.
    pub comment: Option<String>,
    /// Merged into the layout.
    pub extra_layout: Option<Map<String, Value>>,
}

impl Default for Scatter3dOptions {
    fn default() -> Self {
        Self {
            iteration: None,
            xaxis: None,
            yaxis: None,
            zaxis: None,
            labels: Vec::new(),
            mode: ScatterMode::Markers,
            fill: false,
            comment: None,
            extra_layout: None,
        }
    }
}

/// Options of `report_confusion_matrix` and `report_matrix` (a heat map).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatrixOptions {
    /// The iteration (default 0).
    pub iteration: Option<i64>,
    /// The x-axis title.
    pub xaxis: Option<String>,
    /// The y-axis title.
    pub yaxis: Option<String>,
    /// One label per column (optional).
    pub xlabels: Vec<String>,
    /// One label per row (optional).
    pub ylabels: Vec<String>,
    /// Put (0, 0) at the top left (default: bottom left).
    pub yaxis_reversed: bool,
    /// A comment shown under the title.
    pub comment: Option<String>,
    /// Merged into the layout.
    pub extra_layout: Option<Map<String, Value>>,
}

/// Options of `report_surface`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SurfaceOptions {
    /// The iteration (default 0).
    pub iteration: Option<i64>,
    /// The x-axis title.
    pub xaxis: Option<String>,
    /// The y-axis title.
    pub yaxis: Option<String>,
    /// The z-axis title.
    pub zaxis: Option<String>,
    /// One label per column (optional).
    pub xlabels: Vec<String>,
    /// One label per row (optional).
    pub ylabels: Vec<String>,
    /// The camera position, `(x, y, z)` (default `(1, 1, 1)`).
    pub camera: Option<[f64; 3]>,
    /// A comment shown under the title.
    pub comment: Option<String>,
    /// Merged into the layout.
    pub extra_layout: Option<Map<String, Value>>,
}

/// The content of `report_table`: exactly one source, as ClearML requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    /// Rows of cells; the first row is the header.
    Rows(Vec<Vec<String>>),
    /// CSV text (RFC 4180: `,` separated, `"` quoted, `""` for a quote); the first record is the
    /// header.
    Csv(String),
    /// A local CSV file.
    CsvFile(std::path::PathBuf),
}

/// Options of `report_table`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOptions {
    /// The iteration (default 0).
    pub iteration: Option<i64>,
    /// Merged into the layout.
    pub extra_layout: Option<Map<String, Value>>,
}

fn invalid(title: &str, reason: String) -> TrackingError {
    TrackingError::InvalidPlot {
        title: title.to_owned(),
        reason,
    }
}

/// Merges `extra` into `target`: objects key by key, recursively; anything else replaced.
pub fn merge(target: &mut Map<String, Value>, extra: &Map<String, Value>) {
    for (key, value) in extra {
        match (target.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(more)) => merge(existing, more),
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn axis(title: Option<&String>) -> Map<String, Value> {
    let mut axis = Map::new();
    if let Some(title) = title {
        axis.insert("title".into(), json!(title));
    }
    axis
}

fn layout(title: &str, comment: Option<&String>) -> Map<String, Value> {
    let text = match comment {
        Some(comment) if !comment.is_empty() => format!("{title}<br><sup>{comment}</sup>"),
        _ => title.to_owned(),
    };
    let mut layout = Map::new();
    layout.insert("title".into(), json!(text));
    layout
}

fn figure(
    data: Vec<Value>,
    mut layout: Map<String, Value>,
    extra: Option<&Map<String, Value>>,
) -> Value {
    if let Some(extra) = extra {
        merge(&mut layout, extra);
    }
    json!({"data": data, "layout": layout})
}

fn check_labels(
    title: &str,
    what: &str,
    labels: &[String],
    expected: usize,
) -> Result<(), TrackingError> {
    if !labels.is_empty() && labels.len() != expected {
        return Err(invalid(
            title,
            format!("{} {what} for {expected} item(s)", labels.len()),
        ));
    }
    Ok(())
}

/// A bar chart: one trace per row of `values` (ClearML's `report_histogram`/`report_vector`; the
/// bars are given, not computed).
pub fn histogram(
    title: &str,
    series: &str,
    values: &[Vec<f64>],
    options: &HistogramOptions,
) -> Result<Value, TrackingError> {
    if values.is_empty() {
        return Err(invalid(title, "no values".into()));
    }
    check_labels(title, "labels", &options.labels, values.len())?;
    let mut data = Vec::with_capacity(values.len());
    for (i, row) in values.iter().enumerate() {
        check_labels(title, "xlabels", &options.xlabels, row.len())?;
        let name = match options.labels.get(i) {
            Some(label) => label.clone(),
            None if values.len() == 1 => series.to_owned(),
            None => format!("{series} {i}"),
        };
        let x: Value = if options.xlabels.is_empty() {
            json!((0..row.len()).collect::<Vec<_>>())
        } else {
            json!(options.xlabels)
        };
        let mut trace = Map::new();
        trace.insert("type".into(), json!("bar"));
        trace.insert("name".into(), json!(name));
        trace.insert("x".into(), x);
        trace.insert("y".into(), json!(row));
        if let Some(args) = &options.data_args {
            merge(&mut trace, args);
        }
        data.push(Value::Object(trace));
    }
    let mut layout = layout(title, None);
    layout.insert("xaxis".into(), Value::Object(axis(options.xaxis.as_ref())));
    layout.insert("yaxis".into(), Value::Object(axis(options.yaxis.as_ref())));
    layout.insert("barmode".into(), json!(options.mode.as_str()));
    Ok(figure(data, layout, options.extra_layout.as_ref()))
}

/// Lines, one trace per series (ClearML's `report_line_plot`).
pub fn line_plot(
    title: &str,
    series: &[LineSeries],
    options: &LinePlotOptions,
) -> Result<Value, TrackingError> {
    if series.is_empty() {
        return Err(invalid(title, "no series".into()));
    }
    let mut data = Vec::with_capacity(series.len());
    for line in series {
        check_labels(title, "labels", &line.labels, line.points.len())?;
        let mut trace = json!({
            "type": "scatter",
            "mode": options.mode.as_str(),
            "name": line.name,
            "x": line.points.iter().map(|p| p.0).collect::<Vec<_>>(),
            "y": line.points.iter().map(|p| p.1).collect::<Vec<_>>(),
        });
        if !line.labels.is_empty() {
            trace["text"] = json!(line.labels);
        }
        data.push(trace);
    }
    let mut layout = layout(title, options.comment.as_ref());
    let mut xaxis = axis(options.xaxis.as_ref());
    if options.reverse_xaxis {
        xaxis.insert("autorange".into(), json!("reversed"));
    }
    layout.insert("xaxis".into(), Value::Object(xaxis));
    layout.insert("yaxis".into(), Value::Object(axis(options.yaxis.as_ref())));
    Ok(figure(data, layout, options.extra_layout.as_ref()))
}

/// A 2-D scatter of one series (ClearML's `report_scatter2d`).
pub fn scatter2d(
    title: &str,
    series: &str,
    points: &[(f64, f64)],
    options: &Scatter2dOptions,
) -> Result<Value, TrackingError> {
    check_labels(title, "labels", &options.labels, points.len())?;
    let mut trace = json!({
        "type": "scatter",
        "mode": options.mode.as_str(),
        "name": series,
        "x": points.iter().map(|p| p.0).collect::<Vec<_>>(),
        "y": points.iter().map(|p| p.1).collect::<Vec<_>>(),
    });
    if !options.labels.is_empty() {
        trace["text"] = json!(options.labels);
    }
    let mut layout = layout(title, options.comment.as_ref());
    layout.insert("xaxis".into(), Value::Object(axis(options.xaxis.as_ref())));
    layout.insert("yaxis".into(), Value::Object(axis(options.yaxis.as_ref())));
    Ok(figure(vec![trace], layout, options.extra_layout.as_ref()))
}

/// A 3-D scatter of one series (ClearML's `report_scatter3d`).
pub fn scatter3d(
    title: &str,
    series: &str,
    points: &[[f64; 3]],
    options: &Scatter3dOptions,
) -> Result<Value, TrackingError> {
    check_labels(title, "labels", &options.labels, points.len())?;
    let mut trace = json!({
        "type": "scatter3d",
        "mode": options.mode.as_str(),
        "name": series,
        "x": points.iter().map(|p| p[0]).collect::<Vec<_>>(),
        "y": points.iter().map(|p| p[1]).collect::<Vec<_>>(),
        "z": points.iter().map(|p| p[2]).collect::<Vec<_>>(),
    });
    if !options.labels.is_empty() {
        trace["text"] = json!(options.labels);
    }
    if options.fill {
        trace["surfaceaxis"] = json!(2);
    }
    let mut layout = layout(title, options.comment.as_ref());
    layout.insert(
        "scene".into(),
        json!({
            "xaxis": axis(options.xaxis.as_ref()),
            "yaxis": axis(options.yaxis.as_ref()),
            "zaxis": axis(options.zaxis.as_ref()),
        }),
    );
    Ok(figure(vec![trace], layout, options.extra_layout.as_ref()))
}

/// Checks that `matrix` is a non-empty rectangle and its labels fit; returns the column count.
fn check_matrix(
    title: &str,
    matrix: &[Vec<f64>],
    xlabels: &[String],
    ylabels: &[String],
) -> Result<usize, TrackingError> {
    let columns = matrix
        .first()
        .map(Vec::len)
        .ok_or_else(|| invalid(title, "the matrix has no rows".into()))?;
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, r)| r.len() != columns) {
        return Err(invalid(
            title,
            format!(
                "the matrix is ragged: row {i} has {} value(s), row 0 has {columns}",
                row.len()
            ),
        ));
    }
    check_labels(title, "xlabels", xlabels, columns)?;
    check_labels(title, "ylabels", ylabels, matrix.len())?;
    Ok(columns)
}

/// A heat map (ClearML's `report_confusion_matrix` and `report_matrix`): `matrix[row][column]`.
pub fn heatmap(
    title: &str,
    series: &str,
    matrix: &[Vec<f64>],
    options: &MatrixOptions,
) -> Result<Value, TrackingError> {
    check_matrix(title, matrix, &options.xlabels, &options.ylabels)?;
    let mut trace = json!({"type": "heatmap", "name": series, "z": matrix});
    if !options.xlabels.is_empty() {
        trace["x"] = json!(options.xlabels);
    }
    if !options.ylabels.is_empty() {
        trace["y"] = json!(options.ylabels);
    }
    let mut layout = layout(title, options.comment.as_ref());
    layout.insert("xaxis".into(), Value::Object(axis(options.xaxis.as_ref())));
    let mut yaxis = axis(options.yaxis.as_ref());
    if options.yaxis_reversed {
        yaxis.insert("autorange".into(), json!("reversed"));
    }
    layout.insert("yaxis".into(), Value::Object(yaxis));
    Ok(figure(vec![trace], layout, options.extra_layout.as_ref()))
}

/// A 3-D surface (ClearML's `report_surface`): `matrix[row][column]` is the height.
pub fn surface(
    title: &str,
    series: &str,
    matrix: &[Vec<f64>],
    options: &SurfaceOptions,
) -> Result<Value, TrackingError> {
    check_matrix(title, matrix, &options.xlabels, &options.ylabels)?;
    let mut trace = json!({"type": "surface", "name": series, "z": matrix});
    if !options.xlabels.is_empty() {
        trace["x"] = json!(options.xlabels);
    }
    if !options.ylabels.is_empty() {
        trace["y"] = json!(options.ylabels);
    }
    let [x, y, z] = options.camera.unwrap_or([1.0, 1.0, 1.0]);
    let mut layout = layout(title, options.comment.as_ref());
    layout.insert(
        "scene".into(),
        json!({
            "xaxis": axis(options.xaxis.as_ref()),
            "yaxis": axis(options.yaxis.as_ref()),
            "zaxis": axis(options.zaxis.as_ref()),
            "camera": {"eye": {"x": x, "y": y, "z": z}},
        }),
    );
    Ok(figure(vec![trace], layout, options.extra_layout.as_ref()))
}

/// A table (ClearML's `report_table`): `rows[0]` is the header; plotly wants columns, so the
/// cells are transposed. Every row must have the header's width.
pub fn table(
    title: &str,
    rows: &[Vec<String>],
    options: &TableOptions,
) -> Result<Value, TrackingError> {
    let (header, body) = rows
        .split_first()
        .ok_or_else(|| invalid(title, "the table has no header row".into()))?;
    if header.is_empty() {
        return Err(invalid(title, "the header row is empty".into()));
    }
    let mut columns: Vec<Vec<&str>> = vec![Vec::with_capacity(body.len()); header.len()];
    for (i, row) in body.iter().enumerate() {
        if row.len() != header.len() {
            return Err(invalid(
                title,
                format!(
                    "row {} has {} cell(s), the header has {}",
                    i + 1,
                    row.len(),
                    header.len()
                ),
            ));
        }
        for (column, cell) in columns.iter_mut().zip(row) {
            column.push(cell);
        }
    }
    let trace = json!({
        "type": "table",
        "header": {"values": header},
        "cells": {"values": columns},
    });
    Ok(figure(
        vec![trace],
        layout(title, None),
        options.extra_layout.as_ref(),
    ))
}

/// Checks a raw plotly figure (ClearML's `report_plotly`): an object with a `data` array; a
/// missing `layout` becomes `{}`.
pub fn plotly(title: &str, figure: Value) -> Result<Value, TrackingError> {
    let Value::Object(mut figure) = figure else {
        return Err(invalid(
            title,
            "a plotly figure must be a JSON object".into(),
        ));
    };
    if !figure.get("data").is_some_and(Value::is_array) {
        return Err(invalid(
            title,
            "a plotly figure needs a \"data\" array of traces".into(),
        ));
    }
    match figure.get("layout") {
        None => {
            figure.insert("layout".into(), json!({}));
        }
        Some(Value::Object(_)) => {}
        Some(_) => {
            return Err(invalid(
                title,
                "the figure's \"layout\" must be an object".into(),
            ));
        }
    }
    Ok(Value::Object(figure))
}

/// Parses CSV text (RFC 4180: `,` separators, `"` quoting, `""` inside quotes, CRLF or LF line
/// ends; blank lines skipped) into rows of cells.
pub fn parse_csv(title: &str, text: &str) -> Result<Vec<Vec<String>>, TrackingError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut cell_started = false;
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    cell.push(c);
                }
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if !cell_started => {
                quoted = true;
                cell_started = true;
            }
            '"' => {
                return Err(invalid(
                    title,
                    format!("CSV line {line}: a quote inside an unquoted cell"),
                ));
            }
            ',' => {
                row.push(std::mem::take(&mut cell));
                cell_started = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                line += 1;
                if cell_started || !row.is_empty() || !cell.is_empty() {
                    row.push(std::mem::take(&mut cell));
                    rows.push(std::mem::take(&mut row));
                }
                cell_started = false;
            }
            _ => {
                cell.push(c);
                cell_started = true;
            }
        }
    }
    if quoted {
        return Err(invalid(
            title,
            format!("CSV line {line}: a quoted cell is not closed"),
        ));
    }
    if cell_started || !row.is_empty() || !cell.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn histogram_has_one_bar_trace_per_row() {
        let options = HistogramOptions {
            labels: strings(&["A", "B"]),
            xlabels: strings(&["x0", "x1", "x2"]),
            xaxis: Some("X".into()),
            yaxis: Some("Y".into()),
            mode: BarMode::Stack,
            data_args: serde_json::from_value(json!({"marker": {"color": "blue"}})).ok(),
            extra_layout: serde_json::from_value(json!({"xaxis": {"type": "category"}})).ok(),
            ..HistogramOptions::default()
        };
        let fig = histogram(
            "hist",
            "s",
            &[vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]],
            &options,
        )
        .expect("figure");
        assert_eq!(fig["data"].as_array().map(Vec::len), Some(2));
        assert_eq!(fig["data"][0]["type"], "bar");
        assert_eq!(fig["data"][1]["name"], "B");
        assert_eq!(fig["data"][0]["x"], json!(["x0", "x1", "x2"]));
        assert_eq!(fig["data"][1]["y"], json!([4.0, 5.0, 6.0]));
        assert_eq!(fig["data"][0]["marker"]["color"], "blue");
        assert_eq!(fig["layout"]["barmode"], "stack");
        assert_eq!(fig["layout"]["title"], "hist");
        assert_eq!(fig["layout"]["xaxis"]["title"], "X");
        assert_eq!(
            fig["layout"]["xaxis"]["type"], "category",
            "extra_layout merged"
        );
        assert_eq!(fig["layout"]["yaxis"]["title"], "Y");
    }

    #[test]
    fn histogram_single_row_is_named_by_series_and_indexed() {
        let fig = histogram("h", "loss", &[vec![3.0, 1.0]], &HistogramOptions::default())
            .expect("figure");
        assert_eq!(fig["data"][0]["name"], "loss");
        assert_eq!(fig["data"][0]["x"], json!([0, 1]));
        assert_eq!(fig["layout"]["barmode"], "group");
    }

    #[test]
    fn histogram_label_counts_are_checked() {
        let options = HistogramOptions {
            xlabels: strings(&["only one"]),
            ..HistogramOptions::default()
        };
        let err = histogram("h", "s", &[vec![1.0, 2.0]], &options).expect_err("mismatch");
        assert!(err.to_string().contains("1 xlabels for 2 item(s)"), "{err}");
        assert!(histogram("h", "s", &[], &HistogramOptions::default()).is_err());
    }

    #[test]
    fn line_plot_traces_and_reversed_axis() {
        let series = [
            LineSeries {
                name: "train".into(),
                points: vec![(0.0, 1.0), (1.0, 0.5)],
                labels: Vec::new(),
            },
            LineSeries {
                name: "val".into(),
                points: vec![(0.0, 1.2)],
                labels: strings(&["first"]),
            },
        ];
        let options = LinePlotOptions {
            mode: ScatterMode::LinesMarkers,
            reverse_xaxis: true,
            comment: Some("note".into()),
            ..LinePlotOptions::default()
        };
        let fig = line_plot("curves", &series, &options).expect("figure");
        assert_eq!(fig["data"][0]["type"], "scatter");
        assert_eq!(fig["data"][0]["mode"], "lines+markers");
        assert_eq!(fig["data"][0]["x"], json!([0.0, 1.0]));
        assert_eq!(fig["data"][0]["y"], json!([1.0, 0.5]));
        assert_eq!(fig["data"][1]["text"], json!(["first"]));
        assert_eq!(fig["layout"]["xaxis"]["autorange"], "reversed");
        assert_eq!(fig["layout"]["title"], "curves<br><sup>note</sup>");
    }

    #[test]
    fn scatter2d_and_3d() {
        let fig = scatter2d(
            "s2",
            "pts",
            &[(0.0, 1.0), (2.0, 3.0)],
            &Scatter2dOptions {
                labels: strings(&["a", "b"]),
                ..Scatter2dOptions::default()
            },
        )
        .expect("2d");
        assert_eq!(fig["data"][0]["mode"], "lines");
        assert_eq!(fig["data"][0]["name"], "pts");
        assert_eq!(fig["data"][0]["text"], json!(["a", "b"]));
        let err = scatter2d(
            "s2",
            "pts",
            &[(0.0, 1.0)],
            &Scatter2dOptions {
                labels: strings(&["a", "b"]),
                ..Scatter2dOptions::default()
            },
        )
        .expect_err("too many labels");
        assert!(matches!(err, TrackingError::InvalidPlot { .. }));

        let fig = scatter3d(
            "s3",
            "xyz",
            &[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
            &Scatter3dOptions {
                zaxis: Some("Z".into()),
                fill: true,
                ..Scatter3dOptions::default()
            },
        )
        .expect("3d");
        assert_eq!(fig["data"][0]["type"], "scatter3d");
        assert_eq!(fig["data"][0]["mode"], "markers");
        assert_eq!(fig["data"][0]["z"], json!([3.0, 6.0]));
        assert_eq!(fig["data"][0]["surfaceaxis"], 2);
        assert_eq!(fig["layout"]["scene"]["zaxis"]["title"], "Z");
    }

    #[test]
    fn heatmap_and_surface() {
        let matrix = vec![vec![1.0, 2.0], vec![3.0, 4.0]];
        let fig = heatmap(
            "cm",
            "s",
            &matrix,
            &MatrixOptions {
                xlabels: strings(&["p0", "p1"]),
                ylabels: strings(&["t0", "t1"]),
                yaxis_reversed: true,
                ..MatrixOptions::default()
            },
        )
        .expect("heatmap");
        assert_eq!(fig["data"][0]["type"], "heatmap");
        assert_eq!(fig["data"][0]["z"], json!([[1.0, 2.0], [3.0, 4.0]]));
        assert_eq!(fig["data"][0]["x"], json!(["p0", "p1"]));
        assert_eq!(fig["layout"]["yaxis"]["autorange"], "reversed");
        let ragged = heatmap(
            "cm",
            "s",
            &[vec![1.0], vec![1.0, 2.0]],
            &MatrixOptions::default(),
        )
        .expect_err("ragged");
        assert!(ragged.to_string().contains("ragged"), "{ragged}");

        let fig = surface("surf", "s", &matrix, &SurfaceOptions::default()).expect("surface");
        assert_eq!(fig["data"][0]["type"], "surface");
        assert_eq!(
            fig["layout"]["scene"]["camera"]["eye"],
            json!({"x": 1.0, "y": 1.0, "z": 1.0})
        );
    }

    #[test]
    fn table_is_column_major() {
        let rows = vec![
            strings(&["name", "legs"]),
            strings(&["falcon", "2"]),
            strings(&["dog", "4"]),
        ];
        let fig = table("t", &rows, &TableOptions::default()).expect("table");
        assert_eq!(fig["data"][0]["type"], "table");
        assert_eq!(fig["data"][0]["header"]["values"], json!(["name", "legs"]));
        assert_eq!(
            fig["data"][0]["cells"]["values"],
            json!([["falcon", "dog"], ["2", "4"]])
        );
        let short = vec![strings(&["a", "b"]), strings(&["1"])];
        assert!(table("t", &short, &TableOptions::default()).is_err());
        assert!(table("t", &[], &TableOptions::default()).is_err());
    }

    #[test]
    fn csv_quotes_and_line_ends() {
        let rows = parse_csv("t", "a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\n\n1,\n").expect("csv");
        assert_eq!(
            rows,
            vec![
                strings(&["a", "b"]),
                strings(&["x, y", "say \"hi\""]),
                strings(&["1", ""])
            ]
        );
        assert!(parse_csv("t", "a,\"open").is_err());
        assert!(parse_csv("t", "a,b\"c").is_err());
        assert_eq!(
            parse_csv("t", "\"multi\nline\",z").expect("csv"),
            vec![strings(&["multi\nline", "z"])]
        );
    }

    #[test]
    fn plotly_figures_are_checked() {
        let fig = plotly("p", json!({"data": [{"type": "bar", "y": [1]}]})).expect("figure");
        assert_eq!(fig["layout"], json!({}));
        assert!(plotly("p", json!([1, 2])).is_err());
        assert!(plotly("p", json!({"layout": {}})).is_err());
        assert!(plotly("p", json!({"data": [], "layout": 3})).is_err());
    }

    #[test]
    fn merge_is_deep_for_objects_only() {
        let mut target: Map<String, Value> =
            serde_json::from_value(json!({"a": {"b": 1, "c": 2}, "d": [1]})).expect("map");
        let extra: Map<String, Value> =
            serde_json::from_value(json!({"a": {"c": 3}, "d": [2]})).expect("map");
        merge(&mut target, &extra);
        assert_eq!(
            Value::Object(target),
            json!({"a": {"b": 1, "c": 3}, "d": [2]})
        );
    }
}
