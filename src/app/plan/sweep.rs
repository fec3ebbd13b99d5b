//! The plan of `sweep`: the members and their grids (every configuration built before anything
//! is timed, so a bad grid fails before any output), budgets, timing, outputs and plot.

use std::path::PathBuf;

use anyhow::Result;

use super::retrain::{SplitFlags, cache_plan, folder, split_rule};
use super::{CachePlan, ModelChoice, ModelSource, OutputPlan, RunPlan, Target, UsageError, distinct_outputs};
use crate::app::network::{load_from, weights_bytes};
use crate::arch::{Alpha, Config, Resolution};
use crate::bench::TimingPlan;
use crate::cli::{MemberChoice, SweepArgs};
use crate::infer::{Precision, int8_unsupported};
use crate::memory::estimate;
use crate::nn::{ModelId, WeightOverrides};
use crate::output::{OutputFile, path_text};
use crate::published::Store;
use crate::sweep::{AccuracySource, Budget, Member};
use crate::transfer::{HeadSettings, Source, SplitRule};

/// One grid point: the member it belongs to (an index into `SweepPlan::members`) and its
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepPoint {
    pub member: usize,
    pub config: Config,
    /// With `--data`: the shipped pretrained backbone (run at `config.resolution`).
    pub model: Option<ModelId>,
}

/// Images per forward pass when `sweep --data` computes features (retrain's default).
pub const FEATURE_BATCH: usize = 8;

/// `sweep --data`: the labelled folder, its split, the cache and the heads' settings.
#[derive(Debug)]
pub struct DataPlan {
    pub dir: PathBuf,
    pub split: SplitRule,
    pub cache: CachePlan,
    pub head: HeadSettings,
}

#[derive(Debug)]
pub struct SweepPlan {
    pub members: Vec<Member>,
    pub points: Vec<SweepPoint>,
    /// `--precision`: a row per grid point and precision, in this order.
    pub precisions: Vec<Precision>,
    pub accuracy_source: AccuracySource,
    pub budget: Budget,
    pub no_timing: bool,
    pub timing: TimingPlan,
    pub batch: usize,
    pub mock_timer: bool,
    pub run: RunPlan,
    pub output: OutputPlan,
    pub plot: Option<OutputFile>,
    /// `--data`: accuracy measured on the user's folder.
    pub data: Option<DataPlan>,
    /// `--weights`: one more row per file (and precision), after the grid's; the files are
    /// read and checked by [`SweepPlan::weights_rows`] before any row is measured.
    pub weights: Vec<PathBuf>,
    /// `--quiet` (global; set by `Plan::try_from`).
    pub quiet: bool,
}

/// A `--weights` file, read and checked: its rows are its network as the file describes it.
#[derive(Debug)]
pub struct WeightsRow {
    pub path: PathBuf,
    /// The file's content, read once: what is measured is what was checked.
    pub bytes: Vec<u8>,
    /// The network the file holds (family, alpha, resolution and classes from its metadata).
    pub config: crate::arch::Config,
    /// With `--data`: for each class folder of DIR (by name), the output of the file's
    /// classifier whose label it names.
    pub classes: Option<Vec<(String, usize)>>,
}

impl WeightsRow {
    /// How the row is loaded: the file as it is, at its own resolution.
    pub fn choice(&self) -> ModelChoice {
        ModelChoice {
            source: ModelSource::File {
                path: self.path.clone(),
                overrides: WeightOverrides::default(),
            },
            resolution: None,
        }
    }

    /// The batch its rows run at: the timing's, and with `--data` the measurement's.
    pub fn batch(plan: &SweepPlan) -> usize {
        let timed = !plan.no_timing && !plan.mock_timer;
        let timing = if timed { plan.batch } else { 1 };
        if plan.data.is_some() {
            timing.max(FEATURE_BATCH)
        } else {
            timing
        }
    }
}

