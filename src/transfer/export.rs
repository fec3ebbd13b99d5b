//! Writing the retrained network: the base model's file with its `logits` replaced by the new
//! head, in the documented weights format (`nn::names`), so `classify`, `evaluate` and `bench`
//! read it with `--weights`.
//!
//! Every backbone tensor is copied byte for byte: same name, dtype, shape and values (uint8
//! with its `weight_scale` and `weight_zero_point` where the base stores it so). `logits.*`
//! (the base's ImageNet classifier, whatever its dtype) is dropped and the head written as
//! float32 `logits.weight` `[classes, C]` and `logits.bias` `[classes]`. The base's activation
//! quantization (`NAME.input_scale` etc., what `--precision int8` runs on) is dropped too: it
//! describes the base's uint8 graph, whose classifier the float head replaces, so the retrained
//! network is a float file (`--precision int8` refuses it, naming it). The metadata holds the
//! configuration keys the loader reads (`family`, `alpha`, `resolution`, `num_classes`,
//! `depth_multiplier`, `variant`, `minimalistic`), the class names (`labels`, a JSON array in
//! output order), the preprocessing, the feature vector, the base model and its weights'
//! SHA-256, and the training settings.
//!
//! The file is laid out as safetensors lays it out (header, then the tensors sorted by dtype
//! size then name, float32 first), but the header is written here with its keys sorted:
//! `safetensors::serialize` writes metadata from a `HashMap`, in a different order on every
//! run, and the same seed must give the same bytes.

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors};
use serde::Serialize;
use serde_json::{Value, json};

use super::cache::{Sha, hex};
use super::features::FeatureVector;
use super::head::Head;
use super::split::{Example, Split};
use crate::arch::Config;
use crate::arch::config::format_alpha;
use crate::nn::{LABELS_KEY, names};
use crate::text::path_text;
use crate::vision::CROP_FRACTION;

/// What the written file says about itself besides its tensors.
pub struct ExportInfo<'a, T: Serialize> {
    /// The configuration the network runs at (the resolution the features were computed at).
    pub config: &'a Config,
    /// One name per class, in output order.
    pub labels: &'a [String],
    /// The base model's name and the SHA-256 of its weights file.
    pub base_model: &'a str,
    pub base_weights: &'a Sha,
    pub feature: &'a FeatureVector,
    /// The training settings and outcome.
    pub training: &'a T,
}

/// Why the file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the base model's weights cannot be read again: {0}")]
    Base(String),
    #[error(
        "the head has {head} classes x {width} values, the labels {labels} and the backbone {feature} features"
    )]
    Shape {
        head: usize,
        width: usize,
        labels: usize,
        feature: usize,
    },
    #[error("cannot write the header: {0}")]
    Header(#[from] serde_json::Error),
}

/// One tensor to write.
struct Entry<'a> {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: std::borrow::Cow<'a, [u8]>,
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The network file: `base` (the base model's safetensors bytes) with `head` as its logits.
pub fn network_file<T: Serialize>(
    base: &[u8],
    head: &Head,
    info: &ExportInfo<T>,
) -> Result<Vec<u8>, ExportError> {
    if head.classes != info.labels.len() || head.width != info.feature.width {
        return Err(ExportError::Shape {
            head: head.classes,
            width: head.width,
            labels: info.labels.len(),
            feature: info.feature.width,
        });
    }
    let bad = |e: safetensors::SafeTensorError| ExportError::Base(e.to_string());
    let (_, header) = SafeTensors::read_metadata(base).map_err(bad)?;
    let tensors = SafeTensors::deserialize(base).map_err(bad)?;
    let logits = names::weight("logits");
    let prefix = logits.trim_end_matches("weight");
    let mut entries: Vec<Entry> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with(prefix) && !names::is_activation_quantization(name))
        .map(|(name, view)| Entry {
            name,
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: std::borrow::Cow::Borrowed(view.data()),
        })
        .collect();
    entries.push(Entry {
        name: logits,
        dtype: Dtype::F32,
        shape: vec![head.classes, head.width],
        data: f32_bytes(&head.weight).into(),
    });
    entries.push(Entry {
        name: names::bias("logits"),
        dtype: Dtype::F32,
        shape: vec![head.classes],
        data: f32_bytes(&head.bias).into(),
    });

    let license = header.metadata().as_ref().and_then(|m| m.get("license").cloned());
    assemble(metadata(info, head, license)?, entries)
}

