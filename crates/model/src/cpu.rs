//! What this CPU can run, and which instruction-set path our kernels take on it: recorded with
//! every run, because results computed through different paths may differ in the last bits
//! (the GEMM crate's AVX-512 and AVX2 micro-kernels round differently), so "bit-identical to the
//! reference" holds only between runs that took the same path.

use candle_core::Device;

use crate::layers::Kernels;

/// The x86 features our kernels and the GEMM crate dispatch on, those this CPU has, in a fixed
/// order: e.g. `avx2 fma avx512f avx512bw avx512cd avx512dq avx512vl avx512bf16`. Empty off x86.
pub fn features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let all = [
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("avx512f", has!("avx512f")),
            ("avx512bw", has!("avx512bw")),
            ("avx512cd", has!("avx512cd")),
            ("avx512dq", has!("avx512dq")),
            ("avx512vl", has!("avx512vl")),
            ("avx512bf16", has!("avx512bf16")),
        ];
        all.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect::<Vec<_>>().join(" ")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        String::new()
    }
}

/// The GEMM crate's path on this CPU: `x86-v4` (AVX-512: F, BW, CD, DQ, VL), `x86-v3` (AVX2 +
/// FMA) or `baseline`, as its run-time dispatch chooses.
pub fn gemm_path() -> &'static str {
    let f = features();
    let has = |n: &str| f.split(' ').any(|x| x == n);
    if ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].iter().all(|n| has(n)) && has("avx2") && has("fma") {
        "x86-v4"
    } else if has("avx2") && has("fma") {
        "x86-v3"
    } else {
        "baseline"
    }
}

/// The kernel path of `kernels` on `device`, in words: e.g. `fast f32 (gemm x86-v4, elementwise
/// avx2+fma)`, `candle f32 (gemm x86-v3)`, `candle on cuda:0`. Two CPU runs with the same string
/// ran the same instructions.
pub fn kernel_path(kernels: Kernels, device: &Device) -> String {
    if !device.is_cpu() {
        return format!("candle on {device:?}").to_lowercase();
    }
    let precision = match kernels.precision() {
        crate::Precision::F32 => "f32",
        crate::Precision::Bf16 => "bf16",
    };
    let elementwise = if crate::ops::simd_has_avx2() { "avx2+fma" } else { "baseline" };
    if let Kernels::Direct(isa) = kernels {
        return format!("direct f32 ({} kernels, nhwc; gemm {} for the head)", isa.name(), gemm_path());
    }
    if kernels.is_fast() {
        let bf16 = if kernels.precision() == crate::Precision::Bf16 { ", avx512bf16 dot products" } else { "" };
        format!("fast {precision} (gemm {}, elementwise {elementwise}{bf16})", gemm_path())
    } else {
        format!("candle {precision} (gemm {})", gemm_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_follows_the_features() {
        let f = features();
        let p = kernel_path(Kernels::Fast, &Device::Cpu);
        assert!(p.starts_with("fast f32 (gemm "), "{p}");
        if f.contains("avx512vl") && f.contains("avx512dq") {
            assert!(p.contains("x86-v4"), "{f}: {p}");
        }
        if !f.contains("avx2") {
            assert!(p.contains("baseline"), "{f}: {p}");
        }
        assert_eq!(kernel_path(Kernels::Candle, &Device::Cpu), format!("candle f32 (gemm {})", gemm_path()));
    }
}
