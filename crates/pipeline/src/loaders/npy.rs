//! `NpyLoader`: samples from NumPy `.npy` / `.npz` files, the first axis indexing samples.
//!
//! The NPY header (versions 1, 2 and 3) is parsed here. Supported element types, little-endian and
//! C-ordered: `f4` and `f8` (read as float32), `i8`, `i4`, `u1`, `i1` and `b1`; big-endian data,
//! Fortran order and structured types are [`DataError::Decode`] errors naming the file (and the
//! array for `.npz`).
//!
//! Reading is lazy where the bytes allow it: `.npy` files and uncompressed (`np.savez`) `.npz`
//! members are read one sample at a time at their file offset; compressed
//! (`np.savez_compressed`) members are inflated once, when the loader is opened.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::data::{Annotation, DataError, DataLoader, Sample, SampleMetadata};
use crate::loaders::preprocess::DEFAULT_INPUT;
use crate::tensor::{Tensor, TensorMap};

/// Options of [`NpyLoader::open`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NpyOptions {
    /// `.npy`: the model input the array feeds ([`DEFAULT_INPUT`] when unset).
    pub input: Option<String>,
    /// `.npz`: model input name -> array name. Unset: every array (but `labels`) feeds the input
    /// of its own name.
    pub inputs: Option<BTreeMap<String, String>>,
    /// `.npz`: the array of class labels (integers, one per sample) giving
    /// [`Annotation::Class`].
    pub labels: Option<String>,
}

/// Element types the loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
    I64,
    I32,
    U8,
    I8,
    Bool,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::U8 | Dtype::I8 | Dtype::Bool => 1,
        }
    }
}

/// A parsed NPY header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Bytes before the data (magic, version, length, header text).
    data_offset: u64,
}

impl Header {
    fn item_bytes(&self) -> usize {
        self.shape.iter().skip(1).product::<usize>() * self.dtype.size()
    }
}

