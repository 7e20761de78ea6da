//! The dense (fully connected) layer y = W x + b on a batch, on the GEMM micro-kernels of
//! [`super::gemm`]: Y [n][out] = X [n][in] W^T + b with W^T packed once into panels of NR
//! outputs, and MR samples of X packed per step. A sample's outputs are the same whichever
//! rows of the batch it shares a tile with.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Result, invalid};
use crate::math::simd::VectorIsa;
use crate::nn::conv::product;
use crate::nn::gemm::{Init, Kernel, Packed, pack_a_panel};

/// A dense layer with weight [out][in] (PyTorch's Linear layout) and bias [out].
#[derive(Clone, Debug)]
pub struct Dense {
    n_in: usize,
    n_out: usize,
    micro: Kernel,
    /// [out][in] as given.
    weight: Vec<f32>,
    /// [out].
    bias: Vec<f32>,
    /// Per panel of NR outputs: [in][NR], zero past the last output.
    packed: Vec<f32>,
    /// Per panel: NR biases, zero past the last output.
    packed_bias: Vec<f32>,
}

/// Working memory of one thread for a [`Dense`] layer (one packed panel of MR samples).
#[derive(Clone, Debug, Default)]
pub struct DenseWorkspace {
    panel: Vec<f32>,
}

impl Dense {
    /// A layer from its weight [n_out][n_in] (f32, f16 or bf16) and optional bias [n_out].
    ///
    /// Errors: [`crate::Error::InvalidArgument`] for zero sizes, overflowing sizes, wrong
    /// lengths or non-finite values (named by index).
    pub fn new<W: Copy + Into<f32>>(
        n_in: usize,
        n_out: usize,
        weight: &[W],
        bias: Option<&[W]>,
    ) -> Result<Self> {
        Self::with_isa(n_in, n_out, weight, bias, VectorIsa::selected()?)
    }

    /// [`Dense::new`] on the micro-kernel of a given instruction set (one this CPU runs).
    pub fn with_isa<W: Copy + Into<f32>>(
        n_in: usize,
        n_out: usize,
        weight: &[W],
        bias: Option<&[W]>,
        isa: VectorIsa,
    ) -> Result<Self> {
        if n_in == 0 || n_out == 0 {
            return Err(invalid!("dense layer needs n_in ({n_in}) and n_out ({n_out}) >= 1"));
        }
        let len = product("dense weight", &[n_out, n_in])?;
        if weight.len() != len {
            return Err(invalid!(
                "weight has {} values, expected n_out x n_in = {n_out} x {n_in}",
                weight.len()
            ));
        }
        let weight: Vec<f32> = weight.iter().map(|&v| v.into()).collect();
        if let Some(i) = weight.iter().position(|v| !v.is_finite()) {
            return Err(invalid!("weight[{i}] is {} (weights must be finite)", weight[i]));
        }
        let bias: Vec<f32> = match bias {
            Some(b) if b.len() != n_out => {
                return Err(invalid!("bias has {} values, expected n_out = {n_out}", b.len()));
            }
            Some(b) => b.iter().map(|&v| v.into()).collect(),
            None => vec![0.0; n_out],
        };
        if let Some(i) = bias.iter().position(|v| !v.is_finite()) {
            return Err(invalid!("bias[{i}] is {} (must be finite)", bias[i]));
        }
        let mut layer = Self {
            n_in,
            n_out,
            micro: Kernel::for_isa(isa.require()?),
            weight,
            bias,
            packed: Vec::new(),
            packed_bias: Vec::new(),
        };
        layer.pack();
        Ok(layer)
    }

    fn pack(&mut self) {
        let nr = self.micro.nr();
        let panels = self.n_out.div_ceil(nr);
        self.packed = vec![0.0; panels * self.n_in * nr];
        self.packed_bias = vec![0.0; panels * nr];
        for p in 0..panels {
            // W^T [in][out] packed as an "A panel" of NR columns: element (o, i) of W.
            let dst = &mut self.packed[p * self.n_in * nr..(p + 1) * self.n_in * nr];
            pack_a_panel(&self.weight, (self.n_out, self.n_in), (self.n_in, 1), p * nr, nr, dst);
            for j in 0..nr.min(self.n_out - p * nr) {
                self.packed_bias[p * nr + j] = self.bias[p * nr + j];
            }
        }
    }

