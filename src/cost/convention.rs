//! The counting conventions as one type, in the manner of fvcore's single handle table: each
//! figure the tool reports has a [`Convention`] that names it (the JSON key), explains it (the
//! one text every report and the `--help` block print) and reads it from [`Totals`]. Published
//! figures name theirs in `presets/published/models.csv`, parsed into this type, so a misspelt
//! convention fails when the tables load rather than falling back to a default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::model::Totals;

/// What a convention counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// Arithmetic operations.
    Operations,
    /// Stored values.
    Parameters,
    /// Bytes of memory.
    Memory,
}

impl Quantity {
    /// The heading of the quantity's group in the help block.
    pub fn name(self) -> &'static str {
        match self {
            Quantity::Operations => "operations",
            Quantity::Parameters => "parameters",
            Quantity::Memory => "memory",
        }
    }
}

/// One way of counting a network's cost. The headline `mult_adds` and `params` count every
/// layer the network runs, squeeze-and-excite included (the papers' and TF-slim's convention
/// for MobileNetV3); the figures without squeeze-and-excite have their own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Convention {
    MultAdds,
    MultAddsExcludingSe,
    SeMultAdds,
    Flops,
    ElementwiseOps,
    Params,
    ParamsExcludingSe,
    SeParams,
    ParamsTrainable,
    ParamsKeras,
    ParamsDeployed,
    ParamsSlimCheckpoint,
    ActivationPeakBytes,
}

impl Convention {
    /// Every convention, in the order reports list them.
    pub const ALL: [Convention; 13] = [
        Convention::MultAdds,
        Convention::MultAddsExcludingSe,
        Convention::SeMultAdds,
        Convention::Flops,
        Convention::ElementwiseOps,
        Convention::Params,
        Convention::ParamsExcludingSe,
        Convention::SeParams,
        Convention::ParamsTrainable,
        Convention::ParamsKeras,
        Convention::ParamsDeployed,
        Convention::ParamsSlimCheckpoint,
        Convention::ActivationPeakBytes,
    ];

    /// The name: the key of the figure in `Totals` and in the JSON, and the value of the
    /// `params_convention` column of `presets/published/models.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Convention::MultAdds => "mult_adds",
            Convention::MultAddsExcludingSe => "mult_adds_excluding_se",
            Convention::SeMultAdds => "se_mult_adds",
            Convention::Flops => "flops",
            Convention::ElementwiseOps => "elementwise_ops",
            Convention::Params => "params",
            Convention::ParamsExcludingSe => "params_excluding_se",
            Convention::SeParams => "se_params",
            Convention::ParamsTrainable => "params_trainable",
            Convention::ParamsKeras => "params_keras",
            Convention::ParamsDeployed => "params_deployed",
            Convention::ParamsSlimCheckpoint => "params_slim_checkpoint",
            Convention::ActivationPeakBytes => "activation_peak_bytes",
        }
    }

    /// What is counted, and whose convention it is: the one text reports and help print.
    pub fn describe(self) -> &'static str {
        match self {
            Convention::MultAdds => {
                "multiply-adds of every layer the network runs: convolution, depthwise, pointwise and fully connected layers (v1 paper eq. 2, 4, 5) and squeeze-and-excite's two 1x1 convs (v3 Section 5.3); BatchNorm, activations, pooling, residual adds and softmax count zero"
            }
            Convention::MultAddsExcludingSe => {
                "mult_adds without squeeze-and-excite: convolution, depthwise, pointwise and fully connected layers only (equal to mult_adds for v1, v2 and minimalistic v3)"
            }
            Convention::SeMultAdds => {
                "squeeze-and-excite's two 1x1 convs on the pooled vector, 2 x C x R per block (v3 Section 5.3); part of mult_adds"
            }
            Convention::Flops => {
                "2 x mult_adds (one multiply and one add); many tools print mult-adds (MACs) and call them FLOPs"
            }
            Convention::ElementwiseOps => {
                "one per output element for each residual add, squeeze-and-excite channel multiply and hard-swish product; ReLU, ReLU6 and hard-sigmoid count zero; never inside mult_adds"
            }
            Convention::Params => {
                "weights of every convolution, depthwise, pointwise and fully connected layer, plus squeeze-and-excite's weights and biases; BatchNorm and the FC and conv_head biases excluded (the papers' convention)"
            }
            Convention::ParamsExcludingSe => {
                "params without squeeze-and-excite: convolution and fully connected weights only (the v1 paper's Table 2 convention; equal to params for v1, v2 and minimalistic v3)"
            }
            Convention::SeParams => {
                "squeeze-and-excite's weights and biases, 2 x C x R + R + C per block; part of params"
            }
            Convention::ParamsTrainable => {
                "params + BatchNorm gamma and beta + the FC and conv_head biases (PyTorch, timm, torchvision)"
            }
            Convention::ParamsKeras => {
                "params_trainable + BatchNorm moving mean and variance (Keras \"Total params\")"
            }
            Convention::ParamsDeployed => {
                "BatchNorm folded into one bias per channel: params + those biases + the FC and conv_head biases (the element count of a deployed weight file)"
            }
            Convention::ParamsSlimCheckpoint => {
                "params_deployed + 2 per BatchNorm channel: weights, FC bias, and beta, moving mean and variance per channel (reproduces TF-slim's v1 README counts at 1001 classes; inferred, TF-slim does not document it)"
            }
            Convention::ActivationPeakBytes => {
                "largest input + output of one layer at batch 1, float32 (residual inputs kept alive across a block are not added)"
            }
        }
    }

    /// What the convention counts.
    pub fn quantity(self) -> Quantity {
        match self {
            Convention::MultAdds
            | Convention::MultAddsExcludingSe
            | Convention::SeMultAdds
            | Convention::Flops
            | Convention::ElementwiseOps => Quantity::Operations,
            Convention::Params
            | Convention::ParamsExcludingSe
            | Convention::SeParams
            | Convention::ParamsTrainable
            | Convention::ParamsKeras
            | Convention::ParamsDeployed
            | Convention::ParamsSlimCheckpoint => Quantity::Parameters,
            Convention::ActivationPeakBytes => Quantity::Memory,
        }
    }

    /// The figure under this convention.
    pub fn value(self, totals: &Totals) -> u64 {
        let t = totals;
        match self {
            Convention::MultAdds => t.mult_adds,
            Convention::MultAddsExcludingSe => t.mult_adds_excluding_se,
            Convention::SeMultAdds => t.se_mult_adds,
            Convention::Flops => t.flops,
            Convention::ElementwiseOps => t.elementwise_ops,
            Convention::Params => t.params,
            Convention::ParamsExcludingSe => t.params_excluding_se,
            Convention::SeParams => t.se_params,
            Convention::ParamsTrainable => t.params_trainable,
            Convention::ParamsKeras => t.params_keras,
            Convention::ParamsDeployed => t.params_deployed,
            Convention::ParamsSlimCheckpoint => t.params_slim_checkpoint,
            Convention::ActivationPeakBytes => t.activation_peak_bytes,
        }
    }

    /// Whether the figure only exists because of squeeze-and-excite (zero, or equal to the
    /// headline figure, for a network without it).
    pub fn concerns_squeeze_excite(self) -> bool {
        matches!(
            self,
            Convention::MultAddsExcludingSe
                | Convention::SeMultAdds
                | Convention::ParamsExcludingSe
                | Convention::SeParams
        )
    }
}

