//! The activation quantization a weights file may carry: the scale and zero point of each
//! uint8 tensor of TFLite's graph (every convolution's input and output, v2's residual ADDs),
//! what `--precision int8` runs on. All or nothing: a file with none is a float-only file
//! (it runs at f32), a file with some must have every one ([`names::activation_tensors`]).
//! Each is one value: scales `F32 [1]`, finite and positive; zero points `F32` or `I32 [1]`,
//! whole numbers in 0..=255.

use std::collections::HashSet;

use safetensors::Dtype;

use super::{FileCtx, WeightsError, names};
use crate::arch::Layer;
use crate::quant::{AddQuant, Quant};

/// One layer's activation quantization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerActivations {
    pub input: Quant,
    pub output: Quant,
    /// The residual ADD after the layer (a block's projection with `residual_from`).
    pub add: Option<AddQuant>,
}

/// A network's activation quantization, index-aligned with `arch::instantiate(&config)`: None
/// for the layers without any (the pool, squeeze-and-excite).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationQuantization {
    pub layers: Vec<Option<LayerActivations>>,
}

/// What the loader says a missing activation tensor should be.
const EXPECTED: &str = "F32 [1]";

/// Reads and checks the activation quantization of `layers`, marking its tensors used; None
/// when the file has none of them.
pub(super) fn read(
    f: &FileCtx,
    layers: &[Layer],
    used: &mut HashSet<String>,
) -> Result<Option<ActivationQuantization>, WeightsError> {
    let all = names::activation_tensors(layers);
    let Some(present) = all.iter().find(|n| f.has(n)) else {
        return Ok(None);
    };
    let mut quant = |base: &str, tensor: &str| -> Result<Quant, WeightsError> {
        let (scale, zero_point) = names::quantization(base, tensor);
        let value = Quant {
            scale: scalar(f, &scale, present, false)? as f32,
            zero_point: zero_point_value(f, &zero_point, scalar(f, &zero_point, present, true)?)?,
        };
        if !(value.scale.is_finite() && value.scale > 0.0) {
            return Err(WeightsError::Value {
                file: f.file.to_string(),
                tensor: scale,
                problem: format!("is {}, not a finite positive scale", value.scale),
            });
        }
        used.extend([scale, zero_point]);
        Ok(value)
    };
    let mut quantized = Vec::with_capacity(layers.len());
    for layer in layers {
        if !names::has_activation_quantization(layer) {
            quantized.push(None);
            continue;
        }
        let input = quant(&layer.name, "input")?;
        let output = quant(&layer.name, "output")?;
        let add = match layer.residual_from {
            None => None,
            Some(_) => {
                let add = names::residual_add(&layer.name);
                let [input1, input2, output] = names::ADD_TENSORS;
                Some(AddQuant {
                    input1: quant(&add, input1)?,
                    input2: quant(&add, input2)?,
                    output: quant(&add, output)?,
                })
            }
        };
        quantized.push(Some(LayerActivations { input, output, add }));
    }
    Ok(Some(ActivationQuantization { layers: quantized }))
}

/// One value of `name`: `F32 [1]`, or `I32 [1]` where `integer` (a zero point). `present` is
/// the activation tensor that showed the file has them, for the message of a missing one.
fn scalar(f: &FileCtx, name: &str, present: &str, integer: bool) -> Result<f64, WeightsError> {
    let file = f.file.to_string();
    let Ok(view) = f.tensors.tensor(name) else {
        return Err(WeightsError::MissingTensor {
            file,
            tensor: name.to_string(),
            expected: format!(
                "{EXPECTED}: the file has activation quantization ({present}), so every layer needs it"
            ),
        });
    };
    if view.shape() != [1] {
        return Err(WeightsError::Shape {
            file,
            tensor: name.to_string(),
            shape: view.shape().to_vec(),
            expected: vec![1],
            context: "activation quantization".into(),
        });
    }
    let bytes: [u8; 4] = view.data().try_into().map_err(|_| WeightsError::Format {
        file: file.clone(),
        reason: format!("tensor {name} does not hold 4 bytes"),
    })?;
    match view.dtype() {
        Dtype::F32 => Ok(f64::from(f32::from_le_bytes(bytes))),
        Dtype::I32 if integer => Ok(f64::from(i32::from_le_bytes(bytes))),
        other => Err(WeightsError::Dtype {
            file,
            tensor: name.to_string(),
            dtype: format!("{other:?}"),
            expected: if integer { "F32 or I32" } else { "F32" }.into(),
        }),
    }
}

/// A zero point: a whole number in 0..=255.
fn zero_point_value(f: &FileCtx, name: &str, value: f64) -> Result<i32, WeightsError> {
    if value.fract() == 0.0 && (0.0..=255.0).contains(&value) {
        return Ok(value as i32);
    }
    Err(WeightsError::Value {
        file: f.file.to_string(),
        tensor: name.to_string(),
        problem: format!("is {value}, not a uint8 zero point (a whole number in 0..=255)"),
    })
}
