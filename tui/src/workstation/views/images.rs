//! The images view: the SIFT image pipeline's builds and their AMIs.

use std::cmp::Ordering;

use ratatui::layout::Constraint;

use super::lower_join;
use crate::filter::{Field, Filterable};
use crate::theme::Theme;
use crate::workstation::format::short_time;
use crate::workstation::table::{EmptyText, InstanceNames, ListView, RawCell, Sort, TableRow};

/// One build of the SIFT pipeline, as the images view lists it.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub image: irf_engine::analysis::images::ImageBuild,
    haystack: String,
}

impl ImageRow {
    pub fn new(image: irf_engine::analysis::images::ImageBuild) -> Self {
        let amis: Vec<&str> = image.amis.iter().map(|a| a.ami_id.as_str()).collect();
        let haystack = lower_join(&[&image.version, &image.state, &amis.join(" "), &image.arn]);
        Self { image, haystack }
    }

    /// The AMIs per region, as one cell.
    pub fn amis(&self) -> String {
        let amis: Vec<String> = self
            .image
            .amis
            .iter()
            .map(|a| format!("{} {}", a.region, a.ami_id))
            .collect();
        if amis.is_empty() {
            "-".to_owned()
        } else {
            amis.join(", ")
        }
    }
}

/// Column titles of the images view, in order.
pub const IMAGE_COLUMNS: [&str; 5] = ["VERSION", "STATE", "BUILT", "TYPE", "AMI"];

impl Filterable for ImageRow {
    fn haystack(&self) -> &str {
        &self.haystack
    }
    fn field(&self, field: Field) -> Vec<String> {
        match field {
            Field::Account | Field::Region => vec![],
            Field::State => vec![self.image.state.to_ascii_lowercase()],
        }
    }
}

impl TableRow for ImageRow {
    fn id(&self) -> &str {
        &self.image.arn
    }
    fn compare(&self, other: &Self, column: usize) -> Ordering {
        let (a, b) = (&self.image, &other.image);
        match column {
            0 => a.version_key().cmp(&b.version_key()),
            1 => a.state.cmp(&b.state),
            2 => a.created.cmp(&b.created),
            3 => a.build_type.cmp(&b.build_type),
            _ => Ordering::Equal,
        }
        .then_with(|| a.arn.cmp(&b.arn))
    }
}

impl ListView for ImageRow {
    const COLUMNS: &'static [&'static str] = &IMAGE_COLUMNS;
    // First the version, its state and AMIs.
    const PRIORITY: &'static [usize] = &[0, 1, 4, 2, 3];
    const SORT: Sort = Sort {
        column: 0,
        descending: true,
    };
    const EMPTY: Option<EmptyText> = Some(EmptyText {
        filtered: "no image matches the filter",
        loading: "reading the image pipeline…",
        failed: "could not list the images",
        nothing: "the pipeline has built no image yet: b starts a build",
        nothing_read_only: "the pipeline has built no image yet",
    });

    fn widths() -> Vec<Constraint> {
        vec![
            Constraint::Length(12),
            Constraint::Length(13),
            Constraint::Length(19),
            Constraint::Length(16),
            Constraint::Fill(1),
        ]
    }

    fn cells(&self, _names: &dyn InstanceNames, theme: &Theme) -> Vec<RawCell> {
        let text = theme.style("text");
        let image = &self.image;
        let state_role = match image.state.as_str() {
            "AVAILABLE" => "status.info",
            "FAILED" | "CANCELLED" => "status.error",
            _ => "text",
        };
        vec![
            (image.version.clone(), text),
            (image.state.clone(), theme.style(state_role)),
            (
                image.created.as_deref().map(short_time).unwrap_or_default(),
                text,
            ),
            (
                image.build_type.clone().unwrap_or_else(|| "-".into()),
                theme.style("text.dim"),
            ),
            (self.amis(), text),
        ]
    }
}
