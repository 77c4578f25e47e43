//! BatchNorm (train and eval), SGD with momentum/Nesterov/weight decay and the losses against
//! numbers from PyTorch 2.15 (CPU). The script that produced them:
//!
//! ```python
//! import torch
//! x = torch.tensor([[[[0.5, -1.0], [2.0, 0.25]], [[1.5, 1.5], [-0.5, 3.0]], [[0.0, 0.1], [0.2, 0.3]]],
//!                   [[[1.0, -2.0], [0.5, 0.75]], [[-1.5, 2.5], [0.5, -3.0]], [[1.0, 1.1], [1.2, 1.3]]]])
//! bn = torch.nn.BatchNorm2d(3)
//! with torch.no_grad():
//!     bn.weight.copy_(torch.tensor([1.0, 0.5, 2.0])); bn.bias.copy_(torch.tensor([0.0, -1.0, 0.5]))
//! bn.train(); y = bn(x)
//! print(y.flatten().tolist(), bn.running_mean.tolist(), bn.running_var.tolist())
//! bn.eval(); print(bn(x).flatten().tolist())
//! for nesterov in [True, False]:
//!     w = torch.nn.Parameter(torch.tensor([[1.0, -2.0, 3.0]]))
//!     opt = torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
//!     for g in [[0.5, 0.5, -1.0], [1.0, -0.25, 0.0], [-0.5, 2.0, 0.125]]:
//!         opt.zero_grad(); w.grad = torch.tensor([g]); opt.step(); print(w.detach().flatten().tolist())
//! logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]]); lab = torch.tensor([0, 2])
//! F = torch.nn.functional
//! print(F.cross_entropy(logits, lab, reduction='none').tolist())
//! print(F.cross_entropy(logits, lab, reduction='none', label_smoothing=0.1).tolist())
//! print((logits.softmax(-1) - F.one_hot(lab, 3).float()).norm(dim=-1).tolist())
//! ```

use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use dynaprune_model::layers::ConvBn;
use dynaprune_model::{loss, Kernels, Mode, Param, ParamKind, Sgd, SgdConfig};

fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w}");
    }
}

const X: [f32; 24] = [
    0.5, -1.0, 2.0, 0.25, 1.5, 1.5, -0.5, 3.0, 0.0, 0.1, 0.2, 0.3, 1.0, -2.0, 0.5, 0.75, -1.5, 2.5, 0.5, -3.0, 1.0,
    1.1, 1.2, 1.3,
];
const TRAIN_Y: [f32; 24] = [
    0.21692964,
    -1.0846483,
    1.5185075,
    0.0,
    -0.7396225,
    -0.7396225,
    -1.2603774,
    -0.3490563,
    -2.0372918,
    -1.6469392,
    -1.2565866,
    -0.8662339,
    0.6507889,
    -1.9523668,
    0.21692964,
    0.4338593,
    -1.520755,
    -0.47924504,
    -1.0,
    -1.9113212,
    1.8662343,
    2.256587,
    2.6469398,
    3.037292,
];
// Verbatim as the reference script printed them (some have more digits than an f32 holds).
#[allow(clippy::excessive_precision)]
const EVAL_Y: [f32; 24] = [
    0.4631567, -0.9994434, 1.9257568, 0.21939, -0.369312, -0.369312, -1.2392265, 0.2831238, 0.365197, 0.57258624,
    0.7799755, 0.9873647, 0.95069003, -1.97451, 0.4631567, 0.70692337, -1.6741836, 0.06564519, -0.8042692, -2.3266194,
    2.4390893, 2.6464787, 2.853868, 3.0612569,
];

/// A 1x1 conv with an identity kernel followed by BatchNorm is exactly BatchNorm.
fn identity_bn(kernels: Kernels) -> (ConvBn, Vec<Param>) {
    let mut params = Vec::new();
    let unit = ConvBn::new(3, 3, 1, 1, 0, "t", DType::F32, &Device::Cpu, &mut params).unwrap();
    params[0].var.set(&Tensor::eye(3, DType::F32, &Device::Cpu).unwrap().reshape((3, 3, 1, 1)).unwrap()).unwrap();
    params[1].var.set(&Tensor::new(&[[1.0f32, 0.5, 2.0], [0.0, -1.0, 0.5]], &Device::Cpu).unwrap()).unwrap();
    let _ = kernels;
    (unit, params)
}