/// Where an array's bytes are.
#[derive(Debug, Clone)]
enum Storage {
    /// In a file at this offset (`.npy`, stored `.npz` members).
    File { offset: u64 },
    /// Inflated in memory (compressed `.npz` members), data only.
    Memory(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Array {
    /// Array name (`.npz` member without `.npy`; the file stem for `.npy`).
    name: String,
    header: Header,
    storage: Storage,
}

/// Samples from a `.npy` (one input) or `.npz` (one input per array) file.
#[derive(Debug, Clone)]
pub struct NpyLoader {
    path: PathBuf,
    /// (input name, array), in input order.
    inputs: Vec<(String, Array)>,
    labels: Option<Vec<usize>>,
    len: usize,
}

impl NpyLoader {
    /// Opens `path` (`.npz` by content: a zip file; anything else is read as `.npy`) and checks
    /// every array's header: supported type, at least one axis, the same number of samples in
    /// all arrays.
    pub fn open(path: impl AsRef<Path>, options: NpyOptions) -> Result<NpyLoader, DataError> {
        let path = path.as_ref().to_owned();
        let mut file = File::open(&path).map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })?;
        let mut magic = [0u8; 4];
        let is_zip = file.read_exact(&mut magic).is_ok() && magic == *b"PK\x03\x04";
        let decode = |reason: String| DataError::Decode {
            path: path.clone(),
            reason,
        };
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
        let (inputs, labels) = if is_zip {
            let arrays = read_npz(&path, file)?;
            let find = |name: &str, field: &str| {
                arrays
                    .iter()
                    .find(|a| a.name == name)
                    .cloned()
                    .ok_or_else(|| DataError::Spec {
                        field: field.into(),
                        reason: format!(
                            "array {name:?} is not in {} (arrays: {})",
                            path.display(),
                            arrays
                                .iter()
                                .map(|a| a.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            };
            let labels = options
                .labels
                .as_deref()
                .map(|l| find(l, "labels"))
                .transpose()?;
            let inputs: Vec<(String, Array)> = match &options.inputs {
                Some(map) => map
                    .iter()
                    .map(|(input, array)| Ok((input.clone(), find(array, "inputs")?)))
                    .collect::<Result<_, DataError>>()?,
                None => arrays
                    .iter()
                    .filter(|a| Some(a.name.as_str()) != options.labels.as_deref())
                    .map(|a| (a.name.clone(), a.clone()))
                    .collect(),
            };
            (inputs, labels)
        } else {
            if options.inputs.is_some() || options.labels.is_some() {
                return Err(DataError::Spec {
                    field: "inputs".into(),
                    reason: format!(
                        "{} is a .npy file (one array); `inputs` and `labels` apply to .npz",
                        path.display()
                    ),
                });
            }
            file.seek(SeekFrom::Start(0))
                .map_err(|source| DataError::Io {
                    path: path.clone(),
                    source,
                })?;
            let header = read_header(&mut file).map_err(decode)?;
            let needed = header.data_offset + total_bytes(&header);
            if file_len < needed {
                return Err(decode(format!(
                    "truncated: the header promises {needed} bytes, the file has {file_len}"
                )));
            }
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let offset = header.data_offset;
            let input = options
                .input
                .clone()
                .unwrap_or_else(|| DEFAULT_INPUT.into());
            (
                vec![(
                    input,
                    Array {
                        name,
                        header,
                        storage: Storage::File { offset },
                    },
                )],
                None,
            )
        };
        if inputs.is_empty() {
            return Err(DataError::Empty {
                path,
                what: "arrays".into(),
            });
        }
        let mut len = None;
        for array in inputs.iter().map(|(_, a)| a).chain(labels.as_ref()) {
            let Some(&n) = array.header.shape.first() else {
                return Err(decode(format!(
                    "array {:?} is a scalar; samples need a first axis",
                    array.name
                )));
            };
            match len {
                None => len = Some((n, array.name.clone())),
                Some((m, ref other)) if m != n => {
                    return Err(DataError::Spec {
                        field: "inputs".into(),
                        reason: format!(
                            "array {:?} has {n} samples but {other:?} has {m}",
                            array.name
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        let len = len.map_or(0, |(n, _)| n);
        let labels = match labels {
            Some(array) => Some(read_labels(&path, &array)?),
            None => None,
        };
        Ok(NpyLoader {
            path,
            inputs,
            labels,
            len,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Input names in order, with each array's full shape.
    pub fn inputs(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.inputs
            .iter()
            .map(|(n, a)| (n.as_str(), a.header.shape.as_slice()))
    }

    fn item(&self, array: &Array, index: usize) -> Result<Tensor, DataError> {
        let n = array.header.item_bytes();
        let start = index * n;
        let bytes = match &array.storage {
            Storage::Memory(data) => data[start..start + n].to_vec(),
            Storage::File { offset } => {
                let io = |source| DataError::Io {
                    path: self.path.clone(),
                    source,
                };
                let mut file = File::open(&self.path).map_err(io)?;
                file.seek(SeekFrom::Start(offset + start as u64))
                    .map_err(io)?;
                let mut bytes = vec![0u8; n];
                file.read_exact(&mut bytes).map_err(io)?;
                bytes
            }
        };
        let mut shape = array.header.shape.clone();
        shape[0] = 1;
        to_tensor(array.header.dtype, &shape, &bytes).map_err(|reason| DataError::Decode {
            path: self.path.clone(),
            reason: format!("array {:?}: {reason}", array.name),
        })
    }
}

impl DataLoader for NpyLoader {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        if index >= self.len {
            return Err(DataError::OutOfRange {
                index,
                len: self.len,
            });
        }
        let mut inputs = TensorMap::new();
        for (name, array) in &self.inputs {
            inputs.insert(name.clone(), self.item(array, index)?);
        }
        let annotation = self
            .labels
            .as_ref()
            .and_then(|l| l.get(index))
            .map_or(Annotation::None, |&c| Annotation::Class(c));
        Ok(Sample {
            inputs,
            annotation,
            metadata: Some(SampleMetadata {
                source: Some(self.path.clone()),
                ..SampleMetadata::default()
            }),
        })
    }
}

fn total_bytes(header: &Header) -> u64 {
    header.shape.iter().product::<usize>() as u64 * header.dtype.size() as u64
}

/// Every `.npy` member of a zip: headers read, stored members left in place, compressed ones
/// inflated.
fn read_npz(path: &Path, file: File) -> Result<Vec<Array>, DataError> {
    let decode = |reason: String| DataError::Decode {
        path: path.to_owned(),
        reason,
    };
    let mut zip = zip::ZipArchive::new(file).map_err(|e| decode(format!("zip: {e}")))?;
    let mut arrays = Vec::new();
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| decode(format!("zip member {i}: {e}")))?;
        let member_name = member
            .name()
            .map_err(|e| decode(format!("zip member {i}: {e}")))?
            .into_owned();
        if member.is_dir() {
            continue;
        }
        let Some(name) = member_name.strip_suffix(".npy") else {
            tracing::debug!(member = %member_name, "npz: skipped (not .npy)");
            continue;
        };
        let name = name.to_owned();
        let in_array = |reason: String| decode(format!("array {name:?}: {reason}"));
        let stored = member.compression() == zip::CompressionMethod::Stored;
        let (header, storage) = if stored {
            let header = read_header(&mut member).map_err(in_array)?;
            let start = member
                .data_start()
                .ok_or_else(|| in_array("zip member has no data offset".into()))?;
            if member.size() < header.data_offset + total_bytes(&header) {
                return Err(in_array(format!(
                    "truncated: the header promises {} bytes, the member has {}",
                    header.data_offset + total_bytes(&header),
                    member.size()
                )));
            }
            let offset = start + header.data_offset;
            (header, Storage::File { offset })
        } else {
            let mut bytes = Vec::new();
            member
                .read_to_end(&mut bytes)
                .map_err(|e| in_array(format!("inflate: {e}")))?;
            let header = read_header(&mut bytes.as_slice()).map_err(in_array)?;
            let start = header.data_offset as usize;
            let total = total_bytes(&header) as usize;
            if bytes.len() < start + total {
                return Err(in_array(format!(
                    "truncated: the header promises {} bytes, the member has {}",
                    start + total,
                    bytes.len()
                )));
            }
            bytes.truncate(start + total);
            bytes.drain(..start);
            (header, Storage::Memory(bytes))
        };
        arrays.push(Array {
            name,
            header,
            storage,
        });
    }
    if arrays.is_empty() {
        return Err(DataError::Empty {
            path: path.to_owned(),
            what: "arrays (.npy members)".into(),
        });
    }
    Ok(arrays)
}

/// Class labels from a 1-D integer array.
fn read_labels(path: &Path, array: &Array) -> Result<Vec<usize>, DataError> {
    let decode = |reason: String| DataError::Decode {
        path: path.to_owned(),
        reason: format!("labels array {:?}: {reason}", array.name),
    };
    if array.header.shape.len() != 1 {
        return Err(decode(format!("shape {:?} is not 1-D", array.header.shape)));
    }
    let bytes = match &array.storage {
        Storage::Memory(data) => data.clone(),
        Storage::File { offset } => {
            let io = |source| DataError::Io {
                path: path.to_owned(),
                source,
            };
            let mut file = File::open(path).map_err(io)?;
            file.seek(SeekFrom::Start(*offset)).map_err(io)?;
            let mut bytes = vec![0u8; total_bytes(&array.header) as usize];
            file.read_exact(&mut bytes).map_err(io)?;
            bytes
        }
    };
    let values: Vec<i64> =
        match to_tensor(array.header.dtype, &array.header.shape, &bytes).map_err(decode)? {
            Tensor::I64(a) => a.iter().copied().collect(),
            Tensor::I32(a) => a.iter().map(|&v| i64::from(v)).collect(),
            Tensor::U8(a) => a.iter().map(|&v| i64::from(v)).collect(),
            Tensor::I8(a) => a.iter().map(|&v| i64::from(v)).collect(),
            other => {
                return Err(decode(format!(
                    "{} is not an integer type",
                    other.elem_type()
                )));
            }
        };
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| usize::try_from(v).map_err(|_| decode(format!("label {i} is {v}"))))
        .collect()
}

/// Little-endian bytes to a tensor of `shape`.
fn to_tensor(dtype: Dtype, shape: &[usize], bytes: &[u8]) -> Result<Tensor, String> {
    fn build<T>(shape: &[usize], values: Vec<T>) -> Result<ArrayD<T>, String> {
        ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| e.to_string())
    }
    macro_rules! le {
        ($ty:ty, $n:literal) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let mut b = [0u8; $n];
                    b.copy_from_slice(c);
                    <$ty>::from_le_bytes(b)
                })
                .collect::<Vec<$ty>>()
        };
    }
    Ok(match dtype {
        Dtype::F32 => Tensor::F32(build(shape, le!(f32, 4))?),
        Dtype::F64 => Tensor::F32(build(
            shape,
            le!(f64, 8).into_iter().map(|v| v as f32).collect(),
        )?),
        Dtype::I64 => Tensor::I64(build(shape, le!(i64, 8))?),
        Dtype::I32 => Tensor::I32(build(shape, le!(i32, 4))?),
        Dtype::U8 => Tensor::U8(build(shape, bytes.to_vec())?),
        Dtype::I8 => Tensor::I8(build(shape, bytes.iter().map(|&b| b as i8).collect())?),
        Dtype::Bool => Tensor::Bool(build(shape, bytes.iter().map(|&b| b != 0).collect())?),
    })
}

/// Reads and parses an NPY header from the start of `r`.
fn read_header(r: &mut impl Read) -> Result<Header, String> {
    let mut prefix = [0u8; 8];
    r.read_exact(&mut prefix)
        .map_err(|e| format!("reading the NPY header: {e}"))?;
    if &prefix[..6] != b"\x93NUMPY" {
        return Err("not an NPY file (no \\x93NUMPY magic)".into());
    }
    let major = prefix[6];
    let (header_len, prefix_len) = match major {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|e| format!("reading the NPY header: {e}"))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|e| format!("reading the NPY header: {e}"))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => {
            return Err(format!(
                "NPY format version {v} is not supported (1, 2, 3 are)"
            ));
        }
    };
    if header_len > 1 << 24 {
        return Err(format!("NPY header of {header_len} bytes is implausible"));
    }
    let mut text = vec![0u8; header_len];
    r.read_exact(&mut text)
        .map_err(|e| format!("reading the NPY header: {e}"))?;
    // v1/v2 headers are latin-1, v3 UTF-8; the keys and values we read are ASCII either way.
    let text: String = text.iter().map(|&b| b as char).collect();
    let dict = parse_dict(&text)?;
    let descr = match dict.get("descr") {
        Some(Py::Str(s)) => s.clone(),
        Some(_) => return Err("structured dtypes are not supported".into()),
        None => return Err("the header has no 'descr'".into()),
    };
    let fortran = match dict.get("fortran_order") {
        Some(Py::Bool(b)) => *b,
        _ => return Err("the header has no boolean 'fortran_order'".into()),
    };
    let shape = match dict.get("shape") {
        Some(Py::Tuple(t)) => t.clone(),
        _ => return Err("the header has no 'shape' tuple".into()),
    };
    if fortran {
        return Err(
            "Fortran-ordered arrays are not supported (save with np.ascontiguousarray)".into(),
        );
    }
    let dtype = parse_descr(&descr)?;
    Ok(Header {
        dtype,
        shape,
        data_offset: (prefix_len + header_len) as u64,
    })
}

fn parse_descr(descr: &str) -> Result<Dtype, String> {
    let (order, kind) = descr.split_at(descr.len().min(1));
    let dtype = match kind {
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        "i8" => Dtype::I64,
        "i4" => Dtype::I32,
        "u1" => Dtype::U8,
        "i1" => Dtype::I8,
        "b1" => Dtype::Bool,
        _ => {
            return Err(format!(
                "dtype {descr:?} is not supported (f4, f8, i8, i4, u1, i1, b1 are)"
            ));
        }
    };
    match order {
        "<" | "|" => Ok(dtype),
        "=" if cfg!(target_endian = "little") => Ok(dtype),
        ">" if dtype.size() == 1 => Ok(dtype),
        ">" => Err(format!(
            "big-endian dtype {descr:?} is not supported (use '<')"
        )),
        _ => Err(format!("dtype {descr:?} has no byte-order mark")),
    }
}

/// The Python literals an NPY header holds.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    Other,
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_dict(text: &str) -> Result<BTreeMap<String, Py>, String> {
    let bad = |what: &str| format!("bad NPY header ({what}): {:?}", text.trim());
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    p.skip_ws();
    if !p.eat(b'{') {
        return Err(bad("no '{'"));
    }
    let mut dict = BTreeMap::new();
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string().ok_or_else(|| bad("key"))?;
        p.skip_ws();
        if !p.eat(b':') {
            return Err(bad("no ':'"));
        }
        p.skip_ws();
        let value = p.value().ok_or_else(|| bad("value"))?;
        dict.insert(key, value);
        p.skip_ws();
        if !p.eat(b',') {
            p.skip_ws();
            if p.eat(b'}') {
                break;
            }
            return Err(bad("no ',' or '}'"));
        }
    }
    Ok(dict)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek().filter(|&q| q == b'\'' || q == b'"')?;
        self.at += 1;
        let start = self.at;
        while self.peek()? != quote {
            self.at += 1;
        }
        let s = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        self.at += 1;
        Some(s)
    }

    fn int(&mut self) -> Option<usize> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()?
            .parse()
            .ok()
    }

