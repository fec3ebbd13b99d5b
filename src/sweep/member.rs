//! What a sweep compares: members of the MobileNet family (v1, v2, v3-large, v3-small and the
//! two minimalistic v3 models), each with its own grid of width multipliers and resolutions.
//!
//! A member's default grid is its published checkpoints (the TF-slim float models: v1's 16
//! (alpha, resolution) points of Howard et al. 2017 Tables 6-7, v2's 22 width x resolution
//! models, v3's 1.0 and 0.75 at 224), read from `presets/published`, not written here. Giving
//! `--alphas` or `--resolutions` replaces that axis; the grid is then the cross product with
//! the member's published values on the other axis.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::arch::{Config, ConfigError, Family};
use crate::published::Store;

/// One member of the family as a sweep names it; serialised as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Member {
    pub family: Family,
    /// MobileNetV3's minimalistic model (no SE, ReLU, 3x3 kernels).
    pub minimalistic: bool,
}

/// Every member, in the order reports list them.
pub const ALL: [Member; 6] = [
    Member::standard(Family::V1),
    Member::standard(Family::V2),
    Member::standard(Family::V3Large),
    Member::standard(Family::V3Small),
    Member {
        family: Family::V3Large,
        minimalistic: true,
    },
    Member {
        family: Family::V3Small,
        minimalistic: true,
    },
];

impl Member {
    pub const fn standard(family: Family) -> Self {
        Member {
            family,
            minimalistic: false,
        }
    }

    /// The member a model belongs to.
    pub fn of(config: &Config) -> Self {
        Member {
            family: config.family,
            minimalistic: config.minimalistic,
        }
    }

    /// "v1", "v2", "v3-large", "v3-large-minimalistic", ...
    pub fn name(self) -> String {
        if self.minimalistic {
            format!("{}-minimalistic", self.family.name())
        } else {
            self.family.name().to_string()
        }
    }

    /// The model at one grid point.
    pub fn config(self, alpha: f64, resolution: u32) -> Result<Config, ConfigError> {
        Config::build(
            self.family,
            alpha,
            resolution,
            1,
            1000,
            crate::arch::Variant::Standard,
            self.minimalistic,
        )
    }

    /// The (alpha, resolution) points of this member's TF-slim float checkpoints, widest and
    /// largest first.
    pub fn published_grid(self, store: &Store) -> Vec<(f64, u32)> {
        let mut points = super::accuracy::published_grid(store, super::AccuracySource::Slim, self);
        points.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        points
    }

    /// The sweep grid: the published checkpoints, or the cross product when an axis is given.
    pub fn grid(self, store: &Store, alphas: Option<&[f64]>, resolutions: Option<&[u32]>) -> Vec<(f64, u32)> {
        let published = self.published_grid(store);
        if alphas.is_none() && resolutions.is_none() {
            return published;
        }
        let alphas = alphas.map_or_else(|| distinct(published.iter().map(|p| p.0)), <[f64]>::to_vec);
        let resolutions =
            resolutions.map_or_else(|| distinct(published.iter().map(|p| p.1)), <[u32]>::to_vec);
        alphas
            .iter()
            .flat_map(|&a| resolutions.iter().map(move |&r| (a, r)))
            .collect()
    }
}

/// `values` without repeats, in first-seen order. Exact equality is right here: the values are
/// parsed from the same printed figures, so a repeat is bit-identical.
pub(crate) fn distinct<T: PartialEq>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Member {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl FromStr for Member {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<String> = ALL.iter().map(|m| m.name()).collect();
            format!("unknown family '{s}' (expected all or {})", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for member in ALL {
            assert_eq!(member.name().parse::<Member>().unwrap(), member);
        }
        assert!(
            "v4".parse::<Member>()
                .unwrap_err()
                .contains("v3-small-minimalistic")
        );
    }

    #[test]
    fn members_serialise_as_their_names() {
        assert_eq!(
            serde_json::to_string(&ALL[5]).unwrap(),
            "\"v3-small-minimalistic\""
        );
    }

    #[test]
    fn default_grids_are_the_published_checkpoints() {
        let store = Store::embedded();
        let grid = |m: Member| m.grid(&store, None, None);
        let v1 = grid(Member::standard(Family::V1));
        assert_eq!(v1.len(), 16);
        assert_eq!((v1[0], v1[15]), ((1.0, 224), (0.25, 128)));
        let v2 = grid(Member::standard(Family::V2));
        assert_eq!(v2.len(), 22);
        assert_eq!(&v2[..3], &[(1.4, 224), (1.3, 224), (1.0, 224)]);
        assert_eq!(v2[21], (0.35, 96));
        assert_eq!(grid(Member::standard(Family::V3Large)), [(1.0, 224), (0.75, 224)]);
        assert_eq!(grid(Member::standard(Family::V3Small)), [(1.0, 224), (0.75, 224)]);
        assert_eq!(grid(ALL[4]), [(1.0, 224)]);
        assert_eq!(grid(ALL[5]), [(1.0, 224)]);
    }

    #[test]
    fn a_given_axis_is_crossed_with_the_published_other() {
        let store = Store::embedded();
        let v3 = Member::standard(Family::V3Small);
        assert_eq!(
            v3.grid(&store, None, Some(&[160, 192])),
            [(1.0, 160), (1.0, 192), (0.75, 160), (0.75, 192)]
        );
        assert_eq!(v3.grid(&store, Some(&[0.5]), None), [(0.5, 224)]);
        let v1 = Member::standard(Family::V1);
        assert_eq!(v1.grid(&store, Some(&[0.6]), None).len(), 4);
    }

    #[test]
    fn configs_carry_the_member() {
        let c = ALL[5].config(0.75, 192).unwrap();
        assert_eq!(
            (c.family, c.minimalistic, c.resolution),
            (Family::V3Small, true, 192)
        );
    }
}
