//! Arrays in: NumPy arrays, or anything NumPy can view (`__array__`: a CPU torch tensor, a JAX
//! array, a list). Each is checked to be 1-D and of an accepted dtype, and the error names the
//! argument and what was expected. Contiguous float32 values are read in place (no copy); a
//! strided view (`x[::2]`, `idx[rank::world]`) is copied once into a contiguous array.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::value_error;

/// Float values: a zero-copy view of a float32 array, or a converted float64 array.
pub enum Floats<'py> {
    View(PyReadonlyArray1<'py, f32>),
    Owned(Vec<f32>),
}

impl Floats<'_> {
    pub fn as_slice(&self, arg: &str) -> PyResult<&[f32]> {
        match self {
            Floats::View(a) => a.as_slice().map_err(|e| value_error(arg, e)),
            Floats::Owned(v) => Ok(v),
        }
    }
}

/// `obj` as a NumPy array, 1-D and contiguous (a strided array is copied).
fn one_d<'py>(obj: &Bound<'py, PyAny>, arg: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let arr = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let np = PyModule::import(py, "numpy")?;
            let a = np.call_method1("asarray", (obj,)).map_err(|e| {
                value_error(arg, format!("cannot be read as an array ({e}); pass a NumPy array or a CPU tensor"))
            })?;
            a.cast_into::<PyUntypedArray>().map_err(|_| value_error(arg, "numpy.asarray did not return an array"))?
        }
    };
    if arr.ndim() != 1 {
        return Err(value_error(arg, format!("expected a 1-D array, got shape {:?}", arr.shape())));
    }
    if !arr.is_contiguous() {
        // A strided view (x[::2], idx[rank::world], a transposed column): one contiguous copy.
        // Index arrays are small, and contiguous float32 losses still take the in-place path.
        let np = PyModule::import(obj.py(), "numpy")?;
        let copy = np.call_method1("ascontiguousarray", (&arr,)).map_err(|e| value_error(arg, e))?;
        return copy
            .cast_into::<PyUntypedArray>()
            .map_err(|_| value_error(arg, "numpy.ascontiguousarray did not return an array"));
    }
    Ok(arr)
}

fn dtype_name(arr: &Bound<'_, PyUntypedArray>) -> String {
    arr.dtype().str().map(|s| s.to_string()).unwrap_or_else(|_| "?".into())
}

/// Sample indices: any signed or unsigned integer dtype of 32 or 64 bits; negatives are rejected.
pub fn indices(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<Vec<usize>> {
    let arr = one_d(obj, arg)?;
    if arr.len() == 0 {
        return Ok(Vec::new());
    }
    fn signed<T: numpy::Element + Copy + Into<i64>>(
        a: &Bound<'_, PyUntypedArray>,
        arg: &str,
    ) -> PyResult<Option<Vec<usize>>> {
        let Ok(a) = a.cast::<PyArray1<T>>() else { return Ok(None) };
        let r = a.readonly();
        let s = r.as_slice().map_err(|e| value_error(arg, e))?;
        let mut out = Vec::with_capacity(s.len());
        for (k, &v) in s.iter().enumerate() {
            let v: i64 = v.into();
            if v < 0 {
                return Err(value_error(
                    arg,
                    format!("index {v} at position {k} is negative: sample indices are 0..n"),
                ));
            }
            out.push(v as usize);
        }
        Ok(Some(out))
    }
    fn unsigned<T: numpy::Element + Copy + Into<u64>>(
        a: &Bound<'_, PyUntypedArray>,
        arg: &str,
    ) -> PyResult<Option<Vec<usize>>> {
        let Ok(a) = a.cast::<PyArray1<T>>() else { return Ok(None) };
        let r = a.readonly();
        let s = r.as_slice().map_err(|e| value_error(arg, e))?;
        s.iter()
            .map(|&v| {
                usize::try_from(v.into()).map_err(|_| value_error(arg, "index does not fit in this machine's usize"))
            })
            .collect::<PyResult<Vec<_>>>()
            .map(Some)
    }
    if let Some(v) = signed::<i64>(&arr, arg)? {
        return Ok(v);
    }
    if let Some(v) = signed::<i32>(&arr, arg)? {
        return Ok(v);
    }
    if let Some(v) = unsigned::<u64>(&arr, arg)? {
        return Ok(v);
    }
    if let Some(v) = unsigned::<u32>(&arr, arg)? {
        return Ok(v);
    }
    Err(value_error(
        arg,
        format!("expected an integer array (int64, int32, uint64 or uint32), got dtype {}", dtype_name(&arr)),
    ))
}

/// Float values (losses, scores, confidences): float32 read in place, float64 converted (values
/// beyond float32's range become infinite and are then rejected as non-finite by the crate).
pub fn floats<'py>(obj: &Bound<'py, PyAny>, arg: &str) -> PyResult<Floats<'py>> {
    let arr = one_d(obj, arg)?;
    if let Ok(a) = arr.cast::<PyArray1<f32>>() {
        return Ok(Floats::View(a.readonly()));
    }
    if let Ok(a) = arr.cast::<PyArray1<f64>>() {
        let r = a.readonly();
        let s = r.as_slice().map_err(|e| value_error(arg, e))?;
        return Ok(Floats::Owned(s.iter().map(|&v| v as f32).collect()));
    }
    if arr.len() == 0 {
        return Ok(Floats::Owned(Vec::new()));
    }
    Err(value_error(arg, format!("expected a float32 or float64 array, got dtype {}", dtype_name(&arr))))
}

/// Booleans (whether each prediction was right): dtype bool.
pub fn bools(obj: &Bound<'_, PyAny>, arg: &str) -> PyResult<Vec<bool>> {
    let arr = one_d(obj, arg)?;
    if let Ok(a) = arr.cast::<PyArray1<bool>>() {
        let r = a.readonly();
        return Ok(r.as_slice().map_err(|e| value_error(arg, e))?.to_vec());
    }
    if arr.len() == 0 {
        return Ok(Vec::new());
    }
    Err(value_error(arg, format!("expected a bool array, got dtype {}", dtype_name(&arr))))
}

/// Indices out, as int64 (what torch and NumPy index with).
pub fn index_array<'py>(py: Python<'py>, v: &[usize]) -> Bound<'py, PyArray1<i64>> {
    PyArray1::from_vec(py, v.iter().map(|&i| i as i64).collect())
}