impl fmt::Display for Convention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Convention::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown counting convention '{0}' (expected one of {names})", names = names())]
pub struct UnknownConvention(pub String);

fn names() -> String {
    Convention::ALL.map(Convention::name).join(", ")
}

impl FromStr for Convention {
    type Err = UnknownConvention;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Convention::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownConvention(s.to_string()))
    }
}

/// Serialised as its name, so JSON and CSV spell conventions the way `Totals` keys them.
impl Serialize for Convention {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Convention {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Width of the help block: descriptions wrap under their own column.
const HELP_WIDTH: usize = 100;

/// The "Counting conventions" block of `analyze --help`, rendered from [`Convention::ALL`] so
/// the help cannot list a convention the reports do not have, or describe one differently.
pub fn help_text() -> String {
    let indent = 2;
    let name_width = Convention::ALL.iter().map(|c| c.name().len()).max().unwrap_or(0);
    let text_column = indent + name_width + 2;
    let mut out = String::from(
        "Counting conventions (all reported; mult_adds and params count every layer the network runs):\n",
    );
    for quantity in [Quantity::Operations, Quantity::Parameters, Quantity::Memory] {
        out.push_str(&format!("{}{}:\n", " ".repeat(indent), quantity.name()));
        for c in Convention::ALL.into_iter().filter(|c| c.quantity() == quantity) {
            let mut line = format!("{}{:<name_width$}  ", " ".repeat(indent), c.name());
            for word in c.describe().split(' ') {
                if line.len() + 1 + word.len() > HELP_WIDTH && line.len() > text_column {
                    out.push_str(line.trim_end());
                    out.push('\n');
                    line = " ".repeat(text_column);
                }
                if line.len() > text_column {
                    line.push(' ');
                }
                line.push_str(word);
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Config, Family};
    use crate::cost::analyze;

    #[test]
    fn names_parse_back_and_serialise_as_themselves() {
        for c in Convention::ALL {
            assert_eq!(c.name().parse::<Convention>(), Ok(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
            assert_eq!(serde_json::from_value::<Convention>(c.name().into()).unwrap(), c);
        }
        let err = "params_with_se".parse::<Convention>().unwrap_err();
        assert!(err.to_string().contains("'params_with_se'"), "{err}");
        assert!(err.to_string().contains("params_excluding_se"), "{err}");
    }

    /// Each name is the key of the figure it reads in the serialised `Totals`.
    #[test]
    fn names_are_the_totals_keys() {
        let totals = analyze(&Config::family(Family::V3Large, 1.0, 224).unwrap()).totals;
        let json = serde_json::to_value(totals).unwrap();
        for c in Convention::ALL {
            assert_eq!(json[c.name()].as_u64(), Some(c.value(&totals)), "{c}");
        }
    }

    #[test]
    fn help_lists_every_convention_with_its_text() {
        let help = help_text();
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for c in Convention::ALL {
            assert!(
                help.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{} ", c.name()))),
                "{c} missing:\n{help}"
            );
            assert!(
                flat.contains(c.describe()),
                "{c}'s text is not the describe() text"
            );
        }
        assert!(help.lines().all(|l| l.len() <= HELP_WIDTH), "{help}");
    }
}
