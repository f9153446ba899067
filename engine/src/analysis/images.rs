//! The SIFT image pipeline (template 2): its schedule, its images and their build state,
//! and starting a build.

use serde::{Deserialize, Serialize};

use super::{Analysis, AnalysisError};

/// The pipeline and its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSummary {
    pub arn: String,
    pub name: String,
    pub status: String,
    pub schedule: Option<String>,
    pub last_run: Option<String>,
    pub next_run: Option<String>,
}

/// An AMI an image was distributed as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageAmi {
    pub region: String,
    pub ami_id: String,
    pub account: Option<String>,
}

/// One build of the pipeline's recipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageBuild {
    pub arn: String,
    /// `semantic-version/build`, for example `1.0.0/3`.
    pub version: String,
    /// Image Builder's state: PENDING, BUILDING, TESTING, DISTRIBUTING, AVAILABLE, FAILED, ...
    pub state: String,
    pub reason: Option<String>,
    pub created: Option<String>,
    pub build_type: Option<String>,
    pub amis: Vec<ImageAmi>,
}

impl ImageBuild {
    /// The version as numbers (`1.0.0/3` -> [1, 0, 0, 3]), for ordering.
    pub fn version_key(&self) -> Vec<u64> {
        self.version
            .split(['.', '/'])
            .map(|part| part.parse().unwrap_or(0))
            .collect()
    }

    pub fn is_available(&self) -> bool {
        self.state == "AVAILABLE"
    }

    /// Whether the build is still going.
    pub fn is_building(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "AVAILABLE" | "FAILED" | "CANCELLED" | "DEPRECATED" | "DELETED" | "DISABLED"
        )
    }

    pub fn ami_in(&self, region: &str) -> Option<&str> {
        self.amis
            .iter()
            .find(|ami| ami.region == region)
            .map(|ami| ami.ami_id.as_str())
    }
}

/// The pipeline with its images, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineImages {
    pub pipeline: PipelineSummary,
    pub images: Vec<ImageBuild>,
}

impl PipelineImages {
    /// The newest available image with an AMI in `region`, and that AMI.
    pub fn newest_available(&self, region: &str) -> Option<(&ImageBuild, &str)> {
        self.images
            .iter()
            .filter(|image| image.is_available())
            .find_map(|image| image.ami_in(region).map(|ami| (image, ami)))
    }
}

/// Newest first: by version, then by build number.
pub fn sort_newest_first(images: &mut [ImageBuild]) {
    images.sort_by_key(|image| std::cmp::Reverse(image.version_key()));
}

/// The pipeline and every image it built.
pub async fn list(analysis: &Analysis) -> Result<PipelineImages, AnalysisError> {
    let arn = analysis.pipeline_arn()?;
    let out = analysis
        .imagebuilder
        .get_image_pipeline()
        .image_pipeline_arn(arn)
        .send()
        .await
        .map_err(|err| analysis.call_error("imagebuilder:GetImagePipeline", &err))?;
    let pipeline = out.image_pipeline();
    let summary = PipelineSummary {
        arn: arn.to_owned(),
        name: pipeline
            .and_then(|p| p.name())
            .unwrap_or_default()
            .to_owned(),
        status: pipeline
            .and_then(|p| p.status())
            .map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
        schedule: pipeline
            .and_then(|p| p.schedule())
            .and_then(|s| s.schedule_expression())
            .map(str::to_owned),
        last_run: pipeline.and_then(|p| p.date_last_run()).map(str::to_owned),
        next_run: pipeline.and_then(|p| p.date_next_run()).map(str::to_owned),
    };
    let mut images = Vec::new();
    let mut pages = analysis
        .imagebuilder
        .list_image_pipeline_images()
        .image_pipeline_arn(arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|err| analysis.call_error("imagebuilder:ListImagePipelineImages", &err))?;
        for image in page.image_summary_list() {
            images.push(ImageBuild {
                arn: image.arn().unwrap_or_default().to_owned(),
                version: image.version().unwrap_or_default().to_owned(),
                state: image
                    .state()
                    .and_then(|s| s.status())
                    .map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
                reason: image.state().and_then(|s| s.reason()).map(str::to_owned),
                created: image.date_created().map(str::to_owned),
                build_type: image.build_type().map(|b| b.as_str().to_owned()),
                amis: image
                    .output_resources()
                    .map(|o| o.amis())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|ami| {
                        Some(ImageAmi {
                            region: ami.region()?.to_owned(),
                            ami_id: ami.image()?.to_owned(),
                            account: ami.account_id().map(str::to_owned),
                        })
                    })
                    .collect(),
            });
        }
    }
    sort_newest_first(&mut images);
    Ok(PipelineImages {
        pipeline: summary,
        images,
    })
}

/// Starts a build of the pipeline now; returns the ARN of the image being built.
pub async fn start_build(analysis: &Analysis) -> Result<String, AnalysisError> {
    let arn = analysis.pipeline_arn()?;
    // The client token makes a retried request start one build, not two.
    let token = format!("irf-{:016x}", rand::random::<u64>());
    let out = analysis
        .imagebuilder
        .start_image_pipeline_execution()
        .image_pipeline_arn(arn)
        .client_token(token)
        .send()
        .await
        .map_err(|err| analysis.call_error("imagebuilder:StartImagePipelineExecution", &err))?;
    Ok(out.image_build_version_arn().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(version: &str, state: &str, ami: Option<&str>) -> ImageBuild {
        ImageBuild {
            arn: format!("arn:aws:imagebuilder:us-east-1:1:image/sift/{version}"),
            version: version.to_owned(),
            state: state.to_owned(),
            reason: None,
            created: None,
            build_type: None,
            amis: ami
                .map(|id| ImageAmi {
                    region: "us-east-1".to_owned(),
                    ami_id: id.to_owned(),
                    account: None,
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn newest_is_by_number_not_by_text() {
        let mut images = vec![
            build("1.0.0/2", "AVAILABLE", Some("ami-2")),
            build("1.0.0/10", "AVAILABLE", Some("ami-10")),
            build("1.2.0/1", "BUILDING", None),
        ];
        sort_newest_first(&mut images);
        let versions: Vec<_> = images.iter().map(|i| i.version.as_str()).collect();
        assert_eq!(versions, ["1.2.0/1", "1.0.0/10", "1.0.0/2"]);
        let listed = PipelineImages {
            pipeline: PipelineSummary {
                arn: String::new(),
                name: String::new(),
                status: "ENABLED".to_owned(),
                schedule: None,
                last_run: None,
                next_run: None,
            },
            images,
        };
        // The building image is newer but not usable; the newest available one is chosen.
        let (image, ami) = listed.newest_available("us-east-1").expect("an image");
        assert_eq!((image.version.as_str(), ami), ("1.0.0/10", "ami-10"));
        assert!(listed.newest_available("eu-west-1").is_none());
    }

    #[test]
    fn building_states() {
        assert!(build("1.0.0/1", "TESTING", None).is_building());
        assert!(!build("1.0.0/1", "FAILED", None).is_building());
        assert!(!build("1.0.0/1", "AVAILABLE", None).is_building());
    }
}