impl SweepPlan {
    /// Reads and checks every `--weights` file before any row is measured, the way bench loads
    /// its `--weights` (the whole file validated, the memory of its rows estimated against the
    /// limit, `--precision int8` refused without the file's activation quantization), and with
    /// `--data` its labels matched to DIR's class folders as evaluate matches them. Not part of
    /// `TryFrom`: a file that cannot be read or is not valid weights is a runtime failure (exit
    /// 1), as for bench and classify; the refusals are usage errors (exit 2).
    pub fn weights_rows(&self) -> Result<Vec<WeightsRow>> {
        let folders = match &self.data {
            Some(data) => Some(crate::dataset::read_labelled_folder(&data.dir)?),
            None => None,
        };
        let mut rows = Vec::with_capacity(self.weights.len());
        for path in &self.weights {
            let file = path_text(path);
            let choice = ModelChoice {
                source: ModelSource::File {
                    path: path.clone(),
                    overrides: WeightOverrides::default(),
                },
                resolution: None,
            };
            let bytes = weights_bytes(&choice)?
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default();
            let mut config = None;
            let mut labels = None;
            for &precision in &self.precisions {
                let run = RunPlan {
                    precision,
                    ..self.run
                };
                let loaded = load_from(&choice, Some(&bytes), &run, WeightsRow::batch(self), 0)?;
                config = Some(*loaded.net.config());
                labels = loaded.net.labels().map(<[String]>::to_vec);
            }
            // `precisions` is never empty (f32 by default), so every file was loaded.
            let Some(config) = config else { continue };
            let classes = match (&self.data, &folders) {
                (Some(data), Some(folders)) => {
                    let names: Vec<&str> = folders.classes.iter().map(|c| c.name.as_str()).collect();
                    Some(match_labels(&file, &data.dir, &names, labels.as_deref())?)
                }
                _ => None,
            };
            rows.push(WeightsRow {
                path: path.clone(),
                bytes,
                config,
                classes,
            });
        }
        Ok(rows)
    }
}

/// The output index of the file's label each of `folders` names (evaluate's matching), or a
/// one-line refusal naming the file and the folders that match none (or the same one).
fn match_labels(
    file: &str,
    dir: &std::path::Path,
    folders: &[&str],
    labels: Option<&[String]>,
) -> Result<Vec<(String, usize)>, UsageError> {
    let refuse = |reason: String| UsageError::Conflict {
        flag: "--weights",
        other: format!("--data {}", path_text(dir)),
        reason,
    };
    let Some(labels) = labels else {
        return Err(refuse(format!(
            "{file} names no classes (no metadata labels, as retrain writes them), so its outputs cannot be matched to the class folders ({}); drop --data to list it unmeasured",
            folders.join(", ")
        )));
    };
    let matched: Vec<Option<usize>> = folders
        .iter()
        .map(|f| crate::classify::custom_label(f, labels))
        .collect();
    let unmatched: Vec<&str> = folders
        .iter()
        .zip(&matched)
        .filter(|(_, m)| m.is_none())
        .map(|(f, _)| *f)
        .collect();
    if !unmatched.is_empty() {
        return Err(refuse(format!(
            "{file}'s labels ({}) do not match the class folders: {} match{} none of them",
            labels.join(", "),
            unmatched.join(", "),
            if unmatched.len() == 1 { "es" } else { "" }
        )));
    }
    let mut out: Vec<(String, usize)> = Vec::with_capacity(folders.len());
    for (folder, index) in folders.iter().zip(matched.into_iter().flatten()) {
        if let Some((other, _)) = out.iter().find(|(_, i)| *i == index) {
            return Err(refuse(format!(
                "class folders {other} and {folder} both name {file}'s label {}",
                labels[index]
            )));
        }
        out.push(((*folder).to_string(), index));
    }
    Ok(out)
}

/// `--data`'s plan (None without it): the folder and split checked, the cache created.
fn data_plan(args: &SweepArgs) -> Result<Option<DataPlan>, UsageError> {
    let Some(dir) = &args.data else {
        return Ok(None);
    };
    let dir = folder("--data", dir)?;
    let split = split_rule(&SplitFlags {
        dir: &dir,
        validation: &args.validation,
        test: &args.test,
        validation_percent: args.validation_percent,
        test_percent: args.test_percent,
    })?;
    if split.test == Source::Percent(0.0) {
        return Err(UsageError::Invalid {
            flag: "--test-percent",
            value: "0".into(),
            reason: "--data measures accuracy on test images: hold some out, or give --test DIR".into(),
        });
    }
    Ok(Some(DataPlan {
        dir,
        split,
        cache: cache_plan(args.no_cache, &args.cache_dir)?,
        head: HeadSettings {
            seed: args.seed.unwrap_or(0),
            ..HeadSettings::default()
        },
    }))
}

