//! A small feed-forward network graph (the seed's SD-reconstruction architecture: a 1-D
//! convolution branch over detector time traces, a 2-D branch over the detector grid, extra
//! detector features, joined by flatten and concatenation and finished by dense layers), run on
//! batches. Networks are loaded from files by [`crate::nn::network_load`].
//!
//! The batch is processed in chunks of up to [`CHUNK`] samples, each layer over the whole
//! chunk; a sample's numbers do not depend on its chunk, so results are the same on any thread
//! count (the std crate's `network` module splits batches across threads on chunk boundaries).
//!
//! Memory: a thread's working memory is [`Network::workspace_bytes`] = chunk x
//! [`Network::bytes_per_sample`] + [`Network::fixed_workspace_bytes`], whatever the batch; the
//! chunk shrinks below [`CHUNK`] for networks with large activations so that this stays within
//! [`MAX_WORKSPACE_BYTES`], and a network whose single sample does not fit is refused at load.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Result, invalid};
use crate::nn::activation::{ActivationFn, softmax_rows};
use crate::nn::conv::{Conv2d, ConvWorkspace};
use crate::nn::linear::{Dense, DenseWorkspace};
use crate::nn::pool::{Pool2d, global_avgpool};

/// Samples processed together, layer by layer (fewer when they would not fit in
/// [`MAX_WORKSPACE_BYTES`]).
pub const CHUNK: usize = 32;

/// The most working memory one thread may need to run a network: 1 GiB. A network file whose
/// single sample needs more (absurd declared input shapes or paddings) is refused at load.
pub const MAX_WORKSPACE_BYTES: usize = 1 << 30;

/// A named input of a network and its per-sample shape (channels first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInput {
    /// The name in the network file.
    pub name: String,
    /// Per-sample shape, e.g. [2, 256] for two traces of 256 samples.
    pub shape: Vec<usize>,
}

impl NetworkInput {
    /// Values per sample.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One computation of the graph.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Conv(Conv2d),
    Dense(Dense),
    /// out = in scale[c] + shift[c] over planes of `plane` values (an unfolded batch norm).
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
        plane: usize,
    },
    Activation(ActivationFn),
    Softmax,
    Pool(Pool2d),
    GlobalAvgPool {
        plane: usize,
    },
    /// [C][plane] -> [plane][C] (Keras' channels-last flatten).
    ChannelsLast {
        channels: usize,
        plane: usize,
    },
    Concat,
}

/// An operation with the buffers it reads and writes (buffers 0..inputs are the network
/// inputs).
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) op: Op,
    pub(crate) inputs: Vec<usize>,
    pub(crate) output: usize,
    /// "layer i (type)", for messages.
    pub(crate) label: String,
}

/// A loaded network: immutable, shareable across threads (each thread has a
/// [`NetworkWorkspace`]).
#[derive(Clone, Debug)]
pub struct Network {
    pub(crate) inputs: Vec<NetworkInput>,
    /// Values per sample of every buffer.
    pub(crate) buffer_sizes: Vec<usize>,
    pub(crate) steps: Vec<Step>,
    pub(crate) output: usize,
    /// Samples per chunk (1 ..= CHUNK), from [`Network::chunk_within`].
    pub(crate) chunk: usize,
}

/// Working memory of one thread: every intermediate buffer for [`CHUNK`] samples.
#[derive(Clone, Debug)]
pub struct NetworkWorkspace {
    buffers: Vec<Vec<f32>>,
    scratch: Vec<Scratch>,
}

#[derive(Clone, Debug)]
enum Scratch {
    None,
    Conv(ConvWorkspace),
    Dense(DenseWorkspace),
}

impl Network {
    /// The declared inputs, in file order.
    pub fn inputs(&self) -> &[NetworkInput] {
        &self.inputs
    }

    /// Values per sample of the output (the last layer's output, flattened).
    pub fn output_size(&self) -> usize {
        self.buffer_sizes[self.output]
    }

