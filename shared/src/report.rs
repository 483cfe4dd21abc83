//! The dataset report's shape: label counts over the zip and warnings a
//! child's teacher can act on before training (contract, "Dataset report").
//! Computing it from the images' signatures lives in the worker; this module
//! only fixes what leaves zipfleet, in the manifest and the status `result`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Label counts and warnings of one finished job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetReport {
    /// Images in the zip per label (skipped images are not counted).
    pub labels: BTreeMap<String, u32>,
    /// Sorted by code, then first id.
    pub warnings: Vec<ReportWarning>,
}

/// One thing about the data worth telling the class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportWarning {
    pub code: WarningCode,
    /// The labels the warning concerns.
    pub labels: Vec<String>,
    /// The image ids it concerns (empty for label-level warnings).
    pub ids: Vec<String>,
    /// A sentence a teacher can read.
    pub message: String,
}

/// The report's warning codes, fixed by the contract. Their order here is the
/// order warnings are sorted in (alphabetical, as serialized).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// The picture is (almost) one flat colour.
    BlankImage,
    /// The same picture more than once in one label.
    Duplicate,
    /// The same picture under two or more labels.
    DuplicateAcrossLabels,
    /// The largest label has more than the configured ratio times the smallest's images.
    ImbalancedLabels,
    /// The source was smaller than the output in both dimensions (enlarged).
    SmallSource,
    /// A label with fewer images than the configured minimum.
    TooFewImages,
}

impl WarningCode {
    pub const ALL: [WarningCode; 6] = [
        Self::BlankImage,
        Self::Duplicate,
        Self::DuplicateAcrossLabels,
        Self::ImbalancedLabels,
        Self::SmallSource,
        Self::TooFewImages,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlankImage => "blank_image",
            Self::Duplicate => "duplicate",
            Self::DuplicateAcrossLabels => "duplicate_across_labels",
            Self::ImbalancedLabels => "imbalanced_labels",
            Self::SmallSource => "small_source",
            Self::TooFewImages => "too_few_images",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_sort_as_they_serialize() {
        let mut names: Vec<_> = WarningCode::ALL.iter().map(|c| c.as_str()).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(
            names, sorted,
            "enum order must be the serialized (alphabetical) order"
        );
        for code in WarningCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        names.dedup();
        assert_eq!(names.len(), 6);
    }
}