    fn value(&mut self) -> Option<Py> {
        match self.peek()? {
            b'\'' | b'"' => self.string().map(Py::Str),
            b'T' if self.s[self.at..].starts_with(b"True") => {
                self.at += 4;
                Some(Py::Bool(true))
            }
            b'F' if self.s[self.at..].starts_with(b"False") => {
                self.at += 5;
                Some(Py::Bool(false))
            }
            b'(' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(b')') {
                        return Some(Py::Tuple(items));
                    }
                    items.push(self.int()?);
                    // numpy writes `(3,)` and sometimes `3L` on Python 2.
                    self.eat(b'L');
                    self.skip_ws();
                    if !self.eat(b',') {
                        self.skip_ws();
                        return self.eat(b')').then_some(Py::Tuple(items));
                    }
                }
            }
            b'[' => {
                // A structured dtype's field list: skip to the matching bracket.
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'[' => depth += 1,
                        b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(Py::Other);
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        let d = parse_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }  \n")
            .expect("dict");
        assert_eq!(d.get("descr"), Some(&Py::Str("<f4".into())));
        assert_eq!(d.get("fortran_order"), Some(&Py::Bool(false)));
        assert_eq!(d.get("shape"), Some(&Py::Tuple(vec![3, 4])));
        let d = parse_dict("{'descr':'|u1','fortran_order':True,'shape':(5,)}").expect("dict");
        assert_eq!(d.get("shape"), Some(&Py::Tuple(vec![5])));
        let d = parse_dict("{'descr': '<i8', 'fortran_order': False, 'shape': ()}").expect("dict");
        assert_eq!(d.get("shape"), Some(&Py::Tuple(vec![])));
        let d = parse_dict(
            "{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (2,)}",
        )
        .expect("dict");
        assert_eq!(d.get("descr"), Some(&Py::Other));
        assert!(parse_dict("{'descr': '<f4'").is_err());
        assert!(parse_dict("'descr'").is_err());
        assert_eq!(
            parse_descr(">f4").map_err(|e| e.contains("big-endian")),
            Err(true)
        );
        assert_eq!(parse_descr(">u1"), Ok(Dtype::U8));
        assert!(parse_descr("<c8").is_err());
    }
}