    /// Layers that run, after batch-norm folding and with identity layers removed.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Multiply-adds per sample in the convolution and dense layers.
    pub fn macs_per_sample(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match &s.op {
                Op::Conv(c) => c.macs_per_sample(),
                Op::Dense(d) => (d.n_in() * d.n_out()) as u64,
                _ => 0,
            })
            .sum()
    }

    /// Samples run together, layer by layer: [`CHUNK`], or fewer for a network whose
    /// activations would not fit in [`MAX_WORKSPACE_BYTES`].
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Bytes of intermediate values per sample: 4 x the sizes of every layer's output.
    pub fn bytes_per_sample(&self) -> usize {
        self.buffer_sizes[self.inputs.len()..]
            .iter()
            .fold(0usize, |acc, &size| acc.saturating_add(size))
            .saturating_mul(core::mem::size_of::<f32>())
    }

    /// Bytes of working memory that do not grow with the chunk: each convolution's padded
    /// input of one sample (and im2col panel), each dense layer's packing panel.
    pub fn fixed_workspace_bytes(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match &s.op {
                Op::Conv(c) => c.workspace_bytes(),
                Op::Dense(d) => d.workspace_bytes(),
                _ => 0,
            })
            .fold(0usize, usize::saturating_add)
    }

    /// A thread's working memory in bytes: [`chunk`](Self::chunk) x
    /// [`bytes_per_sample`](Self::bytes_per_sample) + [`fixed_workspace_bytes`](Self::fixed_workspace_bytes)
    /// (at most [`MAX_WORKSPACE_BYTES`]).
    pub fn workspace_bytes(&self) -> usize {
        self.chunk.saturating_mul(self.bytes_per_sample()).saturating_add(self.fixed_workspace_bytes())
    }

    /// The network run within at most `limit` bytes of working memory per thread (at most
    /// [`MAX_WORKSPACE_BYTES`], which a loaded network already meets): the chunk becomes the most
    /// samples, up to [`CHUNK`], that fit. Results do not change, only the memory and speed.
    ///
    /// Errors: [`crate::Error::InvalidArgument`] when a single sample does not fit in
    /// min(limit, [`MAX_WORKSPACE_BYTES`]).
    pub fn with_workspace_limit(mut self, limit: usize) -> Result<Self> {
        self.chunk = self.chunk_within(limit.min(MAX_WORKSPACE_BYTES))?;
        Ok(self)
    }

    /// The most samples, up to [`CHUNK`], whose working memory fits in `limit` bytes.
    ///
    /// Errors: [`crate::Error::InvalidArgument`] when a single sample does not fit.
    pub(crate) fn chunk_within(&self, limit: usize) -> Result<usize> {
        let (per_sample, fixed) = (self.bytes_per_sample(), self.fixed_workspace_bytes());
        let one = per_sample.saturating_add(fixed);
        if one > limit {
            return Err(invalid!(
                "one sample needs {one} bytes of working memory ({per_sample} of layer outputs, \
                 {fixed} of convolution and dense scratch), above the limit of {limit} bytes per \
                 thread"
            ));
        }
        Ok(((limit - fixed) / per_sample.max(1)).clamp(1, CHUNK))
    }

    /// Working memory for [`run_rows`](Self::run_rows): [`workspace_bytes`](Self::workspace_bytes).
    pub fn workspace(&self) -> NetworkWorkspace {
        let buffers = self
            .buffer_sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| if i < self.inputs.len() { Vec::new() } else { vec![0.0; size * self.chunk] })
            .collect();
        let scratch = self
            .steps
            .iter()
            .map(|s| match &s.op {
                Op::Conv(c) => Scratch::Conv(c.workspace()),
                Op::Dense(d) => Scratch::Dense(d.workspace()),
                _ => Scratch::None,
            })
            .collect();
        NetworkWorkspace { buffers, scratch }
    }

    /// Checks a batch: one array per input of batch x size values, all finite, and an output
    /// of batch x output_size values.
    ///
    /// Errors: [`crate::Error::InvalidArgument`] naming the input, sample and value.
    pub fn check_batch(&self, inputs: &[&[f32]], batch: usize, output_len: usize) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(invalid!(
                "the network has {} inputs, {} arrays given",
                self.inputs.len(),
                inputs.len()
            ));
        }
        for (spec, values) in self.inputs.iter().zip(inputs) {
            let size = spec.size();
            if batch.checked_mul(size) != Some(values.len()) {
                return Err(invalid!(
                    "input '{}' has {} values, expected batch x {:?} = {batch} x {size}",
                    spec.name,
                    values.len(),
                    spec.shape
                ));
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(invalid!(
                    "input '{}' sample {} value {} is {} (inputs must be finite)",
                    spec.name,
                    i / size,
                    i % size,
                    values[i]
                ));
            }
        }
        if batch.checked_mul(self.output_size()) != Some(output_len) {
            return Err(invalid!(
                "output has {output_len} values, expected batch x output size = {batch} x {}",
                self.output_size()
            ));
        }
        Ok(())
    }

    /// The network on a batch, on this thread: `inputs[j]` is [batch][shape of input j],
    /// `output` [batch][output_size].
    ///
    /// Errors: as [`check_batch`](Self::check_batch).
    pub fn run(&self, inputs: &[&[f32]], batch: usize, output: &mut [f32]) -> Result<()> {
        self.check_batch(inputs, batch, output.len())?;
        let mut work = self.workspace();
        self.run_rows(&mut work, inputs, 0, output);
        Ok(())
    }

    /// Samples first.. first + output.len() / output_size of a batch already accepted by
    /// [`check_batch`](Self::check_batch) (a thread's share of it).
    pub fn run_rows(&self, work: &mut NetworkWorkspace, inputs: &[&[f32]], first: usize, output: &mut [f32]) {
        let out_size = self.output_size();
        for (c, out_rows) in output.chunks_mut(self.chunk * out_size).enumerate() {
            let start = first + c * self.chunk;
            let count = out_rows.len() / out_size;
            self.run_chunk(work, inputs, start, count);
            let result = self.buffer(work, inputs, self.output, start, count);
            out_rows.copy_from_slice(result);
        }
    }

    /// Rows start..start + count of buffer `id`.
    fn buffer<'a>(
        &self,
        work: &'a NetworkWorkspace,
        inputs: &[&'a [f32]],
        id: usize,
        start: usize,
        count: usize,
    ) -> &'a [f32] {
        let size = self.buffer_sizes[id];
        if id < self.inputs.len() {
            &inputs[id][start * size..(start + count) * size]
        } else {
            &work.buffers[id][..count * size]
        }
    }

    fn run_chunk(&self, work: &mut NetworkWorkspace, inputs: &[&[f32]], start: usize, count: usize) {
        for (index, step) in self.steps.iter().enumerate() {
            let mut out = core::mem::take(&mut work.buffers[step.output]);
            let out_size = self.buffer_sizes[step.output];
            let mut scratch = core::mem::replace(&mut work.scratch[index], Scratch::None);
            {
                let out = &mut out[..count * out_size];
                let source = |k: usize| self.buffer(work, inputs, step.inputs[k], start, count);
                let result = match (&step.op, &mut scratch) {
                    (Op::Conv(conv), Scratch::Conv(ws)) => conv.forward_with(ws, source(0), out),
                    (Op::Dense(dense), Scratch::Dense(ws)) => dense.forward_with(ws, source(0), out),
                    (Op::Affine { scale, shift, plane }, _) => {
                        let x = source(0);
                        for (c, (o, x)) in
                            out.chunks_exact_mut(*plane).zip(x.chunks_exact(*plane)).enumerate()
                        {
                            let (s, t) = (scale[c % scale.len()], shift[c % shift.len()]);
                            o.iter_mut().zip(x).for_each(|(o, &x)| *o = x * s + t);
                        }
                        Ok(())
                    }
                    (Op::Activation(f), _) => {
                        out.copy_from_slice(source(0));
                        f.apply_all(out);
                        Ok(())
                    }
                    (Op::Softmax, _) => {
                        out.copy_from_slice(source(0));
                        softmax_rows(out, out_size)
                    }
                    (Op::Pool(pool), _) => pool.forward(source(0), out),
                    (Op::GlobalAvgPool { plane }, _) => global_avgpool(source(0), *plane, out),
                    (Op::ChannelsLast { channels, plane }, _) => {
                        let x = source(0);
                        for (o, x) in out.chunks_exact_mut(out_size).zip(x.chunks_exact(out_size)) {
                            for c in 0..*channels {
                                for p in 0..*plane {
                                    o[p * channels + c] = x[c * plane + p];
                                }
                            }
                        }
                        Ok(())
                    }
                    (Op::Concat, _) => {
                        let mut offset = 0;
                        for k in 0..step.inputs.len() {
                            let size = self.buffer_sizes[step.inputs[k]];
                            for (o, x) in out.chunks_exact_mut(out_size).zip(source(k).chunks_exact(size)) {
                                o[offset..offset + size].copy_from_slice(x);
                            }
                            offset += size;
                        }
                        Ok(())
                    }
                    (Op::Conv(_) | Op::Dense(_), _) => {
                        Err(invalid!("{}: working memory mismatch", step.label))
                    }
                };
                // Shapes were checked when the network was built: a failure here is a bug.
                if let Err(err) = result {
                    panic!("{}: {err}", step.label);
                }
            }
            work.scratch[index] = scratch;
            work.buffers[step.output] = out;
        }
    }
}
