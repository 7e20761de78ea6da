//! [`Made::to_spec`]: the [`MadeSpec`] a compiled model came from, in the file's unit order
//! (what [`crate::nn::save`] writes).
//!
//! [`Made::new`] sorts every buffer's units by degree with a stable argsort and keeps the
//! permutations (`orders`, `context_order`, `data_order`); undoing them puts every weight,
//! bias, degree and standardisation value back at its file position. Weights outside the
//! masks come back as 0 (the compiled layers store them masked), so the spec compiles to the
//! same model, bit for bit, whatever the original file held there.

use alloc::vec;
use alloc::vec::Vec;

use super::{HeadsSpec, LayerSpec, Made, MadeSpec, Stage, Standardize};
use crate::error::Result;

/// `sorted` (internal order) back in file order: `out[order[p]] = sorted[p]`.
fn unsort<T: Copy + Default>(sorted: &[T], order: &[usize]) -> Vec<T> {
    let mut out = vec![T::default(); sorted.len()];
    for (p, &i) in order.iter().enumerate() {
        out[i] = sorted[p];
    }
    out
}

impl Made {
    /// The specification this model compiles from, in the file's unit order: layers with the
    /// weights [n_out][n_in] of the file's units (zero outside the masks), degrees, heads
    /// (rows d K + k) and standardisation. [`Made::new`] of the result gives the same model
    /// (bit-identical log-densities and samples). A standardisation pair that is the identity
    /// (means +0, standard deviations 1, as when the file stored none) is returned empty.
    ///
    /// Any model has a spec (nflows models included: their layout is the layer list);
    /// [`crate::nn::save`] says which specs the plain file layout can hold.
    ///
    /// Errors: none today (the `Result` leaves room for layers that cannot be expressed).
    pub fn to_spec(&self) -> Result<MadeSpec> {
        let (c, k) = (self.n_context, self.n_components);
        let mut layers = Vec::with_capacity(self.stages.len());
        for (s, stage) in self.stages.iter().enumerate() {
            let out_order = &self.orders[s + 1];
            match stage {
                Stage::Dense { layer, input, uses_context, activation, residual } => {
                    let in_order = &self.orders[*input];
                    let (n_in, n_out) = (in_order.len(), out_order.len());
                    let skip = if *uses_context { c } else { 0 };
                    let n_cols = skip + n_in;
                    let compiled = layer.weight();
                    let mut weight = vec![0.0f32; n_out * n_in];
                    let mut context_weight = uses_context.then(|| vec![0.0f32; n_out * c]);
                    for (p, &o) in out_order.iter().enumerate() {
                        let row = &compiled[p * n_cols..(p + 1) * n_cols];
                        if let Some(cw) = &mut context_weight {
                            for (j, &ci) in self.context_order.iter().enumerate() {
                                cw[o * c + ci] = row[j];
                            }
                        }
                        for (q, &i) in in_order.iter().enumerate() {
                            weight[o * n_in + i] = row[skip + q];
                        }
                    }
                    layers.push(LayerSpec::Dense {
                        input: *input,
                        weight,
                        context_weight,
                        bias: unsort(layer.bias(), out_order),
                        degrees: unsort(&self.buffer_degrees[s + 1], out_order),
                        activation: *activation,
                        residual: *residual,
                    });
                }
                Stage::Affine { input, scale, shift, activation } => layers.push(LayerSpec::Affine {
                    input: *input,
                    scale: unsort(scale, out_order),
                    shift: unsort(shift, out_order),
                    activation: *activation,
                }),
            }
        }
        let last = &self.orders[self.orders.len() - 1];
        let n_hidden = last.len();
        let rows = self.n_dims * k;
        let mut heads: [(Vec<f32>, Vec<f32>); 3] =
            core::array::from_fn(|_| (vec![0.0; rows * n_hidden], vec![0.0; rows]));
        let compiled = self.heads.weight();
        let bias = self.heads.bias();
        for (t, &d) in self.data_order.iter().enumerate() {
            for (part, (w, b)) in heads.iter_mut().enumerate() {
                for component in 0..k {
                    let internal = t * 3 * k + part * k + component;
                    let row = d * k + component;
                    let source = &compiled[internal * n_hidden..(internal + 1) * n_hidden];
                    for (q, &i) in last.iter().enumerate() {
                        w[row * n_hidden + i] = source[q];
                    }
                    b[row] = bias[internal];
                }
            }
        }
        let [logits, means, scales] = heads;
        // The identity standardisation is stored as nothing (the loader's default).
        let pair = |mean: &[f64], std: &[f64], order: &[usize]| -> (Vec<f64>, Vec<f64>) {
            if mean.iter().all(|m| m.to_bits() == 0) && std.iter().all(|&s| s == 1.0) {
                (Vec::new(), Vec::new())
            } else {
                (unsort(mean, order), unsort(std, order))
            }
        };
        let (x_mean, x_std) = pair(&self.x_mean, &self.x_std, &self.data_order);
        let (context_mean, context_std) = pair(&self.context_mean, &self.context_std, &self.context_order);
        Ok(MadeSpec {
            context_degrees: unsort(&self.context_degrees, &self.context_order),
            data_degrees: unsort(&self.data_degrees, &self.data_order),
            n_components: k,
            layers,
            heads: HeadsSpec { logits, means, scales, scale: self.scale },
            standardize: Standardize { x_mean, x_std, context_mean, context_std },
        })
    }
}
