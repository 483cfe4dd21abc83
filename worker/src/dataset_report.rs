//! The dataset report of one job (contract, "Dataset report"), computed from
//! the images' signatures once every image is rendered. Pure: no I/O, the
//! same input always gives the same report.
//!
//! - Label counts over the images in the zip; a label all of whose images
//!   were skipped is listed with 0 (and is short of pictures).
//! - `too_few_images` per label, `imbalanced_labels` once (the largest label
//!   against every label it outnumbers by more than the ratio).
//! - Copies: pictures with the same exact key, or a pHash and a colour
//!   layout both near ([`Signature::same_picture`]), are joined (union-find, so a group is every picture reachable through
//!   such pairs); each group of two or more gives one `duplicate_across_labels`
//!   (two or more labels) or one `duplicate` (one label) with all its ids.
//!   Blank pictures are left out of this: they are reported as blank, and two
//!   grey frames are not "the same photo".
//! - `small_source` and `blank_image`: one warning each listing every image
//!   concerned, so a class with thirty thumbnails reads one sentence, not thirty.
//!
//! Ids inside a warning are in job order; labels are sorted. Warnings are
//! sorted by code, then by the job position of their first id, then labels.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use zipfleet_imaging::Signature;
use zipfleet_shared::config::ReportSettings;
use zipfleet_shared::report::{DatasetReport, ReportWarning, WarningCode};

/// One image of the job, in job order.
#[derive(Debug, Clone)]
pub(crate) struct ReportImage<'a> {
    pub(crate) id: &'a str,
    pub(crate) label: &'a str,
    /// `None` when the image was skipped (not in the zip).
    pub(crate) rendered: Option<RenderedFacts>,
}

/// What the report needs of an image in the zip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenderedFacts {
    /// The source's upright size.
    pub(crate) source_width: u32,
    pub(crate) source_height: u32,
    pub(crate) signature: Signature,
}

/// Ids listed in a message before "and N more" (the warning's `ids` has them all).
const MESSAGE_IDS: usize = 10;