/// The bytes of a safetensors file of `entries` with `metadata`: tensors in safetensors' order
/// (larger dtypes first, so float32 data stays 4-byte aligned, then by name), the header's keys
/// sorted.
fn assemble(metadata: BTreeMap<String, String>, mut entries: Vec<Entry>) -> Result<Vec<u8>, ExportError> {
    entries.sort_by(|a, b| b.dtype.cmp(&a.dtype).then_with(|| a.name.cmp(&b.name)));
    let mut top = serde_json::Map::new();
    top.insert("__metadata__".into(), serde_json::to_value(metadata)?);
    let mut offset = 0;
    for e in &entries {
        top.insert(
            e.name.clone(),
            json!({
                "dtype": format!("{:?}", e.dtype),
                "shape": e.shape,
                "data_offsets": [offset, offset + e.data.len()],
            }),
        );
        offset += e.data.len();
    }
    // serde_json's map is ordered by key: the header is the same on every run.
    let mut header = serde_json::to_vec(&Value::Object(top))?;
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut file = Vec::with_capacity(8 + header.len() + offset);
    file.extend_from_slice(&(header.len() as u64).to_le_bytes());
    file.extend_from_slice(&header);
    for e in &entries {
        file.extend_from_slice(&e.data);
    }
    Ok(file)
}

/// What a features file says about where its vectors came from.
pub struct FeaturesInfo<'a> {
    /// The class names, in label order.
    pub classes: &'a [String],
    pub base_model: &'a str,
    pub base_weights: &'a Sha,
    pub resolution: u32,
    pub feature: &'a FeatureVector,
}

/// The features file of `--features-out`: every usable image's feature vector, its class and its
/// split, for probing the same data with other tools (`scripts/probe-baseline.py`). Tensors:
/// `features` float32 `[N, C]`, `labels` int64 `[N]` (an index into the metadata's `classes`),
/// `split` uint8 `[N]` (0 training, 1 validation, 2 test), in `examples`' order with the images
/// that have no vector (unreadable) left out; the metadata names each row's image (`paths`, a
/// JSON array), the classes, the split codes, the base model and the feature vector.
pub fn features_file(
    examples: &[Example],
    features: &[Option<Vec<f32>>],
    info: &FeaturesInfo,
) -> Result<Vec<u8>, ExportError> {
    let width = info.feature.width;
    let rows: Vec<(&Example, &[f32])> = examples
        .iter()
        .zip(features)
        .filter_map(|(e, v)| v.as_deref().map(|v| (e, v)))
        .collect();
    if let Some((_, v)) = rows.iter().find(|(_, v)| v.len() != width) {
        return Err(ExportError::Shape {
            head: info.classes.len(),
            width: v.len(),
            labels: info.classes.len(),
            feature: width,
        });
    }
    let values: Vec<u8> = rows
        .iter()
        .flat_map(|(_, v)| v.iter())
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let labels: Vec<u8> = rows
        .iter()
        .flat_map(|(e, _)| (e.class as i64).to_le_bytes())
        .collect();
    let splits: Vec<u8> = rows.iter().map(|(e, _)| split_code(e.split)).collect();
    let n = rows.len();
    let entries = vec![
        Entry {
            name: "features".into(),
            dtype: Dtype::F32,
            shape: vec![n, width],
            data: values.into(),
        },
        Entry {
            name: "labels".into(),
            dtype: Dtype::I64,
            shape: vec![n],
            data: labels.into(),
        },
        Entry {
            name: "split".into(),
            dtype: Dtype::U8,
            shape: vec![n],
            data: splits.into(),
        },
    ];
    let paths: Vec<String> = rows.iter().map(|(e, _)| path_text(&e.path)).collect();
    let mut m = BTreeMap::new();
    m.insert("classes".to_string(), serde_json::to_string(info.classes)?);
    m.insert("paths".to_string(), serde_json::to_string(&paths)?);
    m.insert(
        "split_codes".to_string(),
        r#"{"0":"train","1":"validation","2":"test"}"#.to_string(),
    );
    m.insert("base_model".to_string(), info.base_model.to_string());
    m.insert("base_weights_sha256".to_string(), hex(info.base_weights));
    m.insert("resolution".to_string(), info.resolution.to_string());
    m.insert("crop_fraction".to_string(), CROP_FRACTION.to_string());
    m.insert("feature".to_string(), serde_json::to_string(info.feature)?);
    m.insert(
        "tool".to_string(),
        format!(
            "mobilenet-cli {} retrain --features-out",
            env!("CARGO_PKG_VERSION")
        ),
    );
    assemble(m, entries)
}

