//! `--precision int8` through the binary: TFLite's uint8 reference kernels byte for byte for
//! every shipped v1 and v2 model on the reference inputs (saved as PNGs, classified with
//! `--crop 1`: the JSON's probabilities are q / 256 exactly), on every int8 kernel set this CPU
//! runs; top-1 agreement with the reference labels on the photos; the shipped files' activation
//! quantization; the refusals; and the precision recorded in classify, evaluate, bench and
//! sweep output.

use std::collections::HashMap;
use std::path::Path;

use crate::common::{cli, fixture, json_of, photo};
use mobilenet_cli::arch::Family;
use mobilenet_cli::infer::{INT8_KERNELS, kernels_name};
use mobilenet_cli::nn::{MobileNet, ModelId, names};
use mobilenet_cli::quant::{Kernels, LayerParams, NetworkParams, Output, QuantizedNetwork};

const IMAGES: [&str; 3] = ["grace_hopper", "chelsea", "bike"];

/// The shipped models the int8 precision runs: v1 at every point and v2.
fn models() -> Vec<ModelId> {
    ModelId::ALL
        .into_iter()
        .filter(|id| matches!(id.family(), Family::V1 | Family::V2))
        .collect()
}

/// The fast int8 kernel sets this CPU runs, by `--int8-kernels` name; the ones it lacks are
/// skipped with a note. (The slow reference loops are tried on one model.)
fn kernel_sets() -> Vec<&'static str> {
    INT8_KERNELS
        .into_iter()
        .filter(|&k| k != Kernels::Reference)
        .filter(|&k| match k.unavailable_reason() {
            Some(why) => {
                eprintln!("note: the {} int8 kernels are not tested: {why}", kernels_name(k));
                false
            }
            None => true,
        })
        .map(kernels_name)
        .collect()
}

/// A safetensors file's tensors: name -> bytes.
fn tensors(path: &Path) -> HashMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let parsed = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    parsed
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect()
}

/// TFLite's uint8 softmax output for `image` through `id` (reference kernels).
fn tflite_output(id: ModelId, image: &str, outputs: &HashMap<String, Vec<u8>>) -> Vec<u8> {
    outputs
        .get(&format!("{id}.{image}.output_u8"))
        .cloned()
        // v1 0.75_224's is in its reference file (tests/fixtures/int8/README.md).
        .unwrap_or_else(|| {
            tensors(&fixture(&format!("reference_{}", id.file_name())))[&format!("{image}.tflite_u8")].clone()
        })
}

/// The reference inputs of `id` (TFLite's uint8 crops) saved as PNGs in `dir`.
fn reference_pngs(id: ModelId, dir: &Path) {
    let reference = tensors(&fixture(&format!("reference_{}", id.file_name())));
    let r = id.resolution();
    for image in IMAGES {
        let pixels = reference[&format!("{image}.input_u8_hwc")].clone();
        let png = image::RgbImage::from_raw(r, r, pixels).unwrap();
        png.save(dir.join(format!("{image}.png"))).unwrap();
    }
}

/// Every class's probability in a classify JSON record, times 256: each must be a whole
/// number, TFLite's q.
fn quantized_probabilities(record: &serde_json::Value) -> Vec<u8> {
    let mut q = vec![None; 1001];
    for p in record["predictions"].as_array().unwrap() {
        let scaled = p["probability"].as_f64().unwrap() * 256.0;
        assert!(
            scaled.fract() == 0.0 && (0.0..=255.0).contains(&scaled),
            "{p}: not q / 256"
        );
        q[p["class_index"].as_u64().unwrap() as usize] = Some(scaled as u8);
    }
    q.into_iter().map(|v| v.expect("every class listed")).collect()
}

/// `classify DIR --precision int8 --crop 1 --top 1001 --format json` on `kernels`: each
/// image's q values.
fn classify_int8(id: ModelId, dir: &Path, kernels: &str) -> HashMap<String, Vec<u8>> {
    let v = json_of(&[
        "classify",
        dir.to_str().unwrap(),
        "--model",
        id.name(),
        "--precision",
        "int8",
        "--int8-kernels",
        kernels,
        "--crop",
        "1",
        "--top",
        "1001",
        "--format",
        "json",
    ]);
    v.as_array()
        .unwrap()
        .iter()
        .map(|record| {
            assert_eq!(record["precision"], "int8");
            assert_eq!(record["crop"], 1.0);
            assert_eq!(record["model"], id.name());
            let image = Path::new(record["image"].as_str().unwrap());
            let name = image.file_stem().unwrap().to_str().unwrap().to_string();
            (name, quantized_probabilities(record))
        })
        .collect()
}