    /// Inputs.
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Outputs.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// The weight [out][in] and bias [out].
    pub fn weight_and_bias(&self) -> (&[f32], &[f32]) {
        (&self.weight, &self.bias)
    }

    /// w[o] *= scale[o], bias[o] = bias[o] scale[o] + shift[o] (batch-norm folding).
    pub(crate) fn fold_affine(&mut self, scale: &[f32], shift: &[f32]) {
        for (o, row) in self.weight.chunks_exact_mut(self.n_in).enumerate() {
            row.iter_mut().for_each(|w| *w *= scale[o]);
            self.bias[o] = self.bias[o] * scale[o] + shift[o];
        }
        self.pack();
    }

    /// Bytes of the working memory [`workspace`](Self::workspace) allocates: 4 n_in MR.
    pub fn workspace_bytes(&self) -> usize {
        self.n_in.saturating_mul(self.micro.mr()).saturating_mul(core::mem::size_of::<f32>())
    }

    /// Working memory for [`forward_with`](Self::forward_with).
    pub fn workspace(&self) -> DenseWorkspace {
        DenseWorkspace { panel: vec![0.0; self.n_in * self.micro.mr()] }
    }

    /// y = W x + b for `input` [n][n_in] into `output` [n][n_out].
    ///
    /// Errors: [`crate::Error::InvalidArgument`] when the lengths are not n whole rows.
    pub fn forward(&self, input: &[f32], output: &mut [f32]) -> Result<()> {
        let mut work = self.workspace();
        self.forward_with(&mut work, input, output)
    }

    /// [`forward`](Self::forward) with caller-held working memory.
    pub fn forward_with(&self, work: &mut DenseWorkspace, input: &[f32], output: &mut [f32]) -> Result<()> {
        let n = input.len() / self.n_in;
        if input.len() != n * self.n_in || output.len() != n * self.n_out {
            return Err(invalid!(
                "input has {} values and output {}: expected n x {} and n x {}",
                input.len(),
                output.len(),
                self.n_in,
                self.n_out
            ));
        }
        let (mr, nr) = (self.micro.mr(), self.micro.nr());
        let k = self.n_in;
        if work.panel.len() < k * mr {
            work.panel.resize(k * mr, 0.0);
        }
        let panel = &mut work.panel[..k * mr];
        for m0 in (0..n).step_by(mr) {
            let rows = mr.min(n - m0);
            pack_a_panel(input, (n, k), (k, 1), m0, mr, panel);
            for p in 0..self.n_out.div_ceil(nr) {
                let cols = nr.min(self.n_out - p * nr);
                // SAFETY: the A panel holds K MR values, the B panel K NR, the bias NR; the
                // output rows m0..m0 + rows hold n_out values each.
                unsafe {
                    self.micro.tile(
                        k,
                        panel,
                        &self.packed[p * k * nr..(p + 1) * k * nr],
                        Packed(nr),
                        Init::Columns(&self.packed_bias[p * nr..(p + 1) * nr]),
                        &mut output[m0 * self.n_out + p * nr..],
                        self.n_out,
                        (rows, cols),
                    )
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_equals_the_definition_on_every_variant() {
        let (n_in, n_out, n) = (37, 45, 19);
        let w: Vec<f32> = (0..n_in * n_out).map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0).collect();
        let b: Vec<f32> = (0..n_out).map(|i| i as f32 / 10.0).collect();
        let x: Vec<f32> = (0..n * n_in).map(|i| ((i * 13 % 23) as f32 - 11.0) / 7.0).collect();
        for isa in VectorIsa::available() {
            let layer = Dense::with_isa(n_in, n_out, &w, Some(&b), isa).unwrap();
            let mut y = vec![0.0f32; n * n_out];
            layer.forward(&x, &mut y).unwrap();
            for s in 0..n {
                for o in 0..n_out {
                    let expect = f64::from(b[o])
                        + (0..n_in)
                            .map(|i| f64::from(w[o * n_in + i]) * f64::from(x[s * n_in + i]))
                            .sum::<f64>();
                    assert!((f64::from(y[s * n_out + o]) - expect).abs() < 1e-5 * (1.0 + expect.abs()));
                }
            }
        }
        assert!(Dense::new(2, 2, &[f32::NAN; 4], None).is_err());
    }
}