/// `--data`'s rows: every shipped pretrained backbone at its trained resolution and, with
/// `--resolutions`, at those too, in the order the models ship.
fn pretrained_points(resolutions: Option<&[u32]>) -> (Vec<Member>, Vec<SweepPoint>) {
    let mut members: Vec<Member> = Vec::new();
    let mut points = Vec::new();
    for id in ModelId::ALL {
        let trained = id.config();
        let member = Member::of(&trained);
        if !members.contains(&member) {
            members.push(member);
        }
        let index = members.iter().position(|m| *m == member).unwrap_or_default();
        let mut sizes = vec![trained.resolution];
        for &r in resolutions.unwrap_or_default() {
            if !sizes.contains(&r) {
                sizes.push(r);
            }
        }
        sizes[1..].sort_unstable();
        for resolution in sizes {
            points.push(SweepPoint {
                member: index,
                config: Config {
                    resolution,
                    ..trained
                },
                model: Some(id),
            });
        }
    }
    (members, points)
}

/// A comma-separated flag's items without repeats.
fn distinct<T: PartialEq + std::fmt::Display>(flag: &'static str, items: &[T]) -> Result<(), UsageError> {
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(UsageError::Invalid {
                flag,
                value: item.to_string(),
                reason: "duplicate value".into(),
            });
        }
    }
    Ok(())
}

/// `--families`: the members in the order given; `all` alone is every member.
fn members(choices: &[MemberChoice]) -> Result<Vec<Member>, UsageError> {
    if choices.contains(&MemberChoice::All) {
        if choices.len() > 1 {
            return Err(UsageError::Invalid {
                flag: "--families",
                value: "all".into(),
                reason: "'all' already names every member; give it alone".into(),
            });
        }
        return Ok(crate::sweep::member::ALL.to_vec());
    }
    let members: Vec<Member> = choices
        .iter()
        .filter_map(|c| match c {
            MemberChoice::One(m) => Some(*m),
            MemberChoice::All => None,
        })
        .collect();
    distinct("--families", &members)?;
    Ok(members)
}

/// A budget flag: finite, at least 0 (and at most `max`).
fn budget_value(flag: &'static str, value: Option<f64>, max: f64) -> Result<Option<f64>, UsageError> {
    match value {
        Some(v) if !(v.is_finite() && (0.0..=max).contains(&v)) => Err(UsageError::Invalid {
            flag,
            value: v.to_string(),
            reason: if max.is_finite() {
                format!("must be a number from 0 to {max}")
            } else {
                "must be a finite number >= 0".into()
            },
        }),
        other => Ok(other),
    }
}