/// The report of a job whose output is `output_width`×`output_height`.
pub(crate) fn dataset_report(
    images: &[ReportImage<'_>],
    output_width: u32,
    output_height: u32,
    settings: &ReportSettings,
) -> DatasetReport {
    let mut labels: BTreeMap<String, u32> = BTreeMap::new();
    for image in images {
        *labels.entry(image.label.to_string()).or_default() += u32::from(image.rendered.is_some());
    }
    // (first id's job position, warning)
    let mut warnings: Vec<(usize, ReportWarning)> = Vec::new();
    label_warnings(&labels, settings, &mut warnings);
    duplicate_warnings(images, &mut warnings);
    image_warnings(images, output_width, output_height, &mut warnings);
    warnings.sort_by(|(a_pos, a), (b_pos, b)| {
        (a.code, a_pos, &a.labels).cmp(&(b.code, b_pos, &b.labels))
    });
    DatasetReport {
        labels,
        warnings: warnings.into_iter().map(|(_, warning)| warning).collect(),
    }
}

fn label_warnings(
    labels: &BTreeMap<String, u32>,
    settings: &ReportSettings,
    out: &mut Vec<(usize, ReportWarning)>,
) {
    let min = settings.min_images_per_label;
    for (label, &count) in labels {
        if count >= min {
            continue;
        }
        let message = match count {
            0 => format!("{label} has no pictures in the zip; add at least {min}"),
            1 => format!("{label} has only 1 picture; add at least {} more", min - 1),
            n => format!(
                "{label} has only {n} pictures; add at least {} more",
                min - n
            ),
        };
        out.push((
            usize::MAX,
            warning(
                WarningCode::TooFewImages,
                vec![label.clone()],
                vec![],
                message,
            ),
        ));
    }

    // A ratio below 1 would call equal labels imbalanced; it means 1.
    let ratio = if settings.max_label_ratio > 0.0 {
        settings.max_label_ratio.max(1.0)
    } else {
        0.0
    };
    // Labels with no picture at all are "too few", not "imbalanced".
    let present: Vec<(&String, u32)> = labels
        .iter()
        .map(|(label, &count)| (label, count))
        .filter(|&(_, count)| count > 0)
        .collect();
    let Some(&(largest, most)) = present
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
    else {
        return;
    };
    if ratio <= 0.0 {
        return;
    }
    let mut smaller: Vec<(&String, u32)> = present
        .iter()
        .copied()
        .filter(|&(label, count)| label != largest && f64::from(most) > ratio * f64::from(count))
        .collect();
    if smaller.is_empty() {
        return;
    }
    smaller.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    let listed = join_and(
        &smaller
            .iter()
            .map(|(label, count)| format!("{label} ({count})"))
            .collect::<Vec<_>>(),
    );
    let message = format!(
        "{largest} has {most} pictures, more than {} times as many as {listed}: a model trained on this learns to guess {largest}; add pictures to the smaller {}",
        format_ratio(ratio),
        if smaller.len() == 1 { "label" } else { "labels" },
    );
    let mut names = vec![largest.clone()];
    names.extend(smaller.iter().map(|(label, _)| (*label).clone()));
    out.push((
        usize::MAX,
        warning(WarningCode::ImbalancedLabels, names, vec![], message),
    ));
}

fn duplicate_warnings(images: &[ReportImage<'_>], out: &mut Vec<(usize, ReportWarning)>) {
    // Indices (job positions) of the pictures that take part.
    let members: Vec<(usize, Signature)> = images
        .iter()
        .enumerate()
        .filter_map(|(position, image)| Some((position, image.rendered?.signature)))
        .filter(|(_, signature)| !signature.is_blank())
        .collect();
    let mut groups = UnionFind::new(members.len());
    let mut by_key: HashMap<u64, usize> = HashMap::new();
    for (i, (_, signature)) in members.iter().enumerate() {
        if let Some(&first) = by_key.get(&signature.exact) {
            groups.union(first, i);
        } else {
            by_key.insert(signature.exact, i);
        }
    }
    for i in 0..members.len() {
        for j in i + 1..members.len() {
            if members[i].1.same_picture(&members[j].1) {
                groups.union(i, j);
            }
        }
    }
    let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, (position, _)) in members.iter().enumerate() {
        by_root.entry(groups.find(i)).or_default().push(*position);
    }
    for positions in by_root
        .into_values()
        .filter(|positions| positions.len() > 1)
    {
        // `members` is in job order, so each group's positions are too.
        let ids: Vec<String> = positions
            .iter()
            .map(|&p| images[p].id.to_string())
            .collect();
        let labels: BTreeSet<&str> = positions.iter().map(|&p| images[p].label).collect();
        let listed = list_ids(&ids);
        let (code, message) = if labels.len() > 1 {
            let names = join_and(
                &labels
                    .iter()
                    .map(|label| label.to_string())
                    .collect::<Vec<_>>(),
            );
            (
                WarningCode::DuplicateAcrossLabels,
                format!("the same picture is in {names} ({listed})"),
            )
        } else {
            let label = labels.iter().next().expect("a group has a label");
            (
                WarningCode::Duplicate,
                format!(
                    "{label} has the same picture {} times ({listed})",
                    ids.len()
                ),
            )
        };
        out.push((
            positions[0],
            warning(
                code,
                labels.iter().map(|label| label.to_string()).collect(),
                ids,
                message,
            ),
        ));
    }
}

fn image_warnings(
    images: &[ReportImage<'_>],
    output_width: u32,
    output_height: u32,
    out: &mut Vec<(usize, ReportWarning)>,
) {
    let small = |facts: &RenderedFacts| {
        facts.source_width < output_width && facts.source_height < output_height
    };
    let size = format!("{output_width}×{output_height}");
    let picked = |keep: &dyn Fn(&RenderedFacts) -> bool| -> Vec<usize> {
        images
            .iter()
            .enumerate()
            .filter(|(_, image)| image.rendered.as_ref().is_some_and(keep))
            .map(|(position, _)| position)
            .collect()
    };

    let smalls = picked(&small);
    if let [only] = smalls[..] {
        let facts = images[only].rendered.expect("rendered");
        let message = format!(
            "picture {} in {} is only {}×{} pixels and was enlarged to {size}, so it will look blurry",
            images[only].id, images[only].label, facts.source_width, facts.source_height,
        );
        out.push(image_warning(
            WarningCode::SmallSource,
            images,
            &smalls,
            message,
        ));
    } else if !smalls.is_empty() {
        let message = format!(
            "{} pictures were smaller than {size} and were enlarged, so they will look blurry: {}",
            smalls.len(),
            list_with_labels(images, &smalls),
        );
        out.push(image_warning(
            WarningCode::SmallSource,
            images,
            &smalls,
            message,
        ));
    }

    let blanks = picked(&|facts| facts.signature.is_blank());
    if let [only] = blanks[..] {
        let message = format!(
            "picture {} in {} is (almost) one flat colour",
            images[only].id, images[only].label
        );
        out.push(image_warning(
            WarningCode::BlankImage,
            images,
            &blanks,
            message,
        ));
    } else if !blanks.is_empty() {
        let message = format!(
            "{} pictures are (almost) one flat colour: {}",
            blanks.len(),
            list_with_labels(images, &blanks)
        );
        out.push(image_warning(
            WarningCode::BlankImage,
            images,
            &blanks,
            message,
        ));
    }
}

fn image_warning(
    code: WarningCode,
    images: &[ReportImage<'_>],
    positions: &[usize],
    message: String,
) -> (usize, ReportWarning) {
    let labels: BTreeSet<&str> = positions.iter().map(|&p| images[p].label).collect();
    let ids = positions
        .iter()
        .map(|&p| images[p].id.to_string())
        .collect();
    (
        positions[0],
        warning(
            code,
            labels.into_iter().map(String::from).collect(),
            ids,
            message,
        ),
    )
}

fn warning(
    code: WarningCode,
    labels: Vec<String>,
    ids: Vec<String>,
    message: String,
) -> ReportWarning {
    ReportWarning {
        code,
        labels,
        ids,
        message,
    }
}

/// "images 7 and 19", "images 1, 4 and 9", "images 1, 2, … and 5 more".
fn list_ids(ids: &[String]) -> String {
    let shown: Vec<String> = ids.iter().take(MESSAGE_IDS).cloned().collect();
    if ids.len() > MESSAGE_IDS {
        format!(
            "images {} and {} more",
            shown.join(", "),
            ids.len() - MESSAGE_IDS
        )
    } else {
        format!("images {}", join_and(&shown))
    }
}

/// "4 (cats), 9 (dogs) and 12 (dogs)", cut after [`MESSAGE_IDS`].
fn list_with_labels(images: &[ReportImage<'_>], positions: &[usize]) -> String {
    let shown: Vec<String> = positions
        .iter()
        .take(MESSAGE_IDS)
        .map(|&p| format!("{} ({})", images[p].id, images[p].label))
        .collect();
    if positions.len() > MESSAGE_IDS {
        format!(
            "{} and {} more",
            shown.join(", "),
            positions.len() - MESSAGE_IDS
        )
    } else {
        join_and(&shown)
    }
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// 3.0 → "3", 2.5 → "2.5".
fn format_ratio(ratio: f64) -> String {
    if ratio.fract() == 0.0 {
        format!("{ratio:.0}")
    } else {
        format!("{ratio}")
    }
}

/// Disjoint sets over `0..n` (path halving, union by size).
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature whose pHash is `phash` and exact key `exact`, not blank.
    fn sig(phash: u64, exact: u64) -> Signature {
        Signature {
            exact,
            phash,
            spread: 40.0,
            detail: 30.0,
            colours: [[90, 120, 150]; 16],
        }
    }

    fn facts(signature: Signature) -> Option<RenderedFacts> {
        Some(RenderedFacts {
            source_width: 800,
            source_height: 600,
            signature,
        })
    }

    /// Distinct pHashes: far apart (random-looking 64-bit patterns).
    fn distinct(n: u64) -> u64 {
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x5555_0000_aaaa_ffff
    }

    fn images<'a>(list: &'a [(&'a str, &'a str, Option<RenderedFacts>)]) -> Vec<ReportImage<'a>> {
        list.iter()
            .map(|&(id, label, rendered)| ReportImage {
                id,
                label,
                rendered,
            })
            .collect()
    }

    fn codes(report: &DatasetReport) -> Vec<&'static str> {
        report.warnings.iter().map(|w| w.code.as_str()).collect()
    }

    #[test]
    fn counts_only_images_in_the_zip_and_warns_about_short_labels() {
        let list: Vec<(String, &str, Option<RenderedFacts>)> = (0..8)
            .map(|i| {
                (
                    i.to_string(),
                    if i < 6 { "cats" } else { "dogs" },
                    if i == 7 {
                        None
                    } else {
                        facts(sig(distinct(i), i))
                    },
                )
            })
            .collect();
        let list: Vec<(&str, &str, Option<RenderedFacts>)> = list
            .iter()
            .map(|(id, label, f)| (id.as_str(), *label, *f))
            .collect();
        let report = dataset_report(&images(&list), 224, 224, &ReportSettings::default());
        assert_eq!(
            report.labels,
            BTreeMap::from([("cats".into(), 6), ("dogs".into(), 1)])
        );
        assert_eq!(codes(&report), ["imbalanced_labels", "too_few_images"]);
        assert_eq!(report.warnings[1].labels, ["dogs"]);
        assert!(report.warnings[1].ids.is_empty());
        assert_eq!(
            report.warnings[1].message,
            "dogs has only 1 picture; add at least 4 more"
        );
        assert_eq!(report.warnings[0].labels, ["cats", "dogs"]);
        assert!(
            report.warnings[0]
                .message
                .starts_with("cats has 6 pictures, more than 3 times as many as dogs (1)"),
            "{}",
            report.warnings[0].message
        );

        let relaxed = ReportSettings {
            min_images_per_label: 1,
            max_label_ratio: 6.0,
        };
        assert!(dataset_report(&images(&list), 224, 224, &relaxed)
            .warnings
            .is_empty());
        let off = ReportSettings {
            min_images_per_label: 0,
            max_label_ratio: 0.0,
        };
        assert!(dataset_report(&images(&list), 224, 224, &off)
            .warnings
            .is_empty());
        // Below 1 means 1: equal labels are never imbalanced.
        let equal = [
            ("1", "a", facts(sig(distinct(1), 1))),
            ("2", "b", facts(sig(distinct(2), 2))),
        ];
        let tiny_ratio = ReportSettings {
            min_images_per_label: 0,
            max_label_ratio: 0.5,
        };
        assert!(dataset_report(&images(&equal), 224, 224, &tiny_ratio)
            .warnings
            .is_empty());
    }

    #[test]
    fn messages_match_the_contract_example() {
        let ids: Vec<String> = (1..=15).map(|i| i.to_string()).collect();
        let list: Vec<(&str, &str, Option<RenderedFacts>)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.as_str(),
                    if i < 12 { "cats" } else { "dogs" },
                    facts(sig(distinct(i as u64), i as u64)),
                )
            })
            .collect();
        let report = dataset_report(&images(&list), 224, 224, &ReportSettings::default());
        assert_eq!(
            report.labels,
            BTreeMap::from([("cats".into(), 12), ("dogs".into(), 3)])
        );
        assert_eq!(codes(&report), ["imbalanced_labels", "too_few_images"]);
        assert_eq!(
            report.warnings[1].message,
            "dogs has only 3 pictures; add at least 2 more"
        );
        // 12 is not more than 4 × 3.
        let lenient = ReportSettings {
            max_label_ratio: 4.0,
            ..ReportSettings::default()
        };
        assert_eq!(
            codes(&dataset_report(&images(&list), 224, 224, &lenient)),
            ["too_few_images"]
        );
    }

    #[test]
    fn copies_group_into_one_warning_each() {
        let a = distinct(1);
        let near_a = a ^ 0b1011; // 3 bits off
        let b = distinct(2);
        let list = [
            ("1", "dogs", facts(sig(a, 10))),
            ("2", "cats", facts(sig(b, 20))),
            ("3", "cats", facts(sig(near_a, 11))),
            ("4", "cats", facts(sig(distinct(3), 20))), // same pixels as 2
            ("5", "dogs", facts(sig(distinct(4), 30))),
            ("6", "birds", facts(sig(a ^ 0b1011 << 20, 12))), // near 1 and, through it, 3
            ("7", "dogs", None),
        ];
        let settings = ReportSettings {
            min_images_per_label: 0,
            max_label_ratio: 0.0,
        };
        let report = dataset_report(&images(&list), 224, 224, &settings);
        assert_eq!(codes(&report), ["duplicate", "duplicate_across_labels"]);
        let within = &report.warnings[0];
        assert_eq!(
            (within.labels.clone(), within.ids.clone()),
            (
                vec!["cats".to_string()],
                vec!["2".to_string(), "4".to_string()]
            )
        );
        assert_eq!(
            within.message,
            "cats has the same picture 2 times (images 2 and 4)"
        );
        let across = &report.warnings[1];
        assert_eq!(across.labels, ["birds", "cats", "dogs"]);
        assert_eq!(across.ids, ["1", "3", "6"]);
        assert_eq!(
            across.message,
            "the same picture is in birds, cats and dogs (images 1, 3 and 6)"
        );
    }

    #[test]
    fn distance_beyond_the_threshold_is_not_a_copy() {
        let a = distinct(9);
        let far = a ^ ((1u64 << (zipfleet_imaging::signature::DUPLICATE_DISTANCE + 1)) - 1);
        let list = [
            ("1", "cats", facts(sig(a, 1))),
            ("2", "dogs", facts(sig(far, 2))),
        ];
        let settings = ReportSettings {
            min_images_per_label: 0,
            max_label_ratio: 0.0,
        };
        assert!(dataset_report(&images(&list), 224, 224, &settings)
            .warnings
            .is_empty());

        // The same structure recoloured (a wallpaper's dark version) is not a copy.
        let mut dark = sig(a, 3);
        dark.colours = [[20, 30, 40]; 16];
        let list = [("1", "cats", facts(sig(a, 1))), ("2", "dogs", facts(dark))];
        assert!(dataset_report(&images(&list), 224, 224, &settings)
            .warnings
            .is_empty());
    }

    #[test]
    fn small_and_blank_pictures_are_listed_in_one_warning_each() {
        let small = |w, h, n| {
            Some(RenderedFacts {
                source_width: w,
                source_height: h,
                signature: sig(distinct(n), n),
            })
        };
        let blank = |n| {
            Some(RenderedFacts {
                source_width: 640,
                source_height: 480,
                signature: Signature {
                    exact: n,
                    phash: 0,
                    spread: 0.5,
                    detail: 1.0,
                    colours: [[128; 3]; 16],
                },
            })
        };
        let list = [
            ("a", "cats", small(64, 48, 1)),
            ("b", "cats", small(100, 300, 2)), // taller than the output: not enlarged in both
            ("c", "dogs", blank(3)),
            ("d", "dogs", blank(4)),
            ("e", "dogs", small(200, 100, 5)),
        ];
        let settings = ReportSettings {
            min_images_per_label: 0,
            max_label_ratio: 0.0,
        };
        let report = dataset_report(&images(&list), 224, 224, &settings);
        // The two blank frames are not reported as copies of each other.
        assert_eq!(codes(&report), ["blank_image", "small_source"]);
        assert_eq!(report.warnings[0].ids, ["c", "d"]);
        assert_eq!(
            report.warnings[0].message,
            "2 pictures are (almost) one flat colour: c (dogs) and d (dogs)"
        );
        assert_eq!(report.warnings[1].ids, ["a", "e"]);
        assert_eq!(report.warnings[1].labels, ["cats", "dogs"]);
        assert_eq!(
            report.warnings[1].message,
            "2 pictures were smaller than 224×224 and were enlarged, so they will look blurry: a (cats) and e (dogs)"
        );

        let one = [("a", "cats", small(64, 48, 1))];
        let report = dataset_report(&images(&one), 224, 224, &settings);
        assert_eq!(report.warnings[0].message, "picture a in cats is only 64×48 pixels and was enlarged to 224×224, so it will look blurry");
    }

    #[test]
    fn warnings_sort_by_code_then_first_id_position() {
        let list = [
            ("9", "b", facts(sig(distinct(1), 1))),
            ("10", "a", facts(sig(distinct(2), 2))),
            ("11", "a", facts(sig(distinct(2), 2))),
            ("12", "b", facts(sig(distinct(1), 1))),
            ("13", "c", None),
        ];
        let report = dataset_report(
            &images(&list),
            224,
            224,
            &ReportSettings {
                min_images_per_label: 3,
                max_label_ratio: 0.0,
            },
        );
        assert_eq!(
            codes(&report),
            [
                "duplicate",
                "duplicate",
                "too_few_images",
                "too_few_images",
                "too_few_images"
            ]
        );
        assert_eq!(report.warnings[0].ids, ["9", "12"]);
        assert_eq!(report.warnings[1].ids, ["10", "11"]);
        let labels: Vec<&str> = report.warnings[2..]
            .iter()
            .map(|w| w.labels[0].as_str())
            .collect();
        assert_eq!(labels, ["a", "b", "c"]);
        assert_eq!(
            report.warnings[4].message,
            "c has no pictures in the zip; add at least 3"
        );
        assert_eq!(report.labels["c"], 0);
        // The same input, the same report.
        assert_eq!(
            report,
            dataset_report(
                &images(&list),
                224,
                224,
                &ReportSettings {
                    min_images_per_label: 3,
                    max_label_ratio: 0.0
                }
            )
        );
    }

    #[test]
    fn an_empty_job_has_an_empty_report() {
        let report = dataset_report(&[], 224, 224, &ReportSettings::default());
        assert_eq!(report, DatasetReport::default());
    }
}
