//! The `report_*` methods of [`OutputModel`]: scalars, single values and plotly figures (built by
//! [`crate::plots`]), stored as reports (events) against the model and its task.

use chrono::Utc;
use serde_json::Value;

use crate::backend::{Report, ReportKind};
use crate::error::TrackingError;
use crate::output::OutputModel;
use crate::plots::{
    self, HistogramOptions, LinePlotOptions, LineSeries, MatrixOptions, Scatter2dOptions,
    Scatter3dOptions, SurfaceOptions, TableOptions, TableSource,
};
use crate::properties::ModelProperties;

impl OutputModel {
    async fn report(&self, kind: ReportKind) -> Result<(), TrackingError> {
        let report = Report {
            model: Some(self.id()),
            task: self.task(),
            timestamp: Utc::now(),
            kind,
        };
        self.task_handle().backend().add_reports(&[report]).await
    }

    async fn report_figure(
        &self,
        title: &str,
        series: &str,
        iteration: Option<i64>,
        figure: Value,
    ) -> Result<(), TrackingError> {
        self.report(ReportKind::Plot {
            title: title.to_owned(),
            series: series.to_owned(),
            iteration: iteration.unwrap_or(0),
            figure,
        })
        .await
    }

    /// One point of the scalar series `series` in the plot `title`.
    pub async fn report_scalar(
        &self,
        title: &str,
        series: &str,
        value: f64,
        iteration: i64,
    ) -> Result<(), TrackingError> {
        self.report(ReportKind::Scalar {
            title: title.to_owned(),
            series: series.to_owned(),
            iteration,
            value,
        })
        .await
    }

    /// A single named value (total accuracy, mAP, …).
    pub async fn report_single_value(&self, name: &str, value: f64) -> Result<(), TrackingError> {
        self.report(ReportKind::SingleValue {
            name: name.to_owned(),
            value,
        })
        .await
    }

    /// A bar chart of precomputed bars, one trace per row of `values` (grouped by default).
    pub async fn report_histogram(
        &self,
        title: &str,
        series: &str,
        values: &[Vec<f64>],
        options: HistogramOptions,
    ) -> Result<(), TrackingError> {
        let figure = plots::histogram(title, series, values, &options)?;
        self.report_figure(title, series, options.iteration, figure)
            .await
    }

    /// A vector as a bar chart: the same figure as [`OutputModel::report_histogram`].
    pub async fn report_vector(
        &self,
        title: &str,
        series: &str,
        values: &[Vec<f64>],
        options: HistogramOptions,
    ) -> Result<(), TrackingError> {
        self.report_histogram(title, series, values, options).await
    }

    /// Several lines in one plot (the report's series is the title, as the lines carry their
    /// own names).
    pub async fn report_line_plot(
        &self,
        title: &str,
        series: &[LineSeries],
        options: LinePlotOptions,
    ) -> Result<(), TrackingError> {
        let figure = plots::line_plot(title, series, &options)?;
        self.report_figure(title, title, options.iteration, figure)
            .await
    }

    /// A 2-D scatter plot of `(x, y)` points.
    pub async fn report_scatter2d(
        &self,
        title: &str,
        series: &str,
        scatter: &[(f64, f64)],
        options: Scatter2dOptions,
    ) -> Result<(), TrackingError> {
        let figure = plots::scatter2d(title, series, scatter, &options)?;
        self.report_figure(title, series, options.iteration, figure)
            .await
    }

    /// A 3-D scatter plot of `[x, y, z]` points.
    pub async fn report_scatter3d(
        &self,
        title: &str,
        series: &str,
        scatter: &[[f64; 3]],
        options: Scatter3dOptions,
    ) -> Result<(), TrackingError> {
        let figure = plots::scatter3d(title, series, scatter, &options)?;
        self.report_figure(title, series, options.iteration, figure)
            .await
    }

    /// A confusion matrix as a heat map (`matrix[row][column]`).
    pub async fn report_confusion_matrix(
        &self,
        title: &str,
        series: &str,
        matrix: &[Vec<f64>],
        options: MatrixOptions,
    ) -> Result<(), TrackingError> {
        let figure = plots::heatmap(title, series, matrix, &options)?;
        self.report_figure(title, series, options.iteration, figure)
            .await
    }

    /// A matrix as a heat map: the same as [`OutputModel::report_confusion_matrix`].
    pub async fn report_matrix(
        &self,
        title: &str,
        series: &str,
        matrix: &[Vec<f64>],
        options: MatrixOptions,
    ) -> Result<(), TrackingError> {
        self.report_confusion_matrix(title, series, matrix, options)
            .await
    }

    /// A matrix as a 3-D surface.
    pub async fn report_surface(
        &self,
        title: &str,
        series: &str,
        matrix: &[Vec<f64>],
        options: SurfaceOptions,
    ) -> Result<(), TrackingError> {
        let figure = plots::surface(title, series, matrix, &options)?;
        self.report_figure(title, series, options.iteration, figure)
            .await
    }

    /// A table, from rows or CSV (text or a local file); the first row is the header.
    pub async fn report_table(
        &self,
        title: &str,
        series: &str,
        table: TableSource,
        options: TableOptions,
    ) -> Result<(), TrackingError> {
        let rows = match table {
            TableSource::Rows(rows) => rows,
            TableSource::Csv(text) => plots::parse_csv(title, &text)?,
            TableSource::CsvFile(path) => {
                let text = match tokio::fs::read_to_string(&path).await {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(TrackingError::FileNotFound {
                            what: "CSV file",
                            path,
                        });
                    }
                    Err(e) => return Err(TrackingError::io("read", path)(e)),
                };
                plots::parse_csv(title, &text)?
            }
        };
        let figure = plots::table(title, &rows, &options)?;
        self.report_figure(title, series, options.iteration, figure)
            .await
    }

    /// A raw plotly figure (`{"data": [...], "layout": {...}}`), stored as given.
    pub async fn report_plotly(
        &self,
        title: &str,
        series: &str,
        figure: Value,
        iteration: Option<i64>,
    ) -> Result<(), TrackingError> {
        let figure = plots::plotly(title, figure)?;
        self.report_figure(title, series, iteration, figure).await
    }
}