#[test]
fn batch_norm_train_and_eval_match_pytorch() {
    for kernels in [Kernels::Fast, Kernels::Candle] {
        let (unit, _) = identity_bn(kernels);
        let x = Tensor::from_slice(&X, (2, 3, 2, 2), &Device::Cpu).unwrap();
        let y: Vec<f32> =
            unit.forward(&x, Mode::Train, false, kernels).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        close(&y, &TRAIN_Y, 1e-5, "train output");
        let b = unit.buffers();
        close(&b[0].1.to_vec1::<f32>().unwrap(), &[0.025, 0.05, 0.065], 1e-6, "running mean");
        close(&b[1].1.to_vec1::<f32>().unwrap(), &[1.0517857, 1.3214285, 0.93], 1e-6, "running var");
        for mode in [Mode::Eval, Mode::EvalWithGrad] {
            let y: Vec<f32> = unit.forward(&x, mode, false, kernels).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            close(&y, &EVAL_Y, 1e-5, "eval output");
        }
    }
}

fn sgd_run(nesterov: bool) -> Vec<Vec<f32>> {
    let w = Var::from_tensor(&Tensor::new(&[[1.0f32, -2.0, 3.0]], &Device::Cpu).unwrap()).unwrap();
    let params = vec![Param { name: "w".into(), var: w.clone(), kind: ParamKind::LinearWeight }];
    let mut opt = Sgd::from_params(
        &params,
        SgdConfig { lr: 0.1, momentum: 0.9, nesterov, weight_decay: 0.01, decay_bias_and_norm: false },
    )
    .unwrap();
    let mut out = Vec::new();
    for g in [[0.5f32, 0.5, -1.0], [1.0, -0.25, 0.0], [-0.5, 2.0, 0.125]] {
        // A loss whose gradient with respect to w is exactly g.
        let gt = Tensor::new(&[g], &Device::Cpu).unwrap();
        let grads: GradStore = (w.as_tensor() * &gt).unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&grads).unwrap();
        out.push(w.as_tensor().flatten_all().unwrap().to_vec1().unwrap());
    }
    out
}

#[test]
fn sgd_momentum_nesterov_weight_decay_match_pytorch() {
    let want_nesterov =
        [[0.9031, -2.0912, 3.1843], [0.6700741, -2.0786068, 3.2568197], [0.6448904, -2.4677057, 3.2950156]];
    let want_plain = [[0.949, -2.048, 3.097], [0.802151, -2.064152, 3.1812031], [0.7191848, -2.2766247, 3.2413046]];
    for (got, want) in sgd_run(true).iter().zip(&want_nesterov) {
        close(got, want, 1e-6, "nesterov");
    }
    for (got, want) in sgd_run(false).iter().zip(&want_plain) {
        close(got, want, 1e-6, "plain momentum");
    }
}

#[test]
fn no_decay_for_norm_and_bias_unless_asked() {
    let mk = |kind| {
        let v = Var::from_tensor(&Tensor::new(&[1.0f32, 1.0], &Device::Cpu).unwrap()).unwrap();
        (v.clone(), vec![Param { name: "p".into(), var: v, kind }])
    };
    for (kind, decays) in
        [(ParamKind::NormAffine, false), (ParamKind::LinearBias, false), (ParamKind::ConvWeight, true)]
    {
        let (v, params) = mk(kind);
        let mut opt = Sgd::from_params(
            &params,
            SgdConfig { lr: 1.0, momentum: 0.0, nesterov: false, weight_decay: 0.5, decay_bias_and_norm: false },
        )
        .unwrap();
        // A zero gradient (multiplying by a zero tensor keeps the parameter in the graph).
        let zero = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        let grads = (v.as_tensor() * zero).unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&grads).unwrap();
        let after = v.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert_eq!(after, if decays { 0.5 } else { 1.0 }, "{kind:?}");
    }
    assert!(Sgd::from_params(&[], SgdConfig { lr: -1.0, ..SgdConfig::default() }).is_err());
    assert!(Sgd::from_params(&[], SgdConfig { momentum: 0.0, nesterov: true, ..SgdConfig::default() }).is_err());
}

