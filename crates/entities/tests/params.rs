//! Training and inference parameters: the SDK's defaults, every limit at, inside and outside its
//! bound, file types by content, input combinations.

use kiln_entities::{
    DataHashInput, Device, FileType, FrameRange, FrameRangeProblem, InferenceInputs,
    InferenceParams, InputFile, MAX_TOTAL_INPUT_BYTES, ModelType, ModelWeights, SNIFF_LEN,
    TrainingParams, ValidationError, detect_file_type,
};
use proptest::prelude::*;
use serde_json::json;

const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01,
];
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR";
const MP4: &[u8] = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2";
const MP4_MP42: &[u8] = b"\x00\x00\x00\x1cftypmp42\x00\x00\x00\x00mp42isom";
const WEBM: &[u8] = &[
    0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81,
    0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84, b'w', b'e', b'b', b'm', 0x42, 0x87, 0x81, 0x04,
    0x42, 0x85, 0x81, 0x02, 0x18, 0x53, 0x80, 0x67,
];
const MATROSKA: &[u8] = &[
    0x1A, 0x45, 0xDF, 0xA3, 0xA3, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81,
    0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x88, b'm', b'a', b't', b'r', b'o', b's', b'k', b'a',
];

fn image() -> InferenceInputs {
    InferenceInputs::Files(vec![InputFile::from_bytes("a.png", PNG)])
}

#[test]
fn inference_defaults() {
    let params = InferenceParams::new(image());
    assert_eq!(params.conf_thresh, 0.6);
    assert_eq!(params.iou_thresh, 0.3);
    assert_eq!(params.rdp_thresh, 0.005);
    assert_eq!(params.detection_frame_range, None);
    assert_eq!(params.device, Device::Cuda);
    assert!(!params.allocation_enabled);
    assert_eq!(params.validate(), Ok(()));

    // The same defaults apply on the wire.
    let read: InferenceParams =
        serde_json::from_value(json!({"inputs": {"data_hashes": [{"hash": "video1_data_hash"}]}}))
            .expect("reads");
    assert_eq!(
        read,
        InferenceParams::new(InferenceInputs::DataHashes(vec![DataHashInput::new(
            "video1_data_hash"
        )]))
    );
}

#[test]
fn training_defaults() {
    let params = TrainingParams::new(vec!["row".into()], 500, ModelWeights::FastAi);
    assert_eq!(params.batch_size, 24);
    assert_eq!(params.device, Device::Cuda);
    assert_eq!(Device::default(), Device::Cuda);
    let read: TrainingParams =
        serde_json::from_value(json!({"label_rows": ["row"], "epochs": 500, "weights": "fast_ai"}))
            .expect("reads");
    assert_eq!(read, params);
}

/// Validates `params` with thresholds changed; `None` expects success.
fn check_thresholds(conf: f64, iou: f64, rdp: f64, expect: Option<(&str, f64, f64)>) {
    let mut params = InferenceParams::new(image());
    (params.conf_thresh, params.iou_thresh, params.rdp_thresh) = (conf, iou, rdp);
    match (params.validate(), expect) {
        (Ok(()), None) => {}
        (
            Err(ValidationError::ThresholdOutOfRange {
                name,
                value,
                min,
                max,
            }),
            Some((n, v, m)),
        ) => {
            assert_eq!((name, min, max), (n, 0.0, m), "{conf} {iou} {rdp}");
            assert!(value == v || (value.is_nan() && v.is_nan()));
        }
        (got, _) => panic!("{conf} {iou} {rdp}: {got:?}, expected {expect:?}"),
    }
}

