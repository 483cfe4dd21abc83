//! The seam between the job contract (`zipfleet-shared`) and the image
//! pipeline (`zipfleet-imaging`, which knows nothing of the contract): the
//! spec's output as the pipeline's [`Output`], and each [`ImageError`] as the
//! contract's [`ImageErrorCode`]. Both conversions are made here and nowhere
//! else.

use zipfleet_imaging::{Fit, ImageError, Output, OutputFormat};
use zipfleet_shared::spec::{self, OutputSpec};
use zipfleet_shared::ImageErrorCode;

/// The spec's output as the image pipeline takes it.
pub fn imaging_output(spec: &OutputSpec) -> Output {
    Output {
        width: spec.width,
        height: spec.height,
        fit: match spec.fit {
            spec::Fit::Fill => Fit::Fill,
            spec::Fit::Cover => Fit::Cover,
            spec::Fit::Contain => Fit::Contain,
        },
        format: match spec.format {
            spec::OutputFormat::Jpeg => OutputFormat::Jpeg,
            spec::OutputFormat::Png => OutputFormat::Png,
        },
        quality: spec.quality,
    }
}

/// The contract's code for an image the pipeline could not render.
pub fn image_error_code(err: &ImageError) -> ImageErrorCode {
    match err {
        ImageError::UnsupportedFormat(_) => ImageErrorCode::UnsupportedFormat,
        ImageError::TooManyPixels { .. } | ImageError::OverBudget(_) => {
            ImageErrorCode::TooManyPixels
        }
        ImageError::Decode(_) => ImageErrorCode::DecodeFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fit_and_format_keeps_its_meaning() {
        for (fit, expected) in [
            (spec::Fit::Fill, Fit::Fill),
            (spec::Fit::Cover, Fit::Cover),
            (spec::Fit::Contain, Fit::Contain),
        ] {
            let spec = OutputSpec {
                fit,
                format: spec::OutputFormat::Png,
                quality: 77,
                ..OutputSpec::default()
            };
            let output = imaging_output(&spec);
            assert_eq!(output.fit, expected);
            assert_eq!(output.format, OutputFormat::Png);
            assert_eq!(
                (output.width, output.height, output.quality),
                (spec.width, spec.height, 77)
            );
        }
    }

    #[test]
    fn pipeline_errors_map_to_the_contract_codes() {
        let cases = [
            (
                ImageError::UnsupportedFormat("svg".into()),
                ImageErrorCode::UnsupportedFormat,
            ),
            (
                ImageError::TooManyPixels {
                    width: 1,
                    height: 1,
                    limit_mp: 0,
                },
                ImageErrorCode::TooManyPixels,
            ),
            (
                ImageError::OverBudget("x".into()),
                ImageErrorCode::TooManyPixels,
            ),
            (ImageError::Decode("x".into()), ImageErrorCode::DecodeFailed),
        ];
        for (err, code) in cases {
            assert_eq!(image_error_code(&err), code, "{err}");
        }
    }
}