/// The flags that only matter when the sweep times the network (with --data the run flags also
/// set how features are computed).
fn timing_flags(args: &SweepArgs) -> Vec<&'static str> {
    let t = &args.timing;
    let r = &args.run;
    let timing_only = args.data.is_none();
    [
        ("--warmup", t.warmup.is_some()),
        ("--runs", t.runs.is_some()),
        ("--min-time", t.min_time.is_some()),
        ("--batch", t.batch.is_some()),
        ("--threads", timing_only && r.threads.is_some()),
        ("--engine", timing_only && r.engine.is_some()),
        ("--int8-kernels", r.int8_kernels.is_some()),
        ("--max-memory", timing_only && r.max_memory.is_some()),
        ("--max-latency-ms", args.max_latency_ms.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

impl TryFrom<&SweepArgs> for SweepPlan {
    type Error = UsageError;

    fn try_from(args: &SweepArgs) -> Result<Self, UsageError> {
        let members = members(&args.families)?;
        if let Some(alphas) = &args.alphas {
            distinct("--alphas", alphas)?;
        }
        if let Some(resolutions) = &args.resolutions {
            distinct("--resolutions", resolutions)?;
        }
        if args.no_timing
            && let Some(flag) = timing_flags(args).first()
        {
            return Err(UsageError::Conflict {
                flag,
                other: "--no-timing".into(),
                reason: "nothing is timed without timing; drop one of them".into(),
            });
        }
        let budget = Budget {
            max_latency_ms: budget_value("--max-latency-ms", args.max_latency_ms, f64::INFINITY)?,
            max_size_mb: budget_value("--max-size-mb", args.max_size_mb, f64::INFINITY)?,
            min_top1: budget_value("--min-top1", args.min_top1, 100.0)?,
        };
        let output = OutputPlan::try_from(&args.out)?;
        for (i, path) in args.weights.iter().enumerate() {
            if args.weights[..i].contains(path) {
                return Err(UsageError::Invalid {
                    flag: "--weights",
                    value: path_text(path),
                    reason: "duplicate value".into(),
                });
            }
        }
        let plot = match &args.plot {
            Some(path) if path.extension().is_none_or(|e| e != "svg") => {
                return Err(UsageError::Path {
                    flag: "--plot",
                    path: crate::output::path_text(path),
                    reason: "the plot is SVG; name it FILE.svg".into(),
                });
            }
            other => Target::new("--plot", other.as_deref())?,
        };
        distinct_outputs(("--output", &output.target), ("--plot", &plot))?;
        let precisions = match args.run.precision.as_slice() {
            [] => vec![Precision::F32],
            list => list.to_vec(),
        };
        distinct("--precision", &precisions)?;
        let run = RunPlan::for_precisions(&args.run, &precisions)?;
        let batch = args.timing.batch.unwrap_or(1) as usize;

        let store = Store::embedded();
        let alphas: Option<Vec<f64>> = args
            .alphas
            .as_ref()
            .map(|a| a.iter().map(|a| Alpha::get(*a)).collect());
        let resolutions: Option<Vec<u32>> = args
            .resolutions
            .as_ref()
            .map(|r| r.iter().map(|r| Resolution::get(*r)).collect());
        let data = data_plan(args)?;
        if data.is_some() && precisions != [Precision::F32] {
            return Err(UsageError::Conflict {
                flag: "--precision",
                other: "--data".into(),
                reason: "--data measures accuracy with heads retrained on f32 features; drop --precision"
                    .into(),
            });
        }
        let (members, mut points) = if data.is_some() {
            pretrained_points(resolutions.as_deref())
        } else {
            (members, Vec::new())
        };
        // --data runs every backbone for its features, timed or not.
        for point in &points {
            if !args.timing.mock_timer {
                run.check_memory(
                    estimate(
                        &point.config,
                        batch.max(FEATURE_BATCH),
                        run.engine,
                        Precision::F32,
                        0,
                    ),
                    format!("{} at --batch {batch}", point.config.label()),
                    "lower --batch or the largest of --resolutions",
                )?;
            }
        }
        for (index, member) in members.iter().enumerate() {
            if data.is_some() {
                break;
            }
            for (alpha, resolution) in member.grid(&store, alphas.as_deref(), resolutions.as_deref()) {
                let config = member
                    .config(alpha, resolution)
                    .map_err(|e| UsageError::Conflict {
                        flag: "--families",
                        other: format!("the grid point alpha {alpha} at {resolution}"),
                        reason: e.to_string(),
                    })?;
                let timed = !args.no_timing && !args.timing.mock_timer;
                for &precision in &precisions {
                    if let Some(reason) = int8_unsupported(&config).filter(|_| precision == Precision::Int8)
                        && !args.no_timing
                    {
                        return Err(UsageError::Conflict {
                            flag: "--precision",
                            other: format!("--families {member}"),
                            reason: format!("{reason}, or sweep with --no-timing"),
                        });
                    }
                    if timed {
                        run.check_memory(
                            estimate(&config, batch, run.engine, precision, 0),
                            format!("{member} {} at --batch {batch}, {precision},", config.label()),
                            "lower --batch or the largest of --resolutions/--alphas",
                        )?;
                    }
                }
                points.push(SweepPoint {
                    member: index,
                    config,
                    model: None,
                });
            }
        }
        Ok(SweepPlan {
            members,
            points,
            precisions,
            accuracy_source: if data.is_some() {
                AccuracySource::Measured
            } else {
                args.accuracy_source
            },
            budget,
            no_timing: args.no_timing,
            timing: TimingPlan::try_from(&args.timing)?,
            batch,
            mock_timer: args.timing.mock_timer,
            run,
            output,
            plot: plot.file().cloned(),
            data,
            weights: args.weights.clone(),
            quiet: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<SweepPlan, UsageError> {
        let cli = Cli::try_parse_from([&["mobilenet-cli", "sweep"], args].concat()).unwrap();
        let Command::Sweep(sweep) = &cli.command else {
            unreachable!()
        };
        SweepPlan::try_from(sweep)
    }

    #[test]
    fn grids_and_families_are_validated() {
        assert_eq!(plan(&[]).unwrap().points.len(), 16);
        let two = plan(&["--families", "v2,v3-small", "--no-timing"]).unwrap();
        assert_eq!(two.members.len(), 2);
        assert_eq!(two.points.len(), 22 + 2);
        let all = plan(&["--families", "all", "--no-timing"]).unwrap();
        assert_eq!(all.members.len(), 6);
        let err = |args: &[&str]| plan(args).unwrap_err().to_string();
        assert_eq!(
            err(&["--families", "v1,v1"]),
            "invalid value 'v1' for --families: duplicate value"
        );
        assert!(err(&["--families", "all,v1"]).contains("give it alone"));
        assert_eq!(
            err(&["--alphas", "1.0,1"]),
            "invalid value '1.0' for --alphas: duplicate value"
        );
        assert!(err(&["--no-timing", "--runs", "5"]).starts_with("--runs cannot be used with --no-timing"));
        assert!(err(&["--min-top1", "101"]).contains("from 0 to 100"));
        assert!(err(&["--max-size-mb", "-1"]).contains("--max-size-mb"));
        assert!(err(&["--plot", "x.png"]).contains("FILE.svg"));
    }

    #[test]
    fn data_sweeps_the_pretrained_backbones_at_their_resolution_and_the_asked_ones() {
        let (_, points) = pretrained_points(None);
        let names: Vec<(&str, u32)> = points
            .iter()
            .map(|p| (p.model.unwrap().name(), p.config.resolution))
            .collect();
        assert_eq!(
            names,
            [
                ("0.25_128", 128),
                ("0.5_160", 160),
                ("0.75_192", 192),
                ("0.75_224", 224),
                ("1.0_224", 224),
                ("v2_1.0_224", 224),
                ("v3-small_1.0_224", 224)
            ]
        );
        // The trained resolution first, then the others in order, none twice.
        let (members, points) = pretrained_points(Some(&[224, 128]));
        assert_eq!(members.len(), 3);
        let of = |name: &str| -> Vec<u32> {
            points
                .iter()
                .filter(|p| p.model.unwrap().name() == name)
                .map(|p| p.config.resolution)
                .collect()
        };
        assert_eq!(of("0.25_128"), [128, 224]);
        assert_eq!(of("0.75_192"), [192, 128, 224]);
        assert_eq!(of("v2_1.0_224"), [224, 128]);
        assert!(points.iter().all(|p| members[p.member] == Member::of(&p.config)));
    }

    #[test]
    fn a_files_labels_are_matched_to_the_class_folders_as_evaluate_matches_them() {
        let labels: Vec<String> = ["hot dog", "not hot dog"].map(String::from).to_vec();
        let dir = std::path::Path::new("photos");
        let matched = match_labels(
            "mine.safetensors",
            dir,
            &["not_hot_dog", "Hot_Dog"],
            Some(&labels),
        );
        assert_eq!(
            matched.unwrap(),
            [("not_hot_dog".to_string(), 1), ("Hot_Dog".to_string(), 0)]
        );
        let err = match_labels("mine.safetensors", dir, &["cat", "hot dog", "dog"], Some(&labels))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--weights cannot be used with --data photos: mine.safetensors's labels (hot dog, not hot dog) do not match the class folders: cat, dog match none of them"
        );
        let twice = match_labels("m", dir, &["hot dog", "hot_dog"], Some(&labels)).unwrap_err();
        assert!(
            twice.to_string().contains("both name m's label hot dog"),
            "{twice}"
        );
        let unnamed = match_labels("m", dir, &["a", "b"], None).unwrap_err();
        assert!(unnamed.to_string().contains("m names no classes"), "{unnamed}");
    }

    #[test]
    fn plot_and_output_must_differ() {
        let dir = tempfile::tempdir().unwrap();
        let same = dir.path().join("x.svg");
        let same = same.to_str().unwrap();
        let err = plan(&["--no-timing", "--plot", same, "--output", same]).unwrap_err();
        assert!(
            err.to_string().starts_with("--plot cannot be used with --output"),
            "{err}"
        );
    }
}
