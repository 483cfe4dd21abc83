//! One image's work: fetch its bytes, probe the header into a plan, reserve
//! the memory the plan needs, then decode, resize and encode on a CPU slot —
//! through the cache when it is on ([`crate::cache::Cache::image`] decides
//! which of these steps really run).

use crate::cache::ImageWork;
use crate::erasure::JobContext;
use crate::fetch::Fetched;
use crate::imaging_contract::{imaging_output, skip_for};
use crate::job::JobEnv;
use crate::metrics::Stage;
use crate::outcome::{Done, ImageFailure, Interrupted, Skip};
use async_trait::async_trait;
use std::time::Instant;
use tracing::warn;
use zipfleet_imaging::{self as imaging, ImageError, Rendered};
use zipfleet_shared::spec::{Image, OutputSpec, Source};
use zipfleet_shared::ImageErrorCode;

/// One image of `job` rendered to `output`, or why not.
pub(crate) async fn process(
    env: &JobEnv,
    job: &JobContext<'_>,
    image: &Image,
    output: &OutputSpec,
) -> Result<Done, ImageFailure> {
    let work = Pipeline { env, output };
    match &env.cache {
        Some(cache) => cache.image(job, &image.source, output, &work).await,
        None => {
            let fetched = work.fetch(&image.source).await?;
            work.render(fetched).await.map(Done::fresh)
        }
    }
}

/// The fetch and render of images for one output, on this worker's fetcher,
/// memory budget and CPU slots, with the stage times and download counters.
struct Pipeline<'a> {
    env: &'a JobEnv,
    output: &'a OutputSpec,
}

#[async_trait]
impl ImageWork for Pipeline<'_> {
    async fn fetch(&self, source: &Source) -> Result<Fetched, ImageFailure> {
        let env = self.env;
        let started = Instant::now();
        let fetched = env.fetcher.fetch(source).await;
        env.metrics.stage(Stage::Fetch, started.elapsed());
        let fetched = fetched?;
        env.metrics.downloaded(fetched.size());
        Ok(fetched)
    }

    async fn render(&self, fetched: Fetched) -> Result<Rendered, ImageFailure> {
        let env = self.env;
        let path = fetched.path().to_path_buf();
        let (max_pixels, output) = (env.limits.max_pixels, imaging_output(self.output));
        let started = Instant::now();
        let probed = tokio::task::spawn_blocking(move || {
            let file =
                std::fs::File::open(&path).map_err(|err| ImageError::Decode(err.to_string()))?;
            imaging::probe(file, &output, max_pixels)
        })
        .await
        .map_err(|err| Interrupted::transient("probing an image", err))?;
        env.metrics.stage(Stage::Probe, started.elapsed());
        let probe = probed.map_err(|err| skip_for(&err))?;

        let needed = fetched.size() + probe.working_bytes;
        let reservation = env
            .budget
            .reserve(needed)
            .await
            .map_err(|over| skip_for(&ImageError::OverBudget(over.to_string())))?;
        let path = fetched.path().to_path_buf();
        let started = Instant::now();
        let rendered = env
            .cpu
            .run(move || {
                // The reservation lives exactly as long as the pixels do.
                let _reservation = reservation;
                let bytes =
                    std::fs::read(&path).map_err(|err| ImageError::Decode(err.to_string()))?;
                imaging::render(&bytes, &probe)
            })
            .await;
        drop(fetched);
        env.metrics.stage(Stage::Render, started.elapsed());
        match rendered {
            Ok(rendered) => rendered.map_err(|err| skip_for(&err).into()),
            Err(panicked) => {
                warn!(%panicked, "image processing panicked");
                Err(Skip::here(
                    ImageErrorCode::DecodeFailed,
                    "the image file is damaged in a way that broke the decoder",
                )
                .into())
            }
        }
    }
}
