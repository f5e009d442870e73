//! Model weights read tensor by tensor from a `model.safetensors` file, never whole.
//!
//! Reading the file into one buffer first (candle's buffered loader) held the 470 MB
//! file and a copy of each tensor at once: `cskh serve` peaked at ~970 MB while it
//! started, twice what it keeps. Here a tensor's bytes are read when a layer asks for
//! it and dropped once the layer has its own copy, and the token embedding table (most
//! of the file) is read in row slices ([`WeightsFile::rows_f32`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{bail, DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use safetensors::tensor as st;

/// Headers larger than this are refused (the format's own limit).
const MAX_HEADER: u64 = 100_000_000;

#[derive(Debug, Clone)]
struct TensorInfo {
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

pub struct WeightsFile {
    file: Mutex<File>,
    len: u64,
    tensors: HashMap<String, TensorInfo>,
}

impl WeightsFile {
    /// Reads and checks the header: every tensor's dtype is known and its byte range
    /// lies inside the file and matches its shape.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut n = [0u8; 8];
        file.read_exact(&mut n)
            .map_err(|_| candle_core::Error::Msg("file too short for a header".into()))?;
        let header_len = u64::from_le_bytes(n);
        if header_len > MAX_HEADER || 8 + header_len > len {
            bail!("header length {header_len} does not fit the file ({len} bytes)");
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header)?;
        let raw: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| candle_core::Error::Msg(format!("header: {e}")))?;
        let data_start = 8 + header_len;
        let mut tensors = HashMap::with_capacity(raw.len());
        for (name, value) in raw {
            if name == "__metadata__" {
                continue;
            }
            let info: st::TensorInfo = serde_json::from_value(value)
                .map_err(|e| candle_core::Error::Msg(format!("header entry {name}: {e}")))?;
            let dtype = DType::try_from(info.dtype)?;
            let (a, b) = (info.data_offsets.0 as u64, info.data_offsets.1 as u64);
            let (start, end) = (data_start + a, data_start + b);
            let want = info.shape.iter().product::<usize>() * dtype.size_in_bytes();
            if a > b || end > len || (b - a) as usize != want {
                bail!(
                    "tensor {name}: bytes {a}..{b} do not hold shape {:?} of {:?} inside the file",
                    info.shape,
                    info.dtype
                );
            }
            tensors.insert(
                name,
                TensorInfo {
                    dtype,
                    shape: info.shape,
                    start,
                    end,
                },
            );
        }
        Ok(Self {
            file: Mutex::new(file),
            len,
            tensors,
        })
    }

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        match self.tensors.get(name) {
            Some(t) => Ok(t),
            None => bail!("cannot find tensor {name}"),
        }
    }

    /// `len` bytes at `offset` (fewer at the end of the file).
    pub fn bytes_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let len = len.min(self.len.saturating_sub(offset) as usize);
        let mut buf = vec![0u8; len];
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// One whole tensor, converted to `dtype`.
    pub fn tensor(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let t = self.info(name)?;
        let bytes = self.bytes_at(t.start, (t.end - t.start) as usize)?;
        Tensor::from_raw_buffer(&bytes, t.dtype, &t.shape, dev)?.to_dtype(dtype)
    }

    /// Rows `start..start + n` of a 2-D tensor as f32, row-major.
    pub fn rows_f32(&self, name: &str, start: usize, n: usize) -> Result<Vec<f32>> {
        let t = self.info(name)?;
        let [rows, dim] = t.shape[..] else {
            bail!("tensor {name} has shape {:?}, not 2-D", t.shape);
        };
        if start + n > rows {
            bail!(
                "rows {start}..{} outside tensor {name} ({rows} rows)",
                start + n
            );
        }
        let row_bytes = dim * t.dtype.size_in_bytes();
        let bytes = self.bytes_at(t.start + (start * row_bytes) as u64, n * row_bytes)?;
        Tensor::from_raw_buffer(&bytes, t.dtype, &[n, dim], &Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1()
    }

    /// A candle `VarBuilder` reading from this file on demand.
    pub fn var_builder(self: &Arc<Self>, dtype: DType, dev: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(Lazy(self.clone())), dtype, dev.clone())
    }
}

struct Lazy(Arc<WeightsFile>);

impl SimpleBackend for Lazy {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let t = self.0.info(name)?;
        if t.shape != s.dims() {
            bail!(
                "tensor {name} has shape {:?}, expected {:?}",
                t.shape,
                s.dims()
            );
        }
        self.0.tensor(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.0.tensor(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, tensors: &[(&str, Tensor)]) {
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, path).unwrap();
    }

    #[test]
    fn reads_tensors_and_row_slices_as_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let dev = Device::Cpu;
        let table: Vec<f32> = (0..40).map(|i| i as f32 * 0.5 - 3.0).collect();
        let half: Vec<f32> = vec![1.5, -2.25, 0.125];
        write(
            &path,
            &[
                (
                    "table",
                    Tensor::from_vec(table.clone(), (10, 4), &dev).unwrap(),
                ),
                (
                    "half",
                    Tensor::from_vec(half.clone(), 3, &dev)
                        .unwrap()
                        .to_dtype(DType::F16)
                        .unwrap(),
                ),
            ],
        );
        let w = Arc::new(WeightsFile::open(&path).unwrap());
        assert_eq!(w.len(), std::fs::metadata(&path).unwrap().len());
        assert_eq!(w.shape("table"), Some(&[10, 4][..]));
        assert_eq!(w.rows_f32("table", 3, 2).unwrap(), table[12..20].to_vec());
        assert!(w.rows_f32("table", 9, 2).is_err());
        // F16 on disk, f32 out.
        let vb = w.var_builder(DType::F32, &dev);
        assert_eq!(vb.get(3, "half").unwrap().to_vec1::<f32>().unwrap(), half);
        assert!(vb.get((3, 1), "half").is_err());
        assert!(vb.get(3, "missing").is_err());
        assert!(vb.contains_tensor("table") && !vb.contains_tensor("missing"));
    }

    #[test]
    fn refuses_truncated_and_inconsistent_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let dev = Device::Cpu;
        write(
            &path,
            &[("t", Tensor::from_vec(vec![1f32; 64], (8, 8), &dev).unwrap())],
        );
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 4]).unwrap();
        assert!(WeightsFile::open(&path).is_err());
        std::fs::write(&path, &full[..5]).unwrap();
        assert!(WeightsFile::open(&path).is_err());
        let mut lying = full.clone();
        lying[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        std::fs::write(&path, &lying).unwrap();
        assert!(WeightsFile::open(&path).is_err());
        std::fs::write(&path, &full).unwrap();
        assert!(WeightsFile::open(&path).is_ok());
    }
}