#[test]
fn losses_match_pytorch() {
    let logits = Tensor::new(&[[2.0f32, -1.0, 0.5], [0.1, 0.2, 0.3]], &Device::Cpu).unwrap();
    let labels = Tensor::new(&[0u32, 2], &Device::Cpu).unwrap();
    let ce = loss::cross_entropy_per_sample(&logits, &labels, 0.0).unwrap().to_vec1::<f32>().unwrap();
    close(&ce, &[0.24131133, 1.0019429], 1e-6, "cross-entropy");
    let ls = loss::cross_entropy_per_sample(&logits, &labels, 0.1).unwrap().to_vec1::<f32>().unwrap();
    close(&ls, &[0.39131135, 1.0119429], 1e-6, "label smoothing");
    let e = loss::el2n(&logits, &labels).unwrap().to_vec1::<f32>().unwrap();
    close(&e, &[0.27968758, 0.7753833], 1e-6, "EL2N");
    let c = loss::correct(&logits, &labels).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(c, vec![1.0, 1.0]);
    // sum(w * l) = 2 * 1 + 0.5 * 3 = 3.5: divided by N = 2 it is 1.75 (InfoBatch's convention);
    // divided by the weight sum 2.5 it would be 1.4, and the unweighted mean would be 2.
    let w = Tensor::new(&[2.0f32, 0.5], &Device::Cpu).unwrap();
    let wm = loss::weighted_mean(&Tensor::new(&[1.0f32, 3.0], &Device::Cpu).unwrap(), Some(&w))
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(wm, 1.75, "sum(w * l) / N");
    assert!(loss::cross_entropy_per_sample(&logits, &labels, 1.0).is_err());
}

/// The weights reach the gradient as `sum(w_i * l_i) / N`: for a linear model `logits = x W^T`,
/// `dL/dW = (1 / N) * sum_i w_i (p_i - y_i) x_i^T`, computed here in plain f64 and compared with
/// autograd through `weighted_mean`. Dividing by the weight sum instead, or dropping the
/// weights, moves every entry.
#[test]
fn weighted_loss_gradient_is_the_weighted_sum_over_n() {
    let x = [[1.0f64, -2.0], [0.5, 0.25], [-1.0, 3.0]];
    let labels = [1usize, 0, 2];
    let w_loss = [2.0f64, 0.0, 0.5];
    let wmat = [[0.2f64, -0.1], [0.05, 0.3], [-0.4, 0.1]];
    let n = x.len() as f64;
    let mut want = [[0.0f64; 2]; 3];
    for i in 0..3 {
        let z: Vec<f64> = (0..3).map(|k| wmat[k][0] * x[i][0] + wmat[k][1] * x[i][1]).collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        for k in 0..3 {
            let p = e[k] / s - if k == labels[i] { 1.0 } else { 0.0 };
            for d in 0..2 {
                want[k][d] += w_loss[i] * p * x[i][d] / n;
            }
        }
    }
    let xt = Tensor::new(&x.map(|r| r.map(|v| v as f32)), &Device::Cpu).unwrap();
    let wv =
        candle_core::Var::from_tensor(&Tensor::new(&wmat.map(|r| r.map(|v| v as f32)), &Device::Cpu).unwrap()).unwrap();
    let logits = xt.matmul(&wv.as_tensor().t().unwrap()).unwrap();
    let y = Tensor::new(&labels.map(|v| v as u32), &Device::Cpu).unwrap();
    let per = loss::cross_entropy_per_sample(&logits, &y, 0.0).unwrap();
    let wt = Tensor::new(&w_loss.map(|v| v as f32), &Device::Cpu).unwrap();
    let l = loss::weighted_mean(&per, Some(&wt)).unwrap();
    let g = l.backward().unwrap();
    let got: Vec<Vec<f32>> = g.get(&wv).unwrap().to_vec2().unwrap();
    for k in 0..3 {
        for d in 0..2 {
            assert!(
                (f64::from(got[k][d]) - want[k][d]).abs() < 1e-6,
                "dL/dW[{k}][{d}]: {} vs {}",
                got[k][d],
                want[k][d]
            );
        }
    }
}