/// A split's code in a features file.
fn split_code(split: Split) -> u8 {
    match split {
        Split::Train => 0,
        Split::Validation => 1,
        Split::Test => 2,
    }
}

/// The metadata of the written file, by key.
fn metadata<T: Serialize>(
    info: &ExportInfo<T>,
    head: &Head,
    license: Option<String>,
) -> Result<BTreeMap<String, String>, serde_json::Error> {
    let c = info.config;
    let mut m = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        m.insert(key.to_string(), value);
    };
    put("family", c.family.name().to_string());
    put("alpha", format_alpha(c.alpha));
    put("resolution", c.resolution.to_string());
    put("num_classes", head.classes.to_string());
    put("depth_multiplier", c.depth_multiplier.to_string());
    put("variant", c.variant.name().to_string());
    put("minimalistic", c.minimalistic.to_string());
    put(LABELS_KEY, serde_json::to_string(info.labels)?);
    put(
        "preprocessing",
        serde_json::to_string(&json!({
            "resolution": c.resolution,
            "crop_fraction": CROP_FRACTION,
            "resize": "bilinear, antialiased when shrinking",
            "scale": "pixel / 127.5 - 1",
            "layout": "NCHW RGB",
        }))?,
    );
    put("input", "NCHW float32 RGB, value = pixel/127.5 - 1".into());
    put("feature", serde_json::to_string(info.feature)?);
    put(
        "head",
        format!(
            "logits: softmax regression on the {} features of {}, float32 [{}, {}] and [{}], trained by mobilenet-cli retrain",
            info.feature.width, info.feature.layer, head.classes, head.width, head.classes
        ),
    );
    put(
        "weights",
        "backbone tensors copied from the base model as it stores them (uint8: real = weight_scale * (weight - weight_zero_point)); logits float32".into(),
    );
    put("base_model", info.base_model.to_string());
    put("base_weights_sha256", hex(info.base_weights));
    if let Some(license) = license {
        put("base_license", license);
    }
    put("training", serde_json::to_string(info.training)?);
    put(
        "tool",
        format!("mobilenet-cli {} retrain", env!("CARGO_PKG_VERSION")),
    );
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{MobileNet, ModelId, WeightOverrides};
    use crate::transfer::cache::sha256;
    use crate::transfer::features::feature_vector;

    fn exported(labels: &[String]) -> (Vec<u8>, Head) {
        let id = ModelId::V1_025_128;
        let base = id.bytes();
        let config = id.config();
        let feature = feature_vector(&crate::arch::instantiate(&config));
        let head = Head {
            classes: labels.len(),
            width: feature.width,
            weight: (0..labels.len() * feature.width)
                .map(|i| i as f32 * 1e-3)
                .collect(),
            bias: (0..labels.len()).map(|i| i as f32).collect(),
        };
        let info = ExportInfo {
            config: &config,
            labels,
            base_model: id.name(),
            base_weights: &sha256(base),
            feature: &feature,
            training: &json!({"seed": 1}),
        };
        (network_file(base, &head, &info).unwrap(), head)
    }

    #[test]
    fn the_file_is_the_base_with_a_new_head_and_its_labels() {
        let labels = vec!["cat".to_string(), "dog".to_string(), "emu".to_string()];
        let (bytes, head) = exported(&labels);
        assert_eq!(bytes, exported(&labels).0, "the same bytes every time");
        let net = MobileNet::from_bytes(
            &bytes,
            "mine",
            "mine.safetensors",
            WeightOverrides::default(),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        assert_eq!(net.config().classes, 3);
        assert_eq!(net.labels(), Some(&labels[..]));
        assert_eq!(net.trained_resolution(), Some(128));
        let written = SafeTensors::deserialize(&bytes).unwrap();
        let base = SafeTensors::deserialize(ModelId::V1_025_128.bytes()).unwrap();
        for (name, view) in base.tensors() {
            if name.starts_with("logits.") {
                continue;
            }
            if names::is_activation_quantization(&name) {
                assert!(
                    written.tensor(&name).is_err(),
                    "{name}: the base's int8 graph is gone"
                );
                continue;
            }
            let copy = written.tensor(&name).unwrap();
            assert_eq!(
                (copy.dtype(), copy.shape(), copy.data()),
                (view.dtype(), view.shape(), view.data()),
                "{name}"
            );
        }
        let w = written.tensor("logits.weight").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[3, 256][..]));
        assert_eq!(w.data(), &f32_bytes(&head.weight)[..]);
        assert!(
            written.tensor("logits.weight_scale").is_err(),
            "the base's uint8 logits are gone"
        );
        // The base's four logits tensors give way to the head's two, and the 112 activation
        // quantization tensors (four of them logits.*) go.
        assert_eq!(written.len(), base.len() - 2 - 112);
        assert!(net.activation_quantization().is_none());
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let m = header.metadata().as_ref().unwrap();
        assert_eq!(m["base_model"], "0.25_128");
        assert_eq!(m["training"], r#"{"seed":1}"#);
        assert!(m["base_license"].starts_with("Apache-2.0"));
    }

    #[test]
    fn the_features_file_has_a_row_per_usable_image() {
        let config = ModelId::V1_025_128.config();
        let mut feature = feature_vector(&crate::arch::instantiate(&config));
        feature.width = 2;
        let example = |path: &str, class, split| Example {
            path: path.into(),
            class,
            split,
        };
        let examples = [
            example("d/a/1.png", 0, Split::Train),
            example("d/a/2.png", 0, Split::Test),
            example("d/b/3.png", 1, Split::Validation),
        ];
        let features = [Some(vec![1.0, 2.0]), None, Some(vec![3.0, 4.0])];
        let classes = ["a".to_string(), "b".to_string()];
        let info = FeaturesInfo {
            classes: &classes,
            base_model: "0.25_128",
            base_weights: &sha256(b"w"),
            resolution: 128,
            feature: &feature,
        };
        let bytes = features_file(&examples, &features, &info).unwrap();
        assert_eq!(bytes, features_file(&examples, &features, &info).unwrap());
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let values = file.tensor("features").unwrap();
        assert_eq!(values.shape(), [2, 2]);
        assert_eq!(values.data(), &f32_bytes(&[1.0, 2.0, 3.0, 4.0])[..]);
        let labels = file.tensor("labels").unwrap();
        assert_eq!(
            (labels.dtype(), labels.data()),
            (
                Dtype::I64,
                &[0u8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0][..]
            )
        );
        assert_eq!(file.tensor("split").unwrap().data(), [0, 1]);
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let m = header.metadata().as_ref().unwrap();
        assert_eq!(m["paths"], r#"["d/a/1.png","d/b/3.png"]"#);
        assert_eq!(m["classes"], r#"["a","b"]"#);
        // A vector of another width is refused, not written.
        let wrong = [Some(vec![1.0]), None, None];
        assert!(matches!(
            features_file(&examples, &wrong, &info),
            Err(ExportError::Shape { .. })
        ));
    }

    #[test]
    fn a_head_that_does_not_fit_is_refused() {
        let id = ModelId::V1_025_128;
        let config = id.config();
        let feature = feature_vector(&crate::arch::instantiate(&config));
        let head = Head {
            classes: 2,
            width: 7,
            weight: vec![0.0; 14],
            bias: vec![0.0; 2],
        };
        let labels = ["a".to_string(), "b".to_string()];
        let info = ExportInfo {
            config: &config,
            labels: &labels,
            base_model: id.name(),
            base_weights: &sha256(id.bytes()),
            feature: &feature,
            training: &(),
        };
        assert!(matches!(
            network_file(id.bytes(), &head, &info),
            Err(ExportError::Shape { .. })
        ));
    }
}
