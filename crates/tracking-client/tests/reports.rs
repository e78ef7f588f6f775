//! Every `report_*` method, read back through the registry's events.

use kiln_storage::{EventKind, EventQuery};
use kiln_tracking_client::{
    BarMode, HistogramOptions, LinePlotOptions, LineSeries, MatrixOptions, ModelProperties,
    OutputModel, OutputModelOptions, Scatter2dOptions, Scatter3dOptions, SurfaceOptions,
    TableOptions, TableSource, TrackingError,
};
use serde_json::{Value, json};

use crate::common::Fixture;

#[tokio::test]
async fn every_report_is_stored_as_an_event() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");

    model
        .report_scalar("loss", "train", 0.5, 1)
        .await
        .expect("scalar");
    model
        .report_scalar("loss", "train", 0.25, 2)
        .await
        .expect("scalar");
    model
        .report_single_value("mAP50", 0.61)
        .await
        .expect("single value");
    model
        .report_histogram(
            "hist",
            "h",
            &[vec![1.0, 2.0], vec![3.0, 4.0]],
            HistogramOptions {
                iteration: Some(3),
                labels: vec!["A".into(), "B".into()],
                ..HistogramOptions::default()
            },
        )
        .await
        .expect("histogram");
    model
        .report_vector(
            "vec",
            "v",
            &[vec![5.0, 6.0, 7.0]],
            HistogramOptions {
                mode: BarMode::Stack,
                ..HistogramOptions::default()
            },
        )
        .await
        .expect("vector");
    model
        .report_line_plot(
            "lines",
            &[LineSeries {
                name: "l1".into(),
                points: vec![(0.0, 1.0), (1.0, 2.0)],
                labels: Vec::new(),
            }],
            LinePlotOptions::default(),
        )
        .await
        .expect("line plot");
    model
        .report_scatter2d(
            "s2",
            "pts",
            &[(0.0, 1.0), (1.0, 0.0)],
            Scatter2dOptions::default(),
        )
        .await
        .expect("scatter2d");
    model
        .report_scatter3d("s3", "xyz", &[[0.0, 1.0, 2.0]], Scatter3dOptions::default())
        .await
        .expect("scatter3d");
    let matrix = vec![vec![5.0, 1.0], vec![2.0, 7.0]];
    model
        .report_confusion_matrix("cm", "val", &matrix, MatrixOptions::default())
        .await
        .expect("confusion matrix");
    model
        .report_matrix("m", "val", &matrix, MatrixOptions::default())
        .await
        .expect("matrix");
    model
        .report_surface("surf", "val", &matrix, SurfaceOptions::default())
        .await
        .expect("surface");
    model
        .report_table(
            "rows",
            "t",
            TableSource::Rows(vec![
                vec!["animal".into(), "legs".into()],
                vec!["falcon".into(), "2".into()],
            ]),
            TableOptions::default(),
        )
        .await
        .expect("table from rows");
    model
        .report_table(
            "csv",
            "t",
            TableSource::Csv("animal,legs\ndog,4\n".into()),
            TableOptions::default(),
        )
        .await
        .expect("table from CSV text");
    let csv = fx.file("table.csv", b"animal,legs\r\n\"spider, big\",8\r\n");
    model
        .report_table(
            "csvfile",
            "t",
            TableSource::CsvFile(csv),
            TableOptions {
                iteration: Some(9),
                ..TableOptions::default()
            },
        )
        .await
        .expect("table from a CSV file");
    model
        .report_plotly(
            "raw",
            "r",
            json!({"data": [{"type": "pie", "values": [1, 2]}], "layout": {"height": 300}}),
            Some(4),
        )
        .await
        .expect("plotly");

    let events = fx
        .registry()
        .events(&EventQuery {
            model: Some(model.id()),
            ..EventQuery::default()
        })
        .await
        .expect("events");
    assert_eq!(events.len(), 15);
    assert!(events.iter().all(|e| e.task.as_deref() == Some(task.id())));

    assert_eq!(
        events[1].kind,
        EventKind::Scalar {
            title: "loss".into(),
            series: "train".into(),
            iteration: 2,
            value: 0.25
        }
    );
    assert_eq!(
        events[2].kind,
        EventKind::SingleValue {
            name: "mAP50".into(),
            value: 0.61
        }
    );
    let plots: Vec<(&str, i64, &Value)> = events[3..]
        .iter()
        .map(|e| match &e.kind {
            EventKind::Plot {
                title,
                iteration,
                figure,
                ..
            } => (title.as_str(), *iteration, figure),
            other => panic!("expected a plot, got {other:?}"),
        })
        .collect();
    let trace_types: Vec<(&str, &str)> = plots
        .iter()
        .map(|(title, _, figure)| (*title, figure["data"][0]["type"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(
        trace_types,
        vec![
            ("hist", "bar"),
            ("vec", "bar"),
            ("lines", "scatter"),
            ("s2", "scatter"),
            ("s3", "scatter3d"),
            ("cm", "heatmap"),
            ("m", "heatmap"),
            ("surf", "surface"),
            ("rows", "table"),
            ("csv", "table"),
            ("csvfile", "table"),
            ("raw", "pie"),
        ]
    );
    assert_eq!(plots[0].1, 3, "the histogram's iteration");
    assert_eq!(plots[0].2["data"][1]["name"], "B");
    assert_eq!(plots[1].2["layout"]["barmode"], "stack");
    assert_eq!(plots[5].2["data"][0]["z"], json!([[5.0, 1.0], [2.0, 7.0]]));
    assert_eq!(
        plots[10].2["data"][0]["cells"]["values"],
        json!([["spider, big"], ["8"]])
    );
    assert_eq!(plots[10].1, 9);
    assert_eq!(plots[11].2["layout"]["height"], 300);
    assert_eq!(plots[11].1, 4);

    let by_title = fx
        .registry()
        .events(&EventQuery {
            model: Some(model.id()),
            title: Some("loss".into()),
            ..EventQuery::default()
        })
        .await
        .expect("loss events");
    assert_eq!(by_title.len(), 2);
}

#[tokio::test]
async fn bad_plots_are_refused_and_store_nothing() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let err = model
        .report_confusion_matrix(
            "cm",
            "s",
            &[vec![1.0, 2.0], vec![3.0]],
            MatrixOptions::default(),
        )
        .await
        .expect_err("ragged");
    assert!(matches!(err, TrackingError::InvalidPlot { .. }), "{err}");
    let err = model
        .report_table(
            "t",
            "s",
            TableSource::CsvFile(fx.dir.path().join("missing.csv")),
            TableOptions::default(),
        )
        .await
        .expect_err("missing CSV");
    assert!(matches!(err, TrackingError::FileNotFound { .. }), "{err}");
    assert!(err.to_string().contains("missing.csv"), "{err}");
    let err = model
        .report_plotly("p", "s", json!({"layout": {}}), None)
        .await
        .expect_err("no data");
    assert!(matches!(err, TrackingError::InvalidPlot { .. }), "{err}");
    let events = fx
        .registry()
        .events(&EventQuery {
            model: Some(model.id()),
            ..EventQuery::default()
        })
        .await
        .expect("events");
    assert!(events.is_empty());
}
