//! Plans of the commands that only read the spec and the published tables: `analyze`, `presets`.

use super::{OutputPlan, UsageError, config_from};
use crate::arch::Config;
use crate::cli::{AnalyzeArgs, PresetsArgs};
use crate::published::Store;

/// `analyze`: one configuration and where to write its report.
#[derive(Debug)]
pub struct AnalyzePlan {
    pub config: Config,
    pub output: OutputPlan,
}

impl TryFrom<&AnalyzeArgs> for AnalyzePlan {
    type Error = UsageError;

    fn try_from(args: &AnalyzeArgs) -> Result<Self, UsageError> {
        Ok(AnalyzePlan {
            config: config_from(&args.model)?,
            output: OutputPlan::try_from(&args.out)?,
        })
    }
}

/// `presets`: the filters over the published table.
#[derive(Debug)]
pub struct PresetsPlan {
    pub family: Option<String>,
    pub alpha: Option<f64>,
    pub resolution: Option<u32>,
    pub source: Option<String>,
    pub output: OutputPlan,
}

impl TryFrom<&PresetsArgs> for PresetsPlan {
    type Error = UsageError;

    fn try_from(args: &PresetsArgs) -> Result<Self, UsageError> {
        if let Some(source) = &args.source {
            let store = Store::embedded();
            if store.source(source).is_none() {
                let ids: Vec<&str> = store.sources.iter().map(|s| s.id.as_str()).collect();
                return Err(UsageError::Invalid {
                    flag: "--source",
                    value: source.clone(),
                    reason: format!("expected one of {}", ids.join(", ")),
                });
            }
        }
        Ok(PresetsPlan {
            family: args.family.clone(),
            alpha: args.alpha.map(|a| a.get()),
            resolution: args.resolution.map(|r| r.get()),
            source: args.source.clone(),
            output: OutputPlan::try_from(&args.out)?,
        })
    }
}