#[test]
fn thresholds_at_and_around_their_bounds() {
    let eps = f64::EPSILON;
    let (c, i, r) = (0.6, 0.3, 0.005);
    check_thresholds(0.0, i, r, None);
    check_thresholds(1.0, i, r, None);
    check_thresholds(-0.0, i, r, None);
    check_thresholds(eps, i, r, None);
    check_thresholds(1.0 - eps, i, r, None);
    check_thresholds(-eps, i, r, Some(("conf_thresh", -eps, 1.0)));
    check_thresholds(
        -f64::MIN_POSITIVE,
        i,
        r,
        Some(("conf_thresh", -f64::MIN_POSITIVE, 1.0)),
    );
    check_thresholds(1.0 + eps, i, r, Some(("conf_thresh", 1.0 + eps, 1.0)));
    check_thresholds(f64::NAN, i, r, Some(("conf_thresh", f64::NAN, 1.0)));
    check_thresholds(
        f64::INFINITY,
        i,
        r,
        Some(("conf_thresh", f64::INFINITY, 1.0)),
    );
    check_thresholds(c, 0.0, r, None);
    check_thresholds(c, 1.0, r, None);
    check_thresholds(c, -eps, r, Some(("iou_thresh", -eps, 1.0)));
    check_thresholds(c, 1.0 + eps, r, Some(("iou_thresh", 1.0 + eps, 1.0)));
    check_thresholds(c, f64::NAN, r, Some(("iou_thresh", f64::NAN, 1.0)));
    check_thresholds(c, i, 0.0, None);
    check_thresholds(c, i, 0.01, None);
    check_thresholds(c, i, 0.0099999, None);
    check_thresholds(c, i, 0.0100001, Some(("rdp_thresh", 0.0100001, 0.01)));
    check_thresholds(c, i, -eps, Some(("rdp_thresh", -eps, 0.01)));
    check_thresholds(c, i, f64::NAN, Some(("rdp_thresh", f64::NAN, 0.01)));
    // The first bad threshold is reported.
    check_thresholds(2.0, 2.0, 2.0, Some(("conf_thresh", 2.0, 1.0)));
    let err = ValidationError::ThresholdOutOfRange {
        name: "rdp_thresh",
        value: 0.02,
        min: 0.0,
        max: 0.01,
    };
    assert_eq!(
        err.to_string(),
        "rdp_thresh must be between 0 and 0.01, got 0.02"
    );
}

proptest! {
    #[test]
    fn thresholds_accept_exactly_their_range(conf in -2.0_f64..3.0, rdp in -0.02_f64..0.03) {
        let mut params = InferenceParams::new(image());
        params.conf_thresh = conf;
        prop_assert_eq!(params.validate().is_ok(), (0.0..=1.0).contains(&conf));
        params.conf_thresh = 0.5;
        params.rdp_thresh = rdp;
        prop_assert_eq!(params.validate().is_ok(), (0.0..=0.01).contains(&rdp));
    }

    #[test]
    fn frame_ranges(start in -5_i64..2000, end in -5_i64..2000) {
        let ok = start >= 0 && end >= 0 && start <= end && end - start <= 1000;
        prop_assert_eq!(FrameRange::new(start, end).validate().is_ok(), ok);
    }
}

fn check_range(start: i64, end: i64, expect: Option<FrameRangeProblem>) {
    let range = FrameRange::new(start, end);
    let want = expect.map(|problem| ValidationError::DetectionRangeInvalid {
        start,
        end,
        problem,
    });
    assert_eq!(range.validate().err(), want.clone(), "[{start}, {end}]");
    let mut params = InferenceParams::new(image());
    params.detection_frame_range = Some(range);
    assert_eq!(params.validate().err(), want);
}

#[test]
fn frame_range_limits() {
    use FrameRangeProblem::{Negative, Reversed, SpanTooLarge};
    check_range(0, 0, None);
    check_range(1, 1, None);
    check_range(0, 100, None);
    check_range(0, 1000, None);
    check_range(0, 1001, Some(SpanTooLarge));
    check_range(5, 1005, None);
    check_range(5, 1006, Some(SpanTooLarge));
    check_range(0, i64::MAX, Some(SpanTooLarge));
    check_range(i64::MAX - 1000, i64::MAX, None);
    check_range(-1, 5, Some(Negative));
    check_range(5, -1, Some(Negative));
    check_range(i64::MIN, i64::MAX, Some(Negative));
    check_range(10, 5, Some(Reversed));
    check_range(1001, 0, Some(Reversed));
    assert_eq!(FrameRange::new(3, 10).span(), 7);
    assert_eq!(
        ValidationError::DetectionRangeInvalid {
            start: 0,
            end: 1001,
            problem: SpanTooLarge
        }
        .to_string(),
        "detection frame range [0, 1001] is invalid: it spans more than 1000 frames"
    );
}

