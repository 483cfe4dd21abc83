//! The seam between the job contract (`zipfleet-shared`) and the image
//! pipeline (`zipfleet-imaging`, which knows nothing of the contract): the
//! spec's output as the pipeline's [`Output`], and each [`ImageError`] as the
//! contract's [`ImageErrorCode`] (and the image's [`Skip`]). Both
//! conversions are made here and nowhere else.

use crate::outcome::Skip;
use zipfleet_imaging::{Fit, ImageError, Output, OutputFormat};
use zipfleet_shared::spec::{self, OutputSpec};
use zipfleet_shared::ImageErrorCode;

/// The spec's output as the image pipeline takes it.
pub(crate) fn imaging_output(spec: &OutputSpec) -> Output {
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

/// The skip of an image the pipeline could not render. A body that is not
/// an image at all is the site's answer (a URL's failure may be cached);
/// too many pixels or too little memory is this worker's limit, and a
/// decoder's failure is not the site's word either.
pub(crate) fn skip_for(err: &ImageError) -> Skip {
    let code = image_error_code(err);
    match err {
        ImageError::UnsupportedFormat(_) => Skip::from_site(code, err.to_string()),
        _ => Skip::here(code, err.to_string()),
    }
}

/// The contract's code for an image the pipeline could not render.
pub(crate) fn image_error_code(err: &ImageError) -> ImageErrorCode {
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
            let skip = skip_for(&err);
            assert_eq!((skip.code, skip.message), (code, err.to_string()));
            assert_eq!(
                skip.site_answer,
                code == ImageErrorCode::UnsupportedFormat,
                "only a body that is not an image is the site's answer: {err}"
            );
        }
    }
}