#[test]
fn int8_classify_gives_tflites_bytes_for_every_model_and_kernel_set() {
    let outputs = tensors(&fixture("int8/tflite_reference_outputs.safetensors"));
    let mut compared = 0;
    for id in models() {
        let dir = tempfile::tempdir().unwrap();
        reference_pngs(id, dir.path());
        let mut sets = kernel_sets();
        if id == ModelId::V1_025_128 {
            sets.push(kernels_name(Kernels::Reference));
        }
        for kernels in sets {
            let ours = classify_int8(id, dir.path(), kernels);
            assert_eq!(ours.len(), IMAGES.len(), "{id} {kernels}");
            for image in IMAGES {
                let expected = tflite_output(id, image, &outputs);
                let differing = ours[image].iter().zip(&expected).filter(|(a, b)| a != b).count();
                assert_eq!(
                    differing, 0,
                    "{id} {kernels} {image}: {differing} of 1001 probabilities differ from TFLite's"
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 6 * 3, "{compared}");
}

#[test]
fn streamed_records_carry_the_same_q_over_256() {
    // JSON Lines and CSV: the same probabilities as the JSON array, exactly.
    let id = ModelId::V1_025_128;
    let dir = tempfile::tempdir().unwrap();
    reference_pngs(id, dir.path());
    let expected = tflite_output(
        id,
        "bike",
        &tensors(&fixture("int8/tflite_reference_outputs.safetensors")),
    );
    let path = dir.path().join("bike.png");
    let run = |format: &str| {
        let out = cli()
            .args(["classify", path.to_str().unwrap(), "--model", id.name()])
            .args([
                "--precision",
                "int8",
                "--crop",
                "1",
                "--top",
                "1001",
                "--format",
                format,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let line: serde_json::Value = serde_json::from_str(run("jsonl").trim()).unwrap();
    assert_eq!(quantized_probabilities(&line), expected);
    let csv = run("csv");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (precision, class, probability) = (column("precision"), column("class_index"), column("probability"));
    let mut q = vec![None; 1001];
    for row in lines {
        // Labels may hold quoted commas: the numeric columns are read from the left.
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[precision], "int8");
        let p: f64 = cells[cells.len() - (header.len() - probability)].parse().unwrap();
        q[cells[class].parse::<usize>().unwrap()] = Some((p * 256.0) as u8);
        assert_eq!((p * 256.0).fract(), 0.0, "{row}");
    }
    let q: Vec<u8> = q.into_iter().map(Option::unwrap).collect();
    assert_eq!(q, expected);
}

#[test]
fn int8_top1_agrees_with_the_reference_labels_on_the_photos() {
    let (uniform, gown, bow_tie) = (
        "military uniform",
        "academic gown, academic robe, judge's robe",
        "bow tie, bow-tie, bowtie",
    );
    let (cat, hotdog) = ("Egyptian cat", "hotdog, hot dog, red hot");
    // The f32 pipeline's labels (tests/cli/network.rs checks 1.0_224, 0.75_224 and v2).
    let expected = [
        (ModelId::V1_025_128, [gown, cat, "corn"]),
        (ModelId::V1_05_160, [gown, cat, hotdog]),
        (ModelId::V1_075_192, [uniform, cat, hotdog]),
        (ModelId::V1_075_224, [bow_tie, cat, hotdog]),
        (ModelId::V1_10_224, [uniform, cat, hotdog]),
        (ModelId::V2_10_224, [uniform, cat, hotdog]),
    ];
    let photos = [
        photo("grace_hopper.jpg"),
        photo("chelsea.png"),
        photo("hot_dog.jpg"),
    ];
    let photos: Vec<&str> = photos.iter().map(|p| p.to_str().unwrap()).collect();
    for (id, labels) in expected {
        let precisions = ["f32".to_string()]
            .into_iter()
            .chain(kernel_sets().into_iter().map(|k| format!("int8 {k}")));
        for run in precisions {
            let mut args = vec!["classify"];
            args.extend(&photos);
            args.extend(["--model", id.name(), "--top", "1", "--format", "json"]);
            if let Some(kernels) = run.strip_prefix("int8 ") {
                args.extend(["--precision", "int8", "--int8-kernels", kernels]);
            }
            let v = json_of(&args);
            let top1: Vec<&str> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["predictions"][0]["label"].as_str().unwrap())
                .collect();
            assert_eq!(top1, labels, "{id} {run}");
        }
    }
}

#[test]
fn shipped_files_carry_tflites_activation_quantization() {
    for id in models() {
        let name = match id.family() {
            Family::V1 => format!("v1_{id}"),
            _ => id.name().to_string(),
        };
        let fixture_params =
            std::fs::read(fixture(&format!("int8/params_mobilenet_{name}.safetensors"))).unwrap();
        let config = id.config();
        // The file alone describes TFLite's graph: the same network as the fixture's constants.
        let own = NetworkParams::from_safetensors(&config, id.bytes(), id.bytes()).unwrap();
        let tflite = NetworkParams::from_safetensors(&config, id.bytes(), &fixture_params).unwrap();
        assert_eq!(own, tflite, "{id}");
        // The loader reads the same values, typed.
        let net = MobileNet::from_embedded(id, &candle_core::Device::Cpu).unwrap();
        let quantization = net
            .activation_quantization()
            .expect("shipped with activation quantization");
        let mut layers = 0;
        for (typed, params) in quantization.layers.iter().zip(&own.layers) {
            match (typed, params) {
                (Some(typed), LayerParams::Conv { conv, residual }) => {
                    assert_eq!(
                        (typed.input, typed.output, typed.add),
                        (conv.input, conv.output, *residual)
                    );
                    layers += 1;
                }
                (None, LayerParams::Pool) => {}
                other => panic!("{id}: {other:?}"),
            }
        }
        assert_eq!(layers, if id.family() == Family::V2 { 53 } else { 28 }, "{id}");
        // Every tensor of the scheme, nothing else new.
        let file = safetensors::SafeTensors::deserialize(id.bytes()).unwrap();
        let activation = names::activation_tensors(net.layers());
        for tensor in &activation {
            let view = file.tensor(tensor).unwrap();
            assert_eq!(
                (view.dtype(), view.shape()),
                (safetensors::Dtype::F32, &[1][..]),
                "{tensor}"
            );
        }
    }
    // MobileNetV3-Small ships without: it runs at f32 only.
    let v3 = MobileNet::from_embedded(ModelId::V3_SMALL_10_224, &candle_core::Device::Cpu).unwrap();
    assert!(v3.activation_quantization().is_none());
}

/// The stderr of a failing run, checked to be one line, and its exit code.
fn refusal(args: &[&str]) -> (i32, String) {
    let out = cli().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(out.stdout.is_empty(), "{args:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    (out.status.code().unwrap(), stderr.trim_end().to_string())
}

/// `id`'s weights file without any activation-quantization tensor, written into `dir`.
fn without_activation_quantization(id: ModelId, dir: &Path) -> std::path::PathBuf {
    let (_, header) = safetensors::SafeTensors::read_metadata(id.bytes()).unwrap();
    let file = safetensors::SafeTensors::deserialize(id.bytes()).unwrap();
    let config = id.config();
    let activation = names::activation_tensors(&mobilenet_cli::arch::instantiate(&config));
    let kept: Vec<_> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| !activation.contains(name))
        .collect();
    let bytes = safetensors::serialize(kept, header.metadata().clone()).unwrap();
    let path = dir.join("float_only.safetensors");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn int8_refusals_name_the_reason_in_one_line() {
    let chelsea = photo("chelsea.png");
    let chelsea = chelsea.to_str().unwrap();
    let int8 = ["--precision", "int8"];
    // MobileNetV3 has no exact int8 kernels yet: refused before anything runs.
    let (code, e) = refusal(&[&["classify", chelsea, "--model", "v3-small_1.0_224"][..], &int8].concat());
    assert_eq!(code, 2);
    assert_eq!(
        e,
        "error: --precision cannot be used with --model v3-small_1.0_224: MobileNetV3's hard-swish and squeeze-and-excite (MUL, ADD) have no exact int8 kernels yet; run it at --precision f32"
    );
    let (_, e) = refusal(&[&["bench", "--family", "v3-large", "--mock-timer"][..], &int8].concat());
    assert!(
        e.starts_with("error: --precision cannot be used with --family v3-large: MobileNetV3"),
        "{e}"
    );
    let (_, e) = refusal(&[
        "sweep",
        "--families",
        "v3-small",
        "--precision",
        "f32,int8",
        "--mock-timer",
    ]);
    assert!(
        e.ends_with("run it at --precision f32, or sweep with --no-timing"),
        "{e}"
    );
    // A weights file without activation quantization: the file and what it lacks.
    let dir = tempfile::tempdir().unwrap();
    let float_only = without_activation_quantization(ModelId::V2_10_224, dir.path());
    let float_only = float_only.to_str().unwrap();
    let (code, e) = refusal(&[&["classify", chelsea, "--weights", float_only][..], &int8].concat());
    assert_eq!(code, 2);
    assert_eq!(
        e,
        format!(
            "error: --precision cannot be used with --weights {float_only}: the file has no activation quantization: int8 needs 272 tensors, each convolution's NAME.{{input,output}}_{{scale,zero_point}} and each residual ADD's block_k.add.{{input1,input2,output}}_{{scale,zero_point}} (conv_0.input_scale first); run it at --precision f32"
        )
    );
    // The same file runs at f32.
    let v = json_of(&[
        "classify",
        chelsea,
        "--weights",
        float_only,
        "--top",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(v[0]["predictions"][0]["label"], "Egyptian cat");
    assert_eq!(v[0]["precision"], "f32");
    // A file with some activation tensors but not all is refused at load, at any precision.
    let partial = dir.path().join("partial.safetensors");
    let mut tensors =
        candle_core::safetensors::load_buffer(ModelId::V1_025_128.bytes(), &candle_core::Device::Cpu)
            .unwrap();
    tensors.remove("pw_5.output_zero_point");
    candle_core::safetensors::save(&tensors, &partial).unwrap();
    let (code, e) = refusal(&[
        "classify",
        chelsea,
        "--weights",
        partial.to_str().unwrap(),
        "--res",
        "128",
    ]);
    assert_eq!(code, 1);
    assert!(
        e.ends_with("missing tensor pw_5.output_zero_point (F32 [1]: the file has activation quantization (conv_0.input_scale), so every layer needs it)"),
        "{e}"
    );
    // The reference engine is candle's f32 network.
    let (code, e) = refusal(&[&["classify", chelsea, "--engine", "reference"][..], &int8].concat());
    assert_eq!(code, 2);
    assert!(
        e.starts_with("error: --engine cannot be used with --precision int8: "),
        "{e}"
    );
    // One precision per classify; the forced kernels need int8.
    let (_, e) = refusal(&["classify", chelsea, "--precision", "f32,int8"]);
    assert_eq!(
        e,
        "error: invalid value 'int8' for --precision: one precision per run; sweep compares several"
    );
    let (_, e) = refusal(&["classify", chelsea, "--int8-kernels", "portable"]);
    assert_eq!(
        e,
        "error: --int8-kernels needs --precision int8 (--int8-kernels portable)"
    );
    let (_, e) = refusal(&["sweep", "--precision", "int8,int8", "--no-timing"]);
    assert_eq!(e, "error: invalid value 'int8' for --precision: duplicate value");
    // Bad crops.
    for bad in ["0", "1.5", "-1", "x"] {
        let (code, e) = refusal(&["classify", chelsea, "--crop", bad]);
        assert_eq!(code, 2, "{bad}");
        assert!(e.contains("--crop"), "{e}");
    }
}

#[test]
fn int8_and_the_crop_are_recorded_in_classify_and_evaluate_output() {
    let chelsea = photo("chelsea.png");
    let chelsea = chelsea.to_str().unwrap();
    let out = cli()
        .args([
            "classify",
            chelsea,
            "--precision",
            "int8",
            "--crop",
            "0.5",
            "--top",
            "2",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("chelsea.png (1.0_224, int8, crop 0.5)"), "{table}");
    let v = json_of(&["classify", chelsea, "--crop", "0.5", "--format", "json"]);
    assert_eq!(
        (v[0]["precision"].as_str(), v[0]["crop"].as_f64()),
        (Some("f32"), Some(0.5))
    );
    // A different crop is a different input.
    let default = json_of(&["classify", chelsea, "--format", "json"]);
    assert_eq!(default[0]["crop"], 0.875);
    assert_ne!(
        default[0]["predictions"][0]["probability"],
        v[0]["predictions"][0]["probability"]
    );
    // evaluate, on a folder of one class.
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("Egyptian cat");
    std::fs::create_dir(&class).unwrap();
    std::fs::copy(photo("chelsea.png"), class.join("a.png")).unwrap();
    let root = dir.path().to_str().unwrap();
    let v = json_of(&[
        "evaluate",
        root,
        "--model",
        "v2_1.0_224",
        "--precision",
        "int8",
        "--format",
        "json",
    ]);
    assert_eq!(
        (v["precision"].as_str(), v["crop"].as_f64()),
        (Some("int8"), Some(0.875))
    );
    assert_eq!(v["top1_correct"], 1);
    let out = cli()
        .args(["evaluate", root, "--precision", "int8", "--crop", "1"])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("Evaluation of 1.0_224 (int8) on "), "{table}");
}

#[test]
fn bench_and_sweep_record_the_precision() {
    let v = json_of(&[
        "bench",
        "--model",
        "0.25_128",
        "--precision",
        "int8",
        "--threads",
        "0",
        "--runs",
        "3",
        "--format",
        "json",
    ]);
    assert_eq!(
        (v["schema_version"].as_u64(), v["precision"].as_str()),
        (Some(3), Some("int8"))
    );
    // --threads 0 is every CPU, at int8 as at f32.
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(v["threads"], cpus);
    let isa = v["isa"].as_str().unwrap();
    assert!(INT8_KERNELS.iter().any(|&k| kernels_name(k) == isa), "{isa}");
    assert!(v["latency_ms"]["median"].as_f64().unwrap() > 0.0);
    // Per layer: each layer's share of the measured vpdpbusd peak where the kernels use it.
    for kernels in kernel_sets() {
        let v = json_of(&[
            "bench",
            "--model",
            "0.25_128",
            "--precision",
            "int8",
            "--int8-kernels",
            kernels,
            "--per-layer",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--format",
            "json",
        ]);
        let layers = v["per_layer"].as_array().unwrap();
        assert_eq!(layers.len(), 29, "conv_0, 13 x (dw, pw), pool, logits");
        assert!(
            layers.iter().all(|l| l["time_ms"].as_f64().unwrap() > 0.0),
            "{kernels}"
        );
        let shares: Vec<Option<f64>> = layers.iter().map(|l| l["peak_pct"].as_f64()).collect();
        if let Some(instruction) = match kernels {
            "avx512vnni" => Some("vpdpbusd"),
            "amx" => Some("tdpbusd"),
            _ => None,
        } {
            assert_eq!(v["peak"]["instruction"], instruction);
            assert_eq!(v["peak"]["source"], "measured");
            let pw_13 = shares[26].unwrap();
            assert!(pw_13 > 0.0 && pw_13 < 100.0, "{pw_13}");
        } else {
            assert!(v.get("peak").is_none(), "{kernels}");
            assert!(shares.iter().all(Option::is_none));
        }
    }
    // The text says the precision and the unit.
    let out = cli()
        .args([
            "bench",
            "--model",
            "0.25_128",
            "--precision",
            "int8",
            "--mock-timer",
            "--per-layer",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("0.25-MobileNet-128 (shipped 0.25_128 weights), int8, batch 1"),
        "{text}"
    );
    assert!(
        text.contains("GOP/s") && text.contains("% peak") && text.contains("Peak: mock 100.0 GMAC/s"),
        "{text}"
    );
    // sweep: a row per point and precision, the int8 rows read the quantized figures.
    let v = json_of(&[
        "sweep",
        "--mock-timer",
        "--precision",
        "f32,int8",
        "--alphas",
        "1.0,0.5",
        "--resolutions",
        "224",
        "--format",
        "json",
    ]);
    assert_eq!(v["schema_version"], 4);
    assert_eq!(v["precisions"], serde_json::json!(["f32", "int8"]));
    let rows = v["rows"].as_array().unwrap();
    let row = |i: usize| {
        (
            rows[i]["alpha"].as_f64().unwrap(),
            rows[i]["precision"].as_str().unwrap(),
            rows[i]["top1"]["value"].as_f64().unwrap(),
        )
    };
    assert_eq!(
        (0..4).map(row).collect::<Vec<_>>(),
        [
            (1.0, "f32", 70.9),
            (1.0, "int8", 69.7),
            (0.5, "f32", 63.3),
            (0.5, "int8", 62.2)
        ]
    );
    assert_eq!(
        rows[1]["top1"]["provenance"]["model"],
        "MobileNet_v1_1.0_224_quant"
    );
    // Real int8 latency for random weights (synthetic quantization).
    let v = json_of(&[
        "sweep",
        "--precision",
        "int8",
        "--alphas",
        "0.25",
        "--resolutions",
        "96",
        "--runs",
        "2",
        "--warmup",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(v["rows"][0]["precision"], "int8");
    assert!(v["rows"][0]["latency_ms"]["median"].as_f64().unwrap() > 0.0);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(v["environment"]["threads"], cpus);
}

#[test]
fn int8_answers_do_not_depend_on_the_threads() {
    let image = photo("grace_hopper.jpg");
    let run = |threads: &str| {
        let v = json_of(&[
            "classify",
            image.to_str().unwrap(),
            "--model",
            "v2_1.0_224",
            "--precision",
            "int8",
            "--threads",
            threads,
            "--top",
            "5",
            "--format",
            "json",
        ]);
        (v[0]["threads"].clone(), v[0]["predictions"].clone())
    };
    let (one_thread, one) = run("1");
    let (all_threads, all) = run("0");
    assert_eq!(one, all, "threads {one_thread} and {all_threads}");
    assert_eq!(one[0]["label"], "military uniform");
}

#[test]
fn a_size_budget_counts_each_row_at_its_precision() {
    // 1.0/224 v1: 16.9 MB of f32 weights, 4.2 MB at int8. A 5 MB budget keeps only int8 rows.
    let v = json_of(&[
        "sweep",
        "--no-timing",
        "--precision",
        "f32,int8",
        "--alphas",
        "1.0",
        "--resolutions",
        "224",
        "--max-size-mb",
        "5",
        "--format",
        "json",
    ]);
    let rows = v["rows"].as_array().unwrap();
    let fits: Vec<(&str, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["precision"].as_str().unwrap(),
                r["fits_budget"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(fits, [("f32", false), ("int8", true)]);
    assert_eq!(v["best"], 1);
    // The table and CSV say each row's precision.
    let out = cli()
        .args([
            "sweep",
            "--no-timing",
            "--precision",
            "f32,int8",
            "--alphas",
            "1.0",
            "--resolutions",
            "224",
        ])
        .args(["--format", "csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "precision").unwrap();
    let column: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(at).unwrap())
        .collect();
    assert_eq!(column, ["f32", "int8"]);
}

#[test]
fn crop_1_hands_an_image_at_the_resolution_to_the_network_byte_for_byte() {
    // Random pixels: any change on the way (a crop, a resize to another size, a channel swap,
    // a rescaling) would change them, and with them the outputs. The binary's q/256 for the PNG
    // must equal the int8 network run on the very bytes.
    let id = ModelId::V1_025_128;
    let network =
        QuantizedNetwork::new(NetworkParams::from_safetensors(&id.config(), id.bytes(), id.bytes()).unwrap())
            .unwrap();
    let pixels = network.random_input(1, 7);
    let r = id.resolution();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.png");
    image::RgbImage::from_raw(r, r, pixels.clone())
        .unwrap()
        .save(&path)
        .unwrap();
    let expected = network.run(&pixels, 1, Output::Probabilities).unwrap();
    let classify = |crop: &str| {
        let v = json_of(&[
            "classify",
            path.to_str().unwrap(),
            "--model",
            id.name(),
            "--precision",
            "int8",
            "--crop",
            crop,
            "--top",
            "1001",
            "--format",
            "json",
        ]);
        quantized_probabilities(&v[0])
    };
    assert_eq!(classify("1"), expected);
    // TF-slim's crop resamples the central 87.5%: a different input.
    assert_ne!(classify("0.875"), expected);
}

#[test]
fn retrain_and_sweep_data_are_f32_only() {
    // Heads are trained on f32 features; a retrained file carries no activation quantization.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let out = dir.path().join("mine.safetensors");
    let out = out.to_str().unwrap();
    let (code, e) = refusal(&["retrain", root, "--output", out, "--precision", "int8"]);
    assert_eq!(code, 2);
    assert!(
        e.starts_with("error: --precision cannot be used with retrain: "),
        "{e}"
    );
    let (code, e) = refusal(&["sweep", "--data", root, "--precision", "f32,int8"]);
    assert_eq!(code, 2);
    assert!(
        e.starts_with("error: --precision cannot be used with --data: "),
        "{e}"
    );
}