#[test]
fn frame_range_wire_form() {
    let mut params = InferenceParams::new(image());
    let json = serde_json::to_value(&params).expect("serializes");
    assert_eq!(
        json["detection_frame_range"],
        json!([]),
        "None is the SDK's []"
    );
    params.detection_frame_range = Some(FrameRange::new(0, 100));
    let json = serde_json::to_value(&params).expect("serializes");
    assert_eq!(json["detection_frame_range"], json!([0, 100]));
    let read = |range: serde_json::Value| {
        let mut json = json.clone();
        json["detection_frame_range"] = range;
        serde_json::from_value::<InferenceParams>(json).map(|p| p.detection_frame_range)
    };
    assert_eq!(read(json!([])).ok(), Some(None));
    assert_eq!(read(json!(null)).ok(), Some(None));
    assert_eq!(read(json!([1, 1])).ok(), Some(Some(FrameRange::new(1, 1))));
    assert!(read(json!([1])).is_err());
    assert!(read(json!([1, 2, 3])).is_err());
    assert!(read(json!("0-100")).is_err());
}

#[test]
fn file_types_by_content() {
    let check = |head: &[u8], expect: Option<FileType>| {
        assert_eq!(detect_file_type(head), expect, "{head:02x?}")
    };
    check(JPEG, Some(FileType::Jpeg));
    check(&JPEG[..3], Some(FileType::Jpeg));
    check(&JPEG[..2], None);
    check(PNG, Some(FileType::Png));
    check(&PNG[..8], Some(FileType::Png));
    check(&PNG[..7], None);
    check(b"\x89PNG\r\n\x1a\x0b", None);
    check(MP4, Some(FileType::Mp4));
    check(MP4_MP42, Some(FileType::Mp4));
    check(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", None);
    check(b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00", None);
    check(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00", None);
    check(b"\x00\x00\x00\x18ftyp", None);
    check(b"ftypisom\x00\x00\x00\x00", None);
    check(WEBM, Some(FileType::Webm));
    check(MATROSKA, None);
    check(&WEBM[..4], None);
    check(&WEBM[..24], None);
    check(&WEBM[..28], Some(FileType::Webm));
    check(b"GIF89a\x01\x00", None);
    check(b"RIFF\x00\x00\x00\x00WEBPVP8 ", None);
    check(b"%PDF-1.7", None);
    check(b"", None);
    for (bytes, kind) in [
        (JPEG, FileType::Jpeg),
        (PNG, FileType::Png),
        (MP4, FileType::Mp4),
        (WEBM, FileType::Webm),
    ] {
        assert_eq!(InputFile::from_bytes("x", bytes).file_type(), Some(kind));
        assert_eq!(kind.is_image(), !kind.is_video());
    }
    assert_eq!(FileType::Webm.mime_type(), "video/webm");
}

/// Validates inference over `inputs` with `range`; `None` expects success.
fn check_inputs(
    inputs: InferenceInputs,
    range: Option<FrameRange>,
    expect: Option<ValidationError>,
) {
    let mut params = InferenceParams::new(inputs);
    params.detection_frame_range = range;
    assert_eq!(params.validate().err(), expect, "{:?}", params.inputs);
}

fn files(list: &[(&str, &[u8])]) -> InferenceInputs {
    InferenceInputs::Files(
        list.iter()
            .map(|(name, bytes)| InputFile::from_bytes(*name, bytes))
            .collect(),
    )
}

#[test]
fn files_must_be_supported_types() {
    let range = Some(FrameRange::new(0, 100));
    check_inputs(files(&[("1.jpg", JPEG), ("2.png", PNG)]), None, None);
    check_inputs(files(&[("1.jpg", JPEG)]), Some(FrameRange::new(1, 1)), None);
    check_inputs(files(&[("1.mp4", MP4), ("2.webm", WEBM)]), range, None);
    // The name plays no part: a PNG called .mp4 is a PNG.
    check_inputs(files(&[("video.mp4", PNG)]), None, None);
    check_inputs(
        files(&[("1.jpg", JPEG), ("photo.jpg", b"GIF89a\x01\x00\x01\x00")]),
        None,
        Some(ValidationError::FileTypeNotSupported {
            name: "photo.jpg".into(),
            magic: "4749463839610100".into(),
        }),
    );
    check_inputs(
        files(&[("clip.webm", MATROSKA)]),
        range,
        Some(ValidationError::FileTypeNotSupported {
            name: "clip.webm".into(),
            magic: "1a45dfa3a3428681".into(),
        }),
    );
    check_inputs(
        files(&[("1.png", PNG), ("1.mp4", MP4)]),
        None,
        Some(ValidationError::DetectionRangeRequired {
            input: "1.mp4".into(),
        }),
    );
    check_inputs(
        files(&[("1.webm", WEBM)]),
        None,
        Some(ValidationError::DetectionRangeRequired {
            input: "1.webm".into(),
        }),
    );
    check_inputs(
        files(&[]),
        None,
        Some(ValidationError::EmptyInputs { kind: "file_paths" }),
    );
}

/// A plain base64 encoder for building inputs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let acc = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(acc >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn base64_strings() {
    let strings = |list: &[String]| InferenceInputs::Base64Strings(list.to_vec());
    let jpeg = base64(&[JPEG, &[0_u8; 100][..]].concat());
    let webm = base64(WEBM);
    check_inputs(strings(&[jpeg.clone(), base64(PNG)]), None, None);
    check_inputs(
        strings(&[jpeg.trim_end_matches('=').to_owned()]),
        None,
        None,
    );
    check_inputs(
        strings(std::slice::from_ref(&webm)),
        Some(FrameRange::new(0, 10)),
        None,
    );
    check_inputs(
        strings(&[jpeg.clone(), webm]),
        None,
        Some(ValidationError::DetectionRangeRequired {
            input: "base64_strings[1]".into(),
        }),
    );
    check_inputs(
        strings(&[jpeg.clone(), base64(b"%PDF-1.7 and so on")]),
        None,
        Some(ValidationError::FileTypeNotSupported {
            name: "base64_strings[1]".into(),
            magic: "255044462d312e37".into(),
        }),
    );
    match InferenceParams::new(strings(&[format!("{jpeg}!")])).validate() {
        Err(ValidationError::InvalidBase64 { name, .. }) => assert_eq!(name, "base64_strings[0]"),
        other => panic!("{other:?}"),
    }
    check_inputs(
        strings(&[]),
        None,
        Some(ValidationError::EmptyInputs {
            kind: "base64_strings",
        }),
    );
}

#[test]
fn total_size_limit_is_one_gigabyte() {
    const GB: u64 = 1_000_000_000;
    assert_eq!(MAX_TOTAL_INPUT_BYTES, GB);
    let too_big = |total| Some(ValidationError::FileSizeNotSupported { total, max: GB });
    let hashes = |sizes: &[Option<u64>]| {
        InferenceInputs::DataHashes(
            sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| DataHashInput {
                    hash: format!("h{i}"),
                    size,
                })
                .collect(),
        )
    };
    check_inputs(hashes(&[Some(GB)]), None, None);
    check_inputs(hashes(&[Some(GB + 1)]), None, too_big(GB + 1));
    check_inputs(hashes(&[Some(GB / 2), Some(GB / 2)]), None, None);
    check_inputs(
        hashes(&[Some(GB / 2), Some(GB / 2 + 1)]),
        None,
        too_big(GB + 1),
    );
    check_inputs(hashes(&[Some(GB), None]), None, None);
    check_inputs(hashes(&[None, None]), None, None);
    check_inputs(
        hashes(&[Some(u64::MAX), Some(u64::MAX)]),
        None,
        too_big(u64::MAX),
    );
    check_inputs(
        hashes(&[]),
        None,
        Some(ValidationError::EmptyInputs {
            kind: "data_hashes",
        }),
    );
    check_inputs(
        InferenceInputs::DataHashes(vec![DataHashInput::sized("a", 1), DataHashInput::new("  ")]),
        None,
        Some(ValidationError::EmptyField {
            field: "data_hashes[1]".into(),
        }),
    );

    let sized = |sizes: &[u64]| {
        InferenceInputs::Files(
            sizes
                .iter()
                .map(|&size| InputFile {
                    name: "x.png".into(),
                    size,
                    head: PNG.to_vec(),
                })
                .collect(),
        )
    };
    check_inputs(sized(&[GB]), None, None);
    check_inputs(sized(&[GB - 1, 1]), None, None);
    check_inputs(sized(&[GB, 1]), None, too_big(GB + 1));
}

#[test]
fn exactly_one_input_kind() {
    let file = || Some(vec![InputFile::from_bytes("a.png", PNG)]);
    let strings = || Some(vec![base64(PNG)]);
    let hashes = || Some(vec![DataHashInput::new("h")]);
    let check = |got: Result<InferenceInputs, ValidationError>,
                 expect: Result<&str, ValidationError>| {
        assert_eq!(got.map(|inputs| inputs.kind()), expect);
    };
    check(
        InferenceInputs::from_options(file(), None, None),
        Ok("file_paths"),
    );
    check(
        InferenceInputs::from_options(None, strings(), None),
        Ok("base64_strings"),
    );
    check(
        InferenceInputs::from_options(None, None, hashes()),
        Ok("data_hashes"),
    );
    check(
        InferenceInputs::from_options(None, None, None),
        Err(ValidationError::NoInputs),
    );
    let conflict = |given: &[&'static str]| {
        Err(ValidationError::ConflictingInputs {
            given: given.to_vec(),
        })
    };
    check(
        InferenceInputs::from_options(file(), strings(), None),
        conflict(&["file_paths", "base64_strings"]),
    );
    check(
        InferenceInputs::from_options(file(), None, hashes()),
        conflict(&["file_paths", "data_hashes"]),
    );
    check(
        InferenceInputs::from_options(None, strings(), hashes()),
        conflict(&["base64_strings", "data_hashes"]),
    );
    check(
        InferenceInputs::from_options(file(), strings(), hashes()),
        conflict(&["file_paths", "base64_strings", "data_hashes"]),
    );
    // An empty list is still a kind given; validate() then reports it empty.
    check(
        InferenceInputs::from_options(Some(vec![]), None, None),
        Ok("file_paths"),
    );
    let inputs = InferenceInputs::from_options(None, None, Some(vec![])).expect("one kind");
    assert!(inputs.is_empty());
    assert_eq!(inputs.len(), 0);
    assert_eq!(
        serde_json::to_value(&inputs).ok(),
        Some(json!({"data_hashes": []}))
    );
}

#[test]
fn input_files_from_bytes() {
    let bytes: Vec<u8> = (0..200_u8).collect();
    let file = InputFile::from_bytes("big.bin", &bytes);
    assert_eq!((file.size, file.head.len()), (200, SNIFF_LEN));
    assert_eq!(file.head, bytes[..SNIFF_LEN]);
    let small = InputFile::from_bytes("small.png", PNG);
    assert_eq!((small.size, small.head.as_slice()), (PNG.len() as u64, PNG));
    assert_eq!(
        serde_json::to_value(InputFile::from_bytes("a", &[0xff, 0xd8, 0xff])).ok(),
        Some(json!({"name": "a", "size": 3, "head": "ffd8ff"}))
    );
}

/// Validates training `params` for `model`; `None` expects success.
fn check_training(
    edit: fn(&mut TrainingParams),
    model: ModelType,
    expect: Option<ValidationError>,
) {
    let mut params = TrainingParams::new(
        vec!["label_row_uid_1".into(), "label_row_uid_2".into()],
        500,
        ModelWeights::FasterRcnnR50Fpn_3x,
    );
    edit(&mut params);
    assert_eq!(params.validate(model).err(), expect);
}

#[test]
fn training_validation() {
    let m = ModelType::FasterRcnn;
    check_training(|_| {}, m, None);
    check_training(|p| p.epochs = 1, m, None);
    check_training(|p| p.batch_size = 1, m, None);
    check_training(
        |p| p.label_rows.clear(),
        m,
        Some(ValidationError::EmptyField {
            field: "label_rows".into(),
        }),
    );
    check_training(
        |p| p.label_rows[1] = " ".into(),
        m,
        Some(ValidationError::EmptyField {
            field: "label_rows[1]".into(),
        }),
    );
    check_training(
        |p| p.epochs = 0,
        m,
        Some(ValidationError::BelowMinimum {
            field: "epochs",
            value: 0,
            min: 1,
        }),
    );
    check_training(
        |p| p.batch_size = 0,
        m,
        Some(ValidationError::BelowMinimum {
            field: "batch_size",
            value: 0,
            min: 1,
        }),
    );
    check_training(
        |_| {},
        ModelType::MaskRcnn,
        Some(ValidationError::ModelWeightsInconsistent {
            model: ModelType::MaskRcnn,
            weights: ModelWeights::FasterRcnnR50Fpn_3x,
        }),
    );
    assert_eq!(
        ValidationError::ModelWeightsInconsistent {
            model: ModelType::MaskRcnn,
            weights: ModelWeights::Yolov5s
        }
        .to_string(),
        "weights yolov5s cannot train a mask_rcnn model"
    );
}
