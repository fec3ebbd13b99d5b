//! The JSON outputs validate against the schemas documented in docs/schema/. A small validator
//! for the subset of JSON Schema those files use: type (one or a list), const, enum, required,
//! properties, items, minItems, oneOf and local $ref.

use crate::common::json_of;
use serde_json::Value;

fn schema(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schema")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn type_matches(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("schema uses unsupported type {other}"),
    }
}

fn validate(root: &Value, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.strip_prefix('#').expect("local $ref only");
        return validate(root, root.pointer(pointer).expect("dangling $ref"), value, path);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let passing = options
            .iter()
            .filter(|s| validate(root, s, value, path).is_ok())
            .count();
        return if passing == 1 {
            Ok(())
        } else {
            Err(format!("{path}: matches {passing} of oneOf"))
        };
    }
    if let Some(ty) = schema.get("type") {
        let ok = match ty {
            Value::String(t) => type_matches(value, t),
            Value::Array(ts) => ts.iter().any(|t| type_matches(value, t.as_str().unwrap())),
            _ => panic!("bad type in schema"),
        };
        if !ok {
            return Err(format!("{path}: {value} is not {ty}"));
        }
    }
    if let Some(expected) = schema.get("const")
        && value != expected
    {
        return Err(format!("{path}: {value} is not {expected}"));
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return Err(format!("{path}: {value} is not one of {options:?}"));
    }
    if let (Some(min), Some(array)) = (schema.get("minItems").and_then(Value::as_u64), value.as_array())
        && (array.len() as u64) < min
    {
        return Err(format!("{path}: fewer than {min} items"));
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required {
            let key = key.as_str().unwrap();
            if value.get(key).is_none() {
                return Err(format!("{path}: missing required key {key}"));
            }
        }
    }
    if let (Some(props), Some(object)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (key, sub) in props {
            if let Some(v) = object.get(key) {
                validate(root, sub, v, &format!("{path}.{key}"))?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            validate(root, items, v, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[test]
fn sweep_json_validates() {
    let s = schema("sweep.schema.json");
    for args in [
        vec![
            "sweep",
            "--mock-timer",
            "--format",
            "json",
            "--max-latency-ms",
            "10",
        ],
        vec!["sweep", "--no-timing", "--format", "json", "--alphas", "0.6,1.0"],
        vec!["sweep", "--mock-timer", "--format", "json", "--families", "all"],
        // Extrapolated estimates, points beyond the limit and a budget no trusted row meets.
        vec![
            "sweep",
            "--no-timing",
            "--format",
            "json",
            "--alphas",
            "1.2,2.0",
            "--resolutions",
            "224",
            "--families",
            "v1,v3-large",
            "--max-size-mb",
            "100",
        ],
    ] {
        validate(&s, &s, &json_of(&args), "$").unwrap();
    }
}

/// docs/sweep.json is regenerated (a release build, real timing) whenever the schema changes.
#[test]
fn the_readme_sweep_run_validates() {
    let s = schema("sweep.schema.json");
    let readme_run: Value = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/sweep.json"))
            .unwrap(),
    )
    .unwrap();
    validate(&s, &s, &readme_run, "$").unwrap();
}

#[test]
fn bench_and_analyze_json_validate() {
    let b = schema("bench.schema.json");
    let v = json_of(&[
        "bench",
        "--mock-timer",
        "--model",
        "0.25_128",
        "--per-layer",
        "--format",
        "json",
    ]);
    validate(&b, &b, &v, "$").unwrap();
    let a = schema("analyze.schema.json");
    for args in [
        vec!["--family", "v1"],
        vec!["--family", "v1", "--variant", "full-conv", "--classes", "1001"],
        vec!["--family", "v2"],
        vec!["--family", "v3-large"],
        vec!["--family", "v3-small", "--minimalistic", "--alpha", "0.75"],
    ] {
        let mut command = vec!["analyze", "--format", "json"];
        command.extend(args);
        validate(&a, &a, &json_of(&command), "$").unwrap();
    }
}

/// The analyze schema pins what version 2 changed: the SE-less keys, the class count beside the
/// totals, layer roles and the published rows' conventions.
#[test]
fn the_analyze_schema_rejects_version_1_shapes() {
    let a = schema("analyze.schema.json");
    let v = json_of(&["analyze", "--family", "v3-large", "--format", "json"]);
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut w = v.clone();
        edit(&mut w);
        validate(&a, &a, &w, "$").unwrap_err()
    };
    assert!(broken(&|w| w["schema_version"] = Value::from(1)).contains("schema_version"));
    assert!(
        broken(&|w| {
            w["totals"].as_object_mut().unwrap().remove("classes");
        })
        .contains("classes")
    );
    assert!(
        broken(&|w| {
            w["totals"]
                .as_object_mut()
                .unwrap()
                .remove("mult_adds_excluding_se");
        })
        .contains("mult_adds_excluding_se")
    );
    assert!(broken(&|w| w["layers"][3]["role"] = Value::from("bneck")).contains("role"));
    assert!(
        broken(&|w| w["published"][0]["params_convention"] = Value::from("params_with_se"))
            .contains("params_convention")
    );
}

#[test]
fn the_validator_rejects_what_it_should() {
    let s = schema("sweep.schema.json");
    let mut v = json_of(&[
        "sweep",
        "--no-timing",
        "--format",
        "json",
        "--alphas",
        "1.0",
        "--resolutions",
        "224",
    ]);
    v["rows"][0]["mult_adds"] = Value::from(1.5);
    assert!(validate(&s, &s, &v, "$").unwrap_err().contains("mult_adds"));
    v["rows"][0]["mult_adds"] = Value::from(1);
    v["rows"][0]["family"] = Value::from("v4");
    assert!(validate(&s, &s, &v, "$").unwrap_err().contains("family"));
    v["rows"][0]["family"] = Value::from("v1");
    v["rows"][0]["top1"]
        .as_object_mut()
        .unwrap()
        .remove("extrapolated");
    assert!(validate(&s, &s, &v, "$").unwrap_err().contains("top1"));
    v["rows"][0]["top1"]["extrapolated"] = Value::from(false);
    v["rows"][0]["top1"]["provenance"]["type"] = Value::from("guessed");
    assert!(validate(&s, &s, &v, "$").unwrap_err().contains("top1"));
    v["rows"][0]["top1"]["provenance"]["type"] = Value::from("published");
    validate(&s, &s, &v, "$").unwrap();
    v["schema_version"] = Value::from(1);
    assert!(validate(&s, &s, &v, "$").unwrap_err().contains("schema_version"));
    v.as_object_mut().unwrap().remove("rows");
    assert!(validate(&s, &s, &v, "$").unwrap_err().contains("rows"));
}

#[test]
fn retrain_json_validates() {
    let s = schema("retrain.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let colours = [("blue", [30, 60, 200]), ("red", [200, 40, 30])];
    crate::common::colour_task(&dir.path().join("data"), &colours, 12, 7);
    let data = dir.path().join("data");
    let out = dir.path().join("m.safetensors");
    let base = [
        "retrain",
        data.to_str().unwrap(),
        "--model",
        "0.25_128",
        "--no-cache",
        "--epochs",
        "3",
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ];
    for extra in [
        vec![],
        vec!["--augment", "--test-percent", "0", "--validation-percent", "0"],
    ] {
        let mut args = base.to_vec();
        args.extend(extra);
        let v = json_of(&args);
        validate(&s, &s, &v, "$").unwrap();
        let mut broken = v.clone();
        broken["feature"]["source"]["kind"] = Value::from("logits");
        assert!(validate(&s, &s, &broken, "$").unwrap_err().contains("source"));
    }
}

#[test]
fn sweep_data_json_validates() {
    let s = schema("sweep.schema.json");
    let dir = tempfile::tempdir().unwrap();
    let colours = [("blue", [30, 60, 200]), ("red", [200, 40, 30])];
    let data = dir.path().join("data");
    crate::common::colour_task(&data, &colours, 6, 5);
    let v = json_of(&[
        "sweep",
        "--data",
        data.to_str().unwrap(),
        "--test-percent",
        "30",
        "--no-cache",
        "--mock-timer",
        "--min-top1",
        "50",
        "--format",
        "json",
    ]);
    validate(&s, &s, &v, "$").unwrap();
    assert_eq!(v["rows"][0]["top1"]["provenance"]["type"], "measured");
    let mut broken = v.clone();
    broken["rows"][0]["top1"]["provenance"]
        .as_object_mut()
        .unwrap()
        .remove("interval");
    assert!(validate(&s, &s, &broken, "$").is_err());
}

#[test]
fn sweep_weights_json_validates() {
    let s = schema("sweep.schema.json");
    let task = crate::sweep_weights::Retrained::new();
    // Without --data: the file's figures are unavailable; timed by the mock timer.
    let v = task.json(&["--mock-timer", "--runs", "2"]);
    validate(&s, &s, &v, "$").unwrap();
    let last = v["rows"].as_array().unwrap().len() - 1;
    assert_eq!(
        v["rows"][last]["top1"]["unavailable"]["reason"],
        "no-published-figure"
    );
    let mut broken = v.clone();
    broken["rows"][last]["top1"]["unavailable"]["reason"] = Value::from("custom");
    assert!(validate(&s, &s, &broken, "$").is_err());

    // With --data: measured as given.
    let data = task.data_args();
    let mut extra: Vec<&str> = data.iter().map(String::as_str).collect();
    extra.extend(["--no-timing", "--min-top1", "50"]);
    let v = task.json(&extra);
    validate(&s, &s, &v, "$").unwrap();
    let last = v["rows"].as_array().unwrap().len() - 1;
    assert_eq!(v["rows"][last]["top1"]["provenance"]["type"], "measured-as-given");
    let mut broken = v.clone();
    broken["rows"][last]["top1"]["provenance"]
        .as_object_mut()
        .unwrap()
        .remove("weights");
    assert!(validate(&s, &s, &broken, "$").is_err());
}
